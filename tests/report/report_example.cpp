// Writes the example report picture of docs/report.md: a generated head-and-neck phantom
// (OpenKBP-like grid: 128 x 128 x 64 voxels of 4 mm; --full: 512 x 512 x 160 voxels of
// 1 x 1 x 2.5 mm) with a synthetic plan-like dose on a 4 mm dose grid, and optionally the
// full HTML report. Prints the files and the time each took.
//
//   isoline_report_example docs/images/report_example.png [report.html] [--adaptive] [--full]
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

#include "isoline/phantoms/phantoms.h"
#include "isoline/report/report.h"
#include "tests/report/report_fixtures.h"

int main(int argc, char** argv) {
  using namespace isoline;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s figure.png [report.html] [--adaptive]\n", argv[0]);
    return 2;
  }
  try {
    std::string png = argv[1], html;
    bool adaptive = false, full = false;
    for (int i = 2; i < argc; ++i) {
      if (std::string(argv[i]) == "--adaptive") adaptive = true;
      else if (std::string(argv[i]) == "--full") full = true;
      else html = argv[i];
    }
    phantoms::HeadNeckOptions o;
    if (!full) {
      o.size = {128, 128, 64};  // OpenKBP-like: 4 mm voxels
      o.spacing = {4.0, 4.0, 4.0};
    }
    const auto ph = phantoms::make_head_neck(o);
    auto t0 = std::chrono::steady_clock::now();
    auto lap = [&t0]() {
      const auto t = std::chrono::steady_clock::now();
      const double s = std::chrono::duration<double>(t - t0).count();
      t0 = t;
      return s;
    };
    const std::vector<std::pair<std::string, double>> targets = {{"PTV70", 70}, {"PTV63", 63}, {"PTV56", 56}};
    const auto crit = planning::load_criteria(std::string(ISOLINE_SOURCE_DIR) + "/planning/criteria/hn.json");
    report::ReportInput in;
    in.title = "Example: head-and-neck phantom, synthetic dose";
    in.info = {{"Patient", "phantom hn seed 7"},
               {"CT grid", full ? "512 x 512 x 160, 1 x 1 x 2.5 mm" : "128 x 128 x 64, 4 mm"},
               {"Dose", "synthetic (blurred prescription levels), 4 mm grid"}};
    in.ct = ph.ct;
    in.structures = ph.structures;
    const core::Image dose = test::synthetic_plan_dose(ph.ct, ph.structures, targets, 4.0);
    in.doses.push_back(test::evaluate_set(adaptive ? "Planned" : "Plan", dose, ph.structures, crit));
    if (adaptive) {
      // A shifted copy of the dose stands in for "unadapted" (5 mm posterior shift).
      core::Image shifted = dose.clone();
      auto g = shifted.geometry();
      g.origin[1] += 5.0;
      shifted.set_geometry(g);
      in.doses.push_back(test::evaluate_set("Unadapted (shifted 5 mm)", shifted, ph.structures, crit));
    }
    std::printf("dose and DVHs: %.2f s\n", lap());
    report::write_figure_png(in, png);
    std::printf("%s: %.2f s\n", png.c_str(), lap());
    if (!html.empty()) {
      report::write_html(in, html);
      std::printf("%s: %.2f s\n", html.c_str(), lap());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
