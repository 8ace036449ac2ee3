// Synthetic doses and report inputs for the report tests and the example tool.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "isoline/core/image.h"
#include "isoline/core/mask_ops.h"
#include "isoline/core/structure.h"
#include "isoline/planning/criteria.h"
#include "isoline/planning/dvh.h"
#include "isoline/report/report.h"

namespace isoline::test {

/// Separable box blur (3 passes approximate a Gaussian) of a float image, radius in voxels
/// per axis.
inline void box_blur(core::Image& img, const std::array<int, 3>& radius) {
  const auto& g = img.geometry();
  float* d = img.data<float>();
  for (int pass = 0; pass < 3; ++pass)
    for (int a = 0; a < 3; ++a) {
      const int r = radius[a];
      if (r <= 0) continue;
      const std::int64_t n = g.size[a];
      const std::int64_t stride = a == 0 ? 1 : (a == 1 ? g.size[0] : g.size[0] * g.size[1]);
      const std::int64_t o1 = a == 0 ? g.size[1] : g.size[0], o2 = a == 2 ? g.size[1] : g.size[2];
      std::vector<float> line(std::size_t(n), 0.0f);
      for (std::int64_t p = 0; p < o1; ++p)
        for (std::int64_t q = 0; q < o2; ++q) {
          std::int64_t base;
          if (a == 0) base = g.offset(0, p, q);
          else if (a == 1) base = g.offset(p, 0, q);
          else base = g.offset(p, q, 0);
          for (std::int64_t i = 0; i < n; ++i) line[std::size_t(i)] = d[base + i * stride];
          for (std::int64_t i = 0; i < n; ++i) {
            double s = 0;
            int c = 0;
            for (std::int64_t k = std::max<std::int64_t>(0, i - r); k <= std::min(n - 1, i + r); ++k) {
              s += line[std::size_t(k)];
              ++c;
            }
            d[base + i * stride] = float(s / c);
          }
        }
    }
}

/// A plan-like dose on a coarse grid (`spacing_mm`, covering the CT): each target's
/// prescription (+2 %) within 12 mm of it (highest wins), blurred (sigma about 1.4 dose
/// voxels) to a realistic fall-off, zero outside the body. Targets are {structure, Gy}.
inline core::Image synthetic_plan_dose(const core::Image& ct, const core::StructureSet& ss,
                                       const std::vector<std::pair<std::string, double>>& targets,
                                       double spacing_mm, const std::string& body = "Body") {
  const auto& cg = ct.geometry();
  core::Geometry dg = cg;
  for (int a = 0; a < 3; ++a) {
    const double extent = cg.size[a] * cg.spacing[a];
    dg.size[a] = std::max<std::int64_t>(1, std::int64_t(std::ceil(extent / spacing_mm)));
    dg.spacing[a] = spacing_mm;
  }
  // Centred on the CT centre (so its voxels are offset from the CT's, and the same patient
  // stored HFS or FFS gets the same dose points).
  const core::Vec3 centre =
      cg.index_to_world({(cg.size[0] - 1) / 2.0, (cg.size[1] - 1) / 2.0, (cg.size[2] - 1) / 2.0});
  for (int a = 0; a < 3; ++a) {
    dg.origin[a] = centre[a];
    for (int b = 0; b < 3; ++b) dg.origin[a] -= dg.direction[a * 3 + b] * spacing_mm * (dg.size[b] - 1) / 2.0;
  }
  std::vector<std::pair<core::Image, double>> grown;
  for (const auto& [name, gy] : targets)
    if (const auto* s = ss.find(name))
      grown.push_back({core::expand(s->mask, core::Margin::uniform(12.0)), gy});
  const core::Structure* bs = ss.find(body);
  core::Image dose(dg, core::PixelType::Float32);
  float* d = dose.data<float>();
  auto ct_offset = [&](std::int64_t i, std::int64_t j, std::int64_t k, std::size_t* off) {
    core::Vec3 w = dg.index_to_world({double(i), double(j), double(k)});
    for (double& x : w) x += 1e-4;  // break ties between CT voxels the same way in any storage order
    const core::Vec3 c = cg.world_to_index(w);
    const core::Index3 ijk{std::llround(c[0]), std::llround(c[1]), std::llround(c[2])};
    if (!cg.contains(ijk)) return false;
    *off = cg.offset(ijk[0], ijk[1], ijk[2]);
    return true;
  };
  for (std::int64_t k = 0; k < dg.size[2]; ++k)
    for (std::int64_t j = 0; j < dg.size[1]; ++j)
      for (std::int64_t i = 0; i < dg.size[0]; ++i) {
        std::size_t off;
        if (!ct_offset(i, j, k, &off)) continue;
        double v = 0.0;
        for (const auto& [m, gy] : grown)
          if (m.data<std::uint8_t>()[off]) v = std::max(v, gy * 1.02);
        d[dg.offset(i, j, k)] = float(v);
      }
  box_blur(dose, {1, 1, 1});
  if (bs)  // no dose outside the body
    for (std::int64_t k = 0; k < dg.size[2]; ++k)
      for (std::int64_t j = 0; j < dg.size[1]; ++j)
        for (std::int64_t i = 0; i < dg.size[0]; ++i) {
          std::size_t off;
          if (!ct_offset(i, j, k, &off) || !bs->mask.data<std::uint8_t>()[off]) d[dg.offset(i, j, k)] = 0.0f;
        }
  return dose;
}

/// A DoseSet with DVHs of every structure and the criteria evaluated.
inline report::DoseSet evaluate_set(const std::string& name, const core::Image& dose,
                                    const core::StructureSet& ss,
                                    const std::vector<planning::Criterion>& criteria) {
  report::DoseSet set;
  set.name = name;
  set.dose = dose;
  for (const auto& s : ss) set.dvhs[s.name] = planning::compute_dvh(dose, s.mask, s.name);
  set.criteria = planning::evaluate_criteria(criteria, set.dvhs);
  return set;
}

}  // namespace isoline::test
