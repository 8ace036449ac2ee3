// Server-side structure edits, all through core::mask_ops (the code the Python API uses).
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "isoline/core/error.h"
#include "isoline/core/mask_ops.h"
#include "isoline/ui/server.h"

namespace isoline::ui {

namespace {

constexpr const char* kOp = "edit";

double number(const nlohmann::json& j, const char* key, double fallback, double lo, double hi) {
  if (!j.contains(key)) return fallback;
  const auto& v = j.at(key);
  if (!v.is_number())
    core::fail<core::InvalidInput>(kOp, key, "must be a number, got " + v.dump());
  const double d = v.get<double>();
  if (!std::isfinite(d) || d < lo || d > hi) {
    std::ostringstream s;
    s << "must be between " << lo << " and " << hi << ", got " << v.dump();
    core::fail<core::InvalidInput>(kOp, key, s.str());
  }
  return d;
}

std::string fmt(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

}  // namespace

core::Image apply_edit(const core::Image& mask, const std::string& edit_json,
                       const std::function<core::Image(const std::string&)>& other,
                       std::string* action) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(edit_json);
  } catch (const std::exception& e) {
    core::fail<core::InvalidInput>(kOp, "payload", std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object()) core::fail<core::InvalidInput>(kOp, "payload", "must be a JSON object");
  if (!j.contains("op") || !j["op"].is_string())
    core::fail<core::InvalidInput>(kOp, "payload", "missing \"op\" (margin, boolean, smooth, remove_islands, keep_largest, fill_holes)");
  const std::string op = j["op"];
  std::string act;
  core::Image out;
  if (op == "margin") {
    const std::string mode = j.value("mode", std::string("grow"));
    if (mode != "grow" && mode != "shrink")
      core::fail<core::InvalidInput>(kOp, "mode", "must be \"grow\" or \"shrink\", got \"" + mode + "\"");
    const double mm = number(j, "mm", 0.0, 0.0, 100.0);
    core::Margin m;
    m.left = number(j, "left", mm, 0.0, 100.0);
    m.right = number(j, "right", mm, 0.0, 100.0);
    m.anterior = number(j, "anterior", mm, 0.0, 100.0);
    m.posterior = number(j, "posterior", mm, 0.0, 100.0);
    m.superior = number(j, "superior", mm, 0.0, 100.0);
    m.inferior = number(j, "inferior", mm, 0.0, 100.0);
    if (m.is_zero()) core::fail<core::InvalidInput>(kOp, "margin", "all margins are zero (give \"mm\" or per-direction values)");
    m.validate("margin");
    out = mode == "grow" ? core::expand(mask, m) : core::shrink(mask, m);
    const bool uniform = m.left == m.right && m.left == m.anterior && m.left == m.posterior &&
                         m.left == m.superior && m.left == m.inferior;
    act = std::string("margin ") + (mode == "grow" ? "+" : "-") +
          (uniform ? fmt(m.left) + " mm"
                   : "L" + fmt(m.left) + " R" + fmt(m.right) + " A" + fmt(m.anterior) + " P" +
                         fmt(m.posterior) + " S" + fmt(m.superior) + " I" + fmt(m.inferior) + " mm");
  } else if (op == "boolean") {
    const std::string operation = j.value("operation", std::string());
    if (operation != "union" && operation != "intersect" && operation != "subtract")
      core::fail<core::InvalidInput>(kOp, "operation", "must be union, intersect or subtract, got \"" + operation + "\"");
    if (!j.contains("other") || !j["other"].is_string())
      core::fail<core::InvalidInput>(kOp, "other", "missing the name of the other structure");
    const std::string name = j["other"];
    core::Image b = other(name);
    out = operation == "union" ? core::mask_union(mask, b)
          : operation == "intersect" ? core::mask_intersect(mask, b)
                                     : core::mask_subtract(mask, b);
    act = operation + " " + name;
  } else if (op == "smooth") {
    const double sigma = number(j, "sigma_mm", 1.0, 0.1, 20.0);
    out = core::smooth(mask, sigma);
    act = "smooth " + fmt(sigma) + " mm";
  } else if (op == "remove_islands") {
    const double cc = number(j, "min_cc", 0.5, 0.0, 1e6);
    out = core::remove_islands(mask, cc);
    act = "remove islands < " + fmt(cc) + " cc";
  } else if (op == "keep_largest") {
    const double n = number(j, "count", 1, 1, 1000);
    out = core::keep_largest_components(mask, static_cast<int>(n));
    act = "keep largest " + fmt(n);
  } else if (op == "fill_holes") {
    const bool per_slice = j.value("per_slice", false);
    out = core::fill_holes(mask, per_slice);
    act = per_slice ? "fill holes per slice" : "fill holes";
  } else {
    core::fail<core::InvalidInput>(kOp, op, "unknown op (margin, boolean, smooth, remove_islands, keep_largest, fill_holes)");
  }
  if (action) *action = act;
  return out;
}

}  // namespace isoline::ui
