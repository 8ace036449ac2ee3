// RT Structure Set: writing from masks on a CT grid, reading contours, rasterizing them.
//
// Writing traces the exact voxel boundary of every mask slice (contours run along voxel
// edges, not through voxel centres), so rasterizing the contours with the even-odd rule at
// voxel centres gives back exactly the same voxels. Holes become separate contours.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "isoline/core/geometry.h"
#include "isoline/core/progress.h"
#include "isoline/core/structure.h"
#include "isoline/rtstruct/ct_series.h"

namespace isoline::rtstruct {

struct RtStructWriteOptions {
  std::string structure_set_label = "ISOLINE";  ///< StructureSetLabel, cut to 16 chars
  /// StructureSetDescription (ST, cut to 1024 characters), e.g. the model and the warnings that
  /// concern the whole set; empty = absent.
  std::string structure_set_description;
  std::string series_description = "Isoline structures";
  int series_number = 901;
  /// Provenance: ROIGenerationAlgorithm AUTOMATIC plus
  /// ROIDerivationAlgorithmIdentificationSequence with these.
  std::string algorithm_name = "Isoline";
  std::string algorithm_version;  ///< empty = core::version()
  /// ROIs that Isoline did not generate, by structure name, with their ROIGenerationAlgorithm
  /// (e.g. the physician's targets of `isoline run --targets`: their file's AUTOMATIC,
  /// SEMIAUTOMATIC or MANUAL; anything else is written empty, Type 2 for unknown). They carry
  /// no ROIDerivationAlgorithmIdentificationSequence: the algorithm above did not make them.
  std::map<std::string, std::string> given_rois;
  /// ROI name map, applied before the 16-character limit: {"RightParotid", "Parotid_R"}.
  std::map<std::string, std::string> name_map;
  /// Longest ROI name written (Eclipse IDs: 16). Longer names are cut, and made unique.
  std::size_t max_name_length = 16;
  /// Join holes to their outer contour with a zero-width cut (keyhole) instead of writing
  /// them as separate contours.
  bool keyhole = false;
  /// Write ROIs with an empty mask (as an ROI without contours) instead of dropping them.
  bool keep_empty_rois = true;
  /// Approval module: "" = absent (default), UNAPPROVED, APPROVED or REJECTED. APPROVED and
  /// REJECTED need reviewer_name (ReviewDate/Time are set to now).
  std::string approval_status;
  std::string reviewer_name;
  /// ROIInterpreter of every ROI (Type 2: empty by default), e.g. the reviewer.
  std::string roi_interpreter;
};

/// What was written.
struct RtStructWriteResult {
  std::string sop_instance_uid;
  std::string series_instance_uid;
  std::size_t num_rois = 0;
  std::size_t num_contours = 0;
  std::vector<std::string> warnings;  ///< renamed ROIs, empty ROIs, ...
};

/// Throws InvalidInput (naming `file`) when an RT-STRUCT written to `file` could not reference
/// `ct`: no image, an image that is not its stored slices one to one (resampled), or missing
/// Study/Series/Frame of Reference or SOP UIDs. write_rtstruct checks this first; callers that
/// compute the structures first (auto-contouring) call it before that work.
void check_rtstruct_reference(const CtSeries& ct, const std::string& file,
                              const std::string& hint = "write masks instead");

/// Writes an RT Structure Set for `structures` (masks on the grid of `ct.image`) to
/// `file`, atomically. References every CT slice (real SOP class/instance UIDs), the
/// study, series and frame of reference of `ct`; copies patient and study attributes.
/// Throws InvalidInput when a mask is not on the CT grid or the CT lacks UIDs.
RtStructWriteResult write_rtstruct(const core::StructureSet& structures, const CtSeries& ct,
                                   const std::string& file,
                                   const RtStructWriteOptions& options = {},
                                   const core::Progress& progress = {});

// ---------------------------------------------------------------------------------------
// Reading

struct Contour {
  std::string geometric_type;      ///< CLOSED_PLANAR, POINT, OPEN_PLANAR, ...
  std::vector<core::Vec3> points;  ///< LPS mm
  std::vector<std::string> referenced_sop_instance_uids;  ///< per-contour image refs
};

struct Roi {
  int number = 0;
  std::string name;
  std::string interpreted_type;  ///< RTROIInterpretedType as stored ("" when absent)
  std::string generation_algorithm;
  core::Color color;
  bool has_color = false;
  std::string referenced_frame_of_reference_uid;
  std::vector<Contour> contours;
};

struct RtStructData {
  std::string file;
  std::string sop_instance_uid;
  std::string series_instance_uid;
  std::string structure_set_label;
  std::string frame_of_reference_uid;           ///< first referenced frame of reference
  std::string referenced_series_instance_uid;   ///< CT series referenced ("" when absent)
  std::vector<std::string> contour_image_uids;  ///< ContourImageSequence SOP instances
  PatientStudy info;
  std::vector<Roi> rois;
  std::vector<std::string> warnings;
};

/// Reads every ROI and its contours. Throws IoError (unreadable/truncated) or
/// InvalidInput (not an RT Structure Set, malformed ContourData).
RtStructData read_rtstruct(const std::string& file);

/// Contours are coordinates in their scan's frame of reference: another scan's (or patient's)
/// structure set would land on `frame`'s image at the wrong place. Throws InvalidInput (`op`,
/// `rs_file`) "frame of reference differs from <whose>" when the RT-STRUCT names a frame of
/// reference other than `frame`; `whose` ends the message ("the CT's (ct/)").
void check_same_frame(const RtStructData& rs, const std::string& frame, const std::string& op,
                      const std::string& rs_file, const std::string& whose);

struct RasterizeOptions {
  /// Only these ROIs (by name as stored); empty = all.
  std::vector<std::string> names;
  /// Largest distance (mm) between a contour's plane and a slice centre for the contour
  /// to be drawn on that slice (each slice takes the nearest plane); default (< 0): half
  /// the larger of the grid's slice spacing and the ROI's contour plane spacing.
  double plane_tolerance_mm = -1.0;
};

/// Rasterizes contours onto `grid` (any orientation whose third axis is the contours'
/// plane normal): a voxel is inside when its centre is inside an odd number of the ROI's
/// contours on its slice (even-odd rule, holes as inner contours). ROIs without closed
/// contours give empty masks. Names, types and colours are taken from the file.
core::StructureSet rasterize(const RtStructData& rs, const core::Geometry& grid,
                             const RasterizeOptions& options = {},
                             const core::Progress& progress = {});

/// A grid covering every contour of `rs`, for when the CT is not available: axes aligned
/// with the contour planes (normal taken from the contours), slices at the contour planes
/// (spacing = the most common plane distance), in-plane spacing `pixel_mm`, `margin_mm`
/// around the contours' bounding box.
core::Geometry contour_grid(const RtStructData& rs, double pixel_mm = 1.0, double margin_mm = 5.0);

/// Volume (cm^3) of a ROI computed from its contours (polygon areas with the even-odd
/// rule per plane times the plane spacing), independent of any grid.
double contour_volume_cc(const RtStructData& rs, const Roi& roi);

}  // namespace isoline::rtstruct
