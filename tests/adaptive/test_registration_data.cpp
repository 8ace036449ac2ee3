// Registration on real CT: a known synthetic deformation of an OpenKBP patient.
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "isoline/adaptive/registration.h"
#include "isoline/adaptive/synthetic.h"
#include "isoline/core/io.h"
#include "tests/test_util.h"

using namespace isoline;

namespace {
double dice(const core::Image& a, const core::Image& b) {
  std::size_t ia = 0, ib = 0, both = 0;
  for (std::size_t v = 0; v < a.num_voxels(); ++v) {
    const bool x = a.value(v) != 0, y = b.value(v) != 0;
    ia += x;
    ib += y;
    both += x && y;
  }
  return ia + ib ? 2.0 * both / double(ia + ib) : 1.0;
}
}  // namespace

TEST(RegistrationData, OpenKbpKnownDeformation) {
  const std::string dir = test::shared_data("openkbp/validation/pt_201");
  core::Image moving = core::read_image(dir + "/ct.nii.gz");
  const auto& g = moving.geometry();
  adaptive::SyntheticFieldOptions so;
  so.max_mm = 10.0;
  so.seed = 2026;
  auto truth = adaptive::synthetic_field(g, so);
  core::Image fixed = adaptive::warp(moving, truth, -1000);
  adaptive::RegistrationOptions opt;
  opt.rigid = false;  // the synthetic deformation has no rigid part
  auto r = adaptive::register_images(fixed, moving, opt);

  double err = 0;
  std::size_t n = 0;
  for (std::size_t v = 0; v < g.num_voxels(); ++v) {
    if (fixed.value(v) < -300) continue;  // body only
    double e = 0;
    for (int a = 0; a < 3; ++a) e += std::pow(double(r.field.data[3 * v + a]) - truth.data[3 * v + a], 2);
    err += std::sqrt(e);
    ++n;
  }
  err /= double(n);
  RecordProperty("mean_vector_error_mm", std::to_string(err));
  EXPECT_LT(err, 1.0);
  EXPECT_GT(r.min_jacobian, 0.0);

  for (const char* oar : {"Brainstem", "SpinalCord", "Mandible", "LeftParotid", "RightParotid"}) {
    core::Image m = core::read_image(dir + "/" + oar + ".nii.gz");
    core::Image truth_mask = adaptive::warp(m, truth);
    core::Image propagated = adaptive::warp(m, r.field);
    EXPECT_GE(dice(truth_mask, propagated), 0.90) << oar;
  }
}

TEST(RegistrationData, LungPairLandmarkError) {
  const std::string dir = test::shared_data("lung_pair");
  core::Image fixed = core::read_image(dir + "/3DCT_lung_baseline.mha");
  core::Image moving = core::read_image(dir + "/3DCT_lung_followup.mha");
  auto pf = adaptive::read_points(dir + "/3DCT_lung_baseline_landmarks.txt");
  auto pm = adaptive::read_points(dir + "/3DCT_lung_followup_landmarks.txt");
  ASSERT_EQ(pf.size(), pm.size());
  auto inside = [](const core::Geometry& g, const core::Vec3& p) {
    const core::Vec3 c = g.world_to_index(p);
    for (int a = 0; a < 3; ++a)
      if (c[a] < 0 || c[a] > g.size[a] - 1) return false;
    return true;
  };
  std::vector<core::Vec3> f, m;
  for (std::size_t n = 0; n < pf.size(); ++n)
    if (inside(fixed.geometry(), pf[n]) && inside(moving.geometry(), pm[n])) {
      f.push_back(pf[n]);
      m.push_back(pm[n]);
    }
  ASSERT_GT(f.size(), 40u);
  auto r = adaptive::register_images(fixed, moving);
  auto before = adaptive::target_registration_errors(adaptive::DisplacementField::zeros(fixed.geometry()), f, m);
  auto after = adaptive::target_registration_errors(r.field, f, m);
  double mb = 0, ma = 0;
  for (std::size_t n = 0; n < f.size(); ++n) {
    mb += before[n] / f.size();
    ma += after[n] / f.size();
  }
  RecordProperty("tre_before_mm", std::to_string(mb));
  RecordProperty("tre_after_mm", std::to_string(ma));
  EXPECT_GT(mb, 20.0);
  EXPECT_LT(ma, 2.0);
  EXPECT_GT(r.min_jacobian, 0.0);
}

// A CT registered to itself stays put (session 19). The rigid step ends a few hundredths of a
// millimetre from the identity (its metric samples at random) and the demons then see an
// interpolated copy; with the field smoothed by 2.5 mm, under one voxel of this 3-5.4 mm grid,
// they turned those tiny differences in the uniform brain into a drift of up to 11.7 mm (mean
// 0.44 mm in the body). Smoothed by at least 1.5 voxels: 3.7 mm at most, mean 0.03 mm.
TEST(RegistrationData, ACtRegisteredToItselfStaysPut) {
  const core::Image ct = core::read_image(test::shared_data("openkbp/validation/pt_201") + "/ct.nii.gz");
  const auto r = adaptive::register_images(ct, ct, adaptive::RegistrationOptions{});
  double sum = 0, largest = 0;
  std::size_t n = 0;
  for (std::size_t v = 0; v < ct.num_voxels(); ++v) {
    if (ct.value(v) < -500) continue;  // body only
    const double u = std::sqrt(std::pow(double(r.field.data[3 * v]), 2) + std::pow(double(r.field.data[3 * v + 1]), 2) +
                               std::pow(double(r.field.data[3 * v + 2]), 2));
    sum += u;
    largest = std::max(largest, u);
    ++n;
  }
  RecordProperty("mean_displacement_mm", std::to_string(sum / double(n)));
  RecordProperty("max_displacement_mm", std::to_string(largest));
  EXPECT_LT(sum / double(n), 0.1) << "mean displacement in the body, mm";
  EXPECT_LT(largest, 6.0) << "largest displacement in the body, mm";
  EXPECT_GT(r.min_jacobian, 0.6);
}

// A CT registered to a noisy copy of itself (the new CT noisier than the planning CT, same
// anatomy) stays put. The demons' force is normalised by the squared gradient plus the squared
// intensity difference, so where both are noise it is as large as on anatomy and points at
// random, and the field walked off in uniform tissue. A 64 x 80 x 80 block of pt_201 with 15 HU
// of Gaussian noise added, demons only: 2.24 mm p95 and 5.78 mm at most in the body (min
// Jacobian 0.35) before; with differences below 1.5 times the noise the new CT has beyond the
// planning CT's ignored (DeformableOptions::noise_threshold_factor), 0.13 and 0.83 mm (0.96).
// docs/validation.md, "Adaptive".
TEST(RegistrationData, ANoisyCopyOfACtStaysPut) {
  const core::Image ct = core::read_image(test::shared_data("openkbp/validation/pt_201") + "/ct.nii.gz");
  const core::Geometry& g = ct.geometry();
  const std::int64_t i0 = 24, j0 = 24, k0 = 32;
  core::Geometry sg = g;
  sg.size = {80, 80, 64};
  sg.origin = g.index_to_world({double(i0), double(j0), double(k0)});
  core::Image block(sg, core::PixelType::Float32), noisy(sg, core::PixelType::Float32);
  std::mt19937 rng(7);
  std::normal_distribution<float> noise(0.f, 15.f);
  for (std::int64_t k = 0; k < sg.size[2]; ++k)
    for (std::int64_t j = 0; j < sg.size[1]; ++j)
      for (std::int64_t i = 0; i < sg.size[0]; ++i) {
        const float v = static_cast<float>(ct.value(g.offset(i0 + i, j0 + j, k0 + k)));
        block.data<float>()[sg.offset(i, j, k)] = v;
        noisy.data<float>()[sg.offset(i, j, k)] = v + noise(rng);
      }
  adaptive::RegistrationOptions opt;
  opt.rigid = false;  // the demons alone: the rigid step is not what drifts
  const auto r = adaptive::register_images(noisy, block, opt);
  std::vector<double> u;
  for (std::size_t v = 0; v < block.num_voxels(); ++v) {
    if (block.value(v) < -500) continue;  // body only
    u.push_back(std::sqrt(std::pow(double(r.field.data[3 * v]), 2) + std::pow(double(r.field.data[3 * v + 1]), 2) +
                          std::pow(double(r.field.data[3 * v + 2]), 2)));
  }
  ASSERT_GT(u.size(), 10000u);
  std::sort(u.begin(), u.end());
  const double p95 = u[u.size() * 95 / 100], largest = u.back();
  RecordProperty("p95_displacement_mm", std::to_string(p95));
  RecordProperty("max_displacement_mm", std::to_string(largest));
  RecordProperty("min_jacobian", std::to_string(r.min_jacobian));
  EXPECT_LT(p95, 0.5) << "95th percentile of the displacement in the body, mm";
  EXPECT_LT(largest, 2.0) << "largest displacement in the body, mm";
  EXPECT_GT(r.min_jacobian, 0.6);
}
