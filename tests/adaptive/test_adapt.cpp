// End-to-end adaptive replanning on a phantom pair: the same seeded patient, planned on the
// first CT; on the second CT the anatomy is shifted and smoothly deformed and the tumour has
// shrunk. The original plan recomputed on the new anatomy must fail a clinical criterion
// (judged on the new CT's ground-truth structures) and the adapted plan must restore it.
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <gtest/gtest.h>

#include "isoline/adaptive/adapt.h"
#include "isoline/adaptive/synthetic.h"
#include "isoline/core/io.h"
#include "isoline/phantoms/phantoms.h"
#include "isoline/rtstruct/rtdose.h"
#include "isoline/rtstruct/rtstruct.h"
#include "tests/test_util.h"

using namespace isoline;
using core::Vec3;

namespace {

phantoms::HeadNeckOptions small_case(double tumour_scale) {
  phantoms::HeadNeckOptions o;
  o.seed = 7;
  o.site = "oropharynx";
  o.size = {64, 64, 44};      // 256 x 256 x 176 mm, 4 mm voxels: keeps the suite fast
  o.spacing = {4.0, 4.0, 4.0};
  o.noise_sd_hu = 5.0;
  o.tumour_scale = tumour_scale;
  return o;
}

const planning::CriterionResult* find(const std::vector<planning::CriterionResult>& rs, const std::string& d) {
  for (const auto& r : rs)
    if (r.criterion.description == d) return &r;
  return nullptr;
}

}  // namespace

// The planning case and its plan, made once for the suite.
class Adapt : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    planned_case = new phantoms::Phantom(phantoms::make_head_neck(small_case(1.0)));
    tpl = new planning::PlanTemplate(planning::load_template("hn"));
    original = new planning::PlanResult(planning::make_plan(planned_case->ct, planned_case->structures, *tpl));
    // New CT: same patient, tumour shrunk to 70 %, anatomy moved 7 mm (patient left, x) and
    // 3 mm (posterior, y) and deformed by a smooth field (max 5 mm): new(x) = B(x + t + w(x)).
    phantoms::Phantom later = phantoms::make_head_neck(small_case(0.7));
    const core::Geometry& g = later.ct.geometry();
    adaptive::SyntheticFieldOptions so;
    so.max_mm = 5.0;
    so.bumps = 4;
    so.sigma_mm = 40.0;
    so.seed = 3;
    adaptive::DisplacementField motion = adaptive::synthetic_field(g, so);
    const Vec3 shift{7.0, 3.0, 0.0};
    for (std::size_t v = 0; v < g.num_voxels(); ++v)
      for (int a = 0; a < 3; ++a) motion.data[3 * v + a] += static_cast<float>(shift[a]);
    new_ct = new core::Image(adaptive::warp(later.ct, motion, -1000.0));
    truth = new core::StructureSet(adaptive::propagate_structures(later.structures, motion));
  }
  static void command_line_check();
  static void TearDownTestSuite() {
    delete planned_case;
    delete tpl;
    delete original;
    delete new_ct;
    delete truth;
  }
  static phantoms::Phantom* planned_case;
  static planning::PlanTemplate* tpl;
  static planning::PlanResult* original;
  static core::Image* new_ct;
  static core::StructureSet* truth;
};
phantoms::Phantom* Adapt::planned_case = nullptr;
planning::PlanTemplate* Adapt::tpl = nullptr;
planning::PlanResult* Adapt::original = nullptr;
core::Image* Adapt::new_ct = nullptr;
core::StructureSet* Adapt::truth = nullptr;

TEST_F(Adapt, PhantomPairUnadaptedFailsAdaptedRestores) {
  adaptive::AdaptInput in;
  in.planning_ct = planned_case->ct;
  in.planning_structures = planned_case->structures;
  in.plan = original->plan;
  in.fractions = original->fractions;
  in.planned_dose = original->dose;
  in.tpl = *tpl;
  in.new_ct = *new_ct;
  adaptive::AdaptOptions opt;
  opt.fractions_delivered = 10;
  adaptive::AdaptResult r = adaptive::adapt(in, opt);

  // Registration and propagation: OARs and the target follow the anatomy.
  EXPECT_GT(r.registration.min_jacobian, 0.0);
  for (const char* name : {"Brainstem", "SpinalCord", "Mandible", "LeftParotid", "RightParotid"}) {
    const double d = adaptive::dice(r.structures.get(name).mask, truth->get(name).mask);
    const double d0 = adaptive::dice(planned_case->structures.get(name).mask, truth->get(name).mask);
    RecordProperty(std::string("dice_") + name, std::to_string(d));
    EXPECT_GT(d, 0.75) << name;
    EXPECT_GT(d, d0) << name;  // better than not registering
  }

  // Criteria judged on the new CT's ground truth.
  auto crit = planning::load_criteria(tpl->criteria_path);
  auto unadapted = adaptive::evaluate_dose("unadapted", r.unadapted_dose, *truth, crit);
  auto adapted = adaptive::evaluate_dose("adapted", r.adapted.dose, *truth, crit);
  const std::string key = "PTV70 D99% >= 66.5 Gy";
  const auto* p = find(r.planned.criteria, key);
  const auto* u = find(unadapted.criteria, key);
  const auto* a = find(adapted.criteria, key);
  ASSERT_TRUE(p && u && a) << "criterion '" << key << "' not in " << tpl->criteria_path;
  std::printf("%s: planned %.2f, unadapted %.2f, adapted %.2f Gy (new-CT ground truth)\n", key.c_str(), p->value,
              u->value, a->value);
  for (const auto& c : r.adapted_eval.criteria)
    std::printf("  adapted (propagated structures) %-32s %7.2f %s\n", c.criterion.description.c_str(), c.value,
                c.pass ? "PASS" : "FAIL");
  RecordProperty("ptv70_d99_planned", std::to_string(p->value));
  RecordProperty("ptv70_d99_unadapted", std::to_string(u->value));
  RecordProperty("ptv70_d99_adapted", std::to_string(a->value));
  EXPECT_TRUE(p->pass);
  EXPECT_FALSE(u->pass);
  EXPECT_TRUE(a->pass);

  // The comparison table carries the same verdicts; the accumulated course lies between.
  ASSERT_EQ(r.columns.size(), 5u);
  bool seen = false;
  for (const auto& row : r.rows)
    if (row.criterion == key) {
      seen = true;
      EXPECT_EQ(row.pass[0], 1);
      EXPECT_EQ(row.pass[1], 0);
      EXPECT_EQ(row.pass[2], 1);
    }
  EXPECT_TRUE(seen);
  EXPECT_TRUE(r.accumulated_adapted.geometry().same_grid(r.planned_dose.geometry()));

  test::TempDir dir;
  adaptive::write_adapt_report_html(in, r, dir.file("report.html"));
  EXPECT_GT(std::filesystem::file_size(dir.file("report.html")), 1000u);

  command_line_check();
}

// The command line on the same pair, without the re-plan (fast): a plan directory as
// `isoline plan` writes it plus the planning structures, NIfTI CTs, DICOM outputs. (Part of
// the one test below: CTest runs each test in its own process, and the plan is the costly part.)
void Adapt::command_line_check() {
  test::TempDir dir;
  const std::string plan_dir = dir.file("plan");
  std::filesystem::create_directories(plan_dir);
  core::write_image(planned_case->ct, plan_dir + "/ct.nii.gz");
  core::write_mask_dir(planned_case->structures, plan_dir + "/masks");
  planning::write_plan_json(original->plan, original->fractions, plan_dir + "/plan.json");
  core::write_image(original->dose, plan_dir + "/dose.nii.gz");
  core::write_image(*new_ct, dir.file("new_ct.nii.gz"));
  const std::string out = dir.file("out");
  auto res = test::run_command(test::isoline_bin() + " adapt -q --plan-dir " + plan_dir + " --new-ct " +
                               dir.file("new_ct.nii.gz") + " --out " + out + " --no-replan --fractions-delivered 5");
  ASSERT_EQ(res.exit_code, 0) << res.output;
  EXPECT_NE(res.output.find("PTV70 D99% >= 66.5 Gy"), std::string::npos) << res.output;
  for (const char* f : {"RS.dcm", "RD_unadapted.dcm", "RD_accumulated.dcm", "report.html", "dose_unadapted.nii.gz",
                        "dose_accumulated.nii.gz", "dvf_newct_to_planct.nii.gz", "masks/PTV70.nii.gz"})
    EXPECT_TRUE(std::filesystem::exists(out + "/" + f)) << f;
  // The RT-STRUCT is on the new CT (written as DICOM beside it) and holds the propagated ROIs.
  auto rs = rtstruct::read_rtstruct(out + "/RS.dcm");
  auto ct = rtstruct::read_ct_series(out + "/new_ct");
  auto set = rtstruct::rasterize(rs, ct.image.geometry());
  ASSERT_TRUE(set.find("PTV70"));
  EXPECT_GT(adaptive::dice(set.get("PTV70").mask, truth->get("PTV70").mask), 0.6);
  auto rd = rtstruct::read_rtdose(out + "/RD_unadapted.dcm");
  EXPECT_GT(rd.dose.min_max().second, 60.0);
  EXPECT_EQ(rd.frame_of_reference_uid, ct.frame_of_reference_uid);
  // A plan directory without structures is a clear error.
  std::filesystem::remove_all(plan_dir + "/masks");
  res = test::run_command(test::isoline_bin() + " adapt -q --plan-dir " + plan_dir + " --new-ct " +
                          dir.file("new_ct.nii.gz") + " --out " + out + " --no-replan");
  EXPECT_NE(res.exit_code, 0);
  EXPECT_NE(res.output.find("no structures"), std::string::npos) << res.output;
}
