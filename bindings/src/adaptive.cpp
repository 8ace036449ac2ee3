// isoline.adaptive bindings: registration, warping, displacement fields, landmarks.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "common.h"
#include "isoline/adaptive/registration.h"
#include "isoline/adaptive/synthetic.h"
#include "isoline/core/error.h"

namespace py = pybind11;
using namespace isoline;
using namespace isoline::adaptive;

namespace isoline::py_bind {

void bind_adaptive(py::module_ m) {
  py::class_<DisplacementField> field_class(
      m, "DisplacementField",
      "Displacement u (mm, LPS) on a grid; T(x) = x + u(x) maps fixed to moving points. "
      "Picklable; copy.copy/deepcopy copy the data.");
  field_class
      .def_readonly("geometry", &DisplacementField::geometry)
      .def_property_readonly(
          "array",
          [](DisplacementField& f) {
            const auto& s = f.geometry.size;
            // View (nz, ny, nx, 3) into the field's data; the Python object keeps the field alive.
            return py::array_t<float>({s[2], s[1], s[0], std::int64_t(3)}, f.data.data(),
                                      py::cast(f, py::return_value_policy::reference));
          },
          "numpy view (nz, ny, nx, 3) sharing memory with the field")
      .def("transform_point", &DisplacementField::transform_point, py::arg("xyz"),
           "T(p) = p + u(p) for a point (x, y, z) in LPS mm, u interpolated trilinearly (zero "
           "outside the grid).")
      .def_static("zeros", &DisplacementField::zeros, py::arg("geometry"), "The identity field (u = 0) on a grid.")
      .def(py::pickle(
          [](DisplacementField& f) {
            const auto& s = f.geometry.size;
            return py::make_tuple(geometry_state(f.geometry),
                                  py::array_t<float>({s[2], s[1], s[0], std::int64_t(3)}, f.data.data()));
          },
          [](const py::tuple& t) {
            if (t.size() != 2) core::fail<core::InvalidInput>("unpickle DisplacementField", "", "expected a state of 2 values");
            DisplacementField f;
            f.geometry = geometry_from_state(t[0].cast<py::tuple>());
            auto a = t[1].cast<py::array_t<float, py::array::c_style | py::array::forcecast>>();
            if (static_cast<std::size_t>(a.size()) != f.geometry.num_voxels() * 3)
              core::fail<core::InvalidInput>("unpickle DisplacementField", "array", "size does not match the geometry");
            f.data.assign(a.data(), a.data() + a.size());
            return f;
          }));
  def_value_copy(field_class);

  py::class_<RigidTransform> rigid_class(m, "RigidTransform",
                             "Rigid transform mapping fixed to moving points: y = R (x - c) + c + t (mm). "
                             "Picklable.");
  rigid_class
      .def_property_readonly("rotation",
                             [](const RigidTransform& r) {
                               py::array_t<double> a({3, 3});
                               std::copy(r.rotation.begin(), r.rotation.end(), a.mutable_data());
                               return a;
                             })
      .def_readonly("center", &RigidTransform::center)
      .def_readonly("translation", &RigidTransform::translation)
      .def("apply", &RigidTransform::apply, py::arg("xyz"),
           "y = R (x - c) + c + t for a point x = (x, y, z) in LPS mm (fixed -> moving).")
      .def(py::pickle(
          [](const RigidTransform& r) {
            return py::make_tuple(std::vector<double>(r.rotation.begin(), r.rotation.end()), r.center, r.translation);
          },
          [](const py::tuple& t) {
            if (t.size() != 3) core::fail<core::InvalidInput>("unpickle RigidTransform", "", "expected a state of 3 values");
            RigidTransform r;
            const auto rot = t[0].cast<std::vector<double>>();
            if (rot.size() != 9) core::fail<core::InvalidInput>("unpickle RigidTransform", "rotation", "expected 9 values");
            std::copy(rot.begin(), rot.end(), r.rotation.begin());
            r.center = t[1].cast<core::Vec3>();
            r.translation = t[2].cast<core::Vec3>();
            return r;
          }));
  def_value_copy(rigid_class);

  py::class_<RegistrationResult>(m, "RegistrationResult",
                                 "Registration result: rigid part, total displacement field on the fixed "
                                 "grid, Jacobian checks (min_jacobian <= 0 means folding), seconds; rigid_start: "
                                 "the start the rigid step continued from ('centres aligned', 'as scanned', ...).")
      .def_readonly("rigid", &RegistrationResult::rigid)
      .def_readonly("rigid_start", &RegistrationResult::rigid_start)
      .def_readonly("field", &RegistrationResult::field)
      .def_readonly("min_jacobian", &RegistrationResult::min_jacobian)
      .def_readonly("folding_fraction", &RegistrationResult::folding_fraction)
      .def_readonly("seconds", &RegistrationResult::seconds);

  m.def(
      "register",
      [](const core::Image& fixed, const core::Image& moving, bool rigid, bool deformable,
         bool bony, double sigma_mm, std::vector<int> iterations, double update_sigma_mm,
         double resolution_mm, std::int64_t max_voxels, std::pair<double, double> window,
         unsigned seed, py::object progress) {
        RegistrationOptions opt;
        opt.deformable_options.max_voxels = max_voxels;
        opt.rigid_options.seed = seed;
        opt.deformable_options.update_sigma_mm = update_sigma_mm;
        opt.deformable_options.max_resolution_mm = resolution_mm;
        opt.deformable_options.window_low = window.first;
        opt.deformable_options.window_high = window.second;
        opt.rigid = rigid;
        opt.deformable = deformable;
        opt.rigid_options.bony = bony;
        opt.deformable_options.field_sigma_mm = sigma_mm;
        if (!iterations.empty()) {
          opt.deformable_options.iterations = iterations;
          opt.deformable_options.levels = static_cast<int>(iterations.size());
        }
        core::Progress prog(wrap_progress(progress), "register");
        py::gil_scoped_release nogil;
        return register_images(fixed, moving, opt, prog);
      },
      py::arg("fixed"), py::arg("moving"), py::arg("rigid") = true, py::arg("deformable") = true,
      py::arg("bony") = false, py::arg("sigma_mm") = DeformableOptions{}.field_sigma_mm,
      py::arg("iterations") = std::vector<int>{},
      py::arg("update_sigma_mm") = DeformableOptions{}.update_sigma_mm,
      py::arg("resolution_mm") = DeformableOptions{}.max_resolution_mm,
      py::arg("max_voxels") = DeformableOptions{}.max_voxels,
      py::arg("window") = std::pair<double, double>{DeformableOptions{}.window_low,
                                                    DeformableOptions{}.window_high},
      py::arg("seed") = RigidOptions{}.seed, py::arg("progress") = py::none(),
      "Rigid (Mattes MI) then diffeomorphic demons registration of `moving` to `fixed`.\n\n"
      "sigma_mm: field smoothing; update_sigma_mm: smoothing of each update (fluid, 0 = off);\n"
      "resolution_mm: finest demons grid spacing (0 = the fixed grid); max_voxels: voxel budget\n"
      "of the finest demons grid (0 = none); window: HU clamp (low, "
      "high); seed: the rigid metric's random sampling (the result is deterministic per seed).");
  m.def(
      "warp", &warp, py::arg("moving"), py::arg("field"), py::arg("default") = 0.0,
      py::call_guard<py::gil_scoped_release>(),
      "moving(x + u(x)) on the field's grid; uint8 masks are interpolated and thresholded at 0.5.");
  m.def("jacobian_determinant", &jacobian_determinant, py::arg("field"),
        py::call_guard<py::gil_scoped_release>(),
        "Jacobian determinant of T(x) = x + u(x) per voxel (float32 image).");
  m.def("read_field", &read_field, py::arg("path"),
        "Reads a displacement field (3-component vector image: NIfTI, NRRD, MetaImage).");
  m.def("write_field", &write_field, py::arg("field"), py::arg("path"),
        "Writes a displacement field as a 3-component vector image, as elastix/ITK do (atomic).");
  m.def(
      "read_points", [](const std::string& p) { return read_points(p); }, py::arg("path"),
      "elastix point file -> list of (x, y, z) in mm");
  m.def("target_registration_errors", &target_registration_errors, py::arg("field"),
        py::arg("fixed_points"), py::arg("moving_points"),
        "Error (mm) of each landmark pair: |T(fixed_i) - moving_i|.");
  m.def(
      "synthetic_field",
      [](const core::Geometry& g, double max_mm, int bumps, double sigma_mm, unsigned seed) {
        return synthetic_field(g, {max_mm, bumps, sigma_mm, seed});
      },
      py::arg("geometry"), py::arg("max_mm") = 10.0, py::arg("bumps") = 6,
      py::arg("sigma_mm") = 35.0, py::arg("seed") = 1, py::call_guard<py::gil_scoped_release>(),
      "A smooth random field on `geometry`: Gaussian bumps scaled to max |u| = max_mm "
      "(deterministic per seed).");
}

}  // namespace isoline::py_bind
