// isoline.planning (plan templates): make_plan, load_template, evaluate_dose, write_plan_json.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "common.h"
#include "isoline/core/device.h"
#include "isoline/core/error.h"
#include "isoline/planning/plan.h"

namespace py = pybind11;
using namespace isoline;
using namespace isoline::planning;

namespace isoline::py_bind {

void bind_plan(py::module_ m) {
  py::class_<OptimizerResult>(m, "OptimizerResult",
                              "Fluence optimisation result: beamlet weights, objective value per "
                              "iteration, iterations, converged.")
      .def_property_readonly("weights", [](const OptimizerResult& r) {
        return py::array_t<float>(static_cast<py::ssize_t>(r.weights.size()), r.weights.data());
      })
      .def_property_readonly("objective_history", [](const OptimizerResult& r) {
        return py::array_t<double>(static_cast<py::ssize_t>(r.objective_history.size()), r.objective_history.data());
      })
      .def_readonly("iterations", &OptimizerResult::iterations)
      .def_readonly("converged", &OptimizerResult::converged);

  py::class_<TargetLevel>(m, "TargetLevel", "A prescription level: target structure and dose over all fractions.")
      .def(py::init([](std::string s, double d) { return TargetLevel{std::move(s), d}; }), py::arg("structure"),
           py::arg("dose_gy"))
      .def_readwrite("structure", &TargetLevel::structure)
      .def_readwrite("dose_gy", &TargetLevel::dose_gy)
      .def("__repr__", [](const TargetLevel& t) { return "TargetLevel('" + t.structure + "', " + std::to_string(t.dose_gy) + " Gy)"; });

  py::class_<PlanTemplate>(m, "PlanTemplate", "Beams, prescription levels, objectives and criteria of a plan class.")
      .def(py::init<>())
      .def_readwrite("name", &PlanTemplate::name)
      .def_readwrite("source", &PlanTemplate::source)
      .def_readwrite("machine", &PlanTemplate::machine)
      .def_readwrite("fractions", &PlanTemplate::fractions)
      .def_readwrite("gantry_deg", &PlanTemplate::gantry_deg)
      .def_readwrite("targets", &PlanTemplate::targets)
      .def_readwrite("objectives", &PlanTemplate::objectives)
      .def_readwrite("criteria_path", &PlanTemplate::criteria_path)
      .def_readwrite("external", &PlanTemplate::external)
      .def_readwrite("bixel_mm", &PlanTemplate::bixel_mm)
      .def_readwrite("lateral_cutoff_mm", &PlanTemplate::lateral_cutoff_mm)
      .def_readwrite("target_margin_mm", &PlanTemplate::target_margin_mm)
      .def_readwrite("dose_grid_mm", &PlanTemplate::dose_grid_mm)
      .def_readwrite("smoothness_weight", &PlanTemplate::smoothness_weight)
      .def_readwrite("max_iterations", &PlanTemplate::max_iterations)
      .def("__repr__", [](const PlanTemplate& t) {
        return "PlanTemplate('" + t.name + "', " + std::to_string(t.gantry_deg.size()) + " beams, " +
               std::to_string(t.targets.size()) + " levels, " + std::to_string(t.fractions) + " fractions)";
      });
  m.def("load_template", &load_template, py::arg("name_or_path"),
        "Reads a plan template by name ('hn' -> planning/templates/hn.json, or $ISOLINE_TEMPLATE_DIR) or path.");

  py::class_<PlanTiming>(m, "PlanTiming", "Seconds spent by make_plan: influence, optimisation, dose, total.")
      .def_readonly("influence_s", &PlanTiming::influence_s)
      .def_readonly("optimize_s", &PlanTiming::optimize_s)
      .def_readonly("dose_s", &PlanTiming::dose_s)
      .def_readonly("total_s", &PlanTiming::total_s);

  py::class_<PlanResult>(m, "PlanResult", "An optimised plan, its dose (Gy, all fractions), DVHs and criteria.")
      .def_readonly("plan", &PlanResult::plan)
      .def_readonly("fractions", &PlanResult::fractions)
      .def_readonly("dose", &PlanResult::dose)
      .def_readonly("dvhs", &PlanResult::dvhs)
      .def_readonly("criteria", &PlanResult::criteria)
      .def_readonly("optimizer", &PlanResult::optimizer)
      .def_readonly("timing", &PlanResult::timing)
      .def_readonly("warnings", &PlanResult::warnings)
      .def("__repr__", [](const PlanResult& r) {
        return "PlanResult(" + std::to_string(r.plan.beams.size()) + " beams, " + std::to_string(r.fractions) +
               " fractions, " + std::to_string(r.criteria.size()) + " criteria)";
      });

  m.def("make_plan",
        [](const core::Image& ct, const core::StructureSet& structures, py::object tpl, const std::string& device,
           int max_iterations, py::object progress) {
          PlanTemplate t = py::isinstance<PlanTemplate>(tpl) ? tpl.cast<PlanTemplate>()
                                                             : load_template(py::str(tpl).cast<std::string>());
          PlanOptions o;
          o.device = core::parse_device(device);
          o.max_iterations = max_iterations;
          core::Progress prog(wrap_progress(progress), "plan");
          py::gil_scoped_release nogil;
          return make_plan(ct, structures, t, o, prog);
        },
        py::arg("ct"), py::arg("structures"), py::arg("template") = "hn", py::kw_only(), py::arg("device") = "cpu",
        py::arg("max_iterations") = 0, py::arg("progress") = py::none(),
        "Plans on a CT (HU) with its structures (masks on the CT grid) from a template (PlanTemplate, "
        "name or path): influence matrix, fluence optimisation, dose, DVHs, criteria. Releases the GIL.");

  py::class_<DoseEvaluation>(m, "DoseEvaluation",
                             "DVHs of every structure (dict name -> Dvh) and the criteria results of a dose.")
      .def_readonly("dvhs", &DoseEvaluation::dvhs)
      .def_readonly("criteria", &DoseEvaluation::criteria);
  m.def("evaluate_dose", &evaluate_dose, py::arg("dose"), py::arg("structures"),
        py::arg("criteria") = std::vector<Criterion>{}, py::call_guard<py::gil_scoped_release>(),
        "DVHs of every structure and the criteria table for a dose (any grid).");
  m.def("write_plan_json", &write_plan_json, py::arg("plan"), py::arg("fractions"), py::arg("path"),
        "Writes a plan (fluence maps, MU per fraction) as plan JSON that dose.read_plan reads back (atomic).");
}

}  // namespace isoline::py_bind
