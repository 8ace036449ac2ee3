#include "contour_trace.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace isoline::rtstruct::detail {

namespace {
constexpr int kDx[4] = {1, 0, -1, 0};
constexpr int kDy[4] = {0, 1, 0, -1};
}  // namespace

std::vector<Loop> trace_slice(const std::uint8_t* slice, int nx, int ny) {
  std::vector<Loop> loops;
  // Bounding box of the non-zero pixels.
  int x0 = nx, x1 = -1, y0 = ny, y1 = -1;
  for (int y = 0; y < ny; ++y) {
    const std::uint8_t* row = slice + static_cast<std::size_t>(y) * nx;
    int x = 0;
    // Skip zero words quickly.
    while (x + 8 <= nx) {
      std::uint64_t w;
      std::memcpy(&w, row + x, 8);
      if (w) break;
      x += 8;
    }
    for (; x < nx && !row[x]; ++x) {
    }
    if (x >= nx) continue;
    int xe = nx - 1;
    while (xe >= 8 - 1 + x) {
      std::uint64_t w;
      std::memcpy(&w, row + xe - 7, 8);
      if (w) break;
      xe -= 8;
    }
    while (!row[xe]) --xe;
    x0 = std::min(x0, x);
    x1 = std::max(x1, xe);
    y0 = std::min(y0, y);
    y1 = y;
  }
  if (x1 < 0) return loops;

  // Outgoing edge flags on the corner lattice [x0, x1+1] x [y0, y1+1].
  const int W = x1 - x0 + 2, H = y1 - y0 + 2;
  std::vector<std::uint8_t> flags(static_cast<std::size_t>(W) * H, 0);
  auto in = [&](int x, int y) -> bool {
    return x >= 0 && y >= 0 && x < nx && y < ny && slice[static_cast<std::size_t>(y) * nx + x] != 0;
  };
  auto cf = [&](int cx, int cy) -> std::uint8_t& {
    return flags[static_cast<std::size_t>(cy - y0) * W + (cx - x0)];
  };
  std::size_t nedges = 0;
  for (int y = y0; y <= y1; ++y) {
    const std::uint8_t* row = slice + static_cast<std::size_t>(y) * nx;
    for (int x = x0; x <= x1; ++x) {
      if (!row[x]) continue;
      if (!in(x, y - 1)) cf(x, y) |= 1, ++nedges;
      if (!in(x + 1, y)) cf(x + 1, y) |= 2, ++nedges;
      if (!in(x, y + 1)) cf(x + 1, y + 1) |= 4, ++nedges;
      if (!in(x - 1, y)) cf(x, y + 1) |= 8, ++nedges;
    }
  }
  std::vector<std::uint8_t> used(flags.size(), 0);
  for (int cy = y0; cy <= y1 + 1; ++cy) {
    for (int cx = x0; cx <= x1 + 1; ++cx) {
      for (int d0 = 0; d0 < 4; ++d0) {
        const std::size_t idx0 = static_cast<std::size_t>(cy - y0) * W + (cx - x0);
        if (!(flags[idx0] & (1 << d0)) || (used[idx0] & (1 << d0))) continue;
        Loop loop;
        int px = cx, py = cy, d = d0;
        used[idx0] |= static_cast<std::uint8_t>(1 << d0);
        for (;;) {
          const int qx = px + kDx[d], qy = py + kDy[d];
          const std::size_t qi = static_cast<std::size_t>(qy - y0) * W + (qx - x0);
          const std::uint8_t f = flags[qi];
          // Prefer a left turn, then straight, then right (keeps diagonal pixels apart).
          int nd = -1;
          for (int t : {1, 0, 3}) {
            const int c = (d + t) & 3;
            if (f & (1 << c)) {
              nd = c;
              break;
            }
          }
          if (nd < 0) break;  // cannot happen on a consistent boundary
          if (nd != d) loop.corners.push_back({qx, qy});
          if (qx == cx && qy == cy && nd == d0) break;
          used[qi] |= static_cast<std::uint8_t>(1 << nd);
          px = qx;
          py = qy;
          d = nd;
        }
        long long a2 = 0;
        const std::size_t n = loop.corners.size();
        for (std::size_t i = 0; i < n; ++i) {
          const auto& p = loop.corners[i];
          const auto& q = loop.corners[(i + 1) % n];
          a2 += static_cast<long long>(p[0]) * q[1] - static_cast<long long>(q[0]) * p[1];
        }
        loop.area2 = a2;
        if (n >= 4) loops.push_back(std::move(loop));
      }
    }
  }
  (void)nedges;
  return loops;
}

std::vector<Loop> keyhole(std::vector<Loop> loops) {
  // Work in doubled coordinates so the cut at half-pixel height stays integral.
  std::vector<std::vector<std::array<std::int32_t, 2>>> polys;
  std::vector<bool> is_hole;
  for (auto& l : loops) {
    std::vector<std::array<std::int32_t, 2>> p;
    p.reserve(l.corners.size());
    for (auto& c : l.corners) p.push_back({2 * c[0], 2 * c[1]});
    polys.push_back(std::move(p));
    is_hole.push_back(l.area2 < 0);
  }
  std::vector<bool> alive(polys.size(), true);
  for (;;) {
    // Next hole: one still alive.
    std::size_t h = polys.size();
    for (std::size_t i = 0; i < polys.size(); ++i)
      if (alive[i] && is_hole[i]) {
        h = i;
        break;
      }
    if (h == polys.size()) break;
    auto& hp = polys[h];
    // Leftmost vertical edge of the hole, lowest; the cut leaves from its middle.
    std::size_t best = 0;
    for (std::size_t i = 0; i < hp.size(); ++i) {
      const auto& a = hp[i];
      const auto& b = hp[(i + 1) % hp.size()];
      if (a[0] != b[0]) continue;
      const auto& c = hp[best];
      const auto& cb = hp[(best + 1) % hp.size()];
      const bool cvert = c[0] == cb[0];
      if (!cvert || a[0] < c[0] || (a[0] == c[0] && std::min(a[1], b[1]) < std::min(c[1], cb[1])))
        best = i;
    }
    const auto a = hp[best], b = hp[(best + 1) % hp.size()];
    const int yc = std::min(a[1], b[1]) + 1;  // half a pixel above the edge's lower end
    const int hx = a[0];
    // Nearest vertical edge to the left, of any other alive loop, crossing y = yc.
    std::size_t tgt = polys.size(), tedge = 0;
    int tx = std::numeric_limits<int>::min();
    for (std::size_t j = 0; j < polys.size(); ++j) {
      if (!alive[j] || j == h) continue;
      const auto& pj = polys[j];
      for (std::size_t i = 0; i < pj.size(); ++i) {
        const auto& p = pj[i];
        const auto& q = pj[(i + 1) % pj.size()];
        if (p[0] != q[0] || p[0] >= hx || p[0] <= tx) continue;
        if (yc > std::min(p[1], q[1]) && yc < std::max(p[1], q[1])) {
          tx = p[0];
          tgt = j;
          tedge = i;
        }
      }
    }
    if (tgt == polys.size()) {  // no enclosing loop (cannot happen): keep as a separate contour
      is_hole[h] = false;
      continue;
    }
    // New target: ..., t[tedge], (tx,yc), (hx,yc), hole from b around to a, (hx,yc), (tx,yc),
    // t[tedge+1] ...
    std::vector<std::array<std::int32_t, 2>> merged;
    auto& tp = polys[tgt];
    for (std::size_t i = 0; i <= tedge; ++i) merged.push_back(tp[i]);
    merged.push_back({tx, yc});
    merged.push_back({hx, yc});
    const std::size_t hn = hp.size();
    for (std::size_t s = 1; s <= hn; ++s) merged.push_back(hp[(best + s) % hn]);
    merged.push_back({hx, yc});
    merged.push_back({tx, yc});
    for (std::size_t i = tedge + 1; i < tp.size(); ++i) merged.push_back(tp[i]);
    tp = std::move(merged);
    alive[h] = false;
  }
  std::vector<Loop> out;
  for (std::size_t i = 0; i < polys.size(); ++i) {
    if (!alive[i]) continue;
    Loop l;
    // Stored in doubled units; callers of keyhole() divide by 2 (see rtstruct_write.cpp).
    l.corners = std::move(polys[i]);
    l.area2 = is_hole[i] ? -1 : 1;
    out.push_back(std::move(l));
  }
  return out;
}

void xor_polygon(std::uint8_t* slice, int nx, int ny,
                 const std::vector<std::array<double, 2>>& poly) {
  const std::size_t n = poly.size();
  if (n < 3) return;
  double ymin = poly[0][1], ymax = poly[0][1];
  for (const auto& p : poly) {
    if (!std::isfinite(p[0]) || !std::isfinite(p[1])) return;
    ymin = std::min(ymin, p[1]);
    ymax = std::max(ymax, p[1]);
  }
  const long r0 = std::max(0L, static_cast<long>(std::ceil(ymin)));
  const long r1 = std::min(static_cast<long>(ny) - 1, static_cast<long>(std::ceil(ymax)) - 1);
  if (r1 < r0) return;
  std::vector<std::vector<double>> xs(static_cast<std::size_t>(r1 - r0 + 1));
  for (std::size_t i = 0; i < n; ++i) {
    const auto& p = poly[i];
    const auto& q = poly[(i + 1) % n];
    if (p[1] == q[1]) continue;
    const double lo = std::min(p[1], q[1]), hi = std::max(p[1], q[1]);
    // Rows y with lo <= y < hi (half-open).
    const long a = std::max(r0, static_cast<long>(std::ceil(lo)));
    const long b = std::min(r1, static_cast<long>(std::ceil(hi)) - 1);
    const double slope = (q[0] - p[0]) / (q[1] - p[1]);
    for (long y = a; y <= b; ++y)
      xs[static_cast<std::size_t>(y - r0)].push_back(p[0] + (y - p[1]) * slope);
  }
  for (long y = r0; y <= r1; ++y) {
    auto& v = xs[static_cast<std::size_t>(y - r0)];
    if (v.size() < 2) continue;
    std::sort(v.begin(), v.end());
    std::uint8_t* row = slice + static_cast<std::size_t>(y) * nx;
    for (std::size_t i = 0; i + 1 < v.size(); i += 2) {
      // Pixel centres i with v[i] <= x < v[i+1].
      const double xa = std::max(v[i], -1.0), xb = std::min(v[i + 1], static_cast<double>(nx) + 1);
      const long a = std::max(0L, static_cast<long>(std::ceil(xa)));
      const long b = std::min(static_cast<long>(nx), static_cast<long>(std::ceil(xb)));
      for (long x = a; x < b; ++x) row[x] ^= 1;
    }
  }
}

double polygon_area(const std::vector<std::array<double, 2>>& poly) {
  double a = 0;
  const std::size_t n = poly.size();
  for (std::size_t i = 0; i < n; ++i) {
    const auto& p = poly[i];
    const auto& q = poly[(i + 1) % n];
    a += p[0] * q[1] - q[0] * p[1];
  }
  return std::fabs(a) * 0.5;
}

}  // namespace isoline::rtstruct::detail
