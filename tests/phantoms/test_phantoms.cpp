// Ground truth of the generated phantoms: analytic volumes of the solids, their voxelisation,
// HU statistics per tissue, GTV in CTV in PTV, laterality in HFS and FFS, determinism, output.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "isoline/core/error.h"
#include "isoline/core/io.h"
#include "isoline/phantoms/phantoms.h"
#include "isoline/phantoms/shapes.h"
#include "phantoms/src/raster.h"
#include "tests/test_util.h"

#if ISOLINE_PHANTOMS_DICOM
#include "isoline/rtstruct/ct_series.h"
#include "isoline/rtstruct/rtstruct.h"
#endif

namespace fs = std::filesystem;
using namespace isoline;
using namespace isoline::phantoms;

namespace {

constexpr double kPi = 3.14159265358979323846;

/// Voxel volume (mm^3) of `shape` on an isotropic grid of `h` mm covering its bounds.
double voxel_volume(const Shape& shape, double h) {
  const Box3 b = shape.bounds();
  core::Index3 n;
  core::Vec3 c;
  for (int a = 0; a < 3; ++a) {
    n[a] = static_cast<std::int64_t>(std::ceil((b.hi[a] - b.lo[a]) / h)) + 4;
    c[a] = 0.5 * (b.lo[a] + b.hi[a]) + 0.1234 * h;  // no voxel centre on a flat face
  }
  const auto g = make_grid(n, {h, h, h}, PatientPosition::HFS, c);
  const auto mask = detail::rasterize(shape, detail::axial_grid(g));
  return double(mask.count_nonzero()) * h * h * h;
}

/// Centroid in LPS of a mask.
core::Vec3 centroid(const core::Image& m) {
  const auto& g = m.geometry();
  const auto* p = m.data<std::uint8_t>();
  double s[3] = {0, 0, 0};
  double n = 0;
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i)
        if (p[g.offset(i, j, k)]) {
          const auto w = g.index_to_world({double(i), double(j), double(k)});
          for (int a = 0; a < 3; ++a) s[a] += w[a];
          n += 1;
        }
  return {s[0] / n, s[1] / n, s[2] / n};
}

bool subset(const core::Image& a, const core::Image& b) {
  const auto* pa = a.data<std::uint8_t>();
  const auto* pb = b.data<std::uint8_t>();
  for (std::size_t i = 0; i < a.num_voxels(); ++i)
    if (pa[i] && !pb[i]) return false;
  return true;
}

HeadNeckOptions small_grid(std::uint64_t seed) {
  HeadNeckOptions o;
  o.seed = seed;
  o.size = {160, 160, 100};
  o.spacing = {3.0, 3.0, 4.0};
  o.noise_sd_hu = 0;
  o.blur = false;
  return o;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Analytic solids: closed forms against independent formulas

TEST(PhantomShapes, EllipsoidSteinerTermsMatchSphereAndSpheroid) {
  Ellipsoid sphere({0, 0, 0}, {10, 10, 10});
  EXPECT_NEAR(sphere.surface_area_mm2(), 4 * kPi * 100, 1e-6);
  EXPECT_NEAR(sphere.mean_curvature_integral_mm(), 4 * kPi * 10, 1e-6);
  EllipsoidMargin grown(std::make_shared<Ellipsoid>(sphere), 3.0);
  EXPECT_NEAR(grown.volume_mm3(), 4.0 / 3.0 * kPi * 13 * 13 * 13, 1e-6);
  // Prolate spheroid a = b = 5, c = 12: S = 2 pi a^2 (1 + c / (a e) asin e).
  Ellipsoid prolate({1, 2, 3}, {5, 5, 12}, rotation_x(0.4));
  const double e = std::sqrt(1 - 25.0 / 144.0);
  EXPECT_NEAR(prolate.surface_area_mm2(), 2 * kPi * 25 * (1 + 12 / (5 * e) * std::asin(e)), 1e-6);
}

TEST(PhantomShapes, EllipsoidDistance) {
  Ellipsoid e({1, 2, 3}, {10, 5, 3});
  EXPECT_EQ(e.distance({1, 2, 3}), 0.0);
  EXPECT_NEAR(e.distance({1 + 14, 2, 3}), 4.0, 1e-9);
  EXPECT_NEAR(e.distance({1, 2, 3 - 7}), 4.0, 1e-9);
  // Distance to a support point pushed out along its normal is the push.
  const core::Vec3 n{0.48, -0.6, 0.64};
  auto p = e.support_point(n);
  for (int a = 0; a < 3; ++a) p[a] += 2.5 * n[a];
  EXPECT_NEAR(e.distance(p), 2.5, 1e-7);
}

TEST(PhantomShapes, SuperellipsoidVolume) {
  Superellipsoid ell({0, 0, 0}, {4, 5, 6}, 1.0, 1.0);
  EXPECT_NEAR(ell.volume_mm3(), 4.0 / 3.0 * kPi * 120, 1e-9);
  Superellipsoid boxy({0, 0, 0}, {4, 5, 6}, 0.02, 0.02);
  EXPECT_NEAR(boxy.volume_mm3() / (8 * 120), 1.0, 0.03);  // tends to the box
  EXPECT_NEAR(superellipse_area(3, 2, 2), kPi * 6, 1e-12);
}

TEST(PhantomShapes, LoftedTubeVolume) {
  LoftedTube cyl({{0, {0, 0, 5, 5, 5, 2, 2}}, {40, {0, 0, 5, 5, 5, 2, 2}}}, 5, 5);
  // cylinder + two half-ellipsoid domes (= one ellipsoid 5 x 5 x 5)
  EXPECT_NEAR(cyl.volume_mm3(), kPi * 25 * 40 + 4.0 / 3.0 * kPi * 125, 1e-6);
  EXPECT_NEAR(cyl.volume_between(10, 20), kPi * 25 * 10, 1e-6);
  // Linear taper of a circle: a frustum.
  LoftedTube cone({{0, {0, 0, 2, 2, 2, 2, 2}}, {30, {0, 0, 8, 8, 8, 2, 2}}});
  EXPECT_NEAR(cone.volume_mm3(), kPi * 30 / 3 * (4 + 16 + 64), 1e-6);
}

// Voxelisation of each kind of solid converges to its analytic volume.
TEST(PhantomShapes, VoxelisationMatchesAnalyticVolumes) {
  std::vector<std::pair<std::string, ShapePtr>> shapes;
  auto ell = std::make_shared<Ellipsoid>(core::Vec3{0.3, -0.2, 0.1}, core::Vec3{12, 8, 15},
                                         multiply(rotation_z(0.5), rotation_x(0.3)));
  shapes.push_back({"ellipsoid", ell});
  shapes.push_back({"ellipsoid+margin", std::make_shared<EllipsoidMargin>(ell, 6.0)});
  shapes.push_back({"superellipsoid", std::make_shared<Superellipsoid>(
                                          core::Vec3{0, 0, 0}, core::Vec3{9, 18, 20}, 0.7, 0.8,
                                          rotation_y(0.2))});
  shapes.push_back({"arch", std::make_shared<Arch>(0, 0, 45, 75, 36, 65, -10, 15)});
  auto tube = std::make_shared<LoftedTube>(std::vector<LoftedTube::Key>{
      {-30, {0, 0, 10, 8, 12, 2.0, 2.5}}, {0, {3, 4, 14, 12, 10, 1.8, 2.2}},
      {25, {1, -2, 9, 10, 9, 2.0, 2.0}}}, 6, 4);
  shapes.push_back({"lofted tube", tube});
  shapes.push_back({"sheared", std::make_shared<Sheared>(
                                   tube, [](double y, double z) { return 0.1 * y + 4 * std::sin(z / 10); },
                                   [](double y) { return 0.2 * y; }, 12)});
  shapes.push_back({"annular sector", std::make_shared<AnnularSector>(0, 0, 15, 37, -40, 40,
                                                                      -kPi / 2, kPi / 4)});
  for (const auto& [name, s] : shapes) {
    const double exact = s->volume_mm3();
    const double vox = voxel_volume(*s, 0.35);
    EXPECT_NEAR(vox / exact, 1.0, 0.015) << name << ": voxels " << vox << " analytic " << exact;
  }
}

// ---------------------------------------------------------------------------------------
// Head and neck: structures against analytic volumes at the default grid

const std::vector<std::string> kHnNames = {
    "Body", "Brainstem", "SpinalCord", "RightParotid", "LeftParotid", "Esophagus", "Larynx",
    "Mandible", "GTV", "CTV", "PTV70", "PTV63", "PTV56"};

/// Compares every structure that has an analytic volume; returns how many were compared.
int check_volumes(const Phantom& ph, double tolerance, const std::string& label) {
  int checked = 0;
  for (const auto& s : ph.structures) {
    auto it = ph.analytic_volume_cc.find(s.name);
    if (it == ph.analytic_volume_cc.end()) continue;
    ++checked;
    EXPECT_GT(it->second, 0.5) << s.name;
    EXPECT_NEAR(s.volume_cc() / it->second, 1.0, tolerance)
        << s.name << " " << label << ": voxels " << s.volume_cc() << " cc, analytic "
        << it->second << " cc";
  }
  return checked;
}

// A fine grid (0.6 x 0.6 x 1.25 mm, 240 x 240 x 400 mm field: the body is cut at the
// shoulders, so it has no analytic value there): every other structure within 2 %.
TEST(PhantomHeadNeck, StructureVolumesWithinTwoPercentOfAnalytic) {
  for (std::uint64_t seed : {7ull, 23ull}) {
    HeadNeckOptions o;
    o.seed = seed;
    o.size = {400, 400, 320};
    o.spacing = {0.6, 0.6, 1.25};
    o.noise_sd_hu = 0;
    o.blur = false;
    const Phantom ph = make_head_neck(o);
    ASSERT_EQ(ph.structures.names(), kHnNames);
    for (const auto& s : ph.structures)
      if (!ph.analytic_volume_cc.count(s.name)) {  // only cut or cropped ones may lack it
        EXPECT_TRUE(s.name == "Body" || s.name == "CTV" || s.name == "PTV70")
            << s.name << " seed " << seed;
      }
    EXPECT_GE(check_volumes(ph, 0.02, "seed " + std::to_string(seed)), 10);
    // Adult-plausible sizes (OpenKBP medians are of this order).
    EXPECT_GT(ph.structures.get("Brainstem").volume_cc(), 12);
    EXPECT_LT(ph.structures.get("Brainstem").volume_cc(), 40);
    EXPECT_GT(ph.structures.get("Mandible").volume_cc(), 35);
    EXPECT_LT(ph.structures.get("Mandible").volume_cc(), 100);
  }
}

// The default clinical grid (1 x 1 x 2.5 mm): all within 2 % except the thin spinal cord
// (about 6 x 4.5 mm semi-axes, a few pixels across), which gets 4 %.
TEST(PhantomHeadNeck, StructureVolumesAtTheDefaultGrid) {
  HeadNeckOptions o;
  o.seed = 11;
  o.noise_sd_hu = 0;
  o.blur = false;
  const Phantom ph = make_head_neck(o);
  ASSERT_TRUE(ph.analytic_volume_cc.count("Body"));
  EXPECT_GT(ph.structures.get("Body").volume_cc(), 5000);
  Phantom others = ph;
  others.analytic_volume_cc.erase("SpinalCord");
  EXPECT_GE(check_volumes(others, 0.02, "default grid"), 10);
  EXPECT_NEAR(ph.structures.get("SpinalCord").volume_cc() / ph.analytic_volume_cc.at("SpinalCord"),
              1.0, 0.04);
}

TEST(PhantomHeadNeck, AnalyticVolumesDoNotDependOnTheGrid) {
  HeadNeckOptions fine;
  fine.seed = 5;
  fine.noise_sd_hu = 0;
  fine.blur = false;
  const Phantom a = make_head_neck(fine);
  const Phantom b = make_head_neck(small_grid(5));
  for (const char* name : {"Brainstem", "LeftParotid", "Mandible", "Larynx", "GTV"}) {
    ASSERT_TRUE(a.analytic_volume_cc.count(name));
    ASSERT_TRUE(b.analytic_volume_cc.count(name));
    EXPECT_DOUBLE_EQ(a.analytic_volume_cc.at(name), b.analytic_volume_cc.at(name)) << name;
    // Coarse 3 x 3 x 4 mm voxels: still within 8 % for these compact organs.
    EXPECT_NEAR(b.structures.get(name).volume_cc() / b.analytic_volume_cc.at(name), 1.0, 0.08)
        << name;
  }
}

TEST(PhantomHeadNeck, TargetsAreNested) {
  for (std::uint64_t seed : {1ull, 2ull, 3ull, 4ull}) {
    const Phantom ph = make_head_neck(small_grid(seed));
    const auto& gtv = ph.structures.get("GTV").mask;
    const auto& ctv = ph.structures.get("CTV").mask;
    const auto& ptv = ph.structures.get("PTV70").mask;
    const auto& body = ph.structures.get("Body").mask;
    EXPECT_TRUE(subset(ctv, ptv)) << "seed " << seed;
    EXPECT_TRUE(subset(ctv, body)) << "seed " << seed;
    EXPECT_TRUE(subset(ptv, body)) << "seed " << seed;
    // GTV lies inside the body by construction, so it is inside the CTV.
    EXPECT_TRUE(subset(gtv, ctv)) << "seed " << seed;
    EXPECT_GT(ph.structures.get("CTV").volume_cc(), ph.structures.get("GTV").volume_cc());
    EXPECT_GT(ph.structures.get("PTV70").volume_cc(), ph.structures.get("CTV").volume_cc());
  }
}

TEST(PhantomHeadNeck, ParotidsOnTheCorrectSideForHfsAndFfs) {
  HeadNeckOptions o = small_grid(9);
  const Phantom hfs = make_head_neck(o);
  o.position = PatientPosition::FFS;
  const Phantom ffs = make_head_neck(o);
  EXPECT_EQ(ffs.ct.geometry().direction, (core::Mat3{-1, 0, 0, 0, 1, 0, 0, 0, -1}));
  for (const Phantom* ph : {&hfs, &ffs}) {
    const auto left = centroid(ph->structures.get("LeftParotid").mask);
    const auto right = centroid(ph->structures.get("RightParotid").mask);
    // DICOM LPS: +x is the patient's left.
    EXPECT_GT(left[0], 30.0) << to_string(ph->position);
    EXPECT_LT(right[0], -30.0) << to_string(ph->position);
    // Brainstem above the cord, mandible anterior to the cord.
    EXPECT_GT(centroid(ph->structures.get("Brainstem").mask)[2],
              centroid(ph->structures.get("SpinalCord").mask)[2]);
    EXPECT_LT(centroid(ph->structures.get("Mandible").mask)[1],
              centroid(ph->structures.get("SpinalCord").mask)[1]);
  }
  // Same patient in patient space, different storage.
  for (const char* name : {"LeftParotid", "RightParotid", "GTV", "Body"}) {
    const auto a = centroid(hfs.structures.get(name).mask);
    const auto b = centroid(ffs.structures.get(name).mask);
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(a[k], b[k], 1e-6) << name;
  }
  // The CT too (noise and blur included) is the same in patient space: FFS voxel (i, j, k)
  // is HFS voxel (nx-1-i, j, nz-1-k).
  {
    HeadNeckOptions n = small_grid(9);
    n.noise_sd_hu = 12;
    n.blur = true;
    const Phantom h = make_head_neck(n);
    n.position = PatientPosition::FFS;
    const Phantom f = make_head_neck(n);
    const auto& g = h.ct.geometry();
    // (Summation order differs when flipped: allow rare 1 HU rounding differences.)
    std::size_t off_by_one = 0, worse = 0;
    for (std::int64_t k = 0; k < g.size[2]; ++k)
      for (std::int64_t j = 0; j < g.size[1]; ++j)
        for (std::int64_t i = 0; i < g.size[0]; ++i) {
          const int d = std::abs(h.ct.at<std::int16_t>(i, j, k) -
                                 f.ct.at<std::int16_t>(g.size[0] - 1 - i, j, g.size[2] - 1 - k));
          off_by_one += d == 1;
          worse += d > 1;
        }
    EXPECT_EQ(worse, 0u);
    EXPECT_LE(off_by_one, h.ct.num_voxels() / 100000);
  }
  // In storage the FFS image is flipped in i and k: the first voxel row differs.
  const auto& gl = hfs.structures.get("LeftParotid").mask;
  const auto& fl = ffs.structures.get("LeftParotid").mask;
  EXPECT_NE(std::memcmp(gl.raw(), fl.raw(), gl.num_voxels()), 0);
  EXPECT_EQ(gl.count_nonzero(), fl.count_nonzero());
}

TEST(PhantomHeadNeck, HuStatisticsPerTissue) {
  HeadNeckOptions o;
  o.seed = 3;
  o.size = {256, 256, 96};
  o.spacing = {1.0, 1.0, 2.5};
  o.noise_sd_hu = 12;
  // Interior voxels (same tissue within the blur footprint) keep the nominal mean and get
  // the requested noise.
  const Phantom ph = make_head_neck(o);
  const auto& g = ph.labels.geometry();
  const auto* L = ph.labels.data<std::uint8_t>();
  const auto* H = ph.ct.data<std::int16_t>();
  std::map<int, std::pair<double, double>> sum;  // tissue -> (sum, sum of squares)
  std::map<int, double> count;
  for (std::int64_t k = 1; k + 1 < g.size[2]; ++k)
    for (std::int64_t j = 3; j + 3 < g.size[1]; ++j)
      for (std::int64_t i = 3; i + 3 < g.size[0]; ++i) {
        const auto t = L[g.offset(i, j, k)];
        bool interior = true;
        for (int dk = -1; dk <= 1 && interior; ++dk)
          for (int dj = -3; dj <= 3 && interior; ++dj)
            for (int di = -3; di <= 3 && interior; ++di)
              if (L[g.offset(i + di, j + dj, k + dk)] != t) interior = false;
        if (!interior) continue;
        const double h = H[g.offset(i, j, k)];
        sum[t].first += h;
        sum[t].second += h * h;
        count[t] += 1;
      }
  int tested = 0;
  for (const auto& [t, n] : count) {
    if (n < 2000) continue;
    const double mean = sum[t].first / n;
    const double sd = std::sqrt(std::max(0.0, sum[t].second / n - mean * mean));
    const double nominal = tissue_hu(static_cast<Tissue>(t));
    // Air: values below -1024 are clamped, which lifts the mean and narrows the spread.
    const bool air = t == kAir;
    std::printf("  tissue %-16s n %8.0f  mean %8.2f HU (nominal %6.0f)  sd %6.2f HU\n",
                tissue_name(static_cast<Tissue>(t)), n, mean, nominal, sd);
    EXPECT_NEAR(mean, nominal, air ? 3.0 : 1.5) << tissue_name(static_cast<Tissue>(t));
    EXPECT_NEAR(sd, 12.0, air ? 5.0 : 1.2) << tissue_name(static_cast<Tissue>(t));
    ++tested;
  }
  EXPECT_GE(tested, 6);
  for (int t : {kFat, kSoftTissue, kBrainWhite, kAir}) EXPECT_GT(count[t], 2000) << tissue_name(static_cast<Tissue>(t));

  // Without noise and blur the CT is exactly the tissue table.
  HeadNeckOptions clean = small_grid(3);
  const Phantom c = make_head_neck(clean);
  const auto* cl = c.labels.data<std::uint8_t>();
  const auto* ch = c.ct.data<std::int16_t>();
  for (std::size_t v = 0; v < c.ct.num_voxels(); ++v)
    ASSERT_EQ(ch[v], std::max(-1024.0, tissue_hu(static_cast<Tissue>(cl[v])))) << v;
}

TEST(PhantomHeadNeck, SeedsAreReproducibleAndDistinct) {
  HeadNeckOptions o = small_grid(42);
  o.noise_sd_hu = 10;
  o.blur = true;
  const Phantom a = make_head_neck(o), b = make_head_neck(o);
  EXPECT_EQ(std::memcmp(a.ct.raw(), b.ct.raw(), a.ct.byte_size()), 0);
  EXPECT_EQ(a.facts, b.facts);
  o.seed = 43;
  const Phantom c = make_head_neck(o);
  EXPECT_NE(std::memcmp(a.ct.raw(), c.ct.raw(), a.ct.byte_size()), 0);
  EXPECT_NE(a.analytic_volume_cc.at("Brainstem"), c.analytic_volume_cc.at("Brainstem"));
  // Every site can be requested.
  for (const auto& site : head_neck_sites()) {
    HeadNeckOptions s = small_grid(1);
    s.site = site;
    const Phantom p = make_head_neck(s);
    EXPECT_EQ(p.facts.at("site"), site);
    EXPECT_GT(p.structures.get("GTV").volume_cc(), 1.0) << site;
  }
  HeadNeckOptions bad = small_grid(1);
  bad.site = "brain";
  EXPECT_THROW(make_head_neck(bad), core::InvalidInput);
  bad = small_grid(1);
  bad.spacing = {0, 1, 1};
  EXPECT_THROW(make_head_neck(bad), core::InvalidInput);
}

TEST(PhantomGrid, PositionsAndAxialCheck) {
  const auto g = make_grid({10, 10, 10}, {1, 1, 2}, PatientPosition::FFS, {5, 6, 7});
  const auto c = g.index_to_world({4.5, 4.5, 4.5});
  EXPECT_NEAR(c[0], 5, 1e-9);
  EXPECT_NEAR(c[1], 6, 1e-9);
  EXPECT_NEAR(c[2], 7, 1e-9);
  EXPECT_EQ(patient_position_from_string("ffs"), PatientPosition::FFS);
  EXPECT_THROW(patient_position_from_string("XYZ"), core::InvalidInput);
  core::Geometry oblique = g;
  const double s = std::sqrt(0.5);
  oblique.direction = {s, -s, 0, s, s, 0, 0, 0, 1};
  EXPECT_THROW(detail::axial_grid(oblique), core::NotSupported);
}

// ---------------------------------------------------------------------------------------
// Dose phantoms

TEST(PhantomDose, GeometryAndHu) {
  const Phantom water = make_dose_phantom(DosePhantomKind::WaterBox);
  EXPECT_NEAR(water.structures.get("Body").volume_cc(), 27000.0, 1e-6);
  EXPECT_EQ(water.ct.min_max(), (std::pair<double, double>{-1000, 0}));

  const Phantom lung = make_dose_phantom(DosePhantomKind::LungSlab);
  EXPECT_NEAR(lung.structures.get("Lung").volume_cc(), lung.analytic_volume_cc.at("Lung"), 1e-6);
  const auto& g = lung.ct.geometry();
  // Along the central beam axis (anterior to posterior): water, lung, water.
  auto hu_at = [&](const Phantom& p, double y) {
    const auto ijk = g.world_to_index({1.25, y, 1.25});
    return p.ct.at<std::int16_t>(std::llround(ijk[0]), std::llround(ijk[1]), std::llround(ijk[2]));
  };
  EXPECT_EQ(hu_at(lung, -140), 0);
  EXPECT_EQ(hu_at(lung, -60), -740);
  EXPECT_EQ(hu_at(lung, 50), 0);
  const Phantom bone = make_dose_phantom(DosePhantomKind::BoneSlab);
  EXPECT_EQ(hu_at(bone, -85), tissue_hu(kCorticalBone));
  EXPECT_EQ(hu_at(bone, -60), 0);

  const Phantom c = make_dose_phantom(DosePhantomKind::CShape);
  const auto& ptv = c.structures.get("PTV");
  const auto& core_ = c.structures.get("Core");
  for (const auto* s : {&ptv, &core_})
    EXPECT_NEAR(s->volume_cc() / c.analytic_volume_cc.at(s->name), 1.0, 0.02) << s->name;
  EXPECT_NEAR(c.analytic_volume_cc.at("PTV"), 0.75 * kPi * (37 * 37 - 15 * 15) * 80 / 1000, 1e-9);
  // Disjoint, and the C opens anteriorly (no PTV voxel straight anterior of the core).
  const auto* pp = ptv.mask.data<std::uint8_t>();
  const auto* pc = core_.mask.data<std::uint8_t>();
  for (std::size_t v = 0; v < ptv.mask.num_voxels(); ++v) ASSERT_FALSE(pp[v] && pc[v]);
  const auto& cg = c.ct.geometry();
  const auto front = cg.world_to_index({1, -25, 1});
  EXPECT_EQ(ptv.mask.at<std::uint8_t>(std::llround(front[0]), std::llround(front[1]), std::llround(front[2])), 0);
  const auto back = cg.world_to_index({1, 25, 1});
  EXPECT_EQ(ptv.mask.at<std::uint8_t>(std::llround(back[0]), std::llround(back[1]), std::llround(back[2])), 1);
  EXPECT_EQ(dose_phantom_from_string("Lung-Slab"), DosePhantomKind::LungSlab);
  EXPECT_THROW(dose_phantom_from_string("banana"), core::InvalidInput);
}

// ---------------------------------------------------------------------------------------
// Output

TEST(PhantomOutput, WritesNiftiJsonPreviewAndDicom) {
  test::TempDir tmp;
  HeadNeckOptions o = small_grid(7);
  o.position = PatientPosition::FFS;
  const Phantom ph = make_head_neck(o);
  WriteOptions w;
  w.preview = true;
  const auto files = write_phantom(ph, tmp.str(), w);
  EXPECT_FALSE(files.empty());
  const auto ct = core::read_image(tmp.file("ct.nii.gz"));
  EXPECT_TRUE(ct.geometry().same_grid(ph.ct.geometry()));
  EXPECT_EQ(std::memcmp(ct.raw(), ph.ct.raw(), ct.byte_size()), 0);
  const auto masks = core::read_mask_dir(tmp.file("masks"));
  EXPECT_EQ(masks.size(), ph.structures.size());
  EXPECT_EQ(masks.get("LeftParotid").mask.count_nonzero(),
            ph.structures.get("LeftParotid").mask.count_nonzero());
  std::ifstream jf(tmp.file("ground_truth.json"));
  const auto j = nlohmann::json::parse(jf);
  EXPECT_EQ(j["patient_position"], "FFS");
  EXPECT_EQ(j["facts"]["seed"], "7");
  EXPECT_NEAR(j["structures"]["Brainstem"]["analytic_volume_cc"].get<double>(),
              ph.analytic_volume_cc.at("Brainstem"), 1e-9);
  // PNG signature and a plausible size.
  std::ifstream pf(tmp.file("preview.png"), std::ios::binary);
  char sig[8];
  pf.read(sig, 8);
  EXPECT_EQ(std::memcmp(sig, "\x89PNG\r\n\x1a\n", 8), 0);
  EXPECT_GT(fs::file_size(tmp.file("preview.png")), 1000u);
#if ISOLINE_PHANTOMS_DICOM
  EXPECT_TRUE(dicom_output_available());
  const auto series = rtstruct::read_ct_series(tmp.file("dicom"));
  EXPECT_EQ(series.patient_position, "FFS");
  EXPECT_TRUE(series.image.geometry().same_grid(ph.ct.geometry(), 1e-3));
  EXPECT_EQ(std::memcmp(series.image.raw(), ph.ct.raw(), ph.ct.byte_size()), 0);
  const auto rs = rtstruct::read_rtstruct(tmp.file("dicom/RS.dcm"));
  ASSERT_EQ(rs.rois.size(), ph.structures.size());
  const auto back = rtstruct::rasterize(rs, ph.ct.geometry());
  for (const char* name : {"LeftParotid", "RightParotid", "PTV70"}) {
    const auto a = centroid(back.get(name).mask), b = centroid(ph.structures.get(name).mask);
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(a[k], b[k], 0.5) << name;
  }
#else
  EXPECT_FALSE(dicom_output_available());
#endif
}

TEST(PhantomCli, GeneratesAndRejectsBadInput) {
  test::TempDir tmp;
  const std::string bin = test::isoline_bin();
  auto r = test::run_command(bin + " phantom c-shape --out " + tmp.file("c") + " --no-dicom -q");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(tmp.file("c/masks/PTV.nii.gz")));
  r = test::run_command(bin + " phantom hn --seed 3 --size 96,96,48 --spacing 4,4,6 --position FFS --preview --out " +
                        tmp.file("hn"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("site:"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(tmp.file("hn/preview.png")));
  EXPECT_TRUE(fs::exists(tmp.file("hn/masks/LeftParotid.nii.gz")));
  r = test::run_command(bin + " phantom banana --out " + tmp.file("x"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  r = test::run_command(bin + " phantom hn --position XYZ --out " + tmp.file("x"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  r = test::run_command(bin + " phantom hn --spacing 1,-1,2 --out " + tmp.file("x"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = test::run_command(bin + " phantom water");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}
