// Internal DCMTK helpers shared by the rtstruct sources (not installed, not public).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dcdatset.h"
#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcitem.h"
#include "dcmtk/dcmdata/dcmetinf.h"
#include "dcmtk/dcmdata/dcsequen.h"
#include "dcmtk/dcmdata/dcuid.h"
#include "isoline/rtstruct/ct_series.h"

namespace isoline::rtstruct::detail {

/// Registers the DCMTK decoders (JPEG, JPEG-LS, RLE) once; thread-safe.
void register_codecs();

/// Loads a DICOM file (with or without meta header). Large elements (> 4 KiB) are left on
/// disk when `headers_only`. Throws IoError naming `operation` and the file.
void load_file(DcmFileFormat& ff, const std::string& file, const std::string& operation,
               bool headers_only = false);

/// Trimmed string value ("" when absent).
std::string get_string(DcmItem& item, const DcmTagKey& tag, unsigned long pos = 0);
/// Whole multi-valued string (backslash separated), trimmed.
std::string get_string_all(DcmItem& item, const DcmTagKey& tag);
/// All numeric values of a DS/IS/US/... element ("" -> empty vector). Throws InvalidInput
/// naming `file` when a DS value is not a number.
std::vector<double> get_numbers(DcmItem& item, const DcmTagKey& tag, const std::string& file);
bool has(DcmItem& item, const DcmTagKey& tag);

/// Puts a string value (creating the element; "" creates an empty Type 2 element).
void put(DcmItem& item, const DcmTagKey& tag, const std::string& value);
void put_us(DcmItem& item, const DcmTagKey& tag, unsigned short value);

/// Isoline's own text (UTF-8: ROI names, labels, comments, reviewer names) made fit for one
/// single-valued string attribute of a dataset whose Specific Character Set is `charset` (as
/// written: "" is written as ISO_IR 100). A backslash (the DICOM value separator) becomes '/',
/// control characters a space; the text is cut to `max_chars` characters (not bytes) and
/// encoded as the file declares it: UTF-8 for ISO_IR 192, Latin-1 for ISO_IR 100; a character
/// the set cannot hold (and any non-ASCII one in another set) becomes '?'.
struct OwnText {
  std::string encoded;  ///< bytes to put into the dataset
  std::string utf8;     ///< the same text in UTF-8, for messages
  bool changed = false; ///< differs from the input (cut, replaced characters)
};
OwnText own_text(const std::string& utf8, const std::string& charset, std::size_t max_chars);

/// A DS value of at most 16 characters representing v as closely as possible.
std::string format_ds(double v);
/// Backslash-joined DS values.
std::string format_ds_list(const std::vector<double>& v);
/// Fast fixed-point DS for coordinates (up to 6 decimals, trailing zeros trimmed),
/// appended to `out`. |v| must be below 1e9.
void append_coordinate(std::string& out, double v);

/// Throws InvalidInput (`operation`, `file`) naming the UIDs of `ct` that an object derived from
/// it must reference and that are empty: Study Instance UID, Series Instance UID (only when
/// `series_uid`), Frame of Reference UID. `why` ends the message.
void require_ct_uids(const CtSeries& ct, bool series_uid, const char* operation,
                     const std::string& file, const std::string& why);

PatientStudy read_patient_study(DcmItem& item);
/// Writes the Patient and General Study modules (Type 2 attributes always present).
void write_patient_study(DcmItem& item, const PatientStudy& info);

/// Header of an object derived from a CT series (RT-STRUCT, RT-DOSE): SOP Common, Patient,
/// General Study, a new series (Isoline as manufacturer) in the CT's frame of reference.
struct DerivedSeries {
  const char* sop_class_uid;
  std::string sop_instance_uid;
  std::string modality;
  std::string series_description;
  std::string series_instance_uid;
  int series_number = 0;
  std::string date, time;  ///< instance creation date and time
};
void write_derived_header(DcmItem& item, const DerivedSeries& d, const CtSeries& ct);

/// Runs body(i) for i in [0, n) on up to two threads (DCMTK objects are per item); the first
/// exception thrown by a body is rethrown after all workers stop.
void parallel_for(std::size_t n, const std::function<void(std::size_t)>& body);

/// Current date "YYYYMMDD" and time "HHMMSS".
std::string today();
std::string now_time();

/// Saves with a meta header in `xfer` to `file` (no temporary), every write checked (see
/// rtstruct::save_dicom_file). Throws IoError.
void save_file(DcmFileFormat& ff, const std::string& file, E_TransferSyntax xfer, bool new_meta,
               const std::string& operation);

/// Saves with a meta header in `xfer` to `file` atomically (temp name, rename).
void save_atomic(DcmFileFormat& ff, const std::string& file, E_TransferSyntax xfer,
                 const std::string& operation);

}  // namespace isoline::rtstruct::detail
