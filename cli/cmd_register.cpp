// isoline register FIXED MOVING --out dvf.nii.gz: rigid + deformable registration.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "command.h"
#include "isoline/adaptive/registration.h"
#include "isoline/core/atomic_file.h"
#include "isoline/core/error.h"
#include "isoline/core/io.h"

namespace isoline::cli {

namespace {

int run_register(const Args& args, const Context& ctx) {
  adaptive::RegistrationOptions opt;
  opt.rigid = !args.flag("--no-rigid");
  opt.deformable = !args.flag("--rigid-only");
  opt.rigid_options.bony = args.flag("--bony");
  opt.deformable_options.field_sigma_mm = args.get_double("--sigma", opt.deformable_options.field_sigma_mm);
  opt.deformable_options.max_resolution_mm =
      args.get_double("--resolution", opt.deformable_options.max_resolution_mm);
  const long max_voxels = args.get_int("--max-voxels", opt.deformable_options.max_voxels);
  if (max_voxels < 0) throw UsageError{"--max-voxels must be >= 0 (0 = no budget)"};
  opt.deformable_options.max_voxels = max_voxels;
  const long seed = args.get_int("--seed", opt.rigid_options.seed);
  if (seed < 0 || seed > 4294967295L) throw UsageError{"--seed must be an integer in [0, 2^32)"};
  opt.rigid_options.seed = static_cast<unsigned>(seed);
  if (auto it = args.get("--iterations")) {
    opt.deformable_options.iterations.clear();
    std::size_t start = 0;
    while (start <= it->size()) {
      const std::size_t comma = it->find(',', start);
      const std::string part = it->substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      try {
        opt.deformable_options.iterations.push_back(std::stoi(part));
      } catch (...) {
        throw UsageError{"--iterations expects comma-separated integers, got '" + *it + "'"};
      }
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    opt.deformable_options.levels = static_cast<int>(opt.deformable_options.iterations.size());
  }
  if (args.flag("--rigid-only") && args.flag("--no-rigid"))
    throw UsageError{"--rigid-only and --no-rigid together leave nothing to do"};
  if (!(opt.deformable_options.field_sigma_mm >= 0)) throw UsageError{"--sigma must be >= 0 mm"};
  if (!(opt.deformable_options.max_resolution_mm >= 0)) throw UsageError{"--resolution must be >= 0 mm"};
  for (int n : opt.deformable_options.iterations)
    if (n < 0) throw UsageError{"--iterations must be >= 0 per level"};
  const auto lm = args.get_all("--landmarks");
  if (!lm.empty() && lm.size() != 2)
    throw UsageError{"--landmarks needs two files: --landmarks FIXED.txt --landmarks MOVING.txt"};
  if (!args.get("--out") && !args.get("--warped") && lm.empty())
    throw UsageError{"nothing to write or measure: give --out, --warped and/or --landmarks"};
  for (const char* o : {"--out", "--warped"})
    if (auto f = args.get(o)) {
      if (!core::is_image_path(*f))
        throw UsageError{std::string(o) + " names an image file (.nii.gz, .nii, .nrrd or .mha), not " + *f};
      core::check_output_location(*f, "register");
    }
  std::vector<core::Vec3> pf, pm;
  if (!lm.empty()) {
    pf = adaptive::read_points(lm[0]);
    pm = adaptive::read_points(lm[1]);
  }
  // Options are checked before the (possibly large) images are read.
  core::Image fixed = core::read_image(args.positional(0));
  core::Image moving = core::read_image(args.positional(1));
  core::Progress progress(ctx.progress, "register");
  adaptive::RegistrationResult res;
  if (auto in = args.get("--field-in")) {  // evaluate an existing field (e.g. a peer's)
    res.field = adaptive::read_field(*in);
    core::Image jac = adaptive::jacobian_determinant(res.field);
    auto [lo, hi] = jac.min_max();
    res.min_jacobian = lo;
  } else {
    res = adaptive::register_images(fixed, moving, opt, progress);
  }
  {
    // Both or neither: a --warped that cannot be written leaves no new --out beside it.
    core::AtomicOutputs outputs;
    if (auto out = args.get("--out")) adaptive::write_field(res.field, outputs.add(*out));
    if (auto out = args.get("--warped"))
      core::write_image(adaptive::warp(moving, res.field, -1000.0), outputs.add(*out));
    outputs.commit();
  }
  std::printf("registration  %.1f s; Jacobian min %.3f, folding %.4f %%\n", res.seconds, res.min_jacobian,
              100.0 * res.folding_fraction);
  if (!lm.empty()) {
    // Landmarks inside both images only.
    std::vector<core::Vec3> f, m;
    auto inside = [](const core::Geometry& g, const core::Vec3& p) {
      core::Vec3 c = g.world_to_index(p);
      for (int a = 0; a < 3; ++a)
        if (c[a] < 0 || c[a] > g.size[a] - 1) return false;
      return true;
    };
    for (std::size_t n = 0; n < std::min(pf.size(), pm.size()); ++n)
      if (inside(fixed.geometry(), pf[n]) && inside(moving.geometry(), pm[n])) {
        f.push_back(pf[n]);
        m.push_back(pm[n]);
      }
    auto zero = adaptive::DisplacementField::zeros(fixed.geometry());
    auto before = adaptive::target_registration_errors(zero, f, m);
    auto after = adaptive::target_registration_errors(res.field, f, m);
    auto mean = [](const std::vector<double>& v) { return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / v.size(); };
    std::printf("landmarks     %zu of %zu inside both images\n", f.size(), pf.size());
    std::printf("TRE before    %.2f mm (mean)\n", mean(before));
    std::printf("TRE after     %.2f mm (mean), max %.2f mm\n", mean(after),
                after.empty() ? 0.0 : *std::max_element(after.begin(), after.end()));
  }
  return 0;
}

// "100,80,50"; 2.5 -> "2.5": the defaults help prints come from the option structs.
std::string join_ints(const std::vector<int>& v) {
  std::string s;
  for (int n : v) s += (s.empty() ? "" : ",") + std::to_string(n);
  return s;
}
std::string number(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

}  // namespace

Command make_register_command() {
  const adaptive::RegistrationOptions defaults;  // what run_register starts from
  const adaptive::RigidOptions& rigid = defaults.rigid_options;
  const adaptive::DeformableOptions& demons = defaults.deformable_options;
  Command c;
  c.name = "register";
  c.summary = "register a moving CT to a fixed CT (rigid + deformable)";
  c.description =
      "Rigid registration (Mattes mutual information, versor rigid, 3 levels; --bony restricts it\n"
      "to bone) followed by multi-resolution diffeomorphic demons. The displacement field maps\n"
      "fixed points to moving points (ITK/elastix convention) and is written as a vector image.";
  c.positionals = {{"FIXED", "fixed image (e.g. planning CT)"}, {"MOVING", "moving image (e.g. new CT)"}};
  c.options = {
      {"--out", "FILE", "displacement field (.nii.gz, .nrrd, .mha)"},
      {"--field-in", "FILE", "evaluate this displacement field instead of registering"},
      {"--warped", "FILE", "moving image warped onto the fixed grid"},
      {"--bony", "", "rigid step on bone only"},
      {"--rigid-only", "", "skip the deformable step"},
      {"--no-rigid", "", "skip the rigid step"},
      {"--sigma", "MM", "field regularisation (Gaussian sigma, mm)", false, number(demons.field_sigma_mm)},
      {"--iterations", "N,N,N", "demons iterations per level, coarse to fine", false, join_ints(demons.iterations)},
      {"--resolution", "MM", "finest demons grid spacing (mm per axis; 0 = the fixed grid)", false,
       number(demons.max_resolution_mm)},
      {"--max-voxels", "N", "voxel budget of the finest demons grid (0 = none)", false,
       std::to_string(demons.max_voxels)},
      {"--seed", "N", "seed of the rigid metric's random sampling", false, std::to_string(rigid.seed)},
      {"--landmarks", "FILE", "elastix point files, fixed then moving (give twice); prints TRE", false, "", true},
  };
  c.run = run_register;
  return c;
}

}  // namespace isoline::cli
