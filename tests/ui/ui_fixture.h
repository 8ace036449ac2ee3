// A small synthetic review case written with core::write_image (no phantoms module needed).
#pragma once

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "isoline/core/image.h"
#include "isoline/core/io.h"

namespace isoline::test {

inline core::Geometry ui_grid() {
  core::Geometry g;
  g.size = {48, 48, 32};
  g.spacing = {2.0, 2.0, 2.5};
  g.origin = {-47.0, -47.0, -38.75};
  return g;
}

inline core::Image ui_sphere(const core::Geometry& g, double cx, double cy, double cz, double r) {
  core::Image m(g, core::PixelType::UInt8);
  auto* d = m.data<std::uint8_t>();
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i) {
        const double x = g.origin[0] + i * g.spacing[0] - cx, y = g.origin[1] + j * g.spacing[1] - cy,
                     z = g.origin[2] + k * g.spacing[2] - cz;
        d[g.offset(i, j, k)] = x * x + y * y + z * z <= r * r;
      }
  return m;
}

/// ct.nii.gz (body 40 HU with a bone ring, air outside), masks/{Body,PTV,CTV,Cord}.nii.gz,
/// dose.nii.gz (Gaussian around the PTV, 70 Gy), structures.json with a quality flag.
inline void write_ui_case(const std::string& dir) {
  namespace fs = std::filesystem;
  fs::create_directories(fs::path(dir) / "masks");
  const core::Geometry g = ui_grid();
  core::Image ct(g, core::PixelType::Int16);
  core::Image dose(g, core::PixelType::Float32);
  auto* c = ct.data<std::int16_t>();
  auto* d = dose.data<float>();
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i) {
        const double x = g.origin[0] + i * g.spacing[0], y = g.origin[1] + j * g.spacing[1],
                     z = g.origin[2] + k * g.spacing[2];
        const double r = std::sqrt(x * x / (40.0 * 40.0) + y * y / (36.0 * 36.0));
        std::int16_t hu = -1000;
        if (r < 1.0) hu = r > 0.85 ? 700 : static_cast<std::int16_t>(40 + 20 * std::sin(0.3 * x));
        c[g.offset(i, j, k)] = hu;
        const double q = (x * x + y * y + z * z) / (2 * 18.0 * 18.0);
        d[g.offset(i, j, k)] = static_cast<float>(70.0 * std::exp(-q));
      }
  core::write_image(ct, dir + "/ct.nii.gz");
  core::write_image(dose, dir + "/dose.nii.gz");
  core::Image body(g, core::PixelType::UInt8);
  for (std::size_t n = 0; n < body.num_voxels(); ++n) body.data<std::uint8_t>()[n] = c[n] > -500;
  core::write_image(body, dir + "/masks/Body.nii.gz");
  core::write_image(ui_sphere(g, 0, 0, 0, 14), dir + "/masks/PTV.nii.gz");
  core::write_image(ui_sphere(g, 0, 0, 0, 8), dir + "/masks/CTV.nii.gz");
  core::write_image(ui_sphere(g, 0, 24, 0, 5), dir + "/masks/Cord.nii.gz");
  std::ofstream f(dir + "/structures.json");
  f << R"({"CTV": {"type": "CTV", "flags": ["low confidence 0.61", "volume unusual"]},
           "PTV": {"type": "PTV", "color": [255, 64, 64]}, "Cord": {"type": "ORGAN"}})";
}

}  // namespace isoline::test
