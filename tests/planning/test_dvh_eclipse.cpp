// DVH accuracy against a treatment planning system (issue 7, "DVH accuracy against a TPS"):
// the Eclipse prostate phantom (SlicerRT test data) ships Eclipse's RT-STRUCT, its plan dose
// and the DVH table Eclipse computed. Each ROI is rasterised from the Eclipse contours on a
// fine grid fitted to the contour planes, its DVH computed in the Eclipse dose with
// planning::compute_dvh, and D95, D50, D2 and the mean of every ROI over 5 cc compared with
// the same figures read off Eclipse's cumulative table. Tolerance: 1 % of the prescription
// (46 Gy in the RT Plan's DoseReferenceSequence, checked below with pydicom).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "isoline/core/io.h"
#include "isoline/planning/dvh.h"
#include "isoline/rtstruct/rtstruct.h"
#include "tests/test_util.h"

using namespace isoline;

namespace {

std::string squash(const std::string& s) {
  std::string o;
  for (char c : s)
    if (c != ' ' && c != '_' && c != '-') o += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return o;
}

// One ROI's cumulative DVH as Eclipse exported it: dose (Gy) and volume (% of `volume_cc`).
struct TpsDvh {
  std::string name;
  double volume_cc = 0;
  std::vector<double> dose, percent;

  // Dose at which the cumulative curve falls to `p` percent (linear between table points).
  double dose_at_percent(double p) const {
    for (std::size_t i = 1; i < dose.size(); ++i)
      if (percent[i] < p) {
        const double t = (percent[i - 1] - p) / (percent[i - 1] - percent[i]);
        return dose[i - 1] + t * (dose[i] - dose[i - 1]);
      }
    return dose.back();
  }
  // Mean dose = integral of the cumulative fraction over dose (trapezoids).
  double mean() const {
    double m = 0;
    for (std::size_t i = 1; i < dose.size(); ++i)
      m += 0.5 * (percent[i] + percent[i - 1]) / 100.0 * (dose[i] - dose[i - 1]);
    return m;
  }
};

// Header: "<ROI>_DvhArray Dose (Gy),<ROI>_DvhArray Value (% of <V> cc),..."; rows of pairs.
std::vector<TpsDvh> read_eclipse_table(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::string line;
  std::getline(in, line);
  std::vector<std::string> cols;
  {
    std::stringstream ss(line);
    std::string c;
    while (std::getline(ss, c, ',')) cols.push_back(c);
  }
  std::vector<TpsDvh> out;
  for (std::size_t c = 0; c + 1 < cols.size(); c += 2) {
    TpsDvh t;
    t.name = cols[c].substr(0, cols[c].find("_DvhArray"));
    const auto p = cols[c + 1].find("% of ");
    if (p == std::string::npos) ADD_FAILURE() << "unexpected column " << cols[c + 1];
    t.volume_cc = std::stod(cols[c + 1].substr(p + 5));
    out.push_back(t);
  }
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string v;
    std::vector<double> vals;
    while (std::getline(ss, v, ',')) vals.push_back(v.empty() ? 0.0 : std::stod(v));
    for (std::size_t r = 0; r < out.size() && 2 * r + 1 < vals.size(); ++r) {
      out[r].dose.push_back(vals[2 * r]);
      out[r].percent.push_back(vals[2 * r + 1]);
    }
  }
  return out;
}

}  // namespace

TEST(DvhEclipse, ProstateTablesAgreeWithinOnePercentOfPrescription) {
  const std::string dir = test::shared_data("eclipse_phantoms");
  // Prescription from the RT Plan (independent reader: pydicom).
  auto rx_out = test::run_command(
      "/usr/bin/python3 -c \"import pydicom,sys; d=pydicom.dcmread(sys.argv[1]); "
      "print(max(float(r.TargetPrescriptionDose) for r in d.DoseReferenceSequence "
      "if 'TargetPrescriptionDose' in r))\" " +
      dir + "/RP_EclipseProstate.dcm");
  ASSERT_EQ(rx_out.exit_code, 0) << rx_out.output;
  const double rx = std::stod(rx_out.output);
  EXPECT_NEAR(rx, 46.0, 1e-6);
  const double tol = 0.01 * rx;

  const auto tables = read_eclipse_table(dir + "/EclipseProstate_DvhTable_Eclipse.csv");
  ASSERT_EQ(tables.size(), 6u);
  const core::Image dose = core::read_image(dir + "/EclipseProstate_Dose.nrrd", core::PixelType::Float32);
  const auto rs = rtstruct::read_rtstruct(dir + "/RS_EclipseProstate.dcm");
  rtstruct::RasterizeOptions ro;
  std::map<std::string, std::string> roi_of;  // table name -> ROI name
  for (const auto& t : tables)
    for (const auto& r : rs.rois)
      if (squash(r.name) == squash(t.name)) {
        roi_of[t.name] = r.name;
        ro.names.push_back(r.name);
      }
  ASSERT_EQ(roi_of.size(), tables.size());
  // The grid `isoline dvh --rtstruct` uses: 1 mm pixels, slabs around the contour planes,
  // ending at the outermost planes since the External ROI (BODY) spans all of them.
  const core::Geometry planes = rtstruct::contour_grid(rs, 1.0, 3.0);
  const rtstruct::Roi* body = nullptr;
  for (const auto& r : rs.rois)
    if (r.interpreted_type == "EXTERNAL") body = &r;
  ASSERT_NE(body, nullptr);
  double kmin = 1e9, kmax = -1e9;
  for (const auto& c : body->contours) {
    const double k = planes.world_to_index(c.points.front())[2];
    kmin = std::min(kmin, k);
    kmax = std::max(kmax, k);
  }
  EXPECT_NEAR(kmin, 0.0, 1e-3);
  EXPECT_NEAR(kmax, planes.size[2] - 1.0, 1e-3);
  const core::Geometry grid = planning::dvh_raster_grid(planes, true);
  const auto set = rtstruct::rasterize(rs, grid, ro);

  std::printf("%-14s %8s %8s | %7s %7s %6s | %7s %7s %6s | %7s %7s %6s | %7s %7s %6s\n", "ROI",
              "V_ecl", "V_iso", "D95ecl", "D95iso", "err", "D50ecl", "D50iso", "err", "D2ecl", "D2iso",
              "err", "Mecl", "Miso", "err");
  double worst = 0;
  int checked = 0;
  for (const auto& t : tables) {
    const core::Structure* s = set.find(roi_of[t.name]);
    ASSERT_NE(s, nullptr) << t.name;
    const auto dvh = planning::compute_dvh(dose, s->mask, t.name);
    const double want[4] = {t.dose_at_percent(95), t.dose_at_percent(50), t.dose_at_percent(2), t.mean()};
    const double got[4] = {dvh.dose_at_percent(95), dvh.dose_at_percent(50), dvh.dose_at_percent(2),
                           dvh.mean_gy()};
    std::printf("%-14s %8.1f %8.1f", t.name.c_str(), t.volume_cc, dvh.volume_cc());
    for (int m = 0; m < 4; ++m) std::printf(" | %7.2f %7.2f %+6.2f", want[m], got[m], got[m] - want[m]);
    std::printf("\n");
    if (t.volume_cc <= 5.0) continue;
    ++checked;
    const char* label[4] = {"D95", "D50", "D2", "Dmean"};
    for (int m = 0; m < 4; ++m) {
      EXPECT_NEAR(got[m], want[m], tol) << t.name << " " << label[m];
      worst = std::max(worst, std::abs(got[m] - want[m]));
    }
  }
  std::printf("max |error| %.3f Gy = %.2f %% of the %.1f Gy prescription over %d ROIs\n", worst,
              100 * worst / rx, rx, checked);
  EXPECT_EQ(checked, 6);

  // `isoline dvh --rtstruct` follows the same path: its JSON has the same figures.
  test::TempDir t;
  auto r = test::run_command(test::isoline_bin() + " dvh -q --dose " + dir + "/EclipseProstate_Dose.nrrd --rtstruct " +
                             dir + "/RS_EclipseProstate.dcm --json " + t.file("dvh.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream jf(t.file("dvh.json"));
  const auto j = nlohmann::json::parse(jf);
  int found = 0;
  for (const auto& s : j["structures"]) {
    for (const auto& tab : tables)
      if (roi_of[tab.name] == s["name"]) {
        ++found;
        EXPECT_NEAR(s["d95_gy"].get<double>(), tab.dose_at_percent(95), tol) << tab.name;
        EXPECT_NEAR(s["d50_gy"].get<double>(), tab.dose_at_percent(50), tol) << tab.name;
        EXPECT_NEAR(s["d2_gy"].get<double>(), tab.dose_at_percent(2), tol) << tab.name;
        EXPECT_NEAR(s["mean_gy"].get<double>(), tab.mean(), tol) << tab.name;
        // BODY's end slabs are left out (it spans every plane): its volume matches Eclipse's.
        if (tab.name == "BODY") {
          EXPECT_NEAR(s["volume_cc"].get<double>() / tab.volume_cc, 1.0, 0.002);
        }
      }
  }
  EXPECT_EQ(found, 6) << r.output;
}
