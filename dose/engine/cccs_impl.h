// Shared math of the CCCS engine, used by the CPU (cccs_cpu.cpp) and the CUDA (cccs_cuda.cu)
// implementations. Plain structs and inline host/device functions only.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define ISO_HD __host__ __device__ inline
#else
#define ISO_HD inline
#endif

namespace isoline::dose::impl {

constexpr int kMaxEnergies = 32;
constexpr int kDensityBins = 1201;      ///< density quantised in steps of 1/200 up to 6.0
constexpr float kDensityScale = 200.0f;

/// A rectangular part of the full grid ("box"): voxels [lo, lo + n) of each index axis.
struct Box {
  int lo[3];
  int n[3];
};

ISO_HD int box_count(const Box& b) { return b.n[0] * b.n[1] * b.n[2]; }

/// Geometry of the full grid in the form the kernels need.
struct GridGeom {
  float origin[3];
  float axis[3][3];  ///< axis[a] = unit vector of index axis a in LPS
  float spacing[3];  ///< mm
};

ISO_HD void voxel_world(const GridGeom& g, float i, float j, float k, float out[3]) {
  for (int c = 0; c < 3; ++c)
    out[c] = g.origin[c] + g.axis[0][c] * g.spacing[0] * i + g.axis[1][c] * g.spacing[1] * j +
             g.axis[2][c] * g.spacing[2] * k;
}

/// A beam's frame: BLD axes in LPS (ez points from the isocentre to the source).
struct BeamFrame {
  float iso[3];
  float source[3];
  float ex[3], ey[3], ez[3];
  float sad;  ///< mm
};

/// Spectrum for TERMA.
struct Spectrum {
  int n;
  float weight[kMaxEnergies];   ///< relative energy fluence
  float mu_rho[kMaxEnergies];   ///< water mass attenuation, cm^2/g
  float en_ratio[kMaxEnergies]; ///< mu_en / mu of water (fraction of TERMA that is collision kerma)
  float kerma_ratio0;           ///< spectrum-weighted mu_en/mu at zero depth
  float fp_kernel;              ///< fraction of the kernel's energy in its A (short-range) component
};

/// Fluence in the isocentre plane on a regular raster (bilinear lookup), zero outside.
struct FluencePlane {
  float u0, v0;  ///< centre of pixel (0, 0), mm
  float du;      ///< pixel size, mm (square pixels)
  int nu, nv;
  const float* data;
};

ISO_HD float fluence_at(const FluencePlane& p, float u, float v) {
  float fu = (u - p.u0) / p.du, fv = (v - p.v0) / p.du;
  if (fu < 0.f || fv < 0.f || fu > p.nu - 1.f || fv > p.nv - 1.f) return 0.f;
  int iu = static_cast<int>(fu), iv = static_cast<int>(fv);
  if (iu >= p.nu - 1) iu = p.nu - 2;
  if (iv >= p.nv - 1) iv = p.nv - 2;
  float tu = fu - iu, tv = fv - iv;
  const float* r0 = p.data + static_cast<long>(iv) * p.nu + iu;
  const float* r1 = r0 + p.nu;
  return (1 - tv) * ((1 - tu) * r0[0] + tu * r0[1]) + tv * ((1 - tu) * r1[0] + tu * r1[1]);
}

/// Beam coordinates of a world point: projection (u, v) onto the isocentre plane (mm) and the
/// distance to the source (mm). Returns false when the point is behind the source.
ISO_HD bool project(const BeamFrame& f, const float p[3], float& u, float& v, float& dist) {
  float r[3] = {p[0] - f.iso[0], p[1] - f.iso[1], p[2] - f.iso[2]};
  float xb = r[0] * f.ex[0] + r[1] * f.ex[1] + r[2] * f.ex[2];
  float yb = r[0] * f.ey[0] + r[1] * f.ey[1] + r[2] * f.ey[2];
  float zb = r[0] * f.ez[0] + r[1] * f.ez[1] + r[2] * f.ez[2];
  float along = f.sad - zb;
  if (along <= 1.0f) return false;
  u = xb * f.sad / along;
  v = yb * f.sad / along;
  float d[3] = {p[0] - f.source[0], p[1] - f.source[1], p[2] - f.source[2]};
  dist = sqrtf(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
  return true;
}

/// Radiological path (g/cm^2, relative electron density x cm) from the centre of box voxel
/// (i, j, k) towards the source, sampling the box's density (nearest voxel) every `step_mm`.
/// Outside the box the medium is taken as air (zero).
ISO_HD float radiological_depth(const Box& b, const float* density, const float src_idx[3], int i,
                                int j, int k, const float spacing[3], float step_mm) {
  float d[3] = {src_idx[0] - i, src_idx[1] - j, src_idx[2] - k};  // index units
  float len_mm = sqrtf(d[0] * d[0] * spacing[0] * spacing[0] + d[1] * d[1] * spacing[1] * spacing[1] +
                       d[2] * d[2] * spacing[2] * spacing[2]);
  if (len_mm <= 0.f) return 0.f;
  float nsteps_f = len_mm / step_mm;
  float s[3] = {d[0] / nsteps_f, d[1] / nsteps_f, d[2] / nsteps_f};  // index step
  float x = i + 0.5f * s[0], y = j + 0.5f * s[1], z = k + 0.5f * s[2];
  float acc = 0.f;
  // first half step inside the voxel itself
  acc += 0.5f * density[(static_cast<long>(k) * b.n[1] + j) * b.n[0] + i];
  x += 0.5f * s[0];
  y += 0.5f * s[1];
  z += 0.5f * s[2];
  int nmax = static_cast<int>(nsteps_f) + 1;
  for (int n = 0; n < nmax; ++n) {
    int ix = static_cast<int>(floorf(x + 0.5f)), iy = static_cast<int>(floorf(y + 0.5f)),
        iz = static_cast<int>(floorf(z + 0.5f));
    if (ix < 0 || iy < 0 || iz < 0 || ix >= b.n[0] || iy >= b.n[1] || iz >= b.n[2]) break;
    acc += density[(static_cast<long>(iz) * b.n[1] + iy) * b.n[0] + ix];
    x += s[0];
    y += s[1];
    z += s[2];
  }
  return acc * step_mm * 0.1f;  // mm -> cm
}

/// Unit TERMA (per unit energy fluence at the isocentre on the axis, before the fluence shape):
/// inverse square times the spectrum-weighted mu/rho * exp(-mu/rho * d) (beam hardening).
ISO_HD float unit_terma(const Spectrum& sp, float dist_mm, float sad_mm, float drad, float* kerma_ratio = nullptr) {
  float t = 0.f, kc = 0.f;
  for (int e = 0; e < sp.n; ++e) {
    float te = sp.weight[e] * sp.mu_rho[e] * expf(-sp.mu_rho[e] * drad);
    t += te;
    kc += te * sp.en_ratio[e];
  }
  if (kerma_ratio) *kerma_ratio = t > 0.f ? kc / t : sp.kerma_ratio0;
  float isq = sad_mm / dist_mm;
  return t * isq * isq;
}

/// Splits TERMA between the kernel components (KERMA-TERMA split with local beam hardening):
/// the short-range (primary) component A receives the collision kerma of the local spectrum,
/// T mu_en/mu, the long-range (scatter) component B the rest; each component's kernel shape is
/// kept (energy is conserved: TA fp + TB (1 - fp) = T, fp = the kernel's A share).
ISO_HD void split_terma(const Spectrum& sp, float T, float kerma_ratio, float& TA, float& TB) {
  float r = kerma_ratio / sp.fp_kernel;
  float fp = sp.fp_kernel;
  if (r * fp > 0.98f) r = 0.98f / fp;
  TA = T * r;
  TB = T * (1.f - fp * r) / (1.f - fp);
}

/// One collapsed-cone direction traversed through the box by parallel lines that step one
/// voxel along the dominant index axis; every voxel is visited by exactly one line. The other
/// two axes are the "inner" one (smaller memory stride) and the "outer" one.
struct Direction {
  int axis;        ///< dominant index axis
  int sign;        ///< +1 / -1 along the dominant axis
  int ai, ao;      ///< inner and outer index axes
  float ti, to;    ///< index increments of the inner / outer axis per step
  float step_cm;   ///< geometric path per step
};

/// Per-direction lookup tables over quantised density: for component c (0 = A, 1 = B):
/// lut[(c * 4 + f) * kDensityBins + q] with f = 0 transmission e^{-k dp}, 1 deposit of the
/// incoming radiant energy per mass, 2 self-deposit per unit TERMA, 3 carry-out per unit TERMA.
constexpr int kLutPerDirection = 8 * kDensityBins;

ISO_HD void fill_lut_entry(float* lut, int q, float A, float a, float B, float b, float step_cm) {
  float rho = q / kDensityScale;
  float dp = rho * step_cm;
  float K[2] = {A, B}, k[2] = {a, b};
  for (int c = 0; c < 2; ++c) {
    float x = k[c] * dp;
    float e = expf(-x);
    float one_minus_e = -expm1f(-x);
    float dep_in, self, carry;
    if (x < 1e-6f) {
      dep_in = k[c];
      self = K[c] / k[c] * (0.5f * x);
      carry = K[c] / (k[c] * k[c]) * x;
    } else {
      dep_in = one_minus_e / dp;
      self = K[c] / k[c] * (1.f - one_minus_e / x);
      carry = K[c] / (k[c] * k[c]) * one_minus_e;
    }
    lut[(c * 4 + 0) * kDensityBins + q] = e;
    lut[(c * 4 + 1) * kDensityBins + q] = dep_in;
    lut[(c * 4 + 2) * kDensityBins + q] = self;
    lut[(c * 4 + 3) * kDensityBins + q] = carry;
  }
}

/// Range of line offsets (inner, outer) for a direction over a box: the voxel a line with
/// offsets (oi, oo) visits at step s is inner = oi + round(s ti), outer = oo + round(s to).
ISO_HD void line_range(const Direction& d, const Box& b, int& lo_i, int& n_i, int& lo_o, int& n_o) {
  int nk = b.n[d.axis];
  int si = static_cast<int>(floorf((nk - 1) * d.ti + 0.5f));
  int so = static_cast<int>(floorf((nk - 1) * d.to + 0.5f));
  lo_i = si > 0 ? -si : 0;
  n_i = b.n[d.ai] + (si > 0 ? si : -si);
  lo_o = so > 0 ? -so : 0;
  n_o = b.n[d.ao] + (so > 0 ? so : -so);
}

/// The recursion of one step (Ahnesjo 1989, analytic within a voxel): deposits this
/// direction's dose in the voxel and updates the radiant energies RA, RB carried forward.
/// TA, TB: TERMA released into the short-range (A) and long-range (B) kernel components.
ISO_HD void cone_step(const float* lut, int qi, float TA, float TB, float& RA, float& RB, float& dose) {
  dose += RA * lut[kDensityBins + qi] + RB * lut[5 * kDensityBins + qi] + TA * lut[2 * kDensityBins + qi] +
          TB * lut[6 * kDensityBins + qi];
  RA = RA * lut[qi] + TA * lut[3 * kDensityBins + qi];
  RB = RB * lut[4 * kDensityBins + qi] + TB * lut[7 * kDensityBins + qi];
}

/// Transports one line (GPU path: one thread per line).
ISO_HD void transport_line(const Direction& d, const Box& b, int oi, int oo, const std::uint16_t* q,
                           const float* ta, const float* tb, const float* lut, float* dose) {
  int nk = b.n[d.axis];
  long stride[3] = {1, b.n[0], static_cast<long>(b.n[0]) * b.n[1]};
  float RA = 0.f, RB = 0.f;
  bool started = false;
  for (int s = 0; s < nk; ++s) {
    int ci = oi + static_cast<int>(floorf(s * d.ti + 0.5f));
    int co = oo + static_cast<int>(floorf(s * d.to + 0.5f));
    if (ci < 0 || co < 0 || ci >= b.n[d.ai] || co >= b.n[d.ao]) {
      if (started) break;  // lines are straight: once out, out for good
      continue;
    }
    started = true;
    int ck = d.sign > 0 ? s : nk - 1 - s;
    long idx = ck * stride[d.axis] + ci * stride[d.ai] + co * stride[d.ao];
    float TA = ta[idx], TB = tb[idx];
    if (RA == 0.f && RB == 0.f && TA == 0.f && TB == 0.f) continue;
    float dd = 0.f;
    cone_step(lut, q[idx], TA, TB, RA, RB, dd);
    dose[idx] += dd;
  }
}

/// Transports all lines with outer offset `oo` together (CPU path: at every step the lines'
/// voxels form one contiguous run along the inner axis). RA, RB: scratch of n_i floats.
/// `s_begin`: first step to process (the caller knows there is no TERMA before it).
inline void transport_sheet(const Direction& d, const Box& b, int lo_i, int n_i, int oo,
                            const std::uint16_t* q, const float* ta, const float* tb,
                            const float* lut, float* dose, float* RA, float* RB, int s_begin = 0) {
  int nk = b.n[d.axis];
  long stride[3] = {1, b.n[0], static_cast<long>(b.n[0]) * b.n[1]};
  for (int l = 0; l < n_i; ++l) RA[l] = RB[l] = 0.f;
  const long si = stride[d.ai];
  for (int s = s_begin; s < nk; ++s) {
    int shift_i = static_cast<int>(floorf(s * d.ti + 0.5f));
    int co = oo + static_cast<int>(floorf(s * d.to + 0.5f));
    if (co < 0 || co >= b.n[d.ao]) continue;
    int ck = d.sign > 0 ? s : nk - 1 - s;
    // lines l (offset oi = lo_i + l) visit inner index ci = oi + shift_i in [0, n)
    int l0 = -shift_i - lo_i, l1 = b.n[d.ai] - shift_i - lo_i;  // [l0, l1)
    if (l0 < 0) l0 = 0;
    if (l1 > n_i) l1 = n_i;
    long base = ck * stride[d.axis] + co * stride[d.ao] + static_cast<long>(lo_i + shift_i) * si;
    for (int l = l0; l < l1; ++l) {
      long idx = base + l * si;
      float TA = ta[idx], TB = tb[idx];
      float ra = RA[l], rb = RB[l];
      if (ra == 0.f && rb == 0.f && TA == 0.f && TB == 0.f) continue;
      float dd = 0.f;
      cone_step(lut, q[idx], TA, TB, ra, rb, dd);
      dose[idx] += dd;
      RA[l] = ra;
      RB[l] = rb;
    }
  }
}

}  // namespace isoline::dose::impl
