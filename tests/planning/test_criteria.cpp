#include <fstream>

#include <gtest/gtest.h>

#include "isoline/core/error.h"
#include "isoline/planning/criteria.h"
#include "tests/test_util.h"

using namespace isoline;

namespace {
// 100 samples of 1 cc with doses 1..100 Gy.
planning::Dvh linear_dvh() {
  std::vector<float> d;
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) {
    d.push_back(float(i));
    v.push_back(1.0);
  }
  return planning::Dvh("L", d, v);
}
}  // namespace

TEST(Criteria, MetricNames) {
  auto dvh = linear_dvh();
  EXPECT_NEAR(planning::evaluate_metric(dvh, "Dmean"), 50.5, 1e-9);
  EXPECT_EQ(planning::evaluate_metric(dvh, "Dmax"), 100.0);
  EXPECT_NEAR(planning::evaluate_metric(dvh, "D10cc"), 91.0, 1e-9);
  EXPECT_NEAR(planning::evaluate_metric(dvh, "D0.5cc"), 100.0, 1e-9);
  EXPECT_NEAR(planning::evaluate_metric(dvh, "D95%"), 6.0, 1e-9);
  EXPECT_NEAR(planning::evaluate_metric(dvh, "V50Gy"), 51.0, 1e-9);
  EXPECT_NEAR(planning::evaluate_metric(dvh, "V50Gy_cc"), 51.0, 1e-9);
  EXPECT_THROW(planning::evaluate_metric(dvh, "D95"), core::InvalidInput);
  EXPECT_THROW(planning::evaluate_metric(dvh, "Dxcc"), core::InvalidInput);
  EXPECT_THROW(planning::evaluate_metric(dvh, "D120%"), core::InvalidInput);  // a volume percentage is 0..100
  EXPECT_THROW(planning::evaluate_metric(dvh, "D-5%"), core::InvalidInput);
  EXPECT_THROW(planning::evaluate_metric(dvh, "Q1"), core::InvalidInput);
}

TEST(Criteria, ShippedHeadAndNeckSet) {
  auto c = planning::load_criteria(std::string(ISOLINE_CRITERIA_DIR) + "/hn.json");
  ASSERT_EQ(c.size(), 10u);
  EXPECT_EQ(c[0].structure, "Brainstem");
  EXPECT_EQ(c[0].metric, "D0.1cc");
  EXPECT_TRUE(c[0].at_most);
  EXPECT_DOUBLE_EQ(c[0].limit, 50.0);
  EXPECT_FALSE(c[7].at_most);
  EXPECT_DOUBLE_EQ(c[7].limit, 66.5);  // 95 % of 70 Gy
  EXPECT_EQ(c[7].description, "PTV70 D99% >= 66.5 Gy");
}

TEST(Criteria, EvaluateWithMissingStructures) {
  std::vector<planning::Criterion> crit = {{"L", "Dmax", true, 90.0, "L max"},
                                           {"L", "Dmean", true, 60.0, "L mean"},
                                           {"Missing", "Dmean", true, 1.0, "missing"}};
  std::map<std::string, planning::Dvh> dvhs{{"L", linear_dvh()}};
  auto r = planning::evaluate_criteria(crit, dvhs);
  EXPECT_TRUE(r[0].evaluated);
  EXPECT_FALSE(r[0].pass);
  EXPECT_TRUE(r[1].pass);
  EXPECT_FALSE(r[2].evaluated);
  EXPECT_EQ(planning::count_passed(r), 1);
}

TEST(Criteria, BadFilesNameFileAndEntry) {
  isoline::test::TempDir dir;
  const std::string p = dir.file("c.json");
  std::ofstream(p) << R"({"criteria": [{"structure": "A", "metric": "Dmean", "max": 1},
                                       {"structure": "B", "metric": "Dbogus", "max": 1}]})";
  try {
    planning::load_criteria(p);
    FAIL();
  } catch (const core::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("Dbogus"), std::string::npos) << e.what();
  }
  std::ofstream(p) << R"({"criteria": [{"structure": "A", "metric": "Dmean"}]})";
  try {
    planning::load_criteria(p);
    FAIL();
  } catch (const core::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("criterion 0"), std::string::npos) << e.what();
  }
  std::ofstream(p) << "{ not json";
  EXPECT_THROW(planning::load_criteria(p), core::IoError);
  EXPECT_THROW(planning::load_criteria(dir.file("none.json")), core::IoError);
}
