// Helpers for the rtstruct tests: synthetic anatomy, mask comparison, judges.
#pragma once

#include <cmath>
#include <string>

#include "isoline/core/image.h"
#include "isoline/core/io.h"
#include "isoline/core/structure.h"
#include "tests/test_util.h"

namespace isoline::test {

/// A CT-like image: air, an elliptic body of water, a bone rod, on an arbitrary grid.
inline core::Image phantom_ct(const core::Geometry& g) {
  core::Image img = core::Image::zeros<std::int16_t>(g);
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i) {
        const core::Vec3 p = g.index_to_world({double(i), double(j), double(k)});
        const double e = (p[0] / 60.0) * (p[0] / 60.0) + (p[1] / 40.0) * (p[1] / 40.0);
        const double rod = (p[0] - 20) * (p[0] - 20) + (p[1] + 5) * (p[1] + 5);
        std::int16_t v = e < 1.0 ? 0 : -1000;
        if (rod < 64) v = 1200;
        img.at<std::int16_t>(i, j, k) =
            static_cast<std::int16_t>(v + (i % 7) + 3 * (j % 5) + 11 * k % 13);
      }
  return img;
}

/// phantom_ct(g) written to t/ct.nii.gz and converted to a DICOM CT series in t/ct by
/// `isoline convert`; the result says whether that worked.
inline CommandResult dicom_phantom_ct(const TempDir& t, const core::Geometry& g) {
  core::write_image(phantom_ct(g), t.file("ct.nii.gz"));
  return cli("convert " + t.file("ct.nii.gz") + " --to ct --out " + t.file("ct") + " -q");
}

/// A mask defined in patient space (so that any grid samples the same anatomy): an
/// off-centre ball with a hole, a separate small box and a lone voxel-sized blob.
inline bool anatomy_inside(const core::Vec3& p) {
  const double r2 = (p[0] - 10) * (p[0] - 10) + (p[1] - 3) * (p[1] - 3) + (p[2] - 4) * (p[2] - 4);
  const bool ball = r2 < 20.0 * 20.0 && !(r2 < 7.0 * 7.0);
  const bool box = p[0] > -40 && p[0] < -30 && p[1] > 10 && p[1] < 22 && p[2] > -6 && p[2] < 9;
  const bool lshape = p[0] > 30 && p[0] < 45 && p[1] > -30 && p[1] < -18 &&
                      !(p[0] > 36 && p[1] > -24) && p[2] > 0 && p[2] < 12;
  return ball || box || lshape;
}

inline core::Image anatomy_mask(const core::Geometry& g) {
  core::Image m = core::Image::zeros<std::uint8_t>(g);
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i)
        m.at<std::uint8_t>(i, j, k) =
            anatomy_inside(g.index_to_world({double(i), double(j), double(k)})) ? 1 : 0;
  return m;
}

inline std::size_t count_diff(const core::Image& a, const core::Image& b) {
  std::size_t d = 0;
  for (std::size_t n = 0; n < a.num_voxels(); ++n) d += (a.value(n) != 0) != (b.value(n) != 0);
  return d;
}

inline double dice(const core::Image& a, const core::Image& b) {
  std::size_t inter = 0, na = 0, nb = 0;
  for (std::size_t n = 0; n < a.num_voxels(); ++n) {
    const bool x = a.value(n) != 0, y = b.value(n) != 0;
    inter += x && y;
    na += x;
    nb += y;
  }
  return na + nb == 0 ? 1.0 : 2.0 * inter / double(na + nb);
}

/// Runs dciodvfy on a file; returns its error lines ("" when none).
inline std::string dciodvfy_errors(const std::string& file) {
  auto r = run_command("dciodvfy '" + file + "'");
  std::string errs;
  std::size_t pos = 0;
  while (pos < r.output.size()) {
    auto e = r.output.find('\n', pos);
    if (e == std::string::npos) e = r.output.size();
    const std::string line = r.output.substr(pos, e - pos);
    if (line.rfind("Error", 0) == 0 || line.find("Assertion") != std::string::npos ||
        line.rfind("dciodvfy:", 0) == 0)
      errs += line + "\n";
    pos = e + 1;
  }
  if (r.exit_code < 0) errs += "dciodvfy crashed\n";
  if (r.exit_code == 127 || r.output.find("not found") != std::string::npos)
    errs += "dciodvfy not available: " + r.output;
  return errs;
}

}  // namespace isoline::test
