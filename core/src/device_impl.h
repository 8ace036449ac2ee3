// Shared between device.cpp and device_cuda.cu: plain functions only.
#pragma once

#include <string>

namespace isoline::core::detail {
int cuda_device_count_impl();
std::string cuda_device_name_impl(int index);
std::string cuda_last_error_impl();
}  // namespace isoline::core::detail
