// Shared by the subcommands that take a patient case: reading a CT (DICOM or image) with its
// DICOM identity, structures (masks directory or RT-STRUCT), and writing a plan's outputs.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "isoline/core/image.h"
#include "isoline/core/progress.h"
#include "isoline/core/structure.h"
#include "isoline/planning/plan.h"
#include "isoline/rtstruct/ct_series.h"

namespace isoline::pipeline {

/// A CT with its DICOM identity. For an image file (NIfTI, ...) the identity is made up
/// (new study and frame of reference) so that RT-STRUCT/RT-DOSE can still be written.
struct CaseCt {
  rtstruct::CtSeries series;  ///< series.image is the CT in HU
  bool from_dicom = false;
  std::vector<std::string> warnings;
};
CaseCt load_ct(const std::string& path, const core::Progress& progress = {});

/// Structures on the CT grid from a directory of <name>.nii.gz masks or an RT-STRUCT file.
core::StructureSet load_structures(const std::string& path, const CaseCt& ct,
                                   const std::vector<std::string>& names = {});

struct PlanOutputs {
  std::string dir;
  std::vector<std::string> files;  ///< written, relative to dir
};

/// Writes plan.json, dose.nii.gz, RD.dcm (RT-DOSE referencing the CT), dvh.csv and
/// metrics.json for a plan into `dir` (created; each file atomic). Returns the file names.
PlanOutputs write_plan_outputs(const std::string& dir, const CaseCt& ct, const core::StructureSet& structures,
                               const planning::PlanResult& plan);

/// Writes the HTML report of a plan (pictures, DVH, metrics, criteria, quality flags).
void write_plan_report(const std::string& path, const std::string& title, const CaseCt& ct,
                       const core::StructureSet& structures, const planning::PlanResult& plan,
                       const std::vector<std::pair<std::string, std::string>>& info,
                       const std::vector<std::string>& warnings);


}  // namespace isoline::pipeline
