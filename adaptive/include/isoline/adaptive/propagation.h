// Contour propagation for adaptive replanning: structure masks of the planning CT warped onto
// a new CT through a registration, and the fusion of propagated structures with structures
// re-contoured on the new CT.
//
// Registration direction: register the new CT (FIXED) to the planning CT (MOVING),
//   auto reg = adaptive::register_images(new_ct, planning_ct);
// so that reg.field lives on the new CT's grid and maps new-CT points to planning-CT points;
// a planning mask M is propagated as M'(x) = M(x + u(x)).
#pragma once

#include <string>
#include <vector>

#include "isoline/adaptive/registration.h"
#include "isoline/core/structure.h"

namespace isoline::adaptive {

/// Warps every structure of `planning` (masks on any grid that the field maps into) onto the
/// field's grid: linear interpolation of the 0/1 mask, thresholded at 0.5. Names, types and
/// colours are kept; each description starts with "propagated" (the planning description,
/// if any, follows). Throws InvalidInput for an empty field.
core::StructureSet propagate_structures(const core::StructureSet& planning,
                                        const DisplacementField& new_to_planning,
                                        const core::Progress& progress = {});

/// True for target volumes (type PTV, CTV or GTV, or a name starting with PTV/CTV/GTV/ITV).
bool is_target(const core::Structure& s);

struct FuseOptions {
  /// Propagated and re-contoured versions of an OAR agreeing less than this (Dice) are
  /// flagged for review in the structure's description.
  double dice_threshold = 0.7;
  /// Keep these structures as propagated even when re-contoured (besides the targets).
  std::vector<std::string> keep_propagated;
};

/// Where a fused structure came from and how well the two versions agree.
struct StructureAgreement {
  std::string name;
  std::string source;   ///< "propagated", "re-contoured"
  double dice = -1.0;   ///< propagated vs re-contoured; -1 when only one version exists
  bool flagged = false; ///< dice < threshold
};

struct FuseResult {
  core::StructureSet structures;
  std::vector<StructureAgreement> agreement;
};

/// Fuses structures on the new CT's grid: targets (and `keep_propagated`) from the propagated
/// set, OARs from the re-contoured set where it has them (else propagated), re-contoured-only
/// structures added. Each structure present in both sets gets their Dice; below the threshold
/// its description says "review: propagated vs re-contoured Dice 0.55 < 0.70". Throws
/// InvalidInput when the sets are on different grids.
FuseResult fuse_structures(const core::StructureSet& propagated, const core::StructureSet& recontoured,
                           const FuseOptions& options = {});

/// Dice coefficient of two masks on the same grid (1 when both are empty).
double dice(const core::Image& a, const core::Image& b);

}  // namespace isoline::adaptive
