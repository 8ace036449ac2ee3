#include "raster.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>

#include "isoline/core/error.h"

namespace isoline::phantoms {

// ---------------------------------------------------------------------------------------
// Positions, grids, tissues

const char* to_string(PatientPosition p) {
  switch (p) {
    case PatientPosition::HFS: return "HFS";
    case PatientPosition::FFS: return "FFS";
    case PatientPosition::HFP: return "HFP";
    case PatientPosition::FFP: return "FFP";
  }
  return "HFS";
}

PatientPosition patient_position_from_string(const std::string& s) {
  std::string u = s;
  for (char& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (auto p : {PatientPosition::HFS, PatientPosition::FFS, PatientPosition::HFP,
                 PatientPosition::FFP})
    if (u == to_string(p)) return p;
  core::fail<core::InvalidInput>("phantom", s, "unknown patient position (expected HFS, FFS, HFP or FFP)");
}

core::Geometry make_grid(const core::Index3& size, const core::Vec3& spacing,
                         PatientPosition position, const core::Vec3& centre) {
  core::Geometry g;
  g.size = size;
  g.spacing = spacing;
  double sx = 1, sy = 1, sz = 1;  // signs of the i, j, k axes along x, y, z
  switch (position) {
    case PatientPosition::HFS: break;
    case PatientPosition::FFS: sx = -1; sz = -1; break;
    case PatientPosition::HFP: sx = -1; sy = -1; break;
    case PatientPosition::FFP: sy = -1; sz = -1; break;
  }
  g.direction = {sx, 0, 0, 0, sy, 0, 0, 0, sz};
  g.origin = {centre[0] - sx * spacing[0] * double(size[0] - 1) / 2,
              centre[1] - sy * spacing[1] * double(size[1] - 1) / 2,
              centre[2] - sz * spacing[2] * double(size[2] - 1) / 2};
  g.validate("phantom grid");
  return g;
}

namespace {
struct TissueInfo {
  const char* name;
  double hu;
};
// Nominal values from published CT numbers of adult tissues (120 kVp).
constexpr TissueInfo kTissues[kNumTissues] = {
    {"air", -1000}, {"fat", -100},        {"soft_tissue", 45}, {"brain_white", 28},
    {"brain_grey", 40}, {"csf", 8},        {"cortical_bone", 1350}, {"cancellous_bone", 320},
    {"teeth", 2200}, {"cartilage", 220},  {"parotid", 12},     {"spinal_cord", 34},
    {"tumour", 65},  {"eye", 14},         {"thyroid", 95},     {"disc", 85},
    {"water", 0},    {"lung", -740},
};
}  // namespace

const char* tissue_name(Tissue t) { return t < kNumTissues ? kTissues[t].name : "unknown"; }
double tissue_hu(Tissue t) { return t < kNumTissues ? kTissues[t].hu : 0.0; }

namespace detail {

AxialGrid axial_grid(const core::Geometry& g) {
  g.validate("phantom grid");
  const auto& d = g.direction;
  auto unit = [](double v) { return std::abs(std::abs(v) - 1.0) < 1e-9; };
  auto zero = [](double v) { return std::abs(v) < 1e-9; };
  // direction columns: i axis (d0, d3, d6), j axis (d1, d4, d7), k axis (d2, d5, d8)
  if (!(unit(d[0]) && zero(d[3]) && zero(d[6]) && zero(d[1]) && unit(d[4]) && zero(d[7]) &&
        zero(d[2]) && zero(d[5]) && unit(d[8])))
    core::fail<core::NotSupported>("phantom", "grid",
                                   "only axial grids (rows along x, columns along y, slices "
                                   "along z, any signs) are supported");
  AxialGrid a;
  a.g = g;
  a.x0 = g.origin[0];
  a.y0 = g.origin[1];
  a.z0 = g.origin[2];
  a.dx = d[0] > 0 ? g.spacing[0] : -g.spacing[0];
  a.dy = d[4] > 0 ? g.spacing[1] : -g.spacing[1];
  a.dz = d[8] > 0 ? g.spacing[2] : -g.spacing[2];
  a.nx = g.size[0];
  a.ny = g.size[1];
  a.nz = g.size[2];
  return a;
}

void index_range(double lo, double hi, double c0, double step, std::int64_t count,
                 std::int64_t& first, std::int64_t& last) {
  double a = (lo - c0) / step, b = (hi - c0) / step;
  if (a > b) std::swap(a, b);
  // Guard against huge values before the conversion.
  a = std::max(a, -1.0);
  b = std::min(b, double(count));
  first = static_cast<std::int64_t>(std::ceil(a - 1e-9));
  last = static_cast<std::int64_t>(std::floor(b + 1e-9));
  first = std::max<std::int64_t>(first, 0);
  last = std::min<std::int64_t>(last, count - 1);
}

core::Image rasterize(const Shape& shape, const AxialGrid& ag) {
  core::Image mask(ag.g, core::PixelType::UInt8);
  std::uint8_t* m = mask.data<std::uint8_t>();
  const Box3 b = shape.bounds();
  const std::int64_t nx = ag.nx, ny = ag.ny;
#pragma omp parallel
  {
    std::vector<Interval> scratch;
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t k = 0; k < ag.nz; ++k)
      for_each_run(shape, b, ag, k, scratch, [&](std::int64_t j, std::int64_t i0, std::int64_t i1) {
        std::memset(m + (k * ny + j) * nx + i0, 1, std::size_t(i1 - i0 + 1));
      });
  }
  return mask;
}

std::uint32_t bits(std::initializer_list<int> tissues) {
  std::uint32_t b = 0;
  for (int t : tissues) b |= 1u << t;
  return b;
}
std::uint32_t all_but(std::initializer_list<int> tissues) { return ~bits(tissues); }

core::Image paint(const std::vector<PaintOp>& ops, const AxialGrid& ag, std::uint8_t background,
                  const core::Progress& progress) {
  core::Image labels(ag.g, core::PixelType::UInt8);
  std::uint8_t* L = labels.data<std::uint8_t>();
  std::memset(L, background, labels.num_voxels());
  std::vector<Box3> boxes;
  for (const auto& op : ops) boxes.push_back(op.shape->bounds());
  const std::int64_t nx = ag.nx, ny = ag.ny;
  const std::int64_t chunk = 16;
  for (std::int64_t k0 = 0; k0 < ag.nz; k0 += chunk) {
    const std::int64_t k1 = std::min(ag.nz, k0 + chunk);
#pragma omp parallel
    {
      std::vector<Interval> scratch;
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t k = k0; k < k1; ++k)
        for (std::size_t o = 0; o < ops.size(); ++o) {
          const PaintOp& op = ops[o];
          for_each_run(*op.shape, boxes[o], ag, k, scratch,
                       [&](std::int64_t j, std::int64_t i0, std::int64_t i1) {
                         std::uint8_t* row = L + (k * ny + j) * nx;
                         if (op.overwrite == 0xffffffffu) {
                           std::memset(row + i0, op.tissue, std::size_t(i1 - i0 + 1));
                         } else {
                           for (std::int64_t i = i0; i <= i1; ++i)
                             if (op.overwrite & (1u << row[i])) row[i] = op.tissue;
                         }
                       });
        }
    }
    progress.update(double(k1) / double(ag.nz));
  }
  return labels;
}

void intersect_inplace(core::Image& a, const core::Image& b) {
  std::uint8_t* pa = a.data<std::uint8_t>();
  const std::uint8_t* pb = b.data<std::uint8_t>();
  const std::int64_t n = static_cast<std::int64_t>(a.num_voxels());
#pragma omp parallel for
  for (std::int64_t i = 0; i < n; ++i) pa[i] = (pa[i] && pb[i]) ? 1 : 0;
}

namespace {

/// Normalised sampled Gaussian of sigma `sigma_vox` voxels, radius ceil(3 sigma); empty
/// when the blur is negligible.
std::vector<float> gaussian_kernel(double sigma_vox) {
  if (!(sigma_vox > 0.15)) return {};
  const int r = static_cast<int>(std::ceil(3.0 * sigma_vox));
  std::vector<float> w(2 * r + 1);
  double sum = 0;
  for (int t = -r; t <= r; ++t) sum += std::exp(-0.5 * t * t / (sigma_vox * sigma_vox));
  for (int t = -r; t <= r; ++t)
    w[t + r] = float(std::exp(-0.5 * t * t / (sigma_vox * sigma_vox)) / sum);
  return w;
}

/// Separable convolution of `data` along axis `axis` (edges clamped), OpenMP over lines.
void convolve_axis(float* data, const core::Index3& n, int axis, const std::vector<float>& w) {
  if (w.empty() || n[axis] < 2) return;
  const int r = int(w.size() / 2);
  const std::int64_t nx = n[0], ny = n[1], nz = n[2];
  if (axis == 0) {
#pragma omp parallel
    {
      std::vector<float> line(static_cast<std::size_t>(nx + 2 * r));
#pragma omp for schedule(static)
      for (std::int64_t jk = 0; jk < ny * nz; ++jk) {
        float* row = data + jk * nx;
        for (std::int64_t i = -r; i < nx + r; ++i) line[i + r] = row[std::clamp<std::int64_t>(i, 0, nx - 1)];
        for (std::int64_t i = 0; i < nx; ++i) {
          float acc = 0;
          for (int t = 0; t <= 2 * r; ++t) acc += w[t] * line[i + t];
          row[i] = acc;
        }
      }
    }
    return;
  }
  // Axis 1 (j) or 2 (k): combine whole rows of nx values.
  const std::int64_t len = axis == 1 ? ny : nz;
  const std::int64_t outer = axis == 1 ? nz : ny;
  const std::int64_t stride = axis == 1 ? nx : nx * ny;
#pragma omp parallel
  {
    std::vector<float> lines(static_cast<std::size_t>(len * nx));
#pragma omp for schedule(static)
    for (std::int64_t o = 0; o < outer; ++o) {
      float* base = axis == 1 ? data + o * nx * ny : data + o * nx;
      for (std::int64_t l = 0; l < len; ++l)
        std::memcpy(&lines[l * nx], base + l * stride, sizeof(float) * nx);
      for (std::int64_t l = 0; l < len; ++l) {
        float* dst = base + l * stride;
        std::fill_n(dst, nx, 0.0f);
        for (int t = -r; t <= r; ++t) {
          const float wt = w[t + r];
          const float* src = &lines[std::clamp<std::int64_t>(l + t, 0, len - 1) * nx];
          for (std::int64_t i = 0; i < nx; ++i) dst[i] += wt * src[i];
        }
      }
    }
  }
}

void gaussian_blur(float* data, const core::Geometry& g, const core::Vec3& sigma_mm) {
  for (int a = 0; a < 3; ++a)
    convolve_axis(data, g.size, a, gaussian_kernel(sigma_mm[a] / g.spacing[a]));
}

inline std::uint64_t mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

core::Image synthesize_ct(const core::Image& labels, const core::Vec3& blur_sigma_mm,
                          double noise_sd, std::uint64_t seed, const core::Progress& progress) {
  const core::Geometry& g = labels.geometry();
  const std::int64_t n = static_cast<std::int64_t>(labels.num_voxels());
  const std::uint8_t* L = labels.data<std::uint8_t>();
  std::vector<float> hu(static_cast<std::size_t>(n));
  float table[256];
  for (int t = 0; t < 256; ++t) table[t] = float(tissue_hu(static_cast<Tissue>(t)));
#pragma omp parallel for
  for (std::int64_t i = 0; i < n; ++i) hu[i] = table[L[i]];
  progress.update(0.1, "tissue values");
  if (blur_sigma_mm[0] > 0 || blur_sigma_mm[1] > 0 || blur_sigma_mm[2] > 0)
    gaussian_blur(hu.data(), g, blur_sigma_mm);
  progress.update(0.6, "blur");

  core::Image ct(g, core::PixelType::Int16);
  std::int16_t* out = ct.data<std::int16_t>();
  const std::int64_t nx = g.size[0], ny = g.size[1], nz = g.size[2];
  // Noise: white Gaussian noise smoothed in-plane with the binomial kernel [1 2 1]/4 along i
  // and j (CT noise is correlated in-plane), rescaled to unit variance: the kernel's sum of
  // squared weights is (3/8)^2 in 2-D, so the factor is 8/3. Deterministic per voxel.
  const double scale = noise_sd * 8.0 / 3.0;
  const std::uint64_t key = mix(seed ^ 0xC0FFEE1234ull);
  const bool flip[3] = {g.direction[0] < 0, g.direction[4] < 0, g.direction[8] < 0};
#pragma omp parallel
  {
    std::vector<float> white(static_cast<std::size_t>((nx + 2) * (ny + 2)));
    std::vector<float> rowpass(static_cast<std::size_t>(nx * (ny + 2)));
#pragma omp for schedule(static)
    for (std::int64_t k = 0; k < nz; ++k) {
      if (noise_sd > 0) {
        for (std::int64_t j = -1; j <= ny; ++j)
          for (std::int64_t i = -1; i <= nx; ++i) {
            // Keyed by the voxel's index in HFS storage order (axes flipped back), so one
            // patient gets the same noise in patient space whatever the storage; the halo
            // keeps borders consistent.
            const std::int64_t ih = flip[0] ? nx - 1 - i : i, jh = flip[1] ? ny - 1 - j : j,
                               kh = flip[2] ? nz - 1 - k : k;
            const std::uint64_t idx =
                std::uint64_t((kh * (ny + 2) + (jh + 1)) * (nx + 2) + (ih + 1));
            const std::uint64_t r = mix(key + idx * 0x9E3779B97F4A7C15ull);
            // Irwin-Hall: the sum of four 16-bit uniforms, centred and scaled to unit
            // variance (var of U(0,1) is 1/12); the in-plane smoothing below sums nine of
            // these, which makes the result Gaussian to within a fraction of a percent.
            const float u = float((r & 0xFFFF) + ((r >> 16) & 0xFFFF) + ((r >> 32) & 0xFFFF) +
                                  (r >> 48)) *
                            (1.0f / 65536.0f);
            white[(j + 1) * (nx + 2) + (i + 1)] = (u - 2.0f) * 1.7320508f;
          }
        for (std::int64_t j = 0; j < ny + 2; ++j)
          for (std::int64_t i = 0; i < nx; ++i) {
            const float* w = &white[j * (nx + 2) + i];
            rowpass[j * nx + i] = 0.25f * w[0] + 0.5f * w[1] + 0.25f * w[2];
          }
      }
      for (std::int64_t j = 0; j < ny; ++j)
        for (std::int64_t i = 0; i < nx; ++i) {
          const std::int64_t v = (k * ny + j) * nx + i;
          double h = hu[v];
          if (noise_sd > 0) {
            const float* c = &rowpass[j * nx + i];
            h += scale * (0.25 * c[0] + 0.5 * c[nx] + 0.25 * c[2 * nx]);
          }
          h = std::clamp(std::round(h), -1024.0, 3071.0);
          out[v] = static_cast<std::int16_t>(h);
        }
    }
  }
  progress.update(1.0, "noise");
  return ct;
}

}  // namespace detail
}  // namespace isoline::phantoms
