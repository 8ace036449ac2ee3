#include "criteria_table.h"

#include <cmath>
#include <cstdio>

namespace isoline::cli {

int print_criteria_table(const std::vector<planning::CriterionResult>& results) {
  int failed = 0;
  bool fine = false;  // sub-voxel values (plan/run): shown beside, as a TPS would see them
  for (const auto& r : results) fine = fine || std::isfinite(r.value_subvoxel);
  if (fine)
    std::printf("%-40s %9s  %-6s %9s\n", "criterion", "value", "result", "sub-voxel");
  else
    std::printf("%-40s %9s  %s\n", "criterion", "value", "result");
  for (const auto& r : results) {
    if (!r.evaluated) {
      std::printf("%-40s %9s  not evaluated (structure missing)\n", r.criterion.description.c_str(), "-");
      continue;
    }
    failed += !r.pass;
    if (fine && std::isfinite(r.value_subvoxel))
      std::printf("%-40s %9.2f  %-6s %9.2f\n", r.criterion.description.c_str(), r.value, r.pass ? "PASS" : "FAIL",
                  r.value_subvoxel);
    else
      std::printf("%-40s %9.2f  %s\n", r.criterion.description.c_str(), r.value, r.pass ? "PASS" : "FAIL");
  }
  std::size_t evaluated = 0;
  for (const auto& r : results) evaluated += r.evaluated;
  if (evaluated == results.size())
    std::printf("%d of %zu criteria passed\n", planning::count_passed(results), results.size());
  else
    std::printf("%d of %zu evaluated criteria passed (%zu not evaluated: structure missing)\n",
                planning::count_passed(results), evaluated, results.size() - evaluated);
  return failed;
}

}  // namespace isoline::cli
