// `isoline serve`: the review web server (cpp-httplib) for one case directory.
//
// Case directory layout (what the phantom generator and `isoline contour --masks` write):
//   ct.nii.gz (or .nii/.nrrd/.mha)    planning CT in HU          (required)
//   masks/<name>.nii.gz               automatic structures       (required, may be empty)
//   dose.nii.gz                       dose in Gy on any grid     (optional)
//   structures.json / ground_truth.json  type, colour, description/quality flags (optional)
//   dicom/                            DICOM CT series the RT-STRUCT will reference (optional)
// The server adds review/ (review.sqlite, approved/<time>/, dicom_ct/ when no DICOM CT).
//
// Security: binds 127.0.0.1 unless told otherwise; every request needs the random token
// (query `token=` or header `X-Isoline-Token`), else 401; any path containing ".." is 404;
// only the API below and the bundled web client are served, never arbitrary case files.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "isoline/core/image.h"
#include "isoline/core/progress.h"
#include "isoline/core/structure.h"
#include "isoline/ui/review_db.h"

namespace isoline::ui {

/// Re-estimates the achievable dose for the (edited) structures: given the CT and the
/// current structures, returns a dose (float32 Gy, any grid). Reports through `progress`.
/// This is the seam for the planning module's entry point; when none is supplied the
/// "Re-estimate dose" endpoint answers 501 "not available in this build".
using DoseEstimator = std::function<core::Image(const core::Image& ct, const core::StructureSet& structures,
                                                const core::Progress& progress)>;

struct ServerOptions {
  std::string case_dir;
  std::string host = "127.0.0.1";
  int port = 0;              ///< 0 = the last server's port on this case (review/port) when free, else any free port
  std::string token;         ///< empty = 32 random hex characters
  std::string ui_dir;        ///< bundled web client (index.html, app.js); empty = built-in default
  std::string db_path;       ///< empty = <case>/review/review.sqlite
  /// The CT when the case directory has no ct.nii.gz (.nii, .nrrd, .mha, .mhd): the CT of an
  /// `isoline run` output, its CT/ or the DICOM CT that its metrics.json records (`isoline
  /// serve` finds it with pipeline::find_case_ct). A DICOM CT series is what the approved
  /// RT-STRUCT then references; a path that no longer exists is refused, naming it. Empty = none.
  std::string ct_path;
  /// Reviewer name the client pre-fills (`serve --author`); empty = none, the reviewer types
  /// it. Also the author of a change made through the API without a name ("unnamed" when
  /// empty). Never used for an approval: that must name its reviewer.
  std::string author;
  DoseEstimator dose_estimator;     ///< empty = not available in this build
  int threads = 8;           ///< HTTP worker threads
};

/// Applies one edit to `mask` (uint8) as described by a JSON object, using core::mask_ops:
///   {"op":"margin","mode":"grow"|"shrink","mm":5} or per direction
///     {"op":"margin","mode":"grow","left":..,"right":..,"anterior":..,"posterior":..,
///      "superior":..,"inferior":..}
///   {"op":"boolean","operation":"union"|"intersect"|"subtract","other":"<name>"}
///   {"op":"smooth","sigma_mm":1.5}
///   {"op":"remove_islands","min_cc":0.5}   {"op":"keep_largest","count":1}
///   {"op":"fill_holes","per_slice":false}
/// `other` gives the mask of another structure by name. Returns the new mask and sets
/// `action` to a short description. Throws InvalidInput with a message for a malformed edit.
core::Image apply_edit(const core::Image& mask, const std::string& edit_json,
                       const std::function<core::Image(const std::string&)>& other,
                       std::string* action);

class ReviewServer {
 public:
  /// Reads the case (CT, masks, metadata), opens/creates the database and imports the
  /// automatic structures as version 1 when the database is new. Throws IoError/InvalidInput.
  explicit ReviewServer(ServerOptions options);
  ~ReviewServer();
  ReviewServer(const ReviewServer&) = delete;
  ReviewServer& operator=(const ReviewServer&) = delete;

  /// Binds the socket; returns the port (recorded in review/port). Throws IoError when it
  /// cannot bind.
  int bind();
  /// Serves until stop() (blocking). Call bind() first.
  void serve();
  void stop();

  const std::string& token() const;
  /// http://host:port/?token=... (after bind()).
  std::string url() const;
  ReviewDb& db();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace isoline::ui

namespace isoline::ui {
/// Where the bundled web client is: $ISOLINE_UI_DIR when set, else the build's bundle
/// directory, else <executable dir>/../share/isoline/ui.
std::string default_ui_dir();
}  // namespace isoline::ui
