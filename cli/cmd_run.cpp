// isoline run <CT> --out DIR: the main job (contour -> plan -> dose -> RT-STRUCT, RT-DOSE, report).
#include <cstdio>
#include <filesystem>
#include <string>

#include "command.h"
#include "criteria_table.h"
#include "isoline/core/device.h"
#include "isoline/pipeline/case_io.h"
#include "isoline/pipeline/run.h"

namespace isoline::cli {

namespace {

int run_run(const Args& args, const Context& ctx) {
  pipeline::RunOptions o;
  o.ct_path = args.positional(0);
  o.out_dir = args.value("--out");
  o.template_name = args.value("--template");
  o.device = core::parse_device(args.value("--device"));
  if (auto m = args.get("--model")) o.model_card = *m;
  if (auto s = args.get("--structures")) o.structures_path = *s;
  if (auto t = args.get("--targets")) o.targets_path = *t;
  o.patient_id = args.get("--patient-id").value_or("");
  o.patient_name = args.get("--patient-name").value_or("");
  if (args.get("--structures") && args.get("--targets"))
    throw UsageError{"give either --structures (plan on them) or --targets (contour the organs), not both"};
  o.max_iterations = static_cast<int>(args.get_int("--iterations", 0));
  if (args.get_int("--iterations", 0) < 0) throw UsageError{"--iterations must be >= 1 (or 0 for the template's)"};
  o.overwrite = args.flag("--overwrite");
  core::Progress progress(ctx.progress, "run");
  pipeline::RunResult r = pipeline::run_case(o, progress);
  for (const auto& w : r.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  if (!args.quiet) {
    if (!r.quality.empty()) {
      std::printf("%-14s %10s %10s  %s\n", "structure", "volume cc", "confidence", "flags");
      for (const auto& q : r.quality) {
        std::string flags;
        for (const auto& f : q.flags) flags += (flags.empty() ? "" : "; ") + f;
        std::printf("%-14s %10.1f %10.2f  %s\n", q.name.c_str(), q.volume_cc, q.confidence,
                    flags.empty() ? "-" : flags.c_str());
      }
      std::printf("\n");
    }
    print_criteria_table(r.plan.criteria, edge_samples_hint(planning::load_template(o.template_name)));
    std::printf("\ncontouring %.1f s, planning %.1f s, total %.1f s\n", r.contour_s, r.plan_s,
                r.total_s);
    std::printf("wrote %s/ (", r.out_dir.c_str());
    for (std::size_t i = 0; i < r.files.size(); ++i)
      std::printf("%s%s", i ? ", " : "", r.files[i].c_str());
    std::printf(")\n");
    if (!r.patient_id.empty() && o.patient_id.empty())
      std::printf("DICOM patient ID %s (the CT is an image file, which names no patient: --patient-id sets it)\n",
                  r.patient_id.c_str());
    const std::string report = (std::filesystem::path(r.out_dir) / "report.html").string();
    if (std::filesystem::exists(report))
      std::printf("report: %s\n", std::filesystem::absolute(report).c_str());
  }
  return 0;
}

}  // namespace

Command make_run_command() {
  Command c;
  c.name = "run";
  c.summary = "the main job: auto-contours, achievable-dose plan, RT-STRUCT, RT-DOSE and a report";
  c.description =
      "Contours the CT (OARs, PTV70/63/56, Body), plans the achievable dose for those contours\n"
      "(template hn: 9 coplanar 6 MV beams, 70/63/56 Gy in 35 fractions) and writes into --out:\n"
      "RS.dcm (auto-contours, to review), RD.dcm (dose), plan.json, dose.nii.gz, masks/,\n"
      "dvh.csv, metrics.json and report.html (pictures, DVH, criteria, quality flags); for a\n"
      "NIfTI CT also CT/ (the CT as DICOM, referenced by RS/RD). The directory appears only\n"
      "when everything is written. --structures plans on given contours instead; --targets\n"
      "takes the physician's PTV/CTV/GTV from an RT-STRUCT or masks directory and auto-contours\n"
      "only the organs.";
  c.positionals = {{"CT", "DICOM CT directory/file or NIfTI/NRRD/MetaImage CT in HU"}};
  c.options = {
      {"--out", "DIR", "output directory (new or empty)", true},
      {"--template", "NAME", "plan template name or JSON", false, planning::kDefaultTemplate},
      {"--structures", "PATH",
       "plan on these structures (masks dir or RT-STRUCT) instead of contouring"},
      {"--targets", "PATH",
       "targets (PTV/CTV/GTV) from this RT-STRUCT or masks dir; organs auto-contoured"},
      {"--patient-id", "ID", "DICOM Patient ID for a CT from an image file (default: IMG- and a hash of the image)", false, "", false},
      {"--patient-name", "NAME", "DICOM Patient Name (PN, e.g. Doe^Jane) for a CT from an image file (default: ANONYMOUS^)", false, "", false},
      {"--model", "JSON", "contouring model card (default: the shipped model)"},
      {"--iterations", "N", "optimiser iterations (default: the template's)"},
      {"--device", "DEV", "cpu or cuda", false, "cpu"},
      {"--overwrite", "", "replace a non-empty --out directory"},
  };
  c.run = run_run;
  return c;
}

}  // namespace isoline::cli
