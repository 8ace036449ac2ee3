// End-to-end adaptive replanning on a phantom pair: the same seeded patient, planned on the
// first CT; on the second CT the anatomy is shifted and smoothly deformed and the tumour has
// shrunk. The original plan recomputed on the new anatomy must fail a clinical criterion
// (judged on the new CT's ground-truth structures) and the adapted plan must restore it.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "isoline/adaptive/adapt.h"
#include "isoline/adaptive/synthetic.h"
#include "isoline/core/device.h"
#include "isoline/core/error.h"
#include "isoline/core/io.h"
#include "isoline/core/mask_ops.h"
#include "isoline/dose/dose.h"
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

// A later anatomy of the same patient: a smooth deformation (4 bumps, 40 mm wide, at most
// `max_mm`) plus a rigid shift (mm, LPS).
adaptive::DisplacementField moved_anatomy(const core::Geometry& g, double max_mm, unsigned seed,
                                          const Vec3& shift) {
  adaptive::SyntheticFieldOptions so;
  so.max_mm = max_mm;
  so.bumps = 4;
  so.sigma_mm = 40.0;
  so.seed = seed;
  adaptive::DisplacementField motion = adaptive::synthetic_field(g, so);
  for (std::size_t v = 0; v < g.num_voxels(); ++v)
    for (int a = 0; a < 3; ++a) motion.data[3 * v + a] += static_cast<float>(shift[a]);
  return motion;
}

const planning::CriterionResult* find(const std::vector<planning::CriterionResult>& rs, const std::string& d) {
  for (const auto& r : rs)
    if (r.criterion.description == d) return &r;
  return nullptr;
}

// A hand-made plan, no optimiser involved: a 4-field box around PTV70 (isocentre at its
// centroid, square fields covering it from every angle + 6 mm), 35 fractions, MU per fraction
// such that PTV70 D99 = 69 Gy over the course. `planned` receives its dose (Gy, all fractions).
dose::Plan box_plan(const phantoms::Phantom& pc, core::Image* planned) {
  const core::Geometry& g = pc.ct.geometry();
  const core::Image& ptv = pc.structures.get("PTV70").mask;
  Vec3 c{0, 0, 0};
  std::size_t n = 0;
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i)
        if (ptv.at<std::uint8_t>(i, j, k)) {
          const Vec3 x = g.index_to_world({double(i), double(j), double(k)});
          for (int a = 0; a < 3; ++a) c[a] += x[a];
          ++n;
        }
  EXPECT_GT(n, 10u);
  for (auto& v : c) v /= double(n);
  double r = 0;
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i)
        if (ptv.at<std::uint8_t>(i, j, k)) {
          const Vec3 x = g.index_to_world({double(i), double(j), double(k)});
          r = std::max(r, std::sqrt((x[0] - c[0]) * (x[0] - c[0]) + (x[1] - c[1]) * (x[1] - c[1]) +
                                    (x[2] - c[2]) * (x[2] - c[2])));
        }
  dose::Plan plan;
  plan.name = "box";
  plan.machine_path = dose::find_machine("generic_6mv");
  plan.machine = dose::load_machine(plan.machine_path);
  plan.fractions = 35;
  for (double gantry : {0.0, 90.0, 180.0, 270.0}) {
    dose::Beam b;
    b.name = "G" + std::to_string(int(gantry));
    b.gantry_deg = gantry;
    b.isocenter_mm = {c[0], c[1], c[2]};
    b.jaw_x1_mm = b.jaw_y1_mm = -(r + 6.0);
    b.jaw_x2_mm = b.jaw_y2_mm = r + 6.0;
    b.mu = 100.0;
    plan.beams.push_back(b);
  }
  core::Image d1 = dose::compute_dose(pc.ct, plan);
  const double d99 = planning::compute_dvh(d1, ptv, "PTV70").dose_at_percent(99);
  EXPECT_GT(d99, 0.0);
  const double scale = 69.0 / 35.0 / d99;
  for (auto& b : plan.beams) b.mu *= scale;
  *planned = d1.clone();
  for (std::size_t v = 0; v < planned->num_voxels(); ++v) planned->data<float>()[v] *= static_cast<float>(scale * 35.0);
  return plan;
}

// A plan directory as `isoline run` writes it (ct.nii.gz, masks/, plan.json, dose.nii.gz).
void write_plan_dir(const std::string& dir, const phantoms::Phantom& pc, const dose::Plan& plan,
                    const core::Image& planned) {
  std::filesystem::create_directories(dir);
  core::write_image(pc.ct, dir + "/ct.nii.gz");
  core::write_mask_dir(pc.structures, dir + "/masks");
  planning::write_plan_json(plan, plan.fractions, dir + "/plan.json");
  core::write_image(planned, dir + "/dose.nii.gz");
}

// The line of `output` that starts with `start` ("" when none).
std::string line_of(const std::string& output, const std::string& start) {
  for (std::size_t at = 0; at < output.size();) {
    const std::size_t end = std::min(output.find('\n', at), output.size());
    if (output.compare(at, start.size(), start) == 0) return output.substr(at, end - at);
    at = end + 1;
  }
  return {};
}

}  // namespace

// The planning case, its plan and the new CT (made in the test, not in SetUpTestSuite, so
// that an exception fails the test instead of skipping it).
class Adapt : public ::testing::Test {
 protected:
  static void prepare() {
    planned_case = new phantoms::Phantom(phantoms::make_head_neck(small_case(1.0)));
    tpl = new planning::PlanTemplate(planning::load_template("hn"));
    original = new planning::PlanResult(planning::make_plan(planned_case->ct, planned_case->structures, *tpl));
    // New CT: same patient, tumour shrunk to 70 %, anatomy moved 7 mm (patient left, x) and
    // 3 mm (posterior, y) and deformed by a smooth field (max 5 mm): new(x) = B(x + t + w(x)).
    phantoms::Phantom later = phantoms::make_head_neck(small_case(0.7));
    const core::Geometry& g = later.ct.geometry();
    const adaptive::DisplacementField motion = moved_anatomy(g, 5.0, 3, {7.0, 3.0, 0.0});
    new_ct = new core::Image(adaptive::warp(later.ct, motion, -1000.0));
    truth = new core::StructureSet(adaptive::propagate_structures(later.structures, motion));
  }
  static void TearDownTestSuite() {  // NOLINT
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
  try {
    prepare();
  } catch (const std::exception& e) {
    FAIL() << "preparing the phantom pair and the original plan: " << e.what();
  }
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
  // The patient positioned as at planning, in the planning CT's frame (skin marks, no image
  // guidance): the 7 mm shift is part of what the unadapted plan meets. With image-guided
  // setup (the default) the shift is corrected and this phantom's 5 mm deformation and
  // shrunk tumour leave PTV70 covered (AdaptCommandLine checks both ways).
  opt.setup_correction = false;
  adaptive::AdaptResult r = adaptive::adapt(in, opt);
  for (int a = 0; a < 3; ++a) EXPECT_EQ(r.setup_shift_mm[a], 0.0);
  // What setup would have done: the isocentre moved with the anatomy (7 mm, 3 mm, 0 mm back,
  // give or take the deformation there).
  const dose::Plan aligned = adaptive::align_plan(in.plan, r.registration.rigid);
  const auto &iso0 = in.plan.beams[0].isocenter_mm, &iso1 = aligned.beams[0].isocenter_mm;
  std::printf("setup shift of the isocentre (%.2f, %.2f, %.2f) mm\n", iso1[0] - iso0[0], iso1[1] - iso0[1],
              iso1[2] - iso0[2]);
  EXPECT_NEAR(iso1[0] - iso0[0], -7.0, 2.0);
  EXPECT_NEAR(iso1[1] - iso0[1], -3.0, 2.0);
  EXPECT_NEAR(iso1[2] - iso0[2], 0.0, 2.0);

  // Registration and propagation: OARs and the target follow the anatomy.
  EXPECT_GT(r.registration.min_jacobian, 0.0);
  for (const char* name : {"Brainstem", "SpinalCord", "Mandible", "LeftParotid", "RightParotid"}) {
    const double d = adaptive::dice(r.structures.get(name).mask, truth->get(name).mask);
    const double d0 = adaptive::dice(planned_case->structures.get(name).mask, truth->get(name).mask);
    RecordProperty(std::string("dice_") + name, std::to_string(d));
    std::printf("%s: propagated vs ground truth Dice %.3f (without registration %.3f)\n", name, d, d0);
    EXPECT_GT(d, 0.75) << name;
    EXPECT_GT(d, d0) << name;  // better than not registering
  }

  // Criteria judged on the new CT's ground truth.
  auto crit = planning::load_criteria(tpl->criteria_path);
  auto unadapted = adaptive::evaluate_dose("unadapted", r.unadapted_dose, *truth, crit);
  auto adapted = adaptive::evaluate_dose("adapted", r.adapted.dose, *truth, crit);
  // Some criterion met by the plan must fail on the new anatomy and be met again by the
  // adapted plan (which criterion depends on the optimiser's trade-offs; PTV coverage here).
  ASSERT_EQ(r.planned.criteria.size(), crit.size());
  ASSERT_EQ(unadapted.criteria.size(), crit.size());
  ASSERT_EQ(adapted.criteria.size(), crit.size());
  std::vector<std::string> restored;
  for (std::size_t c = 0; c < crit.size(); ++c) {
    const auto &p = r.planned.criteria[c], &u = unadapted.criteria[c], &a = adapted.criteria[c];
    std::printf("%-28s planned %7.2f %s | unadapted %7.2f %s | adapted %7.2f %s (new-CT ground truth)\n",
                crit[c].description.c_str(), p.value, p.pass ? "PASS" : "FAIL", u.value, u.pass ? "PASS" : "FAIL",
                a.value, a.pass ? "PASS" : "FAIL");
    if (p.evaluated && u.evaluated && a.evaluated && p.pass && !u.pass && a.pass) restored.push_back(crit[c].description);
  }
  for (const auto& c : r.adapted_eval.criteria)
    std::printf("  adapted (propagated structures) %-32s %7.2f %s\n", c.criterion.description.c_str(), c.value,
                c.pass ? "PASS" : "FAIL");
  EXPECT_FALSE(restored.empty()) << "no criterion met by the plan, failed on the new anatomy and restored";
  for (const auto& d : restored) RecordProperty("restored_criterion", d);
  // Target coverage: lost without adaptation, back to at least the planned level with it.
  const auto* p70 = find(r.planned.criteria, "PTV70 D99% >= 66.5 Gy");
  const auto* u70 = find(unadapted.criteria, "PTV70 D99% >= 66.5 Gy");
  const auto* a70 = find(adapted.criteria, "PTV70 D99% >= 66.5 Gy");
  ASSERT_TRUE(p70 && u70 && a70);
  EXPECT_LT(u70->value, p70->value - 2.0);
  EXPECT_GT(a70->value, p70->value - 0.5);

  // The comparison table (new CT columns on the propagated structures) shows a criterion
  // passing when planned, failing unadapted and passing adapted too.
  ASSERT_EQ(r.columns.size(), 5u);
  bool seen = false;
  for (const auto& row : r.rows)
    if (!row.criterion.empty() && row.pass[0] == 1 && row.pass[1] == 0 && row.pass[2] == 1) seen = true;
  EXPECT_TRUE(seen);
  EXPECT_TRUE(r.accumulated_adapted.geometry().same_grid(r.planned_dose.geometry()));

  test::TempDir dir;
  adaptive::write_adapt_report_html(in, r, dir.file("report.html"));
  EXPECT_GT(std::filesystem::file_size(dir.file("report.html")), 1000u);
}

// The command line on a phantom pair with a hand-made plan (4-field box around PTV70, no
// optimiser involved) and --no-replan: plan directory as `isoline run` writes it (ct.nii.gz,
// masks/, plan.json, dose.nii.gz), NIfTI new CT, DICOM outputs read back.
TEST(AdaptCommandLine, BoxPlanOnShiftedAnatomyWithoutReplan) {
  phantoms::Phantom pc = phantoms::make_head_neck(small_case(1.0));
  const core::Geometry& g = pc.ct.geometry();
  core::Image planned;
  const dose::Plan plan = box_plan(pc, &planned);

  // New CT: the patient 8 mm to the left and 3 mm posterior, plus a smooth 4 mm deformation.
  const adaptive::DisplacementField motion = moved_anatomy(g, 4.0, 9, {8.0, 3.0, 0.0});
  core::Image new_ct = adaptive::warp(pc.ct, motion, -1000.0);
  core::StructureSet truth = adaptive::propagate_structures(pc.structures, motion);

  test::TempDir dir;
  const std::string plan_dir = dir.file("plan");
  write_plan_dir(plan_dir, pc, plan, planned);
  core::write_image(new_ct, dir.file("new_ct.nii.gz"));
  const std::string out = dir.file("out");
  auto ptv70_line = [](const std::string& output) {
    const std::size_t at = output.find("PTV70 D99% >= 66.5 Gy");
    return at == std::string::npos ? std::string() : output.substr(at, output.find('\n', at) - at);
  };
  // Without setup correction (the plan at the planning CT's coordinates, the patient as
  // scanned): planned passes PTV70 D99, the same plan on the moved anatomy fails.
  auto res = test::run_command(test::isoline_bin() + " adapt -q --plan-dir " + plan_dir + " --new-ct " +
                               dir.file("new_ct.nii.gz") + " --out " + dir.file("out_no_setup") +
                               " --no-replan --no-dicom --fractions-delivered 5 --no-setup-correction");
  ASSERT_EQ(res.exit_code, 0) << res.output;
  std::string line = ptv70_line(res.output);
  ASSERT_FALSE(line.empty()) << res.output;
  std::size_t pass = line.find("PASS"), fail = line.find("FAIL");
  EXPECT_TRUE(pass != std::string::npos && fail != std::string::npos && pass < fail) << line;
  EXPECT_NE(res.output.find("setup         none"), std::string::npos) << res.output;
  // By default the isocentre follows the anatomy (image-guided setup, the rigid registration):
  // the box, 6 mm wider than PTV70, still covers it on the moved and slightly deformed anatomy.
  res = test::run_command(test::isoline_bin() + " adapt -q --plan-dir " + plan_dir + " --new-ct " +
                          dir.file("new_ct.nii.gz") + " --out " + out + " --no-replan --fractions-delivered 5");
  ASSERT_EQ(res.exit_code, 0) << res.output;
  line = ptv70_line(res.output);
  ASSERT_FALSE(line.empty()) << res.output;
  EXPECT_EQ(line.find("FAIL"), std::string::npos) << line;
  EXPECT_NE(res.output.find("isocentre on the new CT shifted by (-"), std::string::npos) << res.output;
  for (const char* f : {"RS.dcm", "RD_unadapted.dcm", "RD_accumulated.dcm", "report.html", "dose_unadapted.nii.gz",
                        "dose_accumulated.nii.gz", "dose_accumulated_unadapted.nii.gz", "dvf_newct_to_planct.nii.gz",
                        "masks/PTV70.nii.gz"})
    EXPECT_TRUE(std::filesystem::exists(out + "/" + f)) << f;
  EXPECT_FALSE(std::filesystem::exists(out + "/RD_adapted.dcm"));
  // The RT-STRUCT is on the new CT (written as DICOM beside it) and holds the propagated ROIs,
  // which follow the anatomy.
  auto rs = rtstruct::read_rtstruct(out + "/RS.dcm");
  auto ct = rtstruct::read_ct_series(out + "/new_ct");
  auto set = rtstruct::rasterize(rs, ct.image.geometry());
  for (const char* name : {"PTV70", "SpinalCord", "LeftParotid", "Mandible"}) {
    ASSERT_TRUE(set.find(name)) << name;
    const double d = adaptive::dice(set.get(name).mask, truth.get(name).mask);
    std::printf("%s: propagated (RS.dcm) vs ground truth Dice %.3f, planning contour %.3f\n", name, d,
                adaptive::dice(pc.structures.get(name).mask, truth.get(name).mask));
    EXPECT_GT(d, 0.7) << name;
  }
  auto rd = rtstruct::read_rtdose(out + "/RD_unadapted.dcm");
  EXPECT_GT(rd.dose.min_max().second, 60.0);
  EXPECT_EQ(rd.frame_of_reference_uid, ct.frame_of_reference_uid);
  // The previous output is not replaced without --overwrite.
  res = test::run_command(test::isoline_bin() + " adapt -q --plan-dir " + plan_dir + " --new-ct " +
                          dir.file("new_ct.nii.gz") + " --out " + out + " --no-replan");
  EXPECT_EQ(res.exit_code, 1);
  EXPECT_NE(res.output.find("exists and is not empty"), std::string::npos) << res.output;
  // A plan directory without structures is a clear error, and leaves the previous output even
  // with --overwrite.
  std::filesystem::remove_all(plan_dir + "/masks");
  res = test::run_command(test::isoline_bin() + " adapt -q --plan-dir " + plan_dir + " --new-ct " +
                          dir.file("new_ct.nii.gz") + " --out " + out + " --no-replan --overwrite");
  EXPECT_NE(res.exit_code, 0);
  EXPECT_NE(res.output.find("no structures"), std::string::npos) << res.output;
  EXPECT_TRUE(std::filesystem::exists(out + "/RS.dcm"));
}

// Two DICOM CTs with different patient IDs: the new CT of another patient is refused before
// any work, naming it and both IDs; --allow-other-patient lets it through to the next check.
TEST(AdaptCommandLine, NewCtOfAnotherPatientIsRefused) {
  phantoms::HeadNeckOptions o = small_case(1.0);
  o.size = {32, 32, 12};
  o.spacing = {8.0, 8.0, 8.0};
  phantoms::Phantom pc = phantoms::make_head_neck(o);
  test::TempDir dir;
  const std::string plan_dir = dir.file("plan");
  rtstruct::CtWriteOptions w;
  w.info.patient_id = "PAT-001";
  rtstruct::write_ct_series(pc.ct, plan_dir + "/CT", w);
  w.info.patient_id = "PAT-002";
  rtstruct::write_ct_series(pc.ct, dir.file("new"), w);
  dose::Plan plan;  // plan.json is read before the CTs
  plan.machine_path = dose::find_machine("generic_6mv");
  plan.machine = dose::load_machine(plan.machine_path);
  plan.fractions = 35;
  plan.beams.push_back(dose::Beam{});
  planning::write_plan_json(plan, plan.fractions, plan_dir + "/plan.json");
  auto res = test::run_command(test::isoline_bin() + " adapt -q --plan-dir " + plan_dir + " --new-ct " +
                               dir.file("new") + " --out " + dir.file("out") + " --no-replan");
  EXPECT_EQ(res.exit_code, 1) << res.output;
  EXPECT_NE(res.output.find("patient ID 'PAT-002' differs from the planning CT's 'PAT-001'"), std::string::npos)
      << res.output;
  EXPECT_FALSE(std::filesystem::exists(dir.file("out")));
  res = test::run_command(test::isoline_bin() + " adapt -q --plan-dir " + plan_dir + " --new-ct " + dir.file("new") +
                          " --out " + dir.file("out") + " --no-replan --allow-other-patient");
  EXPECT_EQ(res.exit_code, 1) << res.output;
  EXPECT_EQ(res.output.find("patient ID"), std::string::npos) << res.output;
  EXPECT_NE(res.output.find("no structures"), std::string::npos) << res.output;
  // An RS.dcm in the plan directory drawn on another scan (the new CT's frame of reference) is
  // refused, not rasterised onto the planning CT.
  rtstruct::write_rtstruct(pc.structures, rtstruct::read_ct_series(dir.file("new")), plan_dir + "/RS.dcm");
  res = test::run_command(test::isoline_bin() + " adapt -q --plan-dir " + plan_dir + " --new-ct " + dir.file("new") +
                          " --out " + dir.file("out") + " --no-replan --allow-other-patient");
  EXPECT_EQ(res.exit_code, 1) << res.output;
  EXPECT_NE(res.output.find("frame of reference differs from the planning CT's"), std::string::npos) << res.output;
  EXPECT_FALSE(std::filesystem::exists(dir.file("out")));
}

namespace {

// A small planned case: a 4-field box plan on a 48 x 48 x 48 phantom of 5 x 5 x 3 mm voxels
// (PTV70 on slices 18-32, the parotids on 27-41).
struct TinyPlan {
  phantoms::Phantom pc;
  dose::Plan plan;
  core::Image planned;
};
TinyPlan tiny_plan() {
  phantoms::HeadNeckOptions o = small_case(1.0);
  o.size = {48, 48, 48};
  o.spacing = {5.0, 5.0, 3.0};
  TinyPlan t{phantoms::make_head_neck(o), {}, {}};
  t.plan = box_plan(t.pc, &t.planned);
  return t;
}

}  // namespace

// Inputs that can be checked in a moment fail before any work (no progress line: no CT read,
// no registration), name the file or value, and leave nothing: the criteria file (bad JSON,
// missing), the model card of --recontour, the device, the template, --fractions-delivered
// against plan.json's fractions (a usage error, as --dice-threshold), a planned dose in cGy.
// Before, all but the template came after the CTs were read, and most after the ~20 s
// registration.
TEST(AdaptCommandLine, BadInputsFailBeforeAnyWork) {
  const TinyPlan t = tiny_plan();
  test::TempDir dir;
  const std::string plan_dir = dir.file("plan");
  write_plan_dir(plan_dir, t.pc, t.plan, t.planned);
  const std::string new_ct = plan_dir + "/ct.nii.gz";
  std::ofstream(dir.file("bad.json")) << "{\"criteria\": [";
  struct Case {
    std::string options;
    int exit_code;
    std::vector<std::string> said;
  };
  std::vector<Case> cases = {
      {"--criteria " + dir.file("bad.json"), 1, {dir.file("bad.json"), "not valid JSON"}},
      {"--criteria " + dir.file("missing.json"), 1, {dir.file("missing.json"), "cannot open"}},
      {"--recontour --model " + dir.file("card.json"), 1, {dir.file("card.json"), "model card"}},
      {"--template " + dir.file("tpl.json"), 1, {dir.file("tpl.json")}},
      {"--fractions-delivered 99", 2,
       {"--fractions-delivered expects 0 to the plan's 35 fractions", plan_dir + "/plan.json", "got 99"}},
      {"--fractions-delivered -1", 2, {"35 fractions", "got -1"}},
  };
  if (core::cuda_device_count() == 0)  // a build without CUDA, or a machine without a GPU
    cases.push_back({"--device cuda", 1, {"cuda", "use --device cpu"}});
  for (const auto& c : cases) {
    auto res = test::cli("adapt --plan-dir " + plan_dir + " --new-ct " + new_ct + " --out " + dir.file("out") +
                         " --no-replan " + c.options);
    EXPECT_EQ(res.exit_code, c.exit_code) << c.options << "\n" << res.output;
    for (const auto& s : c.said) EXPECT_TRUE(test::has(res.output, s)) << c.options << ": " << s << "\n" << res.output;
    EXPECT_FALSE(test::has(res.output, "progress")) << c.options << ": work began\n" << res.output;
    EXPECT_FALSE(std::filesystem::exists(dir.file("out"))) << c.options;
  }
  // A planned dose in cGy: refused naming the file it was read from. Into folders that do not
  // exist yet: the failed adapt leaves none of them behind (as `run` and `plan`).
  core::Image cgy = t.planned.clone();
  for (std::size_t v = 0; v < cgy.num_voxels(); ++v) cgy.data<float>()[v] *= 100.0f;
  core::write_image(cgy, plan_dir + "/dose.nii.gz");
  auto res = test::cli("adapt --plan-dir " + plan_dir + " --new-ct " + new_ct + " --out " +
                       dir.file("new/deeper/out") + " --no-replan");
  EXPECT_EQ(res.exit_code, 1) << res.output;
  EXPECT_TRUE(test::has(res.output, "adapt: " + plan_dir + "/dose.nii.gz: planned dose maximum")) << res.output;
  EXPECT_TRUE(test::has(res.output, "not in Gy (cGy?)")) << res.output;
  EXPECT_FALSE(test::has(res.output, "progress")) << res.output;
  EXPECT_FALSE(std::filesystem::exists(dir.file("new"))) << "the folders the failed adapt created are left";
}

// The planning CT without its `k0` lower slices: a new CT of the same patient, in the same
// frame, that covers less of it.
core::Image without_lower_slices(const core::Image& ct, int k0) {
  const core::Geometry& g = ct.geometry();
  core::Geometry cut = g;
  cut.size[2] = g.size[2] - k0;
  cut.origin = g.index_to_world({0.0, 0.0, double(k0)});
  return core::resample(ct, cut, core::Interpolation::Linear, -1000.0);
}

// The tiny plan's case with a new CT that lacks the planning CT's 25 lower slices.
adaptive::AdaptInput cut_case(const TinyPlan& t) {
  adaptive::AdaptInput in;
  in.planning_ct = t.pc.ct;
  in.planning_structures = t.pc.structures;
  in.plan = t.plan;
  in.fractions = t.plan.fractions;
  in.planned_dose = t.planned;
  in.tpl = planning::load_template("hn");
  in.new_ct = without_lower_slices(t.pc.ct, 25);
  return in;
}

// Registration (identity: the CTs share a frame) and accumulation, no re-plan.
adaptive::AdaptOptions accumulation_only() {
  adaptive::AdaptOptions opt;
  opt.replan = false;
  opt.registration.rigid = false;
  return opt;
}

// A failed adapt gives the warnings it had gathered with its error (core::Error::warnings(),
// as run_case): the CLI prints them before the error line, Python has them as `e.warnings`.
// Stopped (as Ctrl-C stops the CLI: its progress callback throws core::Cancelled) at the
// evaluation, after the accumulation warned that part of the planning CT lies beyond the new
// CT (the case of the test below). Before, the error came alone.
TEST(AdaptAccumulation, AFailureCarriesTheWarningsGatheredBeforeIt) {
  const TinyPlan t = tiny_plan();
  const adaptive::AdaptInput in = cut_case(t);
  const adaptive::AdaptOptions opt = accumulation_only();
  const core::Progress stop_at_evaluation([](const core::ProgressEvent& e) {
    if (e.detail == "evaluate") throw core::Cancelled("adapt: stopped");
  });
  try {
    adaptive::adapt(in, opt, stop_at_evaluation);
    ADD_FAILURE() << "adapt was not stopped";
  } catch (const core::Cancelled& e) {
    EXPECT_STREQ(e.what(), "adapt: stopped");
    bool warned = false;
    for (const auto& w : e.warnings()) warned = warned || test::has(w, "lies beyond the new CT");
    EXPECT_TRUE(warned) << e.warnings().size() << " warnings";
  }
}

// A new CT that covers less of the patient than the planning CT: the planning points beyond it
// map outside the new CT, where no dose is known. Before, the warped-back doses were 0 Gy there
// and the accumulated columns judged them as doses while the warp-back line said "off by > 1 mm
// in 0.00 % of the dose region (at most 0.0 mm)", measured only on the rest (the 96 x 96 x 64
// phantom without its 10 lower slices: accumulated PTV70 D99 0.00 Gy FAIL, Esophagus mean 0.00
// Gy PASS, Larynx mean 38.43 Gy PASS against 61.37 Gy planned). Now the structures with a part
// beyond it have no accumulated figures and a warning names them, the others keep theirs, and
// the share of the dose region beyond it is given apart from the residual. The library, with
// the rigid step off (the CTs share a frame; the test is about the accumulation): the planning CT
// cut through the middle of PTV70.
TEST(AdaptAccumulation, ANewCtThatCoversLessOfThePatientHasNoFiguresBeyondIt) {
  const TinyPlan t = tiny_plan();
  adaptive::AdaptInput in = cut_case(t);  // PTV70 on slices 18-32
  const adaptive::AdaptOptions opt = accumulation_only();
  const adaptive::AdaptResult r = adaptive::adapt(in, opt);
  std::printf("dose region beyond the new CT %.1f %%, residual on the rest at most %.3f mm; beyond:",
              100 * r.dose_region_beyond_new_ct, r.inverse_residual_dose_region_mm);
  for (const auto& [name, share] : r.beyond_new_ct) std::printf(" %s %.1f %%", name.c_str(), 100 * share);
  std::printf("\n");
  EXPECT_GT(r.dose_region_beyond_new_ct, 0.2);
  EXPECT_LT(r.dose_region_beyond_new_ct, 0.8);
  EXPECT_LT(r.inverse_residual_dose_region_mm, 0.5);
  ASSERT_TRUE(r.beyond_new_ct.count("PTV70"));
  EXPECT_GT(r.beyond_new_ct.at("PTV70"), 0.2);
  EXPECT_LT(r.beyond_new_ct.at("PTV70"), 0.8);
  for (const char* name : {"Larynx", "PTV56", "PTV63"}) EXPECT_NEAR(r.beyond_new_ct.at(name), 1.0, 1e-6) << name;
  for (const char* name : {"LeftParotid", "RightParotid"}) EXPECT_FALSE(r.beyond_new_ct.count(name)) << name;
  EXPECT_FALSE(r.accumulated_unadapted_eval.dvhs.count("PTV70"));
  EXPECT_FALSE(r.accumulated_adapted_eval.dvhs.count("PTV70"));
  bool warned = false;
  for (const auto& w : r.warnings) warned = warned || (test::has(w, "beyond the new CT") && test::has(w, "PTV70"));
  EXPECT_TRUE(warned);
  ASSERT_EQ(r.columns.size(), 3u);  // planned, unadapted, accumulated unadapted
  for (const auto& row : r.rows) {
    if (row.criterion == "PTV70 D99% >= 66.5 Gy") {
      EXPECT_EQ(row.pass[0], 1);
      EXPECT_EQ(row.pass[2], -1);  // not 0 Gy FAIL
      EXPECT_TRUE(std::isnan(row.values[2]));
    }
    if (row.criterion.rfind("LeftParotid", 0) == 0 || row.criterion.rfind("RightParotid", 0) == 0)
      EXPECT_NEAR(row.values[2], row.values[0], 0.5) << row.criterion;
  }

  // The planning CT as the new CT: nothing beyond it (the figures within the dose grids' and the
  // deformable step's differences: at most 0.47 Gy, SpinalCord D0.1cc).
  in.new_ct = t.pc.ct;
  const adaptive::AdaptResult same = adaptive::adapt(in, opt);
  EXPECT_EQ(same.dose_region_beyond_new_ct, 0.0);
  EXPECT_TRUE(same.beyond_new_ct.empty());
  for (const auto& row : same.rows)
    if (!row.criterion.empty() && row.pass[0] >= 0) EXPECT_NEAR(row.values[2], row.values[0], 0.6) << row.criterion;
}

// The command line on a new CT without the planning CT's 6 lower slices (18 mm, through the
// Larynx and the elective PTVs; the rigid step continues from the CTs as scanned, not from their
// centres aligned, 9 mm off, and the report says so): the structures reaching below it show "-"
// in the accumulated column, the others their figures.
TEST(AdaptCommandLine, ANewCtThatCoversLessOfThePatientShowsNoAccumulatedFiguresBeyondIt) {
  const TinyPlan t = tiny_plan();
  test::TempDir dir;
  const std::string plan_dir = dir.file("plan");
  write_plan_dir(plan_dir, t.pc, t.plan, t.planned);
  core::write_image(without_lower_slices(t.pc.ct, 6), dir.file("new_ct.nii.gz"));
  auto cells = [](const std::string& line) {  // the table's columns: "-" or "value PASS/FAIL"
    std::vector<std::string> out;
    std::size_t at = line.find("Gy") + 2;
    while (at < line.size()) {
      const std::size_t b = line.find_first_not_of(' ', at);
      if (b == std::string::npos) break;
      std::size_t e = line.find(' ', b);
      if (line.compare(b, 1, "-") != 0) e = line.find(' ', e + 1);
      out.push_back(line.substr(b, e - b));
      at = e;
    }
    return out;
  };
  auto res = test::cli("adapt -q --plan-dir " + plan_dir + " --new-ct " + dir.file("new_ct.nii.gz") + " --out " +
                       dir.file("out") + " --no-replan --no-dicom");
  ASSERT_EQ(res.exit_code, 0) << res.output;
  std::printf("%s", res.output.c_str());
  EXPECT_TRUE(test::has(line_of(res.output, "warp-back"), "mm)")) << res.output;
  const std::string warning = line_of(res.output, "warning: part of the planning CT lies beyond the new CT");
  for (const char* name : {"Larynx", "PTV63"}) {
    EXPECT_TRUE(test::has(warning, std::string(" ") + name + " ")) << name << "\n" << res.output;
    const std::string row = line_of(res.output, std::string(name) + (name[0] == 'L' ? " Dmean" : " D99%"));
    const std::vector<std::string> c = cells(row);
    ASSERT_EQ(c.size(), 3u) << row << "\n" << res.output;
    EXPECT_NE(c[0], "-") << row;
    EXPECT_EQ(c[2], "-") << row << "\n" << res.output;  // before: a mean or D99 with 0 Gy below the new CT
  }
  for (const char* row : {"PTV70 D99% >= 66.5 Gy", "LeftParotid Dmean <= 26 Gy", "RightParotid Dmean <= 26 Gy"}) {
    const std::vector<std::string> c = cells(line_of(res.output, row));
    ASSERT_EQ(c.size(), 3u) << row << "\n" << res.output;
    EXPECT_NEAR(std::stod(c[2]), std::stod(c[0]), 0.5) << row << "\n" << res.output;
  }
  const std::string report = test::slurp(dir.file("out/report.html"));
  EXPECT_TRUE(test::has(report, "rigid step from the start: as scanned")) << "the report's registration line";
}
