// isoline dvh: DVH metrics and a clinical-criteria table for a dose and structures.
#include <cstdio>
#include <fstream>
#include <map>

#include "command.h"
#include "isoline/core/atomic_file.h"
#include "isoline/core/error.h"
#include "isoline/core/io.h"
#include "isoline/planning/criteria.h"
#include "isoline/planning/dvh.h"

namespace isoline::cli {

namespace {

int run_dvh(const Args& args, const Context& ctx) {
  core::Progress progress(ctx.progress, "dvh");
  const std::string dose_path = args.value("--dose");
  core::Image dose = core::read_image(dose_path, core::PixelType::Float32);
  std::vector<std::string> names = args.get_all("--structure");
  core::StructureSet set = core::read_mask_dir(args.value("--masks"), names);
  if (set.empty())
    core::fail<core::InvalidInput>("dvh", args.value("--masks"), "no structure masks found");

  planning::DvhOptions opt;
  opt.supersample = static_cast<int>(args.get_int("--supersample", 0));
  std::map<std::string, planning::Dvh> dvhs;
  std::size_t n = 0;
  for (const auto& s : set) {
    progress.update(double(n++) / set.size(), s.name);
    dvhs[s.name] = planning::compute_dvh(dose, s.mask, s.name, opt);
  }
  progress.done();

  std::printf("%-14s %9s %8s %8s %8s %8s %8s %8s\n", "structure", "vol[cc]", "mean", "min", "max",
              "D0.1cc", "D95%", "D2%");
  for (const auto& [name, d] : dvhs)
    std::printf("%-14s %9.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f\n", name.c_str(), d.volume_cc(),
                d.mean_gy(), d.min_gy(), d.max_gy(), d.dose_at_cc(0.1), d.dose_at_percent(95),
                d.dose_at_percent(2));

  int failed = 0;
  if (auto crit = args.get("--criteria")) {
    auto results = planning::evaluate_criteria(planning::load_criteria(*crit), dvhs);
    std::printf("\n%-40s %9s  %s\n", "criterion", "value", "result");
    for (const auto& r : results) {
      if (!r.evaluated) {
        std::printf("%-40s %9s  not evaluated (structure missing)\n", r.criterion.description.c_str(), "-");
        continue;
      }
      failed += !r.pass;
      std::printf("%-40s %9.2f  %s\n", r.criterion.description.c_str(), r.value, r.pass ? "PASS" : "FAIL");
    }
    std::printf("\n%d of %zu criteria passed\n", planning::count_passed(results), results.size());
  }

  if (auto csv = args.get("--csv")) {
    core::AtomicOutput out(*csv);
    {
      std::ofstream f(out.temp_path());
      f << "structure,dose_gy,volume_fraction\n";
      for (const auto& [name, d] : dvhs) {
        std::vector<double> x, y;
        d.cumulative(args.get_double("--bin", 0.1), &x, &y);
        for (std::size_t i = 0; i < x.size(); ++i) f << name << "," << x[i] << "," << y[i] << "\n";
      }
      if (!f) core::fail<core::IoError>("dvh", *csv, "cannot write file");
    }
    out.commit();
  }
  return args.flag("--fail-on-criteria") && failed > 0 ? 3 : 0;
}

}  // namespace

Command make_dvh_command() {
  Command c;
  c.name = "dvh";
  c.summary = "DVH metrics and clinical criteria for a dose and structures";
  c.description =
      "Computes each structure's DVH with sub-voxel dose sampling (trilinear interpolation)\n"
      "and prints volume, mean, min, max, D0.1cc, D95% and D2%. With --criteria, evaluates a\n"
      "criteria file (e.g. planning/criteria/hn.json) and prints PASS/FAIL per criterion.";
  c.options = {
      {"--dose", "FILE", "dose image in Gy (NIfTI/NRRD/MHA)", true},
      {"--masks", "DIR", "directory of <structure>.nii.gz masks", true},
      {"--structure", "NAME", "only these structures (repeatable)", false, "", true},
      {"--criteria", "FILE", "criteria JSON file"},
      {"--csv", "FILE", "write cumulative DVHs as CSV"},
      {"--bin", "GY", "CSV bin width", false, "0.1"},
      {"--supersample", "N", "sub-samples per voxel axis (0 = automatic)", false, "0"},
      {"--fail-on-criteria", "", "exit with status 3 when a criterion fails"},
  };
  c.run = run_dvh;
  return c;
}

}  // namespace isoline::cli
