// Accuracy of the generic 6 MV model in water and slab phantoms (the "Must show").
// Reference values: 6 MV, 10x10 cm, SSD 100 cm: d_max 1.3-1.7 cm, PDD(10) 66.5 +- 1 %,
// PDD(20) 38.5 +- 1.5 %, 80-20 % penumbra at 10 cm 5-8 mm, output factors 0.90 (3x3) and 1.09
// (30x30) +- 3 % (BJR Supplement 25 / Khan & Gibbons, The Physics of Radiation Therapy, ch. 9-10).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "tests/dose/dose_test_util.h"

using namespace isoline::dose;
using namespace isoline::dose::test;

namespace {

const Machine& machine() {
  static const Machine m = load_machine(machine_path());
  return m;
}

struct WaterRun {
  SlabPhantom p;
  std::vector<float> dose;
};

const WaterRun& water_10x10() {
  static const WaterRun r = [] {
    WaterRun w{make_slab_phantom(2.5, 300, 300, [](double) { return 1.0; }), {}};
    w.dose = compute_dose(w.p.grid, w.p.density, {water_beam(w.p, 100)}, machine(), CalcOptions{});
    return w;
  }();
  return r;
}

double dmax_of(const std::vector<std::pair<double, double>>& c) {
  double m = 0;
  for (const auto& [z, d] : c) m = std::max(m, d);
  return m;
}

}  // namespace

TEST(DoseWater, DepthDose10x10) {
  const auto& w = water_10x10();
  auto c = central_axis(w.p, w.dose);
  auto it = std::max_element(c.begin(), c.end(), [](auto& a, auto& b) { return a.second < b.second; });
  const double dm = it->second;
  RecordProperty("dmax_cm", std::to_string(it->first / 10));
  EXPECT_GE(it->first, 13.0);
  EXPECT_LE(it->first, 17.0);
  const double pdd10 = 100 * interp_curve(c, 100.0) / dm, pdd20 = 100 * interp_curve(c, 200.0) / dm;
  RecordProperty("pdd10", std::to_string(pdd10));
  RecordProperty("pdd20", std::to_string(pdd20));
  EXPECT_NEAR(pdd10, 66.5, 1.0);
  EXPECT_NEAR(pdd20, 38.5, 1.5);
  // calibration: 1 cGy/MU at d_max (100 MU -> 1 Gy) within the grid's sampling of the peak
  EXPECT_NEAR(dm, 1.0, 0.01);
}

TEST(DoseWater, Penumbra80to20At10cm) {
  const auto& w = water_10x10();
  const int n = w.p.grid.size[0], ny = w.p.grid.size[1];
  const double h = w.p.grid.spacing[0];
  const int j = static_cast<int>(100.0 / h);  // voxel centre at 10.125 cm
  std::vector<std::pair<double, double>> prof;  // x > 0 half profile, decreasing dose
  const double centre = w.dose[(static_cast<std::size_t>(n / 2) * ny + j) * n + n / 2];
  for (int i = n / 2; i < n; ++i)
    prof.emplace_back((i - n / 2) * h, w.dose[(static_cast<std::size_t>(n / 2) * ny + j) * n + i] / centre);
  auto crossing = [&](double level) {
    for (std::size_t i = 1; i < prof.size(); ++i)
      if (prof[i].second <= level)
        return prof[i - 1].first + (prof[i - 1].second - level) / (prof[i - 1].second - prof[i].second) * h;
    return -1.0;
  };
  const double pen = crossing(0.2) - crossing(0.8);
  RecordProperty("penumbra_mm", std::to_string(pen));
  EXPECT_GE(pen, 5.0);
  EXPECT_LE(pen, 8.0);
  // the 50 % point lies on the geometric edge projected to 10 cm depth (55 mm) within 1.5 mm
  EXPECT_NEAR(crossing(0.5), 50.0 * (1000.0 + (j + 0.5) * h) / 1000.0, 1.5);
}

TEST(DoseWater, OutputFactors) {
  auto p = make_slab_phantom(5.0, 500, 200, [](double) { return 1.0; });
  auto out = [&](double field_mm) {
    auto d = compute_dose(p.grid, p.density, {water_beam(p, field_mm)}, machine(), CalcOptions{});
    return interp_curve(central_axis(p, d), 15.0);  // at d_max (1.5 cm), SSD 100 cm
  };
  const double ref = out(100), of3 = out(30) / ref, of30 = out(300) / ref;
  RecordProperty("of3", std::to_string(of3));
  RecordProperty("of30", std::to_string(of30));
  EXPECT_NEAR(of3, 0.90, 0.03 * 0.90);
  EXPECT_NEAR(of30, 1.09, 0.03 * 1.09);
}

// Heterogeneities: downstream of a slab, where electronic equilibrium is restored, the dose must
// follow the water depth dose at the same radiological depth (inverse-square corrected) within
// 3 % (equivalent-path reference, valid for a 10x10 field beyond ~2 cm of the interface).
namespace {
double slab_deviation(double rho_slab, double z0, double z1, double check_from, double check_to) {
  auto water = make_slab_phantom(3.0, 240, 300, [](double) { return 1.0; });
  auto het = make_slab_phantom(3.0, 240, 300, [&](double z) { return z >= z0 && z < z1 ? rho_slab : 1.0; });
  auto dw = central_axis(water, compute_dose(water.grid, water.density, {water_beam(water, 100)}, machine(), CalcOptions{}));
  auto dh = central_axis(het, compute_dose(het.grid, het.density, {water_beam(het, 100)}, machine(), CalcOptions{}));
  const double norm = dmax_of(dw);
  double worst = 0;
  for (const auto& [z, d] : dh) {
    if (z < check_from || z > check_to) continue;
    const double zr = z - (z1 - z0) * (1 - rho_slab);  // radiological depth
    const double isq = std::pow((1000.0 + zr) / (1000.0 + z), 2);
    const double ref = interp_curve(dw, zr) * isq;
    worst = std::max(worst, std::fabs(d - ref) / norm * 100);
  }
  return worst;
}
}  // namespace

TEST(DoseSlab, LungSlabDownstreamFollowsEquivalentPath) {
  const double dev = slab_deviation(0.25, 50, 150, 180, 250);
  RecordProperty("lung_dev_percent", std::to_string(dev));
  EXPECT_LT(dev, 3.0);
}

TEST(DoseSlab, BoneSlabDownstreamFollowsEquivalentPath) {
  const double dev = slab_deviation(1.7, 30, 60, 90, 250);
  RecordProperty("bone_dev_percent", std::to_string(dev));
  EXPECT_LT(dev, 3.0);
}

TEST(DoseSlab, LungDoseLiesBetweenWaterAndEquivalentPath) {
  auto water = make_slab_phantom(3.0, 240, 300, [](double) { return 1.0; });
  auto het = make_slab_phantom(3.0, 240, 300, [](double z) { return z >= 50 && z < 150 ? 0.25 : 1.0; });
  auto dw = central_axis(water, compute_dose(water.grid, water.density, {water_beam(water, 100)}, machine(), CalcOptions{}));
  auto dh = central_axis(het, compute_dose(het.grid, het.density, {water_beam(het, 100)}, machine(), CalcOptions{}));
  for (double z : {100.0, 120.0, 140.0}) {
    // less attenuation in lung: more dose than in water at the same geometric depth ...
    EXPECT_GT(interp_curve(dh, z), 1.05 * interp_curve(dw, z)) << z;
    // ... but less than the equivalent-path estimate: electrons and scattered photons travel
    // farther in lung and leave the beam (loss of lateral equilibrium), as Monte Carlo shows
    const double zr = 50 + (z - 50) * 0.25;
    const double epl = interp_curve(dw, zr) * std::pow((1000.0 + zr) / (1000.0 + z), 2);
    EXPECT_LT(interp_curve(dh, z), epl) << z;
  }
}

// Heterogeneity along the whole central axis against an independent, correction-based reference:
// the modified Batho power law (generalised Batho: Sontag & Cunningham, Med Phys 4:431, 1977;
// TMR form with the d_max shift: El-Khatib & Battista, Med Phys 1984; described in AAPM Report 85
// (TG-65, 2004)). For a point at depth d below layers m = 1..N with upper boundaries t_m and relative
// electron densities rho_m (rho_0 = 0):
//   CF(d) = prod_m TMR(d - t_m + d_max)^(rho_m - rho_{m-1}) / TMR(d + d_max),
// D_het(d) = CF(d) x D_water(d). TMR is the water depth dose of the same beam with the inverse
// square removed. This is NOT a Monte Carlo benchmark (no published numeric slab data were
// available offline; see docs/validation.md): it checks that the collapsed-cone density scaling
// reproduces the attenuation and scatter changes that a classical, independently derived method
// predicts, with the tolerance (3 % of the water d_max dose or 3 mm distance to agreement).
namespace {
struct SlabAxis {
  std::vector<std::pair<double, double>> dose, batho;
  double norm = 1;
};

const std::vector<std::pair<double, double>>& water_axis_3mm() {
  static const auto c = [] {
    auto w = make_slab_phantom(3.0, 240, 300, [](double) { return 1.0; });
    return central_axis(w, compute_dose(w.grid, w.density, {water_beam(w, 100)}, machine(), CalcOptions{}));
  }();
  return c;
}

// Central axis through water / slab [z0, z1) / water, and its Batho estimate from `dw`, the water
// central axis of the same field on the same phantom size and grid.
SlabAxis slab_vs_batho(const std::vector<std::pair<double, double>>& dw, double h, double lateral_mm,
                       double depth_mm, double field_mm, double rho_slab, double z0, double z1) {
  double dm = 0, norm = 0;
  for (const auto& [z, d] : dw)
    if (d > norm) norm = d, dm = z;
  auto tmr = [&](double x) {  // pseudo-TMR: water depth dose without the inverse square, 1 at d_max
    return interp_curve(dw, x) * std::pow((1000.0 + x) / (1000.0 + dm), 2) / norm;
  };
  auto het = make_slab_phantom(h, lateral_mm, depth_mm, [&](double z) { return z >= z0 && z < z1 ? rho_slab : 1.0; });
  SlabAxis r;
  r.norm = norm;
  r.dose = central_axis(het, compute_dose(het.grid, het.density, {water_beam(het, field_mm)}, machine(), CalcOptions{}));
  for (const auto& [d, dose] : r.dose) {
    std::vector<std::pair<double, double>> layers{{0.0, 1.0}};  // (upper boundary, density)
    if (d >= z0) layers.emplace_back(z0, rho_slab);
    if (d >= z1) layers.emplace_back(z1, 1.0);
    double cf = 1, prev = 0;
    for (const auto& [top, rho] : layers) {
      cf *= std::pow(tmr(d - top + dm), rho - prev);
      prev = rho;
    }
    cf /= tmr(d + dm);
    r.batho.emplace_back(d, cf * interp_curve(dw, d));
  }
  return r;
}

// Largest dose difference (% of the water d_max dose) over [from, to], and the number of points
// failing 3 % / 3 mm (a point passes if |D - R| <= 3 % or the reference curve takes the value D
// within 3 mm).
std::pair<double, int> compare_3pc_3mm(const SlabAxis& s, double from, double to) {
  double worst = 0;
  int fails = 0;
  for (std::size_t i = 0; i < s.dose.size(); ++i) {
    const auto [z, d] = s.dose[i];
    if (z < from || z > to) continue;
    const double diff = std::fabs(d - s.batho[i].second) / s.norm * 100;
    worst = std::max(worst, diff);
    if (diff <= 3.0) continue;
    bool dta = false;
    for (double dz = -3.0; dz < 3.0 && !dta; dz += 0.25) {
      const double a = interp_curve(s.batho, z + dz) - d, b = interp_curve(s.batho, z + dz + 0.25) - d;
      dta = a * b <= 0;
    }
    if (!dta) ++fails;
  }
  return {worst, fails};
}
}  // namespace

// Geometries of `isoline phantom lung-slab|bone-slab` (docs/phantoms.md): lung 50-150 mm
// (-740 HU, 0.26 relative electron density with the generic calibration; 0.25 here), bone
// 50-80 mm (1350 HU, 1.69; 1.7 here); 10x10 cm, SSD 100 cm, 3 mm grid.
TEST(DoseSlab, LungSlabCentralAxisMatchesModifiedBatho) {
  const auto s = slab_vs_batho(water_axis_3mm(), 3.0, 240, 300, 100, 0.25, 50, 150);
  const auto [worst, fails] = compare_3pc_3mm(s, 0, 280);
  RecordProperty("lung_batho_max_dev_percent", std::to_string(worst));
  EXPECT_EQ(fails, 0) << "max dose difference " << worst << " %";
  // and the slab does change the dose: beyond it, more than 10 % above homogeneous water
  EXPECT_GT(interp_curve(s.dose, 200.0), 1.10 * interp_curve(water_axis_3mm(), 200.0));
}

TEST(DoseSlab, BoneSlabCentralAxisMatchesModifiedBatho) {
  const auto s = slab_vs_batho(water_axis_3mm(), 3.0, 240, 300, 100, 1.7, 50, 80);
  const auto [worst, fails] = compare_3pc_3mm(s, 0, 280);
  RecordProperty("bone_batho_max_dev_percent", std::to_string(worst));
  EXPECT_EQ(fails, 0) << "max dose difference " << worst << " %";
  EXPECT_LT(interp_curve(s.dose, 200.0), 0.95 * interp_curve(water_axis_3mm(), 200.0));
}

// Where the 1-D Batho estimate must fail: a small field in lung. Secondary electrons travel ~4x
// farther in lung of density 0.25 and leave a 3x3 cm beam sideways (loss of lateral electronic
// equilibrium), so the dose on the axis inside the lung falls well below any 1-D correction;
// beyond the slab, equilibrium returns (AAPM Report 85, sec. on lateral electron disequilibrium;
// the effect Carrasco et al., Med Phys 31:2899, 2004 measured for small 6 MV fields). The sizes
// here are behaviour bounds, not benchmark values: inside the lung at least 5 % below Batho for
// 3x3 cm, and back within 3 % of it 3-5 cm beyond the slab.
TEST(DoseSlab, SmallFieldInLungLosesLateralEquilibrium) {
  auto w = make_slab_phantom(3.0, 120, 250, [](double) { return 1.0; });
  const auto dw = central_axis(w, compute_dose(w.grid, w.density, {water_beam(w, 30)}, machine(), CalcOptions{}));
  const auto s = slab_vs_batho(dw, 3.0, 120, 250, 30, 0.25, 50, 150);
  const double in_lung = interp_curve(s.dose, 120.0) / interp_curve(s.batho, 120.0);
  RecordProperty("cccs_over_batho_3x3_in_lung", std::to_string(in_lung));
  EXPECT_LT(in_lung, 0.95);
  EXPECT_GT(in_lung, 0.75);  // but not absurdly low
  for (double z : {180.0, 200.0})
    EXPECT_NEAR(interp_curve(s.dose, z) / interp_curve(s.batho, z), 1.0, 0.03) << z;
}
