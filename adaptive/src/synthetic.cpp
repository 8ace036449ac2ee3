#include "isoline/adaptive/synthetic.h"

#include <cmath>
#include <random>

#include "isoline/core/error.h"

namespace isoline::adaptive {

DisplacementField synthetic_field(const core::Geometry& g, const SyntheticFieldOptions& opt) {
  if (!(opt.max_mm >= 0) || !(opt.sigma_mm > 0) || opt.bumps < 1)
    core::fail<core::InvalidInput>("synthetic field", "options", "need max_mm >= 0, sigma_mm > 0, bumps >= 1");
  DisplacementField f = DisplacementField::zeros(g);
  std::mt19937 rng(opt.seed);
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  std::normal_distribution<double> n01(0.0, 1.0);
  struct Bump {
    core::Vec3 centre, dir;
  };
  std::vector<Bump> bumps;
  for (int b = 0; b < opt.bumps; ++b) {
    core::Vec3 idx{(0.2 + 0.6 * u01(rng)) * (g.size[0] - 1), (0.2 + 0.6 * u01(rng)) * (g.size[1] - 1),
                   (0.2 + 0.6 * u01(rng)) * (g.size[2] - 1)};
    core::Vec3 d{n01(rng), n01(rng), n01(rng)};
    const double norm = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]) + 1e-12;
    for (auto& v : d) v /= norm;
    bumps.push_back({g.index_to_world(idx), d});
  }
  double max_len = 0;
  const double inv2s2 = 1.0 / (2.0 * opt.sigma_mm * opt.sigma_mm);
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i) {
        const core::Vec3 x = g.index_to_world({double(i), double(j), double(k)});
        core::Vec3 u{0, 0, 0};
        for (const auto& b : bumps) {
          double r2 = 0;
          for (int a = 0; a < 3; ++a) r2 += (x[a] - b.centre[a]) * (x[a] - b.centre[a]);
          const double w = std::exp(-r2 * inv2s2);
          for (int a = 0; a < 3; ++a) u[a] += w * b.dir[a];
        }
        const std::size_t n = g.offset(i, j, k) * 3;
        for (int a = 0; a < 3; ++a) f.data[n + a] = static_cast<float>(u[a]);
        max_len = std::max(max_len, std::sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2]));
      }
  const float scale = max_len > 0 ? static_cast<float>(opt.max_mm / max_len) : 0.f;
  for (auto& v : f.data) v *= scale;
  return f;
}

}  // namespace isoline::adaptive
