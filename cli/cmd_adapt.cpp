// isoline adapt --plan-dir DIR --new-ct CT --out DIR: adaptive replanning on a new CT.
#include <cstdio>
#include <filesystem>
#include <string>

#include "command.h"
#include "isoline/adaptive/adapt.h"
#include "isoline/core/atomic_file.h"
#include "isoline/core/device.h"
#include "isoline/core/error.h"
#include "isoline/core/io.h"
#include "isoline/dose/dose.h"
#include "isoline/pipeline/case_io.h"
#include "isoline/rtstruct/ct_series.h"
#include "isoline/rtstruct/rtdose.h"
#include "isoline/rtstruct/rtstruct.h"

namespace fs = std::filesystem;

namespace isoline::cli {

namespace {

bool present(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

// A CT from a DICOM directory/file or an image file; `series` is filled for DICOM input.
core::Image read_ct(const std::string& path, rtstruct::CtSeries* series, bool* dicom, const core::Progress& progress) {
  *dicom = !core::is_image_path(path);
  if (*dicom) {
    *series = rtstruct::read_ct_series(path, {}, progress);
    for (const auto& w : series->warnings) std::fprintf(stderr, "warning: %s: %s\n", path.c_str(), w.c_str());
    return series->image;
  }
  return core::read_image(path);
}

// The planning CT of a plan directory (pipeline::find_case_ct, as `isoline serve` finds a
// run output's CT).
std::string find_plan_ct(const fs::path& dir) {
  std::string recorded_missing;
  const std::string ct = pipeline::find_case_ct(dir.string(), &recorded_missing);
  if (!ct.empty()) return ct;
  core::fail<core::IoError>("adapt", dir.string(),
                            "no planning CT found (give --plan-ct, or put " + pipeline::case_ct_list() +
                                " in the plan directory)" +
                                (recorded_missing.empty()
                                     ? std::string()
                                     : "; metrics.json names " + recorded_missing + ", which no longer exists"));
}

// A DICOM series for an image that was read from NIfTI (derived objects need UIDs).
rtstruct::CtSeries ensure_series(const core::Image& ct, bool dicom, rtstruct::CtSeries series, const fs::path& dir,
                                 const std::string& description, const rtstruct::PatientStudy* study) {
  if (dicom) return series;
  rtstruct::CtWriteOptions w;
  w.series_description = description;
  if (study) w.info = *study;
  return rtstruct::write_ct_series(ct, dir.string(), w);
}

int run_adapt(const Args& args, const Context& ctx) {
  core::Progress progress(ctx.progress, "adapt");
  const fs::path plan_dir = args.value("--plan-dir");
  fs::path out_dir = fs::path(args.value("--out")).lexically_normal();
  if (out_dir.filename().empty()) out_dir = out_dir.parent_path();  // "dir/"
  if (!present(plan_dir)) core::fail<core::IoError>("adapt", plan_dir.string(), "no such directory");
  // Before any work: --out must not be (or hold) an input, and an existing result is replaced
  // only when asked to.
  core::check_output_location(out_dir.string(), "adapt", /*parents_created=*/true);
  core::check_output_directory(out_dir.string(), args.flag("--overwrite"), "adapt",
                               {plan_dir.string(), args.value("--new-ct"), args.get("--plan-ct").value_or("")});
  // The outputs go into a temporary directory renamed onto --out when complete; missing parents
  // of --out are created now and removed again if adapt fails (as `run` and `plan`).
  core::AtomicOutputs outputs;
  const fs::path out = outputs.add(out_dir.string(), /*directory=*/true, /*create_parents=*/true, "adapt");

  adaptive::AdaptInput in;
  adaptive::AdaptOptions opt;
  opt.plan_options.device = core::parse_device(args.value("--device"));
  opt.replan = !args.flag("--no-replan");
  if (opt.replan && !adaptive::replan_available())
    core::fail<core::NotSupported>("adapt", "re-plan",
                                   "this build has no planning::make_plan; use --no-replan for propagation, "
                                   "unadapted dose and accumulation only");
  opt.recontour = args.flag("--recontour");
  if (auto m = args.get("--model")) opt.model_card = *m;
  opt.fuse.dice_threshold = args.get_double("--dice-threshold", opt.fuse.dice_threshold);
  if (!(opt.fuse.dice_threshold >= 0.0 && opt.fuse.dice_threshold <= 1.0))
    throw UsageError{"--dice-threshold expects a Dice between 0 and 1, got " + args.value("--dice-threshold")};
  opt.fractions_delivered = static_cast<int>(args.get_int("--fractions-delivered", 0));
  opt.registration.rigid_options.bony = args.flag("--bony");
  opt.setup_correction = !args.flag("--no-setup-correction");

  // Everything that is cheap to check is checked before the CTs are read and registered
  // (about 20 s): the plan and its fractions, the template and its criteria, the model card,
  // the device, the planned dose's unit (adaptive::check_adapt_inputs), the CT paths.
  const std::string plan_json = (plan_dir / "plan.json").string();
  if (!present(plan_json)) core::fail<core::IoError>("adapt", plan_dir.string(), "no plan.json");
  in.plan = dose::read_plan(plan_json);
  in.fractions = in.plan.fractions;
  if (opt.fractions_delivered < 0 || opt.fractions_delivered > in.fractions)
    throw UsageError{"--fractions-delivered expects 0 to the plan's " + std::to_string(in.fractions) +
                     " fractions (\"fractions\" in " + plan_json + "), got " + args.value("--fractions-delivered")};
  // Template (original objectives), criteria.
  std::string tpl_name = args.value("--template");
  if (!args.has("--template") && present(plan_dir / "template.json")) tpl_name = (plan_dir / "template.json").string();
#if ISOLINE_ADAPTIVE_REPLAN
  in.tpl = planning::load_template(tpl_name);
#else
  in.tpl.name = tpl_name;
#endif
  if (auto c = args.get("--criteria")) in.tpl.criteria_path = *c;
  for (const fs::path& f : {plan_dir / "dose.nii.gz", plan_dir / "RD.dcm"})
    if (present(f)) {
      in.planned_dose_source = f.string();
      in.planned_dose = f.extension() == ".dcm" ? rtstruct::read_rtdose(f.string()).dose
                                                : core::read_image(f.string(), core::PixelType::Float32);
      break;
    }
  adaptive::check_adapt_inputs(in, opt);
  const std::string plan_ct_path = args.get("--plan-ct") ? *args.get("--plan-ct") : find_plan_ct(plan_dir);
  for (const std::string& ct : {plan_ct_path, args.value("--new-ct")})
    if (!present(ct)) core::fail<core::IoError>("adapt", ct, "no such file or directory");

  // Planning CT, new CT.
  rtstruct::CtSeries plan_series, new_series;
  bool plan_dicom = false, new_dicom = false;
  in.planning_ct = read_ct(plan_ct_path, &plan_series, &plan_dicom, progress.sub(0, 0.03, "read planning CT"));
  in.new_ct = read_ct(args.value("--new-ct"), &new_series, &new_dicom, progress.sub(0.03, 0.06, "read new CT"));
  // A new CT of another patient would be registered and "adapted" all the same: refuse it when
  // both CTs say whose they are.
  if (plan_dicom && new_dicom && !args.flag("--allow-other-patient") && !plan_series.info.patient_id.empty() &&
      !new_series.info.patient_id.empty() && plan_series.info.patient_id != new_series.info.patient_id)
    core::fail<core::InvalidInput>(
        "adapt", args.value("--new-ct"),
        "patient ID '" + new_series.info.patient_id + "' differs from the planning CT's '" +
            plan_series.info.patient_id + "' (" + plan_ct_path +
            "): a CT of another patient? (--allow-other-patient when the IDs differ for another reason" +
            (plan_series.info.patient_id.rfind("IMG-", 0) == 0 && new_series.info.patient_id.rfind("IMG-", 0) == 0
                 ? "; both were written from image files, which name no patient: give both the same --patient-id)"
                 : ")"));

  // Planning structures: masks/ (exact, as `isoline run` and `isoline phantom` write them) or
  // RS.dcm (rasterised on the planning CT).
  const core::Geometry& pg = in.planning_ct.geometry();
  if (present(plan_dir / "masks")) {
    in.planning_structures = core::read_mask_dir((plan_dir / "masks").string());
    if (!in.planning_structures.geometry().same_grid(pg, 1e-3))
      core::fail<core::InvalidInput>("adapt", (plan_dir / "masks").string(), "masks are not on the planning CT grid");
  } else if (present(plan_dir / "RS.dcm")) {
    const std::string rs_path = (plan_dir / "RS.dcm").string();
    const rtstruct::RtStructData rs = rtstruct::read_rtstruct(rs_path);
    if (plan_dicom && !plan_series.frame_of_reference_uid.empty())
      rtstruct::check_same_frame(rs, plan_series.frame_of_reference_uid, "adapt", rs_path,
                                 "the planning CT's (" + plan_ct_path +
                                     "): the RT-STRUCT belongs to another scan or patient");
    in.planning_structures = rtstruct::rasterize(rs, pg);
  } else {
    core::fail<core::IoError>("adapt", plan_dir.string(), "no structures (masks/ or RS.dcm) in the plan directory");
  }
  // Empty ROIs would only produce empty rows.
  for (const auto& name : in.planning_structures.names())
    if (in.planning_structures.get(name).mask.count_nonzero() == 0) in.planning_structures.remove(name);

  auto r = adaptive::adapt(in, opt, progress.sub(0.06, 0.92, "adapt"));

  // Outputs: into the temporary directory made above. An error writing them carries adapt's
  // warnings (main.cpp prints them before the error line, as a success prints them below).
  try {
    progress.update(0.92, "write");
    adaptive::write_field(r.registration.field, (out / "dvf_newct_to_planct.nii.gz").string());
    core::write_mask_dir(r.structures, (out / "masks").string());
    core::write_image(r.unadapted_dose, (out / "dose_unadapted.nii.gz").string());
    core::write_image(r.accumulated_unadapted, (out / "dose_accumulated_unadapted.nii.gz").string());
    core::write_image(r.accumulated_adapted, (out / "dose_accumulated.nii.gz").string());
    if (opt.replan) core::write_image(r.adapted.dose, (out / "dose_adapted.nii.gz").string());
    if (!args.flag("--no-dicom")) {
      const rtstruct::PatientStudy* study = plan_dicom ? &plan_series.info : new_dicom ? &new_series.info : nullptr;
      rtstruct::CtSeries ns = ensure_series(in.new_ct, new_dicom, new_series, out / "new_ct", "Isoline new CT", study);
      rtstruct::CtSeries ps = ensure_series(in.planning_ct, plan_dicom, plan_series, out / "plan_ct",
                                            "Isoline planning CT", new_dicom ? &ns.info : nullptr);
      rtstruct::RtStructWriteOptions so;
      so.structure_set_label = "ADAPT";
      so.series_description = "Isoline propagated structures";
      auto rs = rtstruct::write_rtstruct(r.structures, ns, (out / "RS.dcm").string(), so);
      for (const auto& w : rs.warnings) std::fprintf(stderr, "warning: RS.dcm: %s\n", w.c_str());
      rtstruct::RtDoseWriteOptions d;
      d.dose_comment = "original plan recomputed on the new CT";
      d.series_description = "Isoline unadapted dose";
      rtstruct::write_rtdose(r.unadapted_dose, ns, (out / "RD_unadapted.dcm").string(), d);
      if (opt.replan) {
        d.dose_comment = "adapted plan on the new CT";
        d.series_description = "Isoline adapted dose";
        rtstruct::write_rtdose(r.adapted.dose, ns, (out / "RD_adapted.dcm").string(), d);
      }
      d.dose_comment = "accumulated course dose on the planning CT";
      d.series_description = "Isoline accumulated dose";
      rtstruct::write_rtdose(r.accumulated_adapted, ps, (out / "RD_accumulated.dcm").string(), d);
    }
#if ISOLINE_ADAPTIVE_REPLAN
    if (opt.replan)
      planning::write_plan_json(r.adapted.plan, r.adapted.fractions, (out / "plan_adapted.json").string());
#endif
    adaptive::write_adapt_report_html(in, r, (out / "report.html").string());
    // The last point where Ctrl-C stops it (the progress callback throws): before the outputs
    // appear, not after, when the message would say they were removed.
    progress.done();
    outputs.commit();
  } catch (core::Error& e) {
    e.add_warnings(r.warnings);
    throw;
  }
  // On stderr with -q too, as every command's warnings (docs/cli.md), before the summary.
  for (const auto& w : r.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());

  // Summary.
  std::printf("registration  %.1f s, Jacobian min %.3f, folding %.4f %%\n", r.registration.seconds,
              r.registration.min_jacobian, 100.0 * r.registration.folding_fraction);
  // The warp-back residual is measured only where the dose region maps onto the new CT.
  if (r.dose_region_beyond_new_ct >= 1.0)
    std::printf("warp-back     all of the dose region lies beyond the new CT: no dose known there, residual not "
                "measured\n");
  else if (r.dose_region_beyond_new_ct > 0.0)
    std::printf("warp-back     %.2f %% of the dose region lies beyond the new CT (no dose known there); the rest off "
                "by > 1 mm in %.2f %% (at most %.2f mm)\n",
                100.0 * r.dose_region_beyond_new_ct, 100.0 * r.inverse_fraction_over_1mm,
                r.inverse_residual_dose_region_mm);
  else
    std::printf("warp-back     off by > 1 mm in %.2f %% of the dose region (at most %.2f mm)\n",
                100.0 * r.inverse_fraction_over_1mm, r.inverse_residual_dose_region_mm);
  if (opt.setup_correction)
    std::printf("setup         isocentre on the new CT shifted by (%.1f, %.1f, %.1f) mm (LPS) for the unadapted dose\n",
                r.setup_shift_mm[0], r.setup_shift_mm[1], r.setup_shift_mm[2]);
  else
    std::printf("setup         none: the unadapted dose keeps the planning CT's isocentre coordinates\n");
  if (!r.criteria.empty()) {
    std::printf("\n%-40s", "criterion");
    for (const auto& c : r.columns) std::printf(" %22s", c.c_str());
    std::printf("\n");
    for (const auto& row : r.rows) {
      if (row.criterion.empty()) continue;
      std::printf("%-40s", row.criterion.c_str());
      for (std::size_t c = 0; c < row.values.size(); ++c) {
        char cell[48];
        if (row.pass[c] < 0)
          std::snprintf(cell, sizeof cell, "-");
        else
          std::snprintf(cell, sizeof cell, "%.2f %s", row.values[c], row.pass[c] ? "PASS" : "FAIL");
        std::printf(" %22s", cell);
      }
      std::printf("\n");
    }
  }
  std::printf("\nwritten to %s (report.html)\n", out_dir.string().c_str());
  return 0;
}

}  // namespace

Command make_adapt_command() {
  Command c;
  c.name = "adapt";
  c.summary = "adaptive replanning on a new CT (propagate, recompute, re-plan, accumulate)";
  c.description =
      "Registers the new CT to the planning CT (rigid + diffeomorphic demons), propagates the\n"
      "planning structures onto the new CT (--recontour: re-contoured OARs fused with the\n"
      "propagated targets, disagreements flagged), recomputes the original plan on the new CT\n"
      "(unadapted), re-optimises it with the original template (adapted), warps the doses back\n"
      "to the planning CT and accumulates them, and compares planned, unadapted and adapted DVH\n"
      "metrics and criteria. The plan directory is what `isoline run --out` (or `isoline plan`\n"
      "plus masks/) writes: plan.json (with \"fractions\"), the structures (masks/*.nii.gz or\n"
      "RS.dcm on the planning CT), optionally the planned dose (dose.nii.gz or RD.dcm) and\n"
      "template.json. The planning CT is --plan-ct, else the first of\n" +
      pipeline::case_ct_list() +
      " in the plan directory, else the\n"
      "CT that its metrics.json records (run and plan copy a NIfTI CT into CT/ but not a DICOM\n"
      "one, which must then still be where it was planned from). See docs/adaptive.md.";
  c.options = {
      {"--plan-dir", "DIR", "plan directory (plan.json, RS.dcm or masks/, RD.dcm, ct)", true, "", false},
      {"--new-ct", "PATH", "new CT: DICOM directory or image file", true, "", false},
      {"--out", "DIR", "output directory (written complete or not at all; must not exist or be empty)", true, "", false},
      {"--overwrite", "", "replace a non-empty --out directory (never the plan directory itself)", false, "", false},
      {"--plan-ct", "PATH", "planning CT (default: found in the plan directory)", false, "", false},
      {"--template", "NAME", "template of the original plan; without this option the plan directory's template.json "
                               "when there is one",
       false, planning::kDefaultTemplate, false},
      {"--criteria", "FILE", "criteria JSON (default: the template's)", false, "", false},
      {"--fractions-delivered", "N",
       "fractions delivered before the new CT, 0 to plan.json's (for the accumulated dose)", false, "0", false},
      {"--recontour", "", "re-contour the OARs with the models and fuse", false, "", false},
      {"--model", "FILE", "contouring model card", false, "", false},
      {"--dice-threshold", "D", "flag propagated vs re-contoured Dice below this", false, "0.7", false},
      {"--bony", "", "rigid step on bone only", false, "", false},
      {"--allow-other-patient", "", "accept DICOM CTs whose patient IDs differ", false, "", false},
      {"--no-replan", "", "skip the re-optimisation", false, "", false},
      {"--no-setup-correction", "", "recompute the original plan at the planning CT's isocentre coordinates "
                                    "(default: moved to the new anatomy by the rigid registration, as image "
                                    "guidance sets the patient up)",
       false, "", false},
      {"--no-dicom", "", "write NIfTI only (no RS/RD DICOM)", false, "", false},
      {"--device", "DEV", "cpu or cuda", false, "cpu", false},
  };
  c.run = run_adapt;
  return c;
}

}  // namespace isoline::cli
