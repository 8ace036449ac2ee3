// isoline.pipeline bindings: the main job (`isoline run`): CT -> auto-contours -> plan ->
// RT-STRUCT, RT-DOSE, plan JSON, DVHs, report.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "common.h"
#include "isoline/core/device.h"
#include "isoline/core/error.h"
#include "isoline/pipeline/case_io.h"
#include "isoline/pipeline/run.h"

namespace py = pybind11;
using namespace isoline;
using namespace isoline::pipeline;

namespace isoline::py_bind {

void bind_pipeline(py::module_ m) {
  py::class_<RunResult>(m, "RunResult", "What the main job wrote and found.")
      .def_readonly("out_dir", &RunResult::out_dir)
      .def_readonly("files", &RunResult::files, "written, relative to out_dir")
      .def_readonly("quality", &RunResult::quality,
                    "per contoured structure (empty when structures were given)")
      .def_readonly("plan", &RunResult::plan)
      .def_readonly("warnings", &RunResult::warnings)
      .def_readonly("patient_id", &RunResult::patient_id,
                    "the Patient ID a CT from an image file was given (empty for a DICOM CT)")
      .def_readonly("contour_s", &RunResult::contour_s)
      .def_readonly("plan_s", &RunResult::plan_s)
      .def_readonly("total_s", &RunResult::total_s)
      .def("__repr__", [](const RunResult& r) {
        return "RunResult('" + r.out_dir + "', " + std::to_string(r.files.size()) + " files)";
      });
  m.def(
      "write_quality_json",
      [](const contouring::ContourResult& r, const std::string& path) {
        write_quality_json(r, path, "write quality.json");
      },
      py::arg("result"), py::arg("path"),
      "quality.json of a contouring result, as `isoline contour` and `isoline run` write it beside "
      "their masks: model, model_version, in_scope, warnings and per structure volume_cc, "
      "confidence, kept_fraction, pieces, flags.");
  m.def(
      "write_auto_rtstruct",
      [](const contouring::ContourResult& r, const rtstruct::CtSeries& ct, const std::string& file,
         py::object progress) {
        const rtstruct::RtStructWriteOptions wo = auto_contour_options(r);
        core::Progress prog(wrap_progress(progress), "write RT-STRUCT");
        py::gil_scoped_release nogil;
        return rtstruct::write_rtstruct(r.structures, ct, file, wo, prog);
      },
      py::arg("result"), py::arg("ct"), py::arg("file"), py::kw_only(),
      py::arg("progress") = py::none(),
      "Writes a contouring result's structures as the RT-STRUCT `isoline contour`, `isoline run` "
      "and the DICOM node write (pipeline::auto_contour_options): AlgorithmName 'Isoline <model>', "
      "label AUTO, ApprovalStatus UNAPPROVED, a StructureSetDescription with the model's version "
      "and every whole-image warning, the quality summary as each ROI's description. `ct` is the "
      "CtSeries the result was computed on (read_ct_series). Atomic; returns the "
      "RtStructWriteResult. Releases the GIL.");
  m.def(
      "run_case",
      [](const std::string& ct_path, const std::string& out_dir, const std::string& tpl,
         const std::string& model_card, const std::string& structures_path,
         const std::string& device, int max_iterations, bool overwrite, bool report,
         const std::string& targets_path, const std::string& patient_id, const std::string& patient_name,
         py::object progress) {
        RunOptions o;
        o.targets_path = targets_path;
        o.patient_id = patient_id;
        o.patient_name = patient_name;
        o.ct_path = ct_path;
        o.out_dir = out_dir;
        o.template_name = tpl;
        o.model_card = model_card;
        o.structures_path = structures_path;
        o.device = core::parse_device(device);
        o.max_iterations = max_iterations;
        o.overwrite = overwrite;
        o.report = report;
        core::Progress prog(wrap_progress(progress), "run");
        py::gil_scoped_release nogil;
        return run_case(o, prog);
      },
      py::arg("ct_path"), py::arg("out_dir"), py::kw_only(), py::arg("template") = planning::kDefaultTemplate,
      py::arg("model_card") = "", py::arg("structures_path") = "", py::arg("device") = "cpu",
      py::arg("max_iterations") = 0, py::arg("overwrite") = false, py::arg("report") = true,
      py::arg("targets_path") = "", py::arg("patient_id") = "", py::arg("patient_name") = "",
      py::arg("progress") = py::none(),
      "The main job on one CT (DICOM directory/file or an image in HU): auto-contours (or the "
      "given "
      "structures: masks directory or RT-STRUCT; or targets_path: the physician's PTV/CTV/GTV from "
      "an RT-STRUCT or masks directory, organs auto-contoured), the achievable-dose plan of the "
      "template, and "
      "RS.dcm, RD.dcm, plan.json, dose.nii.gz, DVHs and report.html in out_dir (atomic). For a CT from "
      "an image file, patient_id / patient_name name the patient of the DICOM written (default: "
      "'IMG-' and a hash of the image, 'ANONYMOUS^'); refused for a DICOM CT. A failure raises the "
      "isoline.Error naming the input at fault, its `warnings` those gathered until then (the CT's, "
      "'contouring: anatomy outside the model's scope? ...'), often the reason. Releases the GIL.");
}

}  // namespace isoline::py_bind
