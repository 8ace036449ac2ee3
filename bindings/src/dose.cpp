// isoline.dose bindings: plans, CT calibration, dose calculation (CPU/CUDA), influence matrix.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "common.h"
#include "isoline/core/device.h"
#include "isoline/core/error.h"
#include "isoline/dose/dose.h"
#include "isoline/planning/optimizer.h"

namespace py = pybind11;
using namespace isoline;
using namespace isoline::dose;

namespace isoline::py_bind {

namespace {

template <class T>
py::array_t<T> to_array(const std::vector<T>& v) {
  return py::array_t<T>(static_cast<py::ssize_t>(v.size()), v.data());
}

// Pickle states. A field added to one of these structs must be added to its state: the size
// checks fail the build on the usual 64-bit libstdc++ until it is.
#if defined(__x86_64__) && defined(__GLIBCXX__)
static_assert(sizeof(FluenceMap) == 4 * 8 + 2 * 4 + 24, "FluenceMap changed: update its pickle state");
static_assert(sizeof(Beam) == 32 + 3 * 8 + 3 * 8 + 4 * 8 + sizeof(FluenceMap) + 8, "Beam changed: update its pickle state");
static_assert(sizeof(CalcOptions) == 24, "CalcOptions changed: update its pickle state");
static_assert(sizeof(HuCalibration) == 3 * 24, "HuCalibration changed: update its pickle state");
static_assert(sizeof(Plan) == 2 * 32 + sizeof(Machine) + 24 + sizeof(CalcOptions) + sizeof(HuCalibration) + 8,
              "Plan changed: update its pickle state");
#endif

py::tuple fluence_state(const FluenceMap& f) {
  return py::make_tuple(f.x0_mm, f.y0_mm, f.dx_mm, f.dy_mm, f.nx, f.ny, f.weight);
}

FluenceMap fluence_from_state(const py::tuple& t) {
  if (t.size() != 7) core::fail<core::InvalidInput>("unpickle FluenceMap", "", "expected a state of 7 values");
  FluenceMap f;
  f.x0_mm = t[0].cast<double>();
  f.y0_mm = t[1].cast<double>();
  f.dx_mm = t[2].cast<double>();
  f.dy_mm = t[3].cast<double>();
  f.nx = t[4].cast<int>();
  f.ny = t[5].cast<int>();
  f.weight = t[6].cast<std::vector<float>>();
  return f;
}

py::tuple beam_state(const Beam& b) {
  return py::make_tuple(b.name, b.gantry_deg, b.couch_deg, b.collimator_deg, b.isocenter_mm,
                        py::make_tuple(b.jaw_x1_mm, b.jaw_x2_mm, b.jaw_y1_mm, b.jaw_y2_mm), fluence_state(b.fluence),
                        b.mu);
}

Beam beam_from_state(const py::tuple& t) {
  if (t.size() != 8) core::fail<core::InvalidInput>("unpickle Beam", "", "expected a state of 8 values");
  Beam b;
  b.name = t[0].cast<std::string>();
  b.gantry_deg = t[1].cast<double>();
  b.couch_deg = t[2].cast<double>();
  b.collimator_deg = t[3].cast<double>();
  b.isocenter_mm = t[4].cast<std::array<double, 3>>();
  const auto jaws = t[5].cast<std::array<double, 4>>();
  b.jaw_x1_mm = jaws[0];
  b.jaw_x2_mm = jaws[1];
  b.jaw_y1_mm = jaws[2];
  b.jaw_y2_mm = jaws[3];
  b.fluence = fluence_from_state(t[6].cast<py::tuple>());
  b.mu = t[7].cast<double>();
  return b;
}

py::tuple calc_options_state(const CalcOptions& o) {
  return py::make_tuple(o.n_zenith, o.n_azimuth, o.density_threshold, o.use_cuda, o.cuda_device);
}

CalcOptions calc_options_from_state(const py::tuple& t) {
  if (t.size() != 5) core::fail<core::InvalidInput>("unpickle CalcOptions", "", "expected a state of 5 values");
  CalcOptions o;
  o.n_zenith = t[0].cast<int>();
  o.n_azimuth = t[1].cast<int>();
  o.density_threshold = t[2].cast<double>();
  o.use_cuda = t[3].cast<bool>();
  o.cuda_device = t[4].cast<int>();
  return o;
}

py::tuple hu_state(const HuCalibration& c) { return py::make_tuple(c.hu, c.mass_density, c.relative_electron_density); }

HuCalibration hu_from_state(const py::tuple& t) {
  if (t.size() != 3) core::fail<core::InvalidInput>("unpickle HuCalibration", "", "expected a state of 3 values");
  return HuCalibration{t[0].cast<std::vector<double>>(), t[1].cast<std::vector<double>>(),
                       t[2].cast<std::vector<double>>()};
}

// A plan's machine is pickled by its file (machine_path, else its name), as plan JSON does, and
// read again on unpickling.
py::dict plan_state(const Plan& p) {
  py::dict d;
  d["name"] = p.name;
  d["machine_path"] = p.machine_path;
  d["machine_name"] = p.machine.name;
  py::list beams;
  for (const Beam& b : p.beams) beams.append(beam_state(b));
  d["beams"] = beams;
  d["options"] = calc_options_state(p.options);
  d["hu"] = hu_state(p.hu);
  d["fractions"] = p.fractions;
  return d;
}

Plan plan_from_state(const py::dict& d) {
  Plan p;
  p.name = d["name"].cast<std::string>();
  p.machine_path = d["machine_path"].cast<std::string>();
  const std::string machine_name = d["machine_name"].cast<std::string>();
  if (!p.machine_path.empty())
    p.machine = load_machine(p.machine_path);
  else if (!machine_name.empty())
    p.machine = load_machine(find_machine(machine_name));
  for (const auto& b : d["beams"].cast<py::list>()) p.beams.push_back(beam_from_state(b.cast<py::tuple>()));
  p.options = calc_options_from_state(d["options"].cast<py::tuple>());
  p.hu = hu_from_state(d["hu"].cast<py::tuple>());
  p.fractions = d["fractions"].cast<int>();
  return p;
}

}  // namespace

void bind_dose(py::module_ m) {
  py::class_<HuCalibration> hu_class(m, "HuCalibration",
                                     "Piecewise-linear HU -> mass density and relative electron density. Picklable.");
  hu_class
      .def(py::init([](std::vector<double> hu, std::vector<double> mass, std::vector<double> electron) {
             HuCalibration c{std::move(hu), std::move(mass), std::move(electron)};
             c.validate("HuCalibration");
             return c;
           }),
           py::arg("hu"), py::arg("mass_density"), py::arg("relative_electron_density"))
      .def_static("generic", &HuCalibration::generic, "A generic CT curve (air, lung, fat, water, tissue, bone).")
      .def_readonly("hu", &HuCalibration::hu)
      .def_readonly("mass_density", &HuCalibration::mass_density)
      .def_readonly("relative_electron_density", &HuCalibration::relative_electron_density)
      .def("mass", &HuCalibration::mass, py::arg("hu"),
           "Mass density (g/cm^3) at a CT number (HU), interpolated linearly in the table (the end "
           "values beyond it).")
      .def("electron", &HuCalibration::electron, py::arg("hu"),
           "Electron density relative to water at a CT number (HU), interpolated linearly in the "
           "table (the end values beyond it).")
      .def(py::pickle(&hu_state, &hu_from_state));
  def_value_copy(hu_class);
  m.def("electron_density_from_ct", &electron_density_from_ct, py::arg("ct"),
        py::arg("calibration") = HuCalibration::generic(), py::call_guard<py::gil_scoped_release>(),
        "Relative electron density (float32) of a CT in HU: the dose engine's density input.");
  m.def("mass_density_from_ct", &mass_density_from_ct, py::arg("ct"), py::arg("calibration") = HuCalibration::generic(),
        py::call_guard<py::gil_scoped_release>(), "Mass density (float32, g/cm^3) of a CT in HU.");

  py::class_<Machine>(m, "Machine", "Beam model of a treatment machine (read-only here; edit the JSON).")
      .def_readonly("name", &Machine::name)
      .def_readonly("sad_mm", &Machine::sad_mm)
      .def_readonly("max_jaw_mm", &Machine::max_jaw_mm)
      .def_readonly("reference_gy_per_mu", &Machine::reference_gy_per_mu)
      .def("__repr__", [](const Machine& mc) { return "Machine('" + mc.name + "')"; });
  m.def("load_machine", &load_machine, py::arg("path"), "Reads a machine (beam model) JSON file.");

  py::class_<FluenceMap> fluence_class(m, "FluenceMap",
                                       "Relative fluence on a bixel grid in the isocentre plane (mm). Picklable.");
  fluence_class
      .def(py::init<>())
      .def_readwrite("x0_mm", &FluenceMap::x0_mm)
      .def_readwrite("y0_mm", &FluenceMap::y0_mm)
      .def_readwrite("dx_mm", &FluenceMap::dx_mm)
      .def_readwrite("dy_mm", &FluenceMap::dy_mm)
      .def_readonly("nx", &FluenceMap::nx)
      .def_readonly("ny", &FluenceMap::ny)
      .def_property("weight",
                    [](const FluenceMap& f) {
                      py::array_t<float> a({py::ssize_t(f.ny), py::ssize_t(f.nx)});
                      std::copy(f.weight.begin(), f.weight.end(), a.mutable_data());
                      return a;
                    },
                    [](FluenceMap& f, py::array_t<float, py::array::c_style | py::array::forcecast> a) {
                      if (a.ndim() != 2) core::fail<core::InvalidInput>("set fluence", "weight", "expected (ny, nx)");
                      f.ny = static_cast<int>(a.shape(0));
                      f.nx = static_cast<int>(a.shape(1));
                      f.weight.assign(a.data(), a.data() + a.size());
                    },
                    "(ny, nx) array of relative weights (a copy; assign to change)")
      .def("empty", &FluenceMap::empty, "True when the map has no bixels (the beam is an open field between its jaws).")
      .def(py::pickle(&fluence_state, &fluence_from_state));
  def_value_copy(fluence_class);

  py::class_<Beam> beam_class(m, "Beam",
                              "One beam (IEC 61217 angles, LPS isocentre, jaws in the isocentre plane, MU). Picklable.");
  beam_class
      .def(py::init<>())
      .def_readwrite("name", &Beam::name)
      .def_readwrite("gantry_deg", &Beam::gantry_deg)
      .def_readwrite("couch_deg", &Beam::couch_deg)
      .def_readwrite("collimator_deg", &Beam::collimator_deg)
      .def_readwrite("isocenter_mm", &Beam::isocenter_mm)
      .def_readwrite("jaw_x1_mm", &Beam::jaw_x1_mm)
      .def_readwrite("jaw_x2_mm", &Beam::jaw_x2_mm)
      .def_readwrite("jaw_y1_mm", &Beam::jaw_y1_mm)
      .def_readwrite("jaw_y2_mm", &Beam::jaw_y2_mm)
      .def_readwrite("fluence", &Beam::fluence)
      .def_readwrite("mu", &Beam::mu)
      .def("__repr__", [](const Beam& b) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "Beam('%s', gantry %.1f, %.1f MU)", b.name.c_str(), b.gantry_deg, b.mu);
        return std::string(buf);
      })
      .def(py::pickle(&beam_state, &beam_from_state));
  def_value_copy(beam_class);

  py::class_<CalcOptions> calc_class(m, "CalcOptions",
                          "Collapsed-cone settings: cone directions (n_zenith x n_azimuth) and the "
                          "density below which voxels carry no TERMA. Picklable.");
  calc_class
      .def(py::init<>())
      .def_readwrite("n_zenith", &CalcOptions::n_zenith)
      .def_readwrite("n_azimuth", &CalcOptions::n_azimuth)
      .def_readwrite("density_threshold", &CalcOptions::density_threshold)
      .def(py::pickle(&calc_options_state, &calc_options_from_state));
  def_value_copy(calc_class);

  py::class_<Plan> plan_class(m, "Plan",
                              "A treatment plan: machine, beams, calculation options, CT calibration. Picklable: the "
                              "machine goes by its file (machine_path) and is read again on unpickling; "
                              "copy.copy/deepcopy give an independent copy.");
  plan_class
      .def(py::init<>())
      .def_readwrite("name", &Plan::name)
      .def_readonly("machine_path", &Plan::machine_path)
      .def_readonly("machine", &Plan::machine)
      .def_readwrite("beams", &Plan::beams)
      .def_readwrite("options", &Plan::options)
      .def_readwrite("hu", &Plan::hu)
      .def("__repr__", [](const Plan& p) {
        return "Plan('" + p.name + "', " + std::to_string(p.beams.size()) + " beams, machine '" + p.machine.name + "')";
      })
      .def(py::pickle(&plan_state, &plan_from_state));
  def_value_copy(plan_class);
  m.def("read_plan", &read_plan, py::arg("path"),
        "Reads a plan JSON (docs/dose.md); the machine is resolved by name.");
  m.def("parse_plan", &parse_plan, py::arg("json_text"), py::arg("source") = "<string>", py::arg("base_dir") = ".",
        "A plan from JSON text (as read_plan; `source` names it in errors, the machine is also "
        "looked for in base_dir).");
  m.def("find_machine", &find_machine, py::arg("name_or_path"), py::arg("base_dir") = ".",
        "Path of a machine file by name ('generic_6mv') or path; IoError when not found.");

  m.def("compute_dose",
        [](const core::Image& ct, const Plan& plan, const std::string& device, py::object progress) {
          core::Device d = core::parse_device(device);
          core::Progress prog(wrap_progress(progress), "dose");
          py::gil_scoped_release nogil;
          return compute_dose(ct, plan, d, prog);
        },
        py::arg("ct"), py::arg("plan"), py::kw_only(), py::arg("device") = "cpu", py::arg("progress") = py::none(),
        "Dose (float32 Gy) on the CT grid for the plan's beams and MU (collapsed-cone convolution). "
        "device: 'cpu' or 'cuda' (DeviceError when unavailable). Releases the GIL.");

  py::class_<BeamletInfo>(m, "BeamletInfo",
                          "A column of the influence matrix: its beam (index) and bixel centre (x_mm, y_mm) "
                          "in the isocentre plane.")
      .def_readonly("beam", &BeamletInfo::beam)
      .def_readonly("x_mm", &BeamletInfo::x_mm)
      .def_readonly("y_mm", &BeamletInfo::y_mm);
  py::class_<InfluenceMatrix>(m, "InfluenceMatrix",
                              "CSR float32: rows = CT voxels (linear index, i fastest), columns = beamlets; Gy per MU.")
      .def_readonly("rows", &InfluenceMatrix::rows)
      .def_readonly("cols", &InfluenceMatrix::cols)
      .def_property_readonly("nnz", &InfluenceMatrix::nnz)
      .def_property_readonly("indptr", [](const InfluenceMatrix& a) { return to_array(a.row_ptr); }, "copy")
      .def_property_readonly("indices", [](const InfluenceMatrix& a) { return to_array(a.col_index); }, "copy")
      .def_property_readonly("data", [](const InfluenceMatrix& a) { return to_array(a.values); }, "copy")
      .def_readonly("beamlets", &InfluenceMatrix::beamlets)
      .def("dot", [](const InfluenceMatrix& a, py::array_t<float, py::array::forcecast> x) {
             if (x.size() != a.cols) core::fail<core::InvalidInput>("multiply", "x", "length must equal the number of columns");
             std::vector<float> xv(x.data(), x.data() + x.size()), y;
             {
               py::gil_scoped_release nogil;
               y = a.multiply(xv);
             }
             return to_array(y);
           }, py::arg("x"), "A @ x: dose (Gy) per CT voxel for beamlet weights x (MU; float32 array of cols values).")
      .def("to_sparse_matrix", [](const InfluenceMatrix& a) {
             planning::SparseMatrix s;
             s.rows = a.rows;
             s.cols = a.cols;
             s.row_ptr = a.row_ptr;
             s.col = a.col_index;
             s.val = a.values;
             return s;
           }, "As an isoline.planning.SparseMatrix for optimize_fluence.");

  m.def("compute_influence",
        [](const core::Image& ct, const core::Image& target, const Plan& plan, double bixel_mm, double cutoff,
           double margin, float threshold, const std::string& device, py::object progress) {
          InfluenceOptions o;
          o.bixel_mm = bixel_mm;
          o.lateral_cutoff_mm = cutoff;
          o.target_margin_mm = margin;
          o.relative_threshold = threshold;
          core::Device d = core::parse_device(device);
          core::Progress prog(wrap_progress(progress), "influence");
          py::gil_scoped_release nogil;
          return compute_influence(ct, target, plan, o, d, prog);
        },
        py::arg("ct"), py::arg("target"), py::arg("plan"), py::kw_only(), py::arg("bixel_mm") = 5.0,
        py::arg("lateral_cutoff_mm") = 30.0, py::arg("target_margin_mm") = 5.0, py::arg("relative_threshold") = 1e-4f,
        py::arg("device") = "cpu", py::arg("progress") = py::none(),
        "Beamlet influence matrix of the plan's beams for a target mask on the CT grid. Releases the GIL.");

  m.def("engine_cuda_available", &engine_cuda_available, "True when CUDA kernels are built and a GPU is usable.");
  m.def("devices", []() {
          std::vector<std::string> d{"cpu"};
          if (engine_cuda_available()) d.push_back("cuda");
          return d;
        }, "Devices usable for dose calculation here: ['cpu'] or ['cpu', 'cuda'].");
}

}  // namespace isoline::py_bind
