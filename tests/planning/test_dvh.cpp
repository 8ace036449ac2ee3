// DVH against analytic dose distributions.
#include <cmath>

#include <gtest/gtest.h>

#include "isoline/core/error.h"
#include "isoline/planning/dvh.h"

using namespace isoline;
using core::Geometry;
using core::Image;
using core::PixelType;

namespace {

// Dose = x (mm) on a grid from x = 0 .. 99 mm, 1 mm voxels, uniform in y and z.
Image ramp_dose(double spacing = 1.0) {
  Geometry g;
  const int n = static_cast<int>(std::lround(100 / spacing));
  g.size = {n, 10, 10};
  g.spacing = {spacing, 1, 1};
  g.origin = {spacing / 2 - 0.5, 0, 0};
  Image d(g, PixelType::Float32);
  for (int k = 0; k < 10; ++k)
    for (int j = 0; j < 10; ++j)
      for (int i = 0; i < n; ++i) d.at<float>(i, j, k) = static_cast<float>(g.index_to_world({double(i), 0, 0})[0]);
  return d;
}

// Box mask covering x in [x0, x1) mm (1 mm voxels centred at 0, 1, 2, ...).
Image box_mask(int x0, int x1) {
  Geometry g;
  g.size = {100, 10, 10};
  Image m(g, PixelType::UInt8);
  for (int k = 2; k < 8; ++k)
    for (int j = 2; j < 8; ++j)
      for (int i = x0; i < x1; ++i) m.at<std::uint8_t>(i, j, k) = 1;
  return m;
}

}  // namespace

TEST(Dvh, RampStatisticsAreAnalytic) {
  planning::DvhOptions opt;
  opt.supersample = 1;
  auto dvh = planning::compute_dvh(ramp_dose(), box_mask(20, 60), "box", opt);
  EXPECT_NEAR(dvh.volume_cc(), 40 * 36 / 1000.0, 1e-9);
  EXPECT_NEAR(dvh.mean_gy(), 39.5, 1e-4);  // voxel centres 20..59
  EXPECT_NEAR(dvh.min_gy(), 20.0, 1e-4);
  EXPECT_NEAR(dvh.max_gy(), 59.0, 1e-4);
  // Uniform distribution over 40 voxel columns: D50 is between the 20th and 21st hottest.
  EXPECT_NEAR(dvh.dose_at_percent(50), 40.0, 1.0);
  EXPECT_NEAR(dvh.dose_at_percent(100), 20.0, 1e-4);
  EXPECT_NEAR(dvh.volume_fraction_at_dose(50.0), 10.0 / 40.0, 1e-9);  // 50..59
  EXPECT_NEAR(dvh.dose_at_cc(0.0), 59.0, 1e-4);
}

TEST(Dvh, SupersamplingResolvesGradientsWithinCoarseDoseVoxels) {
  // Dose on a coarse 5 mm grid (exactly linear, so trilinear interpolation is exact); the
  // mask on the 1 mm grid. Supersampling gives the continuous mean of the box.
  planning::DvhOptions opt;
  opt.supersample = 8;
  auto dvh = planning::compute_dvh(ramp_dose(5.0), box_mask(20, 60), "box", opt);
  EXPECT_NEAR(dvh.mean_gy(), 39.5, 1e-3);
  // Continuous uniform distribution on [19.5, 59.5]: D10% = 59.5 - 4 = 55.5. Sub-samples
  // 1/8 mm apart quantise the quantile by at most half a step (1/16 Gy here).
  EXPECT_NEAR(dvh.dose_at_percent(10), 55.5, 1.0 / 16 + 1e-6);
  EXPECT_NEAR(dvh.dose_at_percent(90), 23.5, 1.0 / 16 + 1e-6);
}

TEST(Dvh, MaskOutsideDoseGridGetsZero) {
  Geometry g;
  g.size = {4, 4, 4};
  Image dose(g, PixelType::Float32);
  std::fill(dose.data<float>(), dose.data<float>() + dose.num_voxels(), 10.f);
  Geometry mg = g;
  mg.origin = {10, 0, 0};  // entirely outside
  Image m(mg, PixelType::UInt8);
  m.at<std::uint8_t>(1, 1, 1) = 1;
  auto dvh = planning::compute_dvh(dose, m, "outside");
  EXPECT_EQ(dvh.max_gy(), 0.0);
}

TEST(Dvh, FractionOutsideTheDoseGrid) {
  Geometry g;
  g.size = {4, 4, 4};
  Geometry mg = g;
  Image m(mg, PixelType::UInt8);
  m.at<std::uint8_t>(1, 1, 1) = 1;
  EXPECT_EQ(planning::fraction_outside(g, m), 0.0);
  mg.origin = {10, 0, 0};  // the whole mask beyond x = 3.5
  Image far(mg, PixelType::UInt8);
  far.at<std::uint8_t>(1, 1, 1) = 1;
  EXPECT_EQ(planning::fraction_outside(g, far), 1.0);
  mg.origin = {2, 0, 0};  // voxel i = 1 at x = 3 (inside), i = 2 at x = 4 (outside)
  Image half(mg, PixelType::UInt8);
  half.at<std::uint8_t>(1, 1, 1) = 1;
  half.at<std::uint8_t>(2, 1, 1) = 1;
  EXPECT_EQ(planning::fraction_outside(g, half), 0.5);
  EXPECT_EQ(planning::fraction_outside(g, Image(mg, PixelType::UInt8)), 0.0);  // empty mask
}

TEST(Dvh, CumulativeIsMonotoneFromOne) {
  auto dvh = planning::compute_dvh(ramp_dose(), box_mask(10, 30), "box");
  std::vector<double> x, y;
  dvh.cumulative(0.5, &x, &y);
  ASSERT_GT(x.size(), 10u);
  EXPECT_DOUBLE_EQ(y.front(), 1.0);
  EXPECT_DOUBLE_EQ(y.back(), 0.0);
  for (std::size_t i = 1; i < y.size(); ++i) EXPECT_LE(y[i], y[i - 1]);
}

TEST(Dvh, IndicesOnUniformTarget) {
  Geometry g;
  g.size = {20, 20, 20};
  Image dose(g, PixelType::Float32), target(g, PixelType::UInt8);
  for (int k = 5; k < 15; ++k)
    for (int j = 5; j < 15; ++j)
      for (int i = 5; i < 15; ++i) {
        dose.at<float>(i, j, k) = 70.f;
        target.at<std::uint8_t>(i, j, k) = 1;
      }
  planning::DvhOptions opt;
  opt.supersample = 1;
  auto dvh = planning::compute_dvh(dose, target, "PTV", opt);
  EXPECT_NEAR(planning::homogeneity_index(dvh), 0.0, 1e-9);
  // Dose confined exactly to the target: Paddick CI = 1.
  EXPECT_NEAR(planning::conformity_index(dose, target, 70.0, opt), 1.0, 1e-9);
  // Half the target covered, the other half's dose spilled outside: CI = 0.5^2 / (1 * 1).
  for (int k = 5; k < 15; ++k)
    for (int j = 5; j < 15; ++j)
      for (int i = 5; i < 10; ++i) {
        dose.at<float>(i, j, k) = 0.f;
        dose.at<float>(i + 10, j, k) = 70.f;
      }
  EXPECT_NEAR(planning::conformity_index(dose, target, 70.0, opt), 0.25, 1e-9);
}

TEST(Dvh, RejectsWrongPixelTypes) {
  Geometry g;
  g.size = {2, 2, 2};
  EXPECT_THROW(planning::compute_dvh(Image(g, PixelType::Int16), Image(g, PixelType::UInt8), "x"),
               core::InvalidInput);
  EXPECT_THROW(planning::compute_dvh(Image(g, PixelType::Float32), Image(g, PixelType::Float32), "x"),
               core::InvalidInput);
}

TEST(Dvh, RasterGridForContourPlanes) {
  Geometry planes;
  planes.size = {50, 40, 5};  // planes at z = 10, 12.5, ..., 20 mm
  planes.spacing = {1.0, 1.0, 2.5};
  planes.origin = {-20, -10, 10};
  // Unbounded: one slice per plane, offset in-plane by 1/pi pixel only.
  Geometry g = planning::dvh_raster_grid(planes, false);
  EXPECT_EQ(g.size[2], 5);
  EXPECT_NEAR(g.origin[0], -20 + 1 / M_PI, 1e-9);
  EXPECT_NEAR(g.origin[1], -10 + 1 / M_PI, 1e-9);
  EXPECT_NEAR(g.origin[2], 10, 1e-9);
  // Bounded: slices every 1.25 mm from 10.625 to 19.375, i.e. slabs covering [10, 20] exactly.
  g = planning::dvh_raster_grid(planes, true);
  EXPECT_EQ(g.size[2], 8);
  EXPECT_DOUBLE_EQ(g.spacing[2], 1.25);
  EXPECT_NEAR(g.origin[2], 10.625, 1e-9);
  EXPECT_NEAR(g.index_to_world({0, 0, 7.0})[2], 19.375, 1e-9);
  EXPECT_EQ(g.size[0], 50);
  EXPECT_DOUBLE_EQ(g.spacing[0], 1.0);
}

TEST(Dvh, DifferentialMatchesCumulative) {
  auto dvh = planning::compute_dvh(ramp_dose(), box_mask(10, 30), "box");
  std::vector<double> x, y, xd, v;
  dvh.cumulative(0.5, &x, &y);
  dvh.differential(0.5, &xd, &v);
  ASSERT_EQ(x.size(), xd.size());
  double total = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    EXPECT_DOUBLE_EQ(x[i], xd[i]);
    total += v[i];
    if (i + 1 < x.size()) {
      EXPECT_NEAR((y[i] - y[i + 1]) * dvh.volume_cc(), v[i], 1e-9) << i;
    }
  }
  EXPECT_NEAR(total, dvh.volume_cc(), 1e-9);
  // Voxel centres at 10, 11, ..., 29 Gy: 20 non-empty bins of one voxel column each.
  int nonempty = 0;
  for (double vi : v) nonempty += vi > 0;
  EXPECT_EQ(nonempty, 20);
  EXPECT_THROW(dvh.differential(0.0, &xd, &v), core::InvalidInput);
}
