// The dose engine on a real head-and-neck CT (OpenKBP pt_1): 9 coplanar beams, NIfTI and
// RT-DOSE output through the CLI, influence matrix for the PTVs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "isoline/core/io.h"
#include "isoline/dose/dose.h"
#include "tests/test_util.h"

using namespace isoline;

namespace {

/// Nine coplanar beams at the PTV's centroid, square jaws covering the PTV's extent + 1 cm.
std::string nine_beam_plan(const core::Image& ptv) {
  const auto& g = ptv.geometry();
  double c[3] = {0, 0, 0}, lo[3] = {1e9, 1e9, 1e9}, hi[3] = {-1e9, -1e9, -1e9};
  std::size_t n = 0;
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i)
        if (ptv.value(g.offset(i, j, k))) {
          auto w = g.index_to_world({double(i), double(j), double(k)});
          for (int a = 0; a < 3; ++a) {
            c[a] += w[a];
            lo[a] = std::min(lo[a], w[a]);
            hi[a] = std::max(hi[a], w[a]);
          }
          ++n;
        }
  double half_mm = 0;
  for (int a = 0; a < 3; ++a) half_mm = std::max(half_mm, (hi[a] - lo[a]) / 2 + 10);
  std::string beams;
  for (int gantry = 0; gantry < 360; gantry += 40) {
    if (!beams.empty()) beams += ",";
    beams += "{\"gantry_deg\": " + std::to_string(gantry) + ", \"jaws_mm\": [" + std::to_string(-half_mm) + "," +
             std::to_string(half_mm) + "," + std::to_string(-half_mm) + "," + std::to_string(half_mm) +
             "], \"mu\": 100}";
  }
  return "{\"machine\": \"generic_6mv\", \"isocenter_mm\": [" + std::to_string(c[0] / n) + "," +
         std::to_string(c[1] / n) + "," + std::to_string(c[2] / n) + "], \"beams\": [" + beams + "]}";
}

}  // namespace

TEST(DoseData, NineBeamHeadAndNeck) {
  const std::string dir = test::shared_data("openkbp/train/pt_1");
  core::Image ct = core::read_image(dir + "/ct.nii.gz");
  core::Image ptv = core::read_image(dir + "/PTV70.nii.gz");
  test::TempDir tmp;
  std::ofstream(tmp.file("plan.json")) << nine_beam_plan(ptv);
  dose::Plan plan = dose::read_plan(tmp.file("plan.json"));
  core::Image d = dose::compute_dose(ct, plan);
  ASSERT_TRUE(d.geometry().same_grid(ct.geometry()));
  // the PTV70 (inside all 9 fields) gets more than the rest of the body on average
  double ptv_sum = 0, body_sum = 0, air_max = 0;
  std::size_t np = 0, nb = 0;
  const float* v = d.data<float>();
  for (std::size_t i = 0; i < d.num_voxels(); ++i) {
    const double hu = ct.value(i);
    if (ptv.value(i)) ptv_sum += v[i], ++np;
    else if (hu > -300) body_sum += v[i], ++nb;
    else if (hu < -900) air_max = std::max<double>(air_max, v[i]);
    ASSERT_GE(v[i], 0.f);
  }
  ASSERT_GT(np, 0u);
  EXPECT_GT(ptv_sum / np, 5.0);   // 9 x 100 MU at ~0.6-0.9 cGy/MU in the target
  EXPECT_LT(ptv_sum / np, 10.0);
  EXPECT_GT(ptv_sum / np, 1.05 * body_sum / nb);
  EXPECT_TRUE(std::isfinite(air_max));
}

TEST(DoseData, CliWritesRtDoseAndInfluenceCoversTarget) {
  const std::string dir = test::shared_data("openkbp/train/pt_1");
  core::Image ct = core::read_image(dir + "/ct.nii.gz");
  core::Image ptv = core::read_image(dir + "/PTV70.nii.gz");
  test::TempDir tmp;
  std::ofstream(tmp.file("plan.json")) << nine_beam_plan(ptv);
  auto r = test::run_command(test::isoline_bin() + " dose --ct " + dir + "/ct.nii.gz --plan " + tmp.file("plan.json") +
                             " --out " + tmp.file("rd.dcm") + " --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_GT(std::filesystem::file_size(tmp.file("rd.dcm")), 100000u);
  // influence matrix for 3 beams, coarse options: every PTV voxel receives dose from some beamlet
  dose::Plan plan = dose::read_plan(tmp.file("plan.json"));
  plan.beams.resize(3);
  plan.options.n_zenith = 4;
  plan.options.n_azimuth = 4;
  dose::InfluenceOptions io;
  io.bixel_mm = 10;
  dose::InfluenceMatrix A = dose::compute_influence(ct, ptv, plan, io);
  EXPECT_GT(A.cols, 30);
  std::size_t covered = 0, total = 0;
  for (std::size_t i = 0; i < ptv.num_voxels(); ++i)
    if (ptv.value(i) && ct.value(i) > -900) {  // PTV voxels in air carry no dose calculation
      ++total;
      if (A.row_ptr[i + 1] > A.row_ptr[i]) ++covered;
    }
  EXPECT_EQ(covered, total);
}
