// Auto-contouring on real data (../shared/data): an OpenKBP validation patient, the same CT
// stored with flipped/permuted axes (FFS-like), a chest CT outside the model's scope, and
// the DICOM -> RT-STRUCT path of `isoline contour`.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "isoline/contouring/contour.h"
#include "isoline/contouring/metrics.h"
#include "isoline/core/error.h"
#include "isoline/core/io.h"
#include "isoline/core/mask_ops.h"
#include "isoline/rtstruct/ct_series.h"
#include "isoline/rtstruct/rtstruct.h"
#include "tests/test_util.h"

using namespace isoline;
using core::Geometry;
using core::Image;

namespace {

const std::string kCase = "openkbp/validation/pt_201";

struct Shared {
  Image ct;
  contouring::ContourResult result;
};

const Shared& shared_case() {
  static std::unique_ptr<Shared> s;
  if (!s) {
    s = std::make_unique<Shared>();
    s->ct = core::read_image(test::shared_data(kCase + "/ct.nii.gz"));
    s->result = contouring::contour(s->ct);
  }
  return *s;
}

// The same patient stored with axis i and k reversed (feet-first-like) and i/j swapped.
Image reorient(const Image& ct) {
  const Geometry& g = ct.geometry();
  Geometry h;
  h.size = {g.size[1], g.size[0], g.size[2]};
  h.spacing = {g.spacing[1], g.spacing[0], g.spacing[2]};
  // new i runs along old j; new j along old -i; new k along old -k
  core::Vec3 ai = g.axis(1), aj = g.axis(0), ak = g.axis(2);
  for (int r = 0; r < 3; ++r) {
    h.direction[r * 3 + 0] = ai[r];
    h.direction[r * 3 + 1] = -aj[r];
    h.direction[r * 3 + 2] = -ak[r];
  }
  h.origin = g.index_to_world({double(g.size[0] - 1), 0.0, double(g.size[2] - 1)});
  Image out(h, ct.pixel_type());
  for (std::int64_t k = 0; k < h.size[2]; ++k)
    for (std::int64_t j = 0; j < h.size[1]; ++j)
      for (std::int64_t i = 0; i < h.size[0]; ++i)
        out.at<std::int16_t>(i, j, k) =
            ct.at<std::int16_t>(g.size[0] - 1 - j, i, g.size[2] - 1 - k);
  return out;
}

}  // namespace

TEST(ContourData, ValidationPatientGivesPlausibleMasks) {
  const auto& s = shared_case();
  const auto& r = s.result;
  EXPECT_TRUE(r.in_scope);
  EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();
  ASSERT_EQ(r.structures.size(), 11u);  // 10 network structures + Body
  EXPECT_TRUE(r.structures.geometry().same_grid(s.ct.geometry()));
  auto ref = core::read_mask_dir(
      test::shared_data(kCase),
      {"Mandible", "Brainstem", "SpinalCord", "RightParotid", "LeftParotid", "PTV70"});
  ASSERT_EQ(ref.size(), 6u);
  auto dice = [&](const std::string& n) {
    return contouring::compare_masks(r.structures.get(n).mask, ref.get(n).mask).dice;
  };
  // Floors for the shipped (under-trained, see docs/validation.md) model, ~0.1 below what it
  // measures on this patient with `isoline eval`; a broken pipeline (orientation, spacing,
  // intensity window, channel order) gives ~0. Raise them (Mandible > 0.8) with a better model.
  EXPECT_GT(dice("Mandible"), 0.45);
  EXPECT_GT(dice("Brainstem"), 0.3);
  EXPECT_GT(dice("SpinalCord"), 0.45);
  EXPECT_GT(dice("RightParotid"), 0.55);
  EXPECT_GT(dice("LeftParotid"), 0.6);
  EXPECT_GT(dice("PTV70"), 0.4);
  // Body encloses the organs; quality text is attached to every structure.
  const auto& body = r.structures.get("Body").mask;
  auto inside = core::mask_intersect(body, ref.get("Brainstem").mask).count_nonzero();
  EXPECT_GT(double(inside), 0.98 * double(ref.get("Brainstem").mask.count_nonzero()));
  for (const auto& st : r.structures) EXPECT_FALSE(st.description.empty()) << st.name;
  // left/right: the right parotid is on the patient's right (LPS -x) of the left one
  auto bbr = core::bounding_box(r.structures.get("RightParotid").mask);
  auto bbl = core::bounding_box(r.structures.get("LeftParotid").mask);
  ASSERT_TRUE(bbr && bbl);
  EXPECT_LT((*bbr)[0] + (*bbr)[3], (*bbl)[0] + (*bbl)[3]);
}

TEST(ContourData, FlippedAndPermutedAxesGiveTheSameContoursInPatientSpace) {
  const auto& s = shared_case();
  Image ffs = reorient(s.ct);
  ASSERT_NE(core::orientation_code(ffs.geometry()), core::orientation_code(s.ct.geometry()));
  contouring::ContourOptions o;
  o.structures = {"Mandible", "RightParotid", "LeftParotid", "SpinalCord", "Larynx", "Body"};
  auto r = contouring::contour(ffs, o);
  for (const auto& n : o.structures) {
    Image back =
        core::resample(r.structures.get(n).mask, s.ct.geometry(), core::Interpolation::Nearest);
    auto m = contouring::compare_masks(back, s.result.structures.get(n).mask);
    EXPECT_GT(m.dice, 0.98) << n;
    EXPECT_LT(m.hd95_mm, 1.0) << n;
  }
}

TEST(ContourData, ACouchBelowThePatientDoesNotMoveTheContours) {
  // OpenKBP's CTs (the training data) hold little outside the patient; a clinical CT has a
  // couch top below the neck. A 12 mm plate of 200 HU 8 mm below the patient's back moved
  // card 2.0's Larynx to Dice 0.73 and PTV70 to 0.80 (against the CT without it) before the
  // inference set everything away from the body region to air (contour.cpp, step 2b).
  const auto& s = shared_case();
  Image ct = s.ct;
  const Geometry& g = ct.geometry();
  std::int64_t back = 0;  // the most posterior row holding body (j = anterior -> posterior)
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i)
        if (ct.at<std::int16_t>(i, j, k) > -500) back = std::max(back, j);
  const auto rows = [&](double mm) { return static_cast<std::int64_t>(std::ceil(mm / g.spacing[1])); };
  const std::int64_t j0 = back + 1 + rows(8.0), j1 = std::min(g.size[1], j0 + rows(12.0));
  ASSERT_LT(j0, g.size[1]);
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = j0; j < j1; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i) ct.at<std::int16_t>(i, j, k) = 200;
  const auto r = contouring::contour(ct);
  for (const auto& st : s.result.structures) {
    if (st.name == "Body") continue;  // the Body contour has its own couch removal (test_body)
    const auto& m = r.structures.get(st.name).mask;
    EXPECT_EQ(contouring::compare_masks(m, st.mask).dice, 1.0) << st.name;
  }
}

TEST(ContourData, LoadedModelIsReusedAndGivesTheSameContoursAsOneCall) {
  const auto& s = shared_case();
  const contouring::Model model;  // default card, CPU
  EXPECT_EQ(model.card().structures.size(), 10u);
  contouring::ContourOptions o;
  o.structures = {"Mandible", "LeftParotid"};
  for (int call = 0; call < 2; ++call) {  // the same network serves consecutive CTs
    auto r = contouring::contour(s.ct, model, o);
    ASSERT_EQ(r.structures.size(), 2u);
    for (const auto& n : o.structures) {
      auto m = contouring::compare_masks(r.structures.get(n).mask, s.result.structures.get(n).mask);
      EXPECT_EQ(m.dice, 1.0) << n << " call " << call;
    }
  }
  const contouring::Model copy = model;  // copies share the loaded network
  EXPECT_EQ(&copy.impl(), &model.impl());
  EXPECT_THROW(contouring::Model("/nonexistent/card.json"), core::IoError);
}

// The shipped card re-draws the Mandible on the bone the CT shows (model card
// "post_processing"); the same network without it leaves much of the contour off bone.
TEST(ContourData, MandibleIsRedrawnOnBoneWhenTheCardAsksForIt) {
  const auto& s = shared_case();
  const contouring::Model shipped;
  const auto& card = shipped.card();
  auto br = card.bone_refinement.find("Mandible");
  ASSERT_NE(br, card.bone_refinement.end()) << card.card_path << " has no Mandible bone refinement";
  nlohmann::json j;
  std::ifstream(card.card_path) >> j;
  j.erase("post_processing");
  j["file"] = card.model_path;
  test::TempDir t;
  std::ofstream(t.file("plain.json")) << j.dump();
  const contouring::Model plain(t.file("plain.json"));
  contouring::ContourOptions o;
  o.structures = {"Mandible"};
  const Image a = contouring::contour(s.ct, shipped, o).structures.get("Mandible").mask;
  const Image b = contouring::contour(s.ct, plain, o).structures.get("Mandible").mask;
  const Image ct16 = s.ct.cast(core::PixelType::Int16);
  auto on_bone = [&](const Image& m) {
    std::size_t n = 0, bone = 0;
    for (std::size_t v = 0; v < m.num_voxels(); ++v)
      if (m.data<std::uint8_t>()[v]) {
        ++n;
        bone += ct16.data<std::int16_t>()[v] > br->second.min_hu;
      }
    return n ? double(bone) / double(n) : 0.0;
  };
  const Image ref = core::read_image(test::shared_data(kCase + "/Mandible.nii.gz"));
  const double da = contouring::compare_masks(a, ref).dice;
  const double db = contouring::compare_masks(b, ref).dice;
  EXPECT_GT(on_bone(a), on_bone(b) + 0.05)
      << "bone fraction " << on_bone(a) << " vs " << on_bone(b);
  EXPECT_GT(on_bone(a), 0.8);
  EXPECT_GT(da, 0.75) << "refined " << da << " network alone " << db;
}

// Lowest and highest patient z (LPS, mm) of the mask's voxel centres.
std::pair<double, double> z_extent(const Image& m) {
  const Geometry& g = m.geometry();
  double lo = 1e30, hi = -1e30;
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i)
        if (m.at<std::uint8_t>(i, j, k)) {
          const double z = g.index_to_world({double(i), double(j), double(k)})[2];
          lo = std::min(lo, z);
          hi = std::max(hi, z);
        }
  return {lo, hi};
}

// The card of `model` as JSON, its network file named by absolute path (for edited copies).
nlohmann::json card_json(const contouring::Model& model) {
  nlohmann::json j;
  std::ifstream(model.card().card_path) >> j;
  j["file"] = model.card().model_path;
  return j;
}

TEST(ContourData, ExtentTrimShortensTheStructureAtEachEndInPatientZ) {
  const auto& s = shared_case();
  const contouring::Model shipped;
  nlohmann::json j = card_json(shipped);
  j["post_processing"].erase("Larynx");
  test::TempDir t;
  std::ofstream(t.file("plain.json")) << j.dump();
  j["post_processing"]["Larynx"] = {{"trim_inferior_mm", 5.0}, {"trim_superior_mm", 7.5}};
  std::ofstream(t.file("trim.json")) << j.dump();
  j["post_processing"]["Larynx"] = {{"trim_inferior_mm", 400.0}, {"trim_superior_mm", 400.0}};
  std::ofstream(t.file("long.json")) << j.dump();
  const contouring::Model plain(t.file("plain.json")), trim(t.file("trim.json"));
  ASSERT_EQ(trim.card().extent_trim.count("Larynx"), 1u);
  contouring::ContourOptions o;
  o.structures = {"Larynx"};
  const double dz = s.ct.geometry().spacing[2];
  Image head_first_plain;
  for (const Image& ct : {s.ct, reorient(s.ct)}) {  // head first, and flipped/permuted axes
    const Image a = contouring::contour(ct, plain, o).structures.get("Larynx").mask;
    if (head_first_plain.empty()) head_first_plain = a;
    const Image b = contouring::contour(ct, trim, o).structures.get("Larynx").mask;
    ASSERT_GT(a.count_nonzero(), 0u);
    ASSERT_GT(b.count_nonzero(), 0u);
    EXPECT_EQ(core::mask_subtract(b, a).count_nonzero(), 0u) << "the trim only removes";
    const auto [alo, ahi] = z_extent(a);
    const auto [blo, bhi] = z_extent(b);
    // Whole slices go: the first kept centre lies at least the trim and less than the trim
    // plus one slice from the old end, on the inferior (-z) and superior (+z) side.
    EXPECT_GE(blo - alo, 5.0 - 1e-3);
    EXPECT_LT(blo - alo, 5.0 + dz);
    EXPECT_GE(ahi - bhi, 7.5 - 1e-3);
    EXPECT_LT(ahi - bhi, 7.5 + dz);
  }
  // Trims longer than the structure leave it whole instead of emptying it.
  const contouring::Model long_trim(t.file("long.json"));
  const Image c = contouring::contour(s.ct, long_trim, o).structures.get("Larynx").mask;
  EXPECT_EQ(c.count_nonzero(), head_first_plain.count_nonzero());
}

// A structure's own threshold (model card post_processing) cuts only that structure: a higher
// cut gives a part of the default contour, the other structures are unchanged.
TEST(ContourData, PerStructureThresholdCutsOnlyThatStructure) {
  const auto& s = shared_case();
  const contouring::Model shipped;
  nlohmann::json j = card_json(shipped);
  j["post_processing"]["Brainstem"] = {{"threshold", 0.9}};
  test::TempDir t;
  std::ofstream(t.file("cut.json")) << j.dump();
  const contouring::Model cut(t.file("cut.json"));
  ASSERT_EQ(cut.card().threshold_of("Brainstem"), 0.9);
  contouring::ContourOptions o;
  o.structures = {"Brainstem", "SpinalCord"};
  const auto a = contouring::contour(s.ct, shipped, o).structures;
  const auto b = contouring::contour(s.ct, cut, o).structures;
  const Image& ba = a.get("Brainstem").mask;
  const Image& bb = b.get("Brainstem").mask;
  ASSERT_GT(bb.count_nonzero(), 0u);
  EXPECT_LT(bb.count_nonzero(), ba.count_nonzero());
  EXPECT_EQ(core::mask_subtract(bb, ba).count_nonzero(), 0u) << "a higher cut only removes";
  const Image& sa = a.get("SpinalCord").mask;
  const Image& sb = b.get("SpinalCord").mask;
  EXPECT_EQ(core::mask_subtract(sa, sb).count_nonzero() + core::mask_subtract(sb, sa).count_nonzero(), 0u);
}

TEST(ContourData, ChestCtIsFlaggedOutOfScope) {
  Image lung = core::read_image(test::shared_data("lung_pair/3DCT_lung_baseline.mha"));
  contouring::ContourOptions o;
  o.structures = {"Brainstem", "Mandible", "SpinalCord"};
  auto r = contouring::contour(lung, o);
  EXPECT_FALSE(r.in_scope);
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_NE(r.warnings.front().find("scope"), std::string::npos);
}

// What a reviewer must be told: a CT in another intensity convention (CT numbers stored without
// the -1024 rescale intercept, air at 0) and organs cut off by the end of a short scan.
TEST(ContourData, ACtNotInHounsfieldUnitsAndOrgansCutByTheScanEndAreFlagged) {
  const auto& s = shared_case();
  for (const auto& q : s.result.quality)  // the whole neck: nothing cut off
    for (const auto& f : q.flags) EXPECT_EQ(f.find("slice of the CT"), std::string::npos) << q.name << ": " << f;
  Image raw = s.ct.clone();
  for (std::size_t v = 0; v < raw.num_voxels(); ++v) raw.data<std::int16_t>()[v] = static_cast<std::int16_t>(raw.data<std::int16_t>()[v] + 1024);
  contouring::ContourOptions o;
  o.structures = {"Brainstem", "Mandible"};
  auto r = contouring::contour(raw, o);
  EXPECT_FALSE(r.in_scope);
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_NE(r.warnings.front().find("Hounsfield units"), std::string::npos) << r.warnings.front();
  // The scan stops in the neck (slices 60 and up of pt_201): the larynx starts on its first slice.
  const Geometry& g = s.ct.geometry();
  Geometry h = g;
  h.size[2] = g.size[2] - 60;
  h.origin = g.index_to_world({0.0, 0.0, 60.0});
  Image cut(h, core::PixelType::Int16);
  for (std::int64_t k = 0; k < h.size[2]; ++k)
    for (std::int64_t j = 0; j < h.size[1]; ++j)
      for (std::int64_t i = 0; i < h.size[0]; ++i) cut.at<std::int16_t>(i, j, k) = s.ct.at<std::int16_t>(i, j, k + 60);
  o.structures = {"Larynx", "SpinalCord"};
  r = contouring::contour(cut, o);
  ASSERT_EQ(r.quality.size(), 2u);
  bool larynx_cut = false;
  for (const auto& f : r.quality[0].flags) larynx_cut |= f.find("reaches the first slice of the CT") != std::string::npos;
  EXPECT_TRUE(larynx_cut) << r.quality[0].summary();
  for (const auto& f : r.quality[1].flags) EXPECT_EQ(f.find("slice of the CT"), std::string::npos) << "the cord always runs on";
}

// A prediction that falls apart is flagged. Validation patient 221's CT holds image data only in
// a box around the target region, and the network's SpinalCord breaks where the box ends: a
// serial organ keeps its pieces (keeping the largest dropped 42 % of it, Dice 0.02 against its
// reference; all pieces: 0.36) and says so. Patient 203's CT holds image data only inside the
// delineated structures below the neck: its Mandible prediction falls apart and the largest
// part is kept (about 20 % dropped). The whole neck of pt_201 keeps its organs in one piece.
TEST(ContourData, APredictionInPiecesIsFlagged) {
  const auto& s = shared_case();
  for (const auto& q : s.result.quality) {
    if (q.name == "Body") continue;
    EXPECT_GT(q.kept_fraction, 0.95) << q.name;
    EXPECT_LE(q.pieces, 1u) << q.name;
    for (const auto& f : q.flags) EXPECT_EQ(f.find("pieces"), std::string::npos) << q.name << ": " << f;
  }
  auto flagged = [](const contouring::StructureQuality& q, const std::string& text) {
    for (const auto& f : q.flags)
      if (f.find(text) != std::string::npos) return true;
    return false;
  };
  contouring::ContourOptions o;
  o.structures = {"SpinalCord"};
  auto r = contouring::contour(core::read_image(test::shared_data("openkbp/validation/pt_221/ct.nii.gz")), o);
  ASSERT_EQ(r.quality.size(), 1u);
  EXPECT_GE(r.quality[0].pieces, 2u) << r.quality[0].summary();
  EXPECT_GT(r.quality[0].kept_fraction, 0.95) << r.quality[0].summary();
  EXPECT_TRUE(flagged(r.quality[0], " pieces: all kept")) << r.quality[0].summary();
  o.structures = {"Mandible"};
  r = contouring::contour(core::read_image(test::shared_data("openkbp/validation/pt_203/ct.nii.gz")), o);
  ASSERT_EQ(r.quality.size(), 1u);
  EXPECT_LT(r.quality[0].kept_fraction, 0.9) << r.quality[0].summary();
  EXPECT_EQ(r.quality[0].pieces, 0u) << "counted for serial organs only";
  EXPECT_TRUE(flagged(r.quality[0], "in pieces: ")) << r.quality[0].summary();
}

TEST(ContourData, CommandWritesRtStructFromDicomAndMasksFromNifti) {
  test::TempDir t;
  const auto& s = shared_case();
  rtstruct::write_ct_series(s.ct, t.file("ct"));
  auto r = test::run_command(test::isoline_bin() + " contour " + t.file("ct") + " --out " +
                             t.file("rs.dcm") + " --structures Mandible,Brainstem,Body --masks " +
                             t.file("masks") + " --report " + t.file("rs.html") + " --preview " +
                             t.file("rs.png"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  {  // the first-look page and picture
    std::ifstream h(t.file("rs.html"));
    const std::string html((std::istreambuf_iterator<char>(h)), std::istreambuf_iterator<char>());
    for (const char* want :
         {"Mandible", "Brainstem", "Body", "data:image/png;base64,", "to be reviewed", "Axial slices"})
      EXPECT_NE(html.find(want), std::string::npos) << want;
    std::ifstream p(t.file("rs.png"), std::ios::binary);
    char magic[8] = {};
    p.read(magic, 8);
    EXPECT_EQ(std::string(magic + 1, 3), "PNG");
    EXPECT_GT(std::filesystem::file_size(t.file("rs.png")), 10000u);
  }
  auto badreport = test::run_command(test::isoline_bin() + " contour " + t.file("ct") + " --out " +
                                     t.file("rs4.dcm") + " --report " + t.file("rs.txt"));
  EXPECT_NE(badreport.exit_code, 0);
  EXPECT_NE(badreport.output.find("--report names an .html file"), std::string::npos) << badreport.output;
  EXPECT_FALSE(std::filesystem::exists(t.file("rs4.dcm")));
  // An output in a directory that does not exist: refused before the CT is read, nothing written.
  auto nodir = test::run_command(test::isoline_bin() + " contour " + t.file("ct") + " --out " +
                                 t.file("rs5.dcm") + " --preview /nonexistent-isoline-dir/p.png");
  EXPECT_EQ(nodir.exit_code, 1) << nodir.output;
  EXPECT_NE(nodir.output.find("/nonexistent-isoline-dir does not exist"), std::string::npos) << nodir.output;
  EXPECT_EQ(nodir.output.find("segment"), std::string::npos) << nodir.output;  // no contouring
  EXPECT_FALSE(std::filesystem::exists(t.file("rs5.dcm")));
  auto rs = rtstruct::read_rtstruct(t.file("rs.dcm"));
  ASSERT_EQ(rs.rois.size(), 3u);
  auto ct = rtstruct::read_ct_series(t.file("ct"));
  auto ras = rtstruct::rasterize(rs, ct.image.geometry());
  auto mand = core::read_image(t.file("masks/Mandible.nii.gz"), core::PixelType::UInt8);
  EXPECT_GT(contouring::compare_masks(ras.get("Mandible").mask, mand).dice, 0.97);
  EXPECT_GT(mand.count_nonzero(), 100u);

  auto bad =
      test::run_command(test::isoline_bin() + " contour " +
                        test::shared_data(kCase + "/ct.nii.gz") + " --out " + t.file("rs2.dcm"));
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("DICOM"), std::string::npos) << bad.output;
  auto missing = test::run_command(test::isoline_bin() + " contour " + t.file("nope.nii.gz") +
                                   " --out " + t.file("m"));
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_NE(missing.output.find("nope.nii.gz"), std::string::npos) << missing.output;
  auto cuda = test::run_command(test::isoline_bin() + " contour " +
                                test::shared_data(kCase + "/ct.nii.gz") + " --out " + t.file("m") +
                                " --device cuda");
  EXPECT_NE(cuda.exit_code, 0);
  EXPECT_NE(cuda.output.find("cuda"), std::string::npos) << cuda.output;
  // A DICOM CT an RT-STRUCT cannot reference (this de-identified series has no Study/Series
  // UIDs) is refused before the network runs, not after, and nothing is written.
  auto nouid = test::run_command(test::isoline_bin() + " contour " +
                                 test::shared_data("jpeg2000_ct") + " --out " + t.file("rs3.dcm"));
  EXPECT_EQ(nouid.exit_code, 1) << nouid.output;
  EXPECT_NE(nouid.output.find("lacks its Study Instance UID"), std::string::npos) << nouid.output;
  EXPECT_EQ(nouid.output.find("segment"), std::string::npos) << nouid.output;  // no contouring
  EXPECT_FALSE(std::filesystem::exists(t.file("rs3.dcm")));
  // Nor can an RT-DOSE lie in that series' study: `isoline run` and `isoline plan` say so
  // first (before reading the structures, here an empty folder, and before any planning).
  std::filesystem::create_directories(t.file("empty"));
  for (const std::string& cmd :
       {" run " + test::shared_data("jpeg2000_ct") + " --structures ",
        " plan --ct " + test::shared_data("jpeg2000_ct") + " --structures "}) {
    auto nodose =
        test::run_command(test::isoline_bin() + cmd + t.file("empty") + " --out " + t.file("p3"));
    EXPECT_EQ(nodose.exit_code, 1) << nodose.output;
    EXPECT_NE(nodose.output.find("RD.dcm"), std::string::npos) << nodose.output;
    EXPECT_NE(nodose.output.find("lacks its Study Instance UID"), std::string::npos)
        << nodose.output;
    EXPECT_FALSE(std::filesystem::exists(t.file("p3")));
  }
  // `run` that would contour: the RT-STRUCT's needs first, every missing UID named (session 18
  // audit: `contour` and `run` named different ones), and what to do about it.
  auto norun = test::run_command(test::isoline_bin() + " run " + test::shared_data("jpeg2000_ct") + " --out " +
                                 t.file("p4"));
  EXPECT_EQ(norun.exit_code, 1) << norun.output;
  EXPECT_NE(norun.output.find("RS.dcm: the CT series lacks its Study Instance UID, Series Instance UID, SOP "
                              "Instance UIDs (all 20 of 20 slices)"),
            std::string::npos)
      << norun.output;
  EXPECT_NE(norun.output.find("convert the CT to NIfTI first"), std::string::npos) << norun.output;
  EXPECT_FALSE(std::filesystem::exists(t.file("p4")));
}
