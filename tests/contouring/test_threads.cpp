// Running the contouring network must not leave the process on one CPU: LibTorch sets the
// calling thread's OpenMP default from the physical cores it detects (1 on some virtual
// machines), and the dose engine that `isoline run` calls next uses that default.
#include <sched.h>

#include <cstdlib>

#include <gtest/gtest.h>
#include <omp.h>

#include "isoline/contouring/contour.h"

using namespace isoline;

TEST(ContourThreads, OpenMpKeepsEveryAvailableCpuAfterTheNetworkRan) {
  if (std::getenv("OMP_NUM_THREADS")) GTEST_SKIP() << "OMP_NUM_THREADS is set: the user's choice";
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  const int cpus = CPU_COUNT(&set);
  core::Geometry g;  // a water cylinder: enough for the network to run on a few slices
  g.size = {48, 48, 8};
  g.spacing = {4, 4, 2.5};
  core::Image ct(g, core::PixelType::Int16);
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i)
        ct.at<std::int16_t>(i, j, k) = (i - 24) * (i - 24) + (j - 24) * (j - 24) < 400 ? 20 : -1000;
  contouring::ContourOptions o;
  o.structures = {"Brainstem"};
  const auto r = contouring::contour(ct, o);
  ASSERT_EQ(r.structures.size(), 1u);
  EXPECT_EQ(omp_get_max_threads(), cpus);
  int team = 0;
#pragma omp parallel
#pragma omp single
  team = omp_get_num_threads();
  EXPECT_EQ(team, cpus);
}
