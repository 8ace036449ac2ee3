// Internal: sampling analytic shapes on axial grids, tissue painting, CT synthesis.
#pragma once

#include <cstdint>
#include <vector>

#include "isoline/core/image.h"
#include "isoline/core/progress.h"
#include "isoline/phantoms/phantoms.h"
#include "isoline/phantoms/shapes.h"

namespace isoline::phantoms::detail {

/// An axial grid: voxel (i, j, k) has its centre at (x0 + dx i, y0 + dy j, z0 + dz k) with
/// signed steps (the direction is diagonal with entries +-1).
struct AxialGrid {
  core::Geometry g;
  double x0, dx, y0, dy, z0, dz;
  std::int64_t nx, ny, nz;
  double x(std::int64_t i) const { return x0 + dx * double(i); }
  double y(std::int64_t j) const { return y0 + dy * double(j); }
  double z(std::int64_t k) const { return z0 + dz * double(k); }
};
/// Throws NotSupported when the geometry is not axial (i along x, j along y, k along z).
AxialGrid axial_grid(const core::Geometry& g);

/// Inclusive index range [first, last] of coordinates c0 + step * n in [lo, hi], clamped
/// to [0, count - 1]; first > last when empty.
void index_range(double lo, double hi, double c0, double step, std::int64_t count,
                 std::int64_t& first, std::int64_t& last);

/// Calls run(j, i0, i1) for every run of voxels of slice k whose centres lie in `shape`.
template <class F>
void for_each_run(const Shape& shape, const Box3& b, const AxialGrid& ag, std::int64_t k,
                  std::vector<Interval>& scratch, F&& run) {
  const double z = ag.z(k);
  if (z < b.lo[2] || z > b.hi[2]) return;
  std::int64_t j0, j1, ib0, ib1;
  index_range(b.lo[1], b.hi[1], ag.y0, ag.dy, ag.ny, j0, j1);
  index_range(b.lo[0], b.hi[0], ag.x0, ag.dx, ag.nx, ib0, ib1);
  if (ib0 > ib1) return;
  for (std::int64_t j = j0; j <= j1; ++j) {
    const double y = ag.y(j);
    scratch.clear();
    if (shape.x_spans(y, z, scratch)) {
      for (const auto& iv : scratch) {
        std::int64_t i0, i1;
        index_range(iv.lo, iv.hi, ag.x0, ag.dx, ag.nx, i0, i1);
        if (i0 <= i1) run(j, i0, i1);
      }
    } else {
      std::int64_t start = -1;
      for (std::int64_t i = ib0; i <= ib1; ++i) {
        const bool in = shape.inside({ag.x(i), y, z});
        if (in && start < 0) start = i;
        if (!in && start >= 0) {
          run(j, start, i - 1);
          start = -1;
        }
      }
      if (start >= 0) run(j, start, ib1);
    }
  }
}

/// uint8 mask (1 inside) of `shape` on the grid.
core::Image rasterize(const Shape& shape, const AxialGrid& ag);

struct PaintOp {
  ShapePtr shape;
  std::uint8_t tissue;
  /// Bit t set: the op may overwrite tissue t. Default: everything.
  std::uint32_t overwrite = 0xffffffffu;
};
std::uint32_t bits(std::initializer_list<int> tissues);
std::uint32_t all_but(std::initializer_list<int> tissues);

/// Paints the ops in order into a uint8 label image (initialised to `background`).
core::Image paint(const std::vector<PaintOp>& ops, const AxialGrid& ag, std::uint8_t background,
                  const core::Progress& progress);

/// CT from labels: nominal HU, Gaussian blur (sigma in mm per axis, zeros = none),
/// correlated Gaussian noise of standard deviation `noise_sd` (deterministic in `seed`),
/// rounded and clamped to [-1024, 3071]. Returns int16.
core::Image synthesize_ct(const core::Image& labels, const core::Vec3& blur_sigma_mm,
                          double noise_sd, std::uint64_t seed, const core::Progress& progress);

/// a AND b in place on a.
void intersect_inplace(core::Image& a, const core::Image& b);

/// Small deterministic random source (splitmix64); portable across compilers, unlike the
/// standard distributions.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ull + 0x1234567ull) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, 1).
  double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  /// Uniform integer in [0, n).
  std::uint64_t index(std::uint64_t n) { return next() % n; }

 private:
  std::uint64_t s_;
};

}  // namespace isoline::phantoms::detail
