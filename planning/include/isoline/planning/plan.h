// Achievable-dose planning: a plan template (beams, prescription levels, objectives) applied
// to a CT and its structures gives an optimised fluence per beam, the dose, DVHs and the
// clinical-criteria table. This is what `isoline plan`, `isoline run`, `isoline adapt`
// (re-plan), the review UI ("Re-estimate dose") and `isoline.planning.make_plan` call.
//
//   auto tpl = planning::load_template("hn");           // planning/templates/hn.json
//   auto result = planning::make_plan(ct, structures, tpl, {}, progress);
//   result.dose;      // Gy (all fractions) on the planning dose grid
//   result.plan;      // beams with fluence maps and MU per fraction (dose::Plan, plan JSON)
//   result.criteria;  // pass/fail per criterion
#pragma once

#include <map>
#include <string>
#include <vector>

#include "isoline/core/device.h"
#include "isoline/core/image.h"
#include "isoline/core/progress.h"
#include "isoline/core/structure.h"
#include "isoline/dose/dose.h"
#include "isoline/planning/criteria.h"
#include "isoline/planning/dvh.h"
#include "isoline/planning/optimizer.h"

namespace isoline::planning {

/// One prescription level: a target structure and its dose over all fractions.
struct TargetLevel {
  std::string structure;
  double dose_gy = 0.0;
};

/// Objectives generated for every prescription level (percent of that level's dose).
struct TargetRules {
  double min_percent = 100.0;  ///< MinDose on the whole target
  double min_weight = 100.0;
  double max_percent = 105.0;  ///< MaxDose on the target minus higher-level targets
  double max_weight = 40.0;
  double d99_percent = 97.0;   ///< MinDvh: 99 % of the target above this (0 = off)
  double d99_weight = 100.0;
  /// Edge samples: a planning system computes a structure's DVH from its contour, over the
  /// whole of each boundary voxel, with the dose interpolated between voxel centres; the
  /// optimiser sees voxel centres only. With edge_weight > 0 every boundary voxel of a target
  /// also gets a sample 3/8 of a voxel towards each neighbour outside it (the outermost
  /// sub-sample of a 4 x 4 x 4 DVH), its dose interpolated from the two centres, with a MinDose
  /// of min_percent at this weight; the OAR MaxDose objectives get the same samples on their
  /// organ's boundary at oar_edge_weight (0 = off).
  double edge_weight = 0.0;
  double oar_edge_weight = 0.0;
};

/// Normal-tissue fall-off: the dose limit outside the targets falls linearly from
/// start_percent of a level's prescription at its surface to end_percent at distance_mm;
/// the limit of a voxel is the highest over the levels.
struct FallOffRule {
  double start_percent = 100.0;
  double end_percent = 50.0;
  double distance_mm = 30.0;
  double weight = 10.0;  ///< 0 = off
  /// Hot spots outside the targets: a maximum of hot_spot_percent of the highest prescription
  /// on the same voxels, weighted on its own (the fall-off's weight, spread over tens of
  /// thousands of voxels, lets a few voxels next to a target run to 125 %). 0 = off.
  double hot_spot_percent = 0.0;
  double hot_spot_weight = 0.0;
};

struct PlanTemplate {
  std::string name;
  std::string source;             ///< file it was read from ("" when built in code)
  std::string machine = "generic_6mv";
  int fractions = 35;
  std::vector<double> gantry_deg;  ///< coplanar beams (couch 0, collimator 0)
  /// Prescription levels, highest first. Levels whose structure is missing are skipped.
  std::vector<TargetLevel> targets;
  /// OAR and extra objectives (doses over all fractions). Objectives on missing structures
  /// are skipped (and listed in PlanResult::warnings).
  std::vector<Objective> objectives;
  TargetRules target_rules;
  FallOffRule falloff;
  /// After optimisation the dose is scaled so that the highest level's D<normalise_percent>
  /// equals its prescription (0 = no scaling).
  double normalise_percent = 95.0;
  /// ... but raised so that the highest level's D99 is at least this percentage of its
  /// prescription (0 = off); a warning says by how much.
  double min_d99_percent = 0.0;
  /// The most that min_d99_percent may raise the dose above the D<normalise_percent> scaling.
  double max_d99_boost_percent = 3.0;
  std::string criteria_path;      ///< criteria JSON (resolved beside the template), may be ""
  std::string external = "Body";  ///< body structure; found from the CT (threshold) if absent
  double bixel_mm = 5.0;
  double lateral_cutoff_mm = 30.0;
  double target_margin_mm = 5.0;
  double dose_grid_mm = 4.0;      ///< planning/dose grid spacing (CT resampled when finer)
  double smoothness_weight = 0.0;
  int max_iterations = 300;
  /// Dose-correction passes: the optimised fluence's full CCCS dose replaces the truncated
  /// influence-matrix dose (as a fixed offset) and the optimisation continues from there,
  /// with max(10, max_iterations / 2) iterations per pass.
  int correction_passes = 1;
};

/// The template `isoline plan`, `run`, `serve` and `adapt`, `pipeline::run_case` and the Python
/// functions use when none is named. `hn_tps` (edge samples: the criteria also hold on the DVH a
/// planning system computes, docs/planning.md step 4) is not the default yet: it raises the
/// hot spots inside PTV70 (validation.md, "Edge samples").
inline constexpr const char* kDefaultTemplate = "hn";

/// Reads a template by name ("hn" -> planning/templates/hn.json, also searched in
/// $ISOLINE_TEMPLATE_DIR) or path. Throws IoError / InvalidInput naming the file and entry.
PlanTemplate load_template(const std::string& name_or_path);

/// The template as it applies to a structure set: unchanged when one of its targets is
/// present; otherwise its prescription levels become the set's PTV-type structures, each with
/// the dose in its name ("PTV_66" -> 66 Gy, "PTV7000" -> 70 Gy) or else the template's highest
/// level (for cases named differently, e.g. "PTV" and "Boost" in the review UI).
PlanTemplate template_for(const PlanTemplate& tpl, const core::StructureSet& structures);

struct PlanOptions {
  core::Device device = core::Device::CPU;
  int max_iterations = 0;  ///< 0 = the template's
};

struct PlanTiming {
  double influence_s = 0, optimize_s = 0, dose_s = 0, total_s = 0;
};

struct PlanResult {
  dose::Plan plan;      ///< beams with optimised fluence maps; MU per fraction
  int fractions = 1;
  core::Image dose;     ///< float32 Gy over all fractions, on the planning dose grid
  std::map<std::string, Dvh> dvhs;          ///< every structure of the input set
  std::vector<CriterionResult> criteria;    ///< empty when the template has none
  OptimizerResult optimizer;
  PlanTiming timing;
  std::vector<std::string> warnings;        ///< skipped levels/objectives, etc.
};

/// Plans on `ct` (int16/float HU) with `structures` (masks on the CT grid). Throws
/// InvalidInput when no target level of the template is present or a mask is off-grid.
PlanResult make_plan(const core::Image& ct, const core::StructureSet& structures,
                     const PlanTemplate& tpl, const PlanOptions& options = {},
                     const core::Progress& progress = {});

/// DVHs of every structure and the criteria table for a given dose (any grid).
struct DoseEvaluation {
  std::map<std::string, Dvh> dvhs;
  std::vector<CriterionResult> criteria;
};
DoseEvaluation evaluate_dose(const core::Image& dose, const core::StructureSet& structures,
                             const std::vector<Criterion>& criteria);

/// Writes a plan (beams with fluence maps, MU per fraction, fractions) as plan JSON that
/// dose::read_plan reads back (atomic).
void write_plan_json(const dose::Plan& plan, int fractions, const std::string& path);

}  // namespace isoline::planning
