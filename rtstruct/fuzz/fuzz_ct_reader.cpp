// libFuzzer harness: the CT series reader on one arbitrary file.
#include "fuzz_readers.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  isoline::fuzz::fuzz_ct(data, size);
  return 0;
}
