#include "isoline/core/geometry.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "isoline/core/error.h"

namespace isoline::core {

std::size_t Geometry::num_voxels() const {
  if (size[0] <= 0 || size[1] <= 0 || size[2] <= 0) return 0;
  return static_cast<std::size_t>(size[0]) * static_cast<std::size_t>(size[1]) *
         static_cast<std::size_t>(size[2]);
}

bool Geometry::contains(const Index3& ijk) const {
  for (int a = 0; a < 3; ++a)
    if (ijk[a] < 0 || ijk[a] >= size[a]) return false;
  return true;
}

Vec3 Geometry::index_to_world(const Vec3& ijk) const {
  Vec3 w = origin;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) w[r] += direction[r * 3 + c] * spacing[c] * ijk[c];
  return w;
}

Vec3 Geometry::world_to_index(const Vec3& xyz) const {
  // direction is orthonormal: its inverse is its transpose.
  Vec3 d{xyz[0] - origin[0], xyz[1] - origin[1], xyz[2] - origin[2]};
  Vec3 ijk{0, 0, 0};
  for (int c = 0; c < 3; ++c) {
    double s = 0;
    for (int r = 0; r < 3; ++r) s += direction[r * 3 + c] * d[r];
    ijk[c] = s / spacing[c];
  }
  return ijk;
}

bool Geometry::same_grid(const Geometry& o, double tol) const {
  if (size != o.size) return false;
  for (int a = 0; a < 3; ++a) {
    if (std::abs(spacing[a] - o.spacing[a]) > tol) return false;
    if (std::abs(origin[a] - o.origin[a]) > tol) return false;
  }
  for (int n = 0; n < 9; ++n)
    if (std::abs(direction[n] - o.direction[n]) > tol * 1e-3) return false;
  return true;
}

void Geometry::validate(std::string_view what) const {
  const char* op = "check geometry";
  for (int a = 0; a < 3; ++a) {
    if (size[a] <= 0)
      fail<InvalidInput>(op, what, "size must be positive in every axis, got " +
                                       std::to_string(size[0]) + "x" + std::to_string(size[1]) +
                                       "x" + std::to_string(size[2]));
    if (!(spacing[a] > 0) || !std::isfinite(spacing[a]))
      fail<InvalidInput>(op, what, "spacing must be positive and finite in every axis");
    if (!std::isfinite(origin[a])) fail<InvalidInput>(op, what, "origin is not finite");
  }
  for (int c1 = 0; c1 < 3; ++c1)
    for (int c2 = 0; c2 < 3; ++c2) {
      double dot = 0;
      for (int r = 0; r < 3; ++r) dot += direction[r * 3 + c1] * direction[r * 3 + c2];
      double expect = c1 == c2 ? 1.0 : 0.0;
      if (!(std::abs(dot - expect) < 1e-4))
        fail<InvalidInput>(op, what, "direction cosines are not orthonormal");
    }
}

char orientation_letter(const Vec3& v) {
  int best = 0;
  for (int a = 1; a < 3; ++a)
    if (std::abs(v[a]) > std::abs(v[best])) best = a;
  static const char pos[3] = {'L', 'P', 'S'};
  static const char neg[3] = {'R', 'A', 'I'};
  return v[best] >= 0 ? pos[best] : neg[best];
}

std::string orientation_code(const Geometry& g) {
  std::string s;
  for (int a = 0; a < 3; ++a) s += orientation_letter(g.axis(a));
  return s;
}

std::string Geometry::summary() const {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%lld x %lld x %lld voxels of %.4g x %.4g x %.4g mm from (%.1f, %.1f, %.1f) mm, %s",
                (long long)size[0], (long long)size[1], (long long)size[2], spacing[0], spacing[1], spacing[2],
                origin[0], origin[1], origin[2], orientation_code(*this).c_str());
  return buf;
}

std::string Geometry::describe() const {
  std::ostringstream os;
  char buf[256];
  os << "size      " << size[0] << " x " << size[1] << " x " << size[2] << " voxels\n";
  std::snprintf(buf, sizeof buf, "spacing   %.6g x %.6g x %.6g mm\n", spacing[0], spacing[1],
                spacing[2]);
  os << buf;
  std::snprintf(buf, sizeof buf, "origin    (%.4f, %.4f, %.4f) mm LPS\n", origin[0], origin[1],
                origin[2]);
  os << buf;
  std::snprintf(buf, sizeof buf,
                "direction [%.4g %.4g %.4g; %.4g %.4g %.4g; %.4g %.4g %.4g] (%s)\n",
                direction[0], direction[1], direction[2], direction[3], direction[4],
                direction[5], direction[6], direction[7], direction[8],
                orientation_code(*this).c_str());
  os << buf;
  Vec3 far = index_to_world({double(size[0] - 1), double(size[1] - 1), double(size[2] - 1)});
  std::snprintf(buf, sizeof buf, "extent    %.1f x %.1f x %.1f mm; last voxel (%.4f, %.4f, %.4f)",
                size[0] * spacing[0], size[1] * spacing[1], size[2] * spacing[2], far[0], far[1],
                far[2]);
  os << buf;
  return os.str();
}

}  // namespace isoline::core
