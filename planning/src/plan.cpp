// Achievable-dose planning (see plan.h): template -> beams -> influence matrix -> fluence
// optimisation -> final CCCS dose -> normalisation -> DVHs and criteria.
#include "isoline/planning/plan.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "isoline/core/atomic_file.h"
#include "isoline/core/error.h"
#include "isoline/core/text.h"
#include "isoline/core/mask_ops.h"

namespace isoline::planning {

namespace fs = std::filesystem;
using json = nlohmann::json;
using core::fail;
using core::InvalidInput;
using core::IoError;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double num(const json& o, const char* key, double fallback, const std::string& ctx) {
  if (!o.contains(key)) return fallback;
  if (!o[key].is_number())
    fail<InvalidInput>("read plan template", ctx + "." + key, "expected a number");
  return o[key].get<double>();
}

ObjectiveType parse_type(const std::string& t, const std::string& ctx) {
  static const std::map<std::string, ObjectiveType> names = {
      {"min", ObjectiveType::MinDose},         {"max", ObjectiveType::MaxDose},
      {"uniform", ObjectiveType::UniformDose}, {"max_mean", ObjectiveType::MaxMean},
      {"max_dvh", ObjectiveType::MaxDvh},      {"min_dvh", ObjectiveType::MinDvh}};
  auto it = names.find(t);
  if (it == names.end())
    fail<InvalidInput>(
        "read plan template", ctx + ".type",
        "unknown objective type \"" + t + "\" (min, max, uniform, max_mean, max_dvh, min_dvh)");
  return it->second;
}

std::string resolve_template(const std::string& name) {
  const bool is_path = name.find('/') != std::string::npos ||
                       (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0);
  std::vector<fs::path> candidates;
  if (is_path) {
    candidates.push_back(name);
  } else {
    if (const char* env = std::getenv("ISOLINE_TEMPLATE_DIR"))
      candidates.push_back(fs::path(env) / (name + ".json"));
    candidates.push_back(fs::path(ISOLINE_TEMPLATE_DIR) / (name + ".json"));
  }
  for (const auto& c : candidates) {
    std::error_code ec;
    if (fs::is_regular_file(c, ec)) return c.string();
  }
  fail<IoError>("read plan template", name,
                is_path ? "no such file"
                        : "no such template (looked in $ISOLINE_TEMPLATE_DIR and " +
                              std::string(ISOLINE_TEMPLATE_DIR) + ")");
}

// Float copy of a mask resampled onto `grid` (fractions 0..1).
core::Image fraction_on(const core::Image& mask, const core::Geometry& grid) {
  return core::resample(mask.cast(core::PixelType::Float32), grid, core::Interpolation::Linear,
                        0.0);
}

// Voxels of a structure on the dose grid: fraction >= `threshold` (targets: any overlap, so
// that the dose interpolated at the target's edge is covered too), or > 0 for structures too
// small to own a whole dose voxel.
std::vector<std::int64_t> voxels_of(const core::Image& fraction, float threshold = 0.5f) {
  std::vector<std::int64_t> out;
  const float* f = fraction.data<float>();
  for (std::size_t v = 0; v < fraction.num_voxels(); ++v)
    if (f[v] >= threshold) out.push_back(static_cast<std::int64_t>(v));
  if (out.empty())
    for (std::size_t v = 0; v < fraction.num_voxels(); ++v)
      if (f[v] > 0.05f) out.push_back(static_cast<std::int64_t>(v));
  return out;
}

// Distance (mm) of every voxel to the non-zero voxels of `mask` (0 inside).
std::vector<float> distance_to(const core::Image& mask) {
  const core::Image d = core::distance_map(mask);
  return std::vector<float>(d.data<float>(), d.data<float>() + d.num_voxels());
}

core::Image mask_from(const core::Geometry& g, const std::vector<std::int64_t>& voxels) {
  core::Image m(g, core::PixelType::UInt8);
  std::uint8_t* p = m.data<std::uint8_t>();
  for (auto v : voxels) p[v] = 1;
  return m;
}

// Attenuators outside the body that the beams pass through on their way in: a couch, a head
// rest, a board. The CT's regions above -500 HU (`dense`) outside the body, of at least 5 cc
// (not noise), and of those the voxels that lie within the body's box on two axes (in front of
// the body along the third). The planning grid reaches them so that the planned beams are
// attenuated as the recomputation on the whole CT attenuates them.
core::Image attenuators_beside(const core::Image& dense, const core::Image& body) {
  const auto box = core::bounding_box(body);
  core::Image out(dense.geometry(), core::PixelType::UInt8);
  if (!box) return out;
  const std::uint8_t* bm = body.data<std::uint8_t>();
  const std::uint8_t* dm = dense.data<std::uint8_t>();
  std::uint8_t* o = out.data<std::uint8_t>();
  bool any = false;
  for (std::size_t v = 0, n = out.num_voxels(); v < n; ++v)
    if (!bm[v] && dm[v]) o[v] = 1, any = true;
  if (!any) return out;
  out = core::remove_islands(out, 5.0);
  o = out.data<std::uint8_t>();
  const auto& b = *box;
  const auto& sz = dense.geometry().size;
  for (std::int64_t k = 0; k < sz[2]; ++k)
    for (std::int64_t j = 0; j < sz[1]; ++j)
      for (std::int64_t i = 0; i < sz[0]; ++i) {
        std::uint8_t& x = o[(k * sz[1] + j) * sz[0] + i];
        if (!x) continue;
        const int inside = (i >= b[0] && i <= b[3]) + (j >= b[1] && j <= b[4]) + (k >= b[2] && k <= b[5]);
        if (inside < 2) x = 0;
      }
  return out;
}

// The planning grid: the CT box cropped to the body and the attenuators beside it (+ 10 mm),
// axes finer than 3/4 of the template's grid size coarsened to it.
core::Geometry dose_grid(const core::Geometry& ct, const core::Image& body, const core::Image& attenuators,
                         double grid_mm) {
  auto box = core::bounding_box(body);
  std::array<std::int64_t, 6> b =
      box ? *box
          : std::array<std::int64_t, 6>{0, 0, 0, ct.size[0] - 1, ct.size[1] - 1, ct.size[2] - 1};
  if (box)
    if (auto a = core::bounding_box(attenuators))
      for (int i = 0; i < 3; ++i) b[i] = std::min(b[i], (*a)[i]), b[3 + i] = std::max(b[3 + i], (*a)[3 + i]);
  core::Geometry g = ct;
  std::array<double, 3> start{};  // CT index of the centre of the new voxel (0, 0, 0)
  for (int a = 0; a < 3; ++a) {
    const double margin_vox = std::ceil(10.0 / ct.spacing[a]);
    const double lo = std::max(0.0, b[a] - margin_vox);
    const double hi = std::min(double(ct.size[a] - 1), b[3 + a] + margin_vox);
    const double extent = (hi - lo + 1) * ct.spacing[a];
    const double sp = ct.spacing[a] < 0.75 * grid_mm ? grid_mm : ct.spacing[a];
    g.spacing[a] = sp;
    g.size[a] = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(extent / sp - 1e-6)));
    start[a] = lo - 0.5 + 0.5 * sp / ct.spacing[a];
  }
  g.origin = ct.index_to_world({start[0], start[1], start[2]});
  return g;
}

struct Level {
  std::string name;
  double rx = 0;
  std::vector<std::int64_t> voxels;
  std::vector<float> distance;  // per dose-grid voxel
};

}  // namespace

PlanTemplate load_template(const std::string& name_or_path) {
  const std::string path = resolve_template(name_or_path);
  std::ifstream in(path);
  if (!in) fail<IoError>("read plan template", path, "cannot open file");
  std::stringstream ss;
  ss << in.rdbuf();
  json root;
  try {
    root = json::parse(ss.str());
  } catch (const json::exception& e) {
    fail<InvalidInput>("read plan template", path, "not valid JSON: " + core::json_error(e.what()));
  }
  if (!root.is_object())
    fail<InvalidInput>("read plan template", path, "the template must be a JSON object");
  PlanTemplate t;
  t.source = path;
  try {
    t.name = root.value("name", fs::path(path).stem().string());
    t.machine = root.value("machine", t.machine);
    const double fx = num(root, "fractions", t.fractions, path);
    if (!(fx >= 1) || fx != std::floor(fx))
      fail<InvalidInput>("read plan template", path + ".fractions", "must be a whole number >= 1");
    t.fractions = static_cast<int>(fx);
    if (root.contains("gantry_deg")) {
      for (const auto& g : root["gantry_deg"]) t.gantry_deg.push_back(g.get<double>());
    } else {
      const int n = static_cast<int>(num(root, "beams", 9, path));
      if (n < 1 || n > 36)
        fail<InvalidInput>("read plan template", path + ".beams", "needs 1 to 36 beams");
      for (int i = 0; i < n; ++i) t.gantry_deg.push_back(360.0 * i / n);
    }
    if (t.gantry_deg.empty())
      fail<InvalidInput>("read plan template", path + ".gantry_deg", "no beams");
    if (!root.contains("targets") || !root["targets"].is_array() || root["targets"].empty())
      fail<InvalidInput>("read plan template", path, "no \"targets\" (prescription levels)");
    for (std::size_t i = 0; i < root["targets"].size(); ++i) {
      const json& j = root["targets"][i];
      const std::string ctx = path + ".targets[" + std::to_string(i) + "]";
      TargetLevel l;
      l.structure = j.at("structure").get<std::string>();
      l.dose_gy = num(j, "dose_gy", 0, ctx);
      if (!(l.dose_gy > 0)) fail<InvalidInput>("read plan template", ctx, "dose_gy must be > 0");
      // A prescription in cGy (7000 for 70 Gy) would plan 100 times the dose, in "Gy".
      if (l.dose_gy > kMaxPrescriptionGy || l.dose_gy / t.fractions > 25) {
        char what[160];
        std::snprintf(what, sizeof what,
                      "dose_gy %g Gy in %d fractions is not a plausible prescription (cGy given as Gy? 70 Gy is "
                      "70, not 7000)",
                      l.dose_gy, t.fractions);
        fail<InvalidInput>("read plan template", ctx, what);
      }
      t.targets.push_back(l);
    }
    std::sort(t.targets.begin(), t.targets.end(),
              [](const TargetLevel& a, const TargetLevel& b) { return a.dose_gy > b.dose_gy; });
    if (root.contains("target_objectives")) {
      const json& r = root["target_objectives"];
      const std::string ctx = path + ".target_objectives";
      t.target_rules.min_percent = num(r, "min_percent", t.target_rules.min_percent, ctx);
      t.target_rules.min_weight = num(r, "min_weight", t.target_rules.min_weight, ctx);
      t.target_rules.max_percent = num(r, "max_percent", t.target_rules.max_percent, ctx);
      t.target_rules.max_weight = num(r, "max_weight", t.target_rules.max_weight, ctx);
      t.target_rules.d99_percent = num(r, "d99_percent", t.target_rules.d99_percent, ctx);
      t.target_rules.d99_weight = num(r, "d99_weight", t.target_rules.d99_weight, ctx);
      t.target_rules.edge_weight = num(r, "edge_weight", t.target_rules.edge_weight, ctx);
      t.target_rules.oar_edge_weight = num(r, "oar_edge_weight", t.target_rules.oar_edge_weight, ctx);
      if (!(t.target_rules.edge_weight >= 0) || !(t.target_rules.oar_edge_weight >= 0))
        fail<InvalidInput>("read plan template", ctx, "edge_weight and oar_edge_weight must be >= 0");
    }
    if (root.contains("falloff")) {
      const json& r = root["falloff"];
      const std::string ctx = path + ".falloff";
      t.falloff.start_percent = num(r, "start_percent", t.falloff.start_percent, ctx);
      t.falloff.end_percent = num(r, "end_percent", t.falloff.end_percent, ctx);
      t.falloff.distance_mm = num(r, "distance_mm", t.falloff.distance_mm, ctx);
      t.falloff.weight = num(r, "weight", t.falloff.weight, ctx);
      t.falloff.hot_spot_percent = num(r, "hot_spot_percent", t.falloff.hot_spot_percent, ctx);
      t.falloff.hot_spot_weight = num(r, "hot_spot_weight", t.falloff.hot_spot_weight, ctx);
      if (t.falloff.hot_spot_weight > 0 && !(t.falloff.hot_spot_percent >= 100))
        fail<InvalidInput>("read plan template", ctx, "hot_spot_percent must be >= 100 when hot_spot_weight is set");
      if (!(t.falloff.distance_mm > 0))
        fail<InvalidInput>("read plan template", ctx, "distance_mm must be > 0");
    }
    if (root.contains("objectives")) {
      for (std::size_t i = 0; i < root["objectives"].size(); ++i) {
        const json& j = root["objectives"][i];
        const std::string ctx = path + ".objectives[" + std::to_string(i) + "]";
        Objective o;
        o.structure = j.at("structure").get<std::string>();
        o.type = parse_type(j.at("type").get<std::string>(), ctx);
        o.dose_gy = num(j, "dose_gy", 0, ctx);
        o.volume_percent = num(j, "volume_percent", 0, ctx);
        o.weight = num(j, "weight", 1, ctx);
        if (!(o.dose_gy >= 0) || !(o.weight >= 0))
          fail<InvalidInput>("read plan template", ctx, "dose_gy and weight must be >= 0");
        if ((o.type == ObjectiveType::MaxDvh || o.type == ObjectiveType::MinDvh) &&
            !(o.volume_percent > 0 && o.volume_percent < 100))
          fail<InvalidInput>("read plan template", ctx,
                             "dose-volume objectives need 0 < volume_percent < 100");
        t.objectives.push_back(o);
      }
    }
    if (root.contains("criteria")) {
      fs::path c = root["criteria"].get<std::string>();
      if (c.is_relative()) c = fs::path(path).parent_path() / c;
      t.criteria_path = fs::weakly_canonical(c).string();
    }
    t.external = root.value("external", t.external);
    if (root.contains("beamlets")) {
      const json& b = root["beamlets"];
      const std::string ctx = path + ".beamlets";
      t.bixel_mm = num(b, "bixel_mm", t.bixel_mm, ctx);
      t.lateral_cutoff_mm = num(b, "lateral_cutoff_mm", t.lateral_cutoff_mm, ctx);
      t.target_margin_mm = num(b, "target_margin_mm", t.target_margin_mm, ctx);
      if (!(t.bixel_mm >= 1) || !(t.lateral_cutoff_mm > 0) || !(t.target_margin_mm >= 0))
        fail<InvalidInput>("read plan template", ctx,
                           "bixel_mm >= 1, lateral_cutoff_mm > 0, target_margin_mm >= 0");
    }
    t.dose_grid_mm = num(root, "dose_grid_mm", t.dose_grid_mm, path);
    if (!(t.dose_grid_mm >= 1 && t.dose_grid_mm <= 10))
      fail<InvalidInput>("read plan template", path + ".dose_grid_mm", "must lie in [1, 10] mm");
    t.smoothness_weight = num(root, "smoothness_weight", t.smoothness_weight, path);
    t.max_iterations = static_cast<int>(num(root, "max_iterations", t.max_iterations, path));
    t.normalise_percent = num(root, "normalise_percent", t.normalise_percent, path);
    t.correction_passes =
        static_cast<int>(num(root, "correction_passes", t.correction_passes, path));
    t.min_d99_percent = num(root, "min_d99_percent", t.min_d99_percent, path);
    t.max_d99_boost_percent = num(root, "max_d99_boost_percent", t.max_d99_boost_percent, path);
    if (t.max_iterations < 1)
      fail<InvalidInput>("read plan template", path + ".max_iterations", "must be >= 1");
  } catch (const json::exception& e) {
    fail<InvalidInput>("read plan template", path, std::string("malformed template: ") + e.what());
  }
  return t;
}

PlanTemplate template_for(const PlanTemplate& tpl, const core::StructureSet& structures) {
  for (const auto& l : tpl.targets)
    if (const core::Structure* s = structures.find(l.structure); s && s->mask.count_nonzero() > 0)
      return tpl;
  PlanTemplate t = tpl;
  t.targets.clear();
  const double fallback = tpl.targets.empty() ? 60.0 : tpl.targets.front().dose_gy;
  for (const auto& s : structures) {
    if (s.type != core::StructureType::PTV || s.mask.count_nonzero() == 0) continue;
    const double named = core::prescription_from_name(s.name);
    const double dose = named > 0 ? named : fallback;
    t.targets.push_back({s.name, dose});
  }
  std::sort(t.targets.begin(), t.targets.end(),
            [](const TargetLevel& a, const TargetLevel& b) { return a.dose_gy > b.dose_gy; });
  return t;
}

DoseEvaluation evaluate_dose(const core::Image& dose, const core::StructureSet& structures,
                             const std::vector<Criterion>& criteria) {
  DoseEvaluation e;
  for (const auto& s : structures) {
    if (s.mask.count_nonzero() == 0) continue;
    e.dvhs[s.name] = compute_dvh(dose, s.mask, s.name);
  }
  if (!criteria.empty()) e.criteria = evaluate_criteria(criteria, e.dvhs);
  // The criteria again on sub-voxel DVHs (what a TPS shows from RS + RD), for the report.
  std::map<std::string, Dvh> fine;
  for (auto& r : e.criteria) {
    if (!r.evaluated) continue;
    const core::Structure* s = structures.find(r.criterion.structure);
    if (!s) continue;
    auto it = fine.find(s->name);
    if (it == fine.end()) {
      DvhOptions o;
      o.supersample = 4;
      it = fine.emplace(s->name, compute_dvh(dose, s->mask, s->name, o)).first;
    }
    r.value_subvoxel = evaluate_metric(it->second, r.criterion.metric);
    r.pass_subvoxel = passes(r.criterion, r.value_subvoxel);
  }
  return e;
}

PlanResult make_plan(const core::Image& ct, const core::StructureSet& structures,
                     const PlanTemplate& tpl, const PlanOptions& options,
                     const core::Progress& progress) {
  const auto t_start = std::chrono::steady_clock::now();
  core::require_device(options.device, "plan");
  ct.geometry().validate("CT");
  if (!structures.empty() && !structures.geometry().same_grid(ct.geometry()))
    fail<InvalidInput>("plan", "structures", "the structure masks are not on the CT grid");
  // The criteria are read first: a bad file is an error before the optimisation, not after.
  std::vector<Criterion> criteria;
  if (!tpl.criteria_path.empty()) criteria = load_criteria(tpl.criteria_path);
  PlanResult result;
  result.fractions = tpl.fractions;

  // --- Body and the planning grid.
  progress.update(0.0, "preparing");
  core::Image dense(ct.geometry(), core::PixelType::UInt8);  // matter: above -500 HU
  for (std::size_t v = 0; v < dense.num_voxels(); ++v) dense.data<std::uint8_t>()[v] = ct.value(v) > -500.0 ? 1 : 0;
  core::Image body_ct;
  if (const core::Structure* b = structures.find(tpl.external); b && b->mask.count_nonzero() > 0) {
    body_ct = b->mask;
  } else {
    body_ct = core::fill_holes(core::keep_largest_components(dense, 1), true);
    result.warnings.push_back("no \"" + tpl.external +
                              "\" structure: body found from the CT (HU > -500)");
  }
  const core::Geometry g = dose_grid(ct.geometry(), body_ct, attenuators_beside(dense, body_ct), tpl.dose_grid_mm);
  const std::size_t nvox = g.num_voxels();
  core::Image ct_d =
      core::resample(ct.cast(core::PixelType::Float32), g, core::Interpolation::Linear, -1000.0);
  const std::vector<std::int64_t> body = voxels_of(fraction_on(body_ct, g));

  // --- Prescription levels present in the structure set.
  std::vector<Level> levels;
  for (const auto& l : tpl.targets) {
    const core::Structure* s = structures.find(l.structure);
    if (!s || s->mask.count_nonzero() == 0) {
      result.warnings.push_back("target " + l.structure + " (" +
                                std::to_string(int(std::lround(l.dose_gy))) + " Gy) is " +
                                (s ? "empty (0 cc)" : "not in the structure set") + ": level skipped");
      continue;
    }
    {  // A target outside the body: the wrong body (a couch found as the largest region).
      std::size_t in = 0, all = 0;
      const std::uint8_t* tm = s->mask.data<std::uint8_t>();
      const std::uint8_t* bm = body_ct.data<std::uint8_t>();
      for (std::size_t v = 0, n = s->mask.num_voxels(); v < n; ++v)
        if (tm[v]) {
          ++all;
          in += bm[v] != 0;
        }
      if (all > 0 && in * 2 < all) {
        char what[320];
        std::snprintf(what, sizeof what,
                      "only %.0f %% of it lies inside the body (%s): give a \"%s\" structure (the largest region "
                      "above -500 HU may be a couch or a mask)",
                      100.0 * double(in) / double(all),
                      structures.find(tpl.external) ? "the Body structure" : "found from the CT",
                      tpl.external.c_str());
        fail<InvalidInput>("plan", l.structure, what);
      }
    }
    Level lv;
    lv.name = l.structure;
    lv.rx = l.dose_gy;
    lv.voxels = voxels_of(fraction_on(s->mask, g), 0.05f);
    levels.push_back(std::move(lv));
  }
  if (levels.empty()) {
    // Absent, or there but empty (0 cc: an auto-contour that found nothing, an empty mask):
    // a target that is listed among the structures must not read as missing.
    std::vector<std::string> want, empty, have, non_empty;
    for (const auto& l : tpl.targets) {
      want.push_back(l.structure);
      if (structures.find(l.structure)) empty.push_back(l.structure);
    }
    for (const auto& st : structures) {
      have.push_back(st.name);
      if (st.mask.count_nonzero() > 0) non_empty.push_back(st.name);
    }
    const auto listed = [](const std::vector<std::string>& names) {
      return names.empty() ? std::string("none") : core::join(names, ", ");
    };
    if (!empty.empty())
      fail<InvalidInput>("plan", "structures",
                         "none of the template's targets (" + core::join(want, ", ") + ") has a voxel to plan on: " +
                             core::join(empty, ", ") + (empty.size() == 1 ? " is" : " are") +
                             " present but empty (0 cc); non-empty structures: " + listed(non_empty));
    fail<InvalidInput>("plan", "structures",
                       "none of the template's targets (" + core::join(want, ", ") + ") is present; have: " +
                           listed(have));
  }
  core::Image target_union(g, core::PixelType::UInt8);
  for (const auto& l : levels)
    for (auto v : l.voxels) target_union.data<std::uint8_t>()[v] = 1;
  for (auto& l : levels) l.distance = distance_to(mask_from(g, l.voxels));
  const std::vector<float> dist_any = distance_to(target_union);

  // --- Beams: isocentre at the target centroid, jaws around the target's beam's-eye view.
  dose::Plan plan;
  plan.name = tpl.name;
  plan.machine_path = dose::find_machine(
      tpl.machine, tpl.source.empty() ? "." : fs::path(tpl.source).parent_path().string());
  plan.machine = dose::load_machine(plan.machine_path);
  plan.fractions = tpl.fractions;
  std::array<double, 3> iso{0, 0, 0};
  std::vector<std::array<double, 3>> target_points;
  {
    std::size_t n = 0;
    for (std::int64_t k = 0; k < g.size[2]; ++k)
      for (std::int64_t j = 0; j < g.size[1]; ++j)
        for (std::int64_t i = 0; i < g.size[0]; ++i)
          if (target_union.at<std::uint8_t>(i, j, k)) {
            auto p = g.index_to_world({double(i), double(j), double(k)});
            for (int a = 0; a < 3; ++a) iso[a] += p[a];
            ++n;
            // Corners of the voxel bound the projection.
            for (int c = 0; c < 8; ++c)
              target_points.push_back(
                  g.index_to_world({i + ((c & 1) ? 0.5 : -0.5), j + ((c & 2) ? 0.5 : -0.5),
                                    k + ((c & 4) ? 0.5 : -0.5)}));
          }
    for (int a = 0; a < 3; ++a) iso[a] /= double(n);
  }
  const double bx = tpl.bixel_mm;
  for (std::size_t b = 0; b < tpl.gantry_deg.size(); ++b) {
    dose::Beam beam;
    beam.name = "G" + std::to_string(int(std::lround(tpl.gantry_deg[b])));
    beam.gantry_deg = tpl.gantry_deg[b];
    beam.isocenter_mm = iso;
    double x0 = 1e30, x1 = -1e30, y0 = 1e30, y1 = -1e30;
    for (const auto& p : target_points) {
      double u, v;
      if (!dose::project_to_isocentre_plane(beam, plan.machine, p, &u, &v)) continue;
      x0 = std::min(x0, u), x1 = std::max(x1, u), y0 = std::min(y0, v), y1 = std::max(y1, v);
    }
    const double m = tpl.target_margin_mm;
    const double lim = plan.machine.max_jaw_mm;
    beam.jaw_x1_mm = std::max(-lim, std::floor((x0 - m) / bx) * bx);
    beam.jaw_x2_mm = std::min(lim, std::ceil((x1 + m) / bx) * bx);
    beam.jaw_y1_mm = std::max(-lim, std::floor((y0 - m) / bx) * bx);
    beam.jaw_y2_mm = std::min(lim, std::ceil((y1 + m) / bx) * bx);
    beam.mu = 1.0;
    plan.beams.push_back(beam);
  }

  // --- Influence matrix.
  auto t0 = std::chrono::steady_clock::now();
  dose::InfluenceOptions io;
  io.bixel_mm = bx;
  io.lateral_cutoff_mm = tpl.lateral_cutoff_mm;
  io.target_margin_mm = tpl.target_margin_mm;
  dose::InfluenceMatrix A = dose::compute_influence(ct_d, target_union, plan, io, options.device,
                                                    progress.sub(0.02, 0.55, "influence matrix"));
  result.timing.influence_s = seconds_since(t0);
  if (A.cols == 0) fail<InvalidInput>("plan", "targets", "no beamlet of any beam sees the targets");

  // --- The optimisation problem on a reduced set of rows: targets, OARs, and normal tissue
  // (dense within 15 mm of a target, every 8th voxel beyond).
  t0 = std::chrono::steady_clock::now();
  progress.update(0.56, "objectives");
  std::vector<std::int64_t> row_of(nvox, -1);
  std::vector<std::int64_t> rows;  // dose-grid voxel of each reduced row
  auto use = [&](std::int64_t v) {
    if (row_of[v] < 0) {
      row_of[v] = static_cast<std::int64_t>(rows.size());
      rows.push_back(v);
    }
    return row_of[v];
  };
  FluenceProblem problem;
  const double vcc = g.voxel_volume_mm3() / 1000.0;
  // Edge samples (TargetRules::edge_weight): made once every voxel row is known, as rows after
  // them (`edge_rows`: the two voxels each interpolates between). One set of samples per voxel
  // set, whatever the number of objectives on it.
  struct EdgeRequest {
    std::string name;  ///< "<voxel set> (edges)"
    std::vector<std::int64_t> voxels;
    std::vector<Objective> objectives;
  };
  std::vector<EdgeRequest> edge_requests;
  // `o` on the edge samples of the voxel set `set` (its voxels: `voxels_of_set()`, read only
  // for the set's first edge objective).
  auto add_edge_objective = [&](const std::string& set, Objective o, auto voxels_of_set) {
    o.structure = set + " (edges)";
    auto it = std::find_if(edge_requests.begin(), edge_requests.end(),
                           [&](const EdgeRequest& e) { return e.name == o.structure; });
    if (it == edge_requests.end())
      it = edge_requests.insert(edge_requests.end(), EdgeRequest{o.structure, voxels_of_set(), {}});
    it->objectives.push_back(std::move(o));
  };
  auto add_set = [&](const std::string& name, const std::vector<std::int64_t>& voxels,
                     std::vector<float> distance = {}) {
    VoxelSet s;
    s.name = name;
    s.voxel_volume_cc = vcc;
    for (auto v : voxels) s.rows.push_back(use(v));
    s.distance_mm = std::move(distance);
    problem.structures.push_back(std::move(s));
  };
  const TargetRules& tr = tpl.target_rules;
  std::vector<std::uint8_t> higher(nvox, 0);  // voxels of higher levels (plus 3 mm)
  for (std::size_t li = 0; li < levels.size(); ++li) {
    const Level& l = levels[li];
    // Air inside a target (airway, sinus) receives less dose in a convolution engine than
    // tissue; it stays in the coverage objectives (the criteria count it too), and the
    // reviewer is told how much there is.
    std::size_t air = 0;
    const float* hu = ct_d.data<float>();
    for (auto v : l.voxels) air += hu[v] <= -400.f;
    if (air * vcc >= 0.1) {
      char msg[200];
      std::snprintf(msg, sizeof msg,
                    "%s contains %.1f cc of air (HU < -400): dose there is lower than in tissue",
                    l.name.c_str(), air * vcc);
      result.warnings.push_back(msg);
    }
    add_set(l.name, l.voxels);
    problem.objectives.push_back(
        {l.name, ObjectiveType::MinDose, l.rx * tr.min_percent / 100.0, 0, tr.min_weight});
    if (tr.edge_weight > 0)
      add_edge_objective(l.name, {l.name, ObjectiveType::MinDose, l.rx * tr.min_percent / 100.0, 0, tr.edge_weight},
                         [&] { return l.voxels; });
    if (tr.d99_percent > 0)
      problem.objectives.push_back(
          {l.name, ObjectiveType::MinDvh, l.rx * tr.d99_percent / 100.0, 99.0, tr.d99_weight});
    std::vector<std::int64_t> own;
    for (auto v : l.voxels)
      if (!higher[v]) own.push_back(v);
    if (!own.empty()) {
      const std::string n = l.name + " (own)";
      add_set(n, own);
      problem.objectives.push_back(
          {n, ObjectiveType::MaxDose, l.rx * tr.max_percent / 100.0, 0, tr.max_weight});
    }
    for (std::size_t v = 0; v < nvox; ++v)
      if (l.distance[v] <= 3.0f) higher[v] = 1;
  }
  // OAR objectives from the template. Each applies to the organ minus the targets whose
  // coverage it would contradict (a level whose minimum dose exceeds the objective's dose):
  // a parotid mean of 20 Gy is optimised outside every target, a mandible maximum of 72.5 Gy
  // also inside PTV70 (limiting hot spots there), a mandible maximum of 70 Gy outside it.
  std::map<std::string, std::vector<std::int64_t>> organ_voxels;
  for (const auto& o : tpl.objectives) {
    const core::Structure* s = structures.find(o.structure);
    if (!s || s->mask.count_nonzero() == 0) {
      result.warnings.push_back("objective on " + o.structure + " skipped: structure not present");
      continue;
    }
    auto it = organ_voxels.find(o.structure);
    if (it == organ_voxels.end())
      it = organ_voxels.emplace(o.structure, voxels_of(fraction_on(s->mask, g))).first;
    std::vector<std::uint8_t> excluded(nvox, 0);
    std::string tag;
    for (const auto& l : levels)
      if (l.rx * tr.min_percent / 100.0 > o.dose_gy) {
        for (auto v : l.voxels) excluded[v] = 1;
        tag += (tag.empty() ? " minus " : "+") + l.name;
      }
    const std::string set_name = o.structure + tag;
    if (std::none_of(problem.structures.begin(), problem.structures.end(),
                     [&](const VoxelSet& v) { return v.name == set_name; })) {
      std::vector<std::int64_t> part;
      for (auto v : it->second)
        if (!excluded[v]) part.push_back(v);
      if (part.empty()) {
        result.warnings.push_back(o.structure +
                                  " lies inside the targets: an objective on it is skipped");
        continue;
      }
      add_set(set_name, part);
    }
    Objective oo = o;
    oo.structure = set_name;
    problem.objectives.push_back(oo);
    if (tr.oar_edge_weight > 0 && o.type == ObjectiveType::MaxDose) {
      Objective e = o;
      e.weight = o.weight * tr.oar_edge_weight;
      add_edge_objective(set_name, e, [&] {
        const VoxelSet& vs = *std::find_if(problem.structures.begin(), problem.structures.end(),
                                           [&](const VoxelSet& v) { return v.name == set_name; });
        std::vector<std::int64_t> voxels;
        for (auto r : vs.rows) voxels.push_back(rows[static_cast<std::size_t>(r)]);
        return voxels;
      });
    }
  }
  // Normal-tissue fall-off, with the limit of each voxel the highest over the levels,
  // expressed for the optimiser as an equivalent distance on one linear ramp.
  if (tpl.falloff.weight > 0) {
    const double top = levels.front().rx * tpl.falloff.start_percent / 100.0;
    const double low = 0.0;
    std::vector<std::int64_t> ring;
    std::vector<float> eq;
    // Beyond 15 mm of the targets every second voxel along each axis is enough. The voxels
    // are counted from the grid's corner lowest in patient coordinates (L, P, S: the first
    // voxel where an axis runs towards +x, +y or +z, the last where it runs the other way),
    // so that an HFS and an FFS series of the same anatomy sample the same points.
    std::int64_t first[3];
    for (int a = 0; a < 3; ++a) {
      const core::Vec3 d = g.axis(a);
      int m = 0;
      for (int c = 1; c < 3; ++c)
        if (std::abs(d[c]) > std::abs(d[m])) m = c;
      first[a] = d[m] > 0 ? 0 : g.size[a] - 1;
    }
    for (auto v : body) {
      if (target_union.data<std::uint8_t>()[v]) continue;
      const std::int64_t i = v % g.size[0], j = (v / g.size[0]) % g.size[1],
                         k = v / (g.size[0] * g.size[1]);
      if (dist_any[v] > 15.0f && ((i - first[0]) % 2 || (j - first[1]) % 2 || (k - first[2]) % 2))
        continue;
      double limit = 0;
      for (const auto& l : levels) {
        const double s0 = l.rx * tpl.falloff.start_percent / 100.0,
                     s1 = l.rx * tpl.falloff.end_percent / 100.0;
        const double t = std::min(1.0, l.distance[v] / tpl.falloff.distance_mm);
        limit = std::max(limit, s0 + (s1 - s0) * t);
      }
      ring.push_back(v);
      eq.push_back(static_cast<float>((top - limit) / (top - low) * 100.0));
    }
    add_set("normal tissue", ring, eq);
    Objective o;
    o.structure = "normal tissue";
    o.type = ObjectiveType::FallOff;
    o.dose_gy = top;
    o.low_dose_gy = low;
    o.falloff_mm = 100.0;
    o.weight = tpl.falloff.weight;
    problem.objectives.push_back(o);
    if (tpl.falloff.hot_spot_weight > 0)
      problem.objectives.push_back({"normal tissue", ObjectiveType::MaxDose,
                                    levels.front().rx * tpl.falloff.hot_spot_percent / 100.0, 0,
                                    tpl.falloff.hot_spot_weight});
  }

  // Edge samples: for each boundary voxel v of a set and each of its six neighbours n outside
  // the set (inside the grid), a row with the dose 3/8 of a voxel from v towards n, linear
  // between the two centres (what a planning system's 4 x 4 x 4 sub-samples see there).
  constexpr float kEdgeOut = 0.375f;
  std::vector<std::pair<std::int64_t, std::int64_t>> edge_rows;  // (v, n) per edge row
  std::vector<std::uint8_t> in(edge_requests.empty() ? 0 : nvox, 0);  // the set's voxels, one set at a time
  for (const EdgeRequest& e : edge_requests) {
    for (auto v : e.voxels) in[static_cast<std::size_t>(v)] = 1;
    VoxelSet s;
    s.name = e.name;
    s.voxel_volume_cc = vcc;
    const std::int64_t nx = g.size[0], ny = g.size[1], nz = g.size[2];
    for (auto v : e.voxels) {
      const std::int64_t i = v % nx, j = (v / nx) % ny, k = v / (nx * ny);
      const std::int64_t nb[6][3] = {{i - 1, j, k}, {i + 1, j, k}, {i, j - 1, k},
                                     {i, j + 1, k}, {i, j, k - 1}, {i, j, k + 1}};
      for (const auto& q : nb) {
        if (q[0] < 0 || q[1] < 0 || q[2] < 0 || q[0] >= nx || q[1] >= ny || q[2] >= nz) continue;
        const std::int64_t n = q[0] + nx * (q[1] + ny * q[2]);
        if (in[static_cast<std::size_t>(n)]) continue;
        s.rows.push_back(static_cast<std::int64_t>(rows.size() + edge_rows.size()));
        edge_rows.emplace_back(v, n);
      }
    }
    for (auto v : e.voxels) in[static_cast<std::size_t>(v)] = 0;
    if (s.rows.empty()) continue;
    problem.structures.push_back(std::move(s));
    problem.objectives.insert(problem.objectives.end(), e.objectives.begin(), e.objectives.end());
  }

  // Reduced matrix (rows = `rows`, then the edge samples), total dose over all fractions per
  // unit weight.
  SparseMatrix M;
  M.rows = static_cast<std::int64_t>(rows.size() + edge_rows.size());
  M.cols = A.cols;
  M.row_ptr.assign(static_cast<std::size_t>(M.rows) + 1, 0);
  for (std::size_t r = 0; r < rows.size(); ++r)
    M.row_ptr[r + 1] = M.row_ptr[r] + (A.row_ptr[rows[r] + 1] - A.row_ptr[rows[r]]);
  std::vector<float> acc(static_cast<std::size_t>(A.cols), 0.f);
  std::vector<std::int32_t> touched;
  std::vector<std::vector<std::pair<std::int32_t, float>>> edge_entries(edge_rows.size());
  for (std::size_t e = 0; e < edge_rows.size(); ++e) {
    const auto [v, n] = edge_rows[e];
    touched.clear();
    for (auto [r, w] : {std::pair<std::int64_t, float>{v, 1.f - kEdgeOut}, {n, kEdgeOut}})
      for (std::int64_t a = A.row_ptr[r]; a < A.row_ptr[r + 1]; ++a) {
        const std::int32_t c = A.col_index[a];
        if (acc[c] == 0.f) touched.push_back(c);
        acc[c] += w * A.values[a];
      }
    std::sort(touched.begin(), touched.end());
    for (auto c : touched) {
      if (acc[c] != 0.f) edge_entries[e].emplace_back(c, acc[c]);
      acc[c] = 0.f;
    }
    const std::size_t r = rows.size() + e;
    M.row_ptr[r + 1] = M.row_ptr[r] + static_cast<std::int64_t>(edge_entries[e].size());
  }
  M.col.resize(static_cast<std::size_t>(M.row_ptr.back()));
  M.val.resize(M.col.size());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const std::int64_t a = A.row_ptr[rows[r]], n = A.row_ptr[rows[r] + 1] - a;
    std::copy_n(A.col_index.begin() + a, n, M.col.begin() + M.row_ptr[r]);
    std::copy_n(A.values.begin() + a, n, M.val.begin() + M.row_ptr[r]);
  }
  for (std::size_t e = 0; e < edge_rows.size(); ++e) {
    std::int64_t o = M.row_ptr[rows.size() + e];
    for (auto [c, w] : edge_entries[e]) {
      M.col[static_cast<std::size_t>(o)] = c;
      M.val[static_cast<std::size_t>(o++)] = w;
    }
  }
  edge_entries = {};
  problem.influence = &M;
  // The full matrix is no longer needed: keep the beamlet positions, free the rest.
  const std::vector<dose::BeamletInfo> beamlets = std::move(A.beamlets);
  A = dose::InfluenceMatrix{};
  problem.normalisation_structure = levels.front().name;
  problem.normalisation_dose_gy = levels.front().rx;

  // Smoothness between neighbouring beamlets of a beam, scaled to the weights' magnitude.
  {
    std::map<std::tuple<int, long, long>, std::int32_t> at;
    for (std::size_t c = 0; c < beamlets.size(); ++c) {
      const auto& b = beamlets[c];
      at[{b.beam, std::lround(b.x_mm / bx * 2), std::lround(b.y_mm / bx * 2)}] =
          static_cast<std::int32_t>(c);
    }
    for (const auto& [key, c] : at) {
      auto [beam, ix, iy] = key;
      for (auto [dx, dy] : {std::pair<long, long>{2, 0}, {0, 2}}) {
        auto it = at.find({beam, ix + dx, iy + dy});
        if (it != at.end()) problem.neighbours.push_back({c, it->second});
      }
    }
    if (tpl.smoothness_weight > 0 && !problem.neighbours.empty()) {
      std::vector<float> ones(static_cast<std::size_t>(M.cols), 1.f), d;
      M.multiply(ones, &d);
      double mean = 0;
      const VoxelSet& t = problem.structures.front();
      for (auto r : t.rows) mean += d[r];
      mean /= double(std::max<std::size_t>(1, t.rows.size()));
      const double xref = mean > 0 ? levels.front().rx / mean : 1.0;
      problem.smoothness_weight =
          tpl.smoothness_weight / (double(problem.neighbours.size()) * xref * xref);
    }
  }
  OptimizerOptions oo;
  oo.max_iterations = options.max_iterations > 0 ? options.max_iterations : tpl.max_iterations;
  oo.device = options.device;  // the matrix products on the GPU with CUDA
  const int passes = std::max(0, tpl.correction_passes);

  // Fluence maps per beam (MU per fraction) from beamlet weights (total over fractions), and
  // the full CCCS dose (all fractions) of that plan on the planning grid.
  auto apply_weights = [&](const std::vector<float>& x) {
    for (std::size_t b = 0; b < plan.beams.size(); ++b) {
      dose::Beam& beam = plan.beams[b];
      dose::FluenceMap f;
      f.dx_mm = f.dy_mm = bx;
      f.nx = std::max(1, static_cast<int>(std::lround((beam.jaw_x2_mm - beam.jaw_x1_mm) / bx)));
      f.ny = std::max(1, static_cast<int>(std::lround((beam.jaw_y2_mm - beam.jaw_y1_mm) / bx)));
      f.x0_mm = 0.5 * (beam.jaw_x1_mm + beam.jaw_x2_mm) - 0.5 * f.nx * bx;
      f.y0_mm = 0.5 * (beam.jaw_y1_mm + beam.jaw_y2_mm) - 0.5 * f.ny * bx;
      f.weight.assign(static_cast<std::size_t>(f.nx) * f.ny, 0.f);
      double wmax = 0;
      for (std::size_t c = 0; c < beamlets.size(); ++c) {
        if (beamlets[c].beam != static_cast<int>(b)) continue;
        const int ix = static_cast<int>(std::floor((beamlets[c].x_mm - f.x0_mm) / bx));
        const int iy = static_cast<int>(std::floor((beamlets[c].y_mm - f.y0_mm) / bx));
        if (ix < 0 || iy < 0 || ix >= f.nx || iy >= f.ny) continue;
        f.weight[static_cast<std::size_t>(iy) * f.nx + ix] = x[c];
        wmax = std::max(wmax, double(x[c]));
      }
      beam.mu = wmax / tpl.fractions;  // per fraction
      if (wmax > 0)
        for (auto& w : f.weight) w = static_cast<float>(w / wmax);
      beam.fluence = std::move(f);
    }
  };
  auto full_dose = [&](const core::Progress& p) {
    core::Image d = dose::compute_dose(ct_d, plan, options.device, p);
    float* v = d.data<float>();
    for (std::size_t i = 0; i < d.num_voxels(); ++i) v[i] *= static_cast<float>(tpl.fractions);
    return d;
  };

  const double span = 0.40 / (1 + passes);  // progress 0.56 .. 0.96
  result.optimizer =
      optimize_fluence(problem, oo, progress.sub(0.56, 0.56 + span * 0.8, "optimising"));
  apply_weights(result.optimizer.weights);
  double t_dose = 0;
  auto td = std::chrono::steady_clock::now();
  core::Image dose = full_dose(progress.sub(0.56 + span * 0.8, 0.56 + span, "full dose"));
  t_dose += seconds_since(td);
  for (int pass = 0; pass < passes; ++pass) {
    // Dose correction: what the truncated matrix misses becomes a fixed offset.
    std::vector<float> ax;
    problem.offset_dose.clear();
    M.multiply(result.optimizer.weights, &ax);
    problem.offset_dose.resize(static_cast<std::size_t>(M.rows));
    const float* full = dose.data<float>();
    for (std::size_t r = 0; r < rows.size(); ++r) problem.offset_dose[r] = full[rows[r]] - ax[r];
    for (std::size_t e = 0; e < edge_rows.size(); ++e) {
      const auto [v, n] = edge_rows[e];
      problem.offset_dose[rows.size() + e] =
          (1.f - kEdgeOut) * full[v] + kEdgeOut * full[n] - ax[rows.size() + e];
    }
    problem.initial_weights = result.optimizer.weights;
    OptimizerOptions o2 = oo;
    o2.max_iterations = std::max(10, oo.max_iterations / 2);
    const double p0 = 0.56 + span * (pass + 1);
    OptimizerResult r2 =
        optimize_fluence(problem, o2, progress.sub(p0, p0 + span * 0.8, "dose correction"));
    result.optimizer.iterations += r2.iterations;
    result.optimizer.converged = r2.converged;
    result.optimizer.objective_history.insert(result.optimizer.objective_history.end(),
                                              r2.objective_history.begin(),
                                              r2.objective_history.end());
    result.optimizer.weights = std::move(r2.weights);
    apply_weights(result.optimizer.weights);
    td = std::chrono::steady_clock::now();
    dose = full_dose(progress.sub(p0 + span * 0.8, p0 + span, "full dose"));
    t_dose += seconds_since(td);
  }
  result.timing.optimize_s = seconds_since(t0) - t_dose;
  t0 = std::chrono::steady_clock::now();
  // Normalise: the highest level's D<normalise_percent> = its prescription, raised where
  // needed so that its D99 reaches min_d99_percent of the prescription (air in a target gets
  // less dose than tissue; the coverage criterion counts it).
  if (tpl.normalise_percent > 0) {
    const core::Structure& top = structures.get(levels.front().name);
    const Dvh dvh = compute_dvh(dose, top.mask, top.name);
    const double dv = dvh.dose_at_percent(tpl.normalise_percent), d99 = dvh.dose_at_percent(99);
    if (dv > 0) {
      double k = levels.front().rx / dv;
      if (tpl.min_d99_percent > 0 && d99 > 0 &&
          k * d99 < levels.front().rx * tpl.min_d99_percent / 100.0) {
        const double k99 = levels.front().rx * tpl.min_d99_percent / 100.0 / d99;
        const double kmax = k * (1.0 + tpl.max_d99_boost_percent / 100.0);
        char msg[240];
        if (k99 <= kmax)
          std::snprintf(
              msg, sizeof msg,
              "%s: dose scaled %.1f %% above D%g = prescription so that D99 = %g %% of it",
              top.name.c_str(), 100.0 * (k99 / k - 1.0), tpl.normalise_percent,
              tpl.min_d99_percent);
        else
          std::snprintf(msg, sizeof msg,
                        "%s: D99 reaches only %.1f %% of the prescription with the dose scaled %g "
                        "%% above D%g = "
                        "prescription (the most allowed)",
                        top.name.c_str(), 100.0 * kmax * d99 / levels.front().rx,
                        tpl.max_d99_boost_percent, tpl.normalise_percent);
        result.warnings.push_back(msg);
        k = std::min(k99, kmax);
      }
      float* d = dose.data<float>();
      for (std::size_t v = 0; v < dose.num_voxels(); ++v) d[v] = static_cast<float>(d[v] * k);
      for (auto& beam : plan.beams) beam.mu *= k;
    }
  }
  {  // The dose is kept where there is matter - the body, every structure and whatever the CT
     // shows above -500 HU (tissue the body missed, a couch), one dose voxel wider so that
     // interpolation at the skin sees computed dose - and is 0 Gy in the air around the patient,
     // where the computation gives tens of Gy close to the skin and a planning system shows none.
    // The region is made on the CT grid (patient space) and each dose voxel is kept when its
    // centre overlaps it: the decision depends on the voxel's position alone, not on the order
    // in which the CT stores its voxels (an HFS and an FFS series of the same anatomy keep the
    // same points; session-18 audit: made on the dose grid, a fraction of ~1e-7 from rounding
    // counted as overlap in one storage order and not in the other, 4,500 air voxels of pt_201).
    core::Image matter = core::mask_union(dense, body_ct);
    for (const auto& s : structures) matter = core::mask_union(matter, s.mask);
    matter = core::expand(matter, core::Margin::uniform(std::max({g.spacing[0], g.spacing[1], g.spacing[2]})));
    const core::Image f = fraction_on(matter, g);
    const float* fv = f.data<float>();
    float* d = dose.data<float>();
    for (std::size_t v = 0; v < nvox; ++v)
      if (!(fv[v] > 1e-3f)) d[v] = 0.0f;  // above rounding: a voxel centre on the region's edge
  }
  result.timing.dose_s = t_dose + seconds_since(t0);
  result.dose = std::move(dose);
  result.plan = std::move(plan);

  progress.update(0.98, "DVH");
  // The planning dose grid covers the body (and a margin): a structure reaching beyond it
  // counts 0 Gy there, which its DVH and criteria would not say.
  for (const auto& s : structures) {
    const double out = fraction_outside(result.dose.geometry(), s.mask);
    if (out > 0.01) {
      char msg[200];
      std::snprintf(msg, sizeof msg, "%s: %.0f %% of it lies outside the planning dose grid (counted as 0 Gy there)",
                    s.name.c_str(), 100.0 * out);
      result.warnings.push_back(msg);
    }
  }
  DoseEvaluation e = evaluate_dose(result.dose, structures, criteria);
  result.dvhs = std::move(e.dvhs);
  result.criteria = std::move(e.criteria);
  // PASS/FAIL stays on the voxel-centre DVH (the normalisation's); where the sub-voxel DVH, as a
  // planning system computes it from RS + RD, gives the other verdict, one warning names them.
  if (std::string w = verdict_difference_warning(result.criteria); !w.empty()) result.warnings.push_back(w);
  {  // Hot spots: the global maximum against the highest prescription and the targets' maxima.
    const double rx = levels.front().rx;
    double global = 0, in_targets = 0;
    const float* d = result.dose.data<float>();
    for (std::size_t v = 0, n = result.dose.num_voxels(); v < n; ++v) global = std::max(global, double(d[v]));
    for (const auto& l : levels)
      if (auto it = result.dvhs.find(l.name); it != result.dvhs.end()) in_targets = std::max(in_targets, it->second.max_gy());
    char msg[240];
    if (global > 1.10 * rx) {
      std::snprintf(msg, sizeof msg, "hot spot: the maximum dose is %.1f Gy, %.0f %% of the %g Gy prescription", global,
                    100.0 * global / rx, rx);
      result.warnings.push_back(msg);
    }
    if (global > in_targets + 0.02 * rx) {
      std::snprintf(msg, sizeof msg,
                    "the maximum dose (%.1f Gy) lies outside every target (their highest: %.1f Gy)", global, in_targets);
      result.warnings.push_back(msg);
    }
  }
  result.timing.total_s = seconds_since(t_start);
  progress.done();
  return result;
}

void write_plan_json(const dose::Plan& plan, int fractions, const std::string& path) {
  json root;
  root["name"] = plan.name;
  // By name when the name finds the same file (a shipped machine): plan.json then reads back
  // on another installation; a machine of the user's own stays a path.
  std::string machine = plan.machine_path.empty() ? plan.machine.name : plan.machine_path;
  if (!plan.machine_path.empty()) {
    const std::string stem = fs::path(plan.machine_path).stem().string();
    try {
      std::error_code ec;
      if (fs::equivalent(dose::find_machine(stem), plan.machine_path, ec) && !ec) machine = stem;
    } catch (const core::Error&) {
    }
  }
  root["machine"] = machine;
  root["fractions"] = fractions;
  root["calculation"] = {{"n_zenith", plan.options.n_zenith},
                         {"n_azimuth", plan.options.n_azimuth},
                         {"density_threshold", plan.options.density_threshold}};
  root["hu_to_density"] = {{"hu", plan.hu.hu},
                           {"mass_density", plan.hu.mass_density},
                           {"relative_electron_density", plan.hu.relative_electron_density}};
  json beams = json::array();
  for (const auto& b : plan.beams) {
    json j;
    j["name"] = b.name;
    j["gantry_deg"] = b.gantry_deg;
    j["couch_deg"] = b.couch_deg;
    j["collimator_deg"] = b.collimator_deg;
    j["isocenter_mm"] = {b.isocenter_mm[0], b.isocenter_mm[1], b.isocenter_mm[2]};
    j["jaws_mm"] = {b.jaw_x1_mm, b.jaw_x2_mm, b.jaw_y1_mm, b.jaw_y2_mm};
    j["mu"] = b.mu;
    if (!b.fluence.empty()) {
      j["fluence"] = {{"origin_mm", {b.fluence.x0_mm, b.fluence.y0_mm}},
                      {"bixel_mm", {b.fluence.dx_mm, b.fluence.dy_mm}},
                      {"size", {b.fluence.nx, b.fluence.ny}},
                      {"weights", b.fluence.weight}};
    }
    beams.push_back(j);
  }
  root["beams"] = beams;
  core::write_file_atomic(path, root.dump(1) + "\n", "write plan");
}

}  // namespace isoline::planning
