// Internal: the neural network behind a plain interface, so that LibTorch's (slow to
// compile) headers appear in network_torch.cpp only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "isoline/core/device.h"

namespace isoline::contouring::detail {

class Network {
 public:
  /// Loads a TorchScript module. Throws IoError (unreadable) or DeviceError (CUDA requested
  /// but LibTorch has none).
  Network(const std::string& path, core::Device device);
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  /// input: floats of `shape` = [batch, channels, spatial...] (2.5D: [batch, channels, nx,
  /// ny]; 3-D: [1, 1, nx, ny, nz]), C order (last axis fastest). Returns sigmoid probabilities
  /// of shape [batch, outputs, spatial...]; throws InvalidInput when the network's output has
  /// another shape.
  std::vector<float> predict(const std::vector<float>& input,
                             const std::vector<std::int64_t>& shape, int outputs);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// True when the linked LibTorch can use a CUDA device.
bool torch_cuda_available();

}  // namespace isoline::contouring::detail
