#include <cmath>

#include <gtest/gtest.h>

#include "isoline/core/error.h"
#include "isoline/core/geometry.h"

using namespace isoline::core;

namespace {
Geometry oblique() {
  Geometry g;
  g.size = {10, 20, 30};
  g.spacing = {0.5, 1.25, 3.0};
  g.origin = {-100.0, 20.5, 7.0};
  const double c = std::cos(0.3), s = std::sin(0.3);
  // rotation about z, then a flipped k axis
  g.direction = {c, -s, 0, s, c, 0, 0, 0, -1};
  return g;
}
}  // namespace

TEST(Geometry, IndexWorldRoundTrip) {
  Geometry g = oblique();
  for (Vec3 ijk : {Vec3{0, 0, 0}, Vec3{9, 19, 29}, Vec3{3.5, -2.25, 11.0}}) {
    Vec3 w = g.index_to_world(ijk);
    Vec3 back = g.world_to_index(w);
    for (int a = 0; a < 3; ++a) EXPECT_NEAR(back[a], ijk[a], 1e-9);
  }
}

TEST(Geometry, IndexToWorldFollowsDirectionColumns) {
  Geometry g;
  g.size = {4, 4, 4};
  g.spacing = {2, 3, 4};
  g.origin = {10, 20, 30};
  g.direction = {0, 0, 1, 1, 0, 0, 0, 1, 0};  // i -> +P(y), j -> +S(z), k -> +L(x)
  Vec3 w = g.index_to_world({1, 1, 1});
  EXPECT_DOUBLE_EQ(w[0], 10 + 4);
  EXPECT_DOUBLE_EQ(w[1], 20 + 2);
  EXPECT_DOUBLE_EQ(w[2], 30 + 3);
  EXPECT_EQ(orientation_code(g), "PSL");
}

TEST(Geometry, OrientationCode) {
  Geometry g;
  EXPECT_EQ(orientation_code(g), "LPS");
  g.direction = {-1, 0, 0, 0, -1, 0, 0, 0, 1};
  EXPECT_EQ(orientation_code(g), "RAS");
}

TEST(Geometry, ValidateRejectsBadGeometry) {
  Geometry g = oblique();
  EXPECT_NO_THROW(g.validate("ok"));
  Geometry bad = g;
  bad.spacing[1] = 0;
  EXPECT_THROW(bad.validate("zero spacing"), InvalidInput);
  bad = g;
  bad.size[2] = 0;
  EXPECT_THROW(bad.validate("empty"), InvalidInput);
  bad = g;
  bad.direction[0] = 2.0;
  try {
    bad.validate("skewed.nii");
    FAIL() << "expected InvalidInput";
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("skewed.nii"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("orthonormal"), std::string::npos) << e.what();
  }
}

TEST(Geometry, SameGrid) {
  Geometry a = oblique(), b = oblique();
  EXPECT_TRUE(a.same_grid(b));
  b.origin[0] += 0.01;
  EXPECT_FALSE(a.same_grid(b));
  EXPECT_TRUE(a.same_grid(b, 0.1));
  b = a;
  b.size[0] += 1;
  EXPECT_FALSE(a.same_grid(b, 1.0));
}

TEST(Geometry, NumVoxelsAndOffset) {
  Geometry g = oblique();
  EXPECT_EQ(g.num_voxels(), 6000u);
  EXPECT_EQ(g.offset(1, 0, 0), 1u);
  EXPECT_EQ(g.offset(0, 1, 0), 10u);
  EXPECT_EQ(g.offset(0, 0, 1), 200u);
  EXPECT_TRUE(g.contains({9, 19, 29}));
  EXPECT_FALSE(g.contains({10, 0, 0}));
  EXPECT_FALSE(g.contains({0, -1, 0}));
}
