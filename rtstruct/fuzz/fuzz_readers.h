// Shared body of the libFuzzer harnesses and of the regression test that replays their
// corpora: feeds bytes to the CT series reader or the RT-STRUCT reader (+ rasterizer).
// Any isoline::core::Error is an accepted outcome; crashes, hangs, leaks and other
// exceptions are bugs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include <unistd.h>

#include "isoline/core/error.h"
#include "isoline/rtstruct/ct_series.h"
#include "isoline/rtstruct/rtstruct.h"

namespace isoline::fuzz {

/// The one scratch file a process uses (removed by the replay test when done).
inline const std::string& temp_path() {
  static const std::string path = (std::filesystem::temp_directory_path() /
                                   ("isoline-fuzz-" + std::to_string(::getpid()) + ".dcm"))
                                      .string();
  return path;
}

inline std::string write_temp(const std::uint8_t* data, std::size_t size) {
  const std::string& path = temp_path();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return {};
  if (size) std::fwrite(data, 1, size, f);
  std::fclose(f);
  return path;
}

inline void fuzz_ct(const std::uint8_t* data, std::size_t size) {
  const std::string p = write_temp(data, size);
  if (p.empty()) return;
  try {
    auto ct = rtstruct::read_ct_series(std::vector<std::string>{p});
    (void)ct.image.min_max();
  } catch (const core::Error&) {
  }
}

inline void fuzz_rtstruct(const std::uint8_t* data, std::size_t size) {
  const std::string p = write_temp(data, size);
  if (p.empty()) return;
  try {
    auto rs = rtstruct::read_rtstruct(p);
    core::Geometry g;
    g.size = {32, 32, 8};
    g.spacing = {2, 2, 3};
    g.origin = {-31, -31, -10};
    (void)rtstruct::rasterize(rs, g);
    for (const auto& r : rs.rois) (void)rtstruct::contour_volume_cc(rs, r);
    auto cg = rtstruct::contour_grid(rs, 4.0);
    if (cg.num_voxels() < (1u << 22)) (void)rtstruct::rasterize(rs, cg);
  } catch (const core::Error&) {
  }
}

}  // namespace isoline::fuzz
