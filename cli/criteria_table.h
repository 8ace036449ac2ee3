// The clinical-criteria table printed by `isoline dvh`, `plan` and `run`.
#pragma once

#include <vector>

#include "isoline/planning/criteria.h"
#include "isoline/planning/plan.h"

namespace isoline::cli {

/// Prints one line per criterion (value and PASS/FAIL, or "not evaluated") and a summary
/// line to stdout; returns the number of evaluated criteria that fail. `hint` (plan, run: a
/// plan made without edge samples) is printed after the table when a criterion passes at
/// voxel centres and fails as a planning system computes it.
int print_criteria_table(const std::vector<planning::CriterionResult>& results, const char* hint = nullptr);

/// The hint of `plan` and `run` for a template without edge samples (e.g. `--template hn`).
inline constexpr const char* kEdgeSamplesHint =
    "a plan made for the DVH a planning system computes (edge samples): --template hn_tps, or \"edge_weight\" "
    "in your template (docs/planning.md)";

/// kEdgeSamplesHint for a template without edge samples, else none.
inline const char* edge_samples_hint(const planning::PlanTemplate& tpl) {
  return tpl.target_rules.edge_weight > 0 ? nullptr : kEdgeSamplesHint;
}

}  // namespace isoline::cli
