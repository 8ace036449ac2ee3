// Helpers of the adaptive tests: cubic grids centred on the origin, and images whose voxels
// are a function of their world position.
#pragma once

#include <cstdint>

#include "isoline/core/image.h"

namespace isoline::test {

/// n x n x n voxels of s mm, centred on the origin, then moved by `offset` mm along each axis.
inline core::Geometry cube_grid(int n, double s, double offset = 0.0) {
  core::Geometry g;
  g.size = {n, n, n};
  g.spacing = {s, s, s};
  g.origin = {-(n - 1) * s / 2 + offset, -(n - 1) * s / 2 + offset, -(n - 1) * s / 2 + offset};
  return g;
}

/// An image of pixels T on `g`: each voxel is `value(x)` (cast to T) at its world position x (mm).
template <class T, class F>
core::Image world_image(const core::Geometry& g, F value) {
  core::Image img = core::Image::zeros<T>(g);
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i)
        img.at<T>(i, j, k) =
            static_cast<T>(value(g.index_to_world({double(i), double(j), double(k)})));
  return img;
}

}  // namespace isoline::test
