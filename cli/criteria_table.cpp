#include "criteria_table.h"

#include <cstdio>

namespace isoline::cli {

int print_criteria_table(const std::vector<planning::CriterionResult>& results) {
  int failed = 0;
  std::printf("%-40s %9s  %s\n", "criterion", "value", "result");
  for (const auto& r : results) {
    if (!r.evaluated) {
      std::printf("%-40s %9s  not evaluated (structure missing)\n", r.criterion.description.c_str(), "-");
      continue;
    }
    failed += !r.pass;
    std::printf("%-40s %9.2f  %s\n", r.criterion.description.c_str(), r.value, r.pass ? "PASS" : "FAIL");
  }
  std::printf("%d of %zu criteria passed\n", planning::count_passed(results), results.size());
  return failed;
}

}  // namespace isoline::cli
