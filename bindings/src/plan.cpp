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

namespace {

// Every field of a PlanTemplate, by name (a field added to the struct must be added here: the
// size check below fails the build on the usual 64-bit libstdc++ until it is).
#if defined(__x86_64__) && defined(__GLIBCXX__)
// 5 strings, 3 vectors, 8 + 6 doubles of rules, 8 doubles, 3 ints (+ 4 bytes of padding).
static_assert(sizeof(PlanTemplate) == 5 * 32 + 3 * 24 + (8 + 6) * 8 + 8 * 8 + 4 * 4,
              "PlanTemplate changed: update its pickle state in bindings/src/plan.cpp");
static_assert(sizeof(TargetLevel) == 32 + 8, "TargetLevel changed: update its pickle state");
static_assert(sizeof(TargetRules) == 8 * 8 && sizeof(FallOffRule) == 6 * 8,
              "TargetRules/FallOffRule changed: update the PlanTemplate pickle state in bindings/src/plan.cpp");
#endif

py::dict template_state(const PlanTemplate& t) {
  py::dict d;
  d["name"] = t.name;
  d["source"] = t.source;
  d["machine"] = t.machine;
  d["fractions"] = t.fractions;
  d["gantry_deg"] = t.gantry_deg;
  d["targets"] = t.targets;
  d["objectives"] = t.objectives;
  const TargetRules& r = t.target_rules;
  d["target_rules"] = py::make_tuple(r.min_percent, r.min_weight, r.max_percent, r.max_weight, r.d99_percent,
                                     r.d99_weight, r.edge_weight, r.oar_edge_weight);
  const FallOffRule& f = t.falloff;
  d["falloff"] = py::make_tuple(f.start_percent, f.end_percent, f.distance_mm, f.weight, f.hot_spot_percent,
                                f.hot_spot_weight);
  d["normalise_percent"] = t.normalise_percent;
  d["min_d99_percent"] = t.min_d99_percent;
  d["max_d99_boost_percent"] = t.max_d99_boost_percent;
  d["criteria_path"] = t.criteria_path;
  d["external"] = t.external;
  d["bixel_mm"] = t.bixel_mm;
  d["lateral_cutoff_mm"] = t.lateral_cutoff_mm;
  d["target_margin_mm"] = t.target_margin_mm;
  d["dose_grid_mm"] = t.dose_grid_mm;
  d["smoothness_weight"] = t.smoothness_weight;
  d["max_iterations"] = t.max_iterations;
  d["correction_passes"] = t.correction_passes;
  return d;
}

PlanTemplate template_from_state(const py::dict& d) {
  PlanTemplate t;
  t.name = d["name"].cast<std::string>();
  t.source = d["source"].cast<std::string>();
  t.machine = d["machine"].cast<std::string>();
  t.fractions = d["fractions"].cast<int>();
  t.gantry_deg = d["gantry_deg"].cast<std::vector<double>>();
  t.targets = d["targets"].cast<std::vector<TargetLevel>>();
  t.objectives = d["objectives"].cast<std::vector<Objective>>();
  // (6 values: a state pickled before the edge samples, which were then off)
  const auto r = d["target_rules"].cast<std::vector<double>>();
  if (r.size() != 6 && r.size() != 8)
    throw py::value_error("PlanTemplate state: target_rules must have 6 or 8 values, got " + std::to_string(r.size()));
  t.target_rules = TargetRules{r[0], r[1], r[2], r[3], r[4], r[5], r.size() == 8 ? r[6] : 0.0, r.size() == 8 ? r[7] : 0.0};
  const auto f = d["falloff"].cast<std::array<double, 6>>();
  t.falloff = FallOffRule{f[0], f[1], f[2], f[3], f[4], f[5]};
  t.normalise_percent = d["normalise_percent"].cast<double>();
  t.min_d99_percent = d["min_d99_percent"].cast<double>();
  t.max_d99_boost_percent = d["max_d99_boost_percent"].cast<double>();
  t.criteria_path = d["criteria_path"].cast<std::string>();
  t.external = d["external"].cast<std::string>();
  t.bixel_mm = d["bixel_mm"].cast<double>();
  t.lateral_cutoff_mm = d["lateral_cutoff_mm"].cast<double>();
  t.target_margin_mm = d["target_margin_mm"].cast<double>();
  t.dose_grid_mm = d["dose_grid_mm"].cast<double>();
  t.smoothness_weight = d["smoothness_weight"].cast<double>();
  t.max_iterations = d["max_iterations"].cast<int>();
  t.correction_passes = d["correction_passes"].cast<int>();
  return t;
}

}  // namespace

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

  py::class_<TargetLevel> target_level_class(m, "TargetLevel",
                                             "A prescription level: target structure and dose over all fractions.");
  target_level_class
      .def(py::init([](std::string s, double d) { return TargetLevel{std::move(s), d}; }), py::arg("structure"),
           py::arg("dose_gy"))
      .def_readwrite("structure", &TargetLevel::structure)
      .def_readwrite("dose_gy", &TargetLevel::dose_gy)
      .def(py::pickle([](const TargetLevel& t) { return py::make_tuple(t.structure, t.dose_gy); },
                      [](const py::tuple& t) { return TargetLevel{t[0].cast<std::string>(), t[1].cast<double>()}; }))
      .def("__repr__", [](const TargetLevel& t) { return "TargetLevel('" + t.structure + "', " + std::to_string(t.dose_gy) + " Gy)"; });
  def_value_copy(target_level_class);

  py::class_<PlanTemplate> template_class(m, "PlanTemplate",
                                          "Beams, prescription levels, objectives and criteria of a plan class. "
                                          "Picklable (every field, those not exposed here too); "
                                          "copy.copy/deepcopy give an independent copy to edit.");
  template_class
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
      .def(py::pickle(&template_state, &template_from_state))
      .def("__repr__", [](const PlanTemplate& t) {
        return "PlanTemplate('" + t.name + "', " + std::to_string(t.gantry_deg.size()) + " beams, " +
               std::to_string(t.targets.size()) + " levels, " + std::to_string(t.fractions) + " fractions)";
      });
  def_value_copy(template_class);
  m.def("load_template", &load_template, py::arg("name_or_path"),
        "Reads a plan template by name ('hn' -> planning/templates/hn.json, or $ISOLINE_TEMPLATE_DIR) or path.");
  // The template make_plan, pipeline.run_case and the batch 'run' job use when none is named.
  m.attr("DEFAULT_TEMPLATE") = kDefaultTemplate;

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
        py::arg("ct"), py::arg("structures"), py::arg("template") = kDefaultTemplate, py::kw_only(), py::arg("device") = "cpu",
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
