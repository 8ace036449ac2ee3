// Registration on real CT: a known synthetic deformation of an OpenKBP patient.
#include <algorithm>
#include <cmath>

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
