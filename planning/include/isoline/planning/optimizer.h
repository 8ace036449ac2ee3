// Fluence-map optimisation over a beamlet influence matrix.
//
// Minimises a weighted sum of quadratic penalties on voxel doses d = A x (A: voxels x
// beamlets, Gy per unit weight) over non-negative beamlet weights x, plus a smoothness
// penalty between neighbouring beamlets of a fluence map:
//   MinDose / MaxDose / UniformDose  per-voxel one- or two-sided penalties
//   MaxMean                          on the structure's mean dose
//   MaxDvh  (at most v % above D)    dose-volume penalty on the voxels between D and D_v
//   MinDvh  (at least v % above D)   the converse, for target coverage (e.g. D95)
//   FallOff                          max dose decreasing linearly with distance from a target
// Solved by spectral projected gradient (Barzilai-Borwein steps, non-monotone line search),
// deterministic for a given thread count.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "isoline/core/device.h"
#include "isoline/core/progress.h"

namespace isoline::planning {

/// Compressed sparse rows (float32): rows are voxels, columns beamlets.
struct SparseMatrix {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::vector<std::int64_t> row_ptr;  ///< rows + 1 entries
  std::vector<std::int32_t> col;
  std::vector<float> val;

  std::size_t nnz() const { return val.size(); }
  /// Throws InvalidInput when the arrays are inconsistent.
  void validate(const char* what) const;
  /// y = A x
  void multiply(const std::vector<float>& x, std::vector<float>* y) const;
  /// out = A^T g (g per row), accumulated in double.
  void multiply_transpose(const std::vector<double>& g, std::vector<double>* out) const;
};

enum class ObjectiveType { MinDose, MaxDose, UniformDose, MaxMean, MaxDvh, MinDvh, FallOff };

struct Objective {
  std::string structure;
  ObjectiveType type = ObjectiveType::MaxDose;
  double dose_gy = 0.0;         ///< reference dose (FallOff: dose at distance 0)
  double volume_percent = 0.0;  ///< MaxDvh / MinDvh: the v in "v % of the volume"
  double weight = 1.0;
  double falloff_mm = 0.0;      ///< FallOff: distance over which the limit drops to low_dose_gy
  double low_dose_gy = 0.0;     ///< FallOff: limit beyond falloff_mm
};

/// The voxels (rows of A) of one structure; FallOff objectives also need each voxel's
/// distance to the target in mm.
struct VoxelSet {
  std::string name;
  std::vector<std::int64_t> rows;
  std::vector<float> distance_mm;  ///< empty, or one value per row
  double voxel_volume_cc = 0.0;
};

struct FluenceProblem {
  const SparseMatrix* influence = nullptr;
  std::vector<VoxelSet> structures;
  std::vector<Objective> objectives;
  /// Pairs of neighbouring beamlets (same beam, adjacent in the fluence map).
  std::vector<std::pair<std::int32_t, std::int32_t>> neighbours;
  double smoothness_weight = 0.0;
  /// Structure and dose used to scale the start point (mean dose = prescription).
  std::string normalisation_structure;
  double normalisation_dose_gy = 0.0;
  /// Optional fixed dose per row added to A x (e.g. the difference between a full dose
  /// calculation and the truncated influence matrix: "dose correction" re-optimisation).
  std::vector<float> offset_dose;
  /// Optional start point (one weight per beamlet); empty = uniform weights scaled by the
  /// normalisation structure.
  std::vector<float> initial_weights;
};

struct OptimizerOptions {
  int max_iterations = 300;
  double relative_tolerance = 1e-6;  ///< stop when the objective improves less than this over 10 iterations
  /// Where the products with the influence matrix run (the optimiser's main cost); CUDA keeps
  /// the matrix and its transpose on the GPU. DeviceError when CUDA is not usable here.
  core::Device device = core::Device::CPU;
};

struct OptimizerResult {
  std::vector<float> weights;
  std::vector<double> objective_history;  ///< one value per iteration
  int iterations = 0;
  bool converged = false;
};

/// Evaluates the objective value for beamlet weights x (for tests and reports).
double objective_value(const FluenceProblem& problem, const std::vector<float>& x);

OptimizerResult optimize_fluence(const FluenceProblem& problem, const OptimizerOptions& options = {},
                                 const core::Progress& progress = {});

}  // namespace isoline::planning
