// De-identification of DICOM objects following the DICOM PS3.15 Annex E Basic Application
// Level Confidentiality Profile (Table E.1-1, "Basic Prof." column), and re-identification
// of derived objects (an RT-STRUCT computed on the de-identified CT) on the way back.
//
// One consistent UID map per study: every UID the profile replaces (action U: Study, Series,
// SOP Instance, Frame of Reference, Referenced SOP Instance UIDs, ...) is replaced through
// the map of the object's original StudyInstanceUID; a UID already replaced in another study
// keeps that pseudonym, so references between objects stay consistent, also across studies
// (an RT-STRUCT filed in its own study referencing the CT of another). The map also keeps the original patient and study attributes, so a
// result computed on de-identified data can be re-identified (UIDs and patient/study module
// put back) before it is sent to the treatment planning system. The map holds PHI: store it
// where the de-identified data are not.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "isoline/core/progress.h"

namespace isoline::rtstruct {

/// One row of PS3.15 Table E.1-1 (Basic Profile column). `group_mask`/`element_mask` select
/// the bits compared (0xFF00 for the repeating groups 50xx and 60xx).
struct ProfileAttribute {
  std::uint16_t group, element;
  std::uint16_t group_mask, element_mask;
  const char* name;
  /// Basic Profile action code as published: D, Z, X, K, C, U, Z/D, X/Z, X/D, X/Z/D, X/Z/U*.
  const char* action;
};

/// The rows of the Basic Profile table (private attributes, odd groups, are X by rule and
/// are not listed). Source: PS3.15 Table E.1-1.
const std::vector<ProfileAttribute>& basic_profile_attributes();

/// The profile row for (group, element), or nullptr when the attribute is not listed.
const ProfileAttribute* find_profile_attribute(std::uint16_t group, std::uint16_t element);

/// What the de-identifier did with a profile action for an attribute of a given IOD:
/// combined actions (X/Z, X/D, Z/D, X/Z/D, X/Z/U*) resolve to the weakest action that keeps
/// the objects Isoline handles (CT Image, RT Structure Set, RT Dose) valid.
enum class DeidAction { Keep, Remove, Empty, Dummy, ReplaceUid, CleanSequence };

/// One study's entry in the map.
struct DeidStudy {
  std::string pseudo_patient_id;    ///< replaces PatientID (and PatientName)
  /// Original values of the patient and study attributes (tag "GGGG,EEEE" -> value bytes),
  /// put back by re-identification.
  std::map<std::string, std::string> original;
  /// Original UID -> pseudonymous UID.
  std::map<std::string, std::string> uids;
  /// Original SOP Instance UID of an RT object -> its instance-level text that the profile
  /// empties or removes but a treatment planning system needs back (attribute path, e.g.
  /// "3006,0002" or "3006,0020[2]/3006,0026" -> value bytes): Structure Set Label/Name/
  /// Description/Date/Time, Series Description, Instance Creation Date/Time, ROI Names, ROI
  /// Descriptions, ROI Observation Labels/Descriptions, ... Put back by re-identification.
  std::map<std::string, std::map<std::string, std::string>> instances;
};

/// The UID map of every study de-identified so far (key: original StudyInstanceUID).
struct DeidMap {
  std::map<std::string, DeidStudy> studies;

  /// Loads a map saved by save(); a missing file gives an empty map. Throws IoError.
  static DeidMap load(const std::string& file);
  /// Writes the map as JSON, atomically. Throws IoError.
  void save(const std::string& file) const;
  /// Original UID of a pseudonymous one ("" when unknown), searching all studies.
  std::string original_uid(const std::string& pseudo_uid) const;
  /// The study whose pseudonymous StudyInstanceUID is `pseudo_study_uid` (nullptr if none).
  const DeidStudy* study_by_pseudo_uid(const std::string& pseudo_study_uid) const;
};

struct DeidOptions {
  /// Prefix of the pseudonymous patient ID ("<prefix>-<8 hex digits>").
  std::string patient_id_prefix = "ANON";
};

struct DeidResult {
  std::string original_study_uid;
  std::string pseudo_study_uid;
  std::string sop_instance_uid;  ///< new SOP Instance UID
  std::string file;              ///< written file
  std::string source_file;       ///< the input file
  /// Burned In Annotation (0028,0301) is YES: the pixel data may show identifying text, which
  /// de-identification does not remove (the output is then not de-identified).
  bool burned_in_annotation = false;
};

/// De-identifies one DICOM file into `out_file` (atomic), extending `map`. Pixel data and
/// transfer syntax are kept. Throws IoError (unreadable/not DICOM, or cannot write) or
/// InvalidInput (no StudyInstanceUID or SOP Instance UID; checked before `map` changes).
DeidResult deidentify_file(const std::string& in_file, const std::string& out_file, DeidMap& map,
                           const DeidOptions& options = {});

struct DeidDirectoryResult {
  std::vector<DeidResult> files;
  std::vector<std::string> skipped;  ///< non-DICOM files under the input
  /// DICOM files that could not be de-identified (file, why: e.g. "lacks its Study Instance
  /// UID"); nothing was written for them, the other files were de-identified.
  std::vector<std::pair<std::string, std::string>> failed;
};

/// De-identifies every DICOM file under `in_dir` (recursive; a single file works too) into
/// `out_dir` as "<new SOP Instance UID>.dcm". Non-DICOM files are skipped; a DICOM file that
/// cannot be de-identified (no Study or SOP Instance UID, unreadable past its header) is listed
/// in `failed` and the others are still done. `map` holds every file written so far, also when
/// this throws (an error writing OUT): save it then too, so that a rerun gives the same UIDs.
DeidDirectoryResult deidentify_directory(const std::string& in_dir, const std::string& out_dir,
                                         DeidMap& map, const DeidOptions& options = {},
                                         const core::Progress& progress = {});

/// Re-identifies an object derived from de-identified data (e.g. an RT-STRUCT referencing a
/// de-identified CT): every UID value found in the map is put back to its original, and the
/// patient and study attributes are restored from the study's entry. UIDs created after
/// de-identification (the derived object's own SOP Instance and Series UIDs) are kept.
/// Instance-level text the map keeps for that object (DeidStudy::instances: RT-STRUCT ROI
/// names, descriptions, labels) is put back. Returns warnings (e.g. ROI names that stay empty
/// because the map holds none for this object). Throws InvalidInput when the object's study
/// is not in the map.
std::vector<std::string> reidentify_file(const std::string& in_file, const std::string& out_file, const DeidMap& map);

}  // namespace isoline::rtstruct
