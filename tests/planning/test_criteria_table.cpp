// The criteria table printed by `isoline plan` and `run` (cli/criteria_table.cpp): where the
// sub-voxel value (as a planning system computes it from RS + RD) gives the other verdict than
// the voxel-centre value, the row says so (session-18 audit, defect 2).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "cli/criteria_table.h"

using namespace isoline;

namespace {

planning::CriterionResult result(const std::string& structure, const std::string& metric, bool at_most, double limit,
                                 const std::string& text, double value, double fine) {
  planning::CriterionResult r;
  r.criterion = {structure, metric, at_most, limit, text};
  r.evaluated = true;
  r.value = value;
  r.pass = planning::passes(r.criterion, value);
  r.value_subvoxel = fine;
  if (std::isfinite(fine)) r.pass_subvoxel = planning::passes(r.criterion, fine);
  return r;
}

std::string line_of(const std::string& out, const std::string& start) {
  const std::size_t at = out.find(start);
  return at == std::string::npos ? std::string() : out.substr(at, out.find('\n', at) - at);
}

}  // namespace

TEST(CriteriaTable, MarksTheCriteriaWhoseVerdictDiffersAsATpsComputesIt) {
  // pt_201 (session-18 audit): PTV56 D99 and SpinalCord D0.1cc pass at voxel centres and fail
  // on RS + RD; PTV70 D99 passes both ways.
  const std::vector<planning::CriterionResult> rs = {
      result("PTV56", "D99%", false, 53.2, "PTV56 D99% >= 53.2 Gy", 56.06, 49.23),
      result("SpinalCord", "D0.1cc", true, 45, "SpinalCord D0.1cc <= 45 Gy", 38.88, 45.86),
      result("PTV70", "D99%", false, 66.5, "PTV70 D99% >= 66.5 Gy", 69.20, 66.9),
  };
  testing::internal::CaptureStdout();
  const int failed = cli::print_criteria_table(rs);
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_EQ(failed, 0) << "the exit status (--fail-on-criteria) stays on the voxel-centre verdict";
  EXPECT_NE(out.find("result (as a TPS computes it)"), std::string::npos) << out;
  const std::string p56 = line_of(out, "PTV56 D99%");
  EXPECT_NE(p56.find("56.06  PASS"), std::string::npos) << p56;  // what scripts parse stays first
  EXPECT_NE(p56.find("49.23  FAIL"), std::string::npos) << p56;
  EXPECT_NE(p56.find("<-- differs: PASS at voxel centres, FAIL as a TPS computes it"), std::string::npos) << p56;
  EXPECT_NE(line_of(out, "SpinalCord D0.1cc").find("<-- differs"), std::string::npos) << out;
  const std::string p70 = line_of(out, "PTV70 D99%");
  EXPECT_NE(p70.find("66.90  PASS"), std::string::npos) << p70;
  EXPECT_EQ(p70.find("differs"), std::string::npos) << p70;
  EXPECT_NE(out.find("3 of 3 criteria passed at voxel centres; 1 of 3 on the sub-voxel DVH, as a TPS computes it"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("the verdicts differ for 2 criteria"), std::string::npos) << out;
  EXPECT_EQ(out.find("hn_tps"), std::string::npos) << "no hint unless asked (isoline dvh)";
  // plan and run (a template without edge samples) point to the template made for the
  // planning system's DVH when a criterion passes only at voxel centres.
  testing::internal::CaptureStdout();
  cli::print_criteria_table(rs, cli::kEdgeSamplesHint);
  const std::string hinted = testing::internal::GetCapturedStdout();
  EXPECT_NE(hinted.find("--template hn_tps"), std::string::npos) << hinted;
  testing::internal::CaptureStdout();
  cli::print_criteria_table({rs.back()}, cli::kEdgeSamplesHint);  // the same verdicts: no hint
  EXPECT_EQ(testing::internal::GetCapturedStdout().find("hn_tps"), std::string::npos);
}

TEST(CriteriaTable, WithoutSubVoxelValuesTheTableIsUnchanged) {
  // `isoline dvh --criteria`: no sub-voxel values, the table planning/validation parses.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<planning::CriterionResult> rs = {
      result("PTV56", "D99%", false, 53.2, "PTV56 D99% >= 53.2 Gy", 50.0, nan)};
  testing::internal::CaptureStdout();
  EXPECT_EQ(cli::print_criteria_table(rs), 1);
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_EQ(out.find("sub-voxel"), std::string::npos) << out;
  EXPECT_EQ(out.find("differ"), std::string::npos) << out;
  EXPECT_NE(out.find("PTV56 D99% >= 53.2 Gy                        50.00  FAIL\n"), std::string::npos) << out;
  EXPECT_NE(out.find("0 of 1 criteria passed\n"), std::string::npos) << out;
}
