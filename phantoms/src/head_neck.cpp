// The head-and-neck patient: an adult head, neck and shoulders from analytic solids.
//
// Template anatomy in LPS mm (+x left, +y posterior, +z superior), z = 0 near the hard
// palate / C1, then scaled and jittered per seed. Tissue painting order matters (later ops
// overwrite earlier ones); the ground-truth structures are the solids themselves.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "isoline/core/error.h"
#include "isoline/phantoms/phantoms.h"
#include "raster.h"

namespace isoline::phantoms {

namespace {

using detail::all_but;
using detail::bits;
using detail::PaintOp;
using detail::Rng;

constexpr double kPi = 3.14159265358979323846;
constexpr double kDeg = kPi / 180.0;

/// Template-to-patient mapping: isotropic scale s, extra width factor w (x), offset.
struct Frame {
  double s = 1, w = 1;
  Vec3 P(double x, double y, double z) const { return {s * w * x, s * y, s * z}; }
  double X(double v) const { return s * w * v; }
  double Y(double v) const { return s * v; }
  double Z(double v) const { return s * v; }
  Vec3 L(double a, double b, double c) const { return {s * w * a, s * b, s * c}; }
};

struct Model {
  Frame f;
  Rng* rng = nullptr;
  double lordosis = 0;  // mm, extra anterior bow of the mid-cervical spine
  double fat = 7;       // subcutaneous fat thickness in the neck, mm

  /// Vertebral body centre y (template mm) at template z.
  double spine_y(double z) const {
    const double bow = (5.0 + lordosis) * std::exp(-((z + 80) / 60) * ((z + 80) / 60));
    const double kyphosis = 0.12 * 25.0 * std::log1p(std::exp((-150.0 - z) / 25.0));
    return 13.0 - bow + kyphosis;
  }
  double canal_y(double z) const { return spine_y(z) + 19.0; }

  Section sec(double cx, double cy, double a, double ba, double bp, double na = 2.0,
              double np = 2.0) const {
    return {f.X(cx), f.Y(cy), f.X(a), f.Y(ba), f.Y(bp), na, np};
  }
  /// Tube along a template z-list following cy(z), cx(z) with constant section.
  template <class CY>
  ShapePtr tube(const std::vector<double>& zs, double cx, CY cy, double a, double ba,
                double bp, double na = 2, double np = 2, double dome_b = 0,
                double dome_t = 0) const {
    std::vector<LoftedTube::Key> keys;
    for (double z : zs) keys.push_back({f.Z(z), sec(cx, cy(z), a, ba, bp, na, np)});
    return std::make_shared<LoftedTube>(keys, f.Z(dome_b), f.Z(dome_t));
  }
  std::shared_ptr<const Ellipsoid> ell(const Vec3& c, const Vec3& r,
                                       const Mat3& rot = core::kIdentity3) const {
    return std::make_shared<Ellipsoid>(f.P(c[0], c[1], c[2]), f.L(r[0], r[1], r[2]), rot);
  }
  double jitter(double lo, double hi) { return rng->uniform(lo, hi); }
};

std::vector<double> linspace(double a, double b, int n) {
  std::vector<double> v(n);
  for (int i = 0; i < n; ++i) v[i] = a + (b - a) * i / (n - 1);
  return v;
}

ShapePtr clip_above(ShapePtr s, double plane_offset, const Frame& f) {
  // Keeps z + 0.25 y >= (35 + offset) * s (the skull base plane, higher anteriorly).
  return std::make_shared<HalfSpaceClip>(std::move(s), Vec3{0, -0.25, -1.0},
                                         -(35.0 + plane_offset) * f.s);
}
ShapePtr clip_below(ShapePtr s, double plane_offset, const Frame& f) {
  return std::make_shared<HalfSpaceClip>(std::move(s), Vec3{0, 0.25, 1.0},
                                         (35.0 + plane_offset) * f.s);
}

/// Is the margin surface of `e` (distance r) entirely inside `body`? Sampled densely.
bool margin_inside(const Ellipsoid& e, double r, const Shape& body) {
  for (int i = 0; i <= 60; ++i) {
    const double th = kPi * i / 60;
    for (int k = 0; k < 120; ++k) {
      const double ph = 2 * kPi * k / 120;
      const Vec3 n{std::sin(th) * std::cos(ph), std::sin(th) * std::sin(ph), std::cos(th)};
      Vec3 p = e.support_point(n);
      for (int a = 0; a < 3; ++a) p[a] += (r + 0.5) * n[a];
      if (!body.inside(p)) return false;
    }
  }
  return true;
}

}  // namespace

const std::vector<std::string>& head_neck_sites() {
  static const std::vector<std::string> s = {"oropharynx", "larynx", "oral_cavity",
                                             "nasopharynx"};
  return s;
}

Phantom make_head_neck(const HeadNeckOptions& o, const core::Progress& progress) {
  const char* op = "phantom hn";
  for (int a = 0; a < 3; ++a)
    if (o.size[a] < 1 || !(o.spacing[a] > 0))
      core::fail<core::InvalidInput>(op, "grid", "size and spacing must be positive");
  if (o.noise_sd_hu < 0) core::fail<core::InvalidInput>(op, "noise", "must be >= 0");
  if (!(o.tumour_scale > 0 && o.tumour_scale <= 2))
    core::fail<core::InvalidInput>(op, "tumour scale", "must lie in (0, 2]");
  if (!o.site.empty() && std::find(head_neck_sites().begin(), head_neck_sites().end(), o.site) ==
                             head_neck_sites().end())
    core::fail<core::InvalidInput>(op, o.site,
                                   "unknown tumour site (oropharynx, larynx, oral_cavity, "
                                   "nasopharynx)");
  const core::Geometry grid = make_grid(o.size, o.spacing, o.position, {0.0, 5.0, -30.0});
  const detail::AxialGrid ag = detail::axial_grid(grid);
  progress.update(0.0, "model");

  // ---- random patient (fixed draw order: same seed, same patient) ----
  Rng rng(o.seed);
  Model m;
  m.rng = &rng;
  m.f.s = rng.uniform(0.93, 1.07);
  m.f.w = rng.uniform(0.95, 1.05);
  m.fat = rng.uniform(4.0, 11.0);
  m.lordosis = rng.uniform(-3.0, 4.0);
  const Frame& f = m.f;
  auto J = [&](double lo = 0.9, double hi = 1.1) { return rng.uniform(lo, hi); };
  auto D = [&](double mm) { return rng.uniform(-mm, mm); };

  // ---- body outline: split superellipse sections, head dome on top ----
  struct BK {
    double z, cy, a, ba, bp, na, np;
  };
  const std::vector<BK> body_keys = {
      {-262, 15, 195, 100, 100, 3.0, 3.0}, {-200, 14, 185, 92, 95, 2.8, 2.8},
      {-165, 12, 140, 72, 82, 2.4, 2.6},   {-140, 10, 70, 60, 70, 2.1, 2.2},
      {-110, 8, 57, 58, 66, 2.1, 2.1},     {-68, 6, 58, 62, 68, 2.0, 2.1},
      {-55, 2, 60, 96, 70, 2.0, 2.1},      {-35, 0, 64, 98, 72, 1.9, 2.1},
      {-5, 2, 70, 100, 78, 2.0, 2.1},      {20, 5, 74, 102, 90, 2.0, 2.0},
      {50, 8, 75, 100, 96, 2.2, 2.0},      {85, 10, 76, 94, 94, 2.0, 2.0}};
  std::vector<LoftedTube::Key> bkeys, mkeys;
  for (const auto& k : body_keys) {
    bkeys.push_back({f.Z(k.z), m.sec(0, k.cy, k.a, k.ba, k.bp, k.na, k.np)});
    // Muscle core: body minus subcutaneous fat (neck, shoulders) or scalp (head).
    const double t = std::clamp((k.z + 20.0) / 40.0, 0.0, 1.0);
    const double d = (1 - t) * m.fat + t * 5.0;
    mkeys.push_back({f.Z(k.z), m.sec(0, k.cy, k.a - d, k.ba - d, k.bp - d, k.na, k.np)});
  }
  auto body = std::make_shared<LoftedTube>(bkeys, 0.0, f.Z(75));
  auto core_tissue = std::make_shared<LoftedTube>(mkeys, 0.0, f.Z(70));

  std::vector<PaintOp> ops;
  auto paint = [&](ShapePtr s, Tissue t, std::uint32_t over = 0xffffffffu) {
    ops.push_back({std::move(s), t, over});
  };
  const std::uint32_t soft = bits({kSoftTissue, kFat});
  paint(body, kFat);
  paint(core_tissue, kSoftTissue);

  // ---- thorax apex and shoulder girdle ----
  for (int sd : {-1, 1}) {
    paint(m.ell({sd * 58.0, 22, -270}, {45, 48, 85}), kLung, soft);
    paint(m.ell({sd * 80.0, -32, -160}, {78, 7, 7}, rotation_z(sd * 14 * kDeg)), kCorticalBone,
          soft);  // clavicle
    paint(m.ell({sd * 100.0, 72, -205}, {42, 6, 38}, rotation_z(-sd * 25 * kDeg)),
          kCorticalBone, soft);  // scapula
    paint(m.ell({sd * 158.0, 12, -190}, {22, 22, 24}), kCorticalBone, soft);   // humeral head
    paint(m.ell({sd * 158.0, 12, -190}, {19, 19, 21}), kCancellousBone);
  }
  paint(m.ell({0, -78, -232}, {22, 7, 30}), kCorticalBone, soft);  // manubrium

  // ---- cranium ----
  const Vec3 head_c{0, 12, 82};
  auto vault = [&](double inset) {
    return m.ell(head_c, {70 - inset, 88 - inset, 72 - inset});
  };
  paint(clip_above(vault(0), -6, f), kCorticalBone);
  paint(clip_above(vault(2), -4, f), kCancellousBone);
  paint(clip_above(vault(4.5), -2, f), kCorticalBone);
  // skull base plate
  paint(clip_below(clip_above(vault(0), -7, f), 3, f), kCorticalBone, soft);
  paint(clip_above(vault(6), 4, f), kCsf);
  paint(clip_above(vault(7.5), 5.5, f), kBrainGrey);
  paint(clip_above(vault(12), 10, f), kBrainWhite);
  for (int sd : {-1, 1})
    paint(m.ell({sd * 11.0, 8, 96}, {5, 28, 9}, rotation_y(sd * 8 * kDeg)), kCsf);  // ventricles
  paint(clip_above(m.ell({0, 62, 40}, {47, 27, 20}), 5.5, f), kBrainGrey);  // cerebellum

  // ---- spine ----
  auto sy = [&](double z) { return m.spine_y(z); };
  auto cy_canal = [&](double z) { return m.canal_y(z); };
  const auto zs_spine = linspace(-262, 12, 24);
  paint(m.tube(zs_spine, 0, sy, 11.5, 9, 9), kDisc, soft);
  struct Vert {
    double z0, z1, a, b;
  };
  std::vector<Vert> verts = {{-40, -8, 10.5, 8.5},   {-59, -45, 10.5, 8.5},
                             {-78, -64, 11, 8.5},    {-97, -83, 11.5, 8.5},
                             {-116, -102, 12, 8.5},  {-135, -121, 12.5, 9},
                             {-156, -140, 13, 10},   {-178, -161, 13.5, 11},
                             {-200, -183, 14, 11.5}, {-222, -205, 14, 12},
                             {-244, -227, 14.5, 12}, {-266, -249, 15, 12.5}};
  for (const auto& v : verts) {
    const double zc = 0.5 * (v.z0 + v.z1);
    auto body_at = [&](double inset) {  // rounded end plates (2 mm domes)
      return m.tube({v.z0 + 2 + inset * 0.5, v.z1 - 2 - inset * 0.5}, 0, sy, v.a - inset,
                    v.b - inset, v.b - inset, 2, 2, 2, 2);
    };
    // posterior arch (ring around the canal) with spinous and transverse processes
    paint(m.tube({v.z0 - 3, v.z1 - 1}, 0, cy_canal, 14.5, 12, 13), kCorticalBone,
          soft | bits({kDisc}));  // laminae reach down past the disc below
    paint(m.ell({0, m.canal_y(zc) + 24, zc - 5}, {3.5, 14, 4.5}, rotation_x(-20 * kDeg)),
          kCorticalBone, soft);
    for (int sd : {-1, 1})
      paint(m.ell({sd * 20.0, m.spine_y(zc) + 8, zc}, {9, 4, 4}), kCorticalBone, soft);
    paint(body_at(0), kCorticalBone);
    paint(body_at(1.8), kCancellousBone);
  }
  // C1 ring (atlas) and dens
  paint(m.tube({-4, 6}, 0, [&](double z) { return m.spine_y(z) + 10; }, 22, 13, 22), kCorticalBone, soft);
  paint(m.tube({-4, 6}, 0, [&](double z) { return m.spine_y(z) + 13; }, 17, 9, 17), kSoftTissue);
  paint(m.tube({-8, 8}, 0, sy, 5, 5, 5, 2, 2, 0, 4), kCorticalBone);  // dens
  // canal (CSF), foramen magnum
  paint(m.tube(linspace(-262, 17, 20), 0, cy_canal, 8.5, 7.5, 7.5), kCsf);
  paint(m.tube({-2, 30}, 0, [&](double) { return m.canal_y(17); }, 15, 15, 14), kCsf,
        bits({kCorticalBone, kCancellousBone, kSoftTissue, kFat, kDisc}));

  // ---- brainstem and spinal cord (structures) ----
  const double bs_j = J(0.9, 1.1);
  auto brainstem = std::make_shared<Ellipsoid>(
      f.P(D(1.5), 22 + D(2), 50 + D(3)), f.L(13 * bs_j, 12 * bs_j, 34 * J(0.93, 1.07)),
      rotation_x((15 + D(5)) * kDeg));
  const double bs_bottom = brainstem->bounds().lo[2] / f.s;  // template z
  paint(m.ell({0, 22, 58}, {17, 16, 30}, rotation_x(15 * kDeg)), kCsf,
        bits({kBrainWhite, kBrainGrey}));  // prepontine cistern
  paint(brainstem, kBrainWhite);
  const double cord_a = 6.0 * J(0.9, 1.1), cord_b = 4.5 * J(0.9, 1.1);
  auto cord_zs = linspace(-228, bs_bottom, 16);
  auto cord = m.tube(cord_zs, 0, cy_canal, cord_a, cord_b, cord_b);
  paint(cord, kSpinalCord);

  // ---- face: orbits, sinuses, nasal cavity, palate ----
  for (int sd : {-1, 1}) {
    paint(m.ell({sd * 32.0, -60, 55}, {19, 24, 19}), kCorticalBone, soft);
    paint(m.ell({sd * 32.0, -60, 55}, {16.5, 21.5, 16.5}), kFat);
    paint(m.ell({sd * 32.0, -68, 55}, {12, 12, 12}), kEye);
    paint(m.ell({sd * 29.0, -45, 28}, {16, 20, 17}), kCorticalBone, soft | bits({kFat}));
    paint(m.ell({sd * 29.0, -45, 28}, {14, 18, 15}), kAir);
  }
  paint(m.ell({0, -28, 40}, {13, 20, 12}), kAir, bits({kSoftTissue, kCorticalBone, kCancellousBone}));
  paint(m.tube({6, 42}, 0, [](double z) { return -52 + 0.2 * (z - 6); }, 11, 22, 24, 2, 2, 3, 3),
        kAir, all_but({kEye, kAir}));
  paint(std::make_shared<AxisBox>(f.P(-1.2, -80, 6), f.P(1.2, -30, 40)), kCartilage,
        bits({kAir}));  // nasal septum
  for (int sd : {-1, 1})  // inferior turbinates
    paint(m.ell({sd * 8.0, -52, 14}, {3, 20, 4}), kSoftTissue, bits({kAir}));
  paint(m.ell({0, -48, 3}, {28, 32, 4}), kCorticalBone, soft | bits({kAir}));  // hard palate

  // ---- mandible (structure): horseshoe body + rami, sheared so the lower border rises ----
  const double mj = J(0.93, 1.07);
  const double cut = -10 + D(2);
  const double a1 = 47 * mj, b1 = 78 * mj, th = 9 * J(0.9, 1.1);
  const double mz0 = -52 + D(3), mz1 = mz0 + 27 * J(0.92, 1.08);
  const double slope = 0.18 * J(0.8, 1.2);
  auto gz = [slope, cut, b1, &f](double y) { return slope * (y - f.Y(cut - b1)); };
  auto mandible_parts = [&](double inset) {
    auto arch = std::make_shared<Arch>(0, f.Y(cut), f.X(a1 - inset), f.Y(b1 - inset),
                                       f.X(a1 - th + inset), f.Y(b1 - th + inset),
                                       f.Z(mz0 + inset), f.Z(mz1 - inset));
    const double rx = 0.5 * th - inset, ry = 13 - inset;
    std::vector<ShapePtr> parts{arch};
    for (int sd : {-1, 1})
      parts.push_back(m.tube({mz0 + inset, -11 - inset}, sd * (a1 - 0.5 * th),
                             [&](double) { return cut + 13; }, rx, ry, ry, 2, 2, 0,
                             6));  // rounded condyle on top
    return std::make_shared<Sheared>(std::make_shared<DisjointUnion>(parts), nullptr, gz,
                                     std::abs(slope) * f.Y(2 * b1 + 40));
  };
  auto mandible = mandible_parts(0);
  paint(mandible, kCorticalBone);
  paint(mandible_parts(2.2), kCancellousBone);
  {
    // lower teeth on the alveolar crest (anterior part), upper teeth on the maxilla
    auto lower = std::make_shared<Arch>(0, f.Y(cut), f.X(a1 - 1), f.Y(b1 - 1), f.X(a1 - th + 1),
                                        f.Y(b1 - th + 1), f.Z(mz1 - 3), f.Z(mz1 + 7));
    auto lower_cut = std::make_shared<HalfSpaceClip>(lower, Vec3{0, 1, 0}, f.Y(cut - 22));
    paint(std::make_shared<Sheared>(lower_cut, nullptr, gz, std::abs(slope) * f.Y(2 * b1 + 40)),
          kTeeth, soft | bits({kCancellousBone, kCorticalBone}));
    auto upper = std::make_shared<Arch>(0, f.Y(-22), f.X(a1 - 7), f.Y(b1 - 15), f.X(a1 - 16),
                                        f.Y(b1 - 24), f.Z(-8), f.Z(2));
    paint(upper, kTeeth, soft);
    paint(std::make_shared<Arch>(0, f.Y(-22), f.X(a1 - 6), f.Y(b1 - 14), f.X(a1 - 17),
                                 f.Y(b1 - 25), f.Z(2), f.Z(9)),
          kCancellousBone, soft);  // maxillary alveolus
  }
  // oral cavity air between tongue and palate
  paint(m.ell({0, -42, -6}, {22, 28, 3}), kAir, bits({kSoftTissue}));

  // ---- parotids (structures): superellipsoids bent medially behind the ramus ----
  std::shared_ptr<const Shape> parotid[2];
  for (int idx = 0; idx < 2; ++idx) {
    const int sd = idx == 0 ? -1 : 1;  // 0: right (-x), 1: left (+x)
    const double pj = J(0.88, 1.12);
    const Vec3 c = f.P(sd * (56 + D(2)), 20 + D(3), 2 + D(3));
    const Vec3 r = f.L(9 * J(0.9, 1.1), 19 * pj, 22 * pj);
    const double e1 = rng.uniform(0.65, 1.0), e2 = rng.uniform(0.65, 1.0);
    const double bend = 7.0 * J(0.7, 1.3);
    const double y_front = c[1] - r[1], depth = 2 * r[1];
    auto base = std::make_shared<Superellipsoid>(c, r, e1, e2);
    auto gx = [=](double y, double) {
      const double t = std::clamp((y - y_front) / depth, 0.0, 1.0);
      return -sd * bend * t * t;
    };
    parotid[idx] = std::make_shared<Sheared>(base, gx, nullptr, bend + 0.5);
    paint(parotid[idx], kParotid, soft);
  }

  // ---- pharynx, larynx, trachea, esophagus ----
  const double lx_c = -26 + D(2);  // larynx centre y offset from the spine, template
  auto larynx_y = [&](double z) { return m.spine_y(z) - 34 + (lx_c + 26); };
  // parapharyngeal fat
  for (int sd : {-1, 1}) paint(m.ell({sd * 24.0, -4, -8}, {6, 10, 18}), kFat, bits({kSoftTissue}));
  // thyroid gland lobes
  for (int sd : {-1, 1})
    paint(m.ell({sd * 17.0, larynx_y(-128) + 4, -128}, {7, 9, 19}), kThyroid, soft);
  const double lj = J(0.9, 1.1);
  const double lz0 = -112 + D(3), lz1 = -58 + D(3);
  auto larynx = m.tube(linspace(lz0, lz1, 6), 0, larynx_y, 14 * lj, 12 * lj, 9 * lj, 2.2, 2.0);
  paint(m.tube(linspace(lz0 + 8, lz1 - 4, 5), 0, larynx_y, 14 * lj + 2, 12 * lj + 2, 9 * lj,
               2.2, 2.0),
        kCartilage, soft);  // thyroid cartilage
  paint(m.tube({lz0, lz0 + 9}, 0, larynx_y, 11 * lj + 2, 10 * lj + 2, 9 * lj + 2), kCartilage,
        soft);  // cricoid
  paint(larynx, kSoftTissue, bits({kCartilage, kFat}));
  paint(larynx, kSoftTissue, bits({kFat}));
  {
    // re-open the laryngeal lumen inside the cartilage frame
    auto inner = m.tube(linspace(lz0 + 1, lz1 - 1, 6), 0, larynx_y, 14 * lj - 1.5, 12 * lj - 1.5,
                        9 * lj - 1.5, 2.2, 2.0);
    paint(inner, kSoftTissue);
  }
  paint(std::make_shared<Arch>(0, f.Y(larynx_y(-56) + 4), f.X(21), f.Y(19), f.X(17), f.Y(15),
                               f.Z(-58), f.Z(-54)),
        kCorticalBone, soft);  // hyoid
  {
    struct AK {
      double z, a, b;
      double cy;
    };
    const std::vector<AK> ak = {
        {-262, 9, 8, larynx_y(-262) + 4}, {-180, 9, 8, larynx_y(-180) + 1},
        {-118, 8, 7.5, larynx_y(-118)},   {-100, 6.5, 7, larynx_y(-100)},
        {-88, 3.0, 7, larynx_y(-88)},     {-72, 7, 8.5, larynx_y(-72)},
        {-56, 12, 7, m.spine_y(-56) - 22}, {-25, 12, 6, m.spine_y(-25) - 19.5},
        {8, 14, 8, -14},                  {30, 11, 8, -20}};
    std::vector<LoftedTube::Key> keys;
    for (auto it = ak.begin(); it != ak.end(); ++it)
      keys.push_back({f.Z(it->z), m.sec(0, it->cy, it->a, it->b, it->b)});
    paint(std::make_shared<LoftedTube>(keys), kAir,
          bits({kSoftTissue, kFat, kCartilage, kThyroid, kCsf}));
  }
  const double ej = J(0.9, 1.1);
  auto eso_y = [&](double z) { return m.spine_y(z) - 8.5 - 2.5 - 5.5 * ej; };
  auto esophagus = std::make_shared<LoftedTube>(std::vector<LoftedTube::Key>{
      {f.Z(-228), m.sec(6, eso_y(-228), 9 * ej, 5.5 * ej, 5.5 * ej)},
      {f.Z(-180), m.sec(5, eso_y(-180), 9 * ej, 5.5 * ej, 5.5 * ej)},
      {f.Z(-145), m.sec(3, eso_y(-145), 9 * ej, 5.5 * ej, 5.5 * ej)},
      {f.Z(lz0 + 1), m.sec(0, eso_y(lz0 + 1), 10 * ej, 5.5 * ej, 5.5 * ej)}});
  paint(esophagus, kSoftTissue);
  paint(m.tube(linspace(-228, lz0 + 1, 4), 3, eso_y, 2.5, 1.2, 1.2), kAir);  // lumen

  // ---- tumour: GTV, CTV, PTV70 ----
  std::string site = o.site;
  const std::size_t site_draw = rng.index(head_neck_sites().size());
  if (site.empty()) site = head_neck_sites()[site_draw];
  const int side = rng.uniform() < 0.5 ? -1 : 1;
  Vec3 tc;
  double r0;
  if (site == "oropharynx") {
    tc = {side * 13.0, m.spine_y(-25) - 26, -27};
    r0 = rng.uniform(11, 18);
  } else if (site == "larynx") {
    tc = {side * 5.0, larynx_y(-84), -84};
    r0 = rng.uniform(8, 12);
  } else if (site == "oral_cavity") {
    tc = {side * 11.0, -50, -20};
    r0 = rng.uniform(9, 15);
  } else {  // nasopharynx
    tc = {side * 4.0, -16, 16};
    r0 = rng.uniform(10, 16);
  }
  tc = {tc[0] + D(3), tc[1] + D(3), tc[2] + D(3)};
  const double ts = o.tumour_scale;  // applied after the draws: same patient for any scale
  const Vec3 tr{ts * r0 * J(0.8, 1.2), ts * r0 * J(0.8, 1.2), ts * r0 * J(0.85, 1.3)};
  const Mat3 trot = multiply(rotation_z(D(30) * kDeg),
                             multiply(rotation_x(D(20) * kDeg), rotation_y(D(20) * kDeg)));
  static const double kCtvMargins[] = {5, 8, 10}, kPtvMargins[] = {3, 5};
  const double ctv_margin = kCtvMargins[rng.index(3)];
  const double ptv_margin = kPtvMargins[rng.index(2)];
  auto gtv = std::make_shared<Ellipsoid>(f.P(tc[0], tc[1], tc[2]), f.L(tr[0], tr[1], tr[2]), trot);
  paint(gtv, kTumour, all_but({kCorticalBone, kCancellousBone, kTeeth}));
  auto ctv = std::make_shared<EllipsoidMargin>(gtv, ctv_margin);
  auto ptv = std::make_shared<EllipsoidMargin>(gtv, ctv_margin + ptv_margin);

  // ---- elective nodal volumes: PTV63 ipsilateral, PTV56 contralateral (levels II-IV) ----
  auto nodal = [&](int sd) {
    const double nj = J(0.9, 1.1);
    std::vector<LoftedTube::Key> keys;
    const double xs[] = {38, 36, 34, 36};
    const double zs[] = {-135, -105, -70, -44};
    for (int i = 0; i < 4; ++i)
      keys.push_back({f.Z(zs[i]), m.sec(sd * (xs[i] + D(1)), 4 + 0.04 * (zs[i] + 44), 11 * nj,
                                        13 * nj, 13 * nj)});
    return std::make_shared<LoftedTube>(keys, f.Z(8), f.Z(8));
  };
  auto ptv63 = nodal(side);
  auto ptv56 = nodal(-side);

  // ---- sample ----
  Phantom ph;
  ph.kind = "hn";
  ph.position = o.position;
  ph.noise_sd_hu = o.noise_sd_hu;
  // Previews cut through the tumour; the sagittal view stays on the midline (spine, cord,
  // airway) unless the tumour is far lateral.
  ph.focus = gtv->centre();
  if (std::abs(ph.focus[0]) < 15.0) ph.focus[0] = 0.0;
  progress.update(0.02, "tissues");
  ph.labels = detail::paint(ops, ag, kAir, progress.sub(0.02, 0.45, "tissues"));

  struct Named {
    const char* name;
    ShapePtr shape;
    bool crop_to_body;
  };
  const std::vector<Named> structs = {
      {"Body", body, false},           {"Brainstem", brainstem, false},
      {"SpinalCord", cord, false},     {"RightParotid", parotid[0], false},
      {"LeftParotid", parotid[1], false}, {"Esophagus", esophagus, false},
      {"Larynx", larynx, false},       {"Mandible", mandible, false},
      {"GTV", gtv, false},             {"CTV", ctv, true},
      {"PTV70", ptv, true},            {"PTV63", ptv63, true},
      {"PTV56", ptv56, true}};
  ph.structures = core::StructureSet(grid);
  core::Image body_mask;
  // Grid extent along z (voxel boundaries) for tubes cut by the field of view.
  const double zlo = std::min(ag.z(0), ag.z(ag.nz - 1)) - 0.5 * o.spacing[2];
  const double zhi = std::max(ag.z(0), ag.z(ag.nz - 1)) + 0.5 * o.spacing[2];
  const double xlo = std::min(ag.x(0), ag.x(ag.nx - 1)) - 0.5 * o.spacing[0];
  const double xhi = std::max(ag.x(0), ag.x(ag.nx - 1)) + 0.5 * o.spacing[0];
  const double ylo = std::min(ag.y(0), ag.y(ag.ny - 1)) - 0.5 * o.spacing[1];
  const double yhi = std::max(ag.y(0), ag.y(ag.ny - 1)) + 0.5 * o.spacing[1];
  for (std::size_t n = 0; n < structs.size(); ++n) {
    const auto& s = structs[n];
    core::Image mask = detail::rasterize(*s.shape, ag);
    bool cropped = false;
    if (s.crop_to_body) {
      const std::size_t before = mask.count_nonzero();
      detail::intersect_inplace(mask, body_mask);
      // Cropped: the solid leaves the body (checked on the margin surface), or the crop
      // removed voxels on this grid.
      cropped = mask.count_nonzero() != before;
      if (auto* em = dynamic_cast<const EllipsoidMargin*>(s.shape.get()))
        cropped = cropped || !margin_inside(em->base(), em->margin(), *body);
    }
    if (n == 0) body_mask = mask;
    ph.structures.add(s.name, mask);
    // Analytic volume: the whole solid when inside the grid; a tube cut by the grid's z
    // extent: the part within it.
    const Box3 b = s.shape->bounds();
    const bool in_xy = b.lo[0] >= xlo && b.hi[0] <= xhi && b.lo[1] >= ylo && b.hi[1] <= yhi;
    const bool in_z = b.lo[2] >= zlo && b.hi[2] <= zhi;
    if (!cropped && in_xy) {
      if (in_z)
        ph.analytic_volume_cc[s.name] = s.shape->volume_mm3() / 1000.0;
      else if (auto* t = dynamic_cast<const LoftedTube*>(s.shape.get()))
        ph.analytic_volume_cc[s.name] = t->volume_between(zlo, zhi) / 1000.0;
    }
    progress.update(0.45 + 0.2 * double(n + 1) / double(structs.size()), "structures");
  }
  {
    auto& st = *ph.structures.find("Body");
    st.type = core::StructureType::External;
  }

  ph.ct = detail::synthesize_ct(ph.labels, o.blur ? Vec3{0.5, 0.5, 0.8} : Vec3{0, 0, 0},
                                o.noise_sd_hu, o.seed, progress.sub(0.65, 1.0, "ct"));

  char buf[64];
  ph.facts["seed"] = std::to_string(o.seed);
  ph.facts["site"] = site;
  ph.facts["side"] = side < 0 ? "right" : "left";
  std::snprintf(buf, sizeof buf, "%g", ctv_margin);
  ph.facts["ctv_margin_mm"] = buf;
  std::snprintf(buf, sizeof buf, "%g", ptv_margin);
  ph.facts["ptv_margin_mm"] = buf;
  std::snprintf(buf, sizeof buf, "%.4f", f.s);
  ph.facts["scale"] = buf;
  std::snprintf(buf, sizeof buf, "%.4f", f.w);
  ph.facts["width_factor"] = buf;
  std::snprintf(buf, sizeof buf, "%.2f", m.fat);
  ph.facts["fat_mm"] = buf;
  std::snprintf(buf, sizeof buf, "%.2f %.2f %.2f", gtv->centre()[0], gtv->centre()[1],
                gtv->centre()[2]);
  ph.facts["gtv_centre_lps_mm"] = buf;
  ph.facts["position"] = to_string(o.position);
  progress.done();
  return ph;
}

}  // namespace isoline::phantoms
