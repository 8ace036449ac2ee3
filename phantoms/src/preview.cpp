// Preview PNG: axial, coronal and sagittal slices through the focus point, soft-tissue
// window, structure outlines in their colours. Sampled in patient coordinates, so HFS and
// FFS cases of one patient look the same (radiological convention: patient right on the
// viewer's left, anterior up in axial views, superior up in coronal/sagittal views).
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <png.h>

#include "isoline/core/atomic_file.h"
#include "isoline/core/bitmap_font.h"
#include "isoline/core/error.h"
#include "isoline/phantoms/phantoms.h"

namespace isoline::phantoms {

using core::Vec3;

namespace {


struct Rgb {
  std::vector<std::uint8_t> px;
  int w = 0, h = 0;
  Rgb(int w_, int h_, std::uint8_t fill) : px(std::size_t(w_) * h_ * 3, fill), w(w_), h(h_) {}
  std::uint8_t* at(int x, int y) { return &px[(std::size_t(y) * w + x) * 3]; }
};

/// Draws upper-cased `text` at (x, y) (top-left), glyphs scaled by `scale`.
int draw_text(Rgb& img, int x, int y, const std::string& text, int scale, core::Color col) {
  return core::draw_text_5x7(x, y, text, scale, [&](int px, int py) {
    if (px < 0 || py < 0 || px >= img.w || py >= img.h) return;
    std::uint8_t* p = img.at(px, py);
    p[0] = col.r;
    p[1] = col.g;
    p[2] = col.b;
  });
}

int text_width(const std::string& text, int scale) { return int(text.size()) * 6 * scale; }

/// One panel: display pixel (u, v) -> world = origin + u * du + v * dv.
struct Panel {
  Vec3 origin, du, dv;
  int w, h;
};

Rgb render(const Phantom& ph, const Panel& p) {
  const auto& g = ph.ct.geometry();
  const std::int16_t* ct = ph.ct.data<std::int16_t>();
  const std::size_t ns = ph.structures.size();
  std::vector<std::uint32_t> bits(std::size_t(p.w) * p.h, 0);
  Rgb img(p.w, p.h, 0);
  for (int v = 0; v < p.h; ++v)
    for (int u = 0; u < p.w; ++u) {
      Vec3 w;
      // The tiny offset breaks ties between two voxel centres the same way in world space
      // whatever the storage order, so HFS and FFS cases give identical pictures.
      for (int a = 0; a < 3; ++a) w[a] = p.origin[a] + u * p.du[a] + v * p.dv[a] + 1e-4;
      const Vec3 c = g.world_to_index(w);
      const core::Index3 ijk{std::llround(c[0]), std::llround(c[1]), std::llround(c[2])};
      std::uint8_t grey = 0;
      if (g.contains(ijk)) {
        const std::size_t off = g.offset(ijk[0], ijk[1], ijk[2]);
        // soft-tissue window: level 40, width 400
        const double t = (ct[off] - (40.0 - 200.0)) / 400.0;
        grey = static_cast<std::uint8_t>(std::clamp(t, 0.0, 1.0) * 255.0 + 0.5);
        std::uint32_t b = 0;
        for (std::size_t s = 0; s < ns && s < 32; ++s)
          if (ph.structures[s].mask.data<std::uint8_t>()[off]) b |= 1u << s;
        bits[std::size_t(v) * p.w + u] = b;
      }
      std::uint8_t* q = img.at(u, v);
      q[0] = q[1] = q[2] = grey;
    }
  // Outlines: a pixel inside a structure with a 4-neighbour outside it.
  for (std::size_t s = 0; s < ns && s < 32; ++s) {
    const std::uint32_t bit = 1u << s;
    const core::Color col = ph.structures[s].color;
    for (int v = 0; v < p.h; ++v)
      for (int u = 0; u < p.w; ++u) {
        if (!(bits[std::size_t(v) * p.w + u] & bit)) continue;
        bool edge = false;
        const int du[] = {1, -1, 0, 0}, dv[] = {0, 0, 1, -1};
        for (int n = 0; n < 4 && !edge; ++n) {
          const int uu = u + du[n], vv = v + dv[n];
          if (uu < 0 || vv < 0 || uu >= p.w || vv >= p.h ||
              !(bits[std::size_t(vv) * p.w + uu] & bit))
            edge = true;
        }
        if (edge) {
          std::uint8_t* q = img.at(u, v);
          q[0] = col.r;
          q[1] = col.g;
          q[2] = col.b;
        }
      }
  }
  return img;
}

void write_png(const Rgb& img, const std::string& path) {
  const char* op = "write preview";
  core::AtomicOutput out(path);
  FILE* fp = std::fopen(out.temp_path().c_str(), "wb");
  if (!fp) core::fail<core::IoError>(op, path, "cannot open for writing");
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info) {
    std::fclose(fp);
    core::fail<core::IoError>(op, path, "libpng initialisation failed");
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    std::fclose(fp);
    core::fail<core::IoError>(op, path,
                              core::write_failure_problem(out.temp_path(), "cannot write: libpng write failed"));
  }
  png_init_io(png, fp);
  png_set_compression_level(png, 9);
  png_set_IHDR(png, info, img.w, img.h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < img.h; ++y)
    png_write_row(png, const_cast<png_bytep>(&img.px[std::size_t(y) * img.w * 3]));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  if (std::fclose(fp) != 0)
    core::fail<core::IoError>(op, path, std::string("cannot write: ") + std::strerror(errno));
  out.commit();
}

}  // namespace

void write_preview_png(const Phantom& ph, const std::string& path) {
  if (ph.ct.empty()) core::fail<core::InvalidInput>("write preview", path, "phantom has no CT");
  const auto& g = ph.ct.geometry();
  // World bounding box of the grid (voxel centres).
  Vec3 lo{1e300, 1e300, 1e300}, hi{-1e300, -1e300, -1e300};
  for (int c = 0; c < 8; ++c) {
    const Vec3 w = g.index_to_world({(c & 1) ? double(g.size[0] - 1) : 0.0,
                                     (c & 2) ? double(g.size[1] - 1) : 0.0,
                                     (c & 4) ? double(g.size[2] - 1) : 0.0});
    for (int a = 0; a < 3; ++a) {
      lo[a] = std::min(lo[a], w[a]);
      hi[a] = std::max(hi[a], w[a]);
    }
  }
  // Crop to the body (first structure of type External, if any) plus 10 mm; the axial
  // panel to the body in the focus slice.
  Vec3 alo = lo, ahi = hi;
  const Vec3 f = ph.focus;
  for (const auto& st : ph.structures) {
    if (st.type != core::StructureType::External) continue;
    Vec3 blo{1e300, 1e300, 1e300}, bhi{-1e300, -1e300, -1e300};
    Vec3 slo = blo, shi = bhi;
    const std::uint8_t* m = st.mask.data<std::uint8_t>();
    const double kf = g.world_to_index(f)[2];
    bool any = false, any_slice = false;
    for (std::int64_t k = 0; k < g.size[2]; ++k) {
      const bool focus_slice = std::abs(double(k) - kf) < 0.5;
      for (std::int64_t j = 0; j < g.size[1]; ++j)
        for (std::int64_t i = 0; i < g.size[0]; ++i) {
          if (!m[g.offset(i, j, k)]) continue;
          const Vec3 w = g.index_to_world({double(i), double(j), double(k)});
          for (int a = 0; a < 3; ++a) {
            blo[a] = std::min(blo[a], w[a]);
            bhi[a] = std::max(bhi[a], w[a]);
            if (focus_slice) {
              slo[a] = std::min(slo[a], w[a]);
              shi[a] = std::max(shi[a], w[a]);
            }
          }
          any = true;
          any_slice = any_slice || focus_slice;
        }
    }
    if (any)
      for (int a = 0; a < 3; ++a) {
        lo[a] = std::max(lo[a], blo[a] - 10.0);
        hi[a] = std::min(hi[a], bhi[a] + 10.0);
      }
    alo = lo;
    ahi = hi;
    if (any_slice)
      for (int a = 0; a < 2; ++a) {
        alo[a] = std::max(lo[a], slo[a] - 10.0);
        ahi[a] = std::min(hi[a], shi[a] + 10.0);
      }
    break;
  }
  // Display pixel: the finest in-plane spacing, at least 1 mm, panels at most 512 px.
  double pix = std::max(1.0, std::min(g.spacing[0], g.spacing[1]));
  for (int a = 0; a < 3; ++a) pix = std::max(pix, (hi[a] - lo[a]) / 511.0);
  auto n = [&](int a) { return int(std::floor((hi[a] - lo[a]) / pix)) + 1; };
  // The axial panel (often the small neck) is magnified to the height of the others.
  const double apix = std::max(std::min(pix, std::max(ahi[0] - alo[0], ahi[1] - alo[1]) / (n(2) - 1.0)),
                               pix / 3.0);
  const Panel axial{{alo[0], alo[1], f[2]},
                    {apix, 0, 0},
                    {0, apix, 0},
                    int(std::floor((ahi[0] - alo[0]) / apix)) + 1,
                    int(std::floor((ahi[1] - alo[1]) / apix)) + 1};
  const Panel coronal{{lo[0], f[1], hi[2]}, {pix, 0, 0}, {0, 0, -pix}, n(0), n(2)};
  const Panel sagittal{{f[0], lo[1], hi[2]}, {0, pix, 0}, {0, 0, -pix}, n(1), n(2)};
  const Rgb a = render(ph, axial), c = render(ph, coronal), s = render(ph, sagittal);
  const int gap = 4, scale = 2;
  // Legend rows: colour swatch and name per structure, wrapped to the image width.
  const int width = a.w + c.w + s.w + 2 * gap;
  std::vector<std::pair<int, int>> pos;  // per structure: x, row
  {
    int x = 6, row = 0;
    for (const auto& st : ph.structures) {
      const int w = 7 * scale + 4 + text_width(st.name, scale) + 12;
      if (x + w > width && x > 6) {
        x = 6;
        ++row;
      }
      pos.push_back({x, row});
      x += w;
    }
  }
  const int line = 9 * scale + 4;
  const int legend_h = pos.empty() ? 0 : (pos.back().second + 1) * line + 6;
  const int top = std::max({a.h, c.h, s.h});
  Rgb all(width, top + legend_h, 40);
  int x0 = 0;
  const core::Color white{255, 255, 255};
  const char* letters[3][4] = {{"R", "L", "A", "P"}, {"R", "L", "S", "I"}, {"A", "P", "S", "I"}};
  int panel = 0;
  for (const Rgb* p : {&a, &c, &s}) {
    for (int y = 0; y < p->h; ++y)
      std::copy_n(&p->px[std::size_t(y) * p->w * 3], std::size_t(p->w) * 3, all.at(x0, y));
    // Orientation letters: left, right, top, bottom edges of the panel.
    const int mid_y = p->h / 2 - 7 * scale / 2, mid_x = x0 + p->w / 2 - 5 * scale / 2;
    draw_text(all, x0 + 3, mid_y, letters[panel][0], scale, white);
    draw_text(all, x0 + p->w - 5 * scale - 3, mid_y, letters[panel][1], scale, white);
    draw_text(all, mid_x, 3, letters[panel][2], scale, white);
    draw_text(all, mid_x, p->h - 7 * scale - 3, letters[panel][3], scale, white);
    x0 += p->w + gap;
    ++panel;
  }
  for (std::size_t i = 0; i < pos.size(); ++i) {
    const auto& st = ph.structures[i];
    const int x = pos[i].first, y = top + 6 + pos[i].second * line;
    for (int dy = 0; dy < 7 * scale; ++dy)
      for (int dx = 0; dx < 7 * scale; ++dx) {
        std::uint8_t* q = all.at(x + dx, y + dy);
        q[0] = st.color.r;
        q[1] = st.color.g;
        q[2] = st.color.b;
      }
    draw_text(all, x + 7 * scale + 4, y, st.name, scale, white);
  }
  write_png(all, path);
}

}  // namespace isoline::phantoms
