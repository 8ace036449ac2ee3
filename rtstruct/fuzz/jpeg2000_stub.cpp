// Fuzz builds only (see rtstruct/CMakeLists.txt): JPEG 2000 goes through ITK/GDCM, which
// cannot be compiled with clang against Debian's ITK headers; refuse it like an
// unsupported syntax.
#include <string>
#include <vector>

#include "isoline/core/error.h"

namespace isoline::rtstruct::detail {

std::vector<float> decode_with_gdcm(const std::string& file, int, int) {
  core::fail<core::NotSupported>("read CT series", file, "JPEG 2000 is not decoded in fuzz builds");
}

}  // namespace isoline::rtstruct::detail
