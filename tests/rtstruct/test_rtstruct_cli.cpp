// `isoline convert` and `isoline info` on DICOM RT objects.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "isoline/core/io.h"
#include "isoline/rtstruct/ct_series.h"
#include "isoline/rtstruct/rtdose.h"
#include "isoline/rtstruct/rtstruct.h"
#include "rtstruct/fuzz/fuzz_readers.h"
#include "tests/rtstruct/rt_test_util.h"

namespace fs = std::filesystem;
using namespace isoline;
using isoline::test::TempDir;

namespace {
core::Geometry grid() {
  core::Geometry g;
  g.size = {40, 36, 10};
  g.spacing = {2.0, 2.0, 2.5};
  g.origin = {-39.0, -35.0, -11.25};
  return g;
}
test::CommandResult run_isoline(const std::string& args) {
  return test::run_command(test::isoline_bin() + " " + args);
}
}  // namespace

TEST(RtStructCli, MasksToRtStructToMasksAndDoseBothWays) {
  TempDir t;
  core::write_image(test::phantom_ct(grid()), t.file("ct.nii.gz"));
  auto r = run_isoline("convert " + t.file("ct.nii.gz") + " --to ct --out " + t.file("ct") + " -q");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  fs::create_directories(t.file("masks"));
  const core::Image m = test::anatomy_mask(grid());
  core::write_image(m, t.file("masks/Anatomy.nii.gz"));
  r = run_isoline("convert " + t.file("masks") + " --ct " + t.file("ct") + " --out " +
                  t.file("rs.dcm") + " --rename Anatomy=Target_Volume");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("1 ROIs"), std::string::npos) << r.output;
  r = run_isoline("info " + t.file("rs.dcm"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("RT Structure Set"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Target_Volume"), std::string::npos) << r.output;
  char vol[32];
  std::snprintf(vol, sizeof vol, "%.2f", m.count_nonzero() * grid().voxel_volume_mm3() / 1000.0);
  EXPECT_NE(r.output.find(vol), std::string::npos) << vol << "\n" << r.output;
  r = run_isoline("convert " + t.file("rs.dcm") + " --ct " + t.file("ct") + " --out " +
                  t.file("back") + " -q");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  core::Image back = core::read_image(t.file("back/Target_Volume.nii.gz"));
  EXPECT_EQ(test::count_diff(back, m), 0u);
  // Dose: NIfTI -> RT-DOSE -> NIfTI.
  core::Image dose = core::Image::zeros<float>(grid());
  for (std::size_t n = 0; n < dose.num_voxels(); ++n) dose.data<float>()[n] = 0.05f * (n % 1000);
  core::write_image(dose, t.file("dose.nii.gz"));
  r = run_isoline("convert " + t.file("dose.nii.gz") + " --to rtdose --ct " + t.file("ct") +
                  " --out " + t.file("rd.dcm") + " -q");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_isoline("info " + t.file("rd.dcm"));
  EXPECT_NE(r.output.find("max 49.9500 Gy"), std::string::npos) << r.output;
  r = run_isoline("convert " + t.file("rd.dcm") + " --out " + t.file("dose_back.nii.gz") + " -q");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  core::Image db = core::read_image(t.file("dose_back.nii.gz"));
  ASSERT_TRUE(db.geometry().same_grid(grid()));
  for (std::size_t n = 0; n < dose.num_voxels(); ++n) ASSERT_NEAR(db.value(n), dose.value(n), 1e-5);
  // Directory info lists CT, RT-STRUCT and RT-DOSE.
  fs::copy(t.file("rs.dcm"), t.file("ct/rs.dcm"));
  fs::copy(t.file("rd.dcm"), t.file("ct/rd.dcm"));
  r = run_isoline("info " + t.file("ct"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("3 DICOM series"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("DICOM CT series, 10 slices"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("2 x 2 x 2.5 mm"), std::string::npos) << r.output;
  // CT directory -> NIfTI (the RT objects in it are skipped, and named).
  r = run_isoline("convert " + t.file("ct") + " --out " + t.file("ct_back.nii.gz"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("skipped 2 non-image DICOM objects (RTDoseStorage, RTStructureSetStorage)"),
            std::string::npos)
      << r.output;
  fs::remove(t.file("ct/rd.dcm"));
  r = run_isoline("convert " + t.file("ct") + " --out " + t.file("ct_back2.nii.gz"));
  EXPECT_NE(r.output.find("skipped 1 non-image DICOM object (rs.dcm: RTStructureSetStorage)"), std::string::npos)
      << r.output;
  EXPECT_EQ(test::count_diff(core::read_image(t.file("ct_back.nii.gz")), test::phantom_ct(grid())),
            0u);
}

TEST(RtStructCli, ErrorsAreOneLineAndNameTheInput) {
  TempDir t;
  auto r = run_isoline("convert " + t.file("nothing.dcm") + " --out " + t.file("x"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("nothing.dcm"), std::string::npos) << r.output;
  r = run_isoline("info " + t.str());
  EXPECT_NE(r.exit_code, 0);
}

// Fuzzer seeds and every crasher found so far (rtstruct/fuzz/regressions) must give a
// clean result or a core::Error, never a crash.
TEST(RtStructFuzz, CorporaAndRegressionsReplayCleanly) {
  const fs::path base = fs::path(ISOLINE_SOURCE_DIR) / "rtstruct" / "fuzz";
  std::size_t n = 0;
  for (const char* d : {"corpus_ct", "corpus_rtstruct", "regressions"}) {
    if (!fs::exists(base / d)) continue;
    for (auto& e : fs::directory_iterator(base / d)) {
      std::ifstream in(e.path(), std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      const auto* p = reinterpret_cast<const std::uint8_t*>(bytes.data());
      fuzz::fuzz_ct(p, bytes.size());
      fuzz::fuzz_rtstruct(p, bytes.size());
      ++n;
    }
  }
  EXPECT_GE(n, 4u);
  std::error_code ec;
  fs::remove(fuzz::temp_path(), ec);
}
