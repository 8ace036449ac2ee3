// isoline.adaptive (replanning workflow): propagation, fusion, dose accumulation, adapt().
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "common.h"
#include "isoline/adaptive/accumulation.h"
#include "isoline/adaptive/adapt.h"
#include "isoline/adaptive/propagation.h"
#include "isoline/core/device.h"
#include "isoline/core/error.h"

namespace py = pybind11;
using namespace isoline;
using namespace isoline::adaptive;

namespace isoline::py_bind {

void bind_adapt(py::module_ m) {
  m.def("propagate_structures",
        [](const core::StructureSet& s, const DisplacementField& f, py::object progress) {
          core::Progress prog(wrap_progress(progress), "propagate");
          py::gil_scoped_release nogil;
          return propagate_structures(s, f, prog);
        },
        py::arg("planning"), py::arg("new_to_planning"), py::arg("progress") = py::none(),
        "Warps planning structures onto the field's grid (the new CT): M'(x) = M(x + u(x)), thresholded at 0.5.");
  m.def("is_target", &is_target, py::arg("structure"),
        "True for target volumes: type PTV, CTV or GTV, or a name starting with PTV/CTV/GTV/ITV.");
  m.def("dice", &dice, py::arg("a"), py::arg("b"), py::call_guard<py::gil_scoped_release>(),
        "Dice coefficient of two masks on the same grid (1 when both are empty).");

  py::class_<StructureAgreement>(m, "StructureAgreement",
                                 "Where a fused structure came from and the Dice of its propagated and "
                                 "re-contoured versions (-1 when only one exists).")
      .def_readonly("name", &StructureAgreement::name)
      .def_readonly("source", &StructureAgreement::source)
      .def_readonly("dice", &StructureAgreement::dice)
      .def_readonly("flagged", &StructureAgreement::flagged);
  py::class_<FuseResult>(m, "FuseResult", "Fused structures and the agreement of each.")
      .def_readonly("structures", &FuseResult::structures)
      .def_readonly("agreement", &FuseResult::agreement);
  m.def("fuse_structures",
        [](const core::StructureSet& propagated, const core::StructureSet& recontoured, double threshold,
           const std::vector<std::string>& keep) {
          FuseOptions o;
          o.dice_threshold = threshold;
          o.keep_propagated = keep;
          py::gil_scoped_release nogil;
          return fuse_structures(propagated, recontoured, o);
        },
        py::arg("propagated"), py::arg("recontoured"), py::kw_only(), py::arg("dice_threshold") = 0.7,
        py::arg("keep_propagated") = std::vector<std::string>{},
        "Targets propagated, OARs re-contoured where available; disagreeing OARs flagged for review.");

  m.def("invert_field",
        [](const DisplacementField& f, const core::Geometry& grid, int iterations) {
          double residual = 0;
          DisplacementField inv;
          {
            py::gil_scoped_release nogil;
            inv = invert_field(f, grid, iterations, &residual);
          }
          return py::make_tuple(std::move(inv), residual);
        },
        py::arg("field"), py::arg("grid"), py::arg("iterations") = 30,
        "(inverse field on `grid`, max residual mm): maps planning points to new-CT points.");
  m.def("warp_dose", &warp_dose, py::arg("dose"), py::arg("planning_to_new"), py::call_guard<py::gil_scoped_release>(),
        "A new-CT dose warped onto the planning grid: D(p + v(p)), linear, 0 outside.");

  py::class_<DoseAccumulator>(m, "DoseAccumulator",
                              "Weighted sum of doses mapped onto one planning grid: total = sum of weight * dose. "
                              "A weight scales the dose it is given: 1 for a dose of what was delivered as given, "
                              "n / N for n of N fractions of a whole-course dose (acc.add(planned, 10 / 35); "
                              "acc.add_warped(adapted, inv, 25 / 35)).")
      .def(py::init<const core::Geometry&>(), py::arg("planning_grid"))
      .def("add", &DoseAccumulator::add, py::arg("dose_on_planning_grid"), py::arg("weight") = 1.0,
           py::call_guard<py::gil_scoped_release>(),
           "Adds weight * dose for a float32 dose (Gy) already on the planning grid (InvalidInput on another "
           "grid). weight multiplies the dose: 1 adds it as it is; 10 / 35 adds 10 fractions of a 35-fraction "
           "whole-course dose; a one-fraction dose with weight 10 counts it 10 times.")
      .def("add_warped", &DoseAccumulator::add_warped, py::arg("dose_on_new_ct"), py::arg("planning_to_new"),
           py::arg("weight") = 1.0, py::call_guard<py::gil_scoped_release>(),
           "Adds weight * a dose computed on a new CT, mapped back onto the planning grid: each planning "
           "voxel x takes the dose at x + u(x) of `planning_to_new` (a field on the planning grid; see "
           "invert_field). weight as in add().")
      .def_property_readonly("fractions", &DoseAccumulator::fractions,
                             "The sum of the weights added so far (not a count of fractions: 1.0 after adding "
                             "10 / 35 and 25 / 35 of whole-course doses; the number of fractions only when each "
                             "dose added is one fraction's with weight 1)")
      .def_property_readonly("total", &DoseAccumulator::total, "Accumulated dose (float32 Gy) on the planning grid");

  py::class_<DoseEvaluation>(m, "DoseEvaluation",
                             "DVHs and criteria results of one labelled dose on one structure set.")
      .def_readonly("label", &DoseEvaluation::label)
      .def_readonly("dvhs", &DoseEvaluation::dvhs)
      .def_readonly("criteria", &DoseEvaluation::criteria);
  m.def("evaluate_dose", &evaluate_dose, py::arg("label"), py::arg("dose"), py::arg("structures"),
        py::arg("criteria") = std::vector<planning::Criterion>{}, py::call_guard<py::gil_scoped_release>(),
        "DVHs of every structure and the criteria results of a dose (any grids), under `label`.");

  py::class_<ComparisonRow>(m, "ComparisonRow",
                            "One row of a side-by-side comparison: a structure's metric under each dose.")
      .def_readonly("structure", &ComparisonRow::structure)
      .def_readonly("metric", &ComparisonRow::metric)
      .def_readonly("criterion", &ComparisonRow::criterion)
      .def_readonly("at_most", &ComparisonRow::at_most)
      .def_readonly("limit", &ComparisonRow::limit)
      .def_readonly("values", &ComparisonRow::values)
      .def_readonly("passed", &ComparisonRow::pass, "per evaluation: 1 pass, 0 fail, -1 not a criterion/missing");
  m.def("compare",
        [](const std::vector<const DoseEvaluation*>& evals, const std::vector<planning::Criterion>& criteria) {
          return compare(evals, criteria);
        },
        py::arg("evaluations"), py::arg("criteria"),
        "Comparison rows for evaluations side by side: every criterion, then Dmean / D95% / D2% "
        "(targets) or Dmean / D0.1cc of every structure.");

  py::class_<AdaptInput>(m, "AdaptInput", "Planning CT, structures, original plan and template, and the new CT.")
      .def(py::init([](core::Image planning_ct, core::StructureSet structures, dose::Plan plan, int fractions,
                       planning::PlanTemplate tpl, core::Image new_ct, const core::Image* planned_dose) {
             AdaptInput in;
             in.planning_ct = std::move(planning_ct);
             in.planning_structures = std::move(structures);
             in.plan = std::move(plan);
             in.fractions = fractions;
             in.tpl = std::move(tpl);
             in.new_ct = std::move(new_ct);
             if (planned_dose) in.planned_dose = *planned_dose;
             return in;
           }),
           py::arg("planning_ct"), py::arg("planning_structures"), py::arg("plan"), py::arg("fractions"),
           py::arg("template"), py::arg("new_ct"), py::arg("planned_dose") = nullptr)
      .def_readwrite("planning_ct", &AdaptInput::planning_ct)
      .def_readwrite("planning_structures", &AdaptInput::planning_structures)
      .def_readwrite("plan", &AdaptInput::plan)
      .def_readwrite("fractions", &AdaptInput::fractions)
      .def_readwrite("planned_dose", &AdaptInput::planned_dose)
      .def_readwrite("planned_dose_source", &AdaptInput::planned_dose_source,
                     "where planned_dose was read from, named in its errors ('' = 'planned dose')")
      .def_readwrite("template", &AdaptInput::tpl)
      .def_readwrite("new_ct", &AdaptInput::new_ct);

  py::class_<AdaptTiming>(m, "AdaptTiming", "Seconds spent by adapt() per step and in total.")
      .def_readonly("registration_s", &AdaptTiming::registration_s)
      .def_readonly("propagation_s", &AdaptTiming::propagation_s)
      .def_readonly("unadapted_s", &AdaptTiming::unadapted_s)
      .def_readonly("replan_s", &AdaptTiming::replan_s)
      .def_readonly("accumulation_s", &AdaptTiming::accumulation_s)
      .def_readonly("total_s", &AdaptTiming::total_s);

  py::class_<AdaptResult>(m, "AdaptResult",
                          "Result of adapt(): registration, structures on the new CT, unadapted and "
                          "adapted plans' doses, accumulated doses, evaluations and comparison rows.")
      .def_readonly("registration", &AdaptResult::registration)
      .def_readonly("structures", &AdaptResult::structures)
      .def_readonly("agreement", &AdaptResult::agreement)
      .def_readonly("unadapted_dose", &AdaptResult::unadapted_dose)
      .def_readonly("unadapted_plan", &AdaptResult::unadapted_plan,
                    "the original plan as recomputed on the new CT (isocentres set up, see align_plan)")
      .def_readonly("setup_shift_mm", &AdaptResult::setup_shift_mm,
                    "isocentre on the new CT minus on the planning CT (mm, LPS) of the unadapted dose")
      .def_readonly("adapted", &AdaptResult::adapted)
      .def_readonly("planned_dose", &AdaptResult::planned_dose)
      .def_readonly("accumulated_unadapted", &AdaptResult::accumulated_unadapted)
      .def_readonly("accumulated_adapted", &AdaptResult::accumulated_adapted)
      .def_readonly("inverse_residual_mm", &AdaptResult::inverse_residual_mm)
      .def_readonly("dose_region_beyond_new_ct", &AdaptResult::dose_region_beyond_new_ct,
                    "share of the planning dose region that maps beyond the new CT (no dose known there; "
                    "1 = none of it is on the new CT)")
      .def_readonly("inverse_residual_dose_region_mm", &AdaptResult::inverse_residual_dose_region_mm,
                    "largest inversion residual over the rest of the dose region (0 when nothing was measured)")
      .def_readonly("inverse_fraction_over_1mm", &AdaptResult::inverse_fraction_over_1mm,
                    "share of the rest of the dose region where the inversion residual exceeds 1 mm")
      .def_readonly("beyond_new_ct", &AdaptResult::beyond_new_ct,
                    "planning structures partly beyond the new CT: name -> share of their volume; they have no "
                    "accumulated figures (left out of accumulated_*_eval)")
      .def_readonly("fractions_delivered", &AdaptResult::fractions_delivered)
      .def_readonly("criteria", &AdaptResult::criteria)
      .def_readonly("planned", &AdaptResult::planned)
      .def_readonly("unadapted", &AdaptResult::unadapted)
      .def_readonly("adapted_eval", &AdaptResult::adapted_eval)
      .def_readonly("accumulated_unadapted_eval", &AdaptResult::accumulated_unadapted_eval)
      .def_readonly("accumulated_adapted_eval", &AdaptResult::accumulated_adapted_eval)
      .def_readonly("rows", &AdaptResult::rows)
      .def_readonly("columns", &AdaptResult::columns)
      .def_readonly("warnings", &AdaptResult::warnings)
      .def_readonly("timing", &AdaptResult::timing);

  m.def("replan_available", &replan_available,
        "True when this build can re-plan (else adapt() with replan=True raises NotSupported).");
  m.def("adapt",
        [](const AdaptInput& in, bool rigid, bool deformable, bool bony, double sigma_mm, std::vector<int> iterations,
           bool recontour, const std::string& model_card, double dice_threshold, const std::string& device,
           int max_iterations, int fractions_delivered, bool replan, bool setup_correction, py::object progress) {
          AdaptOptions o;
          o.registration.rigid = rigid;
          o.registration.deformable = deformable;
          o.registration.rigid_options.bony = bony;
          o.registration.deformable_options.field_sigma_mm = sigma_mm;
          if (!iterations.empty()) {
            o.registration.deformable_options.iterations = iterations;
            o.registration.deformable_options.levels = static_cast<int>(iterations.size());
          }
          o.recontour = recontour;
          o.model_card = model_card;
          o.fuse.dice_threshold = dice_threshold;
          o.plan_options.device = core::parse_device(device);
          o.plan_options.max_iterations = max_iterations;
          o.fractions_delivered = fractions_delivered;
          o.replan = replan;
          o.setup_correction = setup_correction;
          core::Progress prog(wrap_progress(progress), "adapt");
          py::gil_scoped_release nogil;
          return adapt(in, o, prog);
        },
        py::arg("input"), py::kw_only(), py::arg("rigid") = true, py::arg("deformable") = true, py::arg("bony") = false,
        py::arg("sigma_mm") = DeformableOptions{}.field_sigma_mm, py::arg("iterations") = std::vector<int>{},
        py::arg("recontour") = false, py::arg("model_card") = "", py::arg("dice_threshold") = 0.7,
        py::arg("device") = "cpu", py::arg("max_iterations") = 0, py::arg("fractions_delivered") = 0,
        py::arg("replan") = true, py::arg("setup_correction") = true, py::arg("progress") = py::none(),
        "Adaptive replanning on a new CT: register, propagate (optionally re-contour and fuse), "
        "recompute the original plan (set up on the new anatomy: isocentres moved through the rigid "
        "registration, unless setup_correction=False), re-optimise, warp doses back and accumulate, compare. "
        "Releases the GIL.");
  m.def("align_plan", &align_plan, py::arg("plan"), py::arg("new_to_planning"),
        "The plan as image-guided setup delivers it on the new CT: every isocentre moved to the new-CT "
        "point that the rigid registration (RegistrationResult.rigid, new CT -> planning CT) maps onto it; "
        "angles, apertures and MU unchanged. Recompute a plan on a new CT with this: the new CT has "
        "its own coordinates.");
  m.def("recompute_dose",
        [](const core::Image& ct, const dose::Plan& plan, int fractions, double grid_mm, const std::string& device,
           py::object progress) {
          core::Device d = core::parse_device(device);
          core::Progress prog(wrap_progress(progress), "dose");
          py::gil_scoped_release nogil;
          return recompute_dose(ct, plan, fractions, grid_mm, d, prog);
        },
        py::arg("ct"), py::arg("plan"), py::arg("fractions"), py::arg("grid_mm") = 0.0, py::kw_only(),
        py::arg("device") = "cpu", py::arg("progress") = py::none(),
        "Dose of a plan (MU per fraction) times `fractions` on a CT resampled to `grid_mm` (0 = CT grid).");
  m.def("write_adapt_report_html", &write_adapt_report_html, py::arg("input"), py::arg("result"), py::arg("path"),
        py::arg("title") = "Isoline adaptive replanning", py::call_guard<py::gil_scoped_release>(),
        "Writes the self-contained HTML report of an adapt() result (atomic).");
}

}  // namespace isoline::py_bind
