// Dose-volume histograms and dose metrics.
//
// The DVH of a structure is built from dose samples at the structure's voxel centres (the
// mask may be on a finer grid than the dose, e.g. rasterised from RT-STRUCT contours), each
// voxel optionally split into supersample^3 sub-voxels, with the dose interpolated
// trilinearly in patient coordinates. Dose-at-volume figures are exact weighted quantiles
// of those samples (no binning error); bins are only used for plotting/export.
#pragma once

#include <string>
#include <vector>

#include "isoline/core/image.h"

namespace isoline::planning {

struct DvhOptions {
  /// Sub-voxel sampling of each mask voxel per axis (1 = voxel centres only). 0 = automatic:
  /// a mask voxel larger than a dose voxel is split so that each sample is no larger than a
  /// dose voxel (at most 4 per axis); masks as fine as the dose are sampled at voxel centres.
  int supersample = 0;
  /// Bin width for the exported cumulative/differential histograms (Gy).
  double bin_width_gy = 0.05;
};

class Dvh {
 public:
  Dvh() = default;
  /// From dose samples (Gy) with their volumes (cm^3).
  Dvh(std::string name, std::vector<float> dose_gy, std::vector<double> volume_cc);

  const std::string& name() const { return name_; }
  double volume_cc() const { return total_cc_; }
  bool empty() const { return dose_.empty(); }
  double min_gy() const;
  double max_gy() const;
  double mean_gy() const { return mean_; }

  /// Minimum dose to the hottest `percent` % of the volume (D95 = dose_at_percent(95)).
  double dose_at_percent(double percent) const;
  /// Minimum dose to the hottest `cc` cm^3 (D0.1cc, D0.03cc). Volumes beyond the structure
  /// give its minimum dose.
  double dose_at_cc(double cc) const;
  /// Fraction (0..1) of the volume receiving at least `gy`.
  double volume_fraction_at_dose(double gy) const;
  double volume_cc_at_dose(double gy) const { return volume_fraction_at_dose(gy) * total_cc_; }

  /// Cumulative DVH: dose bin lower edges (Gy) and the volume fraction receiving at least
  /// each edge.
  void cumulative(double bin_width_gy, std::vector<double>* dose_gy, std::vector<double>* fraction) const;
  /// Differential DVH on the same bins: bin lower edges (Gy) and the volume (cm^3) whose dose
  /// lies in [edge, edge + bin_width). Consecutive cumulative values differ by exactly these
  /// volumes divided by volume_cc().
  void differential(double bin_width_gy, std::vector<double>* dose_gy, std::vector<double>* volume_cc) const;

 private:
  std::string name_;
  std::vector<float> dose_;        // sorted descending
  std::vector<double> cum_cc_;     // cumulative volume of samples [0..i]
  double total_cc_ = 0.0;
  double mean_ = 0.0;
};

/// DVH of `mask` (uint8, any grid) in `dose` (float32 Gy). Mask voxels outside the dose grid
/// count with dose 0. Throws InvalidInput for wrong pixel types.
Dvh compute_dvh(const core::Image& dose, const core::Image& mask, const std::string& name,
                const DvhOptions& options = {});

/// The fraction (0..1) of `mask`'s voxels whose centres lie more than half a voxel outside
/// `dose_grid` (where compute_dvh counts dose 0); 0 for an empty mask.
double fraction_outside(const core::Geometry& dose_grid, const core::Image& mask);

/// The grid to rasterise RT-STRUCT contours on for DVHs, from a grid fitted to the contour
/// planes (one slice per plane, e.g. rtstruct::contour_grid): the same in-plane pixels
/// offset by 1/pi pixel (contours traced along CT voxel edges have their vertices on round
/// coordinates; pixel centres there would make every boundary a tie of the even-odd rule and
/// shift the ROI by half a pixel); each plane stands for the slab of +-half a spacing
/// around it. `bounded_by_outer_planes`: the grid (two slices per plane spacing) spans
/// exactly the first to the last plane instead of half a spacing beyond them. Use it when an External ROI (BODY) is contoured on every
/// image slice: a TPS's image volume ends at its first and last slice centres, and the BODY
/// would otherwise gain half a slice at both ends (1 % of its volume on the Eclipse prostate
/// phantom, see docs/validation.md).
core::Geometry dvh_raster_grid(const core::Geometry& plane_grid, bool bounded_by_outer_planes);

/// Homogeneity index (ICRU 83): (D2 - D98) / D50.
double homogeneity_index(const Dvh& target);
/// Paddick conformity index TV_PIV^2 / (TV * PIV) for prescription `rx_gy`, with PIV the
/// volume of the whole dose grid receiving at least rx_gy.
double conformity_index(const core::Image& dose, const core::Image& target_mask, double rx_gy,
                        const DvhOptions& options = {});

}  // namespace isoline::planning
