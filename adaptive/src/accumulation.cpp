// Dose warping, accumulation over fractions and planned-vs-delivered comparison.
#include "isoline/adaptive/accumulation.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "isoline/core/error.h"

namespace isoline::adaptive {

using core::fail;
using core::Geometry;
using core::Image;
using core::InvalidInput;
using core::PixelType;
using core::Vec3;

namespace {
bool inside(const Geometry& g, const Vec3& world) {
  const Vec3 c = g.world_to_index(world);
  for (int a = 0; a < 3; ++a)
    if (c[a] < -0.5 || c[a] > g.size[a] - 0.5) return false;
  return true;
}

// u at `world`, extended beyond the field's grid by its value at the nearest grid point: a
// planning point outside the new CT's grid (another scan, other coordinates) still starts the
// inversion with the displacement there, which is mostly the rigid part, instead of zero.
Vec3 sample_extended(const DisplacementField& field, const Vec3& world) {
  const Geometry& g = field.geometry;
  Vec3 c = g.world_to_index(world);
  bool outside = false;
  for (int a = 0; a < 3; ++a) {
    const double hi = double(g.size[a] - 1);
    if (c[a] < 0.0 || c[a] > hi) {
      c[a] = std::clamp(c[a], 0.0, hi);
      outside = true;
    }
  }
  return field.sample(outside ? g.index_to_world(c) : world);
}
}  // namespace

DisplacementField invert_field(const DisplacementField& field, const Geometry& grid, int iterations,
                               double* max_residual_mm, std::vector<float>* residual_mm) {
  if (field.empty()) fail<InvalidInput>("invert field", "field", "field is empty");
  grid.validate("invert field grid");
  DisplacementField inv = DisplacementField::zeros(grid);
  if (residual_mm) residual_mm->assign(grid.num_voxels(), -1.0f);
  const Geometry& fg = field.geometry;
  // Finite-difference step of the Jacobian: half the field's finest spacing.
  const double h = 0.5 * std::min({fg.spacing[0], fg.spacing[1], fg.spacing[2]});
  double worst = 0.0;
  const std::int64_t nz = grid.size[2];
#pragma omp parallel for schedule(dynamic) reduction(max : worst)
  for (std::int64_t k = 0; k < nz; ++k)
    for (std::int64_t j = 0; j < grid.size[1]; ++j)
      for (std::int64_t i = 0; i < grid.size[0]; ++i) {
        const Vec3 p = grid.index_to_world({double(i), double(j), double(k)});
        // F(q) = q + u(q) - p, the residual to drive to zero.
        auto residual = [&](const Vec3& q) {
          const Vec3 u = sample_extended(field, q);
          return Vec3{q[0] + u[0] - p[0], q[1] + u[1] - p[1], q[2] + u[2] - p[2]};
        };
        auto norm = [](const Vec3& v) { return std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]); };
        auto det3 = [](const double (&M)[3][3]) {
          return M[0][0] * (M[1][1] * M[2][2] - M[1][2] * M[2][1]) - M[0][1] * (M[1][0] * M[2][2] - M[1][2] * M[2][0]) +
                 M[0][2] * (M[1][0] * M[2][1] - M[1][1] * M[2][0]);
        };
        Vec3 q = p, best = p;
        double best_r = std::numeric_limits<double>::infinity();
        for (int it = 0; it <= iterations; ++it) {
          const Vec3 u = sample_extended(field, q);  // gives q's residual and the next iterate
          const double r = norm({q[0] + u[0] - p[0], q[1] + u[1] - p[1], q[2] + u[2] - p[2]});
          if (r < best_r) {
            best_r = r;
            best = q;
          }
          if (r < 1e-3 || it == iterations) break;
          q = {p[0] - u[0], p[1] - u[1], p[2] - u[2]};
        }
        // The fixed point converges only where the field is contractive (|grad u| < 1); where
        // the tissue stretches more than twice between the scans (lung) it diverges and stalls
        // millimetres off. Newton steps with the field's Jacobian (central differences) and
        // backtracking finish those points.
        if (best_r > 0.05) {
          q = best;
          for (int it = 0; it < 20 && best_r > 1e-3; ++it) {
            double J[3][3];
            for (int a = 0; a < 3; ++a) {
              Vec3 qp = q, qm = q;
              qp[a] += h;
              qm[a] -= h;
              const Vec3 up = sample_extended(field, qp), um = sample_extended(field, qm);
              for (int b = 0; b < 3; ++b) J[b][a] = (b == a ? 1.0 : 0.0) + (up[b] - um[b]) / (2 * h);
            }
            const double det = det3(J);
            if (!(std::abs(det) > 1e-9)) break;
            const Vec3 F = residual(q);
            // d = -J^-1 F (Cramer's rule)
            Vec3 d{};
            for (int c = 0; c < 3; ++c) {
              double M[3][3];
              for (int r = 0; r < 3; ++r)
                for (int s2 = 0; s2 < 3; ++s2) M[r][s2] = s2 == c ? -F[r] : J[r][s2];
              d[c] = det3(M) / det;
            }
            const double len = norm(d);
            if (len > 10.0)
              for (int a = 0; a < 3; ++a) d[a] *= 10.0 / len;
            bool improved = false;
            for (double lam = 1.0; lam > 1.0 / 64; lam *= 0.5) {
              const Vec3 qn{q[0] + lam * d[0], q[1] + lam * d[1], q[2] + lam * d[2]};
              const double rn = norm(residual(qn));
              if (rn < best_r) {
                q = qn;
                best = qn;
                best_r = rn;
                improved = true;
                break;
              }
            }
            if (!improved) break;
          }
        }
        q = best;
        if (inside(fg, q)) {
          const Vec3 t = field.transform_point(q);
          double r = 0;
          for (int a = 0; a < 3; ++a) r += (t[a] - p[a]) * (t[a] - p[a]);
          r = std::sqrt(r);
          worst = std::max(worst, r);
          if (residual_mm) (*residual_mm)[grid.offset(i, j, k)] = static_cast<float>(r);
        }
        const std::size_t n = grid.offset(i, j, k) * 3;
        for (int a = 0; a < 3; ++a) inv.data[n + a] = static_cast<float>(q[a] - p[a]);
      }
  if (max_residual_mm) *max_residual_mm = worst;
  return inv;
}

Image warp_dose(const Image& dose, const DisplacementField& planning_to_new) {
  Image d = dose.pixel_type() == PixelType::Float32 ? dose : dose.cast(PixelType::Float32);
  return warp(d, planning_to_new, 0.0);
}

DoseAccumulator::DoseAccumulator(const Geometry& g) : total_(g, PixelType::Float32) {
  g.validate("dose accumulation grid");
}

void DoseAccumulator::add(const Image& dose, double weight) {
  if (!dose.geometry().same_grid(total_.geometry(), 1e-3))
    fail<InvalidInput>("accumulate dose", "dose", "dose is not on the planning grid (warp it first)");
  float* t = total_.data<float>();
  for (std::size_t n = 0; n < total_.num_voxels(); ++n) t[n] += static_cast<float>(weight * dose.value(n));
  weight_ += weight;
}

void DoseAccumulator::add_warped(const Image& dose, const DisplacementField& planning_to_new, double weight) {
  if (!planning_to_new.geometry.same_grid(total_.geometry(), 1e-3))
    fail<InvalidInput>("accumulate dose", "field", "the field must be sampled on the planning grid");
  add(warp_dose(dose, planning_to_new), weight);
}

DoseEvaluation evaluate_dose(const std::string& label, const Image& dose, const core::StructureSet& structures,
                             const std::vector<planning::Criterion>& criteria) {
  DoseEvaluation e;
  e.label = label;
  const Image d = dose.pixel_type() == PixelType::Float32 ? dose : dose.cast(PixelType::Float32);
  for (const auto& s : structures) {
    if (s.mask.count_nonzero() == 0) continue;
    e.dvhs[s.name] = planning::compute_dvh(d, s.mask, s.name);
  }
  if (!criteria.empty()) e.criteria = planning::evaluate_criteria(criteria, e.dvhs);
  return e;
}

std::vector<ComparisonRow> compare(const std::vector<const DoseEvaluation*>& evals,
                                   const std::vector<planning::Criterion>& criteria) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<ComparisonRow> rows;
  for (const auto& c : criteria) {
    ComparisonRow r;
    r.structure = c.structure;
    r.metric = c.metric;
    r.criterion = c.description;
    r.at_most = c.at_most;
    r.limit = c.limit;
    for (const auto* e : evals) {
      auto it = e->dvhs.find(c.structure);
      if (it == e->dvhs.end()) {
        r.values.push_back(nan);
        r.pass.push_back(-1);
        continue;
      }
      const double v = planning::evaluate_metric(it->second, c.metric);
      r.values.push_back(v);
      r.pass.push_back(c.at_most ? v <= c.limit : v >= c.limit);
    }
    rows.push_back(r);
  }
  // Structure names in the order of the first evaluation that has them.
  std::vector<std::string> names;
  for (const auto* e : evals)
    for (const auto& kv : e->dvhs)
      if (std::find(names.begin(), names.end(), kv.first) == names.end()) names.push_back(kv.first);
  for (const auto& name : names) {
    const bool target = name.rfind("PTV", 0) == 0 || name.rfind("CTV", 0) == 0 || name.rfind("GTV", 0) == 0;
    const std::vector<std::string> metrics = target ? std::vector<std::string>{"Dmean", "D95%", "D2%"}
                                                    : std::vector<std::string>{"Dmean", "D0.1cc"};
    for (const auto& m : metrics) {
      ComparisonRow r;
      r.structure = name;
      r.metric = m;
      for (const auto* e : evals) {
        auto it = e->dvhs.find(name);
        r.values.push_back(it == e->dvhs.end() ? nan : planning::evaluate_metric(it->second, m));
        r.pass.push_back(-1);
      }
      rows.push_back(r);
    }
  }
  return rows;
}

}  // namespace isoline::adaptive
