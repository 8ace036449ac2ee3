// Physical geometry of a 3-D voxel grid in DICOM patient coordinates (LPS, millimetres).
//
//   world = origin + direction * diag(spacing) * index
//
// `index` is (i, j, k), i running fastest in memory. The columns of `direction` are the
// unit vectors of the i, j and k axes in LPS (the same convention as ITK and DICOM's
// ImageOrientationPatient plus the slice normal).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace isoline::core {

using Vec3 = std::array<double, 3>;
using Index3 = std::array<std::int64_t, 3>;
/// Row-major 3x3 matrix: m[r * 3 + c].
using Mat3 = std::array<double, 9>;

constexpr Mat3 kIdentity3 = {1, 0, 0, 0, 1, 0, 0, 0, 1};

struct Geometry {
  Index3 size{0, 0, 0};
  Vec3 spacing{1.0, 1.0, 1.0};
  Vec3 origin{0.0, 0.0, 0.0};
  Mat3 direction = kIdentity3;

  std::size_t num_voxels() const;
  /// Linear offset of voxel (i, j, k) in a buffer with i fastest.
  std::size_t offset(std::int64_t i, std::int64_t j, std::int64_t k) const {
    return static_cast<std::size_t>(i + size[0] * (j + size[1] * k));
  }
  bool contains(const Index3& ijk) const;

  /// Continuous index -> world (LPS mm).
  Vec3 index_to_world(const Vec3& ijk) const;
  /// World (LPS mm) -> continuous index.
  Vec3 world_to_index(const Vec3& xyz) const;
  /// Unit vector of axis a (0, 1, 2) in LPS.
  Vec3 axis(int a) const { return {direction[a], direction[3 + a], direction[6 + a]}; }
  /// Volume of one voxel in mm^3.
  double voxel_volume_mm3() const { return spacing[0] * spacing[1] * spacing[2]; }

  /// Same size, and origin/spacing/direction equal within `tolerance_mm` (direction
  /// entries within tolerance_mm / 1000).
  bool same_grid(const Geometry& other, double tolerance_mm = 1e-3) const;

  /// Throws InvalidInput naming `what` when the geometry is unusable: non-positive size or
  /// spacing, a direction matrix that is not orthonormal, non-finite values.
  void validate(std::string_view what) const;

  /// Multi-line human-readable summary (size, spacing, origin, direction, extent).
  std::string describe() const;
  /// One line for messages: "64 x 64 x 24 voxels of 4 x 4 x 4 mm from (x, y, z) mm, RAI".
  std::string summary() const;
};

/// Nearest DICOM-style orientation code of a direction column, e.g. "L", "P", "S", "R".
char orientation_letter(const Vec3& axis);
/// Three-letter orientation code of the grid (ITK convention: where each axis points to),
/// e.g. "LPS" for the identity direction.
std::string orientation_code(const Geometry& g);

}  // namespace isoline::core
