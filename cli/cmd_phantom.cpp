// isoline phantom hn|water|lung-slab|bone-slab|c-shape --out DIR: generated CT cases.
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>

#include "command.h"
#include "isoline/core/atomic_file.h"
#include "isoline/core/error.h"
#include "isoline/phantoms/phantoms.h"
#include "progress_bar.h"

namespace isoline::cli {

namespace {

template <class T>
std::array<T, 3> parse_triple(const std::string& text, const std::string& option) {
  std::array<T, 3> v{};
  std::stringstream ss(text);
  std::string part;
  int n = 0;
  while (std::getline(ss, part, ',')) {
    if (n >= 3) throw UsageError{option + " takes three comma-separated values, got '" + text + "'"};
    try {
      std::size_t used = 0;
      const double d = std::stod(part, &used);
      if (used != part.size() || !(d > 0)) throw std::invalid_argument("bad");
      v[n++] = static_cast<T>(d);
    } catch (const std::exception&) {
      throw UsageError{option + ": '" + part + "' is not a positive number"};
    }
  }
  if (n == 1) v[1] = v[2] = v[0];
  else if (n != 3) throw UsageError{option + " takes one or three comma-separated values, got '" + text + "'"};
  return v;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A grid that fits in memory: a CT of 1 G voxels already takes 2 GiB, its masks as much again.
std::array<std::int64_t, 3> checked_size(const std::array<std::int64_t, 3>& size) {
  const double voxels = double(size[0]) * double(size[1]) * double(size[2]);
  if (voxels > 1024.0 * 1024 * 1024)
    throw UsageError{"--size " + std::to_string(size[0]) + "," + std::to_string(size[1]) + "," +
                     std::to_string(size[2]) + " is " + std::to_string(static_cast<long long>(voxels)) +
                     " voxels; at most 1073741824 (e.g. 1024,1024,1024)"};
  return size;
}

int run_phantom(const Args& args, const Context& ctx) {
  const std::string kind = args.positional(0);
  const std::string out = args.value("--out");
  // Where the case goes, before generating it (as `dose --out`): its folder must exist and take
  // new files (phantom does not create missing parents). The case replaces --out as a whole
  // (no older files beside the new ones): checked first too.
  core::check_output_location(out, "phantom");
  core::check_output_directory(out, args.flag("--overwrite"), "phantom");
  const core::Progress progress(ctx.progress, "phantom");
  const auto position = phantoms::patient_position_from_string(args.value("--position"));
  const auto t0 = std::chrono::steady_clock::now();
  phantoms::Phantom ph;
  if (kind == "hn") {
    phantoms::HeadNeckOptions o;
    const long seed = args.get_int("--seed", 7);
    if (seed < 0) throw UsageError{"--seed must be >= 0"};
    o.seed = static_cast<std::uint64_t>(seed);
    if (auto s = args.get("--spacing")) o.spacing = parse_triple<double>(*s, "--spacing");
    if (auto s = args.get("--size")) o.size = checked_size(parse_triple<std::int64_t>(*s, "--size"));
    o.position = position;
    if (auto s = args.get("--site")) o.site = *s;
    o.noise_sd_hu = args.get_double("--noise", 12.0);
    o.blur = !args.flag("--no-blur");
    ph = phantoms::make_head_neck(o, progress.sub(0.0, 0.5, "generate"));
  } else {
    phantoms::DosePhantomOptions o;
    const auto k = phantoms::dose_phantom_from_string(kind);
    if (auto s = args.get("--spacing")) o.spacing = parse_triple<double>(*s, "--spacing");
    if (auto s = args.get("--size")) o.size = checked_size(parse_triple<std::int64_t>(*s, "--size"));
    o.position = position;
    o.noise_sd_hu = args.get_double("--noise", 0.0);
    if (args.has("--seed") || args.has("--site"))
      throw UsageError{"--seed and --site apply to the hn phantom only"};
    ph = phantoms::make_dose_phantom(k, o, progress.sub(0.0, 0.5, "generate"));
  }
  const double t_gen = seconds_since(t0);
  phantoms::WriteOptions w;
  w.dicom = !args.flag("--no-dicom");
  w.preview = args.flag("--preview");
  const auto t1 = std::chrono::steady_clock::now();
  core::AtomicOutput dir(out, /*directory=*/true);
  const auto files = phantoms::write_phantom(ph, dir.temp_path(), w, progress.sub(0.5, 1.0, "write"));
  dir.commit();
  const double t_write = seconds_since(t1);
  finish_progress_line();
  if (!args.quiet) {
    const auto& g = ph.ct.geometry();
    std::printf("phantom %s: %lld x %lld x %lld voxels of %g x %g x %g mm, %s, %zu structures\n",
                kind.c_str(), (long long)g.size[0], (long long)g.size[1], (long long)g.size[2],
                g.spacing[0], g.spacing[1], g.spacing[2], phantoms::to_string(ph.position),
                ph.structures.size());
    for (const auto& [k, v] : ph.facts) std::printf("  %s: %s\n", k.c_str(), v.c_str());
    if (w.dicom && !phantoms::dicom_output_available())
      std::printf("note: this build has no DICOM writer; wrote NIfTI only\n");
    std::printf("generated in %.2f s, wrote %zu files to %s in %.2f s\n", t_gen, files.size(),
                out.c_str(), t_write);
  }
  return 0;
}

}  // namespace

Command make_phantom_command() {
  Command c;
  c.name = "phantom";
  c.summary = "generate a CT case with exact ground truth (head and neck, dose phantoms)";
  c.description =
      "KIND is hn (a seeded adult head-and-neck patient with OARs, GTV/CTV/PTV70 and elective\n"
      "PTV63/PTV56), water (300 mm water box), lung-slab (water-lung-water), bone-slab\n"
      "(water-bone-water) or c-shape (TG-119-like C-shaped PTV around a cylindrical core).\n"
      "Writes ct.nii.gz, labels.nii.gz (tissue classes), masks/<name>.nii.gz,\n"
      "ground_truth.json (analytic volumes, seed facts), dicom/ (CT series and RS.dcm) and\n"
      "with --preview preview.png (axial, coronal and sagittal slices through the tumour).\n"
      "The same seed gives the same patient; HFS and FFS differ only in storage.";
  c.positionals = {{"KIND", "hn, water, lung-slab, bone-slab or c-shape"}};
  c.options = {
      {"--out", "DIR", "output directory (written complete or not at all; must not exist or be empty)", true, "", false},
      {"--overwrite", "", "replace a non-empty --out directory", false, "", false},
      {"--seed", "N", "patient seed (hn)", false, "7", false},
      {"--spacing", "X,Y,Z", "voxel size in mm (hn default 1,1,2.5; dose phantoms 2.5 or 2)", false, "", false},
      {"--size", "NX,NY,NZ", "grid size in voxels (hn default 512,512,160)", false, "", false},
      {"--position", "POS", "patient position HFS, FFS, HFP or FFP", false, "HFS", false},
      {"--site", "SITE", "hn tumour site: oropharynx, larynx, oral_cavity, nasopharynx (default: from the seed)", false, "", false},
      {"--noise", "HU", "noise standard deviation (hn default 12, dose phantoms 0)", false, "", false},
      {"--no-blur", "", "hn: no Gaussian blur", false, "", false},
      {"--no-dicom", "", "skip the DICOM CT series and RT-STRUCT", false, "", false},
      {"--preview", "", "also write preview.png", false, "", false},
  };
  c.run = run_phantom;
  return c;
}

}  // namespace isoline::cli
