#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "isoline/contouring/model.h"
#include "isoline/core/error.h"
#include "isoline/core/text.h"

#ifndef ISOLINE_CONTOURING_MODEL_DIR
#define ISOLINE_CONTOURING_MODEL_DIR ""
#endif

namespace fs = std::filesystem;

namespace isoline::contouring {

std::string default_model_card_path() {
  if (const char* env = std::getenv("ISOLINE_MODEL"); env && *env) return env;
  return std::string(ISOLINE_CONTOURING_MODEL_DIR) + "/hn_oar_ptv_2p5d.json";
}

ModelCard load_model_card(const std::string& path) {
  const char* op = "read model card";
  std::ifstream in(path);
  if (!in) core::fail<core::IoError>(op, path, "cannot open (no contouring model installed?)");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    core::fail<core::InvalidInput>(op, path, "not valid JSON: " + core::json_error(e.what()));
  }
  ModelCard c;
  c.card_path = path;
  try {
    c.name = j.value("name", "");
    c.version = j.value("version", "");
    c.structures = j.at("structures").get<std::vector<std::string>>();
    const auto& inp = j.at("input");
    auto sp = inp.at("spacing_mm").get<std::vector<double>>();
    if (sp.size() != 3) core::fail<core::InvalidInput>(op, path, "input.spacing_mm needs 3 values");
    c.spacing = {sp[0], sp[1], sp[2]};
    const std::string kind = inp.value("kind", "slices");
    if (kind != "slices" && kind != "volume")
      core::fail<core::InvalidInput>(op, path,
                                     "input.kind '" + kind + "' is not known (slices, volume)");
    c.volume = kind == "volume";
    if (c.volume) {
      c.context = inp.value("context_slices_each_side", 0);  // not used by a volume network
      c.window_slices = inp.value("window_slices", c.window_slices);
      if (c.window_slices < 2 * ModelCard::kWindowOverlap)
        core::fail<core::InvalidInput>(op, path,
                                       "input.window_slices must be at least " +
                                           std::to_string(2 * ModelCard::kWindowOverlap) +
                                           " (twice the overlap of consecutive windows)");
    } else {
      c.context = inp.at("context_slices_each_side").get<int>();
    }
    auto clip = inp.at("intensity").at("clip_hu").get<std::vector<double>>();
    c.hu_min = clip.at(0);
    c.hu_max = clip.at(1);
    c.hu_scale = 1.0 / inp.at("intensity").at("scale").get<double>();
    c.outside_hu = inp.at("intensity").value("outside_hu", c.hu_min);
    c.multiple_of = inp.value("multiple_of", 16);
    c.body_threshold_hu = inp.value("body_threshold_hu", -500.0);
    c.threshold = j.value("threshold", 0.5);
    c.scope = j.value("scope", "");
    fs::path file = j.at("file").get<std::string>();
    c.model_path = file.is_absolute() ? file.string() : (fs::path(path).parent_path() / file).string();
    if (j.contains("expected")) {
      for (auto& [name, e] : j["expected"].items()) {
        ExpectedRange r;
        auto v = e.at("volume_cc").get<std::vector<double>>();
        auto dx = e.at("dx_mm").get<std::vector<double>>();
        auto dy = e.at("dy_mm").get<std::vector<double>>();
        r.volume_cc_min = v.at(0);
        r.volume_cc_max = v.at(1);
        r.dx_min = dx.at(0);
        r.dx_max = dx.at(1);
        r.dy_min = dy.at(0);
        r.dy_max = dy.at(1);
        r.known = true;
        c.expected[name] = r;
      }
    }
    if (j.contains("quality_flags")) {
      const auto& qf = j["quality_flags"];
      for (auto& [key, value] : qf.items())
        if (key != "low_confidence_below" && key != "min_kept_fraction" && key != "source")
          core::fail<core::InvalidInput>(op, path, "quality_flags: unknown entry '" + key +
                                                       "' (low_confidence_below, min_kept_fraction, source)");
      c.low_confidence = qf.value("low_confidence_below", c.low_confidence);
      c.min_kept_fraction = qf.value("min_kept_fraction", c.min_kept_fraction);
      if (!(c.low_confidence >= 0 && c.low_confidence <= 1) ||
          !(c.min_kept_fraction >= 0 && c.min_kept_fraction <= 1))
        core::fail<core::InvalidInput>(op, path, "quality_flags: values must lie between 0 and 1");
    }
    if (j.contains("post_processing")) {
      for (auto& [name, e] : j["post_processing"].items()) {
        if (std::find(c.structures.begin(), c.structures.end(), name) == c.structures.end())
          core::fail<core::InvalidInput>(
              op, path, "post_processing names '" + name + "', not one of the structures");
        static const std::vector<std::string> kKnown = {"bone_min_hu", "bone_margin_mm", "trim_inferior_mm",
                                                        "trim_superior_mm", "threshold"};
        for (auto& [key, value] : e.items())
          if (std::find(kKnown.begin(), kKnown.end(), key) == kKnown.end()) {
            std::string known;
            for (const auto& k : kKnown) known += (known.empty() ? "" : ", ") + k;
            core::fail<core::InvalidInput>(op, path, "post_processing." + name +
                                                         ": unknown entry '" + key + "' (" + known + ")");
          }
        if (e.contains("bone_min_hu")) {
          BoneRefinement b;
          b.min_hu = e.at("bone_min_hu").get<double>();
          b.margin_mm = e.value("bone_margin_mm", b.margin_mm);
          if (!(b.margin_mm >= 0))
            core::fail<core::InvalidInput>(
                op, path, "post_processing." + name + ".bone_margin_mm must be >= 0");
          c.bone_refinement[name] = b;
        }
        if (e.contains("threshold")) {
          const double t = e.at("threshold").get<double>();
          if (!(t > 0 && t < 1))
            core::fail<core::InvalidInput>(
                op, path, "post_processing." + name + ".threshold must lie between 0 and 1");
          c.thresholds[name] = t;
        }
        if (e.contains("trim_inferior_mm") || e.contains("trim_superior_mm")) {
          ExtentTrim t;
          t.inferior_mm = e.value("trim_inferior_mm", 0.0);
          t.superior_mm = e.value("trim_superior_mm", 0.0);
          if (!(t.inferior_mm >= 0 && t.superior_mm >= 0))
            core::fail<core::InvalidInput>(
                op, path, "post_processing." + name + ": trim lengths must be >= 0 mm");
          c.extent_trim[name] = t;
        }
      }
    }
  } catch (const nlohmann::json::exception& e) {
    core::fail<core::InvalidInput>(op, path, std::string("missing or malformed field: ") + e.what());
  }
  if (c.structures.empty()) core::fail<core::InvalidInput>(op, path, "no structures listed");
  if (!(c.spacing[0] > 0 && c.spacing[1] > 0 && c.spacing[2] > 0) || c.context < 0 || c.hu_scale <= 0)
    core::fail<core::InvalidInput>(op, path, "invalid spacing, context or intensity scale");
  return c;
}

}  // namespace isoline::contouring
