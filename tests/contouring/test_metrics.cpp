// Contour agreement metrics on analytic shapes, directory evaluation, bad input.
#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "isoline/contouring/metrics.h"
#include "isoline/core/error.h"
#include "isoline/core/io.h"
#include "tests/test_util.h"

using namespace isoline;
using core::Geometry;
using core::Image;

namespace {

Geometry grid(double sx, double sy, double sz, std::int64_t n) {
  Geometry g;
  g.size = {n, n, n};
  g.spacing = {sx, sy, sz};
  g.origin = {-0.5 * sx * double(n - 1), -0.5 * sy * double(n - 1), -0.5 * sz * double(n - 1)};
  return g;
}

Image sphere(const Geometry& g, core::Vec3 c, double r) {
  Image m(g, core::PixelType::UInt8);
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i) {
        auto w = g.index_to_world({double(i), double(j), double(k)});
        double d2 = 0;
        for (int a = 0; a < 3; ++a) d2 += (w[a] - c[a]) * (w[a] - c[a]);
        m.at<std::uint8_t>(i, j, k) = d2 <= r * r ? 1 : 0;
      }
  return m;
}

// Dice of two spheres of radius r whose centres are d apart: lens volume / sphere volume.
double sphere_dice(double r, double d) {
  const double lens = M_PI * (4 * r + d) * (2 * r - d) * (2 * r - d) / 12.0;
  return lens / (4.0 / 3.0 * M_PI * r * r * r);
}

}  // namespace

TEST(ContourMetrics, IdenticalMasksArePerfect) {
  auto g = grid(1, 1, 1, 40);
  Image a = sphere(g, {0, 0, 0}, 10);
  auto m = contouring::compare_masks(a, a);
  EXPECT_DOUBLE_EQ(m.dice, 1.0);
  EXPECT_DOUBLE_EQ(m.hd95_mm, 0.0);
  EXPECT_DOUBLE_EQ(m.surface_dice, 1.0);
  EXPECT_NEAR(m.ref_cc, 4.0 / 3.0 * M_PI * 1000 / 1000.0, 0.2);
}

TEST(ContourMetrics, ShiftedSpheresGiveAnalyticDiceAndHd95) {
  // 1 mm isotropic voxels, radius 15 mm, shift 6 mm along x: HD95 ~ 0.95 * 6 mm.
  auto g = grid(1, 1, 1, 48);
  const double r = 15, d = 6;
  Image ref = sphere(g, {0, 0, 0}, r);
  Image pred = sphere(g, {d, 0, 0}, r);
  auto m = contouring::compare_masks(pred, ref, 4.0);
  EXPECT_NEAR(m.dice, sphere_dice(r, d), 0.02);
  EXPECT_NEAR(m.hd95_mm, 0.95 * d, 1.0);
  // surface within 4 mm: |d cos(theta)| <= 4 for cos uniform -> 4/6 of each surface.
  EXPECT_NEAR(m.surface_dice, 4.0 / 6.0, 0.08);
  // symmetric
  auto m2 = contouring::compare_masks(ref, pred, 4.0);
  EXPECT_NEAR(m2.dice, m.dice, 1e-12);
  EXPECT_NEAR(m2.hd95_mm, m.hd95_mm, 1e-9);
}

TEST(ContourMetrics, AnisotropicSpacingUsesMillimetres) {
  // 2 x 2 x 4 mm voxels; shift 8 mm along z (2 slices): HD95 ~ 0.95 * 8 mm.
  auto g = grid(2, 2, 4, 36);
  Image ref = sphere(g, {0, 0, 0}, 24);
  Image pred = sphere(g, {0, 0, 8}, 24);
  auto m = contouring::compare_masks(pred, ref, 4.0);
  EXPECT_NEAR(m.dice, sphere_dice(24, 8), 0.03);
  EXPECT_NEAR(m.hd95_mm, 0.95 * 8, 1.5);
  EXPECT_GT(m.hd95_mm, 4.0);  // not in voxels
}

TEST(ContourMetrics, ConcentricSpheresHaveHd95EqualToRadiusDifference) {
  auto g = grid(1, 1, 1, 50);
  auto m = contouring::compare_masks(sphere(g, {0, 0, 0}, 20), sphere(g, {0, 0, 0}, 14), 4.0);
  EXPECT_NEAR(m.hd95_mm, 6.0, 1.0);
  EXPECT_NEAR(m.dice, 2.0 * 14 * 14 * 14 / (20.0 * 20 * 20 + 14.0 * 14 * 14), 0.02);
  EXPECT_LT(m.surface_dice, 0.05);  // every distance is ~6 mm > 4 mm
}

TEST(ContourMetrics, EmptyMasks) {
  auto g = grid(1, 1, 1, 20);
  Image empty(g, core::PixelType::UInt8);
  Image s = sphere(g, {0, 0, 0}, 5);
  auto both = contouring::compare_masks(empty, empty);
  EXPECT_EQ(both.dice, 1.0);
  auto one = contouring::compare_masks(empty, s);
  EXPECT_EQ(one.dice, 0.0);
  EXPECT_TRUE(std::isinf(one.hd95_mm));
  EXPECT_EQ(one.surface_dice, 0.0);
}

TEST(ContourMetrics, BadInputIsRejected) {
  auto g = grid(1, 1, 1, 20);
  Image a = sphere(g, {0, 0, 0}, 5);
  Image b = sphere(grid(1, 1, 2, 20), {0, 0, 0}, 5);
  EXPECT_THROW(contouring::compare_masks(a, b), core::InvalidInput);
  EXPECT_THROW(contouring::compare_masks(a.cast(core::PixelType::Float32), a), core::InvalidInput);
  EXPECT_THROW(contouring::evaluate_dirs("/nonexistent/pred", "/nonexistent/ref", {}), core::IoError);
}

TEST(ContourMetrics, DirectoryEvaluationSkipsStructuresWithoutReference) {
  test::TempDir t;
  auto g = grid(1, 1, 1, 32);
  for (const char* c : {"pt_1", "pt_2"}) {
    std::filesystem::create_directories(t.path() / "pred" / c);
    std::filesystem::create_directories(t.path() / "ref" / c);
    core::write_image(sphere(g, {0, 0, 0}, 8), (t.path() / "pred" / c / "Brainstem.nii.gz").string());
    core::write_image(sphere(g, {2, 0, 0}, 8), (t.path() / "ref" / c / "Brainstem.nii.gz").string());
    core::write_image(sphere(g, {0, 0, 0}, 6), (t.path() / "pred" / c / "Larynx.nii.gz").string());
  }
  // Larynx delineated only for pt_2; Mandible only in the reference (missed: empty prediction)
  core::write_image(sphere(g, {0, 0, 0}, 6), (t.path() / "ref/pt_2/Larynx.nii.gz").string());
  core::write_image(sphere(g, {0, 0, 0}, 6), (t.path() / "ref/pt_1/Mandible.nii.gz").string());
  auto rows = contouring::evaluate_dirs((t.path() / "pred").string(), (t.path() / "ref").string(), {});
  ASSERT_EQ(rows.size(), 3u);  // Brainstem x2, Larynx x1 (Mandible not predicted, not listed)
  auto sum = contouring::summarize(rows);
  ASSERT_EQ(sum.size(), 2u);
  EXPECT_EQ(sum[0].structure, "Brainstem");
  EXPECT_EQ(sum[0].cases, 2);
  EXPECT_NEAR(sum[0].dice_mean, sphere_dice(8, 2), 0.04);
  EXPECT_EQ(sum[1].structure, "Larynx");
  EXPECT_EQ(sum[1].cases, 1);
  EXPECT_DOUBLE_EQ(sum[1].dice_mean, 1.0);
  // Asking for Mandible explicitly: scored where a reference exists, as an empty prediction.
  auto rows2 = contouring::evaluate_dirs((t.path() / "pred").string(), (t.path() / "ref").string(), {"Mandible"});
  ASSERT_EQ(rows2.size(), 1u);
  EXPECT_EQ(rows2[0].case_id, "pt_1");
  EXPECT_EQ(rows2[0].m.dice, 0.0);
  // A missed structure leaves HD95 undefined: counted apart, not averaged in as infinity.
  auto sum2 = contouring::summarize(rows2);
  EXPECT_EQ(sum2[0].hd95_undefined, 1);
  EXPECT_TRUE(std::isnan(sum2[0].hd95_mean));
  rows2.insert(rows2.end(), rows.begin(), rows.begin() + 2);
  rows2[1].structure = rows2[2].structure = "Mandible";
  auto sum3 = contouring::summarize(rows2);
  EXPECT_EQ(sum3[0].cases, 3);
  EXPECT_EQ(sum3[0].hd95_undefined, 1);
  EXPECT_NEAR(sum3[0].hd95_mean, 0.5 * (rows[0].m.hd95_mm + rows[1].m.hd95_mm), 1e-9);
  EXPECT_EQ(sum[0].hd95_undefined, 0);
}

TEST(ContourMetrics, EvalCommandPrintsTable) {
  test::TempDir t;
  auto g = grid(1, 1, 1, 32);
  std::filesystem::create_directories(t.path() / "pred");
  std::filesystem::create_directories(t.path() / "ref");
  core::write_image(sphere(g, {0, 0, 0}, 8), t.file("pred/Mandible.nii.gz"));
  core::write_image(sphere(g, {0, 0, 0}, 8), t.file("ref/Mandible.nii.gz"));
  auto r = test::run_command(test::isoline_bin() + " eval contours --pred " + t.file("pred") + " --ref " +
                             t.file("ref") + " --json " + t.file("m.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Mandible"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1.000"), std::string::npos) << r.output;
  EXPECT_TRUE(std::filesystem::exists(t.file("m.json")));
  auto bad = test::run_command(test::isoline_bin() + " eval contours --pred " + t.file("nope") + " --ref " + t.file("ref"));
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("nope"), std::string::npos) << bad.output;
}
