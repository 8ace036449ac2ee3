#include <cmath>
#include <fstream>

#include <gtest/gtest.h>

#include "isoline/core/error.h"
#include "isoline/planning/criteria.h"
#include "isoline/planning/plan.h"
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

// evaluate_dose gives each criterion also on a sub-voxel DVH: at a steep target edge the
// coverage a planning system shows from RS + RD is lower than at the voxel centres.
TEST(Criteria, SubVoxelValueBesideTheVoxelCentreValue) {
  core::Geometry g;
  g.size = {20, 20, 20};
  g.spacing = {4, 4, 4};
  core::Image dose = core::Image::zeros<float>(g);
  core::Image m = core::Image::zeros<std::uint8_t>(g);
  for (int k = 5; k < 15; ++k)
    for (int j = 5; j < 15; ++j)
      for (int i = 5; i < 15; ++i) {
        dose.at<float>(i, j, k) = 70.0f;
        m.at<std::uint8_t>(i, j, k) = 1;
      }
  core::StructureSet s(g);
  s.add("PTV70", m);
  planning::Criterion c{"PTV70", "D99%", false, 66.5, "PTV70 D99% >= 66.5 Gy"};
  auto e = planning::evaluate_dose(dose, s, {c});
  ASSERT_EQ(e.criteria.size(), 1u);
  EXPECT_NEAR(e.criteria[0].value, 70.0, 1e-6);  // every voxel centre gets 70 Gy
  EXPECT_TRUE(e.criteria[0].pass);
  ASSERT_TRUE(std::isfinite(e.criteria[0].value_subvoxel));
  EXPECT_LT(e.criteria[0].value_subvoxel, 60.0);  // the edge voxels' outer halves see the fall-off
  // Its own verdict: FAIL as a planning system computes it, while the voxel centres PASS
  // (session-18 audit: pt_201 PTV56 D99 56.06 Gy PASS, 49.23 Gy from RS + RD).
  EXPECT_FALSE(e.criteria[0].pass_subvoxel);
  EXPECT_TRUE(e.criteria[0].verdict_differs());
  EXPECT_EQ(planning::count_passed(e.criteria), 1);
  EXPECT_EQ(planning::count_passed_subvoxel(e.criteria), 0);
  EXPECT_EQ(planning::count_subvoxel(e.criteria), 1);
  const std::string w = planning::verdict_difference_warning(e.criteria);
  EXPECT_NE(w.find("PTV70 D99% >= 66.5 Gy (PASS at voxel centres 70.00 Gy, FAIL sub-voxel"), std::string::npos) << w;
  EXPECT_NE(w.find("RS.dcm + RD.dcm"), std::string::npos) << w;
  // A limit both values meet: same verdict, no warning.
  planning::Criterion easy{"PTV70", "D99%", false, 30.0, "PTV70 D99% >= 30 Gy"};
  auto e2 = planning::evaluate_dose(dose, s, {easy});
  EXPECT_TRUE(e2.criteria[0].pass && e2.criteria[0].pass_subvoxel);
  EXPECT_FALSE(e2.criteria[0].verdict_differs());
  EXPECT_EQ(planning::verdict_difference_warning(e2.criteria), "");
  // Without a sub-voxel value (evaluate_criteria alone, as `isoline dvh`) nothing differs.
  auto plain = planning::evaluate_criteria({c}, e.dvhs);
  EXPECT_FALSE(plain[0].verdict_differs());
  EXPECT_EQ(planning::count_subvoxel(plain), 0);
}

TEST(Criteria, APrescriptionInCentigrayIsRefused) {
  test::TempDir t;
  std::ofstream(t.file("cgy.json")) << R"({"name": "x", "fractions": 35, "targets": [{"structure": "PTV70", "dose_gy": 7000}]})";
  try {
    planning::load_template(t.file("cgy.json"));
    ADD_FAILURE() << "a 7000 Gy prescription was accepted";
  } catch (const core::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("cGy"), std::string::npos) << e.what();
  }
}
