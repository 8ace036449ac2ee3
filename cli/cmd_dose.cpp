// isoline dose --ct CT --plan plan.json --out dose.nii.gz|rd.dcm [--device cpu|cuda]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "command.h"
#include "isoline/core/atomic_file.h"
#include "isoline/core/error.h"
#include "isoline/core/io.h"
#include "isoline/core/text.h"
#include "isoline/dose/dose.h"
#include "isoline/rtstruct/ct_series.h"
#include "isoline/rtstruct/rtdose.h"

namespace fs = std::filesystem;

namespace isoline::cli {

namespace {

int run_dose(const Args& args, const Context& ctx) {
  const std::string ct_path = args.value("--ct");
  const std::string plan_path = args.value("--plan");
  const std::string out = args.value("--out");
  const core::Device device = core::parse_device(args.value("--device"));
  const bool to_dicom = core::ends_with(out, ".dcm");
  if (!to_dicom && !core::is_image_path(out))
    core::fail<core::InvalidInput>("dose", out,
                                   "unknown output format (use .nii.gz, .nii, .nrrd, .mha or an RT-DOSE .dcm)");
  core::require_device(device, "dose");
  core::check_output_location(out, "dose");  // before the dose calculation
  core::Progress progress(ctx.progress, "dose");
  std::error_code ec;
  if (!fs::exists(ct_path, ec)) core::fail<core::IoError>("dose", ct_path, "no such file or directory");
  rtstruct::CtSeries series;
  core::Image ct;
  if (core::is_image_path(ct_path)) {
    ct = core::read_image(ct_path);
  } else {
    if (args.get("--patient-id") || args.get("--patient-name"))
      throw UsageError{"--patient-id and --patient-name are for a CT from an image file: a DICOM CT keeps its own"};
    series = rtstruct::read_ct_series(ct_path, {}, progress.sub(0, 0.1, "read CT"));
    ct = series.image;
  }
  dose::Plan plan = dose::read_plan(plan_path);
  const auto t0 = std::chrono::steady_clock::now();
  core::Image d = dose::compute_dose(ct, plan, device, progress.sub(0.1, 0.95, "calculate"));
  if (plan.fractions > 1) {  // MU are per fraction; the output is the plan's dose
    float* v = d.data<float>();
    for (std::size_t i = 0; i < d.num_voxels(); ++i) v[i] *= static_cast<float>(plan.fractions);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (to_dicom) {
    if (series.slices.empty()) {
      // A NIfTI CT has no DICOM identity: the RT-DOSE gets a new study and frame of reference.
      series.image = ct;
      series.info = rtstruct::identity_for_image(ct, args.get("--patient-id").value_or(""),
                                                 args.get("--patient-name").value_or(""));
      series.frame_of_reference_uid = rtstruct::generate_uid();
    }
    rtstruct::RtDoseWriteOptions o;
    o.dose_comment = "Isoline CCCS " + plan.machine.name + ", plan " + plan.name;
    rtstruct::write_rtdose(d, series, out, o);
  } else {
    core::write_image(d, out);
  }
  progress.done();
  if (!args.quiet) {
    auto [lo, hi] = d.min_max();
    std::printf("dose: %zu beams, %d fraction%s, %s, %.2f s, max %.4g Gy -> %s\n", plan.beams.size(), plan.fractions,
                plan.fractions == 1 ? "" : "s", core::to_string(device), secs, hi, out.c_str());
  }
  return 0;
}

}  // namespace

Command make_dose_command() {
  Command c;
  c.name = "dose";
  c.summary = "calculate 6 MV photon dose (collapsed-cone convolution/superposition)";
  c.description =
      "Calculates the dose of a plan (JSON: machine, beams, jaws, apertures or fluence maps,\n"
      "MU; see docs/dose.md) on a CT (NIfTI/NRRD/MetaImage in HU, or a DICOM CT series) with\n"
      "the collapsed-cone engine, and writes it in Gy on the CT grid as an image or an\n"
      "RT-DOSE file (.dcm). Beam MU are per fraction; the output is the dose of all the plan's\n"
      "\"fractions\" (default 1).";
  c.options = {
      {"--ct", "CT", "CT image (HU) or DICOM CT directory", true, "", false},
      {"--plan", "PLAN", "plan JSON", true, "", false},
      {"--out", "FILE", "output dose: .nii.gz/.nii/.nrrd/.mha or RT-DOSE .dcm", true, "", false},
      {"--patient-id", "ID", "DICOM Patient ID for a CT from an image file (default: IMG- and a hash of the image)", false, "", false},
      {"--patient-name", "NAME", "DICOM Patient Name (PN, e.g. Doe^Jane) for a CT from an image file (default: ANONYMOUS^)", false, "", false},
      {"--device", "DEV", "cpu or cuda", false, "cpu", false},
  };
  c.run = run_dose;
  return c;
}

}  // namespace isoline::cli
