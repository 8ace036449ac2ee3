// isoline convert: DICOM RT <-> NIfTI.
//   masks (NIfTI files or a directory of them) + --ct DICOM CT  -> RT-STRUCT (.dcm)
//   RT-STRUCT (.dcm) [+ --ct DIR | --grid IMAGE]                -> directory of NIfTI masks
//   RT-DOSE (.dcm)                                              -> NIfTI dose (Gy)
//   NIfTI dose + --ct DIR (--to rtdose)                         -> RT-DOSE (.dcm)
//   DICOM CT directory                                          -> NIfTI CT (HU)
//   NIfTI CT (--to ct)                                          -> DICOM CT series directory
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include "command.h"
#include "isoline/core/atomic_file.h"
#include "isoline/core/error.h"
#include "isoline/core/io.h"
#include "isoline/core/mask_ops.h"
#include "isoline/core/text.h"
#include "isoline/rtstruct/ct_series.h"
#include "isoline/rtstruct/rtdose.h"
#include "isoline/rtstruct/rtstruct.h"

namespace fs = std::filesystem;

namespace isoline::cli {

namespace {

const char* kOp = "convert";

// A mask on the CT grid: masks stored on the same voxels with another axis order or direction
// map exactly (nearest-neighbour resampling in patient space).
core::Image resample_mask(const core::Image& m, const core::Geometry& g) {
  const core::Image u8 = m.pixel_type() == core::PixelType::UInt8 ? m : m.cast(core::PixelType::UInt8);
  if (m.geometry().same_grid(g, 1e-3)) return u8;
  return core::resample(u8, g, core::Interpolation::Nearest);
}

std::string stem(const std::string& path) {
  std::string n = fs::path(path).filename().string();
  for (const char* e : {".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd"})
    if (core::ends_with(n, e)) return n.substr(0, n.size() - std::string(e).size());
  return n;
}

std::string safe_name(std::string s) {
  for (char& c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) c = '_';
  return s.empty() ? "ROI" : s;
}

int to_rtstruct(const Args& args, const Context& ctx) {
  const std::string out = args.value("--out");
  const auto ct_dir = args.get("--ct");
  if (!ct_dir) throw UsageError{"masks -> RT-STRUCT needs --ct DICOM_CT"};
  core::Progress progress(ctx.progress, "convert");
  auto ct = rtstruct::read_ct_series(*ct_dir, {}, progress.sub(0, 0.3, "read CT"));
  std::vector<std::string> files;
  for (const auto& p : args.positionals()) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<std::string> v;
      for (auto& e : fs::directory_iterator(p))
        if (core::is_image_path(e.path().string())) v.push_back(e.path().string());
      std::sort(v.begin(), v.end());
      files.insert(files.end(), v.begin(), v.end());
    } else {
      files.push_back(p);
    }
  }
  if (files.empty()) core::fail<core::InvalidInput>(kOp, args.positional(0), "no mask files");
  const auto only = args.get_all("--roi");
  std::vector<std::string> stems;
  for (const auto& f : files) stems.push_back(stem(f));
  require_structures(only, stems, kOp, args.positional(0), "--roi ");
  core::StructureSet set(ct.image.geometry());
  for (const auto& f : files) {
    const std::string name = stem(f);
    if (!only.empty() && std::find(only.begin(), only.end(), name) == only.end()) continue;
    core::Image m = core::read_image(f, core::PixelType::UInt8);
    const bool had_voxels = m.count_nonzero() > 0;
    core::Structure& s = set.add(name, resample_mask(m, ct.image.geometry()));
    if (had_voxels && s.mask.count_nonzero() == 0)
      core::fail<core::InvalidInput>(kOp, f, "the mask lies wholly outside the CT (" + *ct_dir +
                                                  "): another patient's or scan's grid?");
  }
  rtstruct::RtStructWriteOptions o;
  if (auto l = args.get("--label")) o.structure_set_label = *l;
  for (const auto& m : args.get_all("--rename")) {
    const auto eq = m.find('=');
    if (eq == std::string::npos) throw UsageError{"--rename expects OLD=NEW, got '" + m + "'"};
    o.name_map[m.substr(0, eq)] = m.substr(eq + 1);
    require_structures({m.substr(0, eq)}, set.names(), kOp, args.positional(0), "--rename ");
  }
  o.keyhole = args.flag("--keyhole");
  if (auto a = args.get("--approval")) o.approval_status = *a;
  if (auto r = args.get("--reviewer")) o.reviewer_name = *r;
  const auto t0 = std::chrono::steady_clock::now();
  auto res = rtstruct::write_rtstruct(set, ct, out, o, progress.sub(0.3, 1.0, "write"));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!args.quiet) {
    for (const auto& w : res.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    std::printf(
        "wrote %s: %zu ROIs, %zu contours, referencing %zu CT slices (RT-STRUCT written in %.3f "
        "s)\n",
        out.c_str(), res.num_rois, res.num_contours, ct.slices.size(), secs);
  }
  return 0;
}

int from_rtstruct(const std::string& in, const Args& args, const Context& ctx) {
  const std::string out = args.value("--out");
  // The masks replace --out as a whole: checked first (and where it is to be created).
  core::check_output_location(out, kOp, /*parents_created=*/true);
  core::check_output_directory(out, args.flag("--overwrite"), kOp, {in, args.get("--ct").value_or("")});
  core::Progress progress(ctx.progress, "convert");
  auto rs = rtstruct::read_rtstruct(in);
  core::Geometry grid;
  if (auto ct = args.get("--ct")) {
    auto s = rtstruct::read_ct_series(*ct, {}, progress.sub(0, 0.3, "read CT"));
    rtstruct::check_same_frame(rs, s.frame_of_reference_uid, kOp, in, "the CT's (" + *ct + ")");
    grid = s.image.geometry();
  } else if (auto g = args.get("--grid")) {
    grid = core::read_image(*g).geometry();
  } else {
    grid = rtstruct::contour_grid(rs, args.get_double("--pixel", 1.0));
  }
  rtstruct::RasterizeOptions ro;
  ro.names = args.get_all("--roi");
  {
    std::vector<std::string> names;
    for (const auto& r : rs.rois) names.push_back(r.name);
    require_structures(ro.names, names, kOp, in, "--roi ");
  }
  auto set = rtstruct::rasterize(rs, grid, ro, progress.sub(0.3, 0.9, "rasterize"));
  // The masks replace the directory as a whole: no earlier masks left beside them. Missing
  // parent folders are created, and removed again should writing fail.
  core::AtomicOutputs outputs;
  const std::string tmp = outputs.add(out, /*directory=*/true, /*create_parents=*/true, kOp);
  for (const auto& s : set) core::write_image(s.mask, tmp + "/" + safe_name(s.name) + ".nii.gz");
  outputs.commit();
  if (!args.quiet) {
    for (const auto& w : rs.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    std::printf("wrote %zu masks to %s\n", set.size(), out.c_str());
  }
  return 0;
}

int run_convert(const Args& args, const Context& ctx) {
  const std::string in = args.positional(0);
  const std::string out = args.value("--out");
  std::string to = args.get("--to").value_or("");
  std::error_code ec;
  if (!fs::exists(in, ec)) core::fail<core::IoError>(kOp, in, "no such file or directory");
  const bool image_in = core::is_image_path(in) && !fs::is_directory(in, ec);
  if (image_in && core::is_image_path(out) && (to.empty() || to == "nifti")) {
    // One image to another image format (e.g. NIfTI -> NRRD): the same voxels and geometry.
    core::check_output_location(out, kOp);
    core::write_image(core::read_image(in), out);
    if (!args.quiet) std::printf("wrote %s\n", out.c_str());
    return 0;
  }
  if (to.empty()) {
    if (core::is_image_path(in) || fs::is_directory(in, ec)) {
      // Directory: DICOM CT unless it holds NIfTI masks.
      bool masks = core::is_image_path(in);
      if (fs::is_directory(in, ec))
        for (auto& e : fs::directory_iterator(in))
          if (core::is_image_path(e.path().string())) masks = true;
      if (masks)
        to = core::ends_with(out, ".dcm") ? "rtstruct" : "ct";
      else
        to = "nifti";
    } else {
      const std::string m = rtstruct::dicom_modality_checked(in);
      if (m.empty())
        core::fail<core::IoError>(kOp, in, "neither DICOM nor a NIfTI/NRRD/MetaImage image");
      to = "nifti";
    }
  }
  core::Progress progress(ctx.progress, "convert");
  if (to == "rtstruct") return to_rtstruct(args, ctx);
  if (to == "ct") {
    // A DICOM series replaces --out as a whole: checked first.
    core::check_output_directory(out, args.flag("--overwrite"), kOp, {in});
    rtstruct::CtWriteOptions o;
    if (auto d = args.get("--description")) o.series_description = *d;
    auto s =
        rtstruct::write_ct_series(core::read_image(in, core::PixelType::Int16), out, o, progress);
    if (!args.quiet) std::printf("wrote %zu CT slices to %s\n", s.slices.size(), out.c_str());
    return 0;
  }
  if (to == "rtdose") {
    const auto ct_dir = args.get("--ct");
    if (!ct_dir)
      throw UsageError{"dose -> RT-DOSE needs --ct DICOM_CT (for the frame of reference)"};
    auto ct = rtstruct::read_ct_series(*ct_dir, {}, progress.sub(0, 0.5, "read CT"));
    rtstruct::RtDoseWriteOptions o;
    if (auto p = args.get("--plan")) o.referenced_plan_sop_instance_uid = rtstruct::plan_reference_for(*p, ct);
    if (o.referenced_plan_sop_instance_uid.empty() && !args.quiet)
      std::fprintf(stderr,
                   "warning: no --plan: DoseSummationType PLAN without ReferencedRTPlanSequence "
                   "(the TPS will ask to link the plan)\n");
    auto r = rtstruct::write_rtdose(core::read_image(in, core::PixelType::Float32), ct, out, o);
    if (!args.quiet)
      std::printf("wrote %s (DoseGridScaling %g Gy)\n", out.c_str(), r.dose_grid_scaling);
    return 0;
  }
  if (to != "nifti")
    throw UsageError{"--to expects ct, rtstruct, rtdose or nifti, got '" + to + "'"};
  std::error_code ec2;
  if (!fs::is_directory(in, ec2)) {
    const std::string m = rtstruct::dicom_modality(in);
    if (m == "RTSTRUCT") return from_rtstruct(in, args, ctx);
    if (m == "RTDOSE") {
      auto d = rtstruct::read_rtdose(in);
      core::write_image(d.dose, out);
      if (!args.quiet)
        std::printf("wrote %s (max %.4g Gy)\n", out.c_str(), d.dose.min_max().second);
      return 0;
    }
  }
  auto ct = rtstruct::read_ct_series(in, {}, progress);
  for (const auto& w : ct.warnings) std::fprintf(stderr, "warning: %s: %s\n", in.c_str(), w.c_str());
  core::write_image(ct.image, out);
  if (!args.quiet)
    std::printf("wrote %s (%lld slices)\n", out.c_str(),
                static_cast<long long>(ct.image.geometry().size[2]));
  return 0;
}

}  // namespace

Command make_convert_command() {
  Command c;
  c.name = "convert";
  c.summary = "convert between DICOM (CT, RT-STRUCT, RT-DOSE) and NIfTI";
  c.description =
      "Converts, by input kind:\n"
      "  NIfTI masks (files or a directory) + --ct CT_DIR, --out rs.dcm  -> RT-STRUCT\n"
      "  rs.dcm [--ct CT_DIR | --grid IMAGE], --out DIR                  -> NIfTI masks\n"
      "  rd.dcm, --out dose.nii.gz                                        -> NIfTI dose in Gy\n"
      "  dose.nii.gz --to rtdose --ct CT_DIR [--plan rp.dcm], --out rd.dcm -> RT-DOSE\n"
      "  CT_DIR (DICOM), --out ct.nii.gz                                  -> NIfTI CT in HU\n"
      "  ct.nii.gz --to ct, --out CT_DIR                                  -> DICOM CT series\n"
      "  image.nii.gz, --out image.nrrd (NIfTI, NRRD or MetaImage)        -> the same image, other format\n"
      "Without --ct or --grid an RT-STRUCT is rasterized on a grid fitted to its contours.";
  c.positionals = {{"INPUT", "file(s) or directory to convert", true, true}};
  c.options = {
      {"--out", "PATH", "output file or directory", true, "", false},
      {"--to", "KIND", "ct, rtstruct, rtdose or nifti (default: from the input)", false, "", false},
      {"--ct", "DIR", "reference DICOM CT series", false, "", false},
      {"--grid", "IMAGE", "reference image whose grid the masks are rasterized on", false, "",
       false},
      {"--pixel", "MM", "in-plane pixel size of the contour-fitted grid", false, "1.0", false},
      {"--roi", "NAME", "only this ROI (repeatable)", false, "", true},
      {"--rename", "OLD=NEW", "ROI name map for RT-STRUCT output (repeatable)", false, "", true},
      {"--label", "TEXT", "StructureSetLabel (at most 16 characters)", false, "", false},
      {"--keyhole", "", "join holes to their outer contour instead of separate contours", false, "",
       false},
      {"--approval", "STATUS", "RT-STRUCT approval: UNAPPROVED, APPROVED or REJECTED", false, "",
       false},
      {"--reviewer", "NAME", "reviewer (DICOM PN, e.g. Curie^Marie) for APPROVED/REJECTED", false,
       "", false},
      {"--plan", "RP", "RT Plan the dose belongs to (ReferencedRTPlanSequence)", false, "", false},
      {"--description", "TEXT", "series description of a written CT", false, "", false},
      {"--overwrite", "", "replace a non-empty --out directory (DICOM series or masks)", false, "", false},
  };
  c.run = run_convert;
  return c;
}

}  // namespace isoline::cli
