// isoline.phantoms bindings: generated head-and-neck patients and dose phantoms.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "common.h"
#include "isoline/core/error.h"
#include "isoline/phantoms/phantoms.h"

namespace py = pybind11;
using namespace isoline;
using namespace isoline::phantoms;

namespace isoline::py_bind {

namespace {

PatientPosition position_of(const py::object& o) {
  if (py::isinstance<PatientPosition>(o)) return o.cast<PatientPosition>();
  return patient_position_from_string(o.cast<std::string>());
}

}  // namespace

void bind_phantoms(py::module_ m) {
  py::enum_<PatientPosition>(m, "PatientPosition",
                             "Patient position on the couch (DICOM): head/feet first, supine/prone.")
      .value("HFS", PatientPosition::HFS)
      .value("FFS", PatientPosition::FFS)
      .value("HFP", PatientPosition::HFP)
      .value("FFP", PatientPosition::FFP);

  m.def("make_grid",
        [](const core::Index3& size, const core::Vec3& spacing, py::object position, const core::Vec3& centre) {
          return make_grid(size, spacing, position_of(position), centre);
        },
        py::arg("size"), py::arg("spacing"), py::arg("position") = "HFS",
        py::arg("centre") = core::Vec3{0, 0, 0}, "Axial grid stored the way a scanner stores `position`.");

  py::class_<Phantom>(m, "Phantom", "A generated case: CT (int16 HU), tissue labels, ground-truth structures.")
      .def_readonly("kind", &Phantom::kind)
      .def_readonly("ct", &Phantom::ct)
      .def_readonly("labels", &Phantom::labels)
      .def_readonly("structures", &Phantom::structures)
      .def_readonly("position", &Phantom::position)
      .def_readonly("analytic_volume_cc", &Phantom::analytic_volume_cc)
      .def_readonly("focus", &Phantom::focus)
      .def_readonly("facts", &Phantom::facts)
      .def_readonly("noise_sd_hu", &Phantom::noise_sd_hu)
      .def("__repr__", [](const Phantom& p) {
        const auto& s = p.ct.geometry().size;
        return "Phantom('" + p.kind + "', " + std::to_string(s[0]) + "x" + std::to_string(s[1]) + "x" +
               std::to_string(s[2]) + ", " + std::to_string(p.structures.size()) + " structures)";
      });

  m.def("head_neck_sites", &head_neck_sites, "Tumour sites known to the generator (make_head_neck's site=).");
  m.def("make_head_neck",
        [](std::uint64_t seed, const core::Index3& size, const core::Vec3& spacing, py::object position,
           const std::string& site, double noise, bool blur, py::object progress) {
          HeadNeckOptions o;
          o.seed = seed;
          o.size = size;
          o.spacing = spacing;
          o.position = position_of(position);
          o.site = site;
          o.noise_sd_hu = noise;
          o.blur = blur;
          core::Progress prog(wrap_progress(progress), "phantom");
          py::gil_scoped_release nogil;
          return make_head_neck(o, prog);
        },
        py::arg("seed") = 7, py::kw_only(), py::arg("size") = core::Index3{512, 512, 160},
        py::arg("spacing") = core::Vec3{1.0, 1.0, 2.5}, py::arg("position") = "HFS", py::arg("site") = "",
        py::arg("noise_sd_hu") = 12.0, py::arg("blur") = true, py::arg("progress") = py::none(),
        "The seeded head-and-neck patient sampled on a grid (size (nx, ny, nz) voxels, spacing mm). "
        "Structures: Body, Brainstem, SpinalCord, parotids, Esophagus, Larynx, Mandible, GTV, CTV, PTV70/63/56.");

  m.def("make_dose_phantom",
        [](const std::string& kind, const core::Index3& size, const core::Vec3& spacing, py::object position,
           double noise, py::object progress) {
          DosePhantomOptions o;
          o.size = size;
          o.spacing = spacing;
          o.position = position_of(position);
          o.noise_sd_hu = noise;
          DosePhantomKind k = dose_phantom_from_string(kind);
          core::Progress prog(wrap_progress(progress), "phantom");
          py::gil_scoped_release nogil;
          return make_dose_phantom(k, o, prog);
        },
        py::arg("kind"), py::kw_only(), py::arg("size") = core::Index3{0, 0, 0},
        py::arg("spacing") = core::Vec3{0, 0, 0}, py::arg("position") = "HFS", py::arg("noise_sd_hu") = 0.0,
        py::arg("progress") = py::none(),
        "kind: 'water', 'lung-slab', 'bone-slab' or 'c-shape'; size (0, 0, 0) = the phantom's default.");

  m.def("dicom_output_available", &dicom_output_available,
        "True when this build writes DICOM (the rtstruct module is linked).");
  m.def("write_phantom",
        [](const Phantom& p, const std::string& dir, bool nifti, bool dicom, bool preview,
           const std::string& patient_id, py::object progress) {
          WriteOptions o;
          o.nifti = nifti;
          o.dicom = dicom;
          o.preview = preview;
          o.patient_id = patient_id;
          core::Progress prog(wrap_progress(progress), "write phantom");
          py::gil_scoped_release nogil;
          return write_phantom(p, dir, o, prog);
        },
        py::arg("phantom"), py::arg("dir"), py::kw_only(), py::arg("nifti") = true, py::arg("dicom") = true,
        py::arg("preview") = false, py::arg("patient_id") = "", py::arg("progress") = py::none(),
        "Writes ct.nii.gz, labels.nii.gz, masks/*.nii.gz, ground_truth.json, dicom/ (CT + RS.dcm), "
        "preview.png; returns the files written.");
  m.def("write_preview_png", &write_preview_png, py::arg("phantom"), py::arg("path"),
        py::call_guard<py::gil_scoped_release>(),
        "PNG of the axial, coronal and sagittal slices through the phantom's focus with the "
        "structure outlines and a legend.");
  m.def("tissue_hu", [](int t) {
          if (t < 0 || t >= kNumTissues) core::fail<core::InvalidInput>("tissue_hu", std::to_string(t), "unknown tissue");
          return tissue_hu(static_cast<Tissue>(t));
        }, py::arg("tissue"), "Nominal HU of a tissue label value.");
  m.def("tissue_name", [](int t) {
          if (t < 0 || t >= kNumTissues) core::fail<core::InvalidInput>("tissue_name", std::to_string(t), "unknown tissue");
          return std::string(tissue_name(static_cast<Tissue>(t)));
        }, py::arg("tissue"), "Name of a tissue label value.");
}

}  // namespace isoline::py_bind
