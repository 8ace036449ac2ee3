// isoline-plan-bench: `isoline plan`'s work (planning::make_plan: influence matrix, optimisation,
// final dose) on OpenKBP-layout patient folders, timed, without the CLI's DICOM/report outputs.
// It links only core, dose and planning (no DCMTK, Torch or VTK), so that it and its few shared
// libraries can be carried to a bare GPU host to measure the plan time with --device cuda
// (bench/gpu_session.sh). `make bench` measures the CPU figures through `isoline plan` itself.
//
//   isoline-plan-bench [--device cpu|cuda] [--template hn] [--compare-cpu N] PATIENT_DIR...
//
// PATIENT_DIR holds ct.nii.gz and <structure>.nii.gz masks (Brainstem, ..., PTV70). Prints one
// JSON object per patient: timing (s), criteria met, PTV70 D99; with --compare-cpu N the first N
// patients are also planned on the CPU and the largest difference between the two final doses
// is reported in % of the CPU dose maximum.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "isoline/core/device.h"
#include "isoline/core/io.h"
#include "isoline/planning/plan.h"

using namespace isoline;

namespace {

const std::vector<std::string> kStructures = {
    "Brainstem", "SpinalCord", "RightParotid", "LeftParotid", "Esophagus",
    "Larynx",    "Mandible",   "PTV56",        "PTV63",       "PTV70"};

struct Summary {
  int met = 0, evaluated = 0;
  double ptv70_d99 = std::nan("");
};

Summary summarise(const planning::PlanResult& r) {
  Summary s;
  for (const auto& c : r.criteria) {
    if (!c.evaluated) continue;
    ++s.evaluated;
    s.met += c.pass;
    if (c.criterion.structure == "PTV70" && c.criterion.metric == "D99%") s.ptv70_d99 = c.value;
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  std::string device = "cpu", tpl_name = isoline::planning::kDefaultTemplate;
  int compare = 0;
  std::vector<std::string> patients;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--device" && i + 1 < argc)
      device = argv[++i];
    else if (a == "--template" && i + 1 < argc)
      tpl_name = argv[++i];
    else if (a == "--compare-cpu" && i + 1 < argc)
      compare = std::atoi(argv[++i]);
    else if (a == "--help" || a.rfind("--", 0) == 0) {
      std::fprintf(stderr,
                   "usage: isoline-plan-bench [--device cpu|cuda] [--template hn] [--compare-cpu "
                   "N] PATIENT_DIR...\n");
      return 2;
    } else
      patients.push_back(a);
  }
  if (patients.empty()) {
    std::fprintf(stderr, "isoline-plan-bench: no patient folder given\n");
    return 2;
  }
  try {
    const planning::PlanTemplate tpl = planning::load_template(tpl_name);
    planning::PlanOptions po;
    po.device = core::parse_device(device);
    core::require_device(po.device, "plan");
    int failures = 0;
    for (std::size_t p = 0; p < patients.size(); ++p) {
      const std::string& dir = patients[p];
      std::string name = dir;
      while (name.size() > 1 && name.back() == '/') name.pop_back();
      name = name.substr(name.find_last_of('/') + 1);
      try {
        const core::Image ct = core::read_image(dir + "/ct.nii.gz");
        const core::StructureSet masks = core::read_mask_dir(dir, kStructures);
        const planning::PlanResult r = planning::make_plan(ct, masks, tpl, po);
        const Summary s = summarise(r);
        std::printf(
            "{\"patient\": \"%s\", \"device\": \"%s\", \"influence_s\": %.3f, \"optimise_s\": "
            "%.3f, "
            "\"dose_s\": %.3f, \"total_s\": %.3f, \"iterations\": %d, \"criteria_met\": %d, "
            "\"criteria_evaluated\": %d, \"ptv70_d99_gy\": %.3f",
            name.c_str(), device.c_str(), r.timing.influence_s, r.timing.optimize_s,
            r.timing.dose_s, r.timing.total_s, r.optimizer.iterations, s.met, s.evaluated,
            s.ptv70_d99);
        if (static_cast<int>(p) < compare && po.device != core::Device::CPU) {
          planning::PlanOptions pc = po;
          pc.device = core::Device::CPU;
          const planning::PlanResult c = planning::make_plan(ct, masks, tpl, pc);
          const Summary sc = summarise(c);
          const float* a = r.dose.data<float>();
          const float* b = c.dose.data<float>();
          double dmax = 0, diff = 0;
          for (std::size_t v = 0; v < c.dose.num_voxels(); ++v) {
            dmax = std::max<double>(dmax, b[v]);
            diff = std::max<double>(diff, std::fabs(double(a[v]) - b[v]));
          }
          std::printf(
              ", \"cpu_total_s\": %.3f, \"cpu_influence_s\": %.3f, \"cpu_optimise_s\": %.3f, "
              "\"cpu_criteria_met\": %d, \"cpu_ptv70_d99_gy\": %.3f, \"max_dose_diff_percent\": "
              "%.4f",
              c.timing.total_s, c.timing.influence_s, c.timing.optimize_s, sc.met, sc.ptv70_d99,
              dmax > 0 ? 100.0 * diff / dmax : 0.0);
        }
        std::printf("}\n");
        std::fflush(stdout);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "isoline-plan-bench: %s: %s\n", dir.c_str(), e.what());
        ++failures;
      }
    }
    return failures ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "isoline-plan-bench: %s\n", e.what());
    return 1;
  }
}
