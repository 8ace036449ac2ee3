// The CLI's progress rendering: a bar on a terminal, plain lines in logs.
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "cli/progress_bar.h"
#include "isoline/core/progress.h"

namespace {
std::string render(bool tty) {
  std::FILE* f = std::tmpfile();
  {
    isoline::core::Progress p(isoline::cli::make_progress_renderer(false, f, tty ? 1 : 0), "contour");
    for (int i = 0; i <= 100; ++i) p.update(i / 100.0, i < 50 ? "" : "post-processing");
  }
  std::string out;
  std::rewind(f);
  char buf[256];
  while (std::fgets(buf, sizeof buf, f)) out += buf;
  std::fclose(f);
  return out;
}
int count(const std::string& s, const std::string& needle) {
  int n = 0;
  for (auto p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}
}  // namespace

TEST(ProgressBar, PlainLinesForLogs) {
  const std::string out = render(false);
  EXPECT_EQ(out.find('\r'), std::string::npos) << out;
  EXPECT_NE(out.find("progress   0%"), std::string::npos) << out;
  EXPECT_NE(out.find("progress 100%"), std::string::npos) << out;
  EXPECT_NE(out.find("contour: post-processing"), std::string::npos) << out;
  EXPECT_LE(count(out, "\n"), 14) << out;  // about one line per 10 % step
}

TEST(ProgressBar, BarOnTerminal) {
  const std::string out = render(true);
  EXPECT_GT(count(out, "\r"), 10) << out;
  EXPECT_NE(out.find("[##############################] 100%"), std::string::npos) << out;
  EXPECT_EQ(out.back(), '\n');  // the bar line is finished at 100 %
}

TEST(ProgressBar, QuietRendersNothing) {
  EXPECT_FALSE(static_cast<bool>(isoline::cli::make_progress_renderer(true)));
}
