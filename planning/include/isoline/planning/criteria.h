// Clinical criteria on DVH metrics, e.g. "Brainstem D0.1cc <= 50 Gy", "PTV70 D99% >= 95 % of
// 70 Gy", loaded from JSON (planning/criteria/hn.json is the head-and-neck set).
#pragma once

#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "isoline/planning/dvh.h"

namespace isoline::planning {

/// Evaluates a metric name on a DVH: "Dmean", "Dmax", "Dmin", "D<x>%" (e.g. D95%, D99%),
/// "D<x>cc" (D0.1cc), "V<x>Gy" (percent of volume receiving >= x Gy), "V<x>Gy_cc".
/// Doses in Gy. Throws InvalidInput for an unknown metric.
double evaluate_metric(const Dvh& dvh, const std::string& metric);
/// True for dose metrics (Gy), false for volume metrics.
bool is_dose_metric(const std::string& metric);

/// The largest plausible prescription, in Gy over all fractions: above it a dose was most
/// likely given in cGy (7000 for 70 Gy). Plan templates and `isoline dvh` refuse more.
inline constexpr double kMaxPrescriptionGy = 150.0;

struct Criterion {
  std::string structure;
  std::string metric;
  bool at_most = true;       ///< value <= limit (else value >= limit)
  double limit = 0.0;        ///< in the metric's unit (Gy, or % / cc for volume metrics)
  std::string description;   ///< human-readable, e.g. "Brainstem D0.1cc <= 50 Gy"
};

struct CriterionResult {
  Criterion criterion;
  bool evaluated = false;  ///< false when the structure is missing
  double value = 0.0;
  bool pass = false;
  /// The same metric on a DVH with 4 x 4 x 4 sub-samples per mask voxel and trilinear dose:
  /// about what a planning system computing DVHs from the RT-STRUCT and RT-DOSE shows (at a
  /// steep edge lower coverage and higher maxima than `value`, which samples the dose at mask
  /// voxel centres as OpenKBP does). NaN when not computed (evaluate_dose computes it).
  double value_subvoxel = std::numeric_limits<double>::quiet_NaN();
  /// The verdict on `value_subvoxel` (false when it is not computed). `pass` stays the verdict
  /// on `value`: the normalisation and the validation figures use the voxel-centre DVH.
  bool pass_subvoxel = false;
  /// True when the sub-voxel value was computed and gives the other verdict: PASS at the voxel
  /// centres but FAIL as a planning system computes it from RS + RD, or the reverse.
  bool verdict_differs() const {
    return evaluated && std::isfinite(value_subvoxel) && pass_subvoxel != pass;
  }
};

/// Reads a criteria file:
/// {"name": "...", "criteria": [{"structure": "Brainstem", "metric": "D0.1cc", "max": 50},
///   {"structure": "PTV70", "metric": "D99%", "min_percent_of": 95, "prescription_gy": 70}]}
/// Keys: "max" / "min" in the metric's unit, or "max_percent_of" / "min_percent_of" with
/// "prescription_gy". Throws IoError / InvalidInput naming the file and entry.
std::vector<Criterion> load_criteria(const std::string& path);

std::vector<CriterionResult> evaluate_criteria(const std::vector<Criterion>& criteria,
                                               const std::map<std::string, Dvh>& dvhs);

/// Whether `value` meets the criterion (<= or >= its limit).
bool passes(const Criterion& criterion, double value);

/// Number of evaluated criteria that pass.
int count_passed(const std::vector<CriterionResult>& results);
/// Number of evaluated criteria that pass on their sub-voxel value (those with one).
int count_passed_subvoxel(const std::vector<CriterionResult>& results);
/// Number of criteria with a sub-voxel value (evaluate_dose computes one for each evaluated).
int count_subvoxel(const std::vector<CriterionResult>& results);

/// One warning line naming the criteria whose sub-voxel verdict differs from the voxel-centre
/// one (CriterionResult::verdict_differs), e.g. "criteria judged differently on the sub-voxel
/// DVH, as a planning system computes it from RS.dcm + RD.dcm: PTV56 D99% >= 53.2 Gy (PASS at
/// voxel centres 56.06 Gy, FAIL sub-voxel 49.23 Gy); ..."; empty when none differs.
std::string verdict_difference_warning(const std::vector<CriterionResult>& results);

}  // namespace isoline::planning
