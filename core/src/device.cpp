#include "isoline/core/device.h"

#include <cctype>
#include <string>

#include "device_impl.h"
#include "isoline/core/error.h"
#include "isoline/core/text.h"

namespace isoline::core {

Device parse_device(std::string_view name) {
  const std::string s = to_lower(std::string(name));
  if (s == "cpu") return Device::CPU;
  if (s == "cuda" || s == "gpu") return Device::CUDA;
  fail<InvalidInput>("select device", name, "unknown device (use cpu or cuda)");
}

const char* to_string(Device d) { return d == Device::CUDA ? "cuda" : "cpu"; }

bool built_with_cuda() {
#ifdef ISOLINE_WITH_CUDA
  return true;
#else
  return false;
#endif
}

int cuda_device_count() {
#ifdef ISOLINE_WITH_CUDA
  static const int n = detail::cuda_device_count_impl();
  return n;
#else
  return 0;
#endif
}

std::string cuda_device_name(int index) {
#ifdef ISOLINE_WITH_CUDA
  if (index < 0 || index >= cuda_device_count()) return {};
  return detail::cuda_device_name_impl(index);
#else
  (void)index;
  return {};
#endif
}

void require_device(Device d, std::string_view operation) {
  if (d == Device::CPU) return;
  if (!built_with_cuda())
    fail<DeviceError>(operation, "cuda",
                      "this build of Isoline has no CUDA support (rebuild with nvcc available "
                      "and -DISOLINE_CUDA=ON), use --device cpu");
  if (cuda_device_count() == 0) {
    std::string why = "no CUDA device is available on this machine";
#ifdef ISOLINE_WITH_CUDA
    const std::string err = detail::cuda_last_error_impl();
    if (!err.empty()) why += " (" + err + ")";
#endif
    fail<DeviceError>(operation, "cuda", why + ", use --device cpu");
  }
}

}  // namespace isoline::core
