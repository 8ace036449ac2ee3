// Helpers for the dose tests: simple density phantoms built directly (no phantoms module).
#pragma once

#include <cstdlib>
#include <string>
#include <vector>

#include "isoline/dose/engine.h"

namespace isoline::dose::test {

/// The generic machine; $ISOLINE_MACHINE_DIR (as for `isoline dose`) overrides the source tree, so
/// the test binary also runs from a copy on another host (bench/gpu_session.sh).
inline std::string machine_path() {
  if (const char* dir = std::getenv("ISOLINE_MACHINE_DIR")) return std::string(dir) + "/generic_6mv.json";
  return std::string(ISOLINE_SOURCE_DIR) + "/dose/machines/generic_6mv.json";
}

/// A water-like box: lateral x (i) and z (k) centred on 0, depth along +y (j) starting at
/// y = surface_mm (the first voxel centre is half a voxel deep). `rho(depth_mm)` gives the
/// density of each layer.
struct SlabPhantom {
  Grid grid;
  std::vector<float> density;
  double surface_mm = -150.0;
};

template <class F>
SlabPhantom make_slab_phantom(double h, double lateral_mm, double depth_mm, F rho) {
  SlabPhantom p;
  int n = static_cast<int>(lateral_mm / h + 0.5) | 1;  // odd: the axis passes through voxel centres
  int ny = static_cast<int>(depth_mm / h + 0.5);
  p.grid.size = {n, ny, n};
  p.grid.spacing = {h, h, h};
  p.grid.origin = {-(n / 2) * h, p.surface_mm + 0.5 * h, -(n / 2) * h};
  p.density.resize(p.grid.num_voxels());
  for (int k = 0; k < n; ++k)
    for (int j = 0; j < ny; ++j)
      for (int i = 0; i < n; ++i)
        p.density[(static_cast<std::size_t>(k) * ny + j) * n + i] = static_cast<float>(rho((j + 0.5) * h));
  return p;
}

/// Beam from above (gantry 0, source anterior = -y) with SSD 100 cm on the phantom surface.
inline Beam water_beam(const SlabPhantom& p, double field_mm, double mu = 100.0) {
  Beam b;
  b.gantry_deg = 0;
  b.isocenter_mm = {0, p.surface_mm, 0};  // SAD 100 = SSD 100: isocentre on the surface
  b.jaw_x1_mm = b.jaw_y1_mm = -field_mm / 2;
  b.jaw_x2_mm = b.jaw_y2_mm = field_mm / 2;
  b.mu = mu;
  return b;
}

/// Central-axis depth dose (depth in mm of the voxel centres, dose).
inline std::vector<std::pair<double, double>> central_axis(const SlabPhantom& p, const std::vector<float>& d) {
  std::vector<std::pair<double, double>> out;
  const int n = p.grid.size[0], ny = p.grid.size[1];
  for (int j = 0; j < ny; ++j)
    out.emplace_back((j + 0.5) * p.grid.spacing[1], d[(static_cast<std::size_t>(n / 2) * ny + j) * n + n / 2]);
  return out;
}

inline double interp_curve(const std::vector<std::pair<double, double>>& c, double x) {
  for (std::size_t i = 1; i < c.size(); ++i)
    if (c[i].first >= x) {
      double t = (x - c[i - 1].first) / (c[i].first - c[i - 1].first);
      return c[i - 1].second + t * (c[i].second - c[i - 1].second);
    }
  return c.back().second;
}

}  // namespace isoline::dose::test
