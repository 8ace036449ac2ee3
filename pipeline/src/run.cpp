#include "isoline/pipeline/run.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>

#include "isoline/core/atomic_file.h"
#include "isoline/core/error.h"
#include "isoline/core/io.h"
#include "isoline/pipeline/case_io.h"
#include "isoline/rtstruct/rtdose.h"
#include "isoline/rtstruct/rtstruct.h"

namespace fs = std::filesystem;

namespace isoline::pipeline {

namespace {
double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
// Nothing to plan on because every one of the template's targets that is there is empty
// (0 cc): say where they came from and what to do, before the planning. The planner alone can
// only say "present but empty" (planning::make_plan); here the source is known: the network's
// automatic suggestions on this CT (said in the message; the contouring's own warnings, e.g.
// anatomy outside the model's scope, travel with the error: run_case), or the --targets /
// --structures given.
void check_targets_not_empty(const core::StructureSet& structures, const planning::PlanTemplate& tpl,
                             const RunOptions& o) {
  std::vector<std::string> empty;
  for (const auto& l : tpl.targets)
    if (const core::Structure* s = structures.find(l.structure)) {
      if (s->mask.count_nonzero() > 0) return;  // something to plan on
      empty.push_back(l.structure);
    }
  if (empty.empty()) return;  // none there at all: the planner lists what there is
  std::string names;
  for (std::size_t i = 0; i < empty.size(); ++i)
    names += (i == 0 ? "" : i + 1 == empty.size() ? " and " : ", ") + empty[i];
  const bool one = empty.size() == 1;
  if (o.structures_path.empty() && o.targets_path.empty())
    core::fail<core::InvalidInput>(
        "run", o.ct_path,
        "the targets were auto-contoured on this CT and came out empty (0 cc): " + names +
            " (the network's automatic suggestions found no target to plan on); give the physician's targets "
            "with --targets (an RT-STRUCT or masks directory; the organs are still auto-contoured), or the "
            "structures to plan on with --structures");
  const std::string& from = o.structures_path.empty() ? o.targets_path : o.structures_path;
  core::fail<core::InvalidInput>("run", from,
                                 "the template's target" + std::string(one ? " " : "s ") + names +
                                     (one ? " is" : " are") +
                                     " present but empty (0 cc): nothing to plan on; give targets with voxels");
}

// run_case's steps; the warnings go into r.warnings as they arise.
void run_steps(const RunOptions& o, const core::Progress& progress, RunResult& r) {
  const auto t_start = std::chrono::steady_clock::now();
  if (o.out_dir.empty())
    core::fail<core::InvalidInput>("run", "--out", "no output directory given");
  // Where the output goes, before any work (as `plan` and `adapt`): a folder where nothing can
  // be created (/proc, read-only) is said now, naming --out, not at the end by its temporary.
  core::check_output_location(o.out_dir, "run", /*parents_created=*/true);
  core::check_output_directory(o.out_dir, o.overwrite, "run", {o.ct_path, o.structures_path, o.targets_path},
                               "choose another directory or overwrite");
  core::require_device(o.device, "run");
  if (o.max_iterations < 0) core::fail<core::InvalidInput>("run", "max_iterations", "must be >= 0 (0 = the template's)");
  // Check the template before the long work.
  planning::PlanTemplate tpl = planning::load_template(o.template_name);

  r.out_dir = o.out_dir;
  if (!o.structures_path.empty() && !o.targets_path.empty())
    core::fail<core::InvalidInput>("run", "--targets", "give either --structures or --targets, not both");
  CaseCt ct = load_ct(o.ct_path, progress.sub(0.0, 0.04, "read CT"), o.patient_id, o.patient_name);
  // An RS.dcm read from the CT's own folder is used, not one of its "skipped" objects.
  for (const auto& f : {o.targets_path, o.structures_path}) rtstruct::mark_used(ct.series, f);
  for (const auto& w : ct.series.warnings) r.warnings.push_back(o.ct_path + ": " + w);
  if (!ct.from_dicom) r.patient_id = ct.series.info.patient_id;
  // RS.dcm and RD.dcm must be able to reference the CT: say so before the contouring and
  // planning, not after, and name every UID missing (the RT-STRUCT needs the most).
  if (ct.from_dicom && o.structures_path.empty())
    rtstruct::check_rtstruct_reference(ct.series, (fs::path(o.out_dir) / "RS.dcm").string(),
                                       "convert the CT to NIfTI first (isoline convert CT --out ct.nii.gz): "
                                       "run then writes it as a DICOM series of its own, which RS.dcm and "
                                       "RD.dcm reference");
  rtstruct::check_rtdose_reference(ct.series, (fs::path(o.out_dir) / "RD.dcm").string());

  // Missing parents of --out are created now and removed again if the run fails (as `plan`).
  core::AtomicOutputs out;
  const fs::path dir = out.add(o.out_dir, /*directory=*/true, /*create_parents=*/true, "run");

  // CT from an image file: write it as a DICOM series so RT-STRUCT/RT-DOSE reference it.
  for (const auto& f : write_ct_for_image(ct, dir.string(), progress.sub(0.04, 0.08, "write CT"))) r.files.push_back(f);

  // Structures: auto-contours, or the given ones.
  core::StructureSet structures;
  std::string model = "given structures";
  std::optional<contouring::ContourResult> contoured;  // its quality, warnings, model (no masks)
  std::map<std::string, std::string> given;             // --targets: name -> their file
  std::optional<std::size_t> suggestions_warning;       // where in r.warnings it goes
  auto t0 = std::chrono::steady_clock::now();
  if (o.structures_path.empty()) {
    // (RS.dcm's references were checked before the CT was written: a DICOM CT above, and the
    // series written from an image file has every UID.)
    core::StructureSet targets;
    if (!o.targets_path.empty()) {
      for (const auto& st : load_structures(o.targets_path, ct))
        if (st.is_target()) targets.add(st);
      if (targets.empty())
        core::fail<core::InvalidInput>(
            "run", o.targets_path,
            "no target structure (PTV, CTV or GTV by type or name) to plan on");
    }
    std::string note;
    const contouring::Model net(o.model_card, contouring::network_device(o.device, &note));
    if (!note.empty()) r.warnings.push_back(note);
    contouring::ContourOptions co;
    if (!targets.empty()) {  // organs and Body only; the targets are the physician's
      for (const auto& n : net.card().structures)
        if (!core::is_target_type(core::guess_structure_type(n))) co.structures.push_back(n);
      co.structures.push_back("Body");
    }
    // The estimate is only as good as the targets it plans on: said once there is an estimate,
    // in this place of the warnings (the error of targets that come out empty says it its way).
    if (targets.empty()) suggestions_warning = r.warnings.size();
    contouring::ContourResult c =
        contouring::contour(ct.series.image, net, co, progress.sub(0.08, 0.35, "contour"));
    for (const auto& w : c.warnings) r.warnings.push_back("contouring: " + w);
    r.quality = c.quality;
    structures = std::move(c.structures);
    contoured = std::move(c);
    for (const auto& t : targets) {
      if (structures.find(t.name)) structures.remove(t.name);
      core::Structure& added = structures.add(t);
      added.description = "given target (" + fs::path(o.targets_path).filename().string() + ")";
      given[t.name] = fs::path(o.targets_path).filename().string();
    }
    model = contoured->model_name + " " + contoured->model_version;
    // Before RS.dcm is written: its warnings (the empty ROIs) would only repeat the error's.
    check_targets_not_empty(structures, tpl, o);
    rtstruct::RtStructWriteOptions so = auto_contour_options(*contoured);
    // The given targets are not Isoline's: their own generation algorithm (from an RT-STRUCT;
    // unknown from masks), not the network's.
    std::map<std::string, std::string> given_algorithm;
    if (!targets.empty() && !fs::is_directory(o.targets_path))
      for (const auto& roi : rtstruct::read_rtstruct(o.targets_path).rois)
        given_algorithm[roi.name] = roi.generation_algorithm;
    for (const auto& t : targets) so.given_rois[t.name] = given_algorithm[t.name];
    auto res = rtstruct::write_rtstruct(structures, ct.series, (dir / "RS.dcm").string(), so);
    for (const auto& w : res.warnings) r.warnings.push_back("RS.dcm: " + w);
    r.files.push_back("RS.dcm");
  } else {
    structures = load_structures(o.structures_path, ct);
    check_targets_not_empty(structures, tpl, o);
  }
  r.contour_s = since(t0);
  core::write_mask_dir(structures, (dir / "masks").string());
  if (contoured)  // the flags the reviewer (and `isoline serve` on these masks) should see
    write_quality_json(*contoured, (dir / "masks" / "quality.json").string(), "run", given);
  r.files.push_back("masks/");

  // The achievable-dose plan.
  t0 = std::chrono::steady_clock::now();
  planning::PlanOptions po;
  po.device = o.device;
  po.max_iterations = o.max_iterations;
  r.plan =
      planning::make_plan(ct.series.image, structures, tpl, po, progress.sub(0.35, 0.95, "plan"));
  r.plan_s = since(t0);
  if (suggestions_warning)
    r.warnings.insert(r.warnings.begin() + static_cast<std::ptrdiff_t>(*suggestions_warning),
                      "the targets are the network's automatic suggestions (PTV70 Dice about 0.55 against the "
                      "physicians' on the OpenKBP validation split): the dose estimate is not the physician's "
                      "plan; give the physician's targets with --targets");
  for (const auto& w : r.plan.warnings) r.warnings.push_back("plan: " + w);
  PlanOutputs po_files = write_plan_outputs(dir.string(), ct, structures, r.plan);
  r.files.insert(r.files.end(), po_files.files.begin(), po_files.files.end());

  if (o.report) {
    progress.update(0.96, "report");
    char line[160];
    std::vector<std::pair<std::string, std::string>> info;
    info.push_back(
        {"Patient", ct.series.info.patient_name + " (" + ct.series.info.patient_id + ")"});
    info.push_back({"CT", o.ct_path});
    info.push_back({"Structures", !o.structures_path.empty() ? o.structures_path
                                  : o.targets_path.empty()
                                      ? "automatic contours, model " + model + " — review required"
                                      : "targets from " + o.targets_path +
                                            "; organs: automatic contours, model " + model +
                                            " — review required"});
    info.push_back({"Template", tpl.name});
    std::snprintf(line, sizeof line, "contouring %.1f s, planning %.1f s, total %.1f s (%s)",
                  r.contour_s, r.plan_s, since(t_start), core::to_string(o.device));
    info.push_back({"Time", line});
    std::vector<std::string> warnings;
    for (const auto& w : r.warnings)
      if (w.rfind("plan: ", 0) != 0) warnings.push_back(w);  // the report adds the plan's own
    write_plan_report((dir / "report.html").string(), "Isoline achievable dose", ct, structures,
                      r.plan, info, warnings);
    r.files.push_back("report.html");
  }
  r.total_s = since(t_start);
  // The last point where Ctrl-C stops it (the progress callback throws): before the outputs
  // appear, not after, when the message would say they were removed (as adapt).
  progress.done();
  out.commit();
}

}  // namespace

RunResult run_case(const RunOptions& o, const core::Progress& progress) {
  RunResult r;
  try {
    run_steps(o, progress, r);
  } catch (core::Error& e) {
    // The warnings gathered before a failure are often its explanation (a chest CT: "anatomy
    // outside the model's scope?", and then the targets come out empty): they go with the error,
    // as the result would have carried them (the CLI prints them before the error line).
    e.add_warnings(r.warnings);
    throw;
  }
  return r;
}

}  // namespace isoline::pipeline
