#include <cstring>

#include <gtest/gtest.h>

#include "isoline/core/error.h"
#include "isoline/core/image.h"

using namespace isoline::core;

namespace {
Geometry small() {
  Geometry g;
  g.size = {3, 4, 5};
  g.spacing = {1, 2, 3};
  return g;
}
}  // namespace

TEST(Image, ZeroInitialisedWithTypedAccess) {
  Image img(small(), PixelType::Int16);
  EXPECT_EQ(img.num_voxels(), 60u);
  EXPECT_EQ(img.byte_size(), 120u);
  EXPECT_EQ(img.count_nonzero(), 0u);
  img.at<std::int16_t>(2, 3, 4) = -1000;
  EXPECT_EQ(img.data<std::int16_t>()[59], -1000);
  EXPECT_EQ(img.min_max().first, -1000);
  EXPECT_THROW(img.data<float>(), InvalidInput);
}

TEST(Image, CopiesShareClonesDoNot) {
  Image a(small(), PixelType::Float32);
  Image b = a;
  b.data<float>()[0] = 5.f;
  EXPECT_EQ(a.data<float>()[0], 5.f);
  Image c = a.clone();
  c.data<float>()[0] = 7.f;
  EXPECT_EQ(a.data<float>()[0], 5.f);
  EXPECT_NE(c.raw(), a.raw());
}

TEST(Image, WrapKeepsExternalBufferAlive) {
  auto holder = std::shared_ptr<float>(new float[60](), std::default_delete<float[]>());
  holder.get()[10] = 3.5f;
  Image img = Image::wrap(small(), PixelType::Float32, holder);
  EXPECT_EQ(img.raw(), holder.get());
  EXPECT_EQ(img.value(10), 3.5);
  std::weak_ptr<float> weak = holder;
  holder.reset();
  EXPECT_FALSE(weak.expired());  // the image keeps it
  img = Image();
  EXPECT_TRUE(weak.expired());
}

TEST(Image, CastRoundsAndSaturates) {
  Image f(small(), PixelType::Float32);
  f.data<float>()[0] = 300.6f;
  f.data<float>()[1] = -5.f;
  f.data<float>()[2] = 1.5f;
  Image u = f.cast(PixelType::UInt8);
  EXPECT_EQ(u.data<std::uint8_t>()[0], 255);
  EXPECT_EQ(u.data<std::uint8_t>()[1], 0);
  EXPECT_EQ(u.data<std::uint8_t>()[2], 2);
  Image s = f.cast(PixelType::Int16);
  EXPECT_EQ(s.data<std::int16_t>()[0], 301);
  EXPECT_EQ(s.data<std::int16_t>()[1], -5);
  EXPECT_TRUE(s.geometry().same_grid(f.geometry()));
}

TEST(Image, SetGeometryMustKeepSize) {
  Image img(small(), PixelType::UInt8);
  Geometry g = small();
  g.origin = {1, 2, 3};
  img.set_geometry(g);
  EXPECT_EQ(img.geometry().origin[2], 3);
  g.size[0] = 9;
  EXPECT_THROW(img.set_geometry(g), InvalidInput);
}

TEST(Image, RejectsInvalidGeometry) {
  Geometry g = small();
  g.spacing[0] = -1;
  EXPECT_THROW(Image(g, PixelType::UInt8), InvalidInput);
}
