// rtstruct on real data: Eclipse RT-STRUCT volumes, JPEG 2000 CT, OpenKBP round trip
// through plastimatch (an independent RT-STRUCT reader).
#include <filesystem>
#include <fstream>
#include <regex>

#include <gtest/gtest.h>

#include "isoline/core/error.h"
#include "isoline/core/io.h"
#include "isoline/rtstruct/ct_series.h"
#include "isoline/rtstruct/rtstruct.h"
#include "tests/rtstruct/rt_test_util.h"

namespace fs = std::filesystem;
using namespace isoline;
using isoline::test::TempDir;

namespace {
std::string squash(std::string s) {
  std::string o;
  for (char c : s)
    if (c != ' ' && c != '_' && c != '-')
      o += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return o;
}
}  // namespace

TEST(RtStructData, EclipseProstateVolumesMatchEclipse) {
  const std::string rs_path = test::shared_data("eclipse_phantoms/RS_EclipseProstate.dcm");
  const std::string csv =
      test::shared_data("eclipse_phantoms/EclipseProstate_DvhTable_Eclipse.csv");
  auto rs = rtstruct::read_rtstruct(rs_path);
  EXPECT_EQ(rs.rois.size(), 16u);
  std::ifstream in(csv);
  std::string header;
  std::getline(in, header);
  const std::regex re("([A-Za-z0-9 _-]+)_DvhArray Value \\(% of ([0-9.]+) cc\\)");
  int checked = 0;
  const core::Geometry grid = rtstruct::contour_grid(rs, 1.0);
  auto set = rtstruct::rasterize(rs, grid);
  for (auto it = std::sregex_iterator(header.begin(), header.end(), re);
       it != std::sregex_iterator(); ++it) {
    const std::string name = (*it)[1];
    const double want = std::stod((*it)[2]);
    const rtstruct::Roi* roi = nullptr;
    for (const auto& r : rs.rois)
      if (squash(r.name) == squash(name)) roi = &r;
    ASSERT_NE(roi, nullptr) << name;
    const core::Structure* s = nullptr;
    for (const auto& x : set)
      if (x.name == roi->name) s = &x;
    ASSERT_NE(s, nullptr);
    const double raster = s->volume_cc();
    const double poly = rtstruct::contour_volume_cc(rs, *roi);
    std::printf(
        "%-16s Eclipse %8.1f cc  rasterized %8.1f cc (%+.2f%%)  polygons %8.1f cc (%+.2f%%)\n",
        name.c_str(), want, raster, 100 * (raster / want - 1), poly, 100 * (poly / want - 1));
    if (want > 5.0) {
      EXPECT_NEAR(raster / want, 1.0, 0.02) << name;
      ++checked;
    }
  }
  EXPECT_GE(checked, 5);
}

TEST(RtStructData, EclipseOntoDoseGrid) {
  auto rs = rtstruct::read_rtstruct(test::shared_data("eclipse_phantoms/RS_EclipseProstate.dcm"));
  const core::Image dose =
      core::read_image(test::shared_data("eclipse_phantoms/EclipseProstate_Dose.nrrd"));
  rtstruct::RasterizeOptions o;
  o.names = {"PTV", "Bladder"};
  auto set = rtstruct::rasterize(rs, dose.geometry(), o);
  ASSERT_EQ(set.size(), 2u);
  // Coarser grid: within 10 % of the polygon volume, and the PTV gets dose.
  for (const auto& s : set) {
    const rtstruct::Roi* roi = nullptr;
    for (const auto& r : rs.rois)
      if (r.name == s.name) roi = &r;
    EXPECT_NEAR(s.volume_cc() / rtstruct::contour_volume_cc(rs, *roi), 1.0, 0.1) << s.name;
  }
  double sum = 0;
  std::size_t n = 0;
  for (std::size_t v = 0; v < dose.num_voxels(); ++v)
    if (set[0].mask.value(v)) sum += dose.value(v), ++n;
  ASSERT_GT(n, 0u);
  EXPECT_GT(sum / n, 0.8 * dose.min_max().second) << "PTV mean dose should be near the maximum";
}

TEST(RtStructData, Jpeg2000CtDecodesLikePydicom) {
  const std::string dir = test::shared_data("jpeg2000_ct");
  auto ct = rtstruct::read_ct_series(dir);
  const auto& g = ct.image.geometry();
  EXPECT_EQ(g.size[0], 512);
  EXPECT_EQ(g.size[1], 512);
  EXPECT_EQ(g.size[2], 20);
  auto [lo, hi] = ct.image.min_max();
  EXPECT_LE(lo, -900);
  EXPECT_GE(hi, 300);
  // Independent decoder: pydicom (its own JPEG 2000 plugin), slice by slice.
  TempDir t;
  const std::string script = std::string(ISOLINE_SOURCE_DIR) + "/tests/rtstruct/decode_hu.py";
  auto r =
      test::run_command("/usr/bin/python3 '" + script + "' '" + dir + "' '" + t.file("raw") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::size_t npx = 512 * 512;
  std::size_t differ = 0;
  for (std::size_t k = 0; k < 20; ++k) {
    std::ifstream f(t.file("raw/" + std::to_string(k) + ".raw"), std::ios::binary);
    std::vector<std::int16_t> ref(npx);
    ASSERT_TRUE(f.read(reinterpret_cast<char*>(ref.data()), npx * 2)) << k;
    const std::int16_t* ours = ct.image.data<std::int16_t>() + k * npx;
    for (std::size_t i = 0; i < npx; ++i) differ += ours[i] != ref[i];
    if (k) {
      EXPECT_GT(ct.slices[k].position, ct.slices[k - 1].position);
    }
  }
  EXPECT_EQ(differ, 0u);
  // These de-identified slices have no SOP Instance (nor Series/FoR) UIDs: an RT-STRUCT cannot
  // reference them, and the writer says so instead of writing dangling references.
  core::StructureSet set(g);
  set.add("X", core::Image::zeros<std::uint8_t>(g));
  try {
    rtstruct::write_rtstruct(set, ct, t.file("rs.dcm"));
    ADD_FAILURE() << "no error";
  } catch (const core::InvalidInput& e) {
    const std::string what = e.what();  // names what is missing
    EXPECT_NE(what.find("lacks its Study Instance UID, Series Instance UID"), std::string::npos)
        << what;
    EXPECT_EQ(what.find("Frame of Reference UID ("), std::string::npos) << what;  // that one is there
  }
}

// OpenKBP masks -> our RT-STRUCT (on the patient's CT written as DICOM) -> plastimatch ->
// masks: Dice >= 0.99 for every ROI over 1 cc.
TEST(RtStructData, OpenKbpRoundTripThroughPlastimatch) {
  for (const char* pt : {"train/pt_1", "train/pt_10", "validation/pt_201"}) {
    const std::string base = test::shared_data(std::string("openkbp/") + pt);
    TempDir t;
    const core::Image ctimg = core::read_image(base + "/ct.nii.gz", core::PixelType::Int16);
    rtstruct::write_ct_series(ctimg, t.file("ct"));
    auto ct = rtstruct::read_ct_series(t.file("ct"));
    ASSERT_TRUE(ct.image.geometry().same_grid(ctimg.geometry(), 1e-3));
    core::StructureSet set(ct.image.geometry());
    for (const char* roi : {"Brainstem", "SpinalCord", "RightParotid", "LeftParotid", "Esophagus",
                            "Larynx", "Mandible", "PTV56", "PTV63", "PTV70"}) {
      const std::string f = base + "/" + roi + ".nii.gz";
      if (!fs::exists(f)) continue;
      core::Image m = core::read_image(f, core::PixelType::UInt8);
      m.set_geometry(ct.image.geometry());
      set.add(roi, m);
    }
    ASSERT_GE(set.size(), 5u);
    // Holes as separate contours: read with plastimatch's even-odd mode (--xor-contours,
    // as the standard and TPSs read nested contours). Keyholes: plastimatch's default mode.
    rtstruct::write_rtstruct(set, ct, t.file("rs.dcm"));
    rtstruct::RtStructWriteOptions kh;
    kh.keyhole = true;
    rtstruct::write_rtstruct(set, ct, t.file("rsk.dcm"), kh);
    EXPECT_EQ(test::dciodvfy_errors(t.file("rs.dcm")), "");
    for (const std::string mode : {"xor", "keyhole"}) {
      const std::string cmd = mode == "xor" ? "plastimatch convert --input rs.dcm --xor-contours"
                                            : "plastimatch convert --input rsk.dcm";
      auto r = test::run_command("cd '" + t.str() + "' && " + cmd +
                                 " --referenced-ct ct --output-prefix out_" + mode +
                                 " --prefix-format nrrd");
      ASSERT_EQ(r.exit_code, 0) << r.output;
      for (const auto& s : set) {
        const std::string f = t.file("out_" + mode + "/" + s.name + ".nrrd");
        ASSERT_TRUE(fs::exists(f)) << f << "\n" << r.output;
        core::Image back = core::read_image(f, core::PixelType::UInt8);
        ASSERT_TRUE(back.geometry().same_grid(ct.image.geometry(), 1e-2))
            << back.geometry().describe();
        const double d = test::dice(back, s.mask);
        std::printf("%s %-8s %-12s %8.2f cc  Dice %.5f\n", pt, mode.c_str(), s.name.c_str(),
                    s.volume_cc(), d);
        if (s.volume_cc() > 1.0) {
          EXPECT_GE(d, 0.99) << pt << " " << mode << " " << s.name;
        }
      }
    }
  }
}
