// Saving a DCMTK dataset with every write checked, for the modules that build DICOM objects
// themselves (the DICOM node, the review server). Only a forward declaration of DCMTK here.
#pragma once

#include <string>

class DcmFileFormat;

namespace isoline::rtstruct {

/// Writes `ff` to `file` (exactly there: callers write at a temporary name and rename) in the
/// transfer syntax `transfer_syntax_uid`, with explicit lengths and recalculated group lengths,
/// the meta header created anew (`new_meta`) or updated. Like DcmFileFormat::saveFile, except
/// that nothing is lost unnoticed: DCMTK's file stream drops the error of its last buffer when
/// it closes the file, so a full disk or a file size limit left a short file that saveFile
/// called written. Throws IoError naming `operation`, `file` and the system's reason ("No
/// space left on device", "File too large"); `file` is then incomplete.
void save_dicom_file(DcmFileFormat& ff, const std::string& file,
                     const std::string& transfer_syntax_uid, bool new_meta,
                     const std::string& operation);

}  // namespace isoline::rtstruct
