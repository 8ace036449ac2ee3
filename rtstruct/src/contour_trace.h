// Exact pixel-boundary contours of a binary slice, and even-odd polygon filling.
// Plain C++ (no DCMTK), shared by the RT-STRUCT writer, reader and the fuzz harness.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace isoline::rtstruct::detail {

/// A closed loop on the pixel-corner lattice: corner (x, y) is the lower-left corner of
/// pixel (x, y), i.e. continuous index (x - 0.5, y - 0.5). Only the corners where the
/// direction changes are kept; the first point is not repeated.
struct Loop {
  std::vector<std::array<std::int32_t, 2>> corners;
  long long area2 = 0;  ///< twice the signed area; > 0 outer boundary, < 0 hole
};

/// Traces every boundary of the non-zero pixels of a nx x ny slice (x fastest), inside on
/// the left (outer loops counter-clockwise, holes clockwise in x-right/y-up). Diagonal
/// neighbours are kept apart (4-connectivity of the inside). Rasterizing all loops with the
/// even-odd rule at pixel centres gives back exactly the non-zero pixels.
std::vector<Loop> trace_slice(const std::uint8_t* slice, int nx, int ny);

/// Joins each hole to the outer loop that encloses it with a zero-width cut, so that every
/// region becomes a single loop (keyhole contours). Even-odd filling is unchanged.
std::vector<Loop> keyhole(std::vector<Loop> loops);

/// XORs the polygon (continuous pixel indices) into `slice`: a pixel is toggled when its
/// centre lies inside the polygon (crossing rule, half-open in x and y).
void xor_polygon(std::uint8_t* slice, int nx, int ny,
                 const std::vector<std::array<double, 2>>& poly);

/// Area of a polygon (absolute, in the polygon's units squared).
double polygon_area(const std::vector<std::array<double, 2>>& poly);

}  // namespace isoline::rtstruct::detail
