#include "isoline/phantoms/shapes.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "isoline/core/error.h"

namespace isoline::phantoms {

namespace {

constexpr double kPi = 3.14159265358979323846;
const double kNaN = std::numeric_limits<double>::quiet_NaN();

/// Gauss-Legendre nodes and weights on [-1, 1] (Newton iteration on P_n).
struct GaussLegendre {
  std::vector<double> x, w;
  explicit GaussLegendre(int n) : x(n), w(n) {
    for (int i = 0; i < n; ++i) {
      double z = std::cos(kPi * (i + 0.75) / (n + 0.5));
      double pp = 0;
      for (int it = 0; it < 100; ++it) {
        double p1 = 1, p2 = 0;
        for (int j = 1; j <= n; ++j) {
          const double p3 = p2;
          p2 = p1;
          p1 = ((2.0 * j - 1.0) * z * p2 - (j - 1.0) * p3) / j;
        }
        pp = n * (z * p1 - p2) / (z * z - 1.0);
        const double z1 = z;
        z = z1 - p1 / pp;
        if (std::abs(z - z1) < 1e-15) break;
      }
      x[i] = z;
      w[i] = 2.0 / ((1.0 - z * z) * pp * pp);
    }
  }
};

const GaussLegendre& gauss(int n) {
  static const GaussLegendre g20(20), g96(96);
  return n == 20 ? g20 : g96;
}

/// Integral over the unit sphere of f(u) (u a unit vector): Gauss-Legendre in cos(theta),
/// trapezoid (spectrally accurate for periodic integrands) in phi.
template <class F>
double sphere_integral(F&& f) {
  const auto& g = gauss(96);
  const int nphi = 192;
  double sum = 0;
  for (std::size_t i = 0; i < g.x.size(); ++i) {
    const double mu = g.x[i], s = std::sqrt(1 - mu * mu);
    double ring = 0;
    for (int k = 0; k < nphi; ++k) {
      const double phi = 2 * kPi * k / nphi;
      ring += f(Vec3{s * std::cos(phi), s * std::sin(phi), mu});
    }
    sum += g.w[i] * ring * (2 * kPi / nphi);
  }
  return sum;
}

Vec3 mat_vec(const Mat3& m, const Vec3& v) {
  return {m[0] * v[0] + m[1] * v[1] + m[2] * v[2], m[3] * v[0] + m[4] * v[1] + m[5] * v[2],
          m[6] * v[0] + m[7] * v[1] + m[8] * v[2]};
}
Vec3 mat_t_vec(const Mat3& m, const Vec3& v) {
  return {m[0] * v[0] + m[3] * v[1] + m[6] * v[2], m[1] * v[0] + m[4] * v[1] + m[7] * v[2],
          m[2] * v[0] + m[5] * v[1] + m[8] * v[2]};
}

Box3 rotated_box_bounds(const Vec3& c, const Vec3& r, const Mat3& rot, bool ellipsoidal) {
  Box3 b;
  for (int k = 0; k < 3; ++k) {
    double e = 0;
    if (ellipsoidal) {
      for (int i = 0; i < 3; ++i) e += (rot[k * 3 + i] * r[i]) * (rot[k * 3 + i] * r[i]);
      e = std::sqrt(e);
    } else {
      for (int i = 0; i < 3; ++i) e += std::abs(rot[k * 3 + i]) * r[i];
    }
    b.lo[k] = c[k] - e;
    b.hi[k] = c[k] + e;
  }
  return b;
}

void check_positive(double v, const char* what) {
  if (!(v > 0) || !std::isfinite(v))
    core::fail<core::InvalidInput>("phantom shape", what, "must be positive and finite");
}

/// Monotone cubic (Fritsch-Carlson) slopes for samples (x, y).
std::vector<double> pchip_slopes(const std::vector<double>& x, const std::vector<double>& y) {
  const std::size_t n = x.size();
  std::vector<double> d(n, 0.0), delta(n - 1);
  for (std::size_t k = 0; k + 1 < n; ++k) delta[k] = (y[k + 1] - y[k]) / (x[k + 1] - x[k]);
  if (n == 2) {
    d[0] = d[1] = delta[0];
    return d;
  }
  for (std::size_t k = 1; k + 1 < n; ++k) {
    if (delta[k - 1] * delta[k] <= 0) {
      d[k] = 0;
    } else {
      const double h0 = x[k] - x[k - 1], h1 = x[k + 1] - x[k];
      const double w1 = 2 * h1 + h0, w2 = h1 + 2 * h0;
      d[k] = (w1 + w2) / (w1 / delta[k - 1] + w2 / delta[k]);
    }
  }
  // End slopes: zero keeps ends flat (no overshoot), which suits anatomical profiles.
  d[0] = 0;
  d[n - 1] = 0;
  return d;
}

}  // namespace

Mat3 rotation_x(double t) {
  const double c = std::cos(t), s = std::sin(t);
  return {1, 0, 0, 0, c, -s, 0, s, c};
}
Mat3 rotation_y(double t) {
  const double c = std::cos(t), s = std::sin(t);
  return {c, 0, s, 0, 1, 0, -s, 0, c};
}
Mat3 rotation_z(double t) {
  const double c = std::cos(t), s = std::sin(t);
  return {c, -s, 0, s, c, 0, 0, 0, 1};
}
Mat3 multiply(const Mat3& a, const Mat3& b) {
  Mat3 m{};
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c)
      for (int k = 0; k < 3; ++k) m[r * 3 + c] += a[r * 3 + k] * b[k * 3 + c];
  return m;
}

double superellipse_area(double a, double b, double n) {
  const double g = std::tgamma(1.0 + 1.0 / n);
  return 4.0 * a * b * g * g / std::tgamma(1.0 + 2.0 / n);
}

// ---------------------------------------------------------------------------------------
// Ellipsoid

Ellipsoid::Ellipsoid(const Vec3& centre, const Vec3& semi_axes, const Mat3& rotation)
    : c_(centre), r_(semi_axes), rot_(rotation) {
  for (double v : r_) check_positive(v, "ellipsoid semi-axis");
  // q = R diag(1/r^2) R^T
  q_ = Mat3{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 3; ++k) q_[i * 3 + j] += rot_[i * 3 + k] * rot_[j * 3 + k] / (r_[k] * r_[k]);
}

Vec3 Ellipsoid::to_local(const Vec3& p) const {
  return mat_t_vec(rot_, {p[0] - c_[0], p[1] - c_[1], p[2] - c_[2]});
}

bool Ellipsoid::inside(const Vec3& p) const {
  const Vec3 d{p[0] - c_[0], p[1] - c_[1], p[2] - c_[2]};
  const Vec3 qd = mat_vec(q_, d);
  return d[0] * qd[0] + d[1] * qd[1] + d[2] * qd[2] <= 1.0;
}

Box3 Ellipsoid::bounds() const { return rotated_box_bounds(c_, r_, rot_, true); }

double Ellipsoid::volume_mm3() const { return 4.0 / 3.0 * kPi * r_[0] * r_[1] * r_[2]; }

bool Ellipsoid::x_spans(double y, double z, std::vector<Interval>& out) const {
  const double dy = y - c_[1], dz = z - c_[2];
  // q00 dx^2 + 2 (q01 dy + q02 dz) dx + (q11 dy^2 + 2 q12 dy dz + q22 dz^2) - 1 <= 0
  const double A = q_[0];
  const double B = q_[1] * dy + q_[2] * dz;
  const double C = q_[4] * dy * dy + 2 * q_[5] * dy * dz + q_[8] * dz * dz - 1.0;
  const double disc = B * B - A * C;
  if (disc < 0) return true;
  const double s = std::sqrt(disc);
  out.push_back({c_[0] + (-B - s) / A, c_[0] + (-B + s) / A});
  return true;
}

double Ellipsoid::distance(const Vec3& p) const {
  const Vec3 l = to_local(p);
  double s = 0;
  for (int i = 0; i < 3; ++i) s += (l[i] / r_[i]) * (l[i] / r_[i]);
  if (s <= 1.0) return 0.0;
  // Closest point x_i = r_i^2 y_i / (t + r_i^2) with t > 0 the root of
  // F(t) = sum (r_i y_i / (t + r_i^2))^2 - 1 (decreasing). Bisection on [0, t_hi].
  const Vec3 y{std::abs(l[0]), std::abs(l[1]), std::abs(l[2])};
  double hi = 0;
  for (int i = 0; i < 3; ++i) hi += r_[i] * r_[i] * y[i] * y[i];
  hi = std::sqrt(hi);
  double lo = 0;
  for (int it = 0; it < 200 && hi - lo > 1e-12 * (1 + hi); ++it) {
    const double t = 0.5 * (lo + hi);
    double f = -1;
    for (int i = 0; i < 3; ++i) {
      const double v = r_[i] * y[i] / (t + r_[i] * r_[i]);
      f += v * v;
    }
    (f > 0 ? lo : hi) = t;
  }
  const double t = 0.5 * (lo + hi);
  double d2 = 0;
  for (int i = 0; i < 3; ++i) {
    const double x = r_[i] * r_[i] * y[i] / (t + r_[i] * r_[i]);
    d2 += (y[i] - x) * (y[i] - x);
  }
  return std::sqrt(d2);
}

double Ellipsoid::surface_area_mm2() const {
  // Gauss curvature at the point with normal u is h(u)^4 / (abc)^2, h the support function:
  // S = integral over the sphere of (abc)^2 / h^4.
  const double abc = r_[0] * r_[1] * r_[2];
  return sphere_integral([&](const Vec3& u) {
    double h2 = 0;
    for (int i = 0; i < 3; ++i) h2 += r_[i] * r_[i] * u[i] * u[i];
    return abc * abc / (h2 * h2);
  });
}

double Ellipsoid::mean_curvature_integral_mm() const {
  return sphere_integral([&](const Vec3& u) {
    double h2 = 0;
    for (int i = 0; i < 3; ++i) h2 += r_[i] * r_[i] * u[i] * u[i];
    return std::sqrt(h2);
  });
}

Vec3 Ellipsoid::support_point(const Vec3& n_world) const {
  const Vec3 n = mat_t_vec(rot_, n_world);
  double h2 = 0;
  for (int i = 0; i < 3; ++i) h2 += r_[i] * r_[i] * n[i] * n[i];
  const double h = std::sqrt(h2);
  Vec3 x;
  for (int i = 0; i < 3; ++i) x[i] = r_[i] * r_[i] * n[i] / h;
  const Vec3 w = mat_vec(rot_, x);
  return {c_[0] + w[0], c_[1] + w[1], c_[2] + w[2]};
}

// ---------------------------------------------------------------------------------------
// EllipsoidMargin

EllipsoidMargin::EllipsoidMargin(std::shared_ptr<const Ellipsoid> base, double margin_mm)
    : base_(std::move(base)), m_(margin_mm) {
  if (!(m_ >= 0) || !std::isfinite(m_))
    core::fail<core::InvalidInput>("phantom shape", "margin", "must be >= 0 and finite");
}

bool EllipsoidMargin::inside(const Vec3& p) const {
  if (base_->inside(p)) return true;
  return base_->distance(p) <= m_;
}

Box3 EllipsoidMargin::bounds() const {
  Box3 b = base_->bounds();
  for (int k = 0; k < 3; ++k) {
    b.lo[k] -= m_;
    b.hi[k] += m_;
  }
  return b;
}

double EllipsoidMargin::volume_mm3() const {
  return base_->volume_mm3() + base_->surface_area_mm2() * m_ +
         base_->mean_curvature_integral_mm() * m_ * m_ + 4.0 / 3.0 * kPi * m_ * m_ * m_;
}

// ---------------------------------------------------------------------------------------
// Superellipsoid

Superellipsoid::Superellipsoid(const Vec3& centre, const Vec3& semi_axes, double e1, double e2,
                               const Mat3& rotation)
    : c_(centre), r_(semi_axes), e1_(e1), e2_(e2), rot_(rotation) {
  for (double v : r_) check_positive(v, "superellipsoid semi-axis");
  check_positive(e1, "superellipsoid exponent e1");
  check_positive(e2, "superellipsoid exponent e2");
}

bool Superellipsoid::inside(const Vec3& p) const {
  const Vec3 l = mat_t_vec(rot_, {p[0] - c_[0], p[1] - c_[1], p[2] - c_[2]});
  const double x = std::abs(l[0] / r_[0]), y = std::abs(l[1] / r_[1]), z = std::abs(l[2] / r_[2]);
  if (x > 1 || y > 1 || z > 1) return false;
  const double xy = std::pow(x, 2 / e2_) + std::pow(y, 2 / e2_);
  return std::pow(xy, e2_ / e1_) + std::pow(z, 2 / e1_) <= 1.0;
}

Box3 Superellipsoid::bounds() const { return rotated_box_bounds(c_, r_, rot_, false); }

double Superellipsoid::volume_mm3() const {
  // Section at height z: superellipse (exponent 2/e2) of area A2 w^e1, w = 1 - |z/c|^(2/e1);
  // integral_{-c}^{c} w^e1 dz = 2 c Gamma(1+e1/2) Gamma(1+e1) / Gamma(1+3 e1/2).
  const double a2 = superellipse_area(r_[0], r_[1], 2.0 / e2_);
  return 2.0 * r_[2] * a2 * std::tgamma(1 + e1_ / 2) * std::tgamma(1 + e1_) /
         std::tgamma(1 + 1.5 * e1_);
}

// ---------------------------------------------------------------------------------------
// LoftedTube

double Section::area() const {
  // Each half is half a superellipse.
  return 0.5 * superellipse_area(a, b_ant, n_ant) + 0.5 * superellipse_area(a, b_post, n_post);
}

namespace {
std::array<double, 7> params(const Section& s) {
  return {s.cx, s.cy, s.a, s.b_ant, s.b_post, s.n_ant, s.n_post};
}
Section from_params(const std::array<double, 7>& p) {
  return {p[0], p[1], p[2], p[3], p[4], p[5], p[6]};
}
}  // namespace

LoftedTube::LoftedTube(std::vector<Key> keys, double dome_bottom_mm, double dome_top_mm)
    : keys_(std::move(keys)), dome_bot_(dome_bottom_mm), dome_top_(dome_top_mm) {
  if (keys_.size() < 2)
    core::fail<core::InvalidInput>("phantom shape", "lofted tube", "needs at least 2 keys");
  for (std::size_t k = 0; k < keys_.size(); ++k) {
    const Section& s = keys_[k].s;
    check_positive(s.a, "tube half-width");
    check_positive(s.b_ant, "tube anterior extent");
    check_positive(s.b_post, "tube posterior extent");
    check_positive(s.n_ant, "tube exponent");
    check_positive(s.n_post, "tube exponent");
    if (k > 0 && !(keys_[k].z > keys_[k - 1].z))
      core::fail<core::InvalidInput>("phantom shape", "lofted tube", "keys must increase in z");
  }
  if (dome_bot_ < 0 || dome_top_ < 0)
    core::fail<core::InvalidInput>("phantom shape", "lofted tube", "dome heights must be >= 0");
  std::vector<double> z(keys_.size());
  for (std::size_t k = 0; k < keys_.size(); ++k) z[k] = keys_[k].z;
  slopes_.assign(keys_.size(), {});
  for (int p = 0; p < 7; ++p) {
    std::vector<double> y(keys_.size());
    for (std::size_t k = 0; k < keys_.size(); ++k) y[k] = params(keys_[k].s)[p];
    const auto d = pchip_slopes(z, y);
    for (std::size_t k = 0; k < keys_.size(); ++k) slopes_[k][p] = d[k];
  }
}

Section LoftedTube::interpolate(double z) const {
  std::size_t k = 0;
  while (k + 2 < keys_.size() && z > keys_[k + 1].z) ++k;
  const double h = keys_[k + 1].z - keys_[k].z;
  const double t = std::clamp((z - keys_[k].z) / h, 0.0, 1.0);
  const double t2 = t * t, t3 = t2 * t;
  const double h00 = 2 * t3 - 3 * t2 + 1, h10 = t3 - 2 * t2 + t, h01 = -2 * t3 + 3 * t2,
               h11 = t3 - t2;
  const auto p0 = params(keys_[k].s), p1 = params(keys_[k + 1].s);
  std::array<double, 7> p;
  for (int i = 0; i < 7; ++i)
    p[i] = h00 * p0[i] + h10 * h * slopes_[k][i] + h01 * p1[i] + h11 * h * slopes_[k + 1][i];
  return from_params(p);
}

bool LoftedTube::section_at(double z, Section& s) const {
  const double z0 = keys_.front().z, z1 = keys_.back().z;
  if (z >= z0 && z <= z1) {
    s = interpolate(z);
    return true;
  }
  double f = 0;
  if (z > z1 && dome_top_ > 0 && z <= z1 + dome_top_) {
    s = keys_.back().s;
    const double t = (z - z1) / dome_top_;
    f = std::sqrt(std::max(0.0, 1 - t * t));
  } else if (z < z0 && dome_bot_ > 0 && z >= z0 - dome_bot_) {
    s = keys_.front().s;
    const double t = (z0 - z) / dome_bot_;
    f = std::sqrt(std::max(0.0, 1 - t * t));
  } else {
    return false;
  }
  if (f <= 0) return false;
  s.a *= f;
  s.b_ant *= f;
  s.b_post *= f;
  return true;
}

bool LoftedTube::x_spans(double y, double z, std::vector<Interval>& out) const {
  Section s;
  if (!section_at(z, s)) return true;
  const double dy = y - s.cy;
  const double b = dy < 0 ? s.b_ant : s.b_post;
  const double n = dy < 0 ? s.n_ant : s.n_post;
  const double t = std::abs(dy) / b;
  if (t > 1.0) return true;
  const double half = s.a * std::pow(std::max(0.0, 1.0 - std::pow(t, n)), 1.0 / n);
  out.push_back({s.cx - half, s.cx + half});
  return true;
}

bool LoftedTube::inside(const Vec3& p) const {
  std::vector<Interval> iv;
  x_spans(p[1], p[2], iv);
  for (const auto& i : iv)
    if (p[0] >= i.lo && p[0] <= i.hi) return true;
  return false;
}

Box3 LoftedTube::bounds() const {
  Box3 b;
  b.lo = {std::numeric_limits<double>::max(), std::numeric_limits<double>::max(), z_min()};
  b.hi = {std::numeric_limits<double>::lowest(), std::numeric_limits<double>::lowest(), z_max()};
  // Sample densely (the Hermite interpolant can exceed the keys only slightly), then pad.
  const int n = 400;
  for (int i = 0; i <= n; ++i) {
    const double z = keys_.front().z + (keys_.back().z - keys_.front().z) * i / n;
    const Section s = interpolate(z);
    b.lo[0] = std::min(b.lo[0], s.cx - s.a);
    b.hi[0] = std::max(b.hi[0], s.cx + s.a);
    b.lo[1] = std::min(b.lo[1], s.cy - s.b_ant);
    b.hi[1] = std::max(b.hi[1], s.cy + s.b_post);
  }
  for (int k = 0; k < 2; ++k) {
    b.lo[k] -= 1.0;
    b.hi[k] += 1.0;
  }
  return b;
}

double LoftedTube::volume_mm3() const { return volume_between(z_min(), z_max()); }

double LoftedTube::volume_between(double za, double zb) const {
  const auto& g = gauss(20);
  double v = 0;
  for (std::size_t k = 0; k + 1 < keys_.size(); ++k) {
    const double lo = std::max(za, keys_[k].z), hi = std::min(zb, keys_[k + 1].z);
    if (!(hi > lo)) continue;
    const int sub = 8;
    const double h = (hi - lo) / sub;
    for (int s = 0; s < sub; ++s) {
      const double a = lo + s * h;
      for (std::size_t q = 0; q < g.x.size(); ++q)
        v += 0.5 * h * g.w[q] * interpolate(a + 0.5 * h * (g.x[q] + 1)).area();
    }
  }
  // Domes: area A (1 - t^2), t = distance from the end key / dome height.
  auto dome = [](double area, double h, double t0, double t1) {
    // integral over t in [t0, t1] (0 <= t0 <= t1 <= 1) of A (1 - t^2) h dt
    return area * h * ((t1 - t0) - (t1 * t1 * t1 - t0 * t0 * t0) / 3.0);
  };
  if (dome_top_ > 0) {
    const double z1 = keys_.back().z;
    const double t0 = std::clamp((za - z1) / dome_top_, 0.0, 1.0);
    const double t1 = std::clamp((zb - z1) / dome_top_, 0.0, 1.0);
    if (t1 > t0) v += dome(keys_.back().s.area(), dome_top_, t0, t1);
  }
  if (dome_bot_ > 0) {
    const double z0 = keys_.front().z;
    const double t0 = std::clamp((z0 - zb) / dome_bot_, 0.0, 1.0);
    const double t1 = std::clamp((z0 - za) / dome_bot_, 0.0, 1.0);
    if (t1 > t0) v += dome(keys_.front().s.area(), dome_bot_, t0, t1);
  }
  return v;
}

// ---------------------------------------------------------------------------------------
// Arch

Arch::Arch(double cx, double cy, double a_outer, double b_outer, double a_inner, double b_inner,
           double z0, double z1)
    : cx_(cx), cy_(cy), a1_(a_outer), b1_(b_outer), a2_(a_inner), b2_(b_inner), z0_(z0), z1_(z1) {
  check_positive(a1_ - a2_, "arch thickness (x)");
  check_positive(b1_ - b2_, "arch thickness (y)");
  check_positive(a2_, "arch inner half-width");
  check_positive(b2_, "arch inner depth");
  check_positive(z1_ - z0_, "arch height");
}

bool Arch::x_spans(double y, double z, std::vector<Interval>& out) const {
  if (z < z0_ || z > z1_) return true;
  const double dy = y - cy_;
  if (dy > 0 || -dy > b1_) return true;
  const double h1 = a1_ * std::sqrt(std::max(0.0, 1 - (dy / b1_) * (dy / b1_)));
  if (-dy < b2_) {
    const double h2 = a2_ * std::sqrt(std::max(0.0, 1 - (dy / b2_) * (dy / b2_)));
    out.push_back({cx_ - h1, cx_ - h2});
    out.push_back({cx_ + h2, cx_ + h1});
  } else {
    out.push_back({cx_ - h1, cx_ + h1});
  }
  return true;
}

bool Arch::inside(const Vec3& p) const {
  std::vector<Interval> iv;
  x_spans(p[1], p[2], iv);
  for (const auto& i : iv)
    if (p[0] >= i.lo && p[0] <= i.hi) return true;
  return false;
}

Box3 Arch::bounds() const { return {{cx_ - a1_, cy_ - b1_, z0_}, {cx_ + a1_, cy_, z1_}}; }

double Arch::volume_mm3() const { return 0.5 * kPi * (a1_ * b1_ - a2_ * b2_) * (z1_ - z0_); }

// ---------------------------------------------------------------------------------------
// AxisBox, AnnularSector

AxisBox::AxisBox(const Vec3& lo, const Vec3& hi) : lo_(lo), hi_(hi) {
  for (int k = 0; k < 3; ++k) check_positive(hi[k] - lo[k], "box side");
}
bool AxisBox::inside(const Vec3& p) const {
  for (int k = 0; k < 3; ++k)
    if (p[k] < lo_[k] || p[k] > hi_[k]) return false;
  return true;
}
double AxisBox::volume_mm3() const {
  return (hi_[0] - lo_[0]) * (hi_[1] - lo_[1]) * (hi_[2] - lo_[2]);
}
bool AxisBox::x_spans(double y, double z, std::vector<Interval>& out) const {
  if (y >= lo_[1] && y <= hi_[1] && z >= lo_[2] && z <= hi_[2]) out.push_back({lo_[0], hi_[0]});
  return true;
}

AnnularSector::AnnularSector(double cx, double cy, double r0, double r1, double z0, double z1,
                             double gap_direction, double gap_half_angle)
    : cx_(cx), cy_(cy), r0_(r0), r1_(r1), z0_(z0), z1_(z1), gap_dir_(gap_direction),
      gap_half_(gap_half_angle) {
  check_positive(r1 - r0, "annulus thickness");
  check_positive(z1 - z0, "annulus length");
  if (r0 < 0 || gap_half_angle < 0 || gap_half_angle >= kPi)
    core::fail<core::InvalidInput>("phantom shape", "annular sector", "invalid radius or gap");
}
bool AnnularSector::inside(const Vec3& p) const {
  if (p[2] < z0_ || p[2] > z1_) return false;
  const double dx = p[0] - cx_, dy = p[1] - cy_;
  const double r2 = dx * dx + dy * dy;
  if (r2 < r0_ * r0_ || r2 > r1_ * r1_) return false;
  double d = std::atan2(dy, dx) - gap_dir_;
  d = std::remainder(d, 2 * kPi);
  return std::abs(d) >= gap_half_;
}
Box3 AnnularSector::bounds() const {
  return {{cx_ - r1_, cy_ - r1_, z0_}, {cx_ + r1_, cy_ + r1_, z1_}};
}
double AnnularSector::volume_mm3() const {
  return (kPi - gap_half_) * (r1_ * r1_ - r0_ * r0_) * (z1_ - z0_);
}

// ---------------------------------------------------------------------------------------
// Sheared, DisjointUnion, HalfSpaceClip

Sheared::Sheared(ShapePtr base, std::function<double(double, double)> gx,
                 std::function<double(double)> gz, double max_shift_mm)
    : base_(std::move(base)), gx_(std::move(gx)), gz_(std::move(gz)), max_shift_(max_shift_mm) {}

bool Sheared::inside(const Vec3& p) const {
  Vec3 u = p;
  if (gz_) u[2] = p[2] - gz_(p[1]);
  if (gx_) u[0] = p[0] - gx_(p[1], p[2]);
  return base_->inside(u);
}

Box3 Sheared::bounds() const {
  Box3 b = base_->bounds();
  for (int k : {0, 2}) {
    b.lo[k] -= max_shift_;
    b.hi[k] += max_shift_;
  }
  return b;
}

DisjointUnion::DisjointUnion(std::vector<ShapePtr> parts) : parts_(std::move(parts)) {}
bool DisjointUnion::inside(const Vec3& p) const {
  for (const auto& s : parts_)
    if (s->inside(p)) return true;
  return false;
}
Box3 DisjointUnion::bounds() const {
  Box3 b = parts_.front()->bounds();
  for (const auto& s : parts_) {
    const Box3 o = s->bounds();
    for (int k = 0; k < 3; ++k) {
      b.lo[k] = std::min(b.lo[k], o.lo[k]);
      b.hi[k] = std::max(b.hi[k], o.hi[k]);
    }
  }
  return b;
}
double DisjointUnion::volume_mm3() const {
  double v = 0;
  for (const auto& s : parts_) v += s->volume_mm3();
  return v;
}
bool DisjointUnion::x_spans(double y, double z, std::vector<Interval>& out) const {
  const std::size_t start = out.size();
  for (const auto& s : parts_)
    if (!s->x_spans(y, z, out)) {
      out.resize(start);
      return false;
    }
  return true;
}

HalfSpaceClip::HalfSpaceClip(ShapePtr base, const Vec3& normal, double d)
    : base_(std::move(base)), n_(normal), d_(d) {}
bool HalfSpaceClip::inside(const Vec3& p) const {
  return n_[0] * p[0] + n_[1] * p[1] + n_[2] * p[2] <= d_ && base_->inside(p);
}
double HalfSpaceClip::volume_mm3() const { return kNaN; }
bool HalfSpaceClip::x_spans(double y, double z, std::vector<Interval>& out) const {
  const std::size_t start = out.size();
  if (!base_->x_spans(y, z, out)) return false;
  const double rest = d_ - n_[1] * y - n_[2] * z;  // need n_x x <= rest
  std::size_t w = start;
  for (std::size_t i = start; i < out.size(); ++i) {
    Interval iv = out[i];
    if (n_[0] == 0) {
      if (rest < 0) continue;
    } else if (n_[0] > 0) {
      iv.hi = std::min(iv.hi, rest / n_[0]);
    } else {
      iv.lo = std::max(iv.lo, rest / n_[0]);
    }
    if (iv.lo <= iv.hi) out[w++] = iv;
  }
  out.resize(w);
  return true;
}

}  // namespace isoline::phantoms
