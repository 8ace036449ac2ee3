// Body/External by threshold + morphology: couch removed, internal air kept inside.
#include <cmath>

#include <gtest/gtest.h>

#include "isoline/contouring/contour.h"
#include "isoline/core/error.h"

using namespace isoline;

TEST(BodyMask, RemovesCouchAndFillsInternalAir) {
  core::Geometry g;
  g.size = {96, 96, 12};
  g.spacing = {2, 2, 3};
  core::Image ct(g, core::PixelType::Int16);
  std::size_t expected = 0;
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i) {
        const double x = (i - 48) * 2.0, y = (j - 44) * 2.0;
        std::int16_t v = -1000;
        const bool body = (x / 60) * (x / 60) + (y / 45) * (y / 45) < 1.0;
        if (body) {
          v = 30;
          if (x * x + (y + 10) * (y + 10) < 100) v = -1000;  // airway: inside the body
          ++expected;
        }
        if (j >= 88 && j <= 89) v = 200;            // couch top: a 4 mm thin plate below the body
        if (j > 80 && j < 88 && std::abs(x) < 2) v = 100;  // thin strap/tube touching it
        ct.at<std::int16_t>(i, j, k) = v;
      }
  core::Image b = contouring::body_mask(ct);
  std::size_t n = b.count_nonzero(), couch = 0;
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t i = 0; i < g.size[0]; ++i) couch += b.at<std::uint8_t>(i, 88, k) != 0;
  EXPECT_EQ(couch, 0u);
  EXPECT_NEAR(double(n), double(expected), 0.03 * double(expected));
  EXPECT_EQ(b.at<std::uint8_t>(48, 39, 5), 1);  // airway voxel filled
  EXPECT_THROW(contouring::body_mask(core::Image()), core::InvalidInput);
}
