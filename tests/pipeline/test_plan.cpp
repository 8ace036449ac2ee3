// Achievable-dose planning (planning/plan.h) on a generated head-and-neck patient.
#include <filesystem>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "isoline/core/error.h"
#include "isoline/core/mask_ops.h"
#include "isoline/dose/dose.h"
#include "isoline/phantoms/phantoms.h"
#include "isoline/planning/plan.h"
#include "tests/test_util.h"

using namespace isoline;

namespace {

// A coarse patient (4 x 4 x 5 mm) planned with the shipped template, fewer iterations.
struct Case {
  phantoms::Phantom p;
  planning::PlanTemplate tpl;
  planning::PlanResult r;
};

const Case& planned() {
  static Case c = [] {
    Case c;
    phantoms::HeadNeckOptions o;
    o.seed = 11;
    o.size = {96, 96, 56};
    o.spacing = {4.0, 4.0, 5.0};
    o.noise_sd_hu = 0;
    c.p = phantoms::make_head_neck(o);
    c.tpl = planning::load_template("hn");
    c.tpl.max_iterations = 150;
    c.r = planning::make_plan(c.p.ct, c.p.structures, c.tpl);
    return c;
  }();
  return c;
}

}  // namespace

// The plan JSON read back and recomputed gives the plan's dose.
void check_written_plan_recomputes(const Case& c) {
  test::TempDir tmp;
  const std::string path = tmp.file("plan.json");
  planning::write_plan_json(c.r.plan, c.r.fractions, path);
  {  // a shipped machine is written by name: the plan reads back on another installation
    std::ifstream f(path);
    const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("\"machine\": \"" + std::filesystem::path(c.r.plan.machine_path).stem().string() + "\""),
              std::string::npos);
  }
  dose::Plan back = dose::read_plan(path);
  ASSERT_EQ(back.fractions, 35);
  ASSERT_EQ(back.beams.size(), c.r.plan.beams.size());
  // Recompute on the planning grid: the CT resampled as make_plan does.
  core::Image ct = core::resample(c.p.ct.cast(core::PixelType::Float32), c.r.dose.geometry(),
                                  core::Interpolation::Linear, -1000.0);
  core::Image d = dose::compute_dose(ct, back);
  const float* a = d.data<float>();
  const float* b = c.r.dose.data<float>();
  // The plan's dose is the computed dose where there is matter (body, structures, CT above
  // -500 HU; one dose voxel wider) and 0 Gy in the air around it, where the computation gives
  // dose too.
  double max_diff = 0, max_dose = 0, air_dose = 0;
  std::size_t zeroed = 0;
  for (std::size_t v = 0; v < d.num_voxels(); ++v) {
    const double recomputed = double(a[v]) * back.fractions;
    if (b[v] > 0.0f)
      max_diff = std::max(max_diff, std::abs(recomputed - b[v]));
    else if (recomputed > 0.001)
      ++zeroed, air_dose = std::max(air_dose, recomputed);
    max_dose = std::max(max_dose, double(b[v]));
  }
  EXPECT_GT(max_dose, 60.0);
  EXPECT_LT(max_diff, 0.005 * max_dose);
  EXPECT_GT(zeroed, 0u) << "the air around the patient receives dose in the computation";
  EXPECT_GT(air_dose, 1.0);
  core::Image ct_hu = core::resample(c.p.ct.cast(core::PixelType::Float32), c.r.dose.geometry(),
                                     core::Interpolation::Linear, -1000.0);
  for (std::size_t v = 0; v < d.num_voxels(); ++v) {
    if (b[v] == 0.0f && double(a[v]) * back.fractions > 1.0) {
      ASSERT_LE(ct_hu.data<float>()[v], -500.0f) << "dose removed from a voxel of tissue, voxel " << v;
    }
  }
}

// The patient of seed 11 on a small grid (the cases of the error tests below).
phantoms::Phantom seed11(const core::Index3& size, const core::Vec3& spacing) {
  phantoms::HeadNeckOptions o;
  o.seed = 11;
  o.size = size;
  o.spacing = spacing;
  return phantoms::make_head_neck(o);
}

// `all` without the structures `drop` names.
template <typename Drop>
core::StructureSet without(const core::StructureSet& all, Drop drop) {
  core::StructureSet s(all.geometry());
  for (const auto& st : all)
    if (!drop(st.name)) s.add(st);
  return s;
}

bool is_ptv(const std::string& name) { return name.rfind("PTV", 0) == 0; }

void check_missing_targets_error(const Case& c) {
  const core::StructureSet oars = without(c.p.structures, is_ptv);
  try {
    planning::make_plan(c.p.ct, oars, c.tpl);
    FAIL() << "expected InvalidInput";
  } catch (const core::InvalidInput& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("PTV70"), std::string::npos) << m;
    EXPECT_NE(m.find("Brainstem"), std::string::npos) << m;  // lists what is there
  }
}

TEST(Plan, ShippedTemplateIsTheOpenKbpArrangement) {
  auto t = planning::load_template("hn");
  ASSERT_EQ(t.gantry_deg.size(), 9u);
  EXPECT_DOUBLE_EQ(t.gantry_deg[1], 40.0);
  EXPECT_EQ(t.fractions, 35);
  ASSERT_EQ(t.targets.size(), 3u);
  EXPECT_EQ(t.targets[0].structure, "PTV70");
  EXPECT_DOUBLE_EQ(t.targets[2].dose_gy, 56.0);
  EXPECT_FALSE(t.criteria_path.empty());
  EXPECT_EQ(planning::load_criteria(t.criteria_path).size(), 10u);
}

TEST(Plan, CoversTargetsAndMeetsSerialOrganLimitsOnPhantom) {
  const Case& c = planned();
  const auto& r = c.r;
  ASSERT_EQ(r.plan.beams.size(), 9u);
  EXPECT_EQ(r.fractions, 35);
  for (const auto& b : r.plan.beams) {
    EXPECT_FALSE(b.fluence.empty()) << b.name;
    EXPECT_GT(b.mu, 0.0) << b.name;
  }
  const auto& ptv70 = r.dvhs.at("PTV70");
  // Normalisation: D95 = prescription, raised by at most 3 % to lift D99 (this phantom's
  // airway in the PTV keeps D99 low, so the raise is used and reported).
  EXPECT_GE(ptv70.dose_at_percent(95), 70.0 - 0.35);
  EXPECT_LE(ptv70.dose_at_percent(95), 1.03 * 70.0 + 0.35);
  EXPECT_LT(ptv70.dose_at_cc(0.1), 1.13 * 70.0);
  // This phantom's PTV70 holds 4 cc of airway (9 %), low in dose as in any convolution
  // engine: coverage is judged on the CTV (no air), and the air is reported.
  EXPECT_GT(r.dvhs.at("CTV").dose_at_percent(99), 0.95 * 70.0);
  bool air_warning = false;
  for (const auto& w : r.warnings) air_warning |= w.find("PTV70") != std::string::npos && w.find("air") != std::string::npos;
  EXPECT_TRUE(air_warning);
  EXPECT_GT(r.dvhs.at("PTV56").dose_at_percent(95), 0.93 * 56.0);
  // The cord and brainstem limits are met, and the normal tissue far from the targets is spared.
  EXPECT_LT(r.dvhs.at("SpinalCord").dose_at_cc(0.1), 45.0);
  EXPECT_LT(r.dvhs.at("Brainstem").dose_at_cc(0.1), 50.0);
  EXPECT_LT(r.dvhs.at("Body").mean_gy(), 0.5 * 70.0);
  // Criteria table: all ten evaluated on the phantom (every structure exists).
  ASSERT_EQ(r.criteria.size(), 10u);
  for (const auto& cr : r.criteria) EXPECT_TRUE(cr.evaluated) << cr.criterion.description;
  EXPECT_GE(planning::count_passed(r.criteria), 6);
  EXPECT_GT(r.optimizer.iterations, 10);
  EXPECT_LT(r.optimizer.objective_history.back(), r.optimizer.objective_history.front());
  // A hot spot over 110 % of the prescription is said, and only then.
  double global = 0;
  for (std::size_t v = 0; v < r.dose.num_voxels(); ++v) global = std::max(global, double(r.dose.data<float>()[v]));
  bool hot = false;
  for (const auto& w : r.warnings) hot |= w.find("hot spot") != std::string::npos;
  EXPECT_EQ(hot, global > 1.10 * 70.0) << global;
  // Each criterion also on the sub-voxel DVH (what a TPS shows from RS + RD).
  for (const auto& cr : r.criteria) EXPECT_TRUE(std::isfinite(cr.value_subvoxel)) << cr.criterion.description;
  // One plan, several checks (planning takes a while): the written plan and the errors.
  check_written_plan_recomputes(c);
  check_missing_targets_error(c);
}

TEST(Plan, MissingLowerLevelsAreSkippedWithAWarning) {
  Case c;
  c.p = seed11({96, 96, 56}, {4.0, 4.0, 5.0});
  c.tpl = planning::load_template("hn");
  core::StructureSet s = without(c.p.structures, [](const std::string& n) { return n == "PTV63" || n == "PTV56"; });
  s.add("PTV63", core::Image::zeros<std::uint8_t>(s.geometry()));  // there, but empty (0 cc)
  // A structure mostly in the air behind the patient, beyond the planning dose grid (body +
  // margin): its DVH would count 0 Gy there without a word.
  core::Image slab = core::Image::zeros<std::uint8_t>(s.geometry());
  for (std::int64_t k = 0; k < s.geometry().size[2]; ++k)
    for (std::int64_t i = 0; i < s.geometry().size[0]; ++i)
      for (std::int64_t j = s.geometry().size[1] - 3; j < s.geometry().size[1]; ++j) slab.at<std::uint8_t>(i, j, k) = 1;
  s.add("TableTop", slab);
  planning::PlanTemplate t = c.tpl;  // coarse and short: only the bookkeeping is checked
  t.max_iterations = 10;
  t.correction_passes = 0;
  t.bixel_mm = 10;
  t.dose_grid_mm = 8;
  auto r = planning::make_plan(c.p.ct, s, t);
  bool warned = false, warned_missing = false;
  bool outside = false;
  for (const auto& w : r.warnings) {
    warned |= w.find("target PTV63 (63 Gy) is empty (0 cc): level skipped") != std::string::npos;
    warned_missing |= w.find("target PTV56 (56 Gy) is not in the structure set: level skipped") != std::string::npos;
    outside |= w.find("TableTop") != std::string::npos && w.find("outside the planning dose grid") != std::string::npos;
  }
  EXPECT_TRUE(warned) << "an empty target is said to be empty, not missing";
  EXPECT_TRUE(warned_missing);
  EXPECT_TRUE(outside) << "a structure beyond the dose grid is said";
  int not_evaluated = 0;
  for (const auto& cr : r.criteria) not_evaluated += !cr.evaluated;
  EXPECT_EQ(not_evaluated, 2);
}

// Targets that are there but empty (an auto-contour that found nothing, an empty mask) are not
// "absent": the message names them as empty (session 23 audit: "none of the template's targets
// (PTV70, PTV63, PTV56) is present; have: ..., PTV70, PTV63, PTV56, Body").
TEST(Plan, EmptyTargetsAreNamedAsEmptyNotAsMissing) {
  const phantoms::Phantom p = seed11({48, 48, 16}, {5.0, 5.0, 8.0});
  core::StructureSet s = without(p.structures, is_ptv);
  s.add("PTV70", core::Image::zeros<std::uint8_t>(s.geometry()));
  s.add("PTV56", core::Image::zeros<std::uint8_t>(s.geometry()));
  auto message = [&](const core::StructureSet& set) -> std::string {
    try {
      planning::make_plan(p.ct, set, planning::load_template("hn"));
    } catch (const core::InvalidInput& e) {
      return e.what();
    }
    return "planned";
  };
  std::string m = message(s);
  EXPECT_NE(m.find("none of the template's targets (PTV70, PTV63, PTV56) has a voxel to plan on: PTV70, PTV56 are "
                   "present but empty (0 cc); non-empty structures: "),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("Body"), std::string::npos) << m;
  EXPECT_EQ(m.find("PTV70", m.find("non-empty structures")), std::string::npos) << m;
  // None of them there at all: the message it always was.
  s.remove("PTV70");
  s.remove("PTV56");
  m = message(s);
  EXPECT_NE(m.find("none of the template's targets (PTV70, PTV63, PTV56) is present; have: "), std::string::npos) << m;
}

// A couch below the patient, outside the Body structure: the planning grid reaches it, so the
// planned beams are attenuated by it as a recomputation on the whole CT attenuates them (before,
// the grid was the body + 10 mm and a 16 mm slab cost 3 % of PTV70 D95 on recomputation).
TEST(Plan, ACouchOutsideTheBodyAttenuatesThePlannedBeams) {
  phantoms::HeadNeckOptions o;
  o.seed = 11;
  o.size = {80, 96, 40};
  o.spacing = {4.0, 4.0, 5.0};
  o.noise_sd_hu = 0;
  auto p = phantoms::make_head_neck(o);
  const core::Image& body = p.structures.get("Body").mask;
  const auto box = core::bounding_box(body);
  ASSERT_TRUE(box);
  const std::int64_t j0 = (*box)[4] + 4;  // 12 mm of air behind the head, then 20 mm of couch
  ASSERT_LT(j0 + 5, o.size[1]);
  core::Image ct = p.ct.cast(core::PixelType::Float32);
  for (std::int64_t k = 0; k < o.size[2]; ++k)
    for (std::int64_t j = j0; j < j0 + 5; ++j)
      for (std::int64_t i = 2; i < o.size[0] - 2; ++i) ct.at<float>(i, j, k) = 0.0f;
  planning::PlanTemplate t = planning::load_template("hn");
  t.max_iterations = 30;
  t.correction_passes = 0;
  t.bixel_mm = 10;
  t.dose_grid_mm = 4;
  t.criteria_path.clear();
  const auto r = planning::make_plan(ct, p.structures, t);
  // The grid holds the couch: its last row lies beyond the couch's far side.
  const auto far = r.dose.geometry().world_to_index(ct.geometry().index_to_world({0.0, double(j0 + 5), 0.0}));
  ASSERT_LT(far[1], double(r.dose.geometry().size[1])) << "the couch is outside the planning grid";
  // The couch keeps its dose (matter); the air between head and couch and behind the couch,
  // more than a dose voxel from either, is 0 Gy.
  auto dose_at = [&](double i, double j, double k) {
    const auto x = r.dose.geometry().world_to_index(ct.geometry().index_to_world({i, j, k}));
    return r.dose.at<float>(std::llround(x[0]), std::llround(x[1]), std::llround(x[2]));
  };
  EXPECT_GT(dose_at(40.0, double(j0 + 2), 20.0), 1.0f);
  EXPECT_EQ(dose_at(40.0, double((*box)[4] + 2), 20.0), 0.0f);
  EXPECT_EQ(dose_at(40.0, double(j0 + 6), 20.0), 0.0f);
  // Recomputed on the whole CT, couch included: the target dose is the planned one.
  const core::Image whole = dose::compute_dose(ct, r.plan);
  core::Image whole_total = whole;
  for (std::size_t v = 0; v < whole_total.num_voxels(); ++v) whole_total.data<float>()[v] *= float(r.fractions);
  const double planned = r.dvhs.at("PTV70").dose_at_percent(95);
  const double recomputed = planning::compute_dvh(whole_total, p.structures.get("PTV70").mask, "PTV70").dose_at_percent(95);
  EXPECT_NEAR(recomputed, planned, 0.01 * planned) << "planned " << planned << " Gy, recomputed " << recomputed << " Gy";
}

TEST(Plan, ATargetOutsideTheBodyIsAClearError) {
  const phantoms::Phantom p = seed11({64, 64, 32}, {5.0, 5.0, 6.0});
  core::StructureSet s = without(p.structures, [](const std::string& n) { return n == "Body"; });
  core::Image corner = core::Image::zeros<std::uint8_t>(s.geometry());  // a "body" that misses the targets
  for (std::int64_t k = 0; k < 4; ++k)
    for (std::int64_t j = 0; j < 4; ++j)
      for (std::int64_t i = 0; i < 4; ++i) corner.at<std::uint8_t>(i, j, k) = 1;
  s.add("Body", corner);
  try {
    planning::make_plan(p.ct, s, planning::load_template("hn"));
    FAIL() << "planned on targets outside the body";
  } catch (const core::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("lies inside the body"), std::string::npos) << e.what();
  }
}

TEST(Plan, TemplateErrorsNameFileAndEntry) {
  test::TempDir tmp;
  auto write = [&](const std::string& text) {
    std::ofstream(tmp.file("t.json")) << text;
    return tmp.file("t.json");
  };
  auto message = [](const std::string& path) -> std::string {
    try {
      planning::load_template(path);
    } catch (const core::Error& e) {
      return e.what();
    }
    return "";
  };
  std::string m = message(write("{not json"));
  EXPECT_NE(m.find("t.json"), std::string::npos) << m;
  m = message(write(R"({"targets": [{"structure": "PTV70", "dose_gy": 70}],
                        "objectives": [{"structure": "Cord", "type": "maximum", "dose_gy": 40}]})"));
  EXPECT_NE(m.find("objectives[0]"), std::string::npos) << m;
  EXPECT_NE(m.find("maximum"), std::string::npos) << m;
  m = message(write(R"({"targets": []})"));
  EXPECT_NE(m.find("targets"), std::string::npos) << m;
  m = message("no_such_template");
  EXPECT_NE(m.find("no_such_template"), std::string::npos) << m;
}
