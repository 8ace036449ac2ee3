// Dose accumulation for adaptive replanning: a dose computed on a new CT (a later fraction)
// warped back onto the planning CT, summed over fractions, and compared with the planned dose
// through DVH metrics and clinical criteria.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "isoline/adaptive/registration.h"
#include "isoline/core/structure.h"
#include "isoline/planning/criteria.h"
#include "isoline/planning/dvh.h"

namespace isoline::adaptive {

/// Inverse of `field` sampled on `grid`: for each point p of `grid`, v(p) such that
/// q = p + v(p) satisfies q + u(q) = p (fixed-point iteration q <- p - u(q), trilinear u;
/// where that stalls, in strongly compressed tissue, Newton steps with the field's Jacobian
/// finish it; the iterate with the smallest residual is kept).
/// With `field` = new_to_planning (on the new CT grid), the result maps planning points to
/// new-CT points and warps new-CT images onto `grid`. The iteration samples u beyond the
/// field's grid at the nearest grid point, so `grid` may lie partly or wholly outside the
/// field's grid (a new CT in other coordinates); points whose preimage stays outside keep
/// the last iterate. `max_residual_mm` (optional) receives the largest
/// |q + u(q) - p| over points that converged inside the field's grid; `residual_mm`
/// (optional) that residual per point of `grid` (offset order), -1 where the preimage lies
/// outside the field's grid.
DisplacementField invert_field(const DisplacementField& field, const core::Geometry& grid,
                               int iterations = 30, double* max_residual_mm = nullptr,
                               std::vector<float>* residual_mm = nullptr);

/// Dose on a new CT (Gy, any grid) warped onto the field's grid (the planning dose grid):
/// D_plan(p) = D_new(p + v(p)), linear interpolation, 0 outside.
core::Image warp_dose(const core::Image& dose, const DisplacementField& planning_to_new);

/// Sum of per-fraction doses mapped onto one planning grid.
class DoseAccumulator {
 public:
  explicit DoseAccumulator(const core::Geometry& planning_grid);
  /// Adds `weight` times a dose already on the planning grid (e.g. the planned dose of
  /// fractions delivered on the planning anatomy). Throws InvalidInput off-grid.
  void add(const core::Image& dose_on_planning_grid, double weight = 1.0);
  /// Adds `weight` times a dose computed on a new CT, warped back through `planning_to_new`
  /// (a field whose geometry is the planning grid; see invert_field).
  void add_warped(const core::Image& dose_on_new_ct, const DisplacementField& planning_to_new,
                  double weight = 1.0);
  double fractions() const { return weight_; }
  /// Accumulated dose (float32 Gy) on the planning grid.
  const core::Image& total() const { return total_; }

 private:
  core::Image total_;
  double weight_ = 0.0;
};

/// DVHs and criteria of one dose on one structure set (any grids).
struct DoseEvaluation {
  std::string label;  ///< "planned", "unadapted", "adapted", "accumulated", ...
  std::map<std::string, planning::Dvh> dvhs;
  std::vector<planning::CriterionResult> criteria;
};

DoseEvaluation evaluate_dose(const std::string& label, const core::Image& dose,
                             const core::StructureSet& structures,
                             const std::vector<planning::Criterion>& criteria);

/// One row of a side-by-side comparison: a metric of a structure under several doses.
struct ComparisonRow {
  std::string structure;
  std::string metric;            ///< "Dmean", "D95%", "D0.1cc", ... (planning::evaluate_metric)
  std::string criterion;         ///< description when the row is a criterion, else ""
  bool at_most = true;
  double limit = 0.0;
  std::vector<double> values;    ///< one per evaluation; NaN when the structure is missing
  std::vector<int> pass;         ///< one per evaluation: 1 pass, 0 fail, -1 not a criterion/missing
};

/// Rows for every criterion (in order), then Dmean / D95% / D2% (targets) or Dmean / D0.1cc
/// (others) of every structure, for evaluations given side by side (same criteria).
std::vector<ComparisonRow> compare(const std::vector<const DoseEvaluation*>& evaluations,
                                   const std::vector<planning::Criterion>& criteria);

}  // namespace isoline::adaptive
