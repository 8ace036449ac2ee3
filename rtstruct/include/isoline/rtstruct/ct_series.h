// DICOM CT series: reading (directory or file list -> one int16 HU image per series) and
// writing (one CT Image Storage file per slice). DCMTK stays inside the .cpp files.
//
// Geometry follows the DICOM patient coordinate system (LPS, mm): the image's i axis is the
// row direction (ImageOrientationPatient[0..2]), j the column direction, k the slice normal
// row x column; slices are sorted by their position along that normal, never by
// InstanceNumber or file name. The image origin is the ImagePositionPatient of slice k = 0.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "isoline/core/image.h"
#include "isoline/core/progress.h"

namespace isoline::rtstruct {

/// One stored CT slice, in image order (slices[k] is the image's slice k).
struct SliceRef {
  std::string sop_class_uid;     ///< (0008,0016) of the slice, e.g. CT Image Storage
  std::string sop_instance_uid;  ///< (0008,0018) of the slice (not the meta header's)
  std::string file;              ///< path it was read from / written to
  double position = 0.0;         ///< ImagePositionPatient projected on the slice normal, mm
  int instance_number = 0;
};

/// Patient and study attributes, copied verbatim into derived objects (RT-STRUCT, RT-DOSE).
struct PatientStudy {
  std::string patient_name;
  std::string patient_id;
  std::string patient_birth_date;
  std::string patient_sex;
  std::string study_instance_uid;
  std::string study_date;
  std::string study_time;
  std::string study_id;
  std::string accession_number;
  std::string referring_physician_name;
  std::string study_description;
  /// SpecificCharacterSet of the source (the strings above are its bytes); "" = ISO_IR 100.
  std::string specific_character_set;
};

/// A CT series with everything derived objects need to reference it.
struct CtSeries {
  core::Image image;             ///< int16 Hounsfield units (rescale applied)
  std::vector<SliceRef> slices;  ///< one per image slice, slices[k] <-> image slice k
  PatientStudy info;
  std::string series_instance_uid;
  std::string series_description;
  int series_number = 0;
  std::string frame_of_reference_uid;
  std::string modality = "CT";
  std::string patient_position;  ///< HFS, FFS, HFP, FFP, ... ("" when absent)
  std::string manufacturer;
  /// True when the stored slices were not uniformly spaced and the image was resampled
  /// (CtReadOptions::resample_nonuniform); then slices[] lists the stored slices and
  /// does not match image slices one to one.
  bool resampled = false;
  std::vector<std::string> warnings;  ///< non-fatal remarks (skipped files, resampling)
  /// The non-image DICOM objects of the directory that were not read (an RT-STRUCT, an
  /// RT-DOSE, ...): file and kind ("RT Structure Set Storage"); warnings says "skipped N
  /// non-image DICOM object(s) (...)" for them, until mark_used takes out those the caller uses.
  std::vector<std::pair<std::string, std::string>> skipped_objects;
};

/// Says that the caller uses `file`, one of s.skipped_objects (the RT-STRUCT that `run
/// --targets` or `load_patient` reads beside the CT): it leaves skipped_objects, and the
/// "skipped N non-image DICOM object(s)" warning names only the others (none: no warning).
/// Nothing happens for a file that is not in skipped_objects.
void mark_used(CtSeries& s, const std::string& file);

/// One series found in a directory, for listing and for "several series" errors.
struct SeriesSummary {
  std::string series_instance_uid;
  std::string series_description;
  std::string modality;
  std::string sop_class_uid;
  int series_number = 0;
  std::size_t num_files = 0;
  std::string first_file;
};

struct CtReadOptions {
  /// Pick this series when the input holds several; empty = the input must hold exactly
  /// one CT series (else InvalidInput listing them with UIDs and descriptions).
  std::string series_instance_uid;
  /// Resample non-uniformly spaced slices (linear, along the normal) onto the smallest
  /// spacing instead of refusing the series. Gaps are reported either way.
  bool resample_nonuniform = false;
  /// Relative tolerance on slice spacing uniformity (fraction of the spacing).
  double spacing_tolerance = 0.01;
  /// Accept other image modalities (MR, PT) stored as single-frame 16-bit slices.
  bool allow_non_ct = false;
};

/// Reads the CT series in `path`: a DICOM file, or a directory searched recursively
/// (non-DICOM files are skipped; non-image DICOM objects are skipped in directories).
/// Decodes uncompressed, deflated, RLE, JPEG (baseline, extended, lossless), JPEG-LS and
/// JPEG 2000 transfer syntaxes.
/// Throws core::IoError (unreadable/truncated file), core::InvalidInput (no CT, several
/// series, gaps, non-uniform spacing, gantry tilt, mixed sizes/orientations, a non-image
/// object given explicitly) or core::NotSupported (multi-frame, colour, unusual bits).
CtSeries read_ct_series(const std::string& path, const CtReadOptions& options = {},
                        const core::Progress& progress = {});
/// Same, from an explicit list of files (every file must be an image slice).
CtSeries read_ct_series(const std::vector<std::string>& files, const CtReadOptions& options = {},
                        const core::Progress& progress = {});

/// Lists the DICOM series (any modality) under `path` (file or directory, recursive).
std::vector<SeriesSummary> list_series(const std::string& path);

struct CtWriteOptions {
  /// Patient/study attributes; empty study_instance_uid = a new one; empty name/ID =
  /// those of identity_for_image (ID from a hash of the image, "ANONYMOUS^").
  PatientStudy info;
  std::string series_description = "Isoline CT";
  int series_number = 1;
  std::string series_instance_uid;     ///< empty = generated
  std::string frame_of_reference_uid;  ///< empty = generated
  std::string patient_position = "HFS";
  /// Stored value = HU - rescale_intercept (slope 1); pixels are signed 16-bit.
  double rescale_intercept = 0.0;
  /// File name prefix; files are "<prefix><k+1 zero-padded>.dcm".
  std::string file_prefix = "CT";
  /// Write slice files in reverse order of k (file and InstanceNumber order reversed);
  /// geometry is unchanged. Exists to test readers that must not trust InstanceNumber.
  bool reverse_instance_numbers = false;
};

/// Writes `hu` (any pixel type, converted to int16 HU; any orientation with orthonormal
/// direction) as a CT Image Storage series, one file per slice, into directory `dir`
/// (created; written atomically: a temporary directory renamed onto `dir`, replacing an
/// existing one). Returns the series as written (UIDs, files), image = `hu` as int16.
CtSeries write_ct_series(const core::Image& hu, const std::string& dir,
                         const CtWriteOptions& options = {}, const core::Progress& progress = {});

/// A new globally unique DICOM UID (under the DCMTK/Isoline root).
std::string generate_uid();

/// The DICOM identity given to a CT read from an image file (NIfTI, NRRD, ...), which carries
/// none: Patient ID "IMG-" and 12 hex digits of a hash of the image's voxels and geometry (the
/// same image always gets the same ID and two images different ones, so two patients never
/// share a record in a TPS or PACS), Patient Name "ANONYMOUS^", a new Study Instance UID.
/// A non-empty `patient_id` / `patient_name` is used instead (checked: at most 64 characters,
/// no backslash or control character).
PatientStudy identity_for_image(const core::Image& ct, const std::string& patient_id = {},
                                const std::string& patient_name = {});

}  // namespace isoline::rtstruct
