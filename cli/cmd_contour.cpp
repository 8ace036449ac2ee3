// isoline contour <CT> --out rs.dcm|masks-dir: automatic head-and-neck contouring.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "command.h"
#include "isoline/contouring/contour.h"
#include "isoline/core/atomic_file.h"
#include "isoline/core/device.h"
#include "isoline/core/error.h"
#include "isoline/core/io.h"
#include "isoline/core/text.h"
#include "isoline/pipeline/case_io.h"
#include "isoline/rtstruct/ct_series.h"
#include "isoline/rtstruct/rtstruct.h"

namespace fs = std::filesystem;

namespace isoline::cli {

namespace {

std::vector<std::string> split_list(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const auto& v : values) {
    std::stringstream ss(v);
    std::string item;
    while (std::getline(ss, item, ','))
      if (!item.empty()) out.push_back(item);
  }
  return out;
}

// Masks into `dir` as a whole: written beside it, then renamed onto it.
void write_masks(const core::StructureSet& set, const std::string& dir) {
  fs::path d = fs::path(dir).lexically_normal();
  if (d.filename().empty()) d = d.parent_path();  // "dir/"
  if (d.has_parent_path()) core::ensure_directory(d.parent_path().string(), "contour");
  core::AtomicOutput out(d.string(), /*directory=*/true);
  core::write_mask_dir(set, out.temp_path());
  out.commit();
}

int run_contour(const Args& args, const Context& ctx) {
  const std::string in = args.positional(0);
  const std::string out = args.value("--out");
  std::error_code ec;
  if (!fs::exists(in, ec)) core::fail<core::IoError>("contour", in, "no such file or directory");
  const bool rtstruct_out = core::ends_with(out, ".dcm");
  const auto report_html = args.get("--report");
  const auto preview_png = args.get("--preview");
  if (report_html && !core::ends_with(*report_html, ".html"))
    throw UsageError{"--report names an .html file, not " + *report_html};
  if (preview_png && !core::ends_with(*preview_png, ".png"))
    throw UsageError{"--preview names a .png file, not " + *preview_png};
  // Every output location is checked before the CT is read and the network runs: a typo in
  // a path is an error at once, not after the work with part of the output written.
  core::check_output_location(out, "contour", !rtstruct_out);
  if (auto md = args.get("--masks")) core::check_output_location(*md, "contour", true);
  // Masks replace their directory as a whole: no masks of an earlier run are left beside them.
  if (!rtstruct_out) core::check_output_directory(out, args.flag("--overwrite"), "contour", {in});
  if (auto md = args.get("--masks")) core::check_output_directory(*md, args.flag("--overwrite"), "contour", {in});
  if (report_html) core::check_output_location(*report_html, "contour");
  if (preview_png) core::check_output_location(*preview_png, "contour");

  contouring::ContourOptions opt;
  opt.structures = split_list(args.get_all("--structures"));
  opt.device = core::parse_device(args.value("--device"));
  if (auto m = args.get("--model")) opt.model_card = *m;

  core::Progress progress(ctx.progress, "contour");
  rtstruct::CtSeries series;
  core::Image ct;
  const bool dicom = !core::is_image_path(in);
  if (dicom) {
    series = rtstruct::read_ct_series(in, {}, progress.sub(0, 0.1, "read CT"));
    ct = series.image;
    for (const auto& w : series.warnings) std::fprintf(stderr, "warning: %s: %s\n", in.c_str(), w.c_str());
    if (rtstruct_out) rtstruct::check_rtstruct_reference(series, out);  // before the network runs
  } else {
    if (rtstruct_out)
      core::fail<core::InvalidInput>("contour", out,
                                     "an RT-STRUCT must reference a DICOM CT series; give a DICOM CT "
                                     "directory, or a directory for NIfTI masks as --out");
    ct = core::read_image(in);
  }
  const auto t0 = std::chrono::steady_clock::now();
  contouring::ContourResult r = contouring::contour(ct, opt, progress.sub(0.1, 0.9, "segment"));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  for (const auto& w : r.warnings) std::fprintf(stderr, "warning: %s: %s\n", in.c_str(), w.c_str());
  if (!args.quiet) {
    std::printf("model %s %s\n", r.model_name.c_str(), r.model_version.c_str());
    std::printf("%-14s %10s %10s  %s\n", "structure", "volume cc", "confidence", "flags");
    for (const auto& q : r.quality) {
      std::string flags;
      for (const auto& f : q.flags) flags += (flags.empty() ? "" : "; ") + f;
      std::printf("%-14s %10.1f %10.2f  %s\n", q.name.c_str(), q.volume_cc, q.confidence,
                  flags.empty() ? "-" : flags.c_str());
    }
  }
  if (rtstruct_out) {
    rtstruct::RtStructWriteOptions wo;
    wo.algorithm_name = "Isoline " + r.model_name;
    wo.structure_set_label = "AUTO";
    wo.series_description = "Isoline auto-contours (review required)";
    auto res = rtstruct::write_rtstruct(r.structures, series, out, wo, progress.sub(0.9, 1.0, "write"));
    for (const auto& w : res.warnings) std::fprintf(stderr, "warning: %s: %s\n", out.c_str(), w.c_str());
    if (!args.quiet) std::printf("wrote %s (%zu ROIs, %zu contours)\n", out.c_str(), res.num_rois, res.num_contours);
  } else {
    write_masks(r.structures, out);
    if (!args.quiet) std::printf("wrote %zu masks to %s\n", r.structures.size(), out.c_str());
  }
  if (auto md = args.get("--masks")) {
    write_masks(r.structures, *md);
    if (!args.quiet) std::printf("wrote %zu masks to %s\n", r.structures.size(), md->c_str());
  }
  if (report_html || preview_png) {
    char took[32];
    std::snprintf(took, sizeof took, "%.1f s", seconds);
    std::vector<std::pair<std::string, std::string>> info;
    if (dicom)
      info.push_back({"Patient", series.info.patient_name + " (" + series.info.patient_id + ")"});
    info.insert(info.end(),
                {{"CT", in}, {"Device", core::to_string(opt.device)}, {"Contouring time", took}});
    pipeline::write_contour_review(ct, r, report_html.value_or(""), preview_png.value_or(""),
                                   "Auto-contours: " + fs::path(in).filename().string(), info);
    if (!args.quiet)
      for (const auto* f : {&report_html, &preview_png})
        if (*f) std::printf("wrote %s\n", (*f)->c_str());
  }
  progress.done();
  return 0;
}

}  // namespace

Command make_contour_command() {
  Command c;
  c.name = "contour";
  c.summary = "auto-contour head-and-neck organs at risk, targets and Body on a CT";
  c.description =
      "Segments Brainstem, SpinalCord, parotids, Esophagus, Larynx, Mandible, PTV70/63/56\n"
      "(trained on OpenKBP) and the Body on a planning CT (DICOM directory or NIfTI), in any\n"
      "orientation. --out FILE.dcm writes an RT-STRUCT referencing the CT (DICOM input only);\n"
      "any other --out is a directory of NIfTI masks. Every ROI carries quality flags (confidence,\n"
      "unusual volume or position, missing) in its description; a CT outside the model's scope\n"
      "(e.g. a chest CT) is reported with a warning. --report writes a self-contained HTML page\n"
      "for a first look (axial, coronal and sagittal views with the outlines, the structure table\n"
      "with the flags, the warnings); --preview the same views as one PNG. Auto-contours must be\n"
      "reviewed.";
  c.positionals = {{"CT", "DICOM CT directory/file or NIfTI/NRRD/MetaImage CT in HU"}};
  c.options = {
      {"--out", "PATH", "RT-STRUCT file (.dcm) or masks directory", true},
      {"--masks", "DIR", "also write NIfTI masks to DIR"},
      {"--overwrite", "", "replace a non-empty masks directory (--out DIR or --masks DIR)"},
      {"--report", "HTML", "also write a review page (views with outlines, structures, flags)"},
      {"--preview", "PNG", "also write the views with outlines as one picture"},
      {"--structures", "LIST", "comma-separated structures (default: all + Body)", false, "", true},
      {"--device", "DEV", "cpu or cuda", false, "cpu"},
      {"--model", "JSON", "model card (default: the shipped model, or $ISOLINE_MODEL)"},
  };
  c.run = run_contour;
  return c;
}

}  // namespace isoline::cli
