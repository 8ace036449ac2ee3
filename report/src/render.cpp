// Slice pictures: CT in a window, dose colourwash, isodose lines and structure outlines,
// sampled in patient coordinates (LPS) on a display grid built per view, so any CT or dose
// grid and orientation gives the same picture. CT, dose and masks are resampled onto that
// grid with core::resample (linear: CT and dose smooth, masks thresholded at 0.5 so that
// outlines stay crisp at any magnification).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "internal.h"
#include "isoline/core/bitmap_font.h"
#include "isoline/core/error.h"
#include "isoline/core/mask_ops.h"

namespace isoline::report {

using core::Color;
using core::Geometry;
using core::Image;
using core::Vec3;

namespace detail {

namespace {

void put(Picture& p, int x, int y, Color c) {
  if (x < 0 || y < 0 || x >= p.width || y >= p.height) return;
  std::uint8_t* q = &p.rgb[(std::size_t(y) * p.width + x) * 3];
  q[0] = c.r;
  q[1] = c.g;
  q[2] = c.b;
}

}  // namespace

void draw_text(Picture& p, int x, int y, const std::string& text, int scale, Color col) {
  core::draw_text_5x7(x, y, text, scale, [&](int px, int py) { put(p, px, py, col); });
}

int text_width(const std::string& text, int scale) { return int(text.size()) * 6 * scale - scale; }

void fill_rect(Picture& p, int x, int y, int w, int h, Color c) {
  for (int yy = y; yy < y + h; ++yy)
    for (int xx = x; xx < x + w; ++xx) put(p, xx, yy, c);
}

std::vector<Target> find_targets(const ReportInput& in) {
  std::vector<Target> out;
  if (!in.target_dose_gy.empty()) {
    for (const auto& [name, gy] : in.target_dose_gy)
      if (in.structures.find(name)) out.push_back({name, gy});
  } else {
    // PTVs if any, else CTVs/GTVs.
    bool any_ptv = false;
    for (const auto& s : in.structures) any_ptv = any_ptv || s.type == core::StructureType::PTV;
    for (const auto& s : in.structures) {
      if (any_ptv ? s.type != core::StructureType::PTV : !core::is_target_type(s.type)) continue;
      double gy = core::prescription_from_name(s.name);
      if (gy <= 0) gy = in.prescription_gy;
      out.push_back({s.name, gy});
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Target& a, const Target& b) { return a.dose_gy > b.dose_gy; });
  return out;
}

double prescription(const ReportInput& in) {
  if (in.prescription_gy > 0) return in.prescription_gy;
  const auto t = find_targets(in);
  if (!t.empty() && t.front().dose_gy > 0) return t.front().dose_gy;
  double mx = 0;
  for (const auto& d : in.doses)
    if (!d.dose.empty()) mx = std::max(mx, d.dose.min_max().second);
  return mx > 0 ? mx : 1.0;
}

double dose_scale_max(const ReportInput& in) {
  double mx = 0;
  for (const auto& d : in.doses)
    if (!d.dose.empty()) mx = std::max(mx, d.dose.min_max().second);
  const double rx = prescription(in);
  mx = std::max(mx, rx);
  // Round up to a multiple of 5 Gy (1 Gy for small doses).
  const double step = mx > 20 ? 5.0 : 1.0;
  return std::ceil(mx / step - 1e-9) * step;
}

std::optional<Color> wash_color(const std::vector<IsodoseLevel>& stops, double percent) {
  const IsodoseLevel* below = nullptr;  // highest stop <= percent
  const IsodoseLevel* above = nullptr;  // lowest stop > percent
  for (const auto& s : stops) {
    if (s.percent <= percent) {
      if (!below || s.percent >= below->percent) below = &s;
    } else if (!above || s.percent < above->percent) {
      above = &s;
    }
  }
  if (!below) return std::nullopt;
  if (!above) return below->color;
  const double t = (percent - below->percent) / (above->percent - below->percent);
  auto ch = [&](std::uint8_t a, std::uint8_t b) {
    return static_cast<std::uint8_t>(std::clamp(a + t * (double(b) - a), 0.0, 255.0) + 0.5);
  };
  return Color{ch(below->color.r, above->color.r), ch(below->color.g, above->color.g),
               ch(below->color.b, above->color.b)};
}

}  // namespace detail

namespace {

using detail::draw_text;
using detail::text_width;

struct Box {
  Vec3 lo{std::numeric_limits<double>::max(), std::numeric_limits<double>::max(),
          std::numeric_limits<double>::max()};
  Vec3 hi{std::numeric_limits<double>::lowest(), std::numeric_limits<double>::lowest(),
          std::numeric_limits<double>::lowest()};
  void add(const Vec3& w) {
    for (int a = 0; a < 3; ++a) {
      lo[a] = std::min(lo[a], w[a]);
      hi[a] = std::max(hi[a], w[a]);
    }
  }
};

/// World box of the index box [lo - 0.5, hi + 0.5] (voxel edges).
Box world_box(const Geometry& g, const std::array<std::int64_t, 6>& ib) {
  Box b;
  for (int c = 0; c < 8; ++c)
    b.add(g.index_to_world({(c & 1) ? ib[3] + 0.5 : ib[0] - 0.5, (c & 2) ? ib[4] + 0.5 : ib[1] - 0.5,
                            (c & 4) ? ib[5] + 0.5 : ib[2] - 0.5}));
  return b;
}

/// The region shown: the body (first External structure) plus 10 mm, within the CT.
Box field_of_view(const ReportInput& in) {
  const Geometry& g = in.ct.geometry();
  Box b = world_box(g, {0, 0, 0, g.size[0] - 1, g.size[1] - 1, g.size[2] - 1});
  for (const auto& s : in.structures) {
    if (s.type != core::StructureType::External || s.mask.empty()) continue;
    if (auto bb = core::bounding_box(s.mask)) {
      const Box body = world_box(s.mask.geometry(), *bb);
      for (int a = 0; a < 3; ++a) {
        b.lo[a] = std::max(b.lo[a], body.lo[a] - 10.0);
        b.hi[a] = std::min(b.hi[a], body.hi[a] + 10.0);
      }
    }
    break;
  }
  return b;
}

Vec3 centroid(const Image& mask, bool* ok) {
  const Geometry& g = mask.geometry();
  const std::uint8_t* m = mask.data<std::uint8_t>();
  double s[3] = {0, 0, 0};
  std::size_t n = 0;
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i)
        if (m[g.offset(i, j, k)]) {
          s[0] += double(i);
          s[1] += double(j);
          s[2] += double(k);
          ++n;
        }
  *ok = n > 0;
  if (!n) return {0, 0, 0};
  return g.index_to_world({s[0] / double(n), s[1] / double(n), s[2] / double(n)});
}

Vec3 choose_focus(const ReportInput& in) {
  if (in.focus) return *in.focus;
  for (const auto& t : detail::find_targets(in)) {
    bool ok = false;
    const Vec3 c = centroid(in.structures.get(t.name).mask, &ok);
    if (ok) return c;
  }
  for (const auto& d : in.doses) {
    if (d.dose.empty()) continue;
    std::size_t best = 0;
    double bv = -std::numeric_limits<double>::max();
    for (std::size_t n = 0; n < d.dose.num_voxels(); ++n) {
      const double v = d.dose.value(n);
      if (v > bv) {
        bv = v;
        best = n;
      }
    }
    const auto& g = d.dose.geometry();
    const std::int64_t i = std::int64_t(best % std::size_t(g.size[0]));
    const std::int64_t j = std::int64_t((best / std::size_t(g.size[0])) % std::size_t(g.size[1]));
    const std::int64_t k = std::int64_t(best / (std::size_t(g.size[0]) * std::size_t(g.size[1])));
    return g.index_to_world({double(i), double(j), double(k)});
  }
  const auto& g = in.ct.geometry();
  return g.index_to_world({(g.size[0] - 1) / 2.0, (g.size[1] - 1) / 2.0, (g.size[2] - 1) / 2.0});
}

/// A display grid of one view: pixel (u, v) at origin + u * pix * U + v * pix * V.
Geometry view_grid(int view, const Box& fov, const Vec3& f, int box_px) {
  // axial: U = +x (patient left, so patient right is on the image left), V = +y (posterior
  // down, anterior up); coronal: U = +x, V = -z (superior up); sagittal: U = +y (anterior
  // on the left), V = -z.
  static const Vec3 kU[3] = {{1, 0, 0}, {1, 0, 0}, {0, 1, 0}};
  static const Vec3 kV[3] = {{0, 1, 0}, {0, 0, -1}, {0, 0, -1}};
  const Vec3 U = kU[view], V = kV[view];
  const Vec3 N = {U[1] * V[2] - U[2] * V[1], U[2] * V[0] - U[0] * V[2], U[0] * V[1] - U[1] * V[0]};
  const int au = view == 2 ? 1 : 0, av = view == 0 ? 1 : 2;
  const double wu = std::max(fov.hi[au] - fov.lo[au], 1.0), wv = std::max(fov.hi[av] - fov.lo[av], 1.0);
  const double pix = std::max(wu, wv) / box_px;
  Geometry g;
  g.size = {std::max<std::int64_t>(1, std::llround(wu / pix)), std::max<std::int64_t>(1, std::llround(wv / pix)), 1};
  g.spacing = {pix, pix, 1.0};
  for (int r = 0; r < 3; ++r) {
    g.direction[r * 3 + 0] = U[r];
    g.direction[r * 3 + 1] = V[r];
    g.direction[r * 3 + 2] = N[r];
  }
  // First pixel centre: the start of the field of view along U and V, the focus elsewhere.
  Vec3 o = f;
  o[au] = (U[au] > 0 ? fov.lo[au] : fov.hi[au]) + U[au] * pix / 2;
  o[av] = (V[av] > 0 ? fov.lo[av] : fov.hi[av]) + V[av] * pix / 2;
  g.origin = o;
  return g;
}


/// Marks pixels of `inside` that have a pixel outside within `radius` (Chebyshev): a line
/// of about `radius` pixels along the inner edge.
std::vector<std::uint8_t> edges(const std::vector<std::uint8_t>& inside, int w, int h, int radius) {
  std::vector<std::uint8_t> e(inside.size(), 0);
  for (int v = 0; v < h; ++v)
    for (int u = 0; u < w; ++u) {
      if (!inside[std::size_t(v) * w + u]) continue;
      bool edge = false;
      for (int dv = -radius; dv <= radius && !edge; ++dv)
        for (int du = -radius; du <= radius && !edge; ++du) {
          const int uu = u + du, vv = v + dv;
          if (uu < 0 || vv < 0 || uu >= w || vv >= h) continue;  // the image border is no edge
          edge = !inside[std::size_t(vv) * w + uu];
        }
      e[std::size_t(v) * w + u] = edge;
    }
  return e;
}

void blend(std::uint8_t* q, Color c, double a) {
  q[0] = static_cast<std::uint8_t>(std::lround((1 - a) * q[0] + a * c.r));
  q[1] = static_cast<std::uint8_t>(std::lround((1 - a) * q[1] + a * c.g));
  q[2] = static_cast<std::uint8_t>(std::lround((1 - a) * q[2] + a * c.b));
}

/// Text with a dark one-pixel shadow so it reads on any background.
void label(Picture& p, int x, int y, const std::string& text, int scale, Color c) {
  for (int dy = -1; dy <= 1; ++dy)
    for (int dx = -1; dx <= 1; ++dx)
      if (dx || dy) draw_text(p, x + dx, y + dy, text, scale, {0, 0, 0});
  draw_text(p, x, y, text, scale, c);
}

Image as_float(const Image& img) {
  return img.pixel_type() == core::PixelType::Float32 ? img : img.cast(core::PixelType::Float32);
}

/// Narrows the field of view of one view to the body in that plane (plus 10 mm).
Box crop_to_body_in_plane(const ReportInput& in, int view, const Box& fov, const Vec3& focus) {
  const core::Structure* body = nullptr;
  for (const auto& s : in.structures)
    if (s.type == core::StructureType::External && !s.mask.empty()) {
      body = &s;
      break;
    }
  const Geometry coarse = view_grid(view, fov, focus, 256);
  Image m;
  if (body) {
    m = core::resample(body->mask, coarse, core::Interpolation::Nearest, 0.0);
  } else {
    // No body contour (e.g. OpenKBP): the patient is what is denser than -400 HU.
    const Image ct = as_float(core::resample(in.ct, coarse, core::Interpolation::Linear, -1024.0));
    m = Image(coarse, core::PixelType::UInt8);
    const float* c = ct.data<float>();
    std::uint8_t* q = m.data<std::uint8_t>();
    for (std::size_t n = 0; n < m.num_voxels(); ++n) q[n] = c[n] > -400.0f;
  }
  const auto bb = core::bounding_box(m);
  if (!bb) return fov;
  const Box b = world_box(coarse, *bb);
  Box out = fov;
  const int au = view == 2 ? 1 : 0, av = view == 0 ? 1 : 2;
  for (int a : {au, av}) {
    out.lo[a] = std::max(fov.lo[a], b.lo[a] - 10.0);
    out.hi[a] = std::min(fov.hi[a], b.hi[a] + 10.0);
  }
  return out;
}

Picture render_view(const ReportInput& in, const Image* dose, int view, const Box& full_fov,
                    const Vec3& focus, double rx, const ReportOptions& opt,
                    const char* corner_label = nullptr) {
  const Box fov = crop_to_body_in_plane(in, view, full_fov, focus);
  const Geometry grid = view_grid(view, fov, focus, opt.view_box_px);
  const int w = int(grid.size[0]), h = int(grid.size[1]);
  Picture p;
  p.width = w;
  p.height = h;
  p.geometry = grid;
  p.rgb.assign(std::size_t(w) * h * 3, 0);

  // CT in the window; outside the CT: black.
  const Image ct = as_float(core::resample(in.ct, grid, core::Interpolation::Linear, -1024.0));
  const float* c = ct.data<float>();
  const double lo = opt.window_level_hu - opt.window_width_hu / 2;
  for (std::size_t n = 0; n < std::size_t(w) * h; ++n) {
    const double t = std::clamp((c[n] - lo) / opt.window_width_hu, 0.0, 1.0);
    const auto g = static_cast<std::uint8_t>(t * 255.0 + 0.5);
    p.rgb[3 * n] = p.rgb[3 * n + 1] = p.rgb[3 * n + 2] = g;
  }

  // Dose colourwash and isodose lines, inside the patient only (the External structure, else
  // the CT above -400 HU), as planning systems show them: dose in the air would hide the skin.
  if (dose) {
    Image dsi = core::resample(*dose, grid, core::Interpolation::Linear, 0.0);
    float* d = dsi.data<float>();
    const core::Structure* ext = nullptr;
    for (const auto& st : in.structures)
      if (st.type == core::StructureType::External && st.mask.count_nonzero() > 0) ext = &st;
    if (ext) {
      const Image em = core::resample(ext->mask, grid, core::Interpolation::Nearest, 0.0);
      const std::uint8_t* e = em.data<std::uint8_t>();
      for (std::size_t n = 0; n < std::size_t(w) * h; ++n)
        if (!e[n]) d[n] = 0;
    } else {  // the patient's outline in this picture, with its air cavities (airway) filled
      Image tissue = Image::zeros<std::uint8_t>(grid);
      std::uint8_t* t = tissue.data<std::uint8_t>();
      for (std::size_t n = 0; n < std::size_t(w) * h; ++n) t[n] = c[n] > -400.0f;
      const Image filled = core::fill_holes(tissue, /*per_slice=*/true);
      const std::uint8_t* f = filled.data<std::uint8_t>();
      for (std::size_t n = 0; n < std::size_t(w) * h; ++n)
        if (!f[n]) d[n] = 0;
    }
    // Colourwash: the colour of the dose as a percentage of the prescription (the review
    // UI's scale), nothing below the lowest stop.
    for (std::size_t n = 0; n < std::size_t(w) * h; ++n)
      if (d[n] > 0)
        if (const auto col = detail::wash_color(opt.wash, 100.0 * d[n] / rx)) blend(&p.rgb[3 * n], *col, opt.wash_opacity);
    // Lowest level first so higher ones stay on top.
    std::vector<IsodoseLevel> levels = opt.isodoses;
    std::sort(levels.begin(), levels.end(),
              [](const IsodoseLevel& a, const IsodoseLevel& b) { return a.percent < b.percent; });
    for (const auto& L : levels) {
      const double gy = L.percent / 100.0 * rx;
      std::vector<std::uint8_t> inside(std::size_t(w) * h);
      for (std::size_t n = 0; n < inside.size(); ++n) inside[n] = d[n] >= gy;
      const auto e = edges(inside, w, h, 1);
      for (std::size_t n = 0; n < e.size(); ++n)
        if (e[n]) {
          p.rgb[3 * n] = L.color.r;
          p.rgb[3 * n + 1] = L.color.g;
          p.rgb[3 * n + 2] = L.color.b;
        }
    }
  }

  // Structure outlines (uint8 masks resampled linearly: thresholded at 0.5).
  for (const auto& s : in.structures) {
    if (s.mask.empty()) continue;
    const Image m = core::resample(s.mask, grid, core::Interpolation::Linear, 0.0);
    const std::uint8_t* mm = m.data<std::uint8_t>();
    std::vector<std::uint8_t> inside(mm, mm + std::size_t(w) * h);
    const auto e = edges(inside, w, h, 1);
    for (std::size_t n = 0; n < e.size(); ++n)
      if (e[n]) {
        p.rgb[3 * n] = s.color.r;
        p.rgb[3 * n + 1] = s.color.g;
        p.rgb[3 * n + 2] = s.color.b;
      }
  }

  // Orientation letters (left, right, top, bottom edges) and a scale bar.
  static const char* kLetters[3][4] = {{"R", "L", "A", "P"}, {"R", "L", "S", "I"}, {"A", "P", "S", "I"}};
  const int sc = 2;
  const Color white{255, 255, 255};
  label(p, 4, h / 2 - 7, kLetters[view][0], sc, white);
  label(p, w - 5 * sc - 4, h / 2 - 7, kLetters[view][1], sc, white);
  label(p, w / 2 - 5, 4, kLetters[view][2], sc, white);
  label(p, w / 2 - 5, h - 7 * sc - 4, kLetters[view][3], sc, white);
  static const char* kNames[3] = {"AXIAL", "CORONAL", "SAGITTAL"};
  const char* name = corner_label ? corner_label : kNames[view];  // e.g. a slice's z position
  label(p, w - text_width(name, sc) - 4, h - 7 * sc - 4, name, sc, {255, 255, 160});
  const double pix = grid.spacing[0];
  double bar_mm = 50.0;
  for (double mm : {50.0, 20.0, 10.0}) {
    bar_mm = mm;
    if (mm / pix <= w * 0.4) break;
  }
  const int bar = int(std::lround(bar_mm / pix));
  if (bar >= 8 && bar < w - 16) {
    const int x0 = 8, y0 = h - 10;
    detail::fill_rect(p, x0 - 1, y0 - 1, bar + 2, 5, {0, 0, 0});
    detail::fill_rect(p, x0, y0, bar, 3, white);
    label(p, x0, y0 - 7 * sc - 4, std::to_string(int(bar_mm / 10)) + " CM", sc, white);
  }
  return p;
}


/// What every rendering needs: a CT with a valid grid, a sane view size, uint8 masks.
void check_scene(const ReportInput& in, const ReportOptions& opt, const char* op) {
  if (in.ct.empty()) core::fail<core::InvalidInput>(op, in.title, "no CT image");
  in.ct.geometry().validate("report CT");
  if (opt.view_box_px < 16 || opt.view_box_px > 4096)
    core::fail<core::InvalidInput>(op, in.title, "view_box_px must be within 16..4096");
  for (const auto& s : in.structures)
    if (!s.mask.empty() && s.mask.pixel_type() != core::PixelType::UInt8)
      core::fail<core::InvalidInput>(op, s.name, "mask is not uint8");
}

}  // namespace

std::vector<Picture> render_views(const ReportInput& in, int dose_index, const ReportOptions& opt) {
  const char* op = "render report views";
  check_scene(in, opt, op);
  if (dose_index == 0 && in.doses.empty()) dose_index = -1;
  if (dose_index < -1 || dose_index >= int(in.doses.size()))
    core::fail<core::InvalidInput>(op, in.title,
                                   "dose set " + std::to_string(dose_index) + " does not exist (" +
                                       std::to_string(in.doses.size()) + " given)");
  // The scene of this row: the report's CT and structures, or the dose set's own (e.g. the
  // planning CT for the planned dose of an adaptive comparison). Images share pixels, so
  // this copies no voxel data. The prescription (the colour scale) comes from the whole report.
  const double rx = detail::prescription(in);
  ReportInput scene;
  scene.title = in.title;
  scene.ct = in.ct;
  scene.structures = in.structures;
  scene.prescription_gy = rx;
  scene.target_dose_gy = in.target_dose_gy;
  scene.focus = in.focus;
  Image dose;
  if (dose_index >= 0) {
    const DoseSet& set = in.doses[std::size_t(dose_index)];
    if (!set.ct.empty()) {
      set.ct.geometry().validate("report CT of dose set " + set.name);
      scene.ct = set.ct;
    }
    if (set.structures) {
      for (const auto& s : *set.structures)
        if (!s.mask.empty() && s.mask.pixel_type() != core::PixelType::UInt8)
          core::fail<core::InvalidInput>(op, s.name, "mask is not uint8");
      scene.structures = *set.structures;
    }
    if (!set.dose.empty()) {
      set.dose.geometry().validate("report dose " + set.name);
      dose = as_float(set.dose);
      scene.doses.emplace_back(set.name, dose);
    }
  }
  const Box fov = field_of_view(scene);
  const Vec3 f = choose_focus(scene);
  std::vector<Picture> out;
  for (int v = 0; v < 3; ++v)
    out.push_back(render_view(scene, dose.empty() ? nullptr : &dose, v, fov, f, rx, opt));
  return out;
}

std::vector<Picture> render_axial_series(const ReportInput& in, int count, const ReportOptions& opt) {
  const char* op = "render axial series";
  if (count < 1 || count > 64)
    core::fail<core::InvalidInput>(op, in.title, "count " + std::to_string(count) + " is not within 1..64");
  check_scene(in, opt, op);
  const Box fov = field_of_view(in);
  double zlo = std::numeric_limits<double>::max(), zhi = -zlo;
  for (const auto& s : in.structures) {
    if (s.type == core::StructureType::External || s.mask.empty()) continue;
    if (auto bb = core::bounding_box(s.mask)) {
      const Box b = world_box(s.mask.geometry(), *bb);
      zlo = std::min(zlo, b.lo[2]);
      zhi = std::max(zhi, b.hi[2]);
    }
  }
  if (zlo > zhi) {
    zlo = fov.lo[2];
    zhi = fov.hi[2];
  }
  const Vec3 centre = choose_focus(in);
  std::vector<Picture> out;
  for (int i = 0; i < count; ++i) {
    // Superior first (the order of a TPS slice list scrolled head to foot).
    const double z = zhi - (double(i) + 0.5) * (zhi - zlo) / double(count);
    char text[32];
    std::snprintf(text, sizeof text, "Z %.0f", z);  // mm; short, clear of the "P" at the bottom
    // No dose on these slices: prescription and colour scale are not used.
    out.push_back(render_view(in, nullptr, 0, fov, {centre[0], centre[1], z}, 0.0, opt, text));
  }
  return out;
}

}  // namespace isoline::report

