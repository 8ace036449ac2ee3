// isoline contour <CT> --out rs.dcm|masks-dir: automatic head-and-neck contouring.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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

// --structures: comma-separated, repeatable. Names are trimmed and empty items skipped; a list
// of nothing but commas and a name given twice (Body and its aliases External/BODY are one) are
// usage errors, before the CT is read.
std::vector<std::string> structure_list(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& v : values) {
    std::stringstream ss(v);
    std::string item;
    while (std::getline(ss, item, ',')) {
      const auto b = item.find_first_not_of(" \t\r\n");
      if (b == std::string::npos) continue;
      item = item.substr(b, item.find_last_not_of(" \t\r\n") - b + 1);
      const std::string key = item == "External" || item == "BODY" ? "Body" : item;
      if (!seen.insert(key).second)
        throw UsageError{"--structures names " + item + (key != item ? " (Body)" : "") + " twice"};
      out.push_back(item);
    }
  }
  if (!values.empty() && out.empty()) throw UsageError{"--structures lists no structure name"};
  return out;
}

// A DICOM Part 10 file: "DICM" after the 128-byte preamble.
bool is_dicom_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char head[132] = {};
  return f.read(head, sizeof head) && std::string(head + 128, 4) == "DICM";
}

// Masks (and quality.json) into a directory written whole: `dir` is its temporary.
void write_masks(const contouring::ContourResult& r, const std::string& dir) {
  core::write_mask_dir(r.structures, dir);
  pipeline::write_quality_json(r, (fs::path(dir) / "quality.json").string(), "contour");
}

int run_contour(const Args& args, const Context& ctx) {
  const std::string in = args.positional(0);
  const std::string out = args.value("--out");
  std::error_code ec;
  if (!fs::exists(in, ec)) core::fail<core::IoError>("contour", in, "no such file or directory");
  const bool dicom = !core::is_image_path(in);
  // One DICOM file is one slice (the reader takes the file given, not its series): nothing to
  // contour on. The series is the directory.
  if (dicom && !fs::is_directory(in, ec) && is_dicom_file(in)) {
    const fs::path dir = fs::path(in).parent_path();
    core::fail<core::InvalidInput>("contour", in,
                                   "a single DICOM file is one CT slice; give the series directory (" +
                                       (dir.empty() ? std::string(".") : dir.string()) + ")");
  }
  const bool rtstruct_out = core::ends_with_nocase(out, ".dcm");
  const auto report_html = args.get("--report");
  const auto preview_png = args.get("--preview");
  if (report_html && !core::ends_with_nocase(*report_html, ".html"))
    throw UsageError{"--report names an .html file, not " + *report_html};
  if (preview_png && !core::ends_with_nocase(*preview_png, ".png"))
    throw UsageError{"--preview names a .png file, not " + *preview_png};
  contouring::ContourOptions opt;
  opt.structures = structure_list(args.get_all("--structures"));
  const std::string device = args.value("--device");
  opt.device = core::parse_device(device);
  if (opt.device == core::Device::CUDA && !contouring::cuda_available())  // named as typed ("gpu")
    core::fail<core::DeviceError>("contour", "--device " + device,
                                  "the linked LibTorch has no CUDA support or no GPU is visible "
                                  "(Debian's libtorch is CPU-only); use --device cpu");
  if (auto m = args.get("--model")) opt.model_card = *m;
  // Every output location is checked before the CT is read and the network runs: a typo in
  // a path is an error at once, not after the work with part of the output written.
  core::check_output_location(out, "contour", !rtstruct_out);
  if (auto md = args.get("--masks")) core::check_output_location(*md, "contour", true);
  // Masks replace their directory as a whole: no masks of an earlier run are left beside them.
  if (!rtstruct_out) core::check_output_directory(out, args.flag("--overwrite"), "contour", {in});
  if (auto md = args.get("--masks")) core::check_output_directory(*md, args.flag("--overwrite"), "contour", {in});
  if (report_html) core::check_output_location(*report_html, "contour");
  if (preview_png) core::check_output_location(*preview_png, "contour");
  for (const auto* f : {rtstruct_out ? &out : nullptr, report_html ? &*report_html : nullptr,
                        preview_png ? &*preview_png : nullptr})
    if (f && fs::is_directory(*f, ec))
      core::fail<core::IoError>("contour", *f, "is a directory; a file is written there");

  core::Progress progress(ctx.progress, "contour");
  rtstruct::CtSeries series;
  core::Image ct;
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

  // Warnings go to stderr also with -q; the RT-STRUCT and quality.json keep them too.
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
  // Every output is written under a temporary name first and all are renamed together at the
  // end: a failure or a stop (Ctrl-C, SIGTERM) before that leaves none of them, not an
  // RT-STRUCT without its masks or report.
  core::AtomicOutputs outputs;
  std::vector<std::string> done;  // "wrote ..." lines, printed once committed
  const core::Progress writing = progress.sub(0.9, 1.0, "write");
  if (rtstruct_out) {
    const rtstruct::RtStructWriteOptions wo = pipeline::auto_contour_options(r);
    const std::string& tmp = outputs.add(out, false, false, "contour");
    auto res = rtstruct::write_rtstruct(r.structures, series, tmp, wo, writing.sub(0, 0.8));
    for (const auto& w : res.warnings) std::fprintf(stderr, "warning: %s: %s\n", out.c_str(), w.c_str());
    char line[64];
    std::snprintf(line, sizeof line, " (%zu ROIs, %zu contours)", res.num_rois, res.num_contours);
    done.push_back(out + line);
  } else {
    write_masks(r, outputs.add(out, true, true, "contour"));
    done.push_back(std::to_string(r.structures.size()) + (r.structures.size() == 1 ? " mask" : " masks") + " and quality.json to " + out);
  }
  if (auto md = args.get("--masks")) {
    write_masks(r, outputs.add(*md, true, true, "contour"));
    done.push_back(std::to_string(r.structures.size()) + (r.structures.size() == 1 ? " mask" : " masks") + " and quality.json to " + *md);
  }
  if (report_html || preview_png) {
    char took[32];
    std::snprintf(took, sizeof took, "%.1f s", seconds);
    std::vector<std::pair<std::string, std::string>> info;
    if (dicom)
      info.push_back({"Patient", series.info.patient_name + " (" + series.info.patient_id + ")"});
    info.insert(info.end(),
                {{"CT", in}, {"Device", core::to_string(opt.device)}, {"Contouring time", took}});
    const std::string html = report_html ? outputs.add(*report_html, false, false, "contour") : "";
    const std::string png = preview_png ? outputs.add(*preview_png, false, false, "contour") : "";
    pipeline::write_contour_review(ct, r, html, png, "Auto-contours: " + fs::path(in).filename().string(), info);
    for (const auto* f : {&report_html, &preview_png})
      if (*f) done.push_back(**f);
  }
  // The last check for a stop: the CLI's progress callback throws Cancelled here when a signal
  // came (the temporaries are then removed). Nothing after the renames can stop the command.
  progress.done();
  outputs.commit();
  if (!args.quiet)
    for (const auto& d : done) std::printf("wrote %s\n", d.c_str());
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
  c.positionals = {{"CT", "DICOM CT series directory or NIfTI/NRRD/MetaImage CT in HU"}};
  c.options = {
      {"--out", "PATH", "RT-STRUCT file (.dcm) or masks directory (with quality.json)", true},
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
