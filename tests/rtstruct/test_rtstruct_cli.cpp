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
}  // namespace

TEST(RtStructCli, MasksToRtStructToMasksAndDoseBothWays) {
  TempDir t;
  auto r = test::dicom_phantom_ct(t, grid());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  fs::create_directories(t.file("masks"));
  const core::Image m = test::anatomy_mask(grid());
  core::write_image(m, t.file("masks/Anatomy.nii.gz"));
  r = test::cli("convert " + t.file("masks") + " --ct " + t.file("ct") + " --out " +
                  t.file("rs.dcm") + " --rename Anatomy=Target_Volume");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("1 ROIs"), std::string::npos) << r.output;
  r = test::cli("info " + t.file("rs.dcm"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("RT Structure Set"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Target_Volume"), std::string::npos) << r.output;
  char vol[32];
  std::snprintf(vol, sizeof vol, "%.2f", m.count_nonzero() * grid().voxel_volume_mm3() / 1000.0);
  EXPECT_NE(r.output.find(vol), std::string::npos) << vol << "\n" << r.output;
  r = test::cli("convert " + t.file("rs.dcm") + " --ct " + t.file("ct") + " --out " +
                  t.file("back") + " -q");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  core::Image back = core::read_image(t.file("back/Target_Volume.nii.gz"));
  EXPECT_EQ(test::count_diff(back, m), 0u);
  // Dose: NIfTI -> RT-DOSE -> NIfTI.
  core::Image dose = core::Image::zeros<float>(grid());
  for (std::size_t n = 0; n < dose.num_voxels(); ++n) dose.data<float>()[n] = 0.05f * (n % 1000);
  core::write_image(dose, t.file("dose.nii.gz"));
  r = test::cli("convert " + t.file("dose.nii.gz") + " --to rtdose --ct " + t.file("ct") +
                  " --out " + t.file("rd.dcm") + " -q");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = test::cli("info " + t.file("rd.dcm"));
  EXPECT_NE(r.output.find("max 49.9500 Gy"), std::string::npos) << r.output;
  r = test::cli("convert " + t.file("rd.dcm") + " --out " + t.file("dose_back.nii.gz") + " -q");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  core::Image db = core::read_image(t.file("dose_back.nii.gz"));
  ASSERT_TRUE(db.geometry().same_grid(grid()));
  for (std::size_t n = 0; n < dose.num_voxels(); ++n) ASSERT_NEAR(db.value(n), dose.value(n), 1e-5);
  // Directory info lists CT, RT-STRUCT and RT-DOSE.
  fs::copy(t.file("rs.dcm"), t.file("ct/rs.dcm"));
  fs::copy(t.file("rd.dcm"), t.file("ct/rd.dcm"));
  r = test::cli("info " + t.file("ct"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("3 DICOM series"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("DICOM CT series, 10 slices"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("2 x 2 x 2.5 mm"), std::string::npos) << r.output;
  // CT directory -> NIfTI (the RT objects in it are skipped, and named).
  r = test::cli("convert " + t.file("ct") + " --out " + t.file("ct_back.nii.gz"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("skipped 2 non-image DICOM objects (RTDoseStorage, RTStructureSetStorage)"),
            std::string::npos)
      << r.output;
  fs::remove(t.file("ct/rd.dcm"));
  r = test::cli("convert " + t.file("ct") + " --out " + t.file("ct_back2.nii.gz"));
  EXPECT_NE(r.output.find("skipped 1 non-image DICOM object (rs.dcm: RTStructureSetStorage)"), std::string::npos)
      << r.output;
  EXPECT_EQ(test::count_diff(core::read_image(t.file("ct_back.nii.gz")), test::phantom_ct(grid())),
            0u);
}

// Session 18 audit (physicist): masks -> RT-STRUCT took any image as a structure, moved another
// grid's mask onto the CT without a word, stamped the clinician's masks as AI output, hid its
// warnings under -q; every CT written from an image was patient "ISOLINE".
TEST(RtStructCli, MasksAreCheckedAndNotStampedAsAutomatic) {
  TempDir t;
  auto r = test::dicom_phantom_ct(t, grid());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // A case folder: the CT and dose beside the masks are skipped, not made into ROIs.
  fs::create_directories(t.file("case"));
  const core::Image m = test::anatomy_mask(grid());
  core::write_image(m, t.file("case/PTV70.nii.gz"));
  core::write_image(m, t.file("case/ptv70.nii.gz"));
  core::write_image(m, t.file("case/BODY.nii.gz"));
  core::write_image(m, t.file("case/External.nii.gz"));
  core::write_image(test::phantom_ct(grid()), t.file("case/ct.nii.gz"));
  core::Image dose = core::Image::zeros<float>(grid());
  for (std::size_t n = 0; n < dose.num_voxels(); ++n) dose.data<float>()[n] = 0.05f * (n % 1000);
  core::write_image(dose, t.file("case/dose.nii.gz"));
  r = test::cli("convert " + t.file("case") + " --ct " + t.file("ct") + " --out " + t.file("rs.dcm") + " -q");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto rs = rtstruct::read_rtstruct(t.file("rs.dcm"));
  std::vector<std::string> names;
  for (const auto& roi : rs.rois) names.push_back(roi.name);
  EXPECT_EQ(names, (std::vector<std::string>{"BODY", "External", "PTV70", "ptv70_2"}));
  // Not made by Isoline: generation unknown (empty), unless given.
  for (const auto& roi : rs.rois) EXPECT_EQ(roi.generation_algorithm, "") << roi.name;
  // Warnings are printed with -q: a second EXTERNAL, a name equal but for case.
  EXPECT_NE(r.output.find("2 ROIs of type EXTERNAL (\"BODY\", \"External\")"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ROI \"ptv70\" written as \"ptv70_2\""), std::string::npos) << r.output;
  r = test::cli("convert " + t.file("case/PTV70.nii.gz") + " --ct " + t.file("ct") + " --out " + t.file("rs_m.dcm") +
                  " -q --generation MANUAL");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(rtstruct::read_rtstruct(t.file("rs_m.dcm")).rois.at(0).generation_algorithm, "MANUAL");
  // A probability map is refused with the file named, and nothing is written.
  core::Image prob = core::Image::zeros<float>(grid());
  for (std::size_t n = 0; n < prob.num_voxels(); ++n) prob.data<float>()[n] = m.value(n) ? 0.8f : 0.f;
  core::write_image(prob, t.file("PTVprob.nii.gz"));
  r = test::cli("convert " + t.file("PTVprob.nii.gz") + " --ct " + t.file("ct") + " --out " + t.file("rs_p.dcm") + " -q");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("PTVprob.nii.gz: not a structure mask"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(t.file("rs_p.dcm")));
  // A mask on another grid is placed on the CT, and said so (also with -q), with what is cut.
  core::Geometry other = grid();
  other.spacing = {3.0, 3.0, 3.0};
  other.origin = {-30.0, -30.0, 0.0};
  core::Image om(other, core::PixelType::UInt8);
  for (std::size_t n = 0; n < om.num_voxels(); ++n) om.data<std::uint8_t>()[n] = 1;
  core::write_image(om, t.file("Other.nii.gz"));
  r = test::cli("convert " + t.file("Other.nii.gz") + " --ct " + t.file("ct") + " --out " + t.file("rs_o.dcm") + " -q");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Other.nii.gz: resampled onto the CT's grid"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("cc lie inside the CT"), std::string::npos) << r.output;
  // The same voxels stored in another axis order are not "another grid".
  core::Geometry flipped = grid();
  flipped.direction = {-1, 0, 0, 0, 1, 0, 0, 0, 1};
  flipped.origin = {-39.0 + 2.0 * 39, -35.0, -11.25};
  core::Image fm(flipped, core::PixelType::UInt8);
  for (std::int64_t k = 0; k < 10; ++k)
    for (std::int64_t j = 0; j < 36; ++j)
      for (std::int64_t i = 0; i < 40; ++i) fm.at<std::uint8_t>(i, j, k) = m.at<std::uint8_t>(39 - i, j, k);
  core::write_image(fm, t.file("Flipped.nii.gz"));
  r = test::cli("convert " + t.file("Flipped.nii.gz") + " --ct " + t.file("ct") + " --out " + t.file("rs_f.dcm") + " -q");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("resampled"), std::string::npos) << r.output;
  r = test::cli("convert " + t.file("rs_f.dcm") + " --ct " + t.file("ct") + " --out " + t.file("back_f") + " -q");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(test::count_diff(core::read_image(t.file("back_f/Flipped.nii.gz")), m), 0u);
}

TEST(RtStructCli, ACtFromAnImageNamesItsOwnPatient) {
  TempDir t;
  core::write_image(test::phantom_ct(grid()), t.file("a.nii.gz"));
  core::Image other = test::phantom_ct(grid());
  other.data<std::int16_t>()[5] += 7;
  core::write_image(other, t.file("b.nii.gz"));
  for (const std::string n : {"a", "a2", "b"}) {
    auto r = test::cli("convert " + t.file(n == "a2" ? "a.nii.gz" : n + ".nii.gz") + " --to ct --out " + t.file(n));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  const auto a = rtstruct::read_ct_series(t.file("a")), a2 = rtstruct::read_ct_series(t.file("a2")),
             b = rtstruct::read_ct_series(t.file("b"));
  EXPECT_EQ(a.info.patient_id.rfind("IMG-", 0), 0u) << a.info.patient_id;
  EXPECT_EQ(a.info.patient_id, a2.info.patient_id);  // the same image: the same patient
  EXPECT_NE(a.info.patient_id, b.info.patient_id);   // two images: never one record
  EXPECT_EQ(a.info.patient_name, "ANONYMOUS^");
  auto r = test::cli("convert " + t.file("a.nii.gz") + " --to ct --out " + t.file("n") +
                       " --patient-id MRN0042 --patient-name Doe^Jane -q");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto n = rtstruct::read_ct_series(t.file("n"));
  EXPECT_EQ(n.info.patient_id, "MRN0042");
  EXPECT_EQ(n.info.patient_name, "Doe^Jane");
  r = test::cli("convert " + t.file("a.nii.gz") + " --to ct --out " + t.file("bad") + " --patient-id A\\\\B -q");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("backslash"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(t.file("bad")));
}

TEST(RtStructCli, ErrorsAreOneLineAndNameTheInput) {
  TempDir t;
  auto r = test::cli("convert " + t.file("nothing.dcm") + " --out " + t.file("x"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("nothing.dcm"), std::string::npos) << r.output;
  r = test::cli("info " + t.str());
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
