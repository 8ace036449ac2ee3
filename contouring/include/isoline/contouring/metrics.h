// Contour agreement metrics: Dice, 95th-percentile Hausdorff distance and surface Dice,
// on masks sharing one grid (distances in mm, anisotropic spacing handled).
#pragma once

#include <string>
#include <vector>

#include "isoline/contouring/model.h"
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
  /// Reference plausibility (set by flag_references): empty = plausible or not checked, else
  /// why the reference looks wrong, e.g. "reference 484.0 cc, outside the usual 4.9-73.1 cc".
  std::string ref_flag;
  /// The prediction was on another grid than the reference, resampled onto it (nearest neighbour).
  bool resampled = false;
};

struct EvalSummary {
  std::string structure;
  int cases = 0;
  /// HD95 mean and median over the cases where it is defined (both masks non-empty; NaN when
  /// none is); `hd95_undefined` counts the others (a structure missed or predicted where the
  /// reference has none), which Dice and surface Dice score as 0.
  double dice_mean = 0, dice_median = 0, hd95_mean = 0, hd95_median = 0, sdice_mean = 0;
  int hd95_undefined = 0;
  /// Cases whose reference is flagged (EvalRow::ref_flag non-empty), and the mean Dice over the
  /// other cases (NaN when every case is flagged). dice_mean stays the mean over all cases.
  int flagged = 0;
  double dice_mean_plausible = 0;
};

struct EvalResult {
  std::vector<EvalRow> rows;
  /// One line each, for the caller to show: case folders not scored (on one side only, or
  /// without masks), predictions resampled from another grid (once per case), predicted or
  /// requested structures that no reference matches (with a match differing only in case).
  std::vector<std::string> warnings;
};

/// Evaluates predicted mask directories against reference ones. `pred_dir` and `ref_dir`
/// are either one case each (image files "<Structure>.nii.gz" inside), or directories of
/// cases (sub-directories matched by name). Images of a case folder that are not masks
/// (core::not_mask_names: ct, dose, possible_dose_mask, ...) are ignored. `structures` empty =
/// every structure predicted in any case. Structures without a reference file are skipped; a
/// missing prediction where a reference exists counts as an empty mask.
/// Every mask must hold only 0 and 1 (core::read_mask: a probability or label map is refused,
/// InvalidInput). A prediction on another grid is resampled onto the reference's (nearest
/// neighbour, with a warning); one that does not overlap it in space at all is refused
/// (InvalidInput naming both files: a different patient or frame of reference).
EvalResult evaluate_contours(const std::string& pred_dir, const std::string& ref_dir,
                             const std::vector<std::string>& structures, double tolerance_mm = 4.0,
                             const core::Progress& progress = {});

/// evaluate_contours without the warnings (its rows).
std::vector<EvalRow> evaluate_dirs(const std::string& pred_dir, const std::string& ref_dir,
                                   const std::vector<std::string>& structures,
                                   double tolerance_mm = 4.0, const core::Progress& progress = {});

/// Reference plausibility check: the reference volume against the structure's usual range in
/// the training data (model card "expected" volume_cc, training 1st-99th percentile widened).
/// Returns "" when the volume lies inside it or the card does not know the structure, else a
/// one-line reason ("reference 4.6 cc, outside the usual 5.4-79.7 cc"). It flags references that
/// are clearly not the whole organ (another structure, a partial contour); it does not judge
/// the reference's shape or position.
std::string reference_flag(const std::string& structure, double ref_cc, const ModelCard& card);

/// Sets `ref_flag` of every row (reference_flag of its structure and reference volume);
/// returns how many rows are flagged.
int flag_references(std::vector<EvalRow>& rows, const ModelCard& card);

/// Per-structure means/medians over cases, in the order structures first appear.
std::vector<EvalSummary> summarize(const std::vector<EvalRow>& rows);

/// A self-contained SVG picture of the Dice of every case per structure (the order of
/// summarize): one dot per case (hover: case id and Dice), a flagged reference as a red x,
/// the mean as a black bar with its value. For `isoline eval contours --plot`.
std::string dice_plot_svg(const std::vector<EvalRow>& rows, const std::string& title = {});

}  // namespace isoline::contouring
