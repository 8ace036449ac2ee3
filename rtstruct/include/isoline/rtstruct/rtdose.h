// RT Dose: a 3-D dose grid in Gy stored as one multi-frame RT Dose Storage object.
#pragma once

#include <string>
#include <vector>

#include "isoline/core/image.h"
#include "isoline/rtstruct/ct_series.h"

namespace isoline::rtstruct {

struct RtDoseWriteOptions {
  /// SOP Instance UID of the RT Plan this dose belongs to ("" = none). With a plan the
  /// DoseSummationType is PLAN and ReferencedRTPlanSequence names it.
  std::string referenced_plan_sop_instance_uid;
  std::string referenced_plan_sop_class_uid = "1.2.840.10008.5.1.4.1.1.481.5";
  std::string dose_comment;
  std::string series_description = "Isoline dose";
  int series_number = 902;
  /// DoseType: PHYSICAL (default), EFFECTIVE or ERROR.
  std::string dose_type = "PHYSICAL";
  /// 32 (default: full precision) or 16 bits per stored value.
  int bits_allocated = 32;
};

struct RtDoseWriteResult {
  std::string sop_instance_uid;
  std::string series_instance_uid;
  double dose_grid_scaling = 0.0;  ///< Gy per stored unit
  double max_quantization_error_gy = 0.0;
};

/// Throws InvalidInput (naming `file`) when an RT-DOSE written to `file` could not lie in
/// `ct`'s study and frame of reference (the CT lacks its Study Instance or Frame of Reference
/// UID). write_rtdose checks this first; callers that plan before writing call it up front.
void check_rtdose_reference(const CtSeries& ct, const std::string& file);

/// Writes `dose_gy` (any pixel type, Gy, >= 0; any grid in the CT's frame of reference)
/// as RT Dose Storage: DoseUnits GY, 32-bit (or 16-bit) unsigned pixels with DoseGridScaling
/// chosen for the full range of that type, relative GridFrameOffsetVector starting at 0, patient,
/// study and FrameOfReferenceUID copied from `ct`. Atomic. Throws InvalidInput for a
/// negative or non-finite dose or an empty image.
RtDoseWriteResult write_rtdose(const core::Image& dose_gy, const CtSeries& ct,
                               const std::string& file, const RtDoseWriteOptions& options = {});

struct RtDose {
  core::Image dose;  ///< Float32 Gy
  std::string sop_instance_uid;
  std::string frame_of_reference_uid;
  std::string dose_units;  ///< GY or RELATIVE
  std::string dose_type;
  std::string dose_summation_type;
  std::string referenced_plan_sop_instance_uid;
  double dose_grid_scaling = 1.0;
  PatientStudy info;
};

/// Reads an RT Dose file (relative or absolute GridFrameOffsetVector, 16/32-bit).
/// Throws IoError or InvalidInput.
RtDose read_rtdose(const std::string& file);

/// What a DICOM file is, from its header: "CT", "RTSTRUCT", "RTDOSE", "RTPLAN", ...
/// (the Modality), or "" when the file is not DICOM.
std::string dicom_modality(const std::string& file);

/// As dicom_modality, but a file that carries the DICOM preamble ("DICM" at byte 128) and
/// cannot be read (e.g. truncated) throws the reader's IoError, naming the problem, instead
/// of passing for "not DICOM".
std::string dicom_modality_checked(const std::string& file);

/// SOP Instance UID of a DICOM file (e.g. an RT Plan to reference). Throws IoError.
std::string read_sop_instance_uid(const std::string& file);

/// SOP Instance UID of the RT Plan `file`, checked as the plan of an RT-DOSE on `ct`: throws
/// InvalidInput naming the file when it is not an RT Plan, or belongs to another patient
/// (Patient ID) or frame of reference than the CT (where the plan carries them).
std::string plan_reference_for(const std::string& file, const CtSeries& ct);

}  // namespace isoline::rtstruct
