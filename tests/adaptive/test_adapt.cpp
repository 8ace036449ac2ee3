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
  const core::Image& ptv = pc.structures.get("PTV70").mask;
  // Isocentre at the PTV70 centroid; square fields covering the PTV from every angle + 6 mm.
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
  ASSERT_GT(n, 10u);
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
  // MU per fraction such that PTV70 D99 = 69 Gy over 35 fractions.
  core::Image d1 = dose::compute_dose(pc.ct, plan);
  const double d99 = planning::compute_dvh(d1, ptv, "PTV70").dose_at_percent(99);
  ASSERT_GT(d99, 0.0);
  const double scale = 69.0 / 35.0 / d99;
  for (auto& b : plan.beams) b.mu *= scale;
  core::Image planned = d1.clone();
  for (std::size_t v = 0; v < planned.num_voxels(); ++v) planned.data<float>()[v] *= static_cast<float>(scale * 35.0);

  // New CT: the patient 8 mm to the left and 3 mm posterior, plus a smooth 4 mm deformation.
  const adaptive::DisplacementField motion = moved_anatomy(g, 4.0, 9, {8.0, 3.0, 0.0});
  core::Image new_ct = adaptive::warp(pc.ct, motion, -1000.0);
  core::StructureSet truth = adaptive::propagate_structures(pc.structures, motion);

  test::TempDir dir;
  const std::string plan_dir = dir.file("plan");
  std::filesystem::create_directories(plan_dir);
  core::write_image(pc.ct, plan_dir + "/ct.nii.gz");
  core::write_mask_dir(pc.structures, plan_dir + "/masks");
  planning::write_plan_json(plan, plan.fractions, plan_dir + "/plan.json");
  core::write_image(planned, plan_dir + "/dose.nii.gz");
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
