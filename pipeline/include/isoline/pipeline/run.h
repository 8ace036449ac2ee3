// The main job, `isoline run`: a planning CT -> auto-contours (OARs, targets, Body) -> the
// achievable-dose plan for those contours -> RT-STRUCT, RT-DOSE, plan JSON, DVHs and an HTML
// report in one output directory, written atomically (nothing appears on failure).
//
//   pipeline::RunOptions o;
//   o.ct_path = "patient/CT";   // DICOM directory, or NIfTI/NRRD/MHA in HU
//   o.out_dir = "out/patient";
//   auto r = pipeline::run_case(o, progress);
//   r.files;    // RS.dcm, RD.dcm, plan.json, dose.nii.gz, report.html, masks/, ...
#pragma once

#include <string>
#include <vector>

#include "isoline/contouring/contour.h"
#include "isoline/core/device.h"
#include "isoline/core/progress.h"
#include "isoline/planning/plan.h"

namespace isoline::pipeline {

struct RunOptions {
  std::string ct_path;          ///< DICOM CT directory/file, or an image in HU
  /// DICOM Patient ID and Name of the outputs for a CT from an image file (load_ct); "" = an ID
  /// from a hash of the image, "ANONYMOUS^". Refused for a DICOM CT.
  std::string patient_id, patient_name;
  std::string out_dir;          ///< created; must not exist or be empty unless overwrite
  std::string template_name = planning::kDefaultTemplate;
  std::string model_card;       ///< contouring model card; "" = the shipped model
  /// Structures to plan on instead of contouring (masks directory or RT-STRUCT); "" = contour.
  std::string structures_path;
  /// Targets drawn by the physician (masks directory or RT-STRUCT): its PTV/CTV/GTV structures
  /// are used as given and only the organs (and Body) are auto-contoured; "" = contour all.
  std::string targets_path;
  core::Device device = core::Device::CPU;
  int max_iterations = 0;       ///< 0 = the template's
  bool overwrite = false;       ///< replace an existing non-empty out_dir
  bool report = true;
};

struct RunResult {
  std::string out_dir;
  std::vector<std::string> files;  ///< relative to out_dir
  std::vector<contouring::StructureQuality> quality;  ///< empty when structures were given
  planning::PlanResult plan;
  /// The CT series' ("<ct>: ..."), the contouring's ("contouring: ..."), RS.dcm's and the plan's
  /// ("plan: ...") warnings, in the order they arose.
  std::vector<std::string> warnings;
  /// The Patient ID a CT from an image file was given (RunOptions::patient_id or one made from
  /// the image); empty for a DICOM CT.
  std::string patient_id;
  double contour_s = 0, plan_s = 0, total_s = 0;
};

/// Throws core::Error (InvalidInput, IoError, ...) naming the input at fault; the warnings
/// gathered until then (RunResult::warnings so far: e.g. the contouring's "anatomy outside the
/// model's scope?" before its targets come out empty) go with it as Error::warnings().
RunResult run_case(const RunOptions& options, const core::Progress& progress = {});

}  // namespace isoline::pipeline
