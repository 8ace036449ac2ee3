#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "isoline/core/error.h"
#include "isoline/core/progress.h"

using namespace isoline::core;

TEST(Progress, SubRangesMapToOverallFraction) {
  std::vector<ProgressEvent> events;
  Progress p([&](const ProgressEvent& e) { events.push_back(e); }, "job");
  Progress a = p.sub(0.0, 0.5, "contour");
  Progress b = p.sub(0.5, 1.0, "dose");
  a.update(0.5);
  b.sub(0.5, 1.0, "final").update(1.0);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_DOUBLE_EQ(events[0].fraction, 0.25);
  EXPECT_EQ(events[0].stage, "job/contour");
  EXPECT_DOUBLE_EQ(events[1].fraction, 1.0);
  EXPECT_EQ(events[1].stage, "job/dose/final");
}

TEST(Progress, ThrottlesTinySteps) {
  int calls = 0;
  Progress p([&](const ProgressEvent&) { ++calls; });
  for (int i = 0; i <= 10000; ++i) p.update(i / 10000.0);
  EXPECT_LE(calls, 202);
  EXPECT_GE(calls, 100);
}

TEST(Progress, InactiveReporterIsCheap) {
  Progress p;
  EXPECT_FALSE(p.active());
  p.update(0.5);  // no crash, no effect
}

TEST(Progress, CallbackCanCancel) {
  Progress p([](const ProgressEvent& e) {
    if (e.fraction > 0.3) throw Cancelled("cancelled by user");
  });
  p.update(0.1);
  EXPECT_THROW(p.update(0.4), Cancelled);
}

TEST(Progress, ThreadSafeUpdates) {
  std::atomic<int> calls{0};
  Progress p([&](const ProgressEvent&) { ++calls; });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) p.update((t * 1000 + i) / 4000.0, "work");
    });
  for (auto& th : threads) th.join();
  EXPECT_GT(calls.load(), 0);
}
