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

void bind_planning(py::module_ m) {
  py::class_<DvhOptions>(m, "DvhOptions",
                         "DVH sampling: supersample (sub-samples per mask voxel and axis, 0 = automatic) "
                         "and bin_width_gy of the exported histograms.")
      .def(py::init([](int supersample, double bin_width_gy) {
             DvhOptions o;
             o.supersample = supersample;
             o.bin_width_gy = bin_width_gy;
             return o;
           }),
           py::arg("supersample") = 0, py::arg("bin_width_gy") = 0.05)
      .def_readwrite("supersample", &DvhOptions::supersample)
      .def_readwrite("bin_width_gy", &DvhOptions::bin_width_gy);

  py::class_<Dvh>(m, "Dvh", "Dose-volume histogram of one structure (exact quantiles of dose samples).")
      .def_property_readonly("name", &Dvh::name)
      .def_property_readonly("volume_cc", &Dvh::volume_cc)
      .def_property_readonly("mean_gy", &Dvh::mean_gy)
      .def_property_readonly("min_gy", &Dvh::min_gy)
      .def_property_readonly("max_gy", &Dvh::max_gy)
      .def("dose_at_percent", &Dvh::dose_at_percent, py::arg("percent"), "D<percent>%, e.g. 95 for D95")
      .def("dose_at_cc", &Dvh::dose_at_cc, py::arg("cc"), "D<cc>cc, e.g. 0.1 for D0.1cc")
      .def("volume_fraction_at_dose", &Dvh::volume_fraction_at_dose, py::arg("gy"))
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

  m.def("compute_dvh", &compute_dvh, py::arg("dose"), py::arg("mask"), py::arg("name") = "structure",
        py::arg("options") = DvhOptions{}, py::call_guard<py::gil_scoped_release>(),
        "DVH of a uint8 mask (any grid) in a float32 dose (Gy), dose interpolated trilinearly.");
  m.def("homogeneity_index", &homogeneity_index, py::arg("target_dvh"),
        "Homogeneity index (ICRU 83) of a target's DVH: (D2 - D98) / D50.");
  m.def("conformity_index", &conformity_index, py::arg("dose"), py::arg("target"), py::arg("rx_gy"),
        py::arg("options") = DvhOptions{}, py::call_guard<py::gil_scoped_release>(),
        "Paddick conformity index TV_PIV^2 / (TV * PIV) of a target mask for the prescription rx_gy.");

  py::class_<Criterion>(m, "Criterion",
                        "A plan criterion: a structure's metric at most (or at least) a limit.")
      .def(py::init<>())
      .def_readwrite("structure", &Criterion::structure)
      .def_readwrite("metric", &Criterion::metric)
      .def_readwrite("at_most", &Criterion::at_most)
      .def_readwrite("limit", &Criterion::limit)
      .def_readwrite("description", &Criterion::description)
      .def("__repr__", [](const Criterion& c) { return "Criterion('" + c.description + "')"; });
  py::class_<CriterionResult>(m, "CriterionResult",
                              "A criterion's value and pass/fail (evaluated is False when the "
                              "structure is missing).")
      .def_readonly("criterion", &CriterionResult::criterion)
      .def_readonly("evaluated", &CriterionResult::evaluated)
      .def_readonly("value", &CriterionResult::value)
      .def_readonly("passed", &CriterionResult::pass)
      .def_readonly("value_subvoxel", &CriterionResult::value_subvoxel,
                    "the metric on a 4x4x4 sub-voxel DVH (as a planning system shows it); NaN when not computed");
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
           }, py::arg("x"));

  py::enum_<ObjectiveType>(m, "ObjectiveType", "Kind of a fluence optimisation objective.")
      .value("MIN_DOSE", ObjectiveType::MinDose)
      .value("MAX_DOSE", ObjectiveType::MaxDose)
      .value("UNIFORM_DOSE", ObjectiveType::UniformDose)
      .value("MAX_MEAN", ObjectiveType::MaxMean)
      .value("MAX_DVH", ObjectiveType::MaxDvh)
      .value("MIN_DVH", ObjectiveType::MinDvh)
      .value("FALL_OFF", ObjectiveType::FallOff);
  py::class_<Objective>(m, "Objective",
                        "A weighted optimisation objective on one structure (volume_percent for the "
                        "DVH types; falloff_mm and low_dose_gy for FALL_OFF).")
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
      .def_readwrite("weight", &Objective::weight);

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
