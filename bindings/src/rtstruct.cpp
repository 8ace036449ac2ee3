// isoline.rtstruct bindings: CT series, RT Structure Set and RT Dose reading/writing,
// rasterizing contours.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "common.h"
#include "isoline/core/atomic_file.h"
#include "isoline/core/error.h"
#include "isoline/rtstruct/ct_series.h"
#include "isoline/rtstruct/rtdose.h"
#include "isoline/rtstruct/rtstruct.h"

namespace py = pybind11;
using namespace isoline;
using namespace isoline::rtstruct;

namespace isoline::py_bind {

namespace {

py::array_t<double> points_array(const std::vector<core::Vec3>& pts) {
  py::array_t<double> a({static_cast<py::ssize_t>(pts.size()), py::ssize_t(3)});
  double* d = a.mutable_data();
  for (std::size_t n = 0; n < pts.size(); ++n)
    for (int c = 0; c < 3; ++c) d[3 * n + c] = pts[n][c];
  return a;
}

std::vector<core::Vec3> array_points(py::array_t<double, py::array::c_style | py::array::forcecast> a) {
  if (a.ndim() != 2 || a.shape(1) != 3)
    core::fail<core::InvalidInput>("set contour", "points", "expected an (n, 3) array of LPS mm");
  std::vector<core::Vec3> pts(static_cast<std::size_t>(a.shape(0)));
  for (std::size_t n = 0; n < pts.size(); ++n)
    for (int c = 0; c < 3; ++c) pts[n][c] = a.data()[3 * n + c];
  return pts;
}

}  // namespace

void bind_rtstruct(py::module_ m) {
  py::class_<PatientStudy>(m, "PatientStudy", "Patient and study attributes copied into derived objects.")
      .def(py::init<>())
      .def_readwrite("patient_name", &PatientStudy::patient_name)
      .def_readwrite("patient_id", &PatientStudy::patient_id)
      .def_readwrite("patient_birth_date", &PatientStudy::patient_birth_date)
      .def_readwrite("patient_sex", &PatientStudy::patient_sex)
      .def_readwrite("study_instance_uid", &PatientStudy::study_instance_uid)
      .def_readwrite("study_date", &PatientStudy::study_date)
      .def_readwrite("study_time", &PatientStudy::study_time)
      .def_readwrite("study_id", &PatientStudy::study_id)
      .def_readwrite("accession_number", &PatientStudy::accession_number)
      .def_readwrite("referring_physician_name", &PatientStudy::referring_physician_name)
      .def_readwrite("study_description", &PatientStudy::study_description)
      .def_readwrite("specific_character_set", &PatientStudy::specific_character_set)
      .def("__repr__", [](const PatientStudy& p) {
        return "PatientStudy(patient_id='" + p.patient_id + "', study_instance_uid='" + p.study_instance_uid + "')";
      });

  py::class_<SliceRef>(m, "SliceRef", "One stored CT slice, in image order.")
      .def_readonly("sop_class_uid", &SliceRef::sop_class_uid)
      .def_readonly("sop_instance_uid", &SliceRef::sop_instance_uid)
      .def_readonly("file", &SliceRef::file)
      .def_readonly("position", &SliceRef::position)
      .def_readonly("instance_number", &SliceRef::instance_number);

  py::class_<CtSeries>(m, "CtSeries", "A CT series (int16 HU image) with the UIDs derived objects reference.")
      .def_readwrite("image", &CtSeries::image)
      .def_readonly("slices", &CtSeries::slices)
      .def_readwrite("info", &CtSeries::info)
      .def_readonly("series_instance_uid", &CtSeries::series_instance_uid)
      .def_readonly("series_description", &CtSeries::series_description)
      .def_readonly("series_number", &CtSeries::series_number)
      .def_readonly("frame_of_reference_uid", &CtSeries::frame_of_reference_uid)
      .def_readonly("modality", &CtSeries::modality)
      .def_readonly("patient_position", &CtSeries::patient_position)
      .def_readonly("manufacturer", &CtSeries::manufacturer)
      .def_readonly("resampled", &CtSeries::resampled)
      .def_readonly("warnings", &CtSeries::warnings)
      .def_readonly("skipped_objects", &CtSeries::skipped_objects)
      .def(
          "mark_used", [](CtSeries& s, py::object file) { mark_used(s, py::str(file)); }, py::arg("file"),
          "Says that the caller uses this file, one of skipped_objects (the RT-STRUCT read beside the "
          "CT): the 'skipped N non-image DICOM object(s)' warning then names only the others.")
      .def("__repr__", [](const CtSeries& s) {
        return "CtSeries('" + s.series_instance_uid + "', " + std::to_string(s.slices.size()) + " slices)";
      });

  py::class_<SeriesSummary>(m, "SeriesSummary",
                            "One DICOM series found by list_series: UIDs, modality, number of files.")
      .def_readonly("series_instance_uid", &SeriesSummary::series_instance_uid)
      .def_readonly("series_description", &SeriesSummary::series_description)
      .def_readonly("modality", &SeriesSummary::modality)
      .def_readonly("sop_class_uid", &SeriesSummary::sop_class_uid)
      .def_readonly("series_number", &SeriesSummary::series_number)
      .def_readonly("num_files", &SeriesSummary::num_files)
      .def_readonly("first_file", &SeriesSummary::first_file)
      .def("__repr__", [](const SeriesSummary& s) {
        return "SeriesSummary(" + s.modality + ", '" + s.series_description + "', " + std::to_string(s.num_files) +
               " files)";
      });

  m.def("read_ct_series",
        [](py::object path, const std::string& series_uid, bool resample_nonuniform, double spacing_tolerance,
           bool allow_non_ct, py::object progress) {
          CtReadOptions o;
          o.series_instance_uid = series_uid;
          o.resample_nonuniform = resample_nonuniform;
          o.spacing_tolerance = spacing_tolerance;
          o.allow_non_ct = allow_non_ct;
          core::Progress prog(wrap_progress(progress), "read CT");
          if (py::isinstance<py::str>(path) || py::hasattr(path, "__fspath__")) {
            std::string p = py::str(path);
            py::gil_scoped_release nogil;
            return read_ct_series(p, o, prog);
          }
          auto files = path.cast<std::vector<std::string>>();
          py::gil_scoped_release nogil;
          return read_ct_series(files, o, prog);
        },
        py::arg("path"), py::kw_only(), py::arg("series_instance_uid") = "", py::arg("resample_nonuniform") = false,
        py::arg("spacing_tolerance") = 0.01, py::arg("allow_non_ct") = false, py::arg("progress") = py::none(),
        "Reads the CT series in a DICOM file, a directory (recursive) or a list of slice files. "
        "Slices are sorted by position along the slice normal. Raises ValueError for several series "
        "(pass series_instance_uid), gaps or non-uniform spacing (resample_nonuniform=True).");
  m.def("list_series", &list_series, py::arg("path"), py::call_guard<py::gil_scoped_release>(),
        "The DICOM series (any modality) under a file or directory.");
  m.def("write_ct_series",
        [](const core::Image& hu, const std::string& dir, const PatientStudy* info, const std::string& description,
           int number, const std::string& series_uid, const std::string& for_uid, const std::string& position,
           double intercept, const std::string& prefix, bool overwrite, py::object progress) {
          // The series replaces `dir` as a whole: an existing non-empty folder only when asked.
          core::check_output_directory(dir, overwrite, "write CT series", {}, "choose another directory or overwrite=True");
          CtWriteOptions o;
          if (info) o.info = *info;
          o.series_description = description;
          o.series_number = number;
          o.series_instance_uid = series_uid;
          o.frame_of_reference_uid = for_uid;
          o.patient_position = position;
          o.rescale_intercept = intercept;
          o.file_prefix = prefix;
          core::Progress prog(wrap_progress(progress), "write CT");
          py::gil_scoped_release nogil;
          return write_ct_series(hu, dir, o, prog);
        },
        py::arg("image"), py::arg("dir"), py::kw_only(), py::arg("info") = nullptr,
        py::arg("series_description") = "Isoline CT", py::arg("series_number") = 1,
        py::arg("series_instance_uid") = "", py::arg("frame_of_reference_uid") = "",
        py::arg("patient_position") = "HFS", py::arg("rescale_intercept") = 0.0, py::arg("file_prefix") = "CT",
        py::arg("overwrite") = false, py::arg("progress") = py::none(),
        "Writes an image (HU) as a CT Image Storage series, one file per slice, into `dir` "
        "(atomically: the folder is replaced as a whole; an existing non-empty one only with "
        "overwrite=True). Returns the CtSeries as written.");
  m.def("generate_uid", &generate_uid, "A new globally unique DICOM UID.");

  py::class_<RtStructWriteResult>(m, "RtStructWriteResult",
                                  "What write_rtstruct wrote: UIDs, numbers of ROIs and contours, warnings.")
      .def_readonly("sop_instance_uid", &RtStructWriteResult::sop_instance_uid)
      .def_readonly("series_instance_uid", &RtStructWriteResult::series_instance_uid)
      .def_readonly("num_rois", &RtStructWriteResult::num_rois)
      .def_readonly("num_contours", &RtStructWriteResult::num_contours)
      .def_readonly("warnings", &RtStructWriteResult::warnings);

  m.def("write_rtstruct",
        [](const core::StructureSet& s, const CtSeries& ct, const std::string& file, const std::string& label,
           const std::string& description, int number, const std::string& algorithm_name,
           const std::string& algorithm_version, const std::map<std::string, std::string>& name_map,
           std::size_t max_name_length, bool keyhole, bool keep_empty_rois, const std::string& approval_status,
           const std::string& reviewer_name, py::object progress) {
          RtStructWriteOptions o;
          o.structure_set_label = label;
          o.series_description = description;
          o.series_number = number;
          o.algorithm_name = algorithm_name;
          o.algorithm_version = algorithm_version;
          o.name_map = name_map;
          o.max_name_length = max_name_length;
          o.keyhole = keyhole;
          o.keep_empty_rois = keep_empty_rois;
          o.approval_status = approval_status;
          o.reviewer_name = reviewer_name;
          core::Progress prog(wrap_progress(progress), "write RT-STRUCT");
          py::gil_scoped_release nogil;
          return write_rtstruct(s, ct, file, o, prog);
        },
        py::arg("structures"), py::arg("ct"), py::arg("file"), py::kw_only(), py::arg("structure_set_label") = "ISOLINE",
        py::arg("series_description") = "Isoline structures", py::arg("series_number") = 901,
        py::arg("algorithm_name") = "Isoline", py::arg("algorithm_version") = "",
        py::arg("name_map") = std::map<std::string, std::string>{}, py::arg("max_name_length") = 16,
        py::arg("keyhole") = false, py::arg("keep_empty_rois") = true, py::arg("approval_status") = "",
        py::arg("reviewer_name") = "", py::arg("progress") = py::none(),
        "Writes an RT Structure Set of masks on the CT grid, referencing every slice of `ct` "
        "(a CtSeries from read_ct_series/write_ct_series). Contours follow voxel edges exactly.");

  py::class_<Contour>(m, "Contour",
                      "One contour of a ROI: geometric type, `points` ((n, 3) array, LPS mm), referenced "
                      "image UIDs.")
      .def(py::init<>())
      .def_readwrite("geometric_type", &Contour::geometric_type)
      .def_property("points", [](const Contour& c) { return points_array(c.points); },
                    [](Contour& c, py::object a) { c.points = array_points(a); }, "(n, 3) array, LPS mm (a copy)")
      .def_readwrite("referenced_sop_instance_uids", &Contour::referenced_sop_instance_uids);

  py::class_<Roi>(m, "Roi", "A ROI of an RT Structure Set: number, name, type, colour and its Contour list.")
      .def(py::init<>())
      .def_readwrite("number", &Roi::number)
      .def_readwrite("name", &Roi::name)
      .def_readwrite("interpreted_type", &Roi::interpreted_type)
      .def_readwrite("generation_algorithm", &Roi::generation_algorithm)
      .def_property("color", [](const Roi& r) { return py::make_tuple(r.color.r, r.color.g, r.color.b); },
                    [](Roi& r, std::array<int, 3> c) {
                      r.color = core::Color{std::uint8_t(c[0]), std::uint8_t(c[1]), std::uint8_t(c[2])};
                      r.has_color = true;
                    })
      .def_readwrite("has_color", &Roi::has_color)
      .def_readwrite("referenced_frame_of_reference_uid", &Roi::referenced_frame_of_reference_uid)
      .def_readwrite("contours", &Roi::contours)
      .def("__repr__", [](const Roi& r) {
        return "Roi(" + std::to_string(r.number) + ", '" + r.name + "', " + std::to_string(r.contours.size()) +
               " contours)";
      });

  py::class_<RtStructData>(m, "RtStructData", "An RT Structure Set as read: ROIs and their contours.")
      .def_readonly("file", &RtStructData::file)
      .def_readonly("sop_instance_uid", &RtStructData::sop_instance_uid)
      .def_readonly("series_instance_uid", &RtStructData::series_instance_uid)
      .def_readonly("structure_set_label", &RtStructData::structure_set_label)
      .def_readonly("frame_of_reference_uid", &RtStructData::frame_of_reference_uid)
      .def_readonly("referenced_series_instance_uid", &RtStructData::referenced_series_instance_uid)
      .def_readonly("contour_image_uids", &RtStructData::contour_image_uids)
      .def_readonly("info", &RtStructData::info)
      .def_readwrite("rois", &RtStructData::rois)
      .def_readonly("warnings", &RtStructData::warnings)
      .def("roi", [](const RtStructData& d, const std::string& name) -> const Roi& {
             for (const auto& r : d.rois)
               if (r.name == name) return r;
             throw py::key_error(name);
           }, py::arg("name"), py::return_value_policy::reference_internal,
           "The ROI of that name (a reference into rois); KeyError when there is none.")
      .def("names", [](const RtStructData& d) {
        std::vector<std::string> n;
        for (const auto& r : d.rois) n.push_back(r.name);
        return n;
      }, "ROI names in file order.")
      .def("__repr__", [](const RtStructData& d) {
        return "RtStructData('" + d.structure_set_label + "', " + std::to_string(d.rois.size()) + " ROIs)";
      });

  m.def("read_rtstruct", &read_rtstruct, py::arg("file"), py::call_guard<py::gil_scoped_release>(),
        "Reads every ROI and its contours (LPS mm).");
  m.def("rasterize",
        [](const RtStructData& rs, const core::Geometry& grid, const std::vector<std::string>& names,
           double tol, py::object progress) {
          RasterizeOptions o;
          o.names = names;
          o.plane_tolerance_mm = tol;
          core::Progress prog(wrap_progress(progress), "rasterize");
          py::gil_scoped_release nogil;
          return rasterize(rs, grid, o, prog);
        },
        py::arg("rtstruct"), py::arg("grid"), py::kw_only(), py::arg("names") = std::vector<std::string>{},
        py::arg("plane_tolerance_mm") = -1.0, py::arg("progress") = py::none(),
        "Contours -> StructureSet of uint8 masks on `grid` (even-odd rule at voxel centres).");
  m.def("contour_grid", &contour_grid, py::arg("rtstruct"), py::arg("pixel_mm") = 1.0, py::arg("margin_mm") = 5.0,
        "A grid covering every contour (for when the CT is not available).");
  m.def("contour_volume_cc", &contour_volume_cc, py::arg("rtstruct"), py::arg("roi"),
        "Volume (cm^3) of a ROI from its contour polygons, independent of any grid.");

  py::class_<RtDoseWriteResult>(m, "RtDoseWriteResult",
                                "What write_rtdose wrote: UIDs, dose grid scaling (Gy per stored unit) and "
                                "the largest quantisation error (Gy).")
      .def_readonly("sop_instance_uid", &RtDoseWriteResult::sop_instance_uid)
      .def_readonly("series_instance_uid", &RtDoseWriteResult::series_instance_uid)
      .def_readonly("dose_grid_scaling", &RtDoseWriteResult::dose_grid_scaling)
      .def_readonly("max_quantization_error_gy", &RtDoseWriteResult::max_quantization_error_gy);
  py::class_<RtDose>(m, "RtDose", "An RT Dose object as read; `dose` is float32 Gy.")
      .def_readonly("dose", &RtDose::dose)
      .def_readonly("sop_instance_uid", &RtDose::sop_instance_uid)
      .def_readonly("frame_of_reference_uid", &RtDose::frame_of_reference_uid)
      .def_readonly("dose_units", &RtDose::dose_units)
      .def_readonly("dose_type", &RtDose::dose_type)
      .def_readonly("dose_summation_type", &RtDose::dose_summation_type)
      .def_readonly("referenced_plan_sop_instance_uid", &RtDose::referenced_plan_sop_instance_uid)
      .def_readonly("dose_grid_scaling", &RtDose::dose_grid_scaling)
      .def_readonly("info", &RtDose::info);

  m.def("write_rtdose",
        [](const core::Image& dose, const CtSeries& ct, const std::string& file, const std::string& plan_uid,
           const std::string& comment, const std::string& description, int number, const std::string& dose_type,
           int bits) {
          RtDoseWriteOptions o;
          o.referenced_plan_sop_instance_uid = plan_uid;
          o.dose_comment = comment;
          o.series_description = description;
          o.series_number = number;
          o.dose_type = dose_type;
          o.bits_allocated = bits;
          py::gil_scoped_release nogil;
          return write_rtdose(dose, ct, file, o);
        },
        py::arg("dose"), py::arg("ct"), py::arg("file"), py::kw_only(), py::arg("referenced_plan_sop_instance_uid") = "",
        py::arg("dose_comment") = "", py::arg("series_description") = "Isoline dose", py::arg("series_number") = 902,
        py::arg("dose_type") = "PHYSICAL", py::arg("bits_allocated") = 32,
        "Writes a dose (Gy, any grid in the CT's frame of reference) as RT Dose Storage, atomically.");
  m.def("read_rtdose", &read_rtdose, py::arg("file"), py::call_guard<py::gil_scoped_release>(),
        "Reads an RT Dose file; the dose as a float32 image in Gy.");
  m.def("dicom_modality", &dicom_modality, py::arg("file"),
        "Modality of a DICOM file ('CT', 'RTSTRUCT', 'RTDOSE', ...), '' when not DICOM.");
  m.def("read_sop_instance_uid", &read_sop_instance_uid, py::arg("file"),
        "SOP Instance UID of a DICOM file (e.g. an RT Plan to reference).");
  m.def("plan_reference_for", &plan_reference_for, py::arg("file"), py::arg("ct"),
        "SOP Instance UID of the RT Plan `file` for write_rtdose(referenced_plan_sop_instance_uid=) on "
        "`ct`; raises InvalidInput when it is not an RT Plan or is of another patient or frame of "
        "reference.");
}

}  // namespace isoline::py_bind
