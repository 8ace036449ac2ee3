#include "criteria_table.h"

#include <cmath>
#include <cstdio>
#include <string>

namespace isoline::cli {

int print_criteria_table(const std::vector<planning::CriterionResult>& results, const char* hint) {
  int failed = 0;
  // Sub-voxel values (plan/run): the same metric as a TPS computes it from RS + RD, with its
  // own verdict; a row where the two verdicts differ is marked.
  const bool fine = planning::count_subvoxel(results) > 0;
  int differ = 0, lost = 0;  // lost: PASS at voxel centres, FAIL as a TPS computes it
  for (const auto& r : results) {
    differ += r.verdict_differs();
    lost += r.verdict_differs() && r.pass;
  }
  if (fine)
    std::printf("%-40s %9s  %-6s %9s  %s\n", "criterion", "value", "result", "sub-voxel", "result (as a TPS computes it)");
  else
    std::printf("%-40s %9s  %s\n", "criterion", "value", "result");
  for (const auto& r : results) {
    if (!r.evaluated) {
      std::printf("%-40s %9s  not evaluated (structure missing)\n", r.criterion.description.c_str(), "-");
      continue;
    }
    failed += !r.pass;
    if (fine && std::isfinite(r.value_subvoxel))
      std::printf("%-40s %9.2f  %-6s %9.2f  %s%s\n", r.criterion.description.c_str(), r.value, r.pass ? "PASS" : "FAIL",
                  r.value_subvoxel, r.pass_subvoxel ? "PASS" : "FAIL",
                  r.verdict_differs() ? (r.pass ? "  <-- differs: PASS at voxel centres, FAIL as a TPS computes it"
                                                : "  <-- differs: FAIL at voxel centres, PASS as a TPS computes it")
                                      : "");
    else
      std::printf("%-40s %9.2f  %s\n", r.criterion.description.c_str(), r.value, r.pass ? "PASS" : "FAIL");
  }
  std::size_t evaluated = 0;
  for (const auto& r : results) evaluated += r.evaluated;
  std::string at = fine ? " at voxel centres" : "";
  if (evaluated == results.size())
    std::printf("%d of %zu criteria passed%s", planning::count_passed(results), results.size(), at.c_str());
  else
    std::printf("%d of %zu evaluated criteria passed%s (%zu not evaluated: structure missing)",
                planning::count_passed(results), evaluated, at.c_str(), results.size() - evaluated);
  if (fine)
    std::printf("; %d of %d on the sub-voxel DVH, as a TPS computes it from RS.dcm + RD.dcm%s",
                planning::count_passed_subvoxel(results), planning::count_subvoxel(results),
                differ ? "" : " (same verdicts)");
  std::printf("\n");
  if (differ)
    std::printf("the verdicts differ for %d criteria (marked <--): PASS/FAIL above and the exit status use the "
                "voxel-centre value\n",
                differ);
  if (hint && lost) std::printf("%s\n", hint);
  return failed;
}

}  // namespace isoline::cli
