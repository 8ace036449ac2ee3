// `isoline dvh` end to end on synthetic data: masks dir or RT-STRUCT, NIfTI or RT-DOSE,
// analytic metrics, target indices, criteria, CSV (cumulative + differential) and JSON.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "isoline/core/io.h"
#include "isoline/rtstruct/ct_series.h"
#include "isoline/rtstruct/rtdose.h"
#include "isoline/rtstruct/rtstruct.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace isoline;
using test::TempDir;

namespace {

// 2 mm CT grid; dose = 0.5 Gy/mm * (x + 40) (linear, so trilinear sampling is exact):
// voxel i has x = 2 i - 39 mm and dose i + 0.5 Gy.
core::Geometry grid() {
  core::Geometry g;
  g.size = {40, 30, 12};
  g.spacing = {2.0, 2.0, 2.5};
  g.origin = {-39.0, -29.0, -13.75};
  return g;
}

double dose_at_x(double x) { return 0.5 * (x + 40.0); }

// Box of voxels i in [i0, i1), j in [8, 20), k in [3, 9).
core::Image box(const core::Geometry& g, int i0, int i1) {
  core::Image m = core::Image::zeros<std::uint8_t>(g);
  for (int k = 3; k < 9; ++k)
    for (int j = 8; j < 20; ++j)
      for (int i = i0; i < i1; ++i) m.at<std::uint8_t>(i, j, k) = 1;
  return m;
}

struct Case {
  TempDir t;
  explicit Case(bool with_body = false) {
    const auto g = grid();
    core::Image ct = core::Image::zeros<std::int16_t>(g);
    auto series = rtstruct::write_ct_series(ct, t.file("ct"));
    core::Image dose = core::Image::zeros<float>(g);
    for (int k = 0; k < g.size[2]; ++k)
      for (int j = 0; j < g.size[1]; ++j)
        for (int i = 0; i < g.size[0]; ++i)
          dose.at<float>(i, j, k) = static_cast<float>(dose_at_x(g.index_to_world({double(i), 0, 0})[0]));
    core::write_image(dose, t.file("dose.nii.gz"));
    rtstruct::write_rtdose(dose, series, t.file("rd.dcm"));
    core::StructureSet set(g);
    set.add("PTV30", box(g, 20, 30));  // x in [0, 20) mm: dose 20 .. 30 Gy, centres 20.5 .. 29.5
    set.add("Cord", box(g, 4, 8));     // x in [-32, -24) mm: dose 4 .. 8 Gy
    if (with_body) {  // on every slice, like a BODY contoured on the whole CT
      core::Image body = core::Image::zeros<std::uint8_t>(g);
      for (int k = 0; k < g.size[2]; ++k)
        for (int j = 2; j < 28; ++j)
          for (int i = 2; i < 38; ++i) body.at<std::uint8_t>(i, j, k) = 1;
      set.add("BODY", body);
    }
    core::write_mask_dir(set, t.file("masks"));
    rtstruct::write_rtstruct(set, series, t.file("rs.dcm"));
  }
  std::string dvh(const std::string& rest) const {
    return test::isoline_bin() + " dvh -q " + rest;
  }
};

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  return nlohmann::json::parse(f);
}

const nlohmann::json& structure(const nlohmann::json& j, const std::string& name) {
  for (const auto& s : j["structures"])
    if (s["name"] == name) return s;
  ADD_FAILURE() << "no " << name << " in " << j.dump();
  static nlohmann::json none;
  return none;
}

}  // namespace

TEST(DvhCli, RtStructAndRtDoseGiveTheAnalyticMetricsOfTheMasks) {
  Case c;
  auto a = test::run_command(c.dvh("--dose " + c.t.file("dose.nii.gz") + " --masks " + c.t.file("masks") +
                                   " --json " + c.t.file("a.json")));
  ASSERT_EQ(a.exit_code, 0) << a.output;
  auto b = test::run_command(c.dvh("--dose " + c.t.file("rd.dcm") + " --rtstruct " + c.t.file("rs.dcm") +
                                   " --pixel 0.5 --json " + c.t.file("b.json")));
  ASSERT_EQ(b.exit_code, 0) << b.output;
  EXPECT_NE(b.output.find("D0.03cc"), std::string::npos) << b.output;
  const auto ja = read_json(c.t.file("a.json")), jb = read_json(c.t.file("b.json"));
  // PTV30: 10 x 12 x 6 voxels of 2 x 2 x 2.5 mm = 7.2 cc, dose uniform in x over
  // [20, 30) Gy (voxel centres at 20.5, 21.5, ..., 29.5 Gy).
  for (const auto* j : {&ja, &jb}) {
    const auto& p = structure(*j, "PTV30");
    EXPECT_NEAR(p["volume_cc"].get<double>(), 7.2, 0.05);
    EXPECT_NEAR(p["mean_gy"].get<double>(), 25.0, 0.05);
    EXPECT_NEAR(p["d50_gy"].get<double>(), 25.0, 0.6);
    EXPECT_EQ(p["target"], true);
    EXPECT_DOUBLE_EQ(p["rx_gy"].get<double>(), 30.0);  // from the name
    const auto& cord = structure(*j, "Cord");
    EXPECT_NEAR(cord["mean_gy"].get<double>(), 6.0, 0.05);
    EXPECT_FALSE(cord.contains("target"));
  }
  // The same structures read two ways agree (RT-STRUCT traced on voxel edges); the fine
  // RT-STRUCT grid samples the dose continuously, the masks at the 1 Gy-apart voxel centres.
  for (const char* name : {"PTV30", "Cord"})
    for (const char* key : {"volume_cc", "mean_gy", "d95_gy", "d2_gy", "max_gy"})
      EXPECT_NEAR(structure(ja, name)[key].get<double>(), structure(jb, name)[key].get<double>(),
                  std::string(key) == "volume_cc" ? 0.05 : 0.6)
          << name << " " << key;
}

TEST(DvhCli, TargetIndicesAndCriteria) {
  Case c;
  {
    std::ofstream f(c.t.file("crit.json"));
    f << R"({"name": "test", "criteria": [
      {"structure": "Cord", "metric": "D0.1cc", "max": 45},
      {"structure": "PTV30", "metric": "D95%", "min_percent_of": 95, "prescription_gy": 30},
      {"structure": "Parotid_L", "metric": "Dmean", "max": 26}]})";
  }
  const std::string base = "--dose " + c.t.file("dose.nii.gz") + " --masks " + c.t.file("masks") +
                           " --criteria " + c.t.file("crit.json");
  auto r = test::run_command(c.dvh(base + " --metric V25Gy --metric D99%"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* s : {"target", "Rx[Gy]", "HI", "CI", "V25Gy", "D99%", "Cord D0.1cc <= 45 Gy", "PASS", "FAIL",
                        "not evaluated", "1 of 2 evaluated criteria passed (1 not evaluated"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s << "\n" << r.output;
  // Failing criterion -> exit 3 on request.
  EXPECT_EQ(test::run_command(c.dvh(base + " --fail-on-criteria")).exit_code, 3);
  // Explicit target with a prescription of 25 Gy: samples 20.5 .. 29.5 Gy.
  auto t = test::run_command(c.dvh("--dose " + c.t.file("dose.nii.gz") + " --masks " + c.t.file("masks") +
                                   " --target PTV30=25 --json " + c.t.file("t.json")));
  ASSERT_EQ(t.exit_code, 0) << t.output;
  // A prescription in cGy is refused before anything is read or printed.
  for (const char* bad : {" --target PTV30=3000", " --rx 7000"}) {
    auto r = test::run_command(c.dvh("--dose " + c.t.file("dose.nii.gz") + " --masks " + c.t.file("masks") + bad));
    EXPECT_EQ(r.exit_code, 2) << bad << "\n" << r.output;
    EXPECT_NE(r.output.find("cGy?"), std::string::npos) << r.output;
  }
  const auto j = read_json(c.t.file("t.json"));
  const auto& p = structure(j, "PTV30");
  EXPECT_DOUBLE_EQ(p["rx_gy"].get<double>(), 25.0);
  EXPECT_NEAR(p["v95rx_percent"].get<double>(), 60.0, 1e-6);  // >= 23.75 Gy: 24.5 .. 29.5
  // HI = (D2 - D98) / D50: 10 equal samples 20.5 .. 29.5 Gy.
  EXPECT_NEAR(p["hi"].get<double>(), (29.5 - 20.5) / 25.0, 0.05);
  // Paddick CI: PIV = all dose voxels >= 25 Gy (i >= 25: 15 columns of the whole grid, in
  // units of the box's 12 x 6 voxel columns), TV_PIV = 5 of the 10 box columns.
  const double tv = 10.0, tv_piv = 5.0, piv = 15.0 * 30 * 12 / (12 * 6);
  EXPECT_NEAR(p["ci"].get<double>(), tv_piv * tv_piv / (tv * piv), 1e-3);
  EXPECT_FALSE(structure(j, "Cord").contains("target"));
}

TEST(DvhCli, CsvHasConsistentCumulativeAndDifferentialDvhs) {
  Case c;
  auto r = test::run_command(c.dvh("--dose " + c.t.file("rd.dcm") + " --masks " + c.t.file("masks") +
                                   " --bin 0.5 --csv " + c.t.file("out/dvh.csv")));
  // Missing output directory: a clear error and no file.
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("dvh.csv"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(c.t.file("out")));
  fs::create_directories(c.t.file("out"));
  r = test::run_command(c.dvh("--dose " + c.t.file("rd.dcm") + " --masks " + c.t.file("masks") +
                              " --bin 0.5 --csv " + c.t.file("out/dvh.csv")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Only the target file, no temporaries left behind.
  std::size_t files = 0;
  for (auto it = fs::directory_iterator(c.t.file("out")); it != fs::directory_iterator(); ++it) ++files;
  EXPECT_EQ(files, 1u);
  std::ifstream f(c.t.file("out/dvh.csv"));
  std::string line;
  std::getline(f, line);
  EXPECT_EQ(line, "structure,dose_gy,cumulative_fraction,cumulative_cc,differential_cc");
  struct Pt {
    double dose, frac, cum, diff;
  };
  std::map<std::string, std::vector<Pt>> by;
  while (std::getline(f, line)) {
    std::stringstream ss(line);
    std::string name, v;
    std::getline(ss, name, ',');
    Pt p{};
    double* out[4] = {&p.dose, &p.frac, &p.cum, &p.diff};
    for (double* o : out) {
      std::getline(ss, v, ',');
      *o = std::stod(v);
    }
    by[name].push_back(p);
  }
  ASSERT_EQ(by.size(), 2u);
  for (const auto& [name, pts] : by) {
    ASSERT_GT(pts.size(), 10u) << name;
    EXPECT_DOUBLE_EQ(pts.front().frac, 1.0) << name;
    EXPECT_DOUBLE_EQ(pts.back().frac, 0.0) << name;
    double total = 0;
    for (std::size_t i = 0; i < pts.size(); ++i) {
      EXPECT_NEAR(pts[i].dose, 0.5 * i, 1e-9);
      total += pts[i].diff;
      if (i + 1 < pts.size()) {
        EXPECT_NEAR(pts[i].cum - pts[i + 1].cum, pts[i].diff, 1e-6) << name << " " << i;
      }
    }
    EXPECT_NEAR(total, pts.front().cum, 1e-6) << name;
  }
  // PTV30 doses 20.5 .. 29.5 Gy at the voxel centres: ten equal bins of 0.72 cc.
  double ptv_hot = 0;
  for (const auto& p : by["PTV30"])
    if (p.diff > 0) {
      EXPECT_NEAR(p.diff, 0.72, 1e-3) << p.dose;
      EXPECT_NEAR(std::fmod(p.dose, 1.0), 0.5, 1e-9) << p.dose;
      ptv_hot += p.diff;
    }
  EXPECT_NEAR(ptv_hot, 7.2, 1e-3);
}

TEST(DvhCli, UsageErrors) {
  Case c;
  auto both = test::run_command(c.dvh("--dose " + c.t.file("dose.nii.gz") + " --masks " + c.t.file("masks") +
                                      " --rtstruct " + c.t.file("rs.dcm")));
  EXPECT_EQ(both.exit_code, 2) << both.output;
  EXPECT_NE(both.output.find("--rtstruct"), std::string::npos) << both.output;
  EXPECT_EQ(test::run_command(c.dvh("--dose " + c.t.file("dose.nii.gz"))).exit_code, 2);
  auto bad_metric = test::run_command(c.dvh("--dose " + c.t.file("dose.nii.gz") + " --masks " +
                                            c.t.file("masks") + " --metric Q5"));
  EXPECT_EQ(bad_metric.exit_code, 2) << bad_metric.output;
  auto missing = test::run_command(c.dvh("--dose " + c.t.file("nope.nii.gz") + " --masks " + c.t.file("masks")));
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_NE(missing.output.find("nope.nii.gz"), std::string::npos) << missing.output;
}

TEST(DvhCli, BodyOnEverySliceBoundsTheEndSlabs) {
  Case c(true);
  auto a = test::run_command(c.dvh("--dose " + c.t.file("dose.nii.gz") + " --masks " + c.t.file("masks") +
                                   " --json " + c.t.file("a.json")));
  ASSERT_EQ(a.exit_code, 0) << a.output;
  auto b = test::run_command(c.dvh("--dose " + c.t.file("rd.dcm") + " --rtstruct " + c.t.file("rs.dcm") +
                                   " --json " + c.t.file("b.json")));
  ASSERT_EQ(b.exit_code, 0) << b.output;
  const auto ja = read_json(c.t.file("a.json")), jb = read_json(c.t.file("b.json"));
  // Masks: 36 x 26 x 12 voxels of 10 mm^3. From the RT-STRUCT the BODY ends at its first and
  // last contour planes (the CT's first and last slice centres): 11 of the 12 slabs.
  EXPECT_NEAR(structure(ja, "BODY")["volume_cc"].get<double>(), 36 * 26 * 12 * 0.01, 1e-6);
  EXPECT_NEAR(structure(jb, "BODY")["volume_cc"].get<double>(), 36 * 26 * 11 * 0.01, 0.05);
  // Inner ROIs keep their full slabs.
  EXPECT_NEAR(structure(jb, "PTV30")["volume_cc"].get<double>(), 7.2, 0.05);
  EXPECT_NEAR(structure(jb, "Cord")["volume_cc"].get<double>(), 4 * 12 * 6 * 0.01, 0.05);
}
