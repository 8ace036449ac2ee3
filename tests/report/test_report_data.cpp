// A real OpenKBP validation patient (CT 128 x 128 x 128, ~3.9 x 3.9 x 2.5 mm, no body
// contour) with its reference clinical dose: the report's pictures are readable.
#include <png.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "isoline/core/io.h"
#include "isoline/report/report.h"
#include "tests/report/report_fixtures.h"
#include "tests/test_util.h"

namespace isoline {
namespace {

TEST(ReportData, OpenKbpPatientWithReferenceDose) {
  const std::string dir = test::shared_data("openkbp/validation/pt_201");
  ASSERT_TRUE(std::filesystem::exists(dir + "/ct.nii.gz"));
  report::ReportInput in;
  in.title = "OpenKBP pt_201, reference dose";
  in.ct = core::read_image(dir + "/ct.nii.gz");
  in.structures = core::read_mask_dir(dir, {"Brainstem", "SpinalCord", "RightParotid", "LeftParotid",
                                           "Esophagus", "Larynx", "Mandible", "PTV56", "PTV63", "PTV70"});
  ASSERT_GE(in.structures.size(), 5u);
  const core::Image dose = core::read_image(dir + "/dose.nii.gz", core::PixelType::Float32);
  const auto crit = planning::load_criteria(std::string(ISOLINE_SOURCE_DIR) + "/planning/criteria/hn.json");
  in.doses.push_back(test::evaluate_set("Reference (clinical)", dose, in.structures, crit));
  const std::string html = report::render_html(in);
  EXPECT_NE(html.find("70.00 Gy (targets: PTV70 70.0 Gy"), std::string::npos);

  const auto views = report::render_views(in, 0);
  ASSERT_EQ(views.size(), 3u);
  for (int v = 0; v < 3; ++v) {
    const auto& p = views[std::size_t(v)];
    EXPECT_GE(std::max(p.width, p.height), 400) << v;
    // Cropped to the patient (no body contour: CT above -400 HU): most of the picture is
    // patient, not air; and the dose is shown over a good part of it.
    std::size_t tissue = 0, colour = 0;
    for (std::size_t n = 0; n < std::size_t(p.width) * p.height; ++n) {
      const std::uint8_t* q = &p.rgb[3 * n];
      tissue += q[0] + q[1] + q[2] > 60;
      colour += !(q[0] == q[1] && q[1] == q[2]);
    }
    const double area = double(p.width) * p.height;
    EXPECT_GT(tissue / area, 0.3) << v;
    EXPECT_GT(colour / area, 0.1) << v;
    // A millimetre is a millimetre in both directions of the view.
    EXPECT_NEAR(p.geometry.spacing[0], p.geometry.spacing[1], 1e-9);
  }
  // Keep the output for a look: ISOLINE_REPORT_OUT=dir ctest -R ReportData
  if (const char* out = std::getenv("ISOLINE_REPORT_OUT")) {
    report::write_html(in, std::string(out) + "/openkbp_pt_201.html");
    report::write_figure_png(in, std::string(out) + "/openkbp_pt_201.png");
  }
}

}  // namespace
}  // namespace isoline
