// Shared by the subcommands that take a patient case: reading a CT (DICOM or image) with its
// DICOM identity, structures (masks directory or RT-STRUCT), and writing a plan's outputs.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "isoline/contouring/contour.h"
#include "isoline/core/image.h"
#include "isoline/core/progress.h"
#include "isoline/core/structure.h"
#include "isoline/planning/plan.h"
#include "isoline/rtstruct/ct_series.h"
#include "isoline/rtstruct/rtstruct.h"

namespace isoline::pipeline {

/// A CT with its DICOM identity. For an image file (NIfTI, ...) the identity is made up
/// (rtstruct::identity_for_image: a Patient ID from a hash of the image, or `patient_id` /
/// `patient_name` when given; new study and frame of reference) so that RT-STRUCT/RT-DOSE can
/// still be written. A DICOM CT keeps its own: giving `patient_id` or `patient_name` for one
/// is refused (the RT objects must name the CT's patient).
struct CaseCt {
  rtstruct::CtSeries series;  ///< series.image is the CT in HU
  bool from_dicom = false;
  std::string path;           ///< where it was read from (absolute)
};
CaseCt load_ct(const std::string& path, const core::Progress& progress = {},
               const std::string& patient_id = {}, const std::string& patient_name = {});

/// For a CT read from an image file: writes it as a DICOM series in `dir`/CT (its made-up
/// identity) and makes `ct.series` that series, so that the RT-STRUCT and RT-DOSE written
/// next to it reference a CT that exists. Returns the names written ("CT/"); nothing for a
/// DICOM CT, which the RT objects reference where it is.
std::vector<std::string> write_ct_for_image(CaseCt& ct, const std::string& dir, const core::Progress& progress = {});

/// RT-STRUCT options for automatic contours (`isoline contour`, `run`, the DICOM node): the
/// model as the algorithm, label AUTO, approval UNAPPROVED, and a StructureSetDescription with
/// the model's version and every whole-image warning (a planning system shows it with the
/// structure set; stderr reaches nobody there); the series description says WARNINGS when
/// there are any.
rtstruct::RtStructWriteOptions auto_contour_options(const contouring::ContourResult& r);

/// quality.json beside auto-contour masks (`isoline contour`, `isoline run`'s masks/): model
/// name and version, in_scope, the whole-image warnings, and per structure volume_cc,
/// confidence, kept_fraction and flags (the fields of the Python batch runner's quality.json).
/// `isoline serve` shows the flags of a case's masks/quality.json. `given` (name -> source) adds
/// the structures that are not auto-contours (`run --targets`) as {"origin": "given", "source"}:
/// the review UI approves them as MANUAL, not as the model's. `op` names the failing step.
void write_quality_json(const contouring::ContourResult& r, const std::string& path, const std::string& op,
                        const std::map<std::string, std::string>& given = {});

/// Structures on the CT grid from a directory of <name>.nii.gz masks or an RT-STRUCT file.
core::StructureSet load_structures(const std::string& path, const CaseCt& ct,
                                   const std::vector<std::string>& names = {});

/// Where a plan or run directory keeps its CT, in the order looked for: CT/ and ct/ (DICOM
/// series), ct.nii.gz, ct.nii, ct.nrrd, ct.mha, dicom/ (as `isoline phantom` writes it).
const std::vector<std::string>& case_ct_names();
/// The same for messages and help: "CT/, ct/, ct.nii.gz, ct.nii, ct.nrrd, ct.mha or dicom/".
std::string case_ct_list();

/// The CT of a plan or run directory, as `isoline adapt` and `isoline serve` find it: the first
/// of case_ct_names() in `dir`, else the CT that `dir`/metrics.json records
/// (write_plan_outputs; `run` and `plan` copy a NIfTI CT into CT/ but not a DICOM one). Empty
/// when there is none; `recorded_missing` then gets the path metrics.json records when that no
/// longer exists (else "").
std::string find_case_ct(const std::string& dir, std::string* recorded_missing = nullptr);

struct PlanOutputs {
  std::string dir;
  std::vector<std::string> files;  ///< written, relative to dir
};

/// Writes plan.json, dose.nii.gz, RD.dcm (RT-DOSE referencing the CT), dvh.csv and
/// metrics.json for a plan into `dir` (created; each file atomic). metrics.json also records
/// the CT ("ct": path, DICOM or not, series and frame of reference UIDs), which `isoline adapt`
/// reads to find the planning CT. Returns the file names.
PlanOutputs write_plan_outputs(const std::string& dir, const CaseCt& ct,
                               const core::StructureSet& structures,
                               const planning::PlanResult& plan);

/// Writes the HTML report of a plan (pictures, DVH, metrics, criteria, quality flags).
void write_plan_report(const std::string& path, const std::string& title, const CaseCt& ct,
                       const core::StructureSet& structures, const planning::PlanResult& plan,
                       const std::vector<std::pair<std::string, std::string>>& info,
                       const std::vector<std::string>& warnings);

/// Writes a first look at auto-contours before the TPS: `html_path` a self-contained page
/// (axial, coronal and sagittal views through the highest target with every outline, the
/// structure table with the quality flags, the scope and flag warnings, `info` rows and the
/// model), `png_path` the same views with the legend as one picture. An empty path is not
/// written; each file is atomic. Throws InvalidInput (no CT) or IoError naming the file.
void write_contour_review(const core::Image& ct, const contouring::ContourResult& result,
                          const std::string& html_path, const std::string& png_path,
                          const std::string& title = "Auto-contours",
                          const std::vector<std::pair<std::string, std::string>>& info = {});

}  // namespace isoline::pipeline
