// isoline plan --ct CT --structures masks-dir|RS.dcm --out DIR: the achievable dose.
#include <cstdio>
#include <filesystem>
#include <string>

#include "isoline/pipeline/case_io.h"
#include "command.h"
#include "criteria_table.h"
#include "isoline/core/atomic_file.h"
#include "isoline/core/device.h"
#include "isoline/core/error.h"
#include "isoline/planning/plan.h"
#include "isoline/rtstruct/rtdose.h"

namespace isoline::cli {
using namespace isoline::pipeline;

namespace {

int run_plan(const Args& args, const Context& ctx) {
  const std::string out = args.value("--out");
  core::Progress progress(ctx.progress, "plan");
  planning::PlanTemplate tpl = planning::load_template(args.value("--template"));
  if (auto c = args.get("--criteria")) tpl.criteria_path = *c;
  planning::PlanOptions po;
  po.device = core::parse_device(args.value("--device"));
  po.max_iterations = static_cast<int>(args.get_int("--iterations", 0));
  if (args.get_int("--iterations", 0) < 0) throw UsageError{"--iterations must be >= 1 (or 0 for the template's)"};
  core::require_device(po.device, "plan");

  core::check_output_location(out, "plan", /*parents_created=*/true);  // before the planning
  core::check_output_directory(out, args.flag("--overwrite"), "plan",
                               {args.value("--ct"), args.value("--structures")});
  CaseCt ct = load_ct(args.value("--ct"), progress.sub(0, 0.03, "read CT"), args.get("--patient-id").value_or(""),
                      args.get("--patient-name").value_or(""));
  rtstruct::check_rtdose_reference(ct.series, (std::filesystem::path(out) / "RD.dcm").string());  // before planning
  rtstruct::mark_used(ct.series, args.value("--structures"));  // an RS.dcm in the CT's folder is read, not skipped
  for (const auto& w : ct.series.warnings) std::fprintf(stderr, "warning: %s: %s\n", args.value("--ct").c_str(), w.c_str());
  core::StructureSet structures = load_structures(args.value("--structures"), ct);
  planning::PlanResult r = planning::make_plan(ct.series.image, structures, tpl, po, progress.sub(0.03, 0.95, "plan"));
  for (const auto& w : r.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  PlanOutputs o;
  {
    // Missing parents are created now and removed again if writing fails (AtomicOutputs).
    core::AtomicOutputs outputs;
    const std::string dir = outputs.add(out, /*directory=*/true, /*create_parents=*/true, "plan");
    // A CT from an image file is written beside RD.dcm (as `run` does): the RT-DOSE then
    // references a CT series a planning system can load with it.
    const std::vector<std::string> ct_files = write_ct_for_image(ct, dir);
    o = write_plan_outputs(dir, ct, structures, r);
    o.files.insert(o.files.begin(), ct_files.begin(), ct_files.end());
    if (!args.flag("--no-report")) {
      write_plan_report(dir + "/report.html", "Isoline achievable dose", ct, structures, r,
                        {{"CT", args.value("--ct")}, {"Structures", args.value("--structures")}, {"Template", tpl.name}}, {});
      o.files.push_back("report.html");
    }
    // The last point where Ctrl-C stops it (the progress callback throws): before the outputs
    // appear, not after, when the message would say they were removed (as contour, run, adapt).
    progress.done();
    outputs.commit();
  }
  int failed = 0;
  if (!args.quiet) {
    std::printf("plan: %s, %zu beams, %d fractions, %d iterations; influence %.1f s, optimise %.1f s, dose %.1f s, total %.1f s\n",
                tpl.name.c_str(), r.plan.beams.size(), r.fractions, r.optimizer.iterations, r.timing.influence_s,
                r.timing.optimize_s, r.timing.dose_s, r.timing.total_s);
    failed = print_criteria_table(r.criteria, edge_samples_hint(tpl));
    std::printf("wrote");
    for (const auto& f : o.files) std::printf(" %s", f.c_str());
    std::printf(" to %s\n", out.c_str());
  } else {
    for (const auto& c : r.criteria) failed += c.evaluated && !c.pass;
  }
  return args.flag("--fail-on-criteria") && failed > 0 ? 3 : 0;
}

}  // namespace

Command make_plan_command() {
  Command c;
  c.name = "plan";
  c.summary = "estimate the achievable dose: optimise beamlet fluence for the targets and OARs";
  c.description =
      "Applies a plan template (default: hn, 9 coplanar 6 MV beams, 70/63/56 Gy in 35 fractions;\n"
      "planning/templates/) to a CT and its structures: beams around the targets, a beamlet\n"
      "influence matrix (collapsed cone), fluence optimisation against the template's\n"
      "objectives, the final dose with the full engine, normalised so that the highest target's\n"
      "D95 is its prescription. Writes plan.json, dose.nii.gz, RD.dcm, dvh.csv, metrics.json and\n"
      "report.html into --out (all or nothing) and prints the clinical-criteria table.";
  c.options = {
      {"--ct", "CT", "CT (DICOM directory or NIfTI/NRRD/MHA in HU)", true},
      {"--structures", "PATH", "directory of <name>.nii.gz masks on the CT grid, or an RT-STRUCT", true},
      {"--out", "DIR", "output directory", true},
      {"--patient-id", "ID", "DICOM Patient ID for a CT from an image file (default: IMG- and a hash of the image)", false, "", false},
      {"--patient-name", "NAME", "DICOM Patient Name (PN, e.g. Doe^Jane) for a CT from an image file (default: ANONYMOUS^)", false, "", false},
      {"--template", "NAME", "template name or JSON file", false, planning::kDefaultTemplate},
      {"--criteria", "FILE", "criteria JSON (default: the template's)"},
      {"--iterations", "N", "optimiser iterations (default: the template's)"},
      {"--device", "DEV", "cpu or cuda", false, "cpu"},
      {"--fail-on-criteria", "", "exit with status 3 when a criterion fails"},
      {"--no-report", "", "skip report.html"},
      {"--overwrite", "", "replace a non-empty --out directory"},
  };
  c.run = run_plan;
  return c;
}

}  // namespace isoline::cli
