#include "isoline/planning/dvh.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "isoline/core/error.h"
#include "isoline/core/mask_ops.h"

namespace isoline::planning {

using core::fail;
using core::Image;
using core::InvalidInput;
using core::PixelType;

Dvh::Dvh(std::string name, std::vector<float> dose_gy, std::vector<double> volume_cc)
    : name_(std::move(name)) {
  if (dose_gy.size() != volume_cc.size())
    fail<InvalidInput>("build DVH", name_, "dose and volume sample counts differ");
  std::vector<std::size_t> order(dose_gy.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return dose_gy[a] > dose_gy[b]; });
  dose_.resize(order.size());
  cum_cc_.resize(order.size());
  double cum = 0.0, weighted = 0.0;
  for (std::size_t i = 0; i < order.size(); ++i) {
    dose_[i] = dose_gy[order[i]];
    cum += volume_cc[order[i]];
    weighted += volume_cc[order[i]] * dose_gy[order[i]];
    cum_cc_[i] = cum;
  }
  total_cc_ = cum;
  mean_ = cum > 0 ? weighted / cum : 0.0;
}

double Dvh::min_gy() const { return dose_.empty() ? 0.0 : dose_.back(); }
double Dvh::max_gy() const { return dose_.empty() ? 0.0 : dose_.front(); }

double Dvh::dose_at_cc(double cc) const {
  if (dose_.empty()) return 0.0;
  if (cc <= 0) return max_gy();
  if (cc >= total_cc_) return min_gy();
  // First sample whose cumulative volume reaches cc; interpolate within the step.
  auto it = std::lower_bound(cum_cc_.begin(), cum_cc_.end(), cc);
  const std::size_t i = static_cast<std::size_t>(it - cum_cc_.begin());
  if (i == 0) return dose_[0];
  const double v0 = cum_cc_[i - 1], v1 = cum_cc_[i];
  const double t = v1 > v0 ? (cc - v0) / (v1 - v0) : 1.0;
  return dose_[i - 1] + t * (double(dose_[i]) - dose_[i - 1]);
}

double Dvh::dose_at_percent(double percent) const {
  if (!(percent >= 0 && percent <= 100)) {
    char what[96];
    std::snprintf(what, sizeof what, "D%g%%: a volume percentage is between 0 and 100", percent);
    fail<InvalidInput>("DVH", name_, what);
  }
  return dose_at_cc(percent / 100.0 * total_cc_);
}

double Dvh::volume_fraction_at_dose(double gy) const {
  if (dose_.empty() || total_cc_ <= 0) return 0.0;
  // dose_ is descending: count samples with dose >= gy.
  auto it = std::partition_point(dose_.begin(), dose_.end(), [&](float d) { return d >= gy; });
  const std::size_t n = static_cast<std::size_t>(it - dose_.begin());
  return n == 0 ? 0.0 : cum_cc_[n - 1] / total_cc_;
}

void Dvh::cumulative(double bin, std::vector<double>* dose_gy, std::vector<double>* fraction) const {
  if (!(bin > 0)) fail<InvalidInput>("cumulative DVH", name_, "bin width must be > 0");
  dose_gy->clear();
  fraction->clear();
  const int n = static_cast<int>(std::ceil(max_gy() / bin)) + 2;
  for (int b = 0; b < n; ++b) {
    dose_gy->push_back(b * bin);
    fraction->push_back(volume_fraction_at_dose(b * bin));
  }
}

void Dvh::differential(double bin, std::vector<double>* dose_gy, std::vector<double>* volume_cc) const {
  if (!(bin > 0)) fail<InvalidInput>("differential DVH", name_, "bin width must be > 0");
  const int n = static_cast<int>(std::ceil(max_gy() / bin)) + 2;
  dose_gy->assign(n, 0.0);
  volume_cc->assign(n, 0.0);
  for (int b = 0; b < n; ++b) (*dose_gy)[b] = b * bin;
  // Same bin edges and the same ">= edge" test as cumulative(), so that the two agree.
  for (std::size_t i = 0; i < dose_.size(); ++i) {
    const double v = cum_cc_[i] - (i ? cum_cc_[i - 1] : 0.0);
    int b = static_cast<int>(std::floor(dose_[i] / bin));
    b = std::clamp(b, 0, n - 1);
    while (b + 1 < n && dose_[i] >= (b + 1) * bin) ++b;  // rounding of dose / bin
    while (b > 0 && dose_[i] < b * bin) --b;
    (*volume_cc)[b] += v;
  }
}

namespace {

// A continuous index within the grid's voxels (at most half a voxel beyond the outer centres).
bool within_grid(const core::Index3& s, const double c[3]) {
  for (int a = 0; a < 3; ++a)
    if (c[a] < -0.5 || c[a] > s[a] - 0.5) return false;
  return true;
}

// Trilinear dose at a continuous index of the dose grid; 0 outside it (within_grid).
float sample(const Image& dose, const float* d, double ci, double cj, double ck) {
  const auto& s = dose.geometry().size;
  const double c[3] = {ci, cj, ck};
  if (!within_grid(s, c)) return 0.f;
  std::int64_t i0[3];
  double f[3];
  for (int a = 0; a < 3; ++a) {
    double x = std::clamp(c[a], 0.0, double(s[a] - 1));
    i0[a] = std::min<std::int64_t>(static_cast<std::int64_t>(std::floor(x)), std::max<std::int64_t>(s[a] - 2, 0));
    f[a] = s[a] > 1 ? x - i0[a] : 0.0;
  }
  double v = 0;
  for (int dk = 0; dk < 2; ++dk)
    for (int dj = 0; dj < 2; ++dj)
      for (int di = 0; di < 2; ++di) {
        const std::int64_t ii = std::min(i0[0] + di, s[0] - 1), jj = std::min(i0[1] + dj, s[1] - 1),
                           kk = std::min(i0[2] + dk, s[2] - 1);
        const double w = (di ? f[0] : 1 - f[0]) * (dj ? f[1] : 1 - f[1]) * (dk ? f[2] : 1 - f[2]);
        if (w != 0) v += w * d[ii + s[0] * (jj + s[1] * kk)];
      }
  return static_cast<float>(v);
}

}  // namespace

Dvh compute_dvh(const Image& dose, const Image& mask, const std::string& name, const DvhOptions& opt) {
  const char* op = "compute DVH";
  if (dose.empty() || dose.pixel_type() != PixelType::Float32)
    fail<InvalidInput>(op, name, "dose must be a float32 image in Gy");
  if (mask.empty() || mask.pixel_type() != PixelType::UInt8)
    fail<InvalidInput>(op, name, "mask must be a uint8 image");
  const auto& mg = mask.geometry();
  const auto& dg = dose.geometry();
  int ss[3];
  bool aligned = true;  // same axes: compare spacings axis by axis, else with the finest
  for (int n = 0; n < 9; ++n) aligned = aligned && std::abs(mg.direction[n] - dg.direction[n]) < 1e-6;
  const double min_dose_spacing = std::min({dg.spacing[0], dg.spacing[1], dg.spacing[2]});
  for (int a = 0; a < 3; ++a) {
    const double ds = aligned ? dg.spacing[a] : min_dose_spacing;
    ss[a] = opt.supersample > 0 ? opt.supersample
                                : std::clamp(static_cast<int>(std::ceil(mg.spacing[a] / ds - 1e-6)), 1, 4);
  }
  const double sub_cc = mg.voxel_volume_mm3() / 1000.0 / (ss[0] * ss[1] * ss[2]);
  const float* d = dose.data<float>();
  const std::uint8_t* m = mask.data<std::uint8_t>();
  std::vector<float> doses;
  std::vector<double> vols;
  doses.reserve(mask.count_nonzero() * ss[0] * ss[1] * ss[2]);
  for (std::int64_t k = 0; k < mg.size[2]; ++k)
    for (std::int64_t j = 0; j < mg.size[1]; ++j)
      for (std::int64_t i = 0; i < mg.size[0]; ++i) {
        if (!m[mg.offset(i, j, k)]) continue;
        for (int sk = 0; sk < ss[2]; ++sk)
          for (int sj = 0; sj < ss[1]; ++sj)
            for (int si = 0; si < ss[0]; ++si) {
              const core::Vec3 w = mg.index_to_world({i - 0.5 + (si + 0.5) / ss[0], j - 0.5 + (sj + 0.5) / ss[1],
                                                      k - 0.5 + (sk + 0.5) / ss[2]});
              const core::Vec3 c = dg.world_to_index(w);
              doses.push_back(sample(dose, d, c[0], c[1], c[2]));
            }
      }
  for (float v : doses)
    if (!std::isfinite(v)) fail<InvalidInput>(op, name, "the dose holds a non-finite value (NaN or infinity) inside the structure");
  vols.assign(doses.size(), sub_cc);
  return Dvh(name, std::move(doses), std::move(vols));
}

double fraction_outside(const core::Geometry& dg, const Image& mask) {
  if (mask.empty() || mask.pixel_type() != PixelType::UInt8)
    fail<InvalidInput>("compute DVH", "mask", "mask must be a uint8 image");
  return core::fraction_outside(mask, dg);
}

core::Geometry dvh_raster_grid(const core::Geometry& plane_grid, bool bounded) {
  constexpr double kOffset = 0.31830988618379067;  // 1 / pi
  core::Geometry g = plane_grid;
  if (bounded && plane_grid.size[2] >= 2) {
    // Slices at +-1/4 spacing around the planes, the outermost half-slabs left out.
    g.spacing[2] = plane_grid.spacing[2] / 2;
    g.size[2] = 2 * (plane_grid.size[2] - 1);
    g.origin = plane_grid.index_to_world({kOffset, kOffset, 0.25});
  } else {
    g.origin = plane_grid.index_to_world({kOffset, kOffset, 0.0});
  }
  return g;
}

double homogeneity_index(const Dvh& t) {
  const double d50 = t.dose_at_percent(50);
  if (d50 <= 0) return 0.0;
  return (t.dose_at_percent(2) - t.dose_at_percent(98)) / d50;
}

double conformity_index(const Image& dose, const Image& target, double rx_gy, const DvhOptions& opt) {
  if (!(rx_gy > 0)) fail<InvalidInput>("conformity index", "prescription", "must be > 0 Gy");
  Dvh t = compute_dvh(dose, target, "target", opt);
  const double tv = t.volume_cc();
  const double tv_piv = t.volume_cc_at_dose(rx_gy);
  const float* d = dose.data<float>();
  std::size_t n = 0;
  for (std::size_t v = 0; v < dose.num_voxels(); ++v) n += d[v] >= rx_gy;
  const double piv = n * dose.geometry().voxel_volume_mm3() / 1000.0;
  if (tv <= 0 || piv <= 0) return 0.0;
  return tv_piv * tv_piv / (tv * piv);
}

}  // namespace isoline::planning
