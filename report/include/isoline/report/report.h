// Self-contained HTML reports of a plan or of an adaptive comparison: CT slices with
// structure outlines, dose colourwash and isodose lines, a DVH plot, metrics, clinical
// criteria with pass/fail and the contouring quality flags. Everything is inline (base64
// PNG data URIs, CSS, SVG): the file can be mailed or archived on its own.
//
//   report::ReportInput in;
//   in.title = "Achievable dose: HN-001";
//   in.info = {{"Patient", "HN-001"}, {"Template", "hn"}, {"Optimisation", "41 s"}};
//   in.ct = ct;                       // HU, any grid and orientation
//   in.structures = structures;       // masks on the CT grid
//   in.prescription_gy = 70;
//   in.doses.push_back({"Plan", result.dose, result.dvhs, result.criteria});
//   report::write_html(in, "out/report.html");
//
// Several dose sets (e.g. planned / unadapted / adapted) share one colour scale, one DVH
// plot (one line style per set) and a side-by-side criteria table.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "isoline/core/dose_style.h"
#include "isoline/core/geometry.h"
#include "isoline/core/image.h"
#include "isoline/core/structure.h"
#include "isoline/planning/criteria.h"
#include "isoline/planning/dvh.h"

namespace isoline::report {

/// One named dose distribution with its evaluation.
struct DoseSet {
  DoseSet() = default;
  DoseSet(std::string name_, core::Image dose_, std::map<std::string, planning::Dvh> dvhs_ = {},
          std::vector<planning::CriterionResult> criteria_ = {})
      : name(std::move(name_)), dose(std::move(dose_)), dvhs(std::move(dvhs_)), criteria(std::move(criteria_)) {}

  std::string name;    ///< e.g. "Plan", "Planned", "Unadapted", "Adapted"
  core::Image dose;    ///< Gy over all fractions, any pixel type, any grid (resampled for display)
  std::map<std::string, planning::Dvh> dvhs;           ///< per structure name
  std::vector<planning::CriterionResult> criteria;     ///< may be empty
  /// The anatomy this dose is shown on, when not the report's (e.g. the planning CT and
  /// its contours for the planned dose next to doses on the daily CT). Empty / nullopt =
  /// ReportInput::ct / ReportInput::structures. The views of this row go through this
  /// anatomy's own highest target.
  core::Image ct;
  std::optional<core::StructureSet> structures;
};

struct ReportInput {
  std::string title;
  /// Key/value rows shown at the top (patient, plan, machine, timings, ...).
  std::vector<std::pair<std::string, std::string>> info;
  /// Highlighted warnings (skipped objectives, contouring problems, ...).
  std::vector<std::string> warnings;
  core::Image ct;                  ///< HU (int16 or float32); defines the picture grid
  core::StructureSet structures;   ///< masks on the CT grid; description = quality flags
  std::vector<DoseSet> doses;      ///< zero or more
  /// Prescription (highest level) for the colour scale and isodose levels; 0 = the highest
  /// target dose below, else the maximum dose.
  double prescription_gy = 0.0;
  /// Prescription per target structure (for the CI and to pick the slice). When empty, the
  /// targets are the PTV/CTV/GTV structures with the dose parsed from the name ("PTV70" ->
  /// 70 Gy) or else prescription_gy.
  std::map<std::string, double> target_dose_gy;
  /// Slice centre (LPS mm). Default: centroid of the highest target, else the dose
  /// maximum of the first dose set, else the CT centre.
  std::optional<core::Vec3> focus;
};

/// An isodose line, or a colour stop of the colourwash.
struct IsodoseLevel {
  double percent;     ///< of the prescription
  core::Color color;
};

/// The review UI's isodose lines (core/include/isoline/core/dose_style.h: 105 % coral,
/// 95 % yellow-green, 80 % plum, 50 % blue), highest first (the legends' order).
inline std::vector<IsodoseLevel> default_isodoses() {
  std::vector<IsodoseLevel> v;
  for (auto it = core::kIsodoseLines.rbegin(); it != core::kIsodoseLines.rend(); ++it)
    v.push_back({it->fraction * 100.0, it->color});
  return v;
}

/// The review UI's colourwash stops (dose_style.h: dark blue at 10 %, then the isodose
/// colours at their levels), lowest first.
inline std::vector<IsodoseLevel> default_wash() {
  std::vector<IsodoseLevel> v;
  for (const auto& w : core::kDoseWash) v.push_back({w.fraction * 100.0, w.color});
  return v;
}

struct ReportOptions {
  double window_level_hu = 40.0;   ///< soft-tissue window
  double window_width_hu = 400.0;
  /// Colourwash: colour stops (percent of the prescription, any order), interpolated in RGB
  /// between them; below the lowest stop nothing is drawn, above the highest its colour.
  /// Empty: no colourwash. Default: the review UI's, so the same dose looks the same in both.
  std::vector<IsodoseLevel> wash = default_wash();
  double wash_opacity = 0.45;
  /// Isodose lines (percent of the prescription). Default: the review UI's.
  std::vector<IsodoseLevel> isodoses = default_isodoses();
  /// Each view is scaled (isotropic mm per pixel) to fit this box; small images are
  /// interpolated up to it.
  int view_box_px = 440;
  /// Compute the Paddick conformity index of the highest target (one pass over each dose
  /// grid).
  bool conformity = true;
  /// > 0: the HTML report also shows this many axial slices spread over the structures'
  /// cranio-caudal extent (render_axial_series), e.g. for reviewing contours slice by slice.
  int axial_series = 0;
};

/// An RGB picture (8 bit, row-major, 3 bytes per pixel).
struct Picture {
  int width = 0, height = 0;
  std::vector<std::uint8_t> rgb;
  /// For a view: its display grid in patient coordinates (pixel (u, v) is voxel (u, v, 0),
  /// isotropic mm per pixel). Default-constructed for composite pictures.
  core::Geometry geometry;
};

/// Axial, coronal and sagittal views (in this order) through the focus for dose set
/// `dose_index` (-1, or 0 when there are no dose sets = CT and structures only): CT,
/// outlines, colourwash, isodose lines, orientation letters and a labelled scale bar
/// (5, 2 or 1 cm). Throws InvalidInput for a missing CT or a dose index out of range. Radiological convention: axial with patient
/// right on the left and anterior up; coronal and sagittal with superior up.
std::vector<Picture> render_views(const ReportInput& input, int dose_index = 0,
                                  const ReportOptions& options = {});

/// `count` axial views (CT and outlines, no dose) spread evenly over the cranio-caudal extent
/// of the structures other than the body outline (the CT's extent when there are none), head
/// first, each labelled with its z position (mm) where a view has its name, centred in-plane like
/// render_views. Throws InvalidInput as
/// render_views, and for a count outside 1..64.
std::vector<Picture> render_axial_series(const ReportInput& input, int count,
                                         const ReportOptions& options = {});

/// PNG bytes of a picture (libpng). Throws IoError on encoder failure.
std::vector<std::uint8_t> encode_png(const Picture& picture);

/// The whole report as one HTML document.
std::string render_html(const ReportInput& input, const ReportOptions& options = {});

/// Writes render_html() to `path` atomically. Throws IoError naming the file.
void write_html(const ReportInput& input, const std::string& path,
                const ReportOptions& options = {});

/// Writes the three views of dose set `dose_index` as `<prefix>axial.png`,
/// `<prefix>coronal.png`, `<prefix>sagittal.png` (atomic); returns the paths.
std::vector<std::string> write_view_pngs(const ReportInput& input, const std::string& prefix,
                                         int dose_index = 0, const ReportOptions& options = {});

/// One PNG figure: one row of three views per dose set, a dose colour bar (Gy), the
/// isodose and structure legends (for documentation and slides). Atomic.
void write_figure_png(const ReportInput& input, const std::string& path,
                      const ReportOptions& options = {});

}  // namespace isoline::report
