// Automatic contouring of head-and-neck organs at risk and targets on a planning CT.
//
// Pipeline: resample the CT (any orientation) onto the model grid (LPS identity direction,
// model spacing), crop to the body, run the network (a 2.5D one slice by slice, or a 3-D one
// on the whole crop in overlapping z windows, as the model card says), resample each
// structure's probabilities back onto the CT grid (only around the structure), threshold,
// post-process (largest components, hole filling, left/right check), add the Body by a
// classic threshold + morphology method, and attach quality flags.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "isoline/contouring/model.h"
#include "isoline/core/device.h"
#include "isoline/core/image.h"
#include "isoline/core/progress.h"
#include "isoline/core/structure.h"

namespace isoline::contouring {

struct ContourOptions {
  /// Structures to produce (names from the model card, plus "Body"); empty = all + Body.
  std::vector<std::string> structures;
  core::Device device = core::Device::CPU;
  /// Model card (.json); empty = default_model_card_path().
  std::string model_card;
  /// Slices per network call (2.5D "slices" cards; a "volume" card runs one z window per call).
  int batch = 16;
};

/// Per structure: what the reviewer should know.
struct StructureQuality {
  std::string name;
  double confidence = 0;  ///< mean network probability inside the contour (0..1)
  double volume_cc = 0;
  /// Of the network's voxels above the cut (model grid), the share in the part(s) kept (the
  /// largest connected component; up to 4 pieces of at least a tenth of the largest for
  /// targets and the serial organs SpinalCord and Esophagus). Low = the prediction was in pieces.
  double kept_fraction = 1;
  /// Connected pieces of the contour kept, counted for the serial organs (SpinalCord,
  /// Esophagus; 0 for other structures): more than 1 is flagged.
  std::size_t pieces = 0;
  std::vector<std::string> flags;  ///< empty = nothing unusual
  /// One line for the report and the RT-STRUCT ROI description.
  std::string summary() const;
};

struct ContourResult {
  core::StructureSet structures;  ///< on the CT grid; description = quality summary
  std::vector<StructureQuality> quality;
  /// Whole-image warnings, e.g. anatomy outside the model's scope.
  std::vector<std::string> warnings;
  bool in_scope = true;
  std::string model_name, model_version;
};

/// True when the linked LibTorch can run the network on a GPU (Debian's libtorch is CPU-only:
/// false there even on a machine whose dose engine runs on CUDA).
bool cuda_available();

/// The device the network runs on when a job asks for `requested`: CUDA only where LibTorch
/// has it, else the CPU with `*note` saying so (the main job's other steps keep CUDA).
core::Device network_device(core::Device requested, std::string* note);

/// A contouring model loaded once (model card + TorchScript network on a device) and reused
/// for many CTs: the batch runner, the DICOM node and Python's `Contourer` keep one per
/// process instead of re-reading the card and the network for every CT. Copies share the
/// loaded network; calls from several threads are serialised on it.
class Model {
 public:
  /// card_path empty = default_model_card_path(). Throws IoError (card or network
  /// unreadable), InvalidInput (bad card), DeviceError (CUDA without CUDA in LibTorch).
  explicit Model(const std::string& card_path = {}, core::Device device = core::Device::CPU);
  const ModelCard& card() const;
  core::Device device() const;

  struct Impl;  ///< internal (network_torch.cpp / contour.cpp)
  Impl& impl() const { return *impl_; }

 private:
  std::shared_ptr<Impl> impl_;
};

/// Contours `ct` (HU, int16 or float, any orientation) with an already loaded model
/// (`options.model_card` and `options.device` are not used: the model has them). Throws
/// InvalidInput (not a CT, unknown structure names).
ContourResult contour(const core::Image& ct, const Model& model, const ContourOptions& options = {},
                      const core::Progress& progress = {});

/// Loads the model of `options` (model card, device) and contours `ct`. Throws InvalidInput
/// (not a CT, unknown structure names), IoError (model missing), DeviceError (--device cuda
/// without CUDA in LibTorch).
ContourResult contour(const core::Image& ct, const ContourOptions& options = {},
                      const core::Progress& progress = {});

/// Body/External: HU above `threshold_hu`, morphological opening (couch and thin objects
/// removed), largest connected component, holes filled slice by slice. On the CT grid.
core::Image body_mask(const core::Image& ct, double threshold_hu = -350.0, double opening_mm = 4.0);

}  // namespace isoline::contouring
