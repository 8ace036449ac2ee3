#include <cuda_runtime.h>

#include "device_impl.h"

namespace isoline::core::detail {

namespace {
thread_local std::string g_last_error;
}

int cuda_device_count_impl() {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    g_last_error = cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error state
    return 0;
  }
  return n;
}

std::string cuda_device_name_impl(int index) {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, index) != cudaSuccess) return {};
  return prop.name;
}

std::string cuda_last_error_impl() { return g_last_error; }

}  // namespace isoline::core::detail
