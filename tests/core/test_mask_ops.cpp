// Mask operations against brute-force definitions.
#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "isoline/core/error.h"
#include "isoline/core/mask_ops.h"

using namespace isoline::core;

namespace {

Geometry grid(Index3 size, Vec3 spacing, Mat3 dir = kIdentity3) {
  Geometry g;
  g.size = size;
  g.spacing = spacing;
  g.origin = {-10, 20, -5};
  g.direction = dir;
  return g;
}

Image random_blobs(const Geometry& g, unsigned seed) {
  Image m(g, PixelType::UInt8);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> di(2, int(g.size[0]) - 3), dj(2, int(g.size[1]) - 3),
      dk(2, int(g.size[2]) - 3);
  for (int b = 0; b < 4; ++b) {
    int ci = di(rng), cj = dj(rng), ck = dk(rng);
    for (int k = 0; k < g.size[2]; ++k)
      for (int j = 0; j < g.size[1]; ++j)
        for (int i = 0; i < g.size[0]; ++i)
          if ((i - ci) * (i - ci) + (j - cj) * (j - cj) + 2 * (k - ck) * (k - ck) <= 5)
            m.at<std::uint8_t>(i, j, k) = 1;
  }
  return m;
}

// Is patient-space offset d (mm) inside the octant-wise ellipsoid of margin m?
bool in_margin(const Vec3& d, const Margin& m) {
  const double sx = d[0] >= 0 ? m.left : m.right;
  const double sy = d[1] >= 0 ? m.posterior : m.anterior;
  const double sz = d[2] >= 0 ? m.superior : m.inferior;
  double r2 = 0;
  const double comp[3] = {d[0], d[1], d[2]};
  const double semi[3] = {sx, sy, sz};
  for (int a = 0; a < 3; ++a) {
    if (std::abs(comp[a]) < 1e-9) continue;
    if (semi[a] <= 0) return false;
    r2 += (comp[a] / semi[a]) * (comp[a] / semi[a]);
  }
  return r2 <= 1.0 + 1e-9;
}

Vec3 world(const Geometry& g, std::int64_t i, std::int64_t j, std::int64_t k) {
  return g.index_to_world({double(i), double(j), double(k)});
}

// Brute-force expansion: x is in the result iff x - a lies in the margin for some a in A.
Image brute_expand(const Image& a, const Margin& m) {
  const Geometry& g = a.geometry();
  Image out(g, PixelType::UInt8);
  std::vector<Vec3> pts;
  for (int k = 0; k < g.size[2]; ++k)
    for (int j = 0; j < g.size[1]; ++j)
      for (int i = 0; i < g.size[0]; ++i)
        if (a.at<std::uint8_t>(i, j, k)) pts.push_back(world(g, i, j, k));
  for (int k = 0; k < g.size[2]; ++k)
    for (int j = 0; j < g.size[1]; ++j)
      for (int i = 0; i < g.size[0]; ++i) {
        Vec3 x = world(g, i, j, k);
        for (const Vec3& p : pts)
          if (in_margin({x[0] - p[0], x[1] - p[1], x[2] - p[2]}, m)) {
            out.at<std::uint8_t>(i, j, k) = 1;
            break;
          }
      }
  return out;
}

// Brute-force shrinking: x stays iff every grid point x + d with d in the margin is in A
// (points outside the grid count as outside A).
Image brute_shrink(const Image& a, const Margin& m) {
  const Geometry& g = a.geometry();
  Image out(g, PixelType::UInt8);
  const int R = 6;
  for (int k = 0; k < g.size[2]; ++k)
    for (int j = 0; j < g.size[1]; ++j)
      for (int i = 0; i < g.size[0]; ++i) {
        if (!a.at<std::uint8_t>(i, j, k)) continue;
        bool keep = true;
        Vec3 x = world(g, i, j, k);
        for (int dk = -R; dk <= R && keep; ++dk)
          for (int dj = -R; dj <= R && keep; ++dj)
            for (int di = -R; di <= R && keep; ++di) {
              Vec3 y = world(g, i + di, j + dj, k + dk);
              if (!in_margin({y[0] - x[0], y[1] - x[1], y[2] - x[2]}, m)) continue;
              const bool inside = g.contains({i + di, j + dj, k + dk}) &&
                                  a.at<std::uint8_t>(i + di, j + dj, k + dk);
              keep = inside;
            }
        out.at<std::uint8_t>(i, j, k) = keep;
      }
  return out;
}

std::size_t differences(const Image& a, const Image& b) {
  std::size_t n = 0;
  for (std::size_t v = 0; v < a.num_voxels(); ++v)
    n += (a.data<std::uint8_t>()[v] != 0) != (b.data<std::uint8_t>()[v] != 0);
  return n;
}

const Margin kAsym{3.0, 1.0, 0.0, 2.5, 5.0, 2.0};  // L R A P S I

}  // namespace

TEST(MaskOps, UniformMarginOfSingleVoxelIsLatticeBall) {
  Geometry g = grid({21, 21, 21}, {1, 1, 1});
  Image m(g, PixelType::UInt8);
  m.at<std::uint8_t>(10, 10, 10) = 1;
  Image e = expand(m, Margin::uniform(5.0));
  int ball = 0;
  for (int z = -5; z <= 5; ++z)
    for (int y = -5; y <= 5; ++y)
      for (int x = -5; x <= 5; ++x) ball += x * x + y * y + z * z <= 25;
  EXPECT_EQ(static_cast<int>(e.count_nonzero()), ball);  // 515
}

class MaskOpsDirections : public ::testing::TestWithParam<int> {};

const Mat3 kDirs[] = {
    kIdentity3,
    {-1, 0, 0, 0, 1, 0, 0, 0, -1},   // flipped x and z (FFS-like storage)
    {0, 0, 1, 1, 0, 0, 0, 1, 0},     // permuted axes
};

TEST_P(MaskOpsDirections, AsymmetricExpandMatchesBruteForce) {
  Geometry g = grid({14, 13, 12}, {1.0, 1.25, 2.0}, kDirs[GetParam()]);
  Image a = random_blobs(g, 3 + GetParam());
  Image fast = expand(a, kAsym);
  Image slow = brute_expand(a, kAsym);
  EXPECT_GT(fast.count_nonzero(), a.count_nonzero());
  EXPECT_EQ(differences(fast, slow), 0u);
}

TEST_P(MaskOpsDirections, AsymmetricShrinkMatchesBruteForce) {
  Geometry g = grid({14, 13, 12}, {1.0, 1.25, 2.0}, kDirs[GetParam()]);
  Image a = expand(random_blobs(g, 11 + GetParam()), Margin::uniform(2.0));
  Image fast = shrink(a, kAsym);
  Image slow = brute_shrink(a, kAsym);
  EXPECT_LT(fast.count_nonzero(), a.count_nonzero());
  EXPECT_EQ(differences(fast, slow), 0u);
}

INSTANTIATE_TEST_SUITE_P(Directions, MaskOpsDirections, ::testing::Range(0, 3));

TEST(MaskOps, LeftMarginGrowsTowardsPatientLeftWhateverTheStorage) {
  for (const Mat3& d : kDirs) {
    Geometry g = grid({15, 15, 15}, {1, 1, 1}, d);
    Image m(g, PixelType::UInt8);
    m.at<std::uint8_t>(7, 7, 7) = 1;
    Margin left_only{};
    left_only.left = 3;
    Image e = expand(m, left_only);
    ASSERT_EQ(e.count_nonzero(), 4u);
    const Vec3 c = world(g, 7, 7, 7);
    for (int k = 0; k < 15; ++k)
      for (int j = 0; j < 15; ++j)
        for (int i = 0; i < 15; ++i)
          if (e.at<std::uint8_t>(i, j, k)) {
            Vec3 w = world(g, i, j, k);
            EXPECT_GE(w[0] - c[0], -1e-9);  // only towards +x (patient left)
            EXPECT_NEAR(w[1], c[1], 1e-9);
            EXPECT_NEAR(w[2], c[2], 1e-9);
          }
  }
}

TEST(MaskOps, ShrinkAtGridEdgeTreatsOutsideAsBackground) {
  Geometry g = grid({6, 6, 6}, {1, 1, 1});
  Image full(g, PixelType::UInt8);
  std::fill(full.data<std::uint8_t>(), full.data<std::uint8_t>() + full.num_voxels(), 1);
  Image s = shrink(full, Margin::uniform(1.0));
  EXPECT_EQ(s.count_nonzero(), 64u);  // 4^3 interior
}

TEST(MaskOps, Booleans) {
  Geometry g = grid({8, 8, 8}, {1, 1, 1});
  Image a(g, PixelType::UInt8), b(g, PixelType::UInt8);
  for (int i = 0; i < 5; ++i) a.at<std::uint8_t>(i, 0, 0) = 1;
  for (int i = 3; i < 8; ++i) b.at<std::uint8_t>(i, 0, 0) = 1;
  EXPECT_EQ(mask_union(a, b).count_nonzero(), 8u);
  EXPECT_EQ(mask_intersect(a, b).count_nonzero(), 2u);
  EXPECT_EQ(mask_subtract(a, b).count_nonzero(), 3u);
  Image other(grid({8, 8, 7}, {1, 1, 1}), PixelType::UInt8);
  EXPECT_THROW(mask_union(a, other), InvalidInput);
  EXPECT_THROW(expand(Image(g, PixelType::Float32), Margin::uniform(1)), InvalidInput);
  EXPECT_THROW(expand(a, Margin::uniform(-1)), InvalidInput);
}

TEST(MaskOps, ComponentsAndIslands) {
  Geometry g = grid({20, 20, 20}, {1, 1, 1});
  Image m(g, PixelType::UInt8);
  for (int k = 0; k < 4; ++k)
    for (int j = 0; j < 4; ++j)
      for (int i = 0; i < 4; ++i) m.at<std::uint8_t>(i, j, k) = 1;  // 64 voxels
  for (int i = 10; i < 13; ++i) m.at<std::uint8_t>(i, 10, 10) = 1;  // 3 voxels
  m.at<std::uint8_t>(18, 18, 18) = 1;                              // 1 voxel
  EXPECT_EQ(keep_largest_components(m).count_nonzero(), 64u);
  EXPECT_EQ(keep_largest_components(m, 2).count_nonzero(), 67u);
  EXPECT_EQ(keep_largest_components(m, 3, 0.1).count_nonzero(), 64u);
  EXPECT_EQ(remove_islands(m, 0.002).count_nonzero(), 67u);  // 2 mm^3 minimum
  EXPECT_EQ(count_components(m), 3u);
  EXPECT_EQ(count_components(keep_largest_components(m, 2)), 2u);
  EXPECT_EQ(count_components(Image(g, PixelType::UInt8)), 0u);
}

TEST(MaskOps, FillHoles3dAndPerSlice) {
  Geometry g = grid({12, 12, 12}, {1, 1, 1});
  Image shell(g, PixelType::UInt8), tube(g, PixelType::UInt8);
  for (int k = 2; k < 10; ++k)
    for (int j = 2; j < 10; ++j)
      for (int i = 2; i < 10; ++i) {
        const bool edge = i == 2 || i == 9 || j == 2 || j == 9;
        shell.at<std::uint8_t>(i, j, k) = edge || k == 2 || k == 9;
        tube.at<std::uint8_t>(i, j, k) = edge;  // open at both ends along k
      }
  EXPECT_EQ(fill_holes(shell).count_nonzero(), 512u);
  EXPECT_EQ(fill_holes(tube).count_nonzero(), tube.count_nonzero());  // not enclosed in 3-D
  EXPECT_EQ(fill_holes(tube, true).count_nonzero(), 512u);            // enclosed per slice
}

TEST(MaskOps, SmoothKeepsABigCubeAndRemovesASpeck) {
  Geometry g = grid({30, 30, 30}, {1, 1, 1});
  Image m(g, PixelType::UInt8);
  for (int k = 5; k < 25; ++k)
    for (int j = 5; j < 25; ++j)
      for (int i = 5; i < 25; ++i) m.at<std::uint8_t>(i, j, k) = 1;
  m.at<std::uint8_t>(1, 1, 1) = 1;
  Image s = smooth(m, 1.5);
  EXPECT_EQ(s.at<std::uint8_t>(1, 1, 1), 0);
  EXPECT_EQ(s.at<std::uint8_t>(15, 15, 15), 1);
  EXPECT_NEAR(double(s.count_nonzero()), 8000.0, 8000.0 * 0.05);
}

TEST(MaskOps, ResampleKeepsPhysicalPositions) {
  Geometry src = grid({10, 10, 10}, {2, 2, 2});
  Image ramp(src, PixelType::Float32);
  for (int k = 0; k < 10; ++k)
    for (int j = 0; j < 10; ++j)
      for (int i = 0; i < 10; ++i) ramp.at<float>(i, j, k) = float(world(src, i, j, k)[0]);
  // Target: 1 mm grid stored with flipped x, covering the inside of the source.
  Geometry dst = grid({8, 8, 8}, {1, 1, 1}, {-1, 0, 0, 0, 1, 0, 0, 0, 1});
  dst.origin = {-2, 22, -3};
  Image r = resample(ramp, dst, Interpolation::Linear, -999);
  for (int i = 0; i < 8; ++i) {
    const double x = world(dst, i, 3, 3)[0];
    EXPECT_NEAR(r.at<float>(i, 3, 3), x, 1e-4) << i;  // linear in x: exact
  }
  Image mask(src, PixelType::UInt8);
  mask.at<std::uint8_t>(4, 4, 4) = 1;
  Geometry fine = src;
  fine.size = {20, 20, 20};
  fine.spacing = {1, 1, 1};
  fine.origin = {src.origin[0] - 0.5, src.origin[1] - 0.5, src.origin[2] - 0.5};
  EXPECT_EQ(resample(mask, fine, Interpolation::Nearest).count_nonzero(), 8u);
}

TEST(MaskOps, DistanceMapIsEuclideanInMillimetres) {
  Geometry g = grid({9, 9, 9}, {1.0, 2.0, 3.0});
  Image m(g, PixelType::UInt8);
  m.at<std::uint8_t>(4, 4, 4) = 1;
  Image d = distance_map(m);
  ASSERT_EQ(d.pixel_type(), PixelType::Float32);
  EXPECT_FLOAT_EQ(d.at<float>(4, 4, 4), 0.f);
  EXPECT_NEAR(d.at<float>(7, 4, 4), 3.0, 1e-4);   // 3 voxels of 1 mm
  EXPECT_NEAR(d.at<float>(4, 6, 4), 4.0, 1e-4);   // 2 voxels of 2 mm
  EXPECT_NEAR(d.at<float>(4, 4, 0), 12.0, 1e-4);  // 4 voxels of 3 mm
  EXPECT_NEAR(d.at<float>(5, 5, 5), std::sqrt(1.0 + 4.0 + 9.0), 1e-4);
  EXPECT_THROW(distance_map(m.cast(PixelType::Float32)), InvalidInput);
}
