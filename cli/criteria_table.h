// The clinical-criteria table printed by `isoline dvh`, `plan` and `run`.
#pragma once

#include <vector>

#include "isoline/planning/criteria.h"

namespace isoline::cli {

/// Prints one line per criterion (value and PASS/FAIL, or "not evaluated") and a summary
/// line to stdout; returns the number of evaluated criteria that fail.
int print_criteria_table(const std::vector<planning::CriterionResult>& results);

}  // namespace isoline::cli
