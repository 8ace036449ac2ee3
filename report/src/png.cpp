// PNG encoding (libpng into memory), atomic file writes, and the PNG outputs: the three
// views of one dose set, and a figure with all rows, colour bar and legends.
#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "internal.h"
#include "isoline/core/atomic_file.h"
#include "isoline/core/error.h"

namespace isoline::report {

using core::Color;

namespace detail {

std::string base64(const std::vector<std::uint8_t>& b) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((b.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < b.size(); i += 3) {
    const std::uint32_t v = (std::uint32_t(b[i]) << 16) | (std::uint32_t(b[i + 1]) << 8) | b[i + 2];
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += k[(v >> 6) & 63];
    out += k[v & 63];
  }
  if (i + 1 == b.size()) {
    const std::uint32_t v = std::uint32_t(b[i]) << 16;
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == b.size()) {
    const std::uint32_t v = (std::uint32_t(b[i]) << 16) | (std::uint32_t(b[i + 1]) << 8);
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += k[(v >> 6) & 63];
    out += '=';
  }
  return out;
}


}  // namespace detail

namespace {

void append_bytes(png_structp png, png_bytep data, png_size_t n) {
  auto* v = static_cast<std::vector<std::uint8_t>*>(png_get_io_ptr(png));
  v->insert(v->end(), data, data + n);
}
void flush_nothing(png_structp) {}

}  // namespace

std::vector<std::uint8_t> encode_png(const Picture& pic) {
  const char* op = "encode PNG";
  if (pic.width <= 0 || pic.height <= 0 || pic.rgb.size() != std::size_t(pic.width) * pic.height * 3)
    core::fail<core::InvalidInput>(op, "", "picture size and pixel buffer disagree");
  std::vector<std::uint8_t> out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info) {
    png_destroy_write_struct(&png, &info);
    core::fail<core::IoError>(op, "", "libpng initialisation failed");
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    core::fail<core::IoError>(op, "", "libpng write failed");
  }
  png_set_write_fn(png, &out, append_bytes, flush_nothing);
  png_set_compression_level(png, 6);
  png_set_IHDR(png, info, png_uint_32(pic.width), png_uint_32(pic.height), 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < pic.height; ++y)
    png_write_row(png, const_cast<png_bytep>(&pic.rgb[std::size_t(y) * pic.width * 3]));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

std::vector<std::string> write_view_pngs(const ReportInput& in, const std::string& prefix,
                                         int dose_index, const ReportOptions& opt) {
  const auto views = render_views(in, dose_index, opt);
  static const char* kNames[3] = {"axial", "coronal", "sagittal"};
  std::vector<std::string> paths;
  for (int v = 0; v < 3; ++v) {
    const std::string path = prefix + kNames[v] + ".png";
    const auto bytes = encode_png(views[std::size_t(v)]);
    core::write_file_atomic(path, {reinterpret_cast<const char*>(bytes.data()), bytes.size()}, "write report view");
    paths.push_back(path);
  }
  return paths;
}

namespace {

void blit(Picture& dst, const Picture& src, int x0, int y0) {
  for (int y = 0; y < src.height; ++y) {
    if (y0 + y < 0 || y0 + y >= dst.height) continue;
    for (int x = 0; x < src.width; ++x) {
      if (x0 + x < 0 || x0 + x >= dst.width) continue;
      std::memcpy(&dst.rgb[(std::size_t(y0 + y) * dst.width + x0 + x) * 3],
                  &src.rgb[(std::size_t(y) * src.width + x) * 3], 3);
    }
  }
}

std::string fmt(double v, int decimals) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace

void write_figure_png(const ReportInput& in, const std::string& path, const ReportOptions& opt) {
  const int n_rows = in.doses.empty() ? 1 : int(in.doses.size());
  std::vector<std::vector<Picture>> rows;
  for (int r = 0; r < n_rows; ++r) rows.push_back(render_views(in, in.doses.empty() ? -1 : r, opt));
  const int gap = 6, sc = 2, line = 9 * sc + 6, title_h = in.doses.empty() ? 0 : line;
  int views_w = 0, row_h = 0;
  for (const auto& p : rows[0]) {
    views_w += p.width + gap;
    row_h = std::max(row_h, p.height);
  }
  const int bar_w = in.doses.empty() ? 0 : 110;
  const int width = views_w + bar_w;
  const Color white{255, 255, 255}, bg{28, 28, 32};

  // Legend items: isodose levels then structures, wrapped to the width.
  struct Item {
    std::string text;
    Color color;
    bool line;
  };
  std::vector<Item> items;
  const double rx = detail::prescription(in), vmax = detail::dose_scale_max(in);
  if (!in.doses.empty())
    for (const auto& L : opt.isodoses)
      items.push_back({fmt(L.percent, 0) + "% " + fmt(L.percent / 100 * rx, 1) + " GY", L.color, true});
  for (const auto& s : in.structures) items.push_back({s.name, s.color, false});
  std::vector<std::pair<int, int>> pos;
  int x = 6, row = 0;
  for (const auto& it : items) {
    const int w = 7 * sc + 6 + detail::text_width(it.text, sc) + 16;
    if (x + w > width && x > 6) {
      x = 6;
      ++row;
    }
    pos.push_back({x, row});
    x += w;
  }
  const int legend_h = items.empty() ? 0 : (row + 1) * line + 8;
  const int height = n_rows * (title_h + row_h + gap) + legend_h;
  Picture fig;
  fig.width = width;
  fig.height = height;
  fig.rgb.assign(std::size_t(width) * height * 3, 0);
  detail::fill_rect(fig, 0, 0, width, height, bg);

  for (int r = 0; r < n_rows; ++r) {
    const int y0 = r * (title_h + row_h + gap);
    if (title_h) detail::draw_text(fig, 6, y0 + 4, in.doses[std::size_t(r)].name, sc, white);
    int x0 = 0;
    for (const auto& p : rows[std::size_t(r)]) {
      blit(fig, p, x0, y0 + title_h);
      x0 += p.width + gap;
    }
  }
  // Vertical colour bar: 0 .. vmax (grey below the wash's lowest stop), ticks every 10 Gy (or a tenth of the scale).
  if (bar_w) {
    const int bx = views_w + 8, by = title_h + 14, bh = std::max(60, n_rows * (title_h + row_h + gap) - by - 30);
    detail::draw_text(fig, bx, by - 12, "GY", sc, white);
    for (int y = 0; y < bh; ++y) {
      const double d = vmax * (1.0 - double(y) / (bh - 1));
      // the wash's colour at this dose (percent of the prescription); grey where none is drawn
      const auto c = detail::wash_color(opt.wash, 100.0 * d / rx);
      detail::fill_rect(fig, bx, by + 8 + y, 22, 1, c ? *c : Color{60, 60, 60});
    }
    const double step = vmax > 40 ? 10.0 : (vmax > 10 ? 5.0 : std::max(vmax / 5.0, 0.1));
    for (double d = 0; d <= vmax + 1e-9; d += step) {
      const int y = by + 8 + int(std::lround((1.0 - d / vmax) * (bh - 1)));
      detail::fill_rect(fig, bx + 22, y, 6, 1, white);
      detail::draw_text(fig, bx + 32, y - 7, fmt(d, step < 1 ? 1 : 0), sc, white);
    }
  }
  const int ly = n_rows * (title_h + row_h + gap) + 4;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const int ix = pos[i].first, iy = ly + pos[i].second * line;
    if (items[i].line)
      detail::fill_rect(fig, ix, iy + 5, 7 * sc, 3, items[i].color);
    else
      detail::fill_rect(fig, ix, iy, 7 * sc, 7 * sc, items[i].color);
    detail::draw_text(fig, ix + 7 * sc + 6, iy, items[i].text, sc, white);
  }
  const auto bytes = encode_png(fig);
  core::write_file_atomic(path, {reinterpret_cast<const char*>(bytes.data()), bytes.size()}, "write report figure");
}

}  // namespace isoline::report
