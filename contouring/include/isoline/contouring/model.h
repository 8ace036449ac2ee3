// Model card of a contouring network: what the C++ inference needs to reproduce the
// training pre-processing (structure order, model grid, intensity window) plus provenance
// and the measured validation figures. Stored as JSON beside the TorchScript file.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "isoline/core/geometry.h"

namespace isoline::contouring {

/// Usual range of a structure in the training data (from the model card), used by the
/// quality flags.
struct ExpectedRange {
  double volume_cc_min = 0, volume_cc_max = 0;
  /// Centroid offset from the body's in-plane bounding-box centre, LPS x and y (mm).
  double dx_min = 0, dx_max = 0, dy_min = 0, dy_max = 0;
  bool known = false;
};

/// Bone re-drawing of a predicted structure (model card "post_processing"): the prediction
/// grown by margin_mm, kept where the CT is above min_hu, cavities filled. For bony organs
/// (Mandible) whose edge the CT shows better than the network's 4 mm grid.
struct BoneRefinement {
  double min_hu = 150;
  double margin_mm = 4;
};

/// Cranio-caudal extent trim of a predicted structure (model card "post_processing"): the
/// given lengths are removed from its inferior and superior ends (patient z, whatever the CT's
/// orientation). A 2.5D (slices) network sees only a few adjacent slices and may over-extend
/// structures whose ends are set by contouring convention (Larynx, Esophagus); the lengths are
/// chosen on the training split (contouring/train/choose_extent_trim.py).
struct ExtentTrim {
  double inferior_mm = 0;
  double superior_mm = 0;
};

struct ModelCard {
  std::string card_path;   ///< the .json read
  std::string model_path;  ///< the TorchScript file (resolved beside the card)
  std::string name;
  std::string version;
  std::vector<std::string> structures;    ///< network output channels, in order
  core::Vec3 spacing{3.906, 3.906, 2.5};  ///< model grid, mm (LPS identity direction)
  /// Card input.kind: false = "slices" (the default; 2.5D network, input batch x (2*context+1)
  /// x px x py, one axial slice predicted per batch item), true = "volume" (3-D network, input
  /// 1 x 1 x px x py x pz with z fastest, output 1 x structures x px x py x pz).
  bool volume = false;
  int context = 2;  ///< slices: adjacent slices each side of the predicted one (volume: unused)
  /// volume: the longest z window (model-grid slices) of one forward pass; longer crops run as
  /// overlapping windows blended along z (card input.window_slices, default 160).
  int window_slices = 160;
  /// volume: consecutive z windows share this many slices, blended with linear weights;
  /// window_slices must be at least twice it.
  static constexpr int kWindowOverlap = 32;
  double hu_min = -1000, hu_max = 1000, hu_scale = 500;  ///< input = clip(HU) / scale
  double outside_hu = -1000;
  int multiple_of = 16;
  double threshold = 0.5;  ///< probability cut, unless `thresholds` has the structure
  /// Per-structure probability cuts (model card post_processing.<name>.threshold), chosen on
  /// the training split (contouring/train/choose_thresholds.py).
  std::map<std::string, double> thresholds;
  double body_threshold_hu = -500;
  std::map<std::string, ExpectedRange> expected;
  std::map<std::string, BoneRefinement> bone_refinement;
  std::map<std::string, ExtentTrim> extent_trim;
  std::string scope;
  /// Quality flags (card quality_flags): "low confidence" below this mean network probability,
  /// "in pieces" when the kept parts hold less than min_kept_fraction of the network's
  /// thresholded voxels (0 = never). Chosen on the validation split
  /// (contouring/train/choose_quality_flags.py); cards without the entry keep 0.75 / 0.
  double low_confidence = 0.75;
  double min_kept_fraction = 0;

  /// Input channels of the network: the stacked slices, or 1 for a volume network.
  int channels() const { return volume ? 1 : 2 * context + 1; }
  double threshold_of(const std::string& structure) const {
    auto it = thresholds.find(structure);
    return it == thresholds.end() ? threshold : it->second;
  }
};

/// Reads a model card. Throws IoError (unreadable) or InvalidInput (missing fields).
ModelCard load_model_card(const std::string& json_path);

/// The model card used when none is given: $ISOLINE_MODEL (a .json) when set, else the
/// card shipped in the source tree (contouring/models/).
std::string default_model_card_path();

}  // namespace isoline::contouring
