// The review database: every structure version of one case, in an embedded SQLite file.
//
// A save never overwrites: it adds a row (structure, version, name, author, time, action,
// zlib-compressed mask). Saves carry the version they were based on; when another save
// landed in between, the save is refused with a Conflict (optimistic concurrency). Each save
// is one SQLite transaction (WAL journal, synchronous=FULL), so a crash during a save leaves
// the previous version intact.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "isoline/core/error.h"
#include "isoline/core/image.h"
#include "isoline/core/structure.h"

namespace isoline::ui {

/// A save based on a version that is no longer the latest. `structure_id` and
/// `base_version` (when known) let the server list the versions saved in between: what a
/// save over them would drop from the live structure.
/// A new draft that would exceed ReviewDb::kDraftLimit drafts of one structure and reviewer:
/// refused (the server answers 409), none of the kept ones is dropped.
class DraftLimit : public core::Error {
 public:
  using core::Error::Error;
};

class Conflict : public core::Error {
 public:
  Conflict(const std::string& message, std::int64_t latest, std::int64_t structure = 0, std::int64_t base = 0)
      : core::Error(message), latest_version(latest), structure_id(structure), base_version(base) {}
  std::int64_t latest_version;
  std::int64_t structure_id;
  std::int64_t base_version;
};

/// One stored version of a structure (the mask is loaded only on request).
struct VersionInfo {
  std::int64_t structure_id = 0;
  std::int64_t version = 0;
  std::string name;
  std::string author;
  std::string time;    ///< UTC, ISO 8601
  std::string action;  ///< "import (automatic)", "brush", "margin +5 mm", "delete", ...
  bool deleted = false;
  std::int64_t voxels = 0;
  double volume_cc = 0;
};

/// A reviewer's mark that they looked at a structure's quality flags (or took the mark back).
/// Stored in its own table, never updated in place: the latest row per structure holds.
struct FlagCheck {
  std::int64_t structure_id = 0;
  std::int64_t version = 0;  ///< the version the reviewer had on screen
  std::string flags;         ///< the flags checked (the structure's description then)
  std::string author;
  std::string time;          ///< UTC, ISO 8601
  bool checked = true;       ///< false: the mark was taken back
};

/// A draft of one tab that a drawing supersedes (it was restored from it): removed only while
/// it holds nothing newer than what was restored, its change number `seq` (DraftInfo::seq) not
/// above the one read. The default: whatever it holds (the drafts of the saving tab itself).
struct DraftRef {
  std::string tab;
  std::int64_t seq = INT64_MAX;
};

/// A reviewer's unsaved drawing of a structure, kept by the server so that a closed or crashed
/// tab loses nothing (one per structure, reviewer and tab: two tabs or windows of the same
/// reviewer on the same structure each keep their own; the mask is loaded only on request).
/// Not a version: never the live structure, never approved.
struct DraftInfo {
  std::int64_t structure_id = 0;
  std::string reviewer;
  std::string tab;                ///< the sending tab's draft key ("" for a client that sends none)
  /// The change number of the drawing it holds: the tab's own (it grows with every change of
  /// the tab); for a draft put without a tab, a count of its writes.
  std::int64_t seq = 0;
  std::int64_t base_version = 0;  ///< the version the drawing was drawn on
  std::string time;               ///< UTC, ISO 8601: when it was last written
  std::string action;             ///< the pending action text ("brush 5 mm, eraser 5 mm")
  std::int64_t voxels = 0;
  double volume_cc = 0;
  /// Set by put_draft when the draft sent was older than the one kept (same tab, a lower or
  /// equal sequence number): the kept one is returned and stays.
  bool stale = false;
  /// Set by put_draft (with `stale`) when the tab saved this drawing or a later one of it
  /// already (the save's `saved_by`): nothing is written, the saved drawing is no draft.
  bool saved = false;
  /// Set by put_draft (with `stale`) when this drawing of the tab, or a later one, is no draft
  /// any more: "saved" (with `saved`; also when a window it was restored into saved it),
  /// "discarded", or "restored" (restored into another window, whose draft holds it). Nothing is
  /// written: a late request of the tab, or the copy its browser kept when the page went before
  /// the answer, does not bring it back.
  std::string gone;
};

/// Static facts of a structure (from the automatic contours or the creating user).
struct StructureInfo {
  std::int64_t id = 0;
  std::string type;         ///< DICOM RTROIInterpretedType ("PTV", "ORGAN", ...)
  core::Color color;
  std::string description;  ///< quality flags of the automatic contour
  std::string origin;       ///< "auto" or "user"
  VersionInfo latest;       ///< the current version
};

class ReviewDb {
 public:
  /// Opens (creating when missing) the database file. Throws IoError.
  explicit ReviewDb(const std::string& path);
  ~ReviewDb();
  ReviewDb(const ReviewDb&) = delete;
  ReviewDb& operator=(const ReviewDb&) = delete;

  const std::string& path() const { return path_; }

  /// Case-wide key/value settings (e.g. the grid, the case directory).
  std::optional<std::string> meta(const std::string& key) const;
  void set_meta(const std::string& key, const std::string& value);

  /// Adds a structure with version 1. Throws InvalidInput when a live structure has the name.
  std::int64_t create_structure(const std::string& name, const std::string& type,
                                const core::Color& color, const std::string& description,
                                const std::string& origin, const core::Image& mask,
                                const std::string& author, const std::string& action);

  /// Adds a new version of structure `id` based on `base_version`. `mask` empty keeps the
  /// mask of the latest version; `new_name` empty keeps the name. Throws Conflict when
  /// `base_version` is not the latest, InvalidInput for an unknown or deleted structure or a
  /// name clash. Returns the new version number.
  /// `clear_drafts`: the author's drafts of the structure from these tabs (each as far as its
  /// change number, DraftRef) are removed in the same transaction (the drawing they kept is
  /// now this version); the author's drafts of other tabs, and one written since, stay.
  /// `saved_by`: the saving tab and the change number of the drawing saved: a draft request of
  /// that tab (and author) not above it that arrives later (sent when the page was hidden or
  /// left while the save was on its way, or a copy the browser kept) writes nothing (put_draft:
  /// `stale`, `saved`). The drafts cleared are noted the same way.
  std::int64_t save_version(std::int64_t id, std::int64_t base_version, const core::Image& mask,
                            const std::string& author, const std::string& action,
                            const std::string& new_name = {}, bool deleted = false,
                            const std::vector<DraftRef>& clear_drafts = {},
                            const std::optional<DraftRef>& saved_by = std::nullopt);
  /// Brings a deleted structure back as a new version with its last mask and name ("delete
  /// keeps the history"). Throws Conflict on a stale base, InvalidInput when the structure is
  /// not deleted or a live structure has taken its name.
  std::int64_t restore(std::int64_t id, std::int64_t base_version, const std::string& author);

  /// Live (not deleted) structures with their latest version, in creation order.
  std::vector<StructureInfo> structures(bool include_deleted = false) const;
  std::optional<StructureInfo> find(const std::string& name) const;
  StructureInfo get(std::int64_t id) const;
  /// Every version of a structure (oldest first), or of all structures when id is 0.
  std::vector<VersionInfo> history(std::int64_t id = 0) const;
  /// The mask of a version (0 = latest) on `grid`. Throws InvalidInput when missing.
  core::Image mask(std::int64_t id, std::int64_t version, const core::Geometry& grid) const;
  /// The version that made the current contour of structure `id`, when that contour differs
  /// from version 1's (the automatic or given one, which the quality flags describe); nullopt
  /// while the latest mask is version 1's (unchanged, or restored). Reads the stored masks.
  std::optional<VersionInfo> contour_edit(std::int64_t id) const;

  /// Records that `author` checked (or, `checked` false, unchecked) the quality flags of
  /// structure `id` as shown in `version`. Throws InvalidInput for an unknown structure.
  void check_flags(std::int64_t id, std::int64_t version, const std::string& flags,
                   const std::string& author, bool checked);
  /// Every flag check of a structure (oldest first), or of all structures when id is 0.
  std::vector<FlagCheck> flag_checks(std::int64_t id = 0) const;
  /// The latest flag check of a structure (checked or taken back), nullopt when none.
  std::optional<FlagCheck> flag_check(std::int64_t id) const;

  /// At most this many drafts of one structure and reviewer (all tabs together): a draft of a
  /// further tab is refused with DraftLimit, and none of the kept ones is dropped.
  static constexpr std::int64_t kDraftLimit = 20;

  /// Keeps `reviewer`'s unsaved drawing of structure `id` drawn in tab `tab`, on `base_version`,
  /// replacing that tab's previous draft of it (one SQLite statement: the old draft or the new
  /// one, never half); the drafts of the reviewer's other tabs stay. Throws InvalidInput for an
  /// unknown structure, a base that is not one of its versions or a blank reviewer, DraftLimit
  /// when the tab has no draft of the structure yet and kDraftLimit of the reviewer's are kept.
  /// Drafts are not versions: structures(), history() and mask() never see them.
  /// `seq` orders the drafts one tab sends (a number that grows with every change): a draft of
  /// the same tab with a sequence number not above the kept one's does not replace it (two
  /// requests of a tab may reach the server out of order), and comes back with `stale` set.
  /// An empty `tab` (a client that sends none) always replaces. A draft of a tab whose save
  /// covered change `seq` (save_version's `saved_by`) writes nothing and comes back with `stale`
  /// and `saved` set; one of a tab whose draft was discarded or restored into another window
  /// (removed, as far as change `seq`) writes nothing either and comes back with `stale` and
  /// `gone` set: a discarded drawing does not come back from a late request or a browser's copy.
  /// `replaces`: other tabs' drafts of the reviewer and structure that this drawing supersedes
  /// (it was restored from them, as they were at change number DraftRef::seq): removed in the
  /// same transaction when this one is written, unless written since (a window still open
  /// that drew on: its newer drawing stays).
  DraftInfo put_draft(std::int64_t id, const std::string& reviewer, std::int64_t base_version,
                      const core::Image& mask, const std::string& action, const std::string& tab = "",
                      std::int64_t seq = 0, const std::vector<DraftRef>& replaces = {});
  /// Every draft (of structure `id`, or all when 0), oldest first; no masks.
  std::vector<DraftInfo> drafts(std::int64_t id = 0) const;
  /// The drafts of `reviewer` of structure `id` (every tab), oldest first.
  std::vector<DraftInfo> drafts_of(std::int64_t id, const std::string& reviewer) const;
  std::optional<DraftInfo> draft(std::int64_t id, const std::string& reviewer, const std::string& tab = "") const;
  /// The mask of a draft on `grid`, read in one statement; nullopt when there is none (never
  /// was, or discarded, saved or restored since the caller looked).
  std::optional<core::Image> draft_mask(std::int64_t id, const std::string& reviewer, const std::string& tab,
                                        const core::Geometry& grid) const;
  /// Removes one tab's draft, as far as its change number `up_to_seq` (the one the discarding
  /// reviewer saw): one written since stays (its window drew on). False when none was removed.
  /// A later put_draft of that tab not above the change number removed writes nothing (`gone`).
  bool discard_draft(std::int64_t id, const std::string& reviewer, const std::string& tab = "",
                     std::int64_t up_to_seq = INT64_MAX);

  /// Total number of version rows (for tests).
  std::int64_t version_count() const;

  /// Test hook: seconds to sleep inside the save transaction, after the row is written
  /// and before the commit (so a test can kill the process mid-save); it creates the file
  /// "<path>.test-in-save" when the transaction is open. 0 in production.
  void set_commit_delay_for_testing(double seconds) { commit_delay_ = seconds; }

 private:
  struct Impl;
  Impl* impl_;
  std::string path_;
  double commit_delay_ = 0;
  void migrate_drafts(const std::string& path);
  std::int64_t save_version_impl(std::int64_t id, std::int64_t base_version, const core::Image& mask,
                                 const std::string& author, const std::string& action,
                                 const std::string& new_name, bool deleted, bool restoring,
                                 const std::vector<DraftRef>& clear_drafts,
                                 const std::optional<DraftRef>& saved_by);
};

/// zlib-compresses a mask's bytes (level 1) / restores them; exposed for tests.
std::string compress_mask(const core::Image& mask);
core::Image decompress_mask(const std::string& blob, const core::Geometry& grid);

}  // namespace isoline::ui
