#include "isoline/planning/criteria.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include <nlohmann/json.hpp>

#include "isoline/core/error.h"
#include "isoline/core/text.h"

namespace isoline::planning {

using core::fail;
using core::InvalidInput;

namespace {

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// Parses the number in "D<x><suffix>" / "V<x><suffix>".
double number_between(const std::string& metric, std::size_t prefix, std::size_t suffix) {
  const std::string num = metric.substr(prefix, metric.size() - prefix - suffix);
  char* end = nullptr;
  const double v = std::strtod(num.c_str(), &end);
  if (num.empty() || *end != '\0' || !std::isfinite(v) || v < 0)
    fail<InvalidInput>("evaluate metric", metric, "cannot read the number in the metric name");
  return v;
}

std::string format_limit(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

bool is_dose_metric(const std::string& m) { return !m.empty() && m[0] == 'D'; }

double evaluate_metric(const Dvh& dvh, const std::string& m) {
  if (m == "Dmean" || m == "mean") return dvh.mean_gy();
  if (m == "Dmax" || m == "max") return dvh.max_gy();
  if (m == "Dmin" || m == "min") return dvh.min_gy();
  if (m.size() > 2 && m[0] == 'D' && ends_with(m, "cc")) return dvh.dose_at_cc(number_between(m, 1, 2));
  if (m.size() > 2 && m[0] == 'D' && ends_with(m, "%"))
    return dvh.dose_at_percent(number_between(m, 1, 1));  // refuses a percentage outside 0..100
  if (m.size() > 5 && m[0] == 'V' && ends_with(m, "Gy_cc")) return dvh.volume_cc_at_dose(number_between(m, 1, 5));
  if (m.size() > 3 && m[0] == 'V' && ends_with(m, "Gy")) return 100.0 * dvh.volume_fraction_at_dose(number_between(m, 1, 2));
  fail<InvalidInput>("evaluate metric", m,
                     "unknown metric (use Dmean, Dmax, Dmin, D<x>%, D<x>cc, V<x>Gy, V<x>Gy_cc)");
}

std::vector<Criterion> load_criteria(const std::string& path) {
  const char* op = "read criteria";
  std::ifstream in(path);
  if (!in) fail<core::IoError>(op, path, "cannot open file");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    fail<core::IoError>(op, path, "not valid JSON: " + core::json_error(e.what()));
  }
  if (!j.is_object() || !j.contains("criteria") || !j["criteria"].is_array())
    fail<InvalidInput>(op, path, "expected an object with a \"criteria\" array");
  std::vector<Criterion> out;
  int index = 0;
  for (const auto& e : j["criteria"]) {
    const std::string where = path + " criterion " + std::to_string(index++);
    try {
      Criterion c;
      c.structure = e.at("structure").get<std::string>();
      c.metric = e.at("metric").get<std::string>();
      if (e.contains("max")) {
        c.at_most = true;
        c.limit = e["max"].get<double>();
      } else if (e.contains("min")) {
        c.at_most = false;
        c.limit = e["min"].get<double>();
      } else if (e.contains("max_percent_of") || e.contains("min_percent_of")) {
        c.at_most = e.contains("max_percent_of");
        const double pct = e[c.at_most ? "max_percent_of" : "min_percent_of"].get<double>();
        c.limit = pct / 100.0 * e.at("prescription_gy").get<double>();
      } else {
        fail<InvalidInput>(op, where, "needs one of max, min, max_percent_of, min_percent_of");
      }
      Dvh probe("probe", {1.f}, {1.0});
      evaluate_metric(probe, c.metric);  // validates the metric name
      const std::string unit = is_dose_metric(c.metric) ? " Gy" : (ends_with(c.metric, "_cc") ? " cc" : " %");
      c.description = e.value("description", c.structure + " " + c.metric + (c.at_most ? " <= " : " >= ") +
                                                 format_limit(c.limit) + unit);
      out.push_back(std::move(c));
    } catch (const nlohmann::json::exception& ex) {
      fail<InvalidInput>(op, where, ex.what());
    }
  }
  return out;
}

std::vector<CriterionResult> evaluate_criteria(const std::vector<Criterion>& criteria,
                                               const std::map<std::string, Dvh>& dvhs) {
  std::vector<CriterionResult> out;
  for (const auto& c : criteria) {
    CriterionResult r;
    r.criterion = c;
    auto it = dvhs.find(c.structure);
    if (it != dvhs.end() && !it->second.empty()) {
      r.evaluated = true;
      r.value = evaluate_metric(it->second, c.metric);
      r.pass = passes(c, r.value);
    }
    out.push_back(r);
  }
  return out;
}

bool passes(const Criterion& c, double value) { return c.at_most ? value <= c.limit : value >= c.limit; }

int count_passed(const std::vector<CriterionResult>& results) {
  int n = 0;
  for (const auto& r : results) n += r.evaluated && r.pass;
  return n;
}

int count_passed_subvoxel(const std::vector<CriterionResult>& results) {
  int n = 0;
  for (const auto& r : results) n += r.evaluated && std::isfinite(r.value_subvoxel) && r.pass_subvoxel;
  return n;
}

int count_subvoxel(const std::vector<CriterionResult>& results) {
  int n = 0;
  for (const auto& r : results) n += r.evaluated && std::isfinite(r.value_subvoxel);
  return n;
}

std::string verdict_difference_warning(const std::vector<CriterionResult>& results) {
  std::string list;
  for (const auto& r : results) {
    if (!r.verdict_differs()) continue;
    const std::string& m = r.criterion.metric;
    const std::string unit = is_dose_metric(m) ? " Gy" : (ends_with(m, "_cc") ? " cc" : " %");
    char buf[160];
    std::snprintf(buf, sizeof buf, " (%s at voxel centres %.2f%s, %s sub-voxel %.2f%s)", r.pass ? "PASS" : "FAIL",
                  r.value, unit.c_str(), r.pass_subvoxel ? "PASS" : "FAIL", r.value_subvoxel, unit.c_str());
    list += (list.empty() ? "" : "; ") + r.criterion.description + buf;
  }
  if (list.empty()) return {};
  return "criteria judged differently on the sub-voxel DVH, as a planning system computes it from RS.dcm + "
         "RD.dcm: " + list;
}

}  // namespace isoline::planning
