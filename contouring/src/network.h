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

  /// input: batch x channels x nx x ny floats (nx, ny multiples of 16), C order with ny
  /// fastest. Returns sigmoid probabilities batch x outputs x nx x ny.
  std::vector<float> predict(const std::vector<float>& input, int batch, int channels, int nx,
                             int ny, int outputs);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// True when the linked LibTorch can use a CUDA device.
bool torch_cuda_available();

}  // namespace isoline::contouring::detail
