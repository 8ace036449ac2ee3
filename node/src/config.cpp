// Node configuration: JSON file, destinations, validation.
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "isoline/core/error.h"
#include "isoline/core/text.h"
#include "isoline/node/config.h"

namespace isoline::node {

std::string Destination::to_string() const { return aet + "@" + host + ":" + std::to_string(port); }

Destination parse_destination(const std::string& text) {
  const auto at = text.find('@');
  const auto colon = text.rfind(':');
  if (at == std::string::npos || colon == std::string::npos || colon < at || at == 0 ||
      colon == at + 1 || colon + 1 == text.size())
    core::fail<core::InvalidInput>("destination", text, "expected AET@host:port");
  Destination d;
  d.aet = text.substr(0, at);
  d.host = text.substr(at + 1, colon - at - 1);
  try {
    std::size_t used = 0;
    d.port = std::stoi(text.substr(colon + 1), &used);
    if (used != text.size() - colon - 1) throw std::invalid_argument("port");
  } catch (const std::exception&) {
    core::fail<core::InvalidInput>("destination", text, "port is not a number");
  }
  if (d.port < 1 || d.port > 65535) core::fail<core::InvalidInput>("destination", text, "port out of range");
  if (d.aet.size() > 16) core::fail<core::InvalidInput>("destination", text, "AE title longer than 16 characters");
  return d;
}

NodeConfig load_config(const std::string& file, NodeConfig c) {
  std::ifstream in(file);
  if (!in) core::fail<core::IoError>("node config", file, "cannot open");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    core::fail<core::InvalidInput>("node config", file, "not valid JSON: " + core::json_error(e.what()));
  }
  if (!j.is_object()) core::fail<core::InvalidInput>("node config", file, "expected a JSON object");
  try {
    for (auto& [key, v] : j.items()) {
      if (key == "port") c.port = v.get<int>();
      else if (key == "aet") c.aet = v.get<std::string>();
      else if (key == "allowed_calling_aets") c.allowed_calling_aets = v.get<std::vector<std::string>>();
      else if (key == "destinations") {
        c.destinations.clear();
        for (const auto& d : v) c.destinations.push_back(parse_destination(d.get<std::string>()));
      } else if (key == "work_dir") c.work_dir = v.get<std::string>();
      else if (key == "quiet_seconds") c.quiet_seconds = v.get<double>();
      else if (key == "complete_on_release") c.complete_on_release = v.get<bool>();
      else if (key == "release_settle_seconds") c.release_settle_seconds = v.get<double>();
      else if (key == "min_slices") c.min_slices = v.get<int>();
      else if (key == "hold_partial_series") c.hold_partial_series = v.get<bool>();
      else if (key == "job_kind") c.job_kind = v.get<std::string>();
      else if (key == "deidentify") c.deidentify = v.get<bool>();
      else if (key == "max_send_attempts") c.max_send_attempts = v.get<int>();
      else if (key == "retry_initial_seconds") c.retry_initial_seconds = v.get<double>();
      else if (key == "retry_max_seconds") c.retry_max_seconds = v.get<double>();
      else if (key == "max_process_attempts") c.max_process_attempts = v.get<int>();
      else if (key == "structures") c.structures = v.get<std::vector<std::string>>();
      else if (key == "model_card") c.model_card = v.get<std::string>();
      else if (key == "device") c.device = v.get<std::string>();
      else if (key == "debug") c.debug = v.get<bool>();
      else if (key == "log_file") c.log_file = v.get<std::string>();
      else if (key == "run_max_iterations") c.run_max_iterations = v.get<int>();
      else if (key == "max_associations") c.max_associations = v.get<int>();
      else if (key == "acse_timeout") c.acse_timeout = v.get<int>();
      else if (key == "dimse_timeout") c.dimse_timeout = v.get<int>();
      else core::fail<core::InvalidInput>("node config", file, "unknown key '" + key + "'");
    }
  } catch (const nlohmann::json::exception& e) {
    core::fail<core::InvalidInput>("node config", file, std::string("wrong value type: ") + e.what());
  }
  return c;
}

void validate(const NodeConfig& c) {
  const char* op = "node config";
  if (c.port < 1 || c.port > 65535) core::fail<core::InvalidInput>(op, "port", "out of range 1-65535");
  if (c.aet.empty() || c.aet.size() > 16) core::fail<core::InvalidInput>(op, "aet", "must be 1-16 characters");
  for (const auto& a : c.allowed_calling_aets)
    if (a.empty() || a.size() > 16) core::fail<core::InvalidInput>(op, "allowed_calling_aets", "'" + a + "' is not an AE title");
  if (!(c.quiet_seconds > 0)) core::fail<core::InvalidInput>(op, "quiet_seconds", "must be > 0");
  if (!(c.release_settle_seconds >= 0) || c.release_settle_seconds > 3600)
    core::fail<core::InvalidInput>(op, "release_settle_seconds", "must be 0-3600");
  if (c.min_slices < 0) core::fail<core::InvalidInput>(op, "min_slices", "must be >= 0");
  if (c.max_send_attempts < 1) core::fail<core::InvalidInput>(op, "max_send_attempts", "must be >= 1");
  if (c.max_process_attempts < 1) core::fail<core::InvalidInput>(op, "max_process_attempts", "must be >= 1");
  if (!(c.retry_initial_seconds > 0) || c.retry_max_seconds < c.retry_initial_seconds)
    core::fail<core::InvalidInput>(op, "retry_initial_seconds", "must be > 0 and <= retry_max_seconds");
  if (c.work_dir.empty()) core::fail<core::InvalidInput>(op, "work_dir", "is empty");
  if (c.job_kind != "contour" && c.job_kind != "run")
    core::fail<core::InvalidInput>(op, "job_kind", "'" + c.job_kind + "' is not one of contour, run");
  if (c.run_max_iterations < 0) core::fail<core::InvalidInput>(op, "run_max_iterations", "must be >= 0");
  if (c.max_associations < 1 || c.max_associations > 64)
    core::fail<core::InvalidInput>(op, "max_associations", "must be 1-64");
  if (c.acse_timeout < 1) core::fail<core::InvalidInput>(op, "acse_timeout", "must be >= 1");
  if (c.dimse_timeout < 1) core::fail<core::InvalidInput>(op, "dimse_timeout", "must be >= 1");
  if (c.device != "cpu" && c.device != "cuda")
    core::fail<core::InvalidInput>(op, "device", "'" + c.device + "' is not cpu or cuda");
}

std::string queue_path(const std::string& work_dir) {
  return (std::filesystem::path(work_dir) / "queue.sqlite").string();
}

}  // namespace isoline::node
