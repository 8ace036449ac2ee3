// RT-STRUCT writer/reader and RT-DOSE writer/reader: exactness, references, orientation,
// judges (dciodvfy, pydicom).
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>

#include <gtest/gtest.h>

#include "isoline/core/error.h"
#include "isoline/core/io.h"
#include "isoline/rtstruct/ct_series.h"
#include "isoline/rtstruct/rtdose.h"
#include "isoline/rtstruct/rtstruct.h"
#include "rtstruct/src/contour_trace.h"
#include "tests/rtstruct/rt_test_util.h"

namespace fs = std::filesystem;
using namespace isoline;
using isoline::test::TempDir;

namespace {

core::Geometry grid() {
  core::Geometry g;
  g.size = {64, 56, 16};
  g.spacing = {1.5, 1.25, 2.0};
  g.origin = {-47.25, -35.0, -14.0};
  return g;
}

// Rasterizes traced loops back with the even-odd rule.
std::vector<std::uint8_t> retrace(const std::vector<std::uint8_t>& m, int nx, int ny,
                                  bool keyhole) {
  auto loops = rtstruct::detail::trace_slice(m.data(), nx, ny);
  double s = 1.0;
  if (keyhole) loops = rtstruct::detail::keyhole(loops), s = 0.5;
  std::vector<std::uint8_t> out(m.size(), 0);
  for (auto& l : loops) {
    std::vector<std::array<double, 2>> p;
    for (auto& c : l.corners) p.push_back({c[0] * s - 0.5, c[1] * s - 0.5});
    rtstruct::detail::xor_polygon(out.data(), nx, ny, p);
  }
  return out;
}

}  // namespace

TEST(ContourTrace, RandomMasksRasterizeBackExactly) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    const int nx = 3 + rng() % 30, ny = 3 + rng() % 30;
    const double p = 0.2 + 0.6 * (rng() % 100) / 100.0;
    std::vector<std::uint8_t> m(nx * ny);
    for (auto& v : m) v = (rng() % 1000) < p * 1000 ? 1 : 0;
    ASSERT_EQ(retrace(m, nx, ny, false), m) << "trial " << trial;
    ASSERT_EQ(retrace(m, nx, ny, true), m) << "keyhole trial " << trial;
  }
}

TEST(ContourTrace, HolesAreSeparateInnerLoopsAndLoneVoxelsKept) {
  // 5x5 ring with a 1-voxel hole, plus a lone voxel and two diagonal voxels.
  const int nx = 10, ny = 8;
  std::vector<std::uint8_t> m(nx * ny, 0);
  for (int y = 1; y <= 3; ++y)
    for (int x = 1; x <= 3; ++x) m[y * nx + x] = !(x == 2 && y == 2);
  m[6 * nx + 8] = 1;
  m[5 * nx + 5] = 1;
  m[6 * nx + 6] = 1;
  auto loops = rtstruct::detail::trace_slice(m.data(), nx, ny);
  int outer = 0, holes = 0;
  for (auto& l : loops) (l.area2 > 0 ? outer : holes)++;
  EXPECT_EQ(outer, 4);  // ring, lone voxel, two diagonal voxels apart
  EXPECT_EQ(holes, 1);
  for (auto& l : loops) EXPECT_GE(l.corners.size(), 4u);
  auto kh = rtstruct::detail::keyhole(loops);
  EXPECT_EQ(kh.size(), 4u);
}

class RtStructTest : public ::testing::Test {
 protected:
  void SetUp() override {
    core::Image ctimg = test::phantom_ct(grid());
    rtstruct::CtWriteOptions o;
    o.info.patient_name = "Test^Patient";
    o.info.patient_id = "RT001";
    o.info.patient_birth_date = "19700101";
    o.info.patient_sex = "O";
    ct = rtstruct::write_ct_series(ctimg, dir.file("ct"), o);
    set = core::StructureSet(grid());
    set.add("Anatomy", test::anatomy_mask(grid()));
    core::Image lone = core::Image::zeros<std::uint8_t>(grid());
    lone.at<std::uint8_t>(10, 10, 3) = 1;
    lone.at<std::uint8_t>(11, 11, 3) = 1;
    set.add("LoneVoxels", lone);
    set.add("Empty", core::Image::zeros<std::uint8_t>(grid()));
    core::Image body = core::Image::zeros<std::uint8_t>(grid());
    for (std::size_t n = 0; n < body.num_voxels(); ++n)
      body.data<std::uint8_t>()[n] = ctimg.value(n) > -500;
    set.add("BODY", body);
    set.add("AVeryLongStructureNameIndeed", test::anatomy_mask(grid()));
  }
  TempDir dir;
  rtstruct::CtSeries ct;
  core::StructureSet set;
};

TEST_F(RtStructTest, RoundTripGivesBackTheSameVoxels) {
  auto res = rtstruct::write_rtstruct(set, ct, dir.file("rs.dcm"));
  EXPECT_EQ(res.num_rois, 5u);
  auto rs = rtstruct::read_rtstruct(dir.file("rs.dcm"));
  ASSERT_EQ(rs.rois.size(), 5u);
  EXPECT_EQ(rs.frame_of_reference_uid, ct.frame_of_reference_uid);
  EXPECT_EQ(rs.info.patient_id, "RT001");
  EXPECT_EQ(rs.info.study_instance_uid, ct.info.study_instance_uid);
  auto back = rtstruct::rasterize(rs, ct.image.geometry());
  for (std::size_t i = 0; i < set.size(); ++i) {
    EXPECT_EQ(test::count_diff(back[i].mask, set[i].mask), 0u) << set[i].name;
    EXPECT_GT(set[i].mask.count_nonzero() + (set[i].name == "Empty"), 0u);
  }
  EXPECT_EQ(back[0].type, core::StructureType::Organ);
  EXPECT_EQ(back[3].type, core::StructureType::External);
  EXPECT_EQ(back[4].name, "AVeryLongStructu");
  EXPECT_EQ(back[0].color, set[0].color);
}

TEST_F(RtStructTest, KeyholeOptionRoundTrips) {
  rtstruct::RtStructWriteOptions o;
  o.keyhole = true;
  rtstruct::write_rtstruct(set, ct, dir.file("rs.dcm"), o);
  auto back = rtstruct::rasterize(rtstruct::read_rtstruct(dir.file("rs.dcm")), ct.image.geometry());
  for (std::size_t i = 0; i < set.size(); ++i)
    EXPECT_EQ(test::count_diff(back[i].mask, set[i].mask), 0u);
}

TEST_F(RtStructTest, NameMapAndUniqueCutNames) {
  rtstruct::RtStructWriteOptions o;
  o.name_map = {{"Anatomy", "AVeryLongStructureNameToo"}};
  auto res = rtstruct::write_rtstruct(set, ct, dir.file("rs.dcm"), o);
  auto rs = rtstruct::read_rtstruct(dir.file("rs.dcm"));
  EXPECT_EQ(rs.rois[0].name, "AVeryLongStructu");
  EXPECT_EQ(rs.rois[4].name, "AVeryLongStruc_2");
  for (auto& r : rs.rois) EXPECT_LE(r.name.size(), 16u);
  EXPECT_FALSE(res.warnings.empty());
}

TEST_F(RtStructTest, ReferencesEveryCtSliceAndPerContourImage) {
  rtstruct::write_rtstruct(set, ct, dir.file("rs.dcm"));
  auto rs = rtstruct::read_rtstruct(dir.file("rs.dcm"));
  ASSERT_EQ(rs.contour_image_uids.size(), ct.slices.size());
  std::set<std::string> uids;
  for (auto& s : ct.slices) uids.insert(s.sop_instance_uid);
  for (auto& u : rs.contour_image_uids) EXPECT_TRUE(uids.count(u));
  EXPECT_EQ(rs.referenced_series_instance_uid, ct.series_instance_uid);
  for (auto& r : rs.rois) {
    EXPECT_EQ(r.generation_algorithm, "AUTOMATIC");
    EXPECT_TRUE(r.has_color);
    EXPECT_FALSE(r.interpreted_type.empty() && r.name != "Empty");
    for (auto& c : r.contours) {
      ASSERT_EQ(c.referenced_sop_instance_uids.size(), 1u);
      // The contour lies in the plane of the slice it references.
      auto it = std::find_if(ct.slices.begin(), ct.slices.end(), [&](auto& s) {
        return s.sop_instance_uid == c.referenced_sop_instance_uids[0];
      });
      ASSERT_NE(it, ct.slices.end());
      EXPECT_NEAR(c.points[0][2], it->position, 1e-4);
      EXPECT_GE(c.points.size(), 3u);
      EXPECT_EQ(c.geometric_type, "CLOSED_PLANAR");
    }
  }
}

// ROIs Isoline did not make (the physician's targets of `run --targets`) keep their own
// generation algorithm and carry no derivation algorithm ("Artificial Intelligence").
TEST_F(RtStructTest, GivenRoisKeepTheirGenerationAlgorithmWithoutTheDerivation) {
  rtstruct::RtStructWriteOptions o;
  o.given_rois = {{"Anatomy", "MANUAL"}, {"LoneVoxels", "drawn by hand"}};
  rtstruct::write_rtstruct(set, ct, dir.file("rs.dcm"), o);
  std::map<std::string, std::string> alg;
  for (const auto& r : rtstruct::read_rtstruct(dir.file("rs.dcm")).rois) alg[r.name] = r.generation_algorithm;
  EXPECT_EQ(alg["Anatomy"], "MANUAL");
  EXPECT_EQ(alg["LoneVoxels"], "") << "not a defined term: written empty (Type 2, unknown)";
  EXPECT_EQ(alg["BODY"], "AUTOMATIC");
  // ROIDerivationAlgorithmIdentificationSequence (3006,0037) on the three others only.
  auto dump = test::run_command("dcmdump '" + dir.file("rs.dcm") + "' | grep -c '(3006,0037)'");
  EXPECT_EQ(dump.output.substr(0, dump.output.find('\n')), "3") << dump.output;
  EXPECT_EQ(test::dciodvfy_errors(dir.file("rs.dcm")), "");
}

TEST_F(RtStructTest, DsValuesAtMost16CharsAndDciodvfyClean) {
  rtstruct::write_rtstruct(set, ct, dir.file("rs.dcm"));
  EXPECT_EQ(test::dciodvfy_errors(dir.file("rs.dcm")), "");
  auto dump = test::run_command("dcmdump -M +L '" + dir.file("rs.dcm") +
                                "' | grep -E '^ *\\(3006,0050\\)'");
  ASSERT_EQ(dump.exit_code, 0);
  // Every value between brackets, split at backslashes.
  std::size_t longest = 0;
  for (std::size_t a = dump.output.find('['); a != std::string::npos;
       a = dump.output.find('[', a + 1)) {
    const auto b = dump.output.find(']', a);
    std::string v = dump.output.substr(a + 1, b - a - 1);
    std::size_t s = 0;
    while (s <= v.size()) {
      auto e = v.find('\\', s);
      if (e == std::string::npos) e = v.size();
      longest = std::max(longest, e - s);
      s = e + 1;
    }
  }
  EXPECT_GT(longest, 0u);
  EXPECT_LE(longest, 16u);
}

TEST_F(RtStructTest, ApprovalModuleIsValid) {
  rtstruct::RtStructWriteOptions o;
  o.approval_status = "APPROVED";
  EXPECT_THROW(rtstruct::write_rtstruct(set, ct, dir.file("rs.dcm"), o), core::InvalidInput);
  o.reviewer_name = "Curie^Marie";
  rtstruct::write_rtstruct(set, ct, dir.file("rs.dcm"), o);
  EXPECT_EQ(test::dciodvfy_errors(dir.file("rs.dcm")), "");
  auto d = test::run_command("dcmdump +P 300e,0002 +P 300e,0008 '" + dir.file("rs.dcm") + "'");
  EXPECT_NE(d.output.find("APPROVED"), std::string::npos) << d.output;
  EXPECT_NE(d.output.find("Curie^Marie"), std::string::npos) << d.output;
}

// StructureSetDescription (3006,0006, ST): written when given (cut to 1024 characters, with a
// warning), absent otherwise; the file stays valid.
TEST_F(RtStructTest, StructureSetDescriptionWhenGiven) {
  rtstruct::write_rtstruct(set, ct, dir.file("plain.dcm"));
  auto d = test::run_command("dcmdump +P 3006,0006 '" + dir.file("plain.dcm") + "'");
  EXPECT_EQ(d.output.find("StructureSetDescription"), std::string::npos) << d.output;
  rtstruct::RtStructWriteOptions o;
  o.structure_set_description = "Isoline auto-contours, model m 2.0.0: review required; WARNING: outside scope?";
  auto res = rtstruct::write_rtstruct(set, ct, dir.file("rs.dcm"), o);
  EXPECT_EQ(test::dciodvfy_errors(dir.file("rs.dcm")), "");
  d = test::run_command("dcmdump +L +P 3006,0006 '" + dir.file("rs.dcm") + "'");
  EXPECT_NE(d.output.find("(3006,0006) ST [Isoline auto-contours, model m 2.0.0: review required; WARNING: "
                          "outside scope?]"),
            std::string::npos)
      << d.output;
  for (const auto& w : res.warnings) EXPECT_EQ(w.find("description"), std::string::npos) << w;
  o.structure_set_description = std::string(1100, 'x');
  res = rtstruct::write_rtstruct(set, ct, dir.file("long.dcm"), o);
  bool cut = false;
  for (const auto& w : res.warnings) cut |= w.find("structure set description cut to 1024") != std::string::npos;
  EXPECT_TRUE(cut);
  d = test::run_command("dcmdump +P 3006,0006 '" + dir.file("long.dcm") + "'");
  EXPECT_NE(d.output.find("# 1024,"), std::string::npos) << d.output;
}

// A full disk or a file size limit while DICOM is written. DCMTK's saveFile drops the error of
// its last buffer when it closes the file: with the limit a little below the file's size it
// returned good and a short RS.dcm took the target's name (exit 0). Now every DICOM writer
// (RT-STRUCT, RT-DOSE, CT series) throws IoError naming the file and "File too large", keeps
// an older file under the name and leaves no temporary.
TEST_F(RtStructTest, ADicomWriteThatRunsOutOfSpaceIsAnErrorAndKeepsTheOldFile) {
  rtstruct::write_rtstruct(set, ct, dir.file("ref.dcm"));
  const auto rs_size = fs::file_size(dir.file("ref.dcm"));
  core::Image dose(grid(), core::PixelType::Float32);
  for (std::size_t n = 0; n < dose.num_voxels(); ++n) dose.data<float>()[n] = float(n % 70);
  rtstruct::write_rtdose(dose, ct, dir.file("ref_rd.dcm"));
  const auto rd_size = fs::file_size(dir.file("ref_rd.dcm"));
  auto expect_refused = [&](const std::string& target, const std::string& what,
                            const std::function<void()>& write) {
    try {
      write();
      ADD_FAILURE() << what << ": no error";
    } catch (const core::IoError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(target + ": cannot write: File too large"), std::string::npos) << m;
      EXPECT_EQ(m.find(".tmp-"), std::string::npos) << m;
    }
  };
  std::ofstream(dir.file("rs.dcm")) << "previous";
  std::ofstream(dir.file("rd.dcm")) << "previous";
  for (const std::uintmax_t less : {std::uintmax_t(100), std::uintmax_t(4000)}) {
    {
      test::FileSizeLimit lim(rs_size - less);
      expect_refused(dir.file("rs.dcm"), "RT-STRUCT",
                     [&] { rtstruct::write_rtstruct(set, ct, dir.file("rs.dcm")); });
    }
    {
      test::FileSizeLimit lim(rd_size - less);
      expect_refused(dir.file("rd.dcm"), "RT-DOSE",
                     [&] { rtstruct::write_rtdose(dose, ct, dir.file("rd.dcm")); });
    }
    EXPECT_EQ(test::slurp(dir.file("rs.dcm")), "previous");
    EXPECT_EQ(test::slurp(dir.file("rd.dcm")), "previous");
  }
  {
    const auto slice = fs::file_size(ct.slices[0].file);
    test::FileSizeLimit lim(slice - 100);
    rtstruct::CtWriteOptions o;
    expect_refused(dir.file("ct2") + "/CT0001.dcm", "CT series",
                   [&] { rtstruct::write_ct_series(ct.image, dir.file("ct2"), o); });
  }
  EXPECT_FALSE(fs::exists(dir.file("ct2")));
  EXPECT_TRUE(test::temporaries_in(dir.str()).empty());
}

TEST_F(RtStructTest, PydicomFindsEveryReferencedInstance) {
  rtstruct::write_rtstruct(set, ct, dir.file("rs.dcm"));
  const std::string script =
      std::string(ISOLINE_SOURCE_DIR) + "/tests/rtstruct/check_references.py";
  auto r = test::run_command("/usr/bin/python3 '" + script + "' '" + dir.file("rs.dcm") + "' '" +
                             dir.file("ct") + "'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("OK"), std::string::npos) << r.output;
}

TEST_F(RtStructTest, MaskOffTheCtGridIsRefused) {
  core::Geometry g = grid();
  g.origin[0] += 0.5;
  core::StructureSet other(g);
  other.add("X", test::anatomy_mask(g));
  EXPECT_THROW(rtstruct::write_rtstruct(other, ct, dir.file("rs.dcm")), core::InvalidInput);
  EXPECT_FALSE(fs::exists(dir.file("rs.dcm")));
}

TEST(RtStructRead, MalformedInputsGiveClearErrors) {
  TempDir t;
  EXPECT_THROW(rtstruct::read_rtstruct(t.file("none.dcm")), core::IoError);
  std::ofstream(t.file("junk.dcm")) << "junk";
  EXPECT_THROW(rtstruct::read_rtstruct(t.file("junk.dcm")), core::IoError);
  auto ct = rtstruct::write_ct_series(test::phantom_ct(grid()), t.file("ct"));
  try {
    rtstruct::read_rtstruct(ct.slices[0].file);
    ADD_FAILURE();
  } catch (const core::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("not an RT Structure Set"), std::string::npos) << e.what();
  }
  core::StructureSet s(grid());
  s.add("A", test::anatomy_mask(grid()));
  rtstruct::write_rtstruct(s, ct, t.file("rs.dcm"));
  auto r = test::run_command(
      "dcmodify -nb -m \"(3006,0039)[0].(3006,0040)[0].(3006,0050)=1\\\\2\\\\3\\\\4\" '" +
      t.file("rs.dcm") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  try {
    rtstruct::read_rtstruct(t.file("rs.dcm"));
    ADD_FAILURE();
  } catch (const core::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("multiple of 3"), std::string::npos) << e.what();
  }
  r = test::run_command(
      "dcmodify -nb -m \"(3006,0039)[0].(3006,0040)[0].(3006,0050)=1\\\\abc\\\\3\" '" +
      t.file("rs.dcm") + "'");
  EXPECT_THROW(rtstruct::read_rtstruct(t.file("rs.dcm")), core::InvalidInput);
  fs::resize_file(t.file("rs.dcm"), fs::file_size(t.file("rs.dcm")) / 2);
  EXPECT_THROW(rtstruct::read_rtstruct(t.file("rs.dcm")), core::Error);
}

// The same anatomy stored HFS, FFS, with flipped row/column directions and reversed slice
// order must give identical masks in patient space.
TEST(RtStructOrientation, SameAnatomyAnyStorageGivesIdenticalMasks) {
  TempDir t;
  const core::Geometry ref = grid();
  struct Variant {
    std::string name, position;
    core::Mat3 dir;
    bool reverse_files;
  };
  // Each direction keeps the same voxel centres (the grid is symmetric about its centre
  // after the origin is moved to the first voxel of the flipped axes).
  const std::vector<Variant> variants = {
      {"HFS", "HFS", {1, 0, 0, 0, 1, 0, 0, 0, 1}, false},
      {"FFS", "FFS", {-1, 0, 0, 0, 1, 0, 0, 0, -1}, false},
      {"HFP", "HFP", {-1, 0, 0, 0, -1, 0, 0, 0, 1}, false},
      {"FFP", "FFP", {1, 0, 0, 0, -1, 0, 0, 0, -1}, false},
      {"flip_rows", "HFS", {1, 0, 0, 0, -1, 0, 0, 0, 1}, false},
      {"flip_cols", "HFS", {-1, 0, 0, 0, 1, 0, 0, 0, 1}, false},
      {"reversed", "HFS", {1, 0, 0, 0, 1, 0, 0, 0, -1}, true},
  };
  const core::Image want = test::anatomy_mask(ref);
  for (const auto& v : variants) {
    core::Geometry g = ref;
    g.direction = v.dir;
    // First voxel = the reference voxel at the far end of each flipped axis.
    core::Vec3 far{0, 0, 0};
    for (int a = 0; a < 3; ++a) far[a] = v.dir[a * 3 + a] < 0 ? double(ref.size[a] - 1) : 0.0;
    g.origin = ref.index_to_world(far);
    const core::Image ctimg = test::phantom_ct(g);
    rtstruct::CtWriteOptions o;
    o.patient_position = v.position;
    o.reverse_instance_numbers = v.reverse_files;
    rtstruct::write_ct_series(ctimg, t.file(v.name + "/ct"), o);
    // As a user would: read the CT back, make masks on its grid, write, read, rasterize.
    auto ct = rtstruct::read_ct_series(t.file(v.name + "/ct"));
    EXPECT_EQ(ct.patient_position, v.position);
    core::StructureSet s(ct.image.geometry());
    s.add("Anatomy", test::anatomy_mask(ct.image.geometry()));
    rtstruct::write_rtstruct(s, ct, t.file(v.name + "/rs.dcm"));
    auto back = rtstruct::rasterize(rtstruct::read_rtstruct(t.file(v.name + "/rs.dcm")), ref);
    EXPECT_EQ(test::count_diff(back[0].mask, want), 0u) << v.name;
    // Independent reader: plastimatch rasterizes our file on the CT as it reads it; its
    // mask must equal the anatomy sampled on its own grid (no mirroring, no shift).
    auto r = test::run_command("cd '" + t.file(v.name) +
                               "' && plastimatch convert --input rs.dcm --xor-contours "
                               "--referenced-ct ct --output-prefix pl --prefix-format nrrd");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const core::Image pl =
        core::read_image(t.file(v.name + "/pl/Anatomy.nrrd"), core::PixelType::UInt8);
    const core::Image pl_want = test::anatomy_mask(pl.geometry());
    EXPECT_EQ(test::count_diff(pl, pl_want), 0u) << v.name << "\n" << pl.geometry().describe();
    EXPECT_GT(want.count_nonzero(), 500u);
  }
}

TEST(RtDose, RoundTripScalingAndDciodvfy) {
  TempDir t;
  auto ct = rtstruct::write_ct_series(test::phantom_ct(grid()), t.file("ct"));
  core::Geometry dg = grid();
  dg.size = {20, 18, 7};
  dg.spacing = {3, 3, 4};
  dg.direction = {1, 0, 0, 0, 1, 0, 0, 0, -1};  // left-handed: written reversed
  core::Image dose = core::Image::zeros<float>(dg);
  for (std::size_t n = 0; n < dose.num_voxels(); ++n)
    dose.data<float>()[n] = 0.01f * (n % 997) + (n % 3 ? 0 : 60.0f);
  rtstruct::RtDoseWriteOptions o;
  o.referenced_plan_sop_instance_uid = rtstruct::generate_uid();
  auto w = rtstruct::write_rtdose(dose, ct, t.file("rd.dcm"), o);
  EXPECT_LT(w.max_quantization_error_gy, 1e-7);
  // dciodvfy (dicom3tools 1.00) aborts on any 32-bit pixel data (an assertion in its
  // OW encoding code), so it judges the 16-bit variant, written by the same code; the
  // 32-bit file is judged by pydicom below.
  rtstruct::RtDoseWriteOptions o16 = o;
  o16.bits_allocated = 16;
  auto w16 = rtstruct::write_rtdose(dose, ct, t.file("rd16.dcm"), o16);
  EXPECT_LT(w16.max_quantization_error_gy, 1e-3);
  EXPECT_EQ(test::dciodvfy_errors(t.file("rd16.dcm")), "");
  {
    auto r16 = rtstruct::read_rtdose(t.file("rd16.dcm"));
    double worst = 0;
    for (std::size_t n = 0; n < r16.dose.num_voxels(); ++n)
      worst = std::max(worst, std::fabs(r16.dose.value(n) - 0.0));
    EXPECT_NEAR(worst, 69.96, 0.01);
  }
  auto py = test::run_command(
      "/usr/bin/python3 -c \"import pydicom,numpy as np; d=pydicom.dcmread('" + t.file("rd.dcm") +
      "'); a=d.pixel_array; assert d.BitsAllocated==32 and d.DoseUnits=='GY' and "
      "d.DoseType=='PHYSICAL'; "
      "g=[float(v) for v in d.GridFrameOffsetVector]; assert g[0]==0 and "
      "d.FrameIncrementPointer==0x3004000C; "
      "print('MAX %.5f' % (a.max()*float(d.DoseGridScaling)))\"");
  EXPECT_EQ(py.exit_code, 0) << py.output;
  EXPECT_NE(py.output.find("MAX 69.96"), std::string::npos) << py.output;
  auto r = rtstruct::read_rtdose(t.file("rd.dcm"));
  EXPECT_EQ(r.dose_units, "GY");
  EXPECT_EQ(r.dose_type, "PHYSICAL");
  EXPECT_EQ(r.frame_of_reference_uid, ct.frame_of_reference_uid);
  EXPECT_EQ(r.referenced_plan_sop_instance_uid, o.referenced_plan_sop_instance_uid);
  const auto& rg = r.dose.geometry();
  for (std::int64_t k = 0; k < rg.size[2]; ++k)
    for (std::int64_t j = 0; j < rg.size[1]; ++j)
      for (std::int64_t i = 0; i < rg.size[0]; ++i) {
        const core::Vec3 q =
            dg.world_to_index(rg.index_to_world({double(i), double(j), double(k)}));
        ASSERT_NEAR(r.dose.at<float>(i, j, k),
                    dose.at<float>(std::llround(q[0]), std::llround(q[1]), std::llround(q[2])),
                    1e-5);
      }
  auto dump = test::run_command("dcmdump +P 3004,000c +P 3004,000e '" + t.file("rd.dcm") + "'");
  EXPECT_NE(dump.output.find("[0\\4\\8"), std::string::npos) << dump.output;
  // Without a plan the only dciodvfy finding is the absent ReferencedRTPlanSequence
  // (Type 1C for DoseSummationType PLAN): by design, the TPS asks to link the plan.
  rtstruct::RtDoseWriteOptions noplan = o16;
  noplan.referenced_plan_sop_instance_uid.clear();
  rtstruct::write_rtdose(dose, ct, t.file("rd_noplan.dcm"), noplan);
  EXPECT_EQ(test::dciodvfy_errors(t.file("rd_noplan.dcm")),
            "Error - Missing attribute Type 1C Conditional Element=<ReferencedRTPlanSequence> "
            "Module=<RTDose>\n");
  core::Image neg = dose.clone();
  neg.data<float>()[3] = -1;
  EXPECT_THROW(rtstruct::write_rtdose(neg, ct, t.file("bad.dcm")), core::InvalidInput);
  // A CT without its study UID: the error names what is missing, and nothing is written.
  rtstruct::CtSeries nostudy = ct;
  nostudy.info.study_instance_uid.clear();
  try {
    rtstruct::write_rtdose(dose, nostudy, t.file("nostudy.dcm"));
    ADD_FAILURE() << "no error";
  } catch (const core::InvalidInput& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("lacks its Study Instance UID ("), std::string::npos) << what;
  }
  EXPECT_FALSE(std::filesystem::exists(t.file("nostudy.dcm")));
}

TEST(RtStructCharset, PatientNameAndCharacterSetCopiedFromCt) {
  TempDir t;
  rtstruct::CtWriteOptions o;
  o.info.patient_name = "M\xC3\xBCller^J\xC3\xBCrgen";  // UTF-8
  o.info.specific_character_set = "ISO_IR 192";
  auto ct = rtstruct::write_ct_series(test::phantom_ct(grid()), t.file("ct"), o);
  auto back = rtstruct::read_ct_series(t.file("ct"));
  EXPECT_EQ(back.info.patient_name, o.info.patient_name);
  EXPECT_EQ(back.info.specific_character_set, "ISO_IR 192");
  core::StructureSet s(grid());
  s.add("A", test::anatomy_mask(grid()));
  rtstruct::write_rtstruct(s, back, t.file("rs.dcm"));
  auto py = test::run_command(
      "/usr/bin/python3 -c \"import pydicom; d=pydicom.dcmread('" + t.file("rs.dcm") +
      "'); print(str(d.PatientName) == 'M\\u00fcller^J\\u00fcrgen', d.SpecificCharacterSet)\"");
  EXPECT_NE(py.output.find("True ISO_IR 192"), std::string::npos) << py.output;
}

// Isoline's own text (ROI names, label, reviewer, dose comment) is written in the character
// set the file declares (the CT's), one value each, cut by characters: pydicom, which decodes
// by the declared set, reads back what was meant.
TEST(RtStructCharset, OwnTextInTheDeclaredCharacterSetOneValueEach) {
  TempDir t;
  for (const std::string charset : {"ISO_IR 100", "ISO_IR 192"}) {
    rtstruct::CtWriteOptions o;
    o.info.specific_character_set = charset;
    const std::string dir = t.file(charset == "ISO_IR 100" ? "ct100" : "ct192");
    auto ct = rtstruct::write_ct_series(test::phantom_ct(grid()), dir, o);
    core::StructureSet s(grid());
    s.add("R\xC3\xBC" "ckenmark", test::anatomy_mask(grid()));  // UTF-8 "Rückenmark"
    s.add("GTV\\primary", test::anatomy_mask(grid()));
    s.add("\xC3\x84\xC3\x84\xC3\x84\xC3\x84\xC3\x84\xC3\x84\xC3\x84\xC3\x84\xC3\x84\xC3\x84\xC3\x84\xC3\x84\xC3\x84\xC3\x84\xC3\x84\xC3\x84\xC3\x84\xC3\x84",
          test::anatomy_mask(grid()));  // 18 x "Ä": cut to 16 characters, not bytes
    rtstruct::RtStructWriteOptions w;
    w.structure_set_label = "A label longer than sixteen";
    w.approval_status = "APPROVED";
    w.reviewer_name = "Dr^\xC3\x84rztin";
    const std::string rs = dir + "/rs.dcm";
    auto res = rtstruct::write_rtstruct(s, ct, rs, w);
    bool label_warned = false;
    for (const auto& m : res.warnings) label_warned |= m.find("structure set label") != std::string::npos;
    EXPECT_TRUE(label_warned) << "a label cut to 16 characters is said";
    rtstruct::RtDoseWriteOptions d;
    d.dose_comment = std::string(70, 'x') + "\\y";
    core::Image dose = core::Image::zeros<float>(grid());
    rtstruct::write_rtdose(dose, ct, dir + "/rd.dcm", d);
    auto py = test::run_command(
        "/usr/bin/python3 -c \"import pydicom; d=pydicom.dcmread('" + rs +
        "'); n=[str(r.ROIName) for r in d.StructureSetROISequence]; "
        "print(n[0]=='R\\u00fcckenmark', n[1]=='GTV/primary', n[2]=='\\u00c4'*16, "
        "d.StructureSetLabel=='A label longer t', str(d.ReviewerName)=='Dr^\\u00c4rztin', "
        "len(pydicom.dcmread('" + dir + "/rd.dcm').DoseComment), d.SpecificCharacterSet)\"");
    EXPECT_NE(py.output.find("True True True True True 64 " + charset), std::string::npos)
        << charset << ": " << py.output;
    EXPECT_EQ(test::dciodvfy_errors(rs), "") << charset;
  }
}
