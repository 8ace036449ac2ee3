// isoline convert: DICOM RT <-> NIfTI.
//   masks (NIfTI files or a directory of them) + --ct DICOM CT  -> RT-STRUCT (.dcm)
//   RT-STRUCT (.dcm) [+ --ct DIR | --grid IMAGE]                -> directory of NIfTI masks
//   RT-DOSE (.dcm)                                              -> NIfTI dose (Gy)
//   NIfTI dose + --ct DIR (--to rtdose)                         -> RT-DOSE (.dcm)
//   DICOM CT directory                                          -> NIfTI CT (HU)
//   NIfTI CT (--to ct)                                          -> DICOM CT series directory
#include <algorithm>
#include <array>
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
  if (m.geometry().same_grid(g, 1e-3)) return m;
  return core::resample(m, g, core::Interpolation::Nearest);
}

// True when grids `a` and `b` hold the same voxel centres, possibly stored in another axis order
// or direction (then resampling moves no voxel): same voxel count, the same spacings in some
// order and the same eight corner voxel centres in patient space.
bool same_voxels(const core::Geometry& a, const core::Geometry& b) {
  if (a.num_voxels() != b.num_voxels()) return false;
  std::array<double, 3> sa{a.spacing[0], a.spacing[1], a.spacing[2]}, sb{b.spacing[0], b.spacing[1], b.spacing[2]};
  std::sort(sa.begin(), sa.end());
  std::sort(sb.begin(), sb.end());
  for (int i = 0; i < 3; ++i)
    if (std::abs(sa[i] - sb[i]) > 1e-3) return false;
  auto corners = [](const core::Geometry& g) {
    std::vector<core::Vec3> c;
    for (int n = 0; n < 8; ++n)
      c.push_back(g.index_to_world({n & 1 ? g.size[0] - 1.0 : 0.0, n & 2 ? g.size[1] - 1.0 : 0.0,
                                    n & 4 ? g.size[2] - 1.0 : 0.0}));
    return c;
  };
  const auto ca = corners(a), cb = corners(b);
  for (const auto& p : ca) {
    bool found = false;
    for (const auto& q : cb)
      found = found || (std::abs(p[0] - q[0]) < 1e-3 && std::abs(p[1] - q[1]) < 1e-3 && std::abs(p[2] - q[2]) < 1e-3);
    if (!found) return false;
  }
  return true;
}

std::string grid_text(const core::Geometry& g) {
  char b[160];
  std::snprintf(b, sizeof b, "%lld x %lld x %lld voxels of %.3g x %.3g x %.3g mm from (%.1f, %.1f, %.1f)",
                static_cast<long long>(g.size[0]), static_cast<long long>(g.size[1]),
                static_cast<long long>(g.size[2]), g.spacing[0], g.spacing[1], g.spacing[2], g.origin[0],
                g.origin[1], g.origin[2]);
  return b;
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
  std::vector<std::string> files, skipped;
  for (const auto& p : args.positionals()) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      // A case folder (OpenKBP, `isoline phantom`) also holds the CT, the dose and a label map:
      // they are not structures.
      std::vector<std::string> v;
      for (auto& e : fs::directory_iterator(p)) {
        if (!core::is_image_path(e.path().string())) continue;
        if (core::is_not_mask_name(stem(e.path().string())))
          skipped.push_back(e.path().filename().string());
        else
          v.push_back(e.path().string());
      }
      std::sort(v.begin(), v.end());
      files.insert(files.end(), v.begin(), v.end());
    } else {
      files.push_back(p);
    }
  }
  std::sort(skipped.begin(), skipped.end());
  if (files.empty())
    core::fail<core::InvalidInput>(kOp, args.positional(0),
                                   skipped.empty() ? "no mask files" : "no mask files (only the case's " +
                                                                           core::join(skipped, ", ") + ")");
  const auto only = args.get_all("--roi");
  std::vector<std::string> stems;
  for (const auto& f : files) stems.push_back(stem(f));
  require_structures(only, stems, kOp, args.positional(0), "--roi ");
  const std::string generation = args.get("--generation").value_or("");
  if (!generation.empty() && generation != "MANUAL" && generation != "SEMIAUTOMATIC" && generation != "AUTOMATIC")
    throw UsageError{"--generation expects MANUAL, SEMIAUTOMATIC or AUTOMATIC, got '" + generation + "'"};
  const core::Geometry& ctg = ct.image.geometry();
  std::vector<std::string> warnings;
  core::StructureSet set(ctg);
  for (const auto& f : files) {
    const std::string name = stem(f);
    if (!only.empty() && std::find(only.begin(), only.end(), name) == only.end()) continue;
    // Only 0/1 (or 0/255) images are masks: a CT, dose, label or probability map is refused
    // with what it looks like, not cast into a structure.
    core::Image m = core::read_mask(f, kOp);
    const std::size_t voxels = m.count_nonzero();
    core::Structure& s = set.add(name, resample_mask(m, ctg));
    const std::size_t kept = s.mask.count_nonzero();
    if (voxels > 0 && kept == 0)
      core::fail<core::InvalidInput>(kOp, f, "the mask lies wholly outside the CT (" + *ct_dir +
                                                  "): another patient's or scan's grid?");
    if (!same_voxels(m.geometry(), ctg)) {
      // NIfTI masks carry no patient or frame of reference: a mask of another scan would be
      // placed on this CT without complaint. Say that it was moved onto another grid.
      std::string w = f + ": resampled onto the CT's grid (mask " + grid_text(m.geometry()) + "; CT " +
                      grid_text(ctg) + "): check that it was drawn on this CT";
      const double in_cc = static_cast<double>(voxels) * m.geometry().voxel_volume_mm3() / 1000.0;
      const double out_cc = static_cast<double>(kept) * ctg.voxel_volume_mm3() / 1000.0;
      if (voxels > 0 && out_cc < 0.98 * in_cc) {
        char b[120];
        std::snprintf(b, sizeof b, "; only %.1f of its %.1f cc lie inside the CT", out_cc, in_cc);
        w += b;
      }
      warnings.push_back(w);
    }
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
  // Isoline did not make these masks: their ROIs carry the generation given (default empty,
  // "unknown", Type 2) and no AI derivation sequence.
  for (const auto& st : set) o.given_rois[st.name] = generation;
  const auto t0 = std::chrono::steady_clock::now();
  auto res = rtstruct::write_rtstruct(set, ct, out, o, progress.sub(0.3, 1.0, "write"));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Warnings are printed with -q too: an ROI renamed or written empty must not pass unseen.
  for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  for (const auto& w : res.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  if (!args.quiet) {
    if (!skipped.empty())
      std::printf("skipped %s: not structure masks\n", core::join(skipped, ", ").c_str());
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
  for (const auto& w : rs.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  if (!args.quiet) {
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
  if ((args.get("--patient-id") || args.get("--patient-name")) && to != "ct")
    throw UsageError{"--patient-id and --patient-name name the patient of a CT written from an image (--to ct)"};
  core::Progress progress(ctx.progress, "convert");
  if (to == "rtstruct") return to_rtstruct(args, ctx);
  if (to == "ct") {
    // A DICOM series replaces --out as a whole: checked first.
    core::check_output_directory(out, args.flag("--overwrite"), kOp, {in});
    rtstruct::CtWriteOptions o;
    if (auto d = args.get("--description")) o.series_description = *d;
    const core::Image hu = core::read_image(in, core::PixelType::Int16);
    o.info = rtstruct::identity_for_image(hu, args.get("--patient-id").value_or(""),
                                          args.get("--patient-name").value_or(""));
    auto s = rtstruct::write_ct_series(hu, out, o, progress);
    if (!args.quiet)
      std::printf("wrote %zu CT slices to %s (patient %s, ID %s%s)\n", s.slices.size(), out.c_str(),
                  s.info.patient_name.c_str(), s.info.patient_id.c_str(),
                  args.get("--patient-id") ? "" : ": from the image, --patient-id sets it");
    return 0;
  }
  if (to == "rtdose") {
    const auto ct_dir = args.get("--ct");
    if (!ct_dir)
      throw UsageError{"dose -> RT-DOSE needs --ct DICOM_CT (for the frame of reference)"};
    auto ct = rtstruct::read_ct_series(*ct_dir, {}, progress.sub(0, 0.5, "read CT"));
    rtstruct::RtDoseWriteOptions o;
    if (auto p = args.get("--plan")) o.referenced_plan_sop_instance_uid = rtstruct::plan_reference_for(*p, ct);
    if (o.referenced_plan_sop_instance_uid.empty())
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
      {"--generation", "HOW", "ROIGenerationAlgorithm of masks -> RT-STRUCT: MANUAL, SEMIAUTOMATIC or AUTOMATIC (default: empty, unknown)", false, "", false},
      {"--reviewer", "NAME", "reviewer (DICOM PN, e.g. Curie^Marie) for APPROVED/REJECTED", false,
       "", false},
      {"--plan", "RP", "RT Plan the dose belongs to (ReferencedRTPlanSequence)", false, "", false},
      {"--description", "TEXT", "series description of a written CT", false, "", false},
      {"--patient-id", "ID", "DICOM Patient ID for a CT from an image file (default: IMG- and a hash of the image)", false, "", false},
      {"--patient-name", "NAME", "DICOM Patient Name (PN, e.g. Doe^Jane) for a CT from an image file (default: ANONYMOUS^)", false, "", false},
      {"--overwrite", "", "replace a non-empty --out directory (DICOM series or masks)", false, "", false},
  };
  c.run = run_convert;
  return c;
}

}  // namespace isoline::cli
