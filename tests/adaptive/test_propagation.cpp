// Contour propagation, fusion, field inversion and dose accumulation with known answers.
#include <cmath>

#include <algorithm>

#include <gtest/gtest.h>

#include "isoline/adaptive/accumulation.h"
#include "isoline/adaptive/adapt.h"
#include "isoline/adaptive/propagation.h"
#include "isoline/adaptive/synthetic.h"
#include "isoline/core/error.h"
#include "tests/adaptive/adaptive_test_util.h"

using namespace isoline;
using adaptive::DisplacementField;
using core::Geometry;
using core::Image;
using core::PixelType;
using core::Vec3;
using isoline::test::cube_grid;

namespace {

Image sphere(const Geometry& g, const Vec3& c, double r, std::uint8_t inside = 1) {
  return test::world_image<std::uint8_t>(g, [&](const Vec3& x) {
    double d = 0;
    for (int a = 0; a < 3; ++a) d += (x[a] - c[a]) * (x[a] - c[a]);
    return d <= r * r ? inside : 0;
  });
}

DisplacementField constant(const Geometry& g, const Vec3& t) {
  DisplacementField f = DisplacementField::zeros(g);
  for (std::size_t v = 0; v < g.num_voxels(); ++v)
    for (int a = 0; a < 3; ++a) f.data[3 * v + a] = static_cast<float>(t[a]);
  return f;
}

// A smooth "dose" f(x) on a grid.
Image smooth_dose(const Geometry& g) {
  return test::world_image<float>(g, [](const Vec3& x) {
    return 60.0 * std::exp(-(x[0] * x[0] + x[1] * x[1] + x[2] * x[2]) / (2 * 15.0 * 15.0));
  });
}

}  // namespace

TEST(Propagation, StructuresFollowTheField) {
  const Geometry g = cube_grid(32, 2.0);
  core::StructureSet planning(g);
  core::Structure s;
  s.name = "PTV70";
  s.type = core::StructureType::PTV;
  s.mask = sphere(g, {0, 0, 0}, 10.0, 255);  // any non-zero value inside
  s.description = "ground truth";
  planning.add(s);
  planning.add("Brainstem", sphere(g, {12, 0, 0}, 5.0));
  // New-CT point x corresponds to planning point x + (6, 0, -4): the anatomy moved by -t.
  const DisplacementField f = constant(g, {6.0, 0.0, -4.0});
  core::StructureSet p = adaptive::propagate_structures(planning, f);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_TRUE(p.geometry().same_grid(g));
  const auto& ptv = p.get("PTV70");
  EXPECT_EQ(ptv.type, core::StructureType::PTV);
  EXPECT_EQ(ptv.description, "propagated; ground truth");
  const Image expect = sphere(g, {-6, 0, 4}, 10.0);
  EXPECT_GT(adaptive::dice(ptv.mask, expect), 0.99);
  EXPECT_LT(adaptive::dice(ptv.mask, planning.get("PTV70").mask), 0.8);
  EXPECT_GT(adaptive::dice(p.get("Brainstem").mask, sphere(g, {6, 0, 4}, 5.0)), 0.95);
  EXPECT_THROW(adaptive::propagate_structures(planning, DisplacementField{}), core::InvalidInput);
}

TEST(Propagation, FuseKeepsTargetsAndFlagsDisagreement) {
  const Geometry g = cube_grid(24, 2.0);
  core::StructureSet prop(g), recon(g);
  prop.add("PTV70", sphere(g, {0, 0, 0}, 8.0));
  prop.add("LeftParotid", sphere(g, {10, 0, 0}, 5.0));
  prop.add("SpinalCord", sphere(g, {0, 10, 0}, 4.0));
  prop.add("Mandible", sphere(g, {0, -12, 0}, 4.0));
  recon.add("PTV70", sphere(g, {-10, 0, 0}, 8.0));         // a model's target is never used
  recon.add("LeftParotid", sphere(g, {11, 0, 0}, 5.0));    // agrees
  recon.add("SpinalCord", sphere(g, {0, 10, 12}, 4.0));    // disagrees
  recon.add("Body", sphere(g, {0, 0, 0}, 20.0));           // only re-contoured
  adaptive::FuseOptions opt;
  opt.dice_threshold = 0.7;
  auto r = adaptive::fuse_structures(prop, recon, opt);
  ASSERT_EQ(r.structures.size(), 5u);
  EXPECT_GT(adaptive::dice(r.structures.get("PTV70").mask, prop.get("PTV70").mask), 0.999);
  EXPECT_GT(adaptive::dice(r.structures.get("LeftParotid").mask, recon.get("LeftParotid").mask), 0.999);
  EXPECT_GT(adaptive::dice(r.structures.get("SpinalCord").mask, recon.get("SpinalCord").mask), 0.999);
  EXPECT_GT(adaptive::dice(r.structures.get("Mandible").mask, prop.get("Mandible").mask), 0.999);
  EXPECT_TRUE(r.structures.find("Body"));
  for (const auto& a : r.agreement) {
    if (a.name == "PTV70") {
      EXPECT_EQ(a.source, "propagated");
      EXPECT_TRUE(a.flagged);  // the versions disagree: reported, target still propagated
    }
    if (a.name == "LeftParotid") {
      EXPECT_EQ(a.source, "re-contoured");
      EXPECT_FALSE(a.flagged);
      EXPECT_GT(a.dice, 0.7);
    }
    if (a.name == "SpinalCord") {
      EXPECT_TRUE(a.flagged);
      EXPECT_LT(a.dice, 0.1);
    }
    if (a.name == "Mandible") {
      EXPECT_EQ(a.dice, -1.0);  // propagated only: no second version to compare
    }
  }
  EXPECT_EQ(r.structures.get("SpinalCord").description.rfind("review: propagated vs re-contoured Dice", 0), 0u)
      << r.structures.get("SpinalCord").description;
  EXPECT_EQ(r.structures.get("LeftParotid").description.find("review"), std::string::npos);
  core::StructureSet other(cube_grid(20, 2.0));
  other.add("Body", sphere(other.geometry(), {0, 0, 0}, 5.0));
  EXPECT_THROW(adaptive::fuse_structures(prop, other), core::InvalidInput);
}

TEST(Accumulation, InverseFieldOnAnotherGridWarpsDoseBack) {
  const Geometry gnew = cube_grid(40, 2.5);
  const Geometry gplan = cube_grid(30, 3.0, 1.3);  // coarser, offset: another grid
  adaptive::SyntheticFieldOptions so;
  so.max_mm = 8.0;
  so.sigma_mm = 25.0;
  so.seed = 5;
  DisplacementField u = adaptive::synthetic_field(gnew, so);  // new -> planning
  double residual = -1;
  DisplacementField v = adaptive::invert_field(u, gplan, 30, &residual);
  EXPECT_TRUE(v.geometry.same_grid(gplan));
  EXPECT_GE(residual, 0.0);
  EXPECT_LT(residual, 0.05);
  // Planned dose on the planning anatomy, the same dose "delivered" on the new anatomy
  // (D_new(x) = D_plan(x + u(x))), warped back: D_plan again.
  const Image planned = smooth_dose(gplan);
  const Image on_new = adaptive::warp(planned, u, 0.0);
  const Image back = adaptive::warp_dose(on_new, v);
  double err = 0, ref = 0;
  std::size_t n = 0;
  for (std::int64_t k = 5; k < 25; ++k)
    for (std::int64_t j = 5; j < 25; ++j)
      for (std::int64_t i = 5; i < 25; ++i) {
        err += std::abs(back.at<float>(i, j, k) - planned.at<float>(i, j, k));
        ref += std::abs(planned.at<float>(i, j, k));
        ++n;
      }
  EXPECT_LT(err / ref, 0.02);
  // Without the warp the error is large (the test can fail).
  double err0 = 0;
  const Image wrong = adaptive::warp_dose(on_new, DisplacementField::zeros(gplan));
  for (std::int64_t k = 5; k < 25; ++k)
    for (std::int64_t j = 5; j < 25; ++j)
      for (std::int64_t i = 5; i < 25; ++i) err0 += std::abs(wrong.at<float>(i, j, k) - planned.at<float>(i, j, k));
  EXPECT_GT(err0 / ref, 0.05);
}

// A new CT is another scan with its own coordinates: here its grid lies 200 mm (per axis)
// away from the planning grid, which it does not overlap at all. Before the inversion
// extended the field beyond its grid, every planning point started outside it, saw u = 0,
// never moved, and the dose warped back was 0 Gy everywhere.
TEST(Accumulation, InverseReachesANewCtInOtherCoordinates) {
  const Geometry gnew = cube_grid(40, 2.5, 200.0);
  const Geometry gplan = cube_grid(30, 3.0);
  adaptive::SyntheticFieldOptions so;
  so.max_mm = 5.0;
  so.sigma_mm = 25.0;
  so.seed = 7;
  DisplacementField u = adaptive::synthetic_field(gnew, so);  // new -> planning
  for (float& x : u.data) x -= 200.0f;
  double residual = -1;
  DisplacementField v = adaptive::invert_field(u, gplan, 30, &residual);
  EXPECT_LT(residual, 0.05);
  const Vec3 centre = v.sample({0, 0, 0});
  for (int a = 0; a < 3; ++a) EXPECT_NEAR(centre[a], 200.0, 6.0);
  const Image planned = smooth_dose(gplan);
  const Image on_new = adaptive::warp(planned, u, 0.0);
  const Image back = adaptive::warp_dose(on_new, v);
  double err = 0, ref = 0;
  for (std::int64_t k = 5; k < 25; ++k)
    for (std::int64_t j = 5; j < 25; ++j)
      for (std::int64_t i = 5; i < 25; ++i) {
        err += std::abs(back.at<float>(i, j, k) - planned.at<float>(i, j, k));
        ref += std::abs(planned.at<float>(i, j, k));
      }
  EXPECT_LT(err / ref, 0.02);
}

// Session 18 audit (lung pair): where tissue expands strongly between the scans (|grad u| > 1)
// the fixed-point inversion q <- p - u(q) diverges and stalled up to 23 mm off, silently.
// Here x + u(x) stretches a slab 2.5 times along x (u' = 1.5, invertible); Newton steps must
// bring every point back within 0.05 mm.
TEST(Accumulation, InversionConvergesWhereTheFieldIsNotContractive) {
  const Geometry g = cube_grid(40, 1.0);  // centred on 0
  DisplacementField u = DisplacementField::zeros(g);
  for (std::int64_t k = 0; k < 40; ++k)
    for (std::int64_t j = 0; j < 40; ++j)
      for (std::int64_t i = 0; i < 40; ++i) {
        const double x = g.index_to_world({double(i), double(j), double(k)})[0];
        // u' = 1.5 on |x| < 4, constant +-6 mm beyond (continuous, monotone x + u)
        const double ux = 1.5 * std::clamp(x, -4.0, 4.0);
        u.data[g.offset(i, j, k) * 3] = static_cast<float>(ux);
      }
  std::vector<float> residual;
  double worst = -1;
  DisplacementField v = adaptive::invert_field(u, g, 30, &worst, &residual);
  EXPECT_LT(worst, 0.05);
  std::size_t inside = 0;
  for (float r : residual) inside += r >= 0;
  EXPECT_GT(inside, g.num_voxels() / 2);
  // A point in the stretched slab: p = q + 2.5 q  ->  q = p / 2.5.
  const Vec3 p{5.0, 0.5, 0.5};
  const Vec3 back = v.sample(p);
  EXPECT_NEAR(p[0] + back[0], 2.0, 0.05);
}

TEST(Accumulation, SumsWeightedFractions) {
  const Geometry g = cube_grid(10, 3.0);
  adaptive::DoseAccumulator acc(g);
  Image d(g, PixelType::Float32);
  for (std::size_t v = 0; v < g.num_voxels(); ++v) d.data<float>()[v] = 2.0f;
  acc.add(d, 10);
  acc.add_warped(d, DisplacementField::zeros(g), 5);
  EXPECT_DOUBLE_EQ(acc.fractions(), 15.0);
  EXPECT_FLOAT_EQ(acc.total().at<float>(5, 5, 5), 30.0f);
  EXPECT_THROW(acc.add(Image(cube_grid(9, 3.0), PixelType::Float32)), core::InvalidInput);
  EXPECT_THROW(acc.add_warped(d, DisplacementField::zeros(cube_grid(9, 3.0))), core::InvalidInput);
}

TEST(Accumulation, ComparisonTableFlagsCriteria) {
  const Geometry g = cube_grid(20, 3.0);
  core::StructureSet s(g);
  s.add("PTV70", sphere(g, {0, 0, 0}, 12.0));
  s.add("SpinalCord", sphere(g, {0, 18, 0}, 5.0));
  Image good(g, PixelType::Float32), bad(g, PixelType::Float32);
  for (std::size_t v = 0; v < g.num_voxels(); ++v) {
    good.data<float>()[v] = s.get("PTV70").mask.value(v) ? 70.0f : 20.0f;
    bad.data<float>()[v] = s.get("PTV70").mask.value(v) ? 60.0f : 50.0f;
  }
  planning::Criterion cov{"PTV70", "D95%", false, 66.5, "PTV70 D95% >= 66.5 Gy"};
  planning::Criterion cord{"SpinalCord", "Dmax", true, 45.0, "SpinalCord Dmax <= 45 Gy"};
  planning::Criterion missing{"Brainstem", "Dmax", true, 54.0, "Brainstem Dmax <= 54 Gy"};
  const std::vector<planning::Criterion> crit{cov, cord, missing};
  auto a = adaptive::evaluate_dose("planned", good, s, crit);
  auto b = adaptive::evaluate_dose("unadapted", bad, s, crit);
  auto rows = adaptive::compare({&a, &b}, crit);
  ASSERT_GE(rows.size(), 3u + 3u + 2u);
  EXPECT_EQ(rows[0].pass, (std::vector<int>{1, 0}));
  EXPECT_NEAR(rows[0].values[0], 70.0, 0.5);
  EXPECT_EQ(rows[1].pass, (std::vector<int>{1, 0}));
  EXPECT_EQ(rows[2].pass, (std::vector<int>{-1, -1}));
  EXPECT_TRUE(std::isnan(rows[2].values[0]));
}

// align_plan moves each isocentre to the new-CT point that the rigid registration maps onto
// it (rotation about a centre plus translation), and changes nothing else.
TEST(Setup, AlignPlanMovesIsocentresThroughTheInverseRigidTransform) {
  adaptive::RigidTransform t;
  const double a = 10.0 * M_PI / 180.0;
  t.rotation = {std::cos(a), -std::sin(a), 0, std::sin(a), std::cos(a), 0, 0, 0, 1};
  t.center = {10, -20, 30};
  t.translation = {5, -3, 40};
  dose::Plan plan;
  plan.fractions = 30;
  for (double gantry : {0.0, 120.0}) {
    dose::Beam b;
    b.gantry_deg = gantry;
    b.isocenter_mm = {gantry, 12.0, -7.0};
    b.mu = 111.0;
    plan.beams.push_back(b);
  }
  const dose::Plan out = adaptive::align_plan(plan, t);
  ASSERT_EQ(out.beams.size(), 2u);
  EXPECT_EQ(out.fractions, 30);
  for (std::size_t n = 0; n < 2; ++n) {
    const auto& iso = out.beams[n].isocenter_mm;
    const Vec3 back = t.apply({iso[0], iso[1], iso[2]});
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(back[c], plan.beams[n].isocenter_mm[c], 1e-9);
    EXPECT_EQ(out.beams[n].gantry_deg, plan.beams[n].gantry_deg);
    EXPECT_EQ(out.beams[n].mu, 111.0);
  }
}
