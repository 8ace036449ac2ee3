// Smooth synthetic deformations with a known answer, for validating registration.
#pragma once

#include "isoline/adaptive/registration.h"

namespace isoline::adaptive {

struct SyntheticFieldOptions {
  double max_mm = 10.0;       ///< largest displacement magnitude
  int bumps = 6;              ///< number of Gaussian displacement bumps
  double sigma_mm = 35.0;     ///< width of each bump
  unsigned seed = 1;
};

/// A smooth random displacement field on `grid`: a sum of Gaussian bumps with random
/// centres (inside the central 60 % of the grid) and random directions, scaled so that
/// max |u| = max_mm. Deterministic for a seed. Invertible (no folding) for max_mm well
/// below sigma_mm.
DisplacementField synthetic_field(const core::Geometry& grid, const SyntheticFieldOptions& options = {});

}  // namespace isoline::adaptive
