// The adaptive replanning workflow on a new CT (a later fraction):
//   1. register the new CT (fixed) to the planning CT (moving): rigid + deformable;
//   2. propagate the planning structures onto the new CT (optionally re-contour the OARs
//      with the contouring models and fuse: propagated targets, re-contoured OARs, flags);
//   3. recompute the original plan's fluence on the new CT (the "unadapted" dose);
//   4. re-optimise on the new anatomy with the original template (the "adapted" plan);
//   5. warp the new-CT doses back to the planning CT and accumulate over the course;
//   6. evaluate planned, unadapted and adapted doses (DVH metrics + criteria) side by side.
//
//   adaptive::AdaptInput in{planning_ct, planning_structures, original_plan, fractions,
//                           planned_dose, tpl, new_ct};
//   auto r = adaptive::adapt(in, {}, progress);
//   r.structures;       // on the new CT
//   r.unadapted_dose;   // Gy, all fractions, new CT (dose grid)
//   r.adapted.dose;     // Gy, all fractions, new CT (dose grid)
//   r.rows;             // comparison table (planned | unadapted | adapted)
#pragma once

#include <map>
#include <string>
#include <vector>

#include "isoline/adaptive/accumulation.h"
#include "isoline/adaptive/propagation.h"
#include "isoline/adaptive/registration.h"
#include "isoline/dose/dose.h"
#include "isoline/planning/plan.h"

namespace isoline::adaptive {

struct AdaptInput {
  core::Image planning_ct;               ///< HU
  core::StructureSet planning_structures;  ///< on the planning CT grid
  dose::Plan plan;                       ///< original plan (MU per fraction)
  int fractions = 1;                     ///< fractions of the original plan
  core::Image planned_dose;              ///< Gy, all fractions, planning CT (empty = recompute)
  /// Where planned_dose was read from (e.g. "PLAN/dose.nii.gz"), named in its errors; "" =
  /// "planned dose".
  std::string planned_dose_source;
  planning::PlanTemplate tpl;            ///< template the original plan was made with
  core::Image new_ct;                    ///< HU
};

struct AdaptOptions {
  RegistrationOptions registration;
  /// Re-contour the new CT with the contouring models and fuse with the propagated set.
  bool recontour = false;
  std::string model_card;                ///< contouring model card ("" = default)
  FuseOptions fuse;
  planning::PlanOptions plan_options;
  /// Fractions already delivered on the planning anatomy before the new CT; the accumulated
  /// course dose is fractions_delivered planned fractions + the rest with the adapted plan
  /// (warped back). The "unadapted" course is every fraction with the original plan on the
  /// new anatomy, warped back.
  int fractions_delivered = 0;
  /// Skip the re-plan (propagation, unadapted dose and accumulation only).
  bool replan = true;
  /// Recompute the original plan as an image-guided setup delivers it: each isocentre moved to
  /// the new-CT point that the rigid registration matches to it (align_plan). A new CT has its
  /// own coordinates (another scan, another frame of reference), so without this the beams
  /// keep the planning CT's coordinates, which mean nothing on the new CT unless it shares
  /// that frame and the patient was not re-aligned.
  bool setup_correction = true;
};

struct AdaptTiming {
  double registration_s = 0, propagation_s = 0, unadapted_s = 0, replan_s = 0, accumulation_s = 0,
         total_s = 0;
};

struct AdaptResult {
  RegistrationResult registration;       ///< new CT (fixed) <- planning CT (moving)
  core::StructureSet structures;         ///< on the new CT (propagated or fused)
  std::vector<StructureAgreement> agreement;  ///< with recontour
  core::Image unadapted_dose;            ///< original plan on the new CT, all fractions
  dose::Plan unadapted_plan;             ///< the original plan as recomputed (isocentres set up)
  core::Vec3 setup_shift_mm{0, 0, 0};    ///< isocentre on the new CT - on the planning CT (LPS)
  planning::PlanResult adapted;          ///< re-optimised plan (when replan)
  core::Image planned_dose;              ///< planned dose (planning CT), as given or recomputed
  core::Image accumulated_unadapted;     ///< planning grid: all fractions unadapted, warped back
  core::Image accumulated_adapted;       ///< planning grid: delivered planned + rest adapted
  double inverse_residual_mm = 0;        ///< of the field inversion used to warp doses back
  /// Share of the dose region (planned dose >= 10 % of its maximum) whose point on the new CT
  /// (through the inverse of the registration) lies beyond the new CT's dose grid: no dose is
  /// known there, and the accumulated doses hold 0 Gy there (a new CT that covers less of the
  /// patient, or another patient's). 1 = none of it is on the new CT.
  double dose_region_beyond_new_ct = 0;
  /// In the rest of the dose region (on the new CT): the largest inversion residual and the
  /// fraction of its voxels where it exceeds 1 mm (there the accumulated dose is taken from up
  /// to that far off; a warning when over 0.5 %). Both 0 when dose_region_beyond_new_ct is 1
  /// (nothing measured).
  double inverse_residual_dose_region_mm = 0;
  double inverse_fraction_over_1mm = 0;
  /// Planning structures part of which lies beyond the new CT (as above): name -> share of
  /// their volume whose accumulated dose involves points beyond it. They have no accumulated
  /// figures (left out of accumulated_*_eval: "-" in the table), and their propagated
  /// contours hold only their part on the new CT (a warning names them).
  std::map<std::string, double> beyond_new_ct;
  int fractions_delivered = 0;           ///< as in the options
  std::vector<planning::Criterion> criteria;
  DoseEvaluation planned, unadapted, adapted_eval;  ///< planned: on the planning CT structures
  /// On the planning structures, less those in beyond_new_ct.
  DoseEvaluation accumulated_unadapted_eval, accumulated_adapted_eval;
  /// planned | unadapted | adapted (| accumulated unadapted | accumulated adapted).
  std::vector<ComparisonRow> rows;
  std::vector<std::string> columns;
  std::vector<std::string> warnings;
  AdaptTiming timing;
};

/// True when this build can re-plan (planning::make_plan is built); otherwise adapt() with
/// replan = true throws NotSupported.
bool replan_available();

/// The checks adapt() makes before any work, for a caller that wants them before it reads the
/// CTs (the images of `input` may still be empty): the device (core::require_device; with
/// recontour the network falls back to the CPU where LibTorch has no CUDA, as `isoline run`),
/// fractions (>= 1) and fractions_delivered (0 to fractions), the template's criteria file
/// (planning::load_criteria), with recontour the model card (contouring::load_model_card),
/// and a planned dose in Gy (its maximum at most 5 times the template's highest
/// prescription; the error names planned_dose_source). Throws InvalidInput, IoError or
/// DeviceError naming the file or value.
void check_adapt_inputs(const AdaptInput& input, const AdaptOptions& options = {});

/// Runs the workflow above. Throws InvalidInput for unusable inputs (empty CTs, structures
/// off the planning grid, a template without targets among the structures); the checks of
/// check_adapt_inputs, and the loading of the contouring network with recontour, come before
/// the registration. The warnings gathered until a failure (AdaptResult::warnings so far:
/// registration folds, the re-contouring's, the re-plan's) go with the error (core::Error,
/// its type kept) as Error::warnings().
AdaptResult adapt(const AdaptInput& input, const AdaptOptions& options = {},
                  const core::Progress& progress = {});

/// The plan as delivered on the new anatomy after image-guided setup: every beam's isocentre
/// moved to the new-CT point that `new_to_planning` (the rigid registration, new CT -> planning
/// CT) maps onto it, i.e. a couch translation; angles, apertures and MU unchanged.
dose::Plan align_plan(const dose::Plan& plan, const RigidTransform& new_to_planning);

/// Dose of `plan` (MU per fraction) times `fractions` on `ct` resampled to the template's
/// dose grid spacing (`grid_mm`; 0 = the CT grid).
core::Image recompute_dose(const core::Image& ct, const dose::Plan& plan, int fractions, double grid_mm,
                           core::Device device = core::Device::CPU, const core::Progress& progress = {});

/// Writes the self-contained HTML report (report module: views of the new CT with planned
/// (mapped through the registration), unadapted and adapted doses, DVH plot, criteria side by
/// side, metrics, structure notes), followed by the adaptive sections: the comparison table
/// with the accumulated doses, propagated vs re-contoured agreement, registration and timing.
/// Atomic.
void write_adapt_report_html(const AdaptInput& input, const AdaptResult& result, const std::string& path,
                             const std::string& title = "Isoline adaptive replanning");

}  // namespace isoline::adaptive
