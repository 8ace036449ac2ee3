// Image registration for adaptive replanning: rigid (optionally on bony anatomy) followed by
// deformable (multi-resolution diffeomorphic demons), through ITK.
//
// Convention (as ITK and elastix): the registration maps FIXED points to MOVING points,
//   T(x) = x + u(x),  x on the fixed grid,
// and a moving image is warped onto the fixed grid by I_warped(x) = I_moving(T(x)).
#pragma once

#include <array>
#include <string>
#include <vector>

#include "isoline/core/geometry.h"
#include "isoline/core/image.h"
#include "isoline/core/progress.h"

namespace isoline::adaptive {

/// Displacement field u on a grid, in mm (LPS), three floats per voxel, interleaved
/// (x, y, z), voxels i fastest. numpy view: (nz, ny, nx, 3).
struct DisplacementField {
  core::Geometry geometry;
  std::vector<float> data;

  bool empty() const { return data.empty(); }
  /// u at voxel (i, j, k).
  core::Vec3 at(std::int64_t i, std::int64_t j, std::int64_t k) const;
  /// u at a world point (trilinear; zero outside the grid).
  core::Vec3 sample(const core::Vec3& world) const;
  /// T(p) = p + u(p).
  core::Vec3 transform_point(const core::Vec3& world) const;
  static DisplacementField zeros(const core::Geometry& g);
};

/// Rigid transform mapping fixed points to moving points: y = R (x - c) + c + t.
struct RigidTransform {
  core::Mat3 rotation = core::kIdentity3;
  core::Vec3 center{0, 0, 0};
  core::Vec3 translation{0, 0, 0};
  core::Vec3 apply(const core::Vec3& x) const;
};

struct RigidOptions {
  /// Register on bone only (fixed-image mask HU > bone_hu, dilated), for H&N / spine.
  bool bony = false;
  double bone_hu = 200.0;
  int levels = 3;
  int iterations = 200;  ///< per level
  /// Shrink factor of the finest level (levels shrink by 2 from it: 8, 4, 2 by default). The
  /// deformable step refines the alignment anyway; a full-resolution rigid level costs more
  /// than the rest of the rigid step.
  int finest_shrink = 2;
  /// Fraction of voxels sampled by the metric at each level.
  double sampling = 0.1;
  /// Seed of the metric's random sampling: the result is deterministic for a given seed.
  /// Benchmarks repeat the registration over several seeds (docs/validation.md).
  unsigned seed = 20261125;
  /// Try several starts and continue from the best (see RegistrationResult::rigid_start): the
  /// images' centres aligned, the images as they lie in patient space, their bodies' centres of
  /// mass aligned, and, along an axis where their lengths differ by more than 20 mm, their lower
  /// or upper ends aligned (starts within 5 mm of an earlier one left out). Each runs the
  /// coarsest level; the starts and those results are judged by the metric on every voxel of a
  /// finer level, and the finer levels run from the best. false: the centres aligned only (what
  /// the rigid step did before session 24), which leaves a new CT that covers less of the patient
  /// half the missing length off at the start.
  bool multi_start = true;
};

struct DeformableOptions {
  int levels = 3;                             ///< multi-resolution levels (shrink 4, 2, 1)
  std::vector<int> iterations = {100, 80, 50};  ///< per level, coarse to fine
  /// Gaussian regularisation of the field (mm, converted to voxels of the finest spacing).
  /// 2.5 mm: lung-pair TRE 1.51 mm and OpenKBP synthetic-field error 0.21 mm
  /// (docs/validation.md); 1.5 mm left fields noisy (1.6 mm error on a synthetic test).
  double field_sigma_mm = 2.5;
  /// ... but never less than this many voxels of the demons grid. On a coarse grid 2.5 mm is
  /// under one voxel (OpenKBP: 0.83 of 3 mm), too little to hold the field where the CT is
  /// uniform: pt_201 registered to itself moved up to 11.7 mm in the brain (mean 0.44 mm in the
  /// body) after a 0.07 mm rigid step; with 1.5 voxels 3.7 mm (mean 0.03 mm), and the error on
  /// known synthetic fields of pt_201-203 fell from 0.32 to 0.21 mm. The lung pair (1.37 mm
  /// voxels: 1.8) is unchanged. docs/validation.md, "Adaptive".
  double min_field_sigma_voxels = 1.5;
  double max_step_voxels = 2.0;
  /// Noise-aware demons: intensity differences below this many times the noise that the fixed
  /// (new) CT has beyond the moving (planning) CT's, sqrt(max(0, s_f^2 - s_m^2)), each s
  /// estimated in soft tissue (-150 to 150 HU) from voxel-to-neighbour differences, move nothing
  /// (ITK's intensity-difference threshold). The demons' force is normalised, so pure noise
  /// pushed as hard as anatomy: pt_201 registered to itself with 15 / 30 HU of noise added
  /// drifted 2.2 / 3.7 mm p95 (6.3 / 8.6 mm at most) in the body, now 0.08 / 0.18 mm (0.4 /
  /// 0.5 mm). CTs of equal noise (the lung pair: 12.1 and 13.0 HU) are unchanged. 0 = off.
  double noise_threshold_factor = 1.5;
  /// Gaussian smoothing of each demons update field (mm; 0 = off): "fluid" regularisation,
  /// which lets the field follow larger motion than field smoothing alone.
  double update_sigma_mm = 0.0;
  /// The demons run on a grid no finer than this (mm per axis; the field is then interpolated
  /// onto the fixed grid). 0 = the fixed grid.
  double max_resolution_mm = 0.0;
  /// Voxel budget of the finest demons grid (0 = none): a larger fixed grid is coarsened,
  /// finest axes first, to at most this many voxels. Time grows linearly with the voxels: the
  /// lung pair's 2.3 M-voxel grid takes 38 s on 2 cores, so 3 M keeps a pair under the 60 s
  /// goal. Lung pair (1.37 mm voxels, mean TRE over 5 seeds of the rigid step's sampling):
  /// native grid 1.487 mm; 1.5 mm grid (the default before) 1.501 mm; 2.0 mm 1.63 mm.
  std::int64_t max_voxels = 3'000'000;
  /// Histogram matching of the moving image to the fixed one (ITK, threshold at the mean
  /// intensity) runs only when at least this fraction of the fixed voxels is above -500 HU
  /// (0 = always, > 1 = never). It helps between breathing states (lung-pair TRE 1.59 ->
  /// 1.49 mm) but on a CT that is mostly air (OpenKBP 128^3 crops: 2-7 % body) the mean lies
  /// in the air and the matching shifted soft tissue enough for spurious deformations
  /// (pt_203: 4.4 mm mean error on a known field, 0.4 mm without matching).
  double histogram_matching_min_body_fraction = 0.25;
  /// Intensities are clamped to this window (HU) before matching.
  double window_low = -1000.0, window_high = 1500.0;
};

struct RegistrationOptions {
  bool rigid = true;
  bool deformable = true;
  RigidOptions rigid_options;
  DeformableOptions deformable_options;
};

struct RegistrationResult {
  RigidTransform rigid;
  /// The start the rigid step continued from ("centres aligned", "as scanned", "body centres of
  /// mass aligned", "lower ends aligned in z", ...: RigidOptions::multi_start); empty without
  /// the rigid step.
  std::string rigid_start;
  /// Total displacement (rigid and deformable) on the fixed grid.
  DisplacementField field;
  /// Jacobian determinant of T: its minimum (<= 0 means folding) and the folding fraction.
  double min_jacobian = 1.0;
  double folding_fraction = 0.0;
  double seconds = 0.0;
};

/// Registers `moving` to `fixed` (both CT in HU, any grids and orientations).
/// Throws InvalidInput for empty images, or for images that do not overlap when the rigid step
/// (one of whose starts has their centres aligned) is off.
RegistrationResult register_images(const core::Image& fixed, const core::Image& moving,
                                   const RegistrationOptions& options = {},
                                   const core::Progress& progress = {});

/// The grid the finest demons level runs on for a fixed image on `fixed`: the fixed grid with
/// axes finer than max_resolution_mm coarsened to it, then, while it has more than max_voxels
/// voxels, its finest axes coarsened further (same extent and orientation).
core::Geometry demons_grid(const core::Geometry& fixed, const DeformableOptions& options);

/// Warps `moving` onto the field's grid: out(x) = moving(x + u(x)). Float32/int16 images use
/// linear interpolation; uint8 masks are interpolated linearly and thresholded at 0.5.
core::Image warp(const core::Image& moving, const DisplacementField& field,
                 double default_value = 0.0);

/// Jacobian determinant of T(x) = x + u(x) per voxel (float32).
core::Image jacobian_determinant(const DisplacementField& field);

/// Reads/writes a displacement field as a 3-component vector image (NIfTI .nii.gz with
/// vector intent, or .nrrd/.mha), as elastix/ITK/plastimatch do.
DisplacementField read_field(const std::string& path);
void write_field(const DisplacementField& field, const std::string& path);

/// Reads an elastix/transformix point file ("point" or "index" header, count, rows of
/// x y z in world mm; "index" rows are converted with `grid` when given).
std::vector<core::Vec3> read_points(const std::string& path, const core::Geometry* grid = nullptr);

/// Target registration error (mm) of each landmark pair: |T(fixed_i) - moving_i|.
std::vector<double> target_registration_errors(const DisplacementField& field,
                                               const std::vector<core::Vec3>& fixed_points,
                                               const std::vector<core::Vec3>& moving_points);

}  // namespace isoline::adaptive
