// Approval output of the review server (internal): approved masks, approval record and the
// approved RT-STRUCT next to the untouched automatic one.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "isoline/core/image.h"
#include "isoline/ui/review_db.h"

namespace isoline::ui {

struct ApprovalStructure {
  StructureInfo info;
  core::Image mask;       ///< approved (latest) mask on the CT grid
  core::Image automatic;  ///< version 1 of an automatic structure; empty for user-made ones
  core::Image given;      ///< version 1 of a structure given with the case (origin "given"), else empty
  bool deleted = false;   ///< deleted in review: only in RS_auto (and the record), not approved
  std::optional<FlagCheck> flag_check;  ///< the latest check of its quality flags, if any
};

/// The quality flags in a structure's description (contouring's summary(): "a; b; c").
std::vector<std::string> quality_flags(const std::string& description);

struct ApprovalInput {
  std::string case_dir, review_dir;
  core::Image ct;  ///< the case CT (NIfTI), the grid of every mask
  /// The DICOM CT series the RT-STRUCTs reference (ServerOptions::ct_path); empty = the case's
  /// dicom/, else a series written from `ct`.
  std::string dicom_ct;
  std::string reviewer;
  std::string status = "APPROVED";
  std::vector<ApprovalStructure> structures;
  /// The drafts (unsaved drawings) that exist at approval: not approved, not removed; the
  /// record lists them (`unsaved_drafts`) so that nobody takes them for approved.
  nlohmann::json unsaved_drafts = nlohmann::json::array();
};

/// "AUTOMATIC" (automatic and unchanged), "SEMIAUTOMATIC" (automatic, edited) or "MANUAL"
/// (created by the reviewer).
std::string generation_algorithm(const ApprovalStructure& s);

/// Reads the DICOM CT series in `dir` as the approval does (the server checks the case's
/// dicom/ at start); throws as rtstruct::read_ct_series, naming the file that fails.
void read_reference_ct(const std::string& dir);

/// Writes review/approved/<UTC time>/: masks/<name>.nii.gz, approval.json, RS_approved.dcm
/// and RS_auto.dcm (referencing `dicom_ct`, the case's DICOM CT in dicom/, or a CT series written from
/// the NIfTI CT into review/dicom_ct/ when the case has none). Returns the approval record.
nlohmann::json write_approval(const ApprovalInput& in);

}  // namespace isoline::ui
