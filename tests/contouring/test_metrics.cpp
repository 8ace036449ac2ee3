// Contour agreement metrics on analytic shapes, directory evaluation, bad input.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "isoline/contouring/metrics.h"
#include "isoline/contouring/model.h"
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

TEST(ContourMetrics, DicePlotHasADotPerCaseAMeanPerStructureAndMarksFlaggedReferences) {
  auto row = [](const std::string& c, const std::string& s, double dice, const std::string& flag = "") {
    contouring::EvalRow r;
    r.case_id = c;
    r.structure = s;
    r.m.dice = dice;
    r.ref_flag = flag;
    return r;
  };
  const std::vector<contouring::EvalRow> rows = {
      row("pt_1", "Larynx", 0.6), row("pt_2", "Larynx", 0.8), row("pt_3", "Larynx", 0.1, "reference 2.0 cc"),
      row("pt_1", "Mandible<&>", 0.9)};
  const std::string svg = contouring::dice_plot_svg(rows, "val");
  auto count = [&](const std::string& what) {
    std::size_t n = 0;
    for (auto p = svg.find(what); p != std::string::npos; p = svg.find(what, p + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("<circle"), 3u);                         // the plausible references
  EXPECT_EQ(count("stroke=\"#d62728\""), 1u);             // the flagged one, a red x
  EXPECT_NE(svg.find(">0.50</text>"), std::string::npos);  // Larynx mean over all 3 cases
  EXPECT_NE(svg.find(">0.90</text>"), std::string::npos);
  EXPECT_NE(svg.find("pt_3: Dice 0.100 (reference 2.0 cc)"), std::string::npos);
  EXPECT_NE(svg.find("Mandible&lt;&amp;&gt;"), std::string::npos);  // names escaped
  EXPECT_EQ(svg.find("Mandible<&>"), std::string::npos);
  EXPECT_NE(svg.find(">n=3</text>"), std::string::npos);
  // Dice 0.8 sits 0.2 of the plot height below Dice 1 (with a title: y = 44 + 260 * (1 - d)).
  EXPECT_NE(svg.find("cy=\"96.0\""), std::string::npos) << svg;
}

TEST(ContourMetrics, EvalCommandPrintsTable) {
  test::TempDir t;
  auto g = grid(1, 1, 1, 32);
  std::filesystem::create_directories(t.path() / "pred");
  std::filesystem::create_directories(t.path() / "ref");
  core::write_image(sphere(g, {0, 0, 0}, 8), t.file("pred/Mandible.nii.gz"));
  core::write_image(sphere(g, {0, 0, 0}, 8), t.file("ref/Mandible.nii.gz"));
  auto r = test::run_command(test::isoline_bin() + " eval contours --pred " + t.file("pred") + " --ref " +
                             t.file("ref") + " --json " + t.file("m.json") + " --plot " + t.file("d.svg"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Mandible"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1.000"), std::string::npos) << r.output;
  EXPECT_TRUE(std::filesystem::exists(t.file("m.json")));
  std::ifstream svg(t.file("d.svg"));
  const std::string pic((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
  EXPECT_EQ(pic.rfind("<svg", 0), 0u);
  EXPECT_NE(pic.find("Mandible: Dice 1.000"), std::string::npos) << pic;
  auto notsvg = test::run_command(test::isoline_bin() + " eval contours --pred " + t.file("pred") + " --ref " +
                                  t.file("ref") + " --plot " + t.file("d.png"));
  EXPECT_NE(notsvg.exit_code, 0);
  EXPECT_NE(notsvg.output.find("--plot names an .svg file"), std::string::npos) << notsvg.output;
  auto bad = test::run_command(test::isoline_bin() + " eval contours --pred " + t.file("nope") + " --ref " + t.file("ref"));
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("nope"), std::string::npos) << bad.output;
}

namespace {

// Two cases on a 1 mm grid: pt_1's SpinalCord reference is a 14 mm sphere (~11.5 cc, far above
// the card's 1-5 cc), pt_2's an 8 mm one (~2.1 cc, inside); the predictions are 8 mm spheres.
// "Other" (not in the card) has a huge reference in both cases.
void write_reference_check_cases(const test::TempDir& t) {
  auto g = grid(1, 1, 1, 40);
  for (const char* c : {"pt_1", "pt_2"}) {
    std::filesystem::create_directories(t.path() / "pred" / c);
    std::filesystem::create_directories(t.path() / "ref" / c);
    core::write_image(sphere(g, {0, 0, 0}, 8), (t.path() / "pred" / c / "SpinalCord.nii.gz").string());
    core::write_image(sphere(g, {1, 0, 0}, 8), (t.path() / "pred" / c / "Other.nii.gz").string());
    core::write_image(sphere(g, {0, 0, 0}, 16), (t.path() / "ref" / c / "Other.nii.gz").string());
  }
  core::write_image(sphere(g, {0, 0, 0}, 14), t.file("ref/pt_1/SpinalCord.nii.gz"));
  core::write_image(sphere(g, {2, 0, 0}, 8), t.file("ref/pt_2/SpinalCord.nii.gz"));
}

// A minimal model card knowing only SpinalCord (1-5 cc).
void write_small_card(const std::string& path) {
  nlohmann::json j = {
      {"structures", {"SpinalCord"}},
      {"file", "none.pt"},
      {"input", {{"spacing_mm", {4, 4, 2.5}}, {"context_slices_each_side", 2},
                 {"intensity", {{"clip_hu", {-1000, 1000}}, {"scale", 0.002}}}}},
      {"expected", {{"SpinalCord", {{"volume_cc", {1.0, 5.0}}, {"dx_mm", {-30, 30}}, {"dy_mm", {-20, 60}}}}}}};
  std::ofstream(path) << j.dump();
}

}  // namespace

TEST(ContourMetrics, ReferenceCheckFlagsVolumesOutsideTheCardRange) {
  test::TempDir t;
  write_reference_check_cases(t);
  write_small_card(t.file("card.json"));
  const auto card = contouring::load_model_card(t.file("card.json"));
  auto rows = contouring::evaluate_dirs(t.file("pred"), t.file("ref"), {"SpinalCord", "Other"});
  ASSERT_EQ(rows.size(), 4u);
  for (const auto& r : rows) EXPECT_TRUE(r.ref_flag.empty());  // evaluate_dirs alone checks nothing
  EXPECT_EQ(contouring::flag_references(rows, card), 1);
  ASSERT_EQ(rows[0].case_id, "pt_1");
  ASSERT_EQ(rows[0].structure, "SpinalCord");
  EXPECT_GT(rows[0].m.ref_cc, 5.0);
  EXPECT_NE(rows[0].ref_flag.find("outside the usual 1.0-5.0 cc"), std::string::npos) << rows[0].ref_flag;
  char cc[32];
  std::snprintf(cc, sizeof cc, "reference %.1f cc", rows[0].m.ref_cc);
  EXPECT_NE(rows[0].ref_flag.find(cc), std::string::npos) << rows[0].ref_flag;
  EXPECT_EQ(rows[1].structure, "Other");  // far above any SpinalCord, but unknown to the card
  EXPECT_GT(rows[1].m.ref_cc, 15.0);
  EXPECT_TRUE(rows[1].ref_flag.empty()) << rows[1].ref_flag;
  EXPECT_EQ(rows[2].case_id, "pt_2");
  EXPECT_GT(rows[2].m.ref_cc, 1.0);
  EXPECT_LT(rows[2].m.ref_cc, 5.0);
  EXPECT_TRUE(rows[2].ref_flag.empty()) << rows[2].ref_flag;
  EXPECT_TRUE(rows[3].ref_flag.empty());

  auto sum = contouring::summarize(rows);
  ASSERT_EQ(sum.size(), 2u);
  EXPECT_EQ(sum[0].structure, "SpinalCord");
  EXPECT_EQ(sum[0].cases, 2);
  EXPECT_EQ(sum[0].flagged, 1);
  EXPECT_NEAR(sum[0].dice_mean, 0.5 * (rows[0].m.dice + rows[2].m.dice), 1e-12);  // all cases
  EXPECT_NEAR(sum[0].dice_mean_plausible, rows[2].m.dice, 1e-12);
  EXPECT_GT(sum[0].dice_mean_plausible, sum[0].dice_mean + 0.1);
  EXPECT_EQ(sum[1].flagged, 0);
  EXPECT_NEAR(sum[1].dice_mean_plausible, sum[1].dice_mean, 1e-12);
  // Every case flagged: no plausible mean (NaN), the main mean unchanged.
  std::vector<contouring::EvalRow> only = {rows[0]};
  auto s1 = contouring::summarize(only);
  EXPECT_EQ(s1[0].flagged, 1);
  EXPECT_TRUE(std::isnan(s1[0].dice_mean_plausible));
  EXPECT_DOUBLE_EQ(s1[0].dice_mean, rows[0].m.dice);
}

TEST(ContourMetrics, ReferenceFlagBounds) {
  contouring::ModelCard card;
  contouring::ExpectedRange r;
  r.volume_cc_min = 5.39;
  r.volume_cc_max = 79.69;
  r.known = true;
  card.expected["RightParotid"] = r;
  EXPECT_EQ(contouring::reference_flag("RightParotid", 5.39, card), "");  // bounds are inside
  EXPECT_EQ(contouring::reference_flag("RightParotid", 79.69, card), "");
  EXPECT_EQ(contouring::reference_flag("RightParotid", 30, card), "");
  EXPECT_EQ(contouring::reference_flag("LeftParotid", 500, card), "");  // not in the card
  // Just below the minimum: printed with enough decimals not to read "5.4 cc, outside 5.4-...".
  EXPECT_EQ(contouring::reference_flag("RightParotid", 5.388, card),
            "reference 5.388 cc, outside the usual 5.39-79.7 cc");
  EXPECT_EQ(contouring::reference_flag("RightParotid", 484.04, card),
            "reference 484.0 cc, outside the usual 5.4-79.7 cc");
  EXPECT_EQ(contouring::reference_flag("RightParotid", 0, card), "reference 0.0 cc, outside the usual 5.4-79.7 cc");
  card.expected["RightParotid"].known = false;
  EXPECT_EQ(contouring::reference_flag("RightParotid", 484.04, card), "");
}

TEST(ContourMetrics, EvalCommandReferenceCheck) {
  test::TempDir t;
  write_reference_check_cases(t);
  write_small_card(t.file("card.json"));
  const std::string base = test::isoline_bin() + " eval contours -q --pred " + t.file("pred") + " --ref " + t.file("ref");
  auto r = test::run_command(base + " --per-case --model " + t.file("card.json") + " --json " + t.file("m.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Dice w/o flagged"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("pt_1 SpinalCord: reference "), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("pt_2 SpinalCord: reference "), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Other: reference"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("card.json"), std::string::npos) << r.output;
  // --per-case marks the flagged row only
  std::size_t marks = 0;
  for (std::size_t p = r.output.find("FLAGGED"); p != std::string::npos; p = r.output.find("FLAGGED", p + 1)) ++marks;
  EXPECT_EQ(marks, 1u) << r.output;
  nlohmann::json j;
  std::ifstream(t.file("m.json")) >> j;
  EXPECT_EQ(j["reference_check"]["model_card"], t.file("card.json"));
  EXPECT_EQ(j["structures"]["SpinalCord"]["flagged_cases"], 1);
  EXPECT_EQ(j["structures"]["Other"]["flagged_cases"], 0);
  double pt2 = -1;
  int flagged = 0;
  for (const auto& c : j["cases"]) {
    if (c["case"] == "pt_1" && c["structure"] == "SpinalCord") {
      ASSERT_TRUE(c["ref_flag"].is_string()) << c.dump();
      EXPECT_NE(c["ref_flag"].get<std::string>().find("outside the usual"), std::string::npos);
    } else {
      EXPECT_TRUE(c["ref_flag"].is_null()) << c.dump();
    }
    if (c["case"] == "pt_2" && c["structure"] == "SpinalCord") pt2 = c["dice"].get<double>();
    flagged += c["ref_flag"].is_string();
  }
  EXPECT_EQ(flagged, 1);
  EXPECT_NEAR(j["structures"]["SpinalCord"]["dice_mean_unflagged"].get<double>(), pt2, 1e-12);
  EXPECT_LT(j["structures"]["SpinalCord"]["dice_mean"].get<double>(), pt2 - 0.1);

  // The default card comes from $ISOLINE_MODEL when set.
  auto d = test::run_command("ISOLINE_MODEL=" + t.file("card.json") + " " + base);
  ASSERT_EQ(d.exit_code, 0) << d.output;
  EXPECT_NE(d.output.find("pt_1 SpinalCord: reference "), std::string::npos) << d.output;

  // Switched off: no flags, no extra columns, JSON nulls.
  auto off = test::run_command(base + " --per-case --no-reference-check --json " + t.file("off.json"));
  ASSERT_EQ(off.exit_code, 0) << off.output;
  EXPECT_EQ(off.output.find("FLAGGED"), std::string::npos) << off.output;
  EXPECT_EQ(off.output.find("flagged"), std::string::npos) << off.output;
  nlohmann::json jo;
  std::ifstream(t.file("off.json")) >> jo;
  EXPECT_TRUE(jo["reference_check"].is_null());
  EXPECT_TRUE(jo["structures"]["SpinalCord"]["flagged_cases"].is_null());
  for (const auto& c : jo["cases"]) EXPECT_TRUE(c["ref_flag"].is_null()) << c.dump();

  // An unreadable card: error naming it, exit 1, no JSON written.
  auto bad = test::run_command(base + " --model " + t.file("no_such_card.json") + " --json " + t.file("bad.json"));
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("no_such_card.json"), std::string::npos) << bad.output;
  EXPECT_FALSE(std::filesystem::exists(t.file("bad.json")));
  std::ofstream(t.file("broken.json")) << "{\"structures\": [";
  auto broken = test::run_command(base + " --model " + t.file("broken.json") + " --json " + t.file("bad.json"));
  EXPECT_EQ(broken.exit_code, 1) << broken.output;
  EXPECT_NE(broken.output.find("broken.json"), std::string::npos) << broken.output;
  EXPECT_FALSE(std::filesystem::exists(t.file("bad.json")));
  auto both = test::run_command(base + " --model " + t.file("card.json") + " --no-reference-check");
  EXPECT_EQ(both.exit_code, 2) << both.output;
}

namespace {

// "<dir>/<case>/<name>.nii.gz" (case "" = flat), parents created.
std::string mask_path(const test::TempDir& t, const std::string& side, const std::string& c, const std::string& n) {
  const auto dir = c.empty() ? t.path() / side : t.path() / side / c;
  std::filesystem::create_directories(dir);
  return (dir / (n + ".nii.gz")).string();
}

using isoline::test::has;

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

}  // namespace

TEST(ContourMetrics, PredictionNotOverlappingTheReferenceIsRefused) {
  // Same mask, origin 1000 mm away: another patient or frame, never "Dice 0".
  test::TempDir t;
  auto g = grid(1, 1, 1, 24);
  core::write_image(sphere(g, {0, 0, 0}, 6), mask_path(t, "ref", "", "Brainstem"));
  Geometry far = g;
  far.origin[0] += 1000;
  core::write_image(sphere(far, {1000, 0, 0}, 6), mask_path(t, "pred", "", "Brainstem"));
  try {
    contouring::evaluate_contours(t.file("pred"), t.file("ref"), {});
    FAIL() << "a prediction 1000 mm away was scored";
  } catch (const core::InvalidInput& e) {
    const std::string w = e.what();
    EXPECT_TRUE(has(w, "evaluate contours: " + t.file("pred/Brainstem.nii.gz"))) << w;
    EXPECT_TRUE(has(w, "does not overlap its reference " + t.file("ref/Brainstem.nii.gz"))) << w;
    EXPECT_TRUE(has(w, "different patient or frame of reference")) << w;
  }
}

TEST(ContourMetrics, PredictionOnAShiftedOverlappingGridIsResampledWithOneWarningPerCase) {
  test::TempDir t;
  auto g = grid(1, 1, 1, 24);
  Geometry shifted = g;  // 3 whole voxels along x: nearest-neighbour resampling is exact
  shifted.origin[0] += 3;
  for (const char* c : {"pt_1", "pt_2"})
    for (const char* n : {"Brainstem", "Larynx"}) {
      core::write_image(sphere(g, {0, 0, 0}, 5), mask_path(t, "ref", c, n));
      // pt_1's predictions on the shifted grid (the same spheres in space), pt_2's on the reference grid.
      core::write_image(sphere(std::string(c) == "pt_1" ? shifted : g, {0, 0, 0}, 5), mask_path(t, "pred", c, n));
    }
  // pt_1's Larynx prediction partly beyond the reference grid's +x edge.
  core::write_image(sphere(shifted, {11, 0, 0}, 3), mask_path(t, "pred", "pt_1", "Larynx"));
  const auto res = contouring::evaluate_contours(t.file("pred"), t.file("ref"), {});
  ASSERT_EQ(res.rows.size(), 4u);
  EXPECT_TRUE(res.rows[0].resampled);
  EXPECT_DOUBLE_EQ(res.rows[0].m.dice, 1.0);  // pt_1 Brainstem: the same sphere, resampled
  EXPECT_TRUE(res.rows[1].resampled);
  EXPECT_FALSE(res.rows[2].resampled);
  EXPECT_FALSE(res.rows[3].resampled);
  ASSERT_EQ(res.warnings.size(), 1u) << joined(res.warnings);
  const std::string& w = res.warnings[0];
  EXPECT_TRUE(has(w, "case pt_1: prediction on another grid than the reference")) << w;
  EXPECT_TRUE(has(w, "nearest neighbour): Brainstem, Larynx")) << w;
  EXPECT_TRUE(has(w, "outside the reference grid, not scored: ")) << w;
  EXPECT_TRUE(has(w, "% of Larynx")) << w;
}

TEST(ContourMetrics, ProbabilityAndLabelMapsAreRefused) {
  test::TempDir t;
  auto g = grid(1, 1, 1, 16);
  const Image s = sphere(g, {0, 0, 0}, 4);
  core::write_image(s, mask_path(t, "ref", "", "Brainstem"));
  Image prob(g, core::PixelType::Float32);  // 0.9 inside: truncated to uint8 it was an empty prediction
  for (std::size_t v = 0; v < s.num_voxels(); ++v) prob.data<float>()[v] = s.data<std::uint8_t>()[v] ? 0.9f : 0.f;
  core::write_image(prob, mask_path(t, "pred", "", "Brainstem"));
  try {
    contouring::evaluate_contours(t.file("pred"), t.file("ref"), {});
    FAIL() << "a probability map was scored";
  } catch (const core::InvalidInput& e) {
    const std::string w = e.what();
    EXPECT_TRUE(has(w, t.file("pred/Brainstem.nii.gz") + ": not a structure mask (float values 0 to 0.9, fractional"))
        << w;
    EXPECT_TRUE(has(w, "a probability map? threshold it first")) << w;
  }
  // A label map (integers 0..3) as the reference.
  core::write_image(s, mask_path(t, "pred", "", "Brainstem"));
  Image labels = s.clone();
  labels.at<std::uint8_t>(8, 8, 8) = 3;
  core::write_image(labels, mask_path(t, "ref", "", "Brainstem"));
  try {
    contouring::evaluate_contours(t.file("pred"), t.file("ref"), {});
    FAIL() << "a label map was scored";
  } catch (const core::InvalidInput& e) {
    const std::string w = e.what();
    EXPECT_TRUE(has(w, t.file("ref/Brainstem.nii.gz") + ": not a structure mask (integer values 0 to 3")) << w;
    EXPECT_TRUE(has(w, "a label map?")) << w;
  }
  // 0/1 stored as float is a mask.
  core::write_image(s.cast(core::PixelType::Float32), mask_path(t, "ref", "", "Brainstem"));
  EXPECT_DOUBLE_EQ(contouring::evaluate_contours(t.file("pred"), t.file("ref"), {}).rows.at(0).m.dice, 1.0);
}

TEST(ContourMetrics, NamesThatMatchNothingAreListed) {
  test::TempDir t;
  auto g = grid(1, 1, 1, 16);
  const Image s = sphere(g, {0, 0, 0}, 4);
  for (const char* c : {"pt_1", "pt_2"}) {
    core::write_image(s, mask_path(t, "pred", c, "Brainstem"));  // the reference spells it BrainStem
    core::write_image(s, mask_path(t, "ref", c, "BrainStem"));
    core::write_image(s, mask_path(t, "ref", c, "SpinalCord"));
    core::write_image(s, mask_path(t, "ref", c, "Larynx"));
  }
  core::write_image(s, mask_path(t, "pred", "pt_1", "SpinalCord"));
  core::write_image(s, mask_path(t, "pred", "pt_1", "Larynx"));  // pt_2 has no Larynx prediction
  std::filesystem::create_directories(t.path() / "pred/pt_3");      // on both sides, no masks
  std::filesystem::create_directories(t.path() / "ref/pt_3");
  core::write_image(s, mask_path(t, "ref", "pt_4", "Larynx"));       // no prediction folder
  auto res = contouring::evaluate_contours(t.file("pred"), t.file("ref"), {});
  const std::string w = joined(res.warnings);
  EXPECT_TRUE(has(w, "predicted structure(s) without a reference of that name in any case, never scored: "
                     "Brainstem (reference: BrainStem; names are case-sensitive)"))
      << w;
  EXPECT_TRUE(has(w, "case folder(s) on both sides without masks, not scored: pt_3 (neither side)")) << w;
  EXPECT_TRUE(has(w, "without a prediction, not scored: pt_4")) << w;
  // Larynx and SpinalCord are predicted for pt_1 only: pt_2's missing predictions are scored as
  // missed (Dice 0), not left out of the mean.
  ASSERT_EQ(res.rows.size(), 4u);
  EXPECT_EQ(res.rows[2].case_id, "pt_2");
  EXPECT_EQ(res.rows[2].structure, "Larynx");
  EXPECT_EQ(res.rows[2].m.dice, 0.0);
  // Requested names: one not in any reference (case differs), one nowhere at all.
  res = contouring::evaluate_contours(t.file("pred"), t.file("ref"), {"SpinalCord", "spinalcord", "Parotid"});
  ASSERT_EQ(res.rows.size(), 2u);
  EXPECT_TRUE(has(joined(res.warnings), "requested structure(s) without a reference of that name in any case, never "
                                        "scored: spinalcord (reference: SpinalCord; names are case-sensitive), "
                                        "Parotid\n"))
      << joined(res.warnings);
}

TEST(ContourMetrics, CaseFolderImagesThatAreNotMasksAreNotScored) {
  // OpenKBP-style case folders: ct, dose and possible_dose_mask beside the structure masks.
  test::TempDir t;
  auto g = grid(1, 1, 1, 16);
  const Image s = sphere(g, {0, 0, 0}, 4);
  Image ct(g, core::PixelType::Int16), dose(g, core::PixelType::Float32);
  ct.data<std::int16_t>()[0] = -1000;
  dose.data<float>()[0] = 70.5f;
  for (const char* side : {"pred", "ref"}) {
    core::write_image(s, mask_path(t, side, "pt_1", "Brainstem"));
    core::write_image(s, mask_path(t, side, "pt_1", "possible_dose_mask"));
    core::write_image(ct, mask_path(t, side, "pt_1", "ct"));
    core::write_image(dose, mask_path(t, side, "pt_1", "Dose"));
  }
  const auto res = contouring::evaluate_contours(t.file("pred"), t.file("ref"), {});
  ASSERT_EQ(res.rows.size(), 1u);
  EXPECT_EQ(res.rows[0].structure, "Brainstem");
  EXPECT_TRUE(res.warnings.empty()) << joined(res.warnings);
}

TEST(ContourMetrics, EvalCommandPrintsNaForUndefinedHd95AndAlignsLongNames) {
  test::TempDir t;
  auto g = grid(1, 1, 1, 16);
  const std::string long_name = "Parotid_Superficial_L";  // longer than the 14-character column
  core::write_image(sphere(g, {0, 0, 0}, 4), mask_path(t, "ref", "", long_name));
  core::write_image(Image(g, core::PixelType::UInt8), mask_path(t, "pred", "", long_name));  // missed
  core::write_image(sphere(g, {0, 0, 0}, 4), mask_path(t, "ref", "", "Larynx"));
  core::write_image(sphere(g, {0, 0, 0}, 4), mask_path(t, "pred", "", "Larynx"));
  Geometry shifted = g;
  shifted.origin[1] -= 2;
  core::write_image(sphere(shifted, {0, 0, 0}, 4), mask_path(t, "pred", "", "Larynx"));
  auto r = test::run_command(test::isoline_bin() + " eval contours -q --no-reference-check --per-case --pred " +
                             t.file("pred") + " --ref " + t.file("ref") + " --json " + t.file("e.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(has(r.output, "nan")) << r.output;
  EXPECT_FALSE(has(r.output, "inf")) << r.output;
  EXPECT_TRUE(has(r.output, "warning: prediction on another grid than the reference")) << r.output;
  EXPECT_TRUE(has(r.output, "(resampled)")) << r.output;
  // Table lines: the "cases" column starts at the same position in the header and every row.
  std::istringstream lines(r.output);
  std::string line, header;
  std::vector<std::string> table;
  while (std::getline(lines, line)) {
    if (line.rfind("structure ", 0) == 0) header = line;
    if (line.rfind(long_name + " ", 0) == 0 || line.rfind("Larynx ", 0) == 0) table.push_back(line);
  }
  ASSERT_FALSE(header.empty()) << r.output;
  ASSERT_EQ(table.size(), 2u) << r.output;
  if (table[0].rfind(long_name, 0) != 0) std::swap(table[0], table[1]);
  const std::size_t cases_end = header.find("cases") + 5;
  for (const auto& row : table) {
    EXPECT_EQ(row.find_first_not_of(' ', row.find(' ')), cases_end - 1) << header << "\n" << row;
    EXPECT_EQ(row.size(), header.size()) << header << "\n" << row;
  }
  EXPECT_TRUE(has(table[0], " n/a ")) << table[0];  // HD95 mean and median undefined: n/a, not nan
  nlohmann::json j;
  std::ifstream(t.file("e.json")) >> j;
  EXPECT_TRUE(j["structures"][long_name]["hd95_mm_mean"].is_null());
  ASSERT_EQ(j["warnings"].size(), 1u) << j.dump();
  EXPECT_TRUE(has(j["warnings"][0].get<std::string>(), "resampled onto the reference grid")) << j.dump();
  for (const auto& c : j["cases"]) EXPECT_EQ(c["resampled"].get<bool>(), c["structure"] == "Larynx") << c.dump();
}
