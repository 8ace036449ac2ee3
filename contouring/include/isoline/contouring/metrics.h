// Contour agreement metrics: Dice, 95th-percentile Hausdorff distance and surface Dice,
// on masks sharing one grid (distances in mm, anisotropic spacing handled).
#pragma once

#include <string>
#include <vector>

#include "isoline/core/image.h"
#include "isoline/core/progress.h"

namespace isoline::contouring {

struct MaskAgreement {
  double dice = 0;
  /// 95th percentile of surface distances, max of the two directions (mm); infinity when
  /// exactly one mask is empty, 0 when both are.
  double hd95_mm = 0;
  /// Fraction of both surfaces within `tolerance_mm` of the other surface.
  double surface_dice = 0;
  double ref_cc = 0, pred_cc = 0;
};

/// Compares two uint8 masks on the same grid (InvalidInput otherwise). Surfaces are the
/// boundary voxels of each mask (6-connected boundary); distances are from boundary voxel
/// centres to the other mask's boundary voxel centres (ITK Maurer distance maps).
MaskAgreement compare_masks(const core::Image& pred, const core::Image& ref,
                            double tolerance_mm = 4.0);

struct EvalRow {
  std::string case_id;  ///< sub-directory name ("" for a single case)
  std::string structure;
  MaskAgreement m;
};

struct EvalSummary {
  std::string structure;
  int cases = 0;
  /// HD95 mean and median over the cases where it is defined (both masks non-empty; NaN when
  /// none is); `hd95_undefined` counts the others (a structure missed or predicted where the
  /// reference has none), which Dice and surface Dice score as 0.
  double dice_mean = 0, dice_median = 0, hd95_mean = 0, hd95_median = 0, sdice_mean = 0;
  int hd95_undefined = 0;
};

/// Evaluates predicted mask directories against reference ones. `pred_dir` and `ref_dir`
/// are either one case each (image files "<Structure>.nii.gz" inside), or directories of
/// cases (sub-directories matched by name). Structures without a reference file are
/// skipped; a missing prediction where a reference exists counts as an empty mask.
/// `structures` empty = every reference structure found.
std::vector<EvalRow> evaluate_dirs(const std::string& pred_dir, const std::string& ref_dir,
                                   const std::vector<std::string>& structures,
                                   double tolerance_mm = 4.0, const core::Progress& progress = {});

/// Per-structure means/medians over cases, in the order structures first appear.
std::vector<EvalSummary> summarize(const std::vector<EvalRow>& rows);

}  // namespace isoline::contouring
