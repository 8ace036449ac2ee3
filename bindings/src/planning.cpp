// isoline.planning bindings: DVH, metrics, criteria, fluence optimisation.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "common.h"
#include "isoline/core/error.h"
#include "isoline/planning/criteria.h"
#include "isoline/planning/dvh.h"
#include "isoline/planning/optimizer.h"

namespace py = pybind11;
using namespace isoline;
using namespace isoline::planning;

namespace isoline::py_bind {

// Pickle states. A field added to one of these structs must be added to its state: the size
// checks fail the build on the usual 64-bit libstdc++ until it is.
#if defined(__x86_64__) && defined(__GLIBCXX__)
static_assert(sizeof(Objective) == 32 + 8 + 5 * 8, "Objective changed: update its pickle state");
static_assert(sizeof(Criterion) == 2 * 32 + 8 + 8 + 32, "Criterion changed: update its pickle state");
static_assert(sizeof(DvhOptions) == 16, "DvhOptions changed: update its pickle state");
#endif

py::tuple objective_state(const Objective& o) {
  return py::make_tuple(o.structure, static_cast<int>(o.type), o.dose_gy, o.volume_percent, o.weight, o.falloff_mm,
                        o.low_dose_gy);
}

Objective objective_from_state(const py::tuple& t) {
  if (t.size() != 7) core::fail<core::InvalidInput>("unpickle Objective", "", "expected a state of 7 values");
  return Objective{t[0].cast<std::string>(), static_cast<ObjectiveType>(t[1].cast<int>()), t[2].cast<double>(),
                   t[3].cast<double>(),      t[4].cast<double>(),                           t[5].cast<double>(),
                   t[6].cast<double>()};
}

void bind_planning(py::module_ m) {
  py::class_<DvhOptions> dvh_options_class(m, "DvhOptions",
                         "DVH sampling: supersample (sub-samples per mask voxel and axis, 0 = automatic) "
                         "and bin_width_gy of the exported histograms.");
  dvh_options_class
      .def(py::init([](int supersample, double bin_width_gy) {
             DvhOptions o;
             o.supersample = supersample;
             o.bin_width_gy = bin_width_gy;
             return o;
           }),
           py::arg("supersample") = 0, py::arg("bin_width_gy") = 0.05)
      .def_readwrite("supersample", &DvhOptions::supersample)
      .def_readwrite("bin_width_gy", &DvhOptions::bin_width_gy)
      .def(py::pickle([](const DvhOptions& o) { return py::make_tuple(o.supersample, o.bin_width_gy); },
                      [](const py::tuple& t) {
                        DvhOptions o;
                        o.supersample = t[0].cast<int>();
                        o.bin_width_gy = t[1].cast<double>();
                        return o;
                      }));
  def_value_copy(dvh_options_class);

  py::class_<Dvh>(m, "Dvh", "Dose-volume histogram of one structure (exact quantiles of dose samples).")
      .def_property_readonly("name", &Dvh::name)
      .def_property_readonly("volume_cc", &Dvh::volume_cc)
      .def_property_readonly("mean_gy", &Dvh::mean_gy)
      .def_property_readonly("min_gy", &Dvh::min_gy)
      .def_property_readonly("max_gy", &Dvh::max_gy)
      .def("dose_at_percent", &Dvh::dose_at_percent, py::arg("percent"), "D<percent>%, e.g. 95 for D95")
      .def("dose_at_cc", &Dvh::dose_at_cc, py::arg("cc"), "D<cc>cc, e.g. 0.1 for D0.1cc")
      .def("volume_fraction_at_dose", &Dvh::volume_fraction_at_dose, py::arg("gy"),
           "Fraction (0..1) of the structure's volume receiving at least `gy` (V<gy>Gy / 100).")
      .def("metric", [](const Dvh& d, const std::string& name) { return evaluate_metric(d, name); }, py::arg("name"),
           "Metric by name: Dmean, Dmax, Dmin, D95%, D0.1cc, V20Gy, V20Gy_cc")
      .def("cumulative",
           [](const Dvh& d, double bin) {
             std::vector<double> x, y;
             d.cumulative(bin, &x, &y);
             return py::make_tuple(py::array_t<double>(x.size(), x.data()), py::array_t<double>(y.size(), y.data()));
           },
           py::arg("bin_width_gy") = 0.1, "(dose_gy, volume_fraction) arrays of the cumulative DVH")
      .def("__repr__", [](const Dvh& d) {
        char buf[200];
        std::snprintf(buf, sizeof buf, "Dvh('%s', %.2f cc, mean %.2f Gy, max %.2f Gy)", d.name().c_str(), d.volume_cc(),
                      d.mean_gy(), d.max_gy());
        return std::string(buf);
      });

  m.def("compute_dvh",
        [](const core::Image& dose, const core::Image& mask, const std::string& name, const DvhOptions& options) {
          Dvh d;
          double outside = 0.0;
          {
            py::gil_scoped_release nogil;
            d = compute_dvh(dose, mask, name, options);
            outside = fraction_outside(dose.geometry(), mask);
          }
          if (outside > 0.01) {
            char msg[300];
            std::snprintf(msg, sizeof msg,
                          "compute DVH: %s: %.1f %% of the mask's voxels lie outside the dose grid (counted as 0 Gy "
                          "there)",
                          name.c_str(), 100.0 * outside);
            if (PyErr_WarnEx(PyExc_UserWarning, msg, 1) != 0) throw py::error_already_set();
          }
          return d;
        },
        py::arg("dose"), py::arg("mask"), py::arg("name") = "structure", py::arg("options") = DvhOptions{},
        "DVH of a uint8 mask (any grid) in a float32 dose (Gy), dose interpolated trilinearly at the "
        "mask's voxel centres (sub-sampled, see DvhOptions). Mask voxels outside the dose grid count "
        "as 0 Gy (they lower Dmean and the low percentiles): when more than 1 % of them are outside, "
        "a UserWarning says how many (warnings.catch_warnings(record=True) collects it; "
        "fraction_outside() gives the number). Releases the GIL.");
  m.def("fraction_outside", &fraction_outside, py::arg("dose_grid"), py::arg("mask"),
        py::call_guard<py::gil_scoped_release>(),
        "Fraction (0..1) of a uint8 mask's voxels whose centres lie more than half a voxel outside "
        "dose_grid, where compute_dvh counts 0 Gy; 0 for an empty mask.");
  m.def("homogeneity_index", &homogeneity_index, py::arg("target_dvh"),
        "Homogeneity index (ICRU 83) of a target's DVH: (D2 - D98) / D50.");
  m.def("conformity_index", &conformity_index, py::arg("dose"), py::arg("target"), py::arg("rx_gy"),
        py::arg("options") = DvhOptions{}, py::call_guard<py::gil_scoped_release>(),
        "Paddick conformity index TV_PIV^2 / (TV * PIV) of a target mask for the prescription rx_gy.");

  py::class_<Criterion> criterion_class(m, "Criterion",
                        "A plan criterion: a structure's metric at most (or at least) a limit. Picklable.");
  criterion_class
      .def(py::init<>())
      .def_readwrite("structure", &Criterion::structure)
      .def_readwrite("metric", &Criterion::metric)
      .def_readwrite("at_most", &Criterion::at_most)
      .def_readwrite("limit", &Criterion::limit)
      .def_readwrite("description", &Criterion::description)
      .def(py::pickle(
          [](const Criterion& c) { return py::make_tuple(c.structure, c.metric, c.at_most, c.limit, c.description); },
          [](const py::tuple& t) {
            if (t.size() != 5) core::fail<core::InvalidInput>("unpickle Criterion", "", "expected a state of 5 values");
            return Criterion{t[0].cast<std::string>(), t[1].cast<std::string>(), t[2].cast<bool>(),
                             t[3].cast<double>(), t[4].cast<std::string>()};
          }))
      .def("__repr__", [](const Criterion& c) { return "Criterion('" + c.description + "')"; });
  def_value_copy(criterion_class);
  py::class_<CriterionResult>(m, "CriterionResult",
                              "A criterion's value and pass/fail (evaluated is False when the "
                              "structure is missing).")
      .def_readonly("criterion", &CriterionResult::criterion)
      .def_readonly("evaluated", &CriterionResult::evaluated)
      .def_readonly("value", &CriterionResult::value)
      .def_readonly("passed", &CriterionResult::pass)
      .def_readonly("value_subvoxel", &CriterionResult::value_subvoxel,
                    "the metric on a 4x4x4 sub-voxel DVH (as a planning system shows it); NaN when not computed")
      .def_readonly("passed_subvoxel", &CriterionResult::pass_subvoxel,
                    "the verdict on value_subvoxel (False when it is not computed); `passed` stays the "
                    "verdict at mask-voxel centres, which the normalisation uses")
      .def("verdict_differs", &CriterionResult::verdict_differs,
           "True when value_subvoxel was computed and gives the other verdict than `value`: PASS at voxel "
           "centres but FAIL as a planning system computes it from RS + RD, or the reverse");
  m.def("load_criteria", &load_criteria, py::arg("path"),
        "Reads a criteria JSON file (e.g. planning/criteria/hn.json) into a list of Criterion.");
  m.def("evaluate_criteria", &evaluate_criteria, py::arg("criteria"), py::arg("dvhs"),
        "dvhs: dict name -> Dvh");

  py::class_<SparseMatrix>(m, "SparseMatrix", "CSR matrix, rows = voxels, columns = beamlets (float32).")
      .def(py::init([](py::array_t<std::int64_t, py::array::forcecast> indptr,
                       py::array_t<std::int32_t, py::array::forcecast> indices,
                       py::array_t<float, py::array::forcecast> data, std::int64_t n_cols) {
             SparseMatrix a;
             a.rows = static_cast<std::int64_t>(indptr.size()) - 1;
             a.cols = n_cols;
             a.row_ptr.assign(indptr.data(), indptr.data() + indptr.size());
             a.col.assign(indices.data(), indices.data() + indices.size());
             a.val.assign(data.data(), data.data() + data.size());
             a.validate("SparseMatrix");
             return a;
           }),
           py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n_cols"),
           "From CSR arrays (e.g. scipy.sparse.csr_matrix: indptr, indices, data, shape[1]).")
      .def_readonly("rows", &SparseMatrix::rows)
      .def_readonly("cols", &SparseMatrix::cols)
      .def_property_readonly("nnz", &SparseMatrix::nnz)
      .def("dot", [](const SparseMatrix& a, py::array_t<float, py::array::forcecast> x) {
             if (x.size() != a.cols) core::fail<core::InvalidInput>("multiply", "x", "length must equal the number of columns");
             std::vector<float> xv(x.data(), x.data() + x.size()), y;
             {
               py::gil_scoped_release nogil;
               a.multiply(xv, &y);
             }
             return py::array_t<float>(y.size(), y.data());
           }, py::arg("x"), "A @ x: one value per row (voxel) for beamlet weights x (float32 array of cols values).");

  py::enum_<ObjectiveType>(m, "ObjectiveType", "Kind of a fluence optimisation objective.")
      .value("MIN_DOSE", ObjectiveType::MinDose)
      .value("MAX_DOSE", ObjectiveType::MaxDose)
      .value("UNIFORM_DOSE", ObjectiveType::UniformDose)
      .value("MAX_MEAN", ObjectiveType::MaxMean)
      .value("MAX_DVH", ObjectiveType::MaxDvh)
      .value("MIN_DVH", ObjectiveType::MinDvh)
      .value("FALL_OFF", ObjectiveType::FallOff);
  py::class_<Objective> objective_class(m, "Objective",
                        "A weighted optimisation objective on one structure (volume_percent for the "
                        "DVH types; falloff_mm and low_dose_gy for FALL_OFF). Picklable.");
  objective_class
      .def(py::init([](std::string structure, ObjectiveType type, double dose_gy, double volume_percent, double weight,
                       double falloff_mm, double low_dose_gy) {
             return Objective{std::move(structure), type, dose_gy, volume_percent, weight, falloff_mm, low_dose_gy};
           }),
           py::arg("structure"), py::arg("type"), py::arg("dose_gy"), py::arg("volume_percent") = 0.0,
           py::arg("weight") = 1.0, py::arg("falloff_mm") = 0.0, py::arg("low_dose_gy") = 0.0)
      .def_readwrite("structure", &Objective::structure)
      .def_readwrite("type", &Objective::type)
      .def_readwrite("dose_gy", &Objective::dose_gy)
      .def_readwrite("volume_percent", &Objective::volume_percent)
      .def_readwrite("weight", &Objective::weight)
      .def_readwrite("falloff_mm", &Objective::falloff_mm)
      .def_readwrite("low_dose_gy", &Objective::low_dose_gy)
      .def(py::pickle([](const Objective& o) { return objective_state(o); },
                      [](const py::tuple& t) { return objective_from_state(t); }))
      .def("__repr__", [](const Objective& o) {
        char buf[200];
        std::snprintf(buf, sizeof buf, "Objective('%s', %s, %g Gy, weight %g)", o.structure.c_str(),
                      py::str(py::cast(o.type)).cast<std::string>().c_str(), o.dose_gy, o.weight);
        return std::string(buf);
      });
  def_value_copy(objective_class);

  m.def("optimize_fluence",
        [](const SparseMatrix& a, const std::map<std::string, py::array_t<std::int64_t, py::array::forcecast>>& structures,
           const std::vector<Objective>& objectives, const std::vector<std::pair<std::int32_t, std::int32_t>>& neighbours,
           double smoothness, const std::string& norm_structure, double norm_dose, int max_iterations,
           const std::map<std::string, py::array_t<float, py::array::forcecast>>& distances, py::object progress,
           const std::string& device) {
          FluenceProblem p;
          p.influence = &a;
          for (const auto& [name, rows] : structures) {
            VoxelSet s;
            s.name = name;
            s.rows.assign(rows.data(), rows.data() + rows.size());
            auto it = distances.find(name);
            if (it != distances.end()) s.distance_mm.assign(it->second.data(), it->second.data() + it->second.size());
            p.structures.push_back(std::move(s));
          }
          p.objectives = objectives;
          p.neighbours = neighbours;
          p.smoothness_weight = smoothness;
          p.normalisation_structure = norm_structure;
          p.normalisation_dose_gy = norm_dose;
          OptimizerOptions opt;
          opt.max_iterations = max_iterations;
          opt.device = core::parse_device(device);
          core::Progress prog(wrap_progress(progress), "optimise");
          OptimizerResult r;
          {
            py::gil_scoped_release nogil;
            r = optimize_fluence(p, opt, prog);
          }
          py::dict out;
          out["weights"] = py::array_t<float>(r.weights.size(), r.weights.data());
          out["objective"] = py::array_t<double>(r.objective_history.size(), r.objective_history.data());
          out["iterations"] = r.iterations;
          out["converged"] = r.converged;
          return out;
        },
        py::arg("influence"), py::arg("structures"), py::arg("objectives"),
        py::arg("neighbours") = std::vector<std::pair<std::int32_t, std::int32_t>>{}, py::arg("smoothness") = 0.0,
        py::arg("normalise_structure") = "", py::arg("normalise_dose_gy") = 0.0, py::arg("max_iterations") = 300,
        py::arg("distances") = std::map<std::string, py::array_t<float, py::array::forcecast>>{},
        py::arg("progress") = py::none(), py::arg("device") = "cpu",
        "Optimises non-negative beamlet weights. structures: dict name -> row indices of the influence "
        "matrix. Returns dict(weights, objective, iterations, converged). Releases the GIL; "
        "progress(stage, fraction, detail) may raise to cancel. device='cuda': the matrix products on "
        "the GPU (DeviceError where there is none).");
}

}  // namespace isoline::py_bind
