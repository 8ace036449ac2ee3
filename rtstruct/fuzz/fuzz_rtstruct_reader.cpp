// libFuzzer harness: the RT-STRUCT reader, rasterizer and contour grid on one arbitrary file.
#include "fuzz_readers.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  isoline::fuzz::fuzz_rtstruct(data, size);
  return 0;
}
