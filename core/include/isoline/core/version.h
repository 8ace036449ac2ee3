#pragma once

namespace isoline::core {

/// "0.1.0"
const char* version();
/// Short git commit of the build, or "unknown".
const char* git_commit();
/// One-line build description: version, commit, CUDA, build type.
const char* build_info();

}  // namespace isoline::core
