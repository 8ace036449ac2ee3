// Real data (../shared/data): OpenKBP NIfTI files read with the right geometry.
#include <gtest/gtest.h>

#include "isoline/core/io.h"
#include "tests/test_util.h"

using namespace isoline::core;

TEST(IoData, OpenKbpCtGeometry) {
  const std::string p = isoline::test::shared_data("openkbp/train/pt_1/ct.nii.gz");
  Image ct = read_image(p);
  EXPECT_EQ(ct.pixel_type(), PixelType::Int16);
  EXPECT_EQ(ct.geometry().size, (Index3{128, 128, 128}));
  EXPECT_EQ(orientation_code(ct.geometry()), "LPS");
  auto [lo, hi] = ct.min_max();
  EXPECT_LE(lo, -900);  // air
  EXPECT_GE(hi, 1000);  // bone
}

TEST(IoData, OpenKbpDoseReadsInGy) {
  const std::string p = isoline::test::shared_data("openkbp/train/pt_1/dose.nii.gz");
  Image d = read_image(p);
  EXPECT_EQ(d.pixel_type(), PixelType::Float32);
  auto [lo, hi] = d.min_max();
  EXPECT_GE(lo, 0.0);
  EXPECT_GT(hi, 60.0);  // 70 Gy prescription, not centigray
  EXPECT_LT(hi, 90.0);
}

TEST(IoData, OpenKbpMasksShareTheCtGrid) {
  const std::string dir = isoline::test::shared_data("openkbp/train/pt_1");
  Image ct = read_image(dir + "/ct.nii.gz");
  StructureSet set = read_mask_dir(dir, {"Brainstem", "SpinalCord", "PTV70", "Esophagus"});
  EXPECT_GE(set.size(), 3u);
  EXPECT_TRUE(set.geometry().same_grid(ct.geometry()));
  EXPECT_GT(set.get("PTV70").volume_cc(), 10.0);
}
