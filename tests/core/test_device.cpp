#include <gtest/gtest.h>

#include "isoline/core/device.h"
#include "isoline/core/error.h"

using namespace isoline::core;

TEST(Device, Parse) {
  EXPECT_EQ(parse_device("cpu"), Device::CPU);
  EXPECT_EQ(parse_device("CUDA"), Device::CUDA);
  EXPECT_THROW(parse_device("tpu"), InvalidInput);
}

TEST(Device, CpuAlwaysAvailable) { EXPECT_NO_THROW(require_device(Device::CPU, "test")); }

TEST(Device, CudaIsAClearErrorWhenUnavailable) {
  if (built_with_cuda() && cuda_device_count() > 0) {
    EXPECT_NO_THROW(require_device(Device::CUDA, "test"));
    EXPECT_FALSE(cuda_device_name(0).empty());
    return;
  }
  try {
    require_device(Device::CUDA, "compute dose");
    FAIL() << "expected DeviceError";
  } catch (const DeviceError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("compute dose"), std::string::npos) << m;
    EXPECT_NE(m.find("--device cpu"), std::string::npos) << m;
  }
}
