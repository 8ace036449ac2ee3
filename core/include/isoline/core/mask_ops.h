// Operations on binary masks (uint8 images) and resampling between grids, through ITK.
// Used by contouring post-processing, phantoms, the Python API and the review UI, so that
// margins and booleans give the same result everywhere.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "isoline/core/image.h"

namespace isoline::core {

/// Margin in mm along each patient direction (DICOM LPS): a structure grows (or shrinks)
/// by `left` towards the patient's left (+x), `right` towards -x, `posterior` +y,
/// `anterior` -y, `superior` +z, `inferior` -z. Per direction the margin is exact on the
/// voxel grid: the result is the set of voxels whose centre lies within the (octant-wise)
/// ellipsoid around some voxel centre of the input.
struct Margin {
  double left = 0, right = 0, anterior = 0, posterior = 0, superior = 0, inferior = 0;
  static Margin uniform(double mm) { return {mm, mm, mm, mm, mm, mm}; }
  bool is_zero() const;
  void validate(std::string_view what) const;  // throws InvalidInput for negative/non-finite
};

/// Grows a mask by a margin (mm). The output has the input's grid; voxels pushed outside the
/// grid are lost.
Image expand(const Image& mask, const Margin& margin);
/// Shrinks a mask by a margin (mm): the complement of expanding the complement.
Image shrink(const Image& mask, const Margin& margin);

Image mask_union(const Image& a, const Image& b);
Image mask_intersect(const Image& a, const Image& b);
Image mask_subtract(const Image& a, const Image& b);  ///< a and not b

/// Keeps the `count` largest 26-connected components (and drops components smaller than
/// `min_fraction` of the largest).
Image keep_largest_components(const Image& mask, int count = 1, double min_fraction = 0.0);
/// The number of 26-connected components of a mask (0 for an empty one).
std::size_t count_components(const Image& mask);
/// Removes components smaller than `min_cc` cubic centimetres.
Image remove_islands(const Image& mask, double min_cc);
/// Fills enclosed cavities. `per_slice` fills 2-D holes in each axial (k) slice instead of
/// 3-D cavities.
Image fill_holes(const Image& mask, bool per_slice = false);
/// Gaussian smoothing of the mask surface (sigma in mm), thresholded at 0.5.
Image smooth(const Image& mask, double sigma_mm);
/// Float32 image of the Euclidean distance (mm, anisotropic spacing respected) from every
/// voxel to the nearest non-zero voxel of `mask`; 0 on the mask (ITK Maurer distance map).
Image distance_map(const Image& mask);

/// Bounding box of non-zero voxels: {min i, min j, min k, max i, max j, max k} inclusive,
/// or nullopt when the mask is empty.
std::optional<std::array<std::int64_t, 6>> bounding_box(const Image& mask);
/// Fraction of the mask's non-zero voxels whose centre lies outside `grid` (beyond its outer
/// voxel edges, in physical space); 0 for an empty mask.
double fraction_outside(const Image& mask, const Geometry& grid);

enum class Interpolation { Nearest, Linear };
/// Resamples `image` onto `grid` (physical space, any orientation); outside values get
/// `default_value`. The pixel type is kept (linear interpolation of uint8 masks gives a
/// thresholded result at 0.5: use Float32 input to keep fractions).
Image resample(const Image& image, const Geometry& grid, Interpolation interpolation,
               double default_value = 0.0);

}  // namespace isoline::core
