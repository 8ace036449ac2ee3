// Compute device selection, decided at run time.
#pragma once

#include <string>
#include <string_view>

namespace isoline::core {

enum class Device { CPU, CUDA };

/// "cpu" / "cuda" (case-insensitive); throws InvalidInput otherwise.
Device parse_device(std::string_view name);
const char* to_string(Device d);

/// True when this build contains CUDA kernels (configured with ISOLINE_CUDA=AUTO/ON and
/// nvcc found).
bool built_with_cuda();
/// Number of usable CUDA devices (0 without CUDA support, driver or GPU).
int cuda_device_count();
/// Name of CUDA device `index`, or "" when unavailable.
std::string cuda_device_name(int index = 0);

/// Throws DeviceError with a clear reason when `d` cannot be used by `operation` here.
void require_device(Device d, std::string_view operation);

}  // namespace isoline::core
