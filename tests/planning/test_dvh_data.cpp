// DVHs of the OpenKBP reference (clinical) doses: plausible values and the CLI table.
#include <gtest/gtest.h>

#include "isoline/core/io.h"
#include "isoline/planning/criteria.h"
#include "isoline/planning/dvh.h"
#include "tests/test_util.h"

using namespace isoline;

TEST(DvhData, OpenKbpReferencePlanCoversPtv70) {
  const std::string dir = test::shared_data("openkbp/validation/pt_201");
  core::Image dose = core::read_image(dir + "/dose.nii.gz", core::PixelType::Float32);
  core::Image ptv = core::read_image(dir + "/PTV70.nii.gz");
  auto dvh = planning::compute_dvh(dose, ptv, "PTV70");  // same grid: voxel centres
  // Independent check: plain mean over the mask voxels.
  double sum = 0;
  std::size_t n = 0;
  for (std::size_t v = 0; v < ptv.num_voxels(); ++v)
    if (ptv.data<std::uint8_t>()[v]) {
      sum += dose.data<float>()[v];
      ++n;
    }
  ASSERT_GT(n, 1000u);
  EXPECT_NEAR(dvh.mean_gy(), sum / n, 1e-3);
  EXPECT_NEAR(dvh.volume_cc(), n * dose.geometry().voxel_volume_mm3() / 1000.0, 1e-3);
  EXPECT_GT(dvh.mean_gy(), 60.0);  // a 70 Gy target
  EXPECT_GT(dvh.dose_at_percent(99), 50.0);
  EXPECT_LT(dvh.dose_at_percent(99), dvh.dose_at_percent(50));
  EXPECT_LT(dvh.dose_at_percent(50), dvh.dose_at_percent(2));
}

TEST(DvhData, CliPrintsCriteriaTable) {
  const std::string dir = test::shared_data("openkbp/validation/pt_201");
  auto r = test::run_command(test::isoline_bin() + " dvh --dose " + dir + "/dose.nii.gz --masks " + dir +
                             " --structure PTV70 --structure Brainstem --structure SpinalCord --criteria " +
                             ISOLINE_CRITERIA_DIR + "/hn.json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("PTV70 D99% >= 66.5 Gy"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Larynx Dmean <= 45 Gy"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("not evaluated"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("criteria passed"), std::string::npos) << r.output;
}
