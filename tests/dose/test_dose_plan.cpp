// isoline::dose on core images: HU calibration, plan JSON, plan checks, MLC/aperture shapes,
// and the `isoline dose` command.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "isoline/core/error.h"
#include "isoline/core/io.h"
#include "isoline/dose/dose.h"
#include "tests/test_util.h"

using namespace isoline;

namespace {

/// A water cube (HU 0) of 20 cm in air (HU -1000), 5 mm voxels, centred on the origin.
core::Image water_ct() {
  core::Geometry g;
  g.size = {50, 50, 50};
  g.spacing = {5, 5, 5};
  g.origin = {-122.5, -122.5, -122.5};
  core::Image ct(g, core::PixelType::Int16);
  auto* p = ct.data<std::int16_t>();
  for (int k = 0; k < 50; ++k)
    for (int j = 0; j < 50; ++j)
      for (int i = 0; i < 50; ++i)
        p[g.offset(i, j, k)] = (i >= 5 && i < 45 && j >= 5 && j < 45 && k >= 5 && k < 45) ? 0 : -1000;
  return ct;
}

std::string plan_json(const std::string& beams, const std::string& extra = "") {
  return R"({"name": "t", "machine": "generic_6mv", "isocenter_mm": [0, 0, 0],
            "calculation": {"n_zenith": 4, "n_azimuth": 4})" + extra + R"(, "beams": [)" + beams + "]}";
}

const char* kOpen = R"({"gantry_deg": 0, "jaws_mm": [-50, 50, -50, 50], "mu": 100})";

template <class E>
void expect_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no error (expected \"" << needle << "\")";
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(DosePlan, HuCalibrationIsMonotoneAndConfigurable) {
  auto c = dose::HuCalibration::generic();
  EXPECT_NEAR(c.electron(0), 1.0, 1e-9);
  EXPECT_NEAR(c.mass(-1000), 0.0012, 1e-9);
  EXPECT_GT(c.electron(1000), 1.4);
  EXPECT_LT(c.electron(-700), 0.4);
  auto plan = dose::parse_plan(plan_json(kOpen, R"(, "hu_to_density": {"hu": [-1000, 0, 2000],
      "mass_density": [0, 1, 2], "relative_electron_density": [0, 1, 1.8]})"), "t.json");
  EXPECT_NEAR(plan.hu.electron(1000), 1.4, 1e-9);
  expect_error<core::InvalidInput>([] {
    dose::parse_plan(plan_json(kOpen, R"(, "hu_to_density": {"hu": [0, -1000], "mass_density": [1, 0],
        "relative_electron_density": [1, 0]})"), "t.json");
  }, "hu must increase");
}

TEST(DosePlan, ParsesBeamsShapesAndOptions) {
  auto plan = dose::parse_plan(plan_json(std::string(kOpen) + R"(, {"name": "B", "gantry_deg": 90,
      "collimator_deg": 15, "couch_deg": 5, "jaws_mm": [-30, 30, -20, 20], "mu": 50,
      "fluence": {"origin_mm": [-30, -20], "bixel_mm": [10, 10], "size": [6, 4],
                  "weights": [1,1,1,1,1,1, 1,0,0,0,0,1, 1,0,0,0,0,1, 1,1,1,1,1,1]}})"), "t.json");
  ASSERT_EQ(plan.beams.size(), 2u);
  EXPECT_EQ(plan.options.n_zenith, 4);
  EXPECT_EQ(plan.beams[1].name, "B");
  EXPECT_EQ(plan.beams[1].fluence.nx, 6);
  EXPECT_DOUBLE_EQ(plan.beams[1].collimator_deg, 15);
  EXPECT_EQ(plan.machine.name, "generic_6mv");
}

TEST(DosePlan, BadPlansGiveClearErrors) {
  const core::Image ct = water_ct();
  expect_error<core::InvalidInput>([] { dose::parse_plan(plan_json(""), "p.json"); }, "no beams");
  expect_error<core::InvalidInput>([] { dose::parse_plan("{\"beams\": [", "p.json"); }, "not valid JSON");
  expect_error<core::IoError>([] { dose::parse_plan(R"({"machine": "nosuch_linac", "beams": []})", "p.json"); },
                              "nosuch_linac");
  expect_error<core::InvalidInput>([&] {
    dose::compute_dose(ct, dose::parse_plan(plan_json(R"({"jaws_mm": [-50, 50, -50, 50], "mu": -10})"), "p.json"));
  }, "monitor units must be >= 0");
  expect_error<core::InvalidInput>([&] {
    dose::compute_dose(ct, dose::parse_plan(plan_json(R"({"jaws_mm": [-20, 20, -20, 20], "mu": 10,
        "aperture": {"rectangles_mm": [[-30, 10, -10, 10]]}})"), "p.json"));
  }, "aperture outside the jaws");
  expect_error<core::InvalidInput>([&] {
    dose::compute_dose(ct, dose::parse_plan(plan_json(R"({"isocenter_mm": [0, 0, 900], "mu": 10})"), "p.json"));
  }, "outside the CT volume");
  expect_error<core::InvalidInput>([&] {
    dose::parse_plan(plan_json(R"({"mu": 10})", R"(, "calculation": {"n_zenith": 5})"), "p.json");
  }, "n_zenith");
}

TEST(DosePlan, CudaWithoutGpuIsAClearError) {
  if (core::cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is present";
  const core::Image ct = water_ct();
  auto plan = dose::parse_plan(plan_json(kOpen), "p.json");
  expect_error<core::DeviceError>([&] { dose::compute_dose(ct, plan, core::Device::CUDA); }, "cuda");
}

TEST(DosePlan, DoseOnCtGridAndMlcMatchesJaws) {
  const core::Image ct = water_ct();
  auto open = dose::parse_plan(plan_json(R"({"jaws_mm": [-40, 40, -40, 40], "mu": 100})"), "p.json");
  core::Image d = dose::compute_dose(ct, open);
  ASSERT_TRUE(d.geometry().same_grid(ct.geometry()));
  auto [lo, hi] = d.min_max();
  EXPECT_GE(lo, 0.0);
  EXPECT_GT(hi, 0.5);
  EXPECT_LT(hi, 1.3);
  // An MLC aperture equal to the jaw opening gives the same dose (leaves behind the jaws clip).
  auto mlc = dose::parse_plan(plan_json(R"({"jaws_mm": [-40, 40, -40, 40], "mu": 100,
      "mlc": {"leaf_boundaries_mm": [-60, -40, -20, 0, 20, 40, 60],
              "x1_mm": [-5, -50, -50, -50, -50, -5], "x2_mm": [5, 50, 50, 50, 50, 5]}})"), "p.json");
  core::Image dm = dose::compute_dose(ct, mlc);
  const float* a = d.data<float>();
  const float* b = dm.data<float>();
  double diff = 0;
  for (std::size_t i = 0; i < d.num_voxels(); ++i) diff = std::max<double>(diff, std::fabs(a[i] - b[i]));
  EXPECT_LT(diff, 0.02 * hi);
}

TEST(DoseCli, WritesNiftiAndReportsBadPlans) {
  test::TempDir dir;
  const core::Image ct = water_ct();
  core::write_image(ct, dir.file("ct.nii.gz"));
  {
    std::ofstream(dir.file("plan.json")) << plan_json(kOpen);
    std::ofstream(dir.file("bad.json")) << plan_json(R"({"jaws_mm": [-50, 50, -50, 50], "mu": -1})");
  }
  auto r = test::run_command(test::isoline_bin() + " dose --ct " + dir.file("ct.nii.gz") + " --plan " +
                             dir.file("plan.json") + " --out " + dir.file("d.nii.gz") + " --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  core::Image d = core::read_image(dir.file("d.nii.gz"));
  EXPECT_TRUE(d.geometry().same_grid(ct.geometry()));
  EXPECT_GT(d.min_max().second, 0.5);
  auto bad = test::run_command(test::isoline_bin() + " dose --ct " + dir.file("ct.nii.gz") + " --plan " +
                               dir.file("bad.json") + " --out " + dir.file("e.nii.gz"));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("monitor units"), std::string::npos) << bad.output;
  EXPECT_FALSE(std::filesystem::exists(dir.file("e.nii.gz")));
}
