// Beam model, geometry and the per-beam driver of the CCCS engine (backend-independent parts).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <tuple>

#include "engine_internal.h"
#include "json_lite.h"

namespace isoline::dose {

namespace {
constexpr double kPi = 3.14159265358979323846;
double deg(double d) { return d * kPi / 180.0; }

[[noreturn]] void bad(const std::string& msg) { throw EngineError(EngineError::Input, msg); }

double interp(const std::vector<double>& x, const std::vector<double>& y, double v) {
  if (x.empty()) return 1.0;
  if (v <= x.front()) return y.front();
  if (v >= x.back()) return y.back();
  auto it = std::upper_bound(x.begin(), x.end(), v);
  std::size_t i = static_cast<std::size_t>(it - x.begin());
  double t = (v - x[i - 1]) / (x[i] - x[i - 1]);
  return y[i - 1] + t * (y[i] - y[i - 1]);
}
}  // namespace

// ------------------------------------------------------------------------------------------
// Grid

std::array<double, 3> Grid::index_to_world(double i, double j, double k) const {
  const double s[3] = {i * spacing[0], j * spacing[1], k * spacing[2]};
  std::array<double, 3> w{};
  for (int r = 0; r < 3; ++r)
    w[r] = origin[r] + direction[r * 3 + 0] * s[0] + direction[r * 3 + 1] * s[1] +
           direction[r * 3 + 2] * s[2];
  return w;
}

std::array<double, 3> Grid::world_to_index(const std::array<double, 3>& p) const {
  const double d[3] = {p[0] - origin[0], p[1] - origin[1], p[2] - origin[2]};
  std::array<double, 3> idx{};
  for (int a = 0; a < 3; ++a)  // direction is orthonormal: inverse = transpose
    idx[a] = (direction[0 * 3 + a] * d[0] + direction[1 * 3 + a] * d[1] + direction[2 * 3 + a] * d[2]) /
             spacing[a];
  return idx;
}

bool Grid::contains_world(const std::array<double, 3>& p) const {
  auto idx = world_to_index(p);
  for (int a = 0; a < 3; ++a)
    if (idx[a] < -0.5 || idx[a] > size[a] - 0.5) return false;
  return true;
}

// ------------------------------------------------------------------------------------------
// Machine

Machine parse_machine(const std::string& text, const std::string& src) {
  json::Value root = json::parse(text, src);
  Machine m;
  const std::string c = "read machine: " + src;
  if (root.has("name") && root.obj.at("name").type == json::Value::String) m.name = root.obj.at("name").str;
  m.sad_mm = root.get_number("sad_mm", 1000.0, c);
  const auto& sp = root.at("spectrum", c);
  m.energy_mev = sp.at("energy_mev", c).numbers(c + ": spectrum.energy_mev");
  m.energy_weight = sp.at("energy_fluence_weight", c).numbers(c + ": spectrum.energy_fluence_weight");
  m.mu_rho_water_cm2_g = sp.at("mu_rho_water_cm2_g", c).numbers(c + ": spectrum.mu_rho_water_cm2_g");
  m.mu_en_rho_water_cm2_g = sp.at("mu_en_rho_water_cm2_g", c).numbers(c + ": spectrum.mu_en_rho_water_cm2_g");
  const auto& k = root.at("kernel", c);
  const auto& bins = k.at("bins", c);
  if (bins.type != json::Value::Array) bad(c + ": kernel.bins must be an array");
  for (const auto& b : bins.arr) {
    KernelBin kb;
    auto th = b.at("theta_deg", c).numbers(c + ": kernel.bins.theta_deg");
    if (th.size() != 2) bad(c + ": kernel.bins.theta_deg must be [from, to]");
    kb.theta0_deg = th[0];
    kb.theta1_deg = th[1];
    kb.A = b.at("A", c).number(c);
    kb.a = b.at("a", c).number(c);
    kb.B = b.at("B", c).number(c);
    kb.b = b.at("b", c).number(c);
    m.kernel.push_back(kb);
  }
  const auto& fl = root.at("fluence", c);
  m.horn_radius_mm = fl.at("horn_radius_mm", c).numbers(c + ": fluence.horn_radius_mm");
  m.horn_factor = fl.at("horn_factor", c).numbers(c + ": fluence.horn_factor");
  m.source_sigma_mm = fl.get_number("source_sigma_mm", 1.5, c);
  m.jaw_transmission = fl.get_number("jaw_transmission", 0.005, c);
  m.max_jaw_mm = fl.get_number("max_jaw_mm", 200.0, c);
  const auto& hs = root.at("head_scatter", c);
  m.sc_field_cm = hs.at("field_cm", c).numbers(c + ": head_scatter.field_cm");
  m.sc_value = hs.at("sc", c).numbers(c + ": head_scatter.sc");
  if (root.has("calibration")) {
    const auto& cal = root.obj.at("calibration");
    m.reference_gy_per_mu = cal.get_number("gy_per_mu_at_dmax", 0.01, c);
    m.reference_field_cm = cal.get_number("field_cm", 10.0, c);
    m.reference_ssd_mm = cal.get_number("ssd_mm", 1000.0, c);
  }
  validate_machine(m, src);
  return m;
}

Machine load_machine(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw EngineError(EngineError::Io, "read machine: " + path + ": cannot open file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_machine(ss.str(), path);
}

void validate_machine(const Machine& m, const std::string& src) {
  const std::string c = "read machine: " + src + ": ";
  if (!(m.sad_mm > 100)) bad(c + "sad_mm must be > 100");
  if (m.energy_mev.empty() || m.energy_mev.size() != m.energy_weight.size() ||
      m.energy_mev.size() != m.mu_rho_water_cm2_g.size() ||
      m.energy_mev.size() != m.mu_en_rho_water_cm2_g.size())
    bad(c + "spectrum arrays must be non-empty and of equal length");
  if (static_cast<int>(m.energy_mev.size()) > impl::kMaxEnergies)
    bad(c + "at most " + std::to_string(impl::kMaxEnergies) + " spectrum bins");
  for (double w : m.energy_weight)
    if (!(w >= 0)) bad(c + "spectrum weights must be >= 0");
  if (m.kernel.empty()) bad(c + "kernel.bins is empty");
  double prev = 0;
  for (const auto& b : m.kernel) {
    if (std::abs(b.theta0_deg - prev) > 1e-6 || b.theta1_deg <= b.theta0_deg)
      bad(c + "kernel bins must tile 0..180 degrees in ascending order");
    if (!(b.a > 0 && b.b > 0 && b.A >= 0 && b.B >= 0)) bad(c + "kernel A, B >= 0 and a, b > 0 required");
    prev = b.theta1_deg;
  }
  if (std::abs(prev - 180.0) > 1e-6) bad(c + "kernel bins must end at 180 degrees");
  if (m.horn_radius_mm.size() != m.horn_factor.size() || m.horn_radius_mm.empty())
    bad(c + "fluence.horn_radius_mm and horn_factor must have equal, non-zero length");
  if (m.sc_field_cm.size() != m.sc_value.size() || m.sc_field_cm.empty())
    bad(c + "head_scatter.field_cm and sc must have equal, non-zero length");
  if (!(m.source_sigma_mm > 0)) bad(c + "fluence.source_sigma_mm must be > 0");
}

double head_scatter(const Machine& m, double eq_cm) {
  return interp(m.sc_field_cm, m.sc_value, eq_cm) / interp(m.sc_field_cm, m.sc_value, 10.0);
}

// ------------------------------------------------------------------------------------------
// Plan checks

void validate_beams(const std::vector<Beam>& beams, const Machine& m, const Grid& grid) {
  if (beams.empty()) bad("compute dose: plan: the plan has no beams");
  for (std::size_t i = 0; i < beams.size(); ++i) {
    const Beam& b = beams[i];
    const std::string who = "compute dose: beam " + std::to_string(i + 1) +
                            (b.name.empty() ? "" : " (" + b.name + ")") + ": ";
    if (!std::isfinite(b.mu) || b.mu < 0)
      bad(who + "monitor units must be >= 0 (got " + std::to_string(b.mu) + ")");
    for (double a : {b.gantry_deg, b.couch_deg, b.collimator_deg})
      if (!std::isfinite(a)) bad(who + "angles must be finite");
    if (!(b.jaw_x1_mm < b.jaw_x2_mm) || !(b.jaw_y1_mm < b.jaw_y2_mm))
      bad(who + "jaws must satisfy x1 < x2 and y1 < y2");
    for (double j : {b.jaw_x1_mm, b.jaw_x2_mm, b.jaw_y1_mm, b.jaw_y2_mm})
      if (std::abs(j) > m.max_jaw_mm + 1e-9)
        bad(who + "jaw position " + std::to_string(j) + " mm is beyond the machine limit of " +
            std::to_string(m.max_jaw_mm) + " mm");
    if (!grid.contains_world(b.isocenter_mm)) {
      std::ostringstream os;
      os << who << "isocentre (" << b.isocenter_mm[0] << ", " << b.isocenter_mm[1] << ", "
         << b.isocenter_mm[2] << ") mm is outside the CT volume";
      bad(os.str());
    }
    const FluenceMap& f = b.fluence;
    if (!f.empty()) {
      if (f.weight.size() != static_cast<std::size_t>(f.nx) * f.ny)
        bad(who + "fluence map has " + std::to_string(f.weight.size()) + " weights, expected nx*ny = " +
            std::to_string(static_cast<long>(f.nx) * f.ny));
      if (!(f.dx_mm > 0 && f.dy_mm > 0)) bad(who + "fluence map bixel size must be > 0");
      const double tol = 1e-6;
      for (int iy = 0; iy < f.ny; ++iy)
        for (int ix = 0; ix < f.nx; ++ix) {
          float w = f.weight[static_cast<std::size_t>(iy) * f.nx + ix];
          if (!std::isfinite(w) || w < 0) bad(who + "fluence weights must be finite and >= 0");
          if (w <= 0) continue;
          double x0 = f.x0_mm + ix * f.dx_mm, x1 = x0 + f.dx_mm;
          double y0 = f.y0_mm + iy * f.dy_mm, y1 = y0 + f.dy_mm;
          if (x0 < b.jaw_x1_mm - tol || x1 > b.jaw_x2_mm + tol || y0 < b.jaw_y1_mm - tol ||
              y1 > b.jaw_y2_mm + tol) {
            std::ostringstream os;
            os << who << "aperture outside the jaws: open bixel [" << x0 << ", " << x1 << "] x ["
               << y0 << ", " << y1 << "] mm lies outside jaws X [" << b.jaw_x1_mm << ", "
               << b.jaw_x2_mm << "] Y [" << b.jaw_y1_mm << ", " << b.jaw_y2_mm << "] mm";
            bad(os.str());
          }
        }
    }
  }
}

namespace detail {

impl::GridGeom grid_geom(const Grid& g) {
  impl::GridGeom gg{};
  for (int c = 0; c < 3; ++c) {
    gg.origin[c] = static_cast<float>(g.origin[c]);
    gg.spacing[c] = static_cast<float>(g.spacing[c]);
    for (int a = 0; a < 3; ++a) gg.axis[a][c] = static_cast<float>(g.direction[c * 3 + a]);
  }
  return gg;
}

PreparedBox prepare_box(const Grid& grid, const std::vector<float>& density, double thr) {
  int lo[3] = {grid.size[0], grid.size[1], grid.size[2]}, hi[3] = {-1, -1, -1};
  const int nx = grid.size[0], ny = grid.size[1], nz = grid.size[2];
  for (int k = 0; k < nz; ++k)
    for (int j = 0; j < ny; ++j) {
      const float* row = density.data() + (static_cast<std::size_t>(k) * ny + j) * nx;
      for (int i = 0; i < nx; ++i)
        if (row[i] >= thr) {
          lo[0] = std::min(lo[0], i);
          hi[0] = std::max(hi[0], i);
          lo[1] = std::min(lo[1], j);
          hi[1] = std::max(hi[1], j);
          lo[2] = std::min(lo[2], k);
          hi[2] = std::max(hi[2], k);
        }
    }
  PreparedBox pb;
  pb.geom = grid_geom(grid);
  if (hi[0] < 0) {  // nothing dense: an empty box
    for (int a = 0; a < 3; ++a) pb.box.lo[a] = 0, pb.box.n[a] = 0;
    return pb;
  }
  for (int a = 0; a < 3; ++a) {
    lo[a] = std::max(0, lo[a] - 1);
    hi[a] = std::min(grid.size[a] - 1, hi[a] + 1);
    pb.box.lo[a] = lo[a];
    pb.box.n[a] = hi[a] - lo[a] + 1;
  }
  const std::size_t n = static_cast<std::size_t>(impl::box_count(pb.box));
  pb.density.resize(n);
  pb.q.resize(n);
  for (int k = 0; k < pb.box.n[2]; ++k)
    for (int j = 0; j < pb.box.n[1]; ++j)
      for (int i = 0; i < pb.box.n[0]; ++i) {
        std::size_t src = (static_cast<std::size_t>(k + lo[2]) * ny + (j + lo[1])) * nx + (i + lo[0]);
        std::size_t dst = (static_cast<std::size_t>(k) * pb.box.n[1] + j) * pb.box.n[0] + i;
        float d = std::max(0.f, density[src]);
        pb.density[dst] = d;
        pb.q[dst] = static_cast<std::uint16_t>(
            std::min<float>(impl::kDensityBins - 1, std::floor(d * impl::kDensityScale + 0.5f)));
      }
  return pb;
}

PreparedBox sub_box(const PreparedBox& p, const impl::Box& rel) {
  PreparedBox s;
  s.geom = p.geom;
  for (int a = 0; a < 3; ++a) {
    s.box.lo[a] = p.box.lo[a] + rel.lo[a];
    s.box.n[a] = rel.n[a];
  }
  const std::size_t n = static_cast<std::size_t>(impl::box_count(rel));
  s.density.resize(n);
  s.q.resize(n);
  for (int k = 0; k < rel.n[2]; ++k)
    for (int j = 0; j < rel.n[1]; ++j) {
      std::size_t src = (static_cast<std::size_t>(k + rel.lo[2]) * p.box.n[1] + (j + rel.lo[1])) * p.box.n[0] + rel.lo[0];
      std::size_t dst = (static_cast<std::size_t>(k) * rel.n[1] + j) * rel.n[0];
      std::copy_n(p.density.data() + src, rel.n[0], s.density.data() + dst);
      std::copy_n(p.q.data() + src, rel.n[0], s.q.data() + dst);
    }
  return s;
}

impl::BeamFrame beam_frame(const Beam& b, const Machine& m) {
  // IEC 61217: BLD -> gantry (collimator about z), gantry -> fixed (about Y), fixed -> patient
  // support (couch about Z, inverse), then IEC patient (HFS) -> DICOM LPS: x=X, y=-Z, z=Y.
  const double g = deg(b.gantry_deg), c = deg(b.collimator_deg), t = deg(b.couch_deg);
  auto rot = [&](const double v[3], double out[3]) {
    double v1[3] = {std::cos(c) * v[0] - std::sin(c) * v[1], std::sin(c) * v[0] + std::cos(c) * v[1], v[2]};
    double v2[3] = {std::cos(g) * v1[0] + std::sin(g) * v1[2], v1[1], -std::sin(g) * v1[0] + std::cos(g) * v1[2]};
    // patient support rotated by +t about Z: fixed -> patient uses the inverse rotation
    double v3[3] = {std::cos(t) * v2[0] + std::sin(t) * v2[1], -std::sin(t) * v2[0] + std::cos(t) * v2[1], v2[2]};
    out[0] = v3[0];
    out[1] = -v3[2];
    out[2] = v3[1];
  };
  const double ex[3] = {1, 0, 0}, ey[3] = {0, 1, 0}, ez[3] = {0, 0, 1};
  double X[3], Y[3], Z[3];
  rot(ex, X);
  rot(ey, Y);
  rot(ez, Z);
  impl::BeamFrame f{};
  f.sad = static_cast<float>(m.sad_mm);
  for (int i = 0; i < 3; ++i) {
    f.iso[i] = static_cast<float>(b.isocenter_mm[i]);
    f.ex[i] = static_cast<float>(X[i]);
    f.ey[i] = static_cast<float>(Y[i]);
    f.ez[i] = static_cast<float>(Z[i]);
    f.source[i] = static_cast<float>(b.isocenter_mm[i] + m.sad_mm * Z[i]);
  }
  return f;
}

impl::Spectrum spectrum(const Machine& m) {
  impl::Spectrum s{};
  s.n = static_cast<int>(m.energy_mev.size());
  double sum = 0;
  for (double w : m.energy_weight) sum += w;
  double t = 0, kc = 0;
  for (int e = 0; e < s.n; ++e) {
    s.weight[e] = static_cast<float>(m.energy_weight[e] / sum);
    s.mu_rho[e] = static_cast<float>(m.mu_rho_water_cm2_g[e]);
    s.en_ratio[e] = static_cast<float>(m.mu_en_rho_water_cm2_g[e] / m.mu_rho_water_cm2_g[e]);
    t += s.weight[e] * s.mu_rho[e];
    kc += s.weight[e] * s.mu_rho[e] * s.en_ratio[e];
  }
  s.kerma_ratio0 = static_cast<float>(kc / t);
  double ea = 0, eb = 0;
  for (const auto& kb : m.kernel) {
    ea += kb.A / kb.a;
    eb += kb.B / kb.b;
  }
  s.fp_kernel = static_cast<float>(ea / (ea + eb));
  return s;
}

DirectionSet make_directions(const impl::BeamFrame& f, const Machine& m, const CalcOptions& o,
                             const impl::GridGeom& g) {
  const int nb = static_cast<int>(m.kernel.size());
  if (o.n_zenith < 1 || nb % o.n_zenith != 0)
    bad("compute dose: options: n_zenith (" + std::to_string(o.n_zenith) +
        ") must divide the machine kernel's " + std::to_string(nb) + " polar bins");
  if (o.n_azimuth < 1) bad("compute dose: options: n_azimuth must be >= 1");
  const int per = nb / o.n_zenith;
  DirectionSet ds;
  // Beam direction (source -> patient) is -ez; e1, e2 complete the frame.
  const double w[3] = {-f.ez[0], -f.ez[1], -f.ez[2]};
  const double e1[3] = {f.ex[0], f.ex[1], f.ex[2]}, e2[3] = {f.ey[0], f.ey[1], f.ey[2]};
  for (int z = 0; z < o.n_zenith; ++z) {
    // Merge the fine bins of this cone: keep each component's energy and mean range.
    double EA = 0, MA = 0, EB = 0, MB = 0;
    for (int j = z * per; j < (z + 1) * per; ++j) {
      const KernelBin& kb = m.kernel[j];
      EA += kb.A / kb.a;
      MA += kb.A / (kb.a * kb.a);
      EB += kb.B / kb.b;
      MB += kb.B / (kb.b * kb.b);
    }
    const double a = EA > 0 ? EA / MA : 1.0, b = EB > 0 ? EB / MB : 1.0;
    const double A = EA * a / o.n_azimuth, B = EB * b / o.n_azimuth;
    const double th0 = deg(m.kernel[z * per].theta0_deg), th1 = deg(m.kernel[(z + 1) * per - 1].theta1_deg);
    const double theta = std::acos(0.5 * (std::cos(th0) + std::cos(th1)));
    for (int az = 0; az < o.n_azimuth; ++az) {
      const double phi = (az + 0.5) * 2 * kPi / o.n_azimuth + (z % 2) * kPi / o.n_azimuth;
      double v[3];
      for (int c = 0; c < 3; ++c)
        v[c] = std::sin(theta) * (std::cos(phi) * e1[c] + std::sin(phi) * e2[c]) + std::cos(theta) * w[c];
      double vi[3];  // index units per mm
      for (int a2 = 0; a2 < 3; ++a2)
        vi[a2] = (g.axis[a2][0] * v[0] + g.axis[a2][1] * v[1] + g.axis[a2][2] * v[2]) / g.spacing[a2];
      int ax = 0;
      for (int a2 = 1; a2 < 3; ++a2)
        if (std::abs(vi[a2]) > std::abs(vi[ax])) ax = a2;
      const double scale = 1.0 / std::abs(vi[ax]);  // mm per dominant-axis step
      impl::Direction d{};
      d.axis = ax;
      d.sign = vi[ax] > 0 ? 1 : -1;
      d.ai = std::min((ax + 1) % 3, (ax + 2) % 3);
      d.ao = std::max((ax + 1) % 3, (ax + 2) % 3);
      d.ti = static_cast<float>(vi[d.ai] * scale);
      d.to = static_cast<float>(vi[d.ao] * scale);
      d.step_cm = static_cast<float>(scale * 0.1);
      ds.dirs.push_back(d);
      const std::size_t off = ds.lut.size();
      ds.lut.resize(off + impl::kLutPerDirection);
      for (int q = 0; q < impl::kDensityBins; ++q)
        impl::fill_lut_entry(ds.lut.data() + off, q, static_cast<float>(A), static_cast<float>(a),
                             static_cast<float>(B), static_cast<float>(b), d.step_cm);
      ds.kernel_total += A / a + B / b;
    }
  }
  return ds;
}

float horn(const Machine& m, double r) { return static_cast<float>(interp(m.horn_radius_mm, m.horn_factor, r)); }

FluenceRaster make_fluence(const Beam& b, const Machine& m) {
  FluenceRaster fr;
  const double sigma = m.source_sigma_mm;
  const double du = std::min(1.0, sigma / 2.0);
  const double margin = 5 * sigma + 2 * du;
  const double u0 = b.jaw_x1_mm - margin, u1 = b.jaw_x2_mm + margin;
  const double v0 = b.jaw_y1_mm - margin, v1 = b.jaw_y2_mm + margin;
  const int nu = static_cast<int>(std::ceil((u1 - u0) / du)) + 1;
  const int nv = static_cast<int>(std::ceil((v1 - v0) / du)) + 1;
  std::vector<float> raw(static_cast<std::size_t>(nu) * nv);
  const FluenceMap& f = b.fluence;
  for (int iv = 0; iv < nv; ++iv) {
    const double v = v0 + iv * du;
    for (int iu = 0; iu < nu; ++iu) {
      const double u = u0 + iu * du;
      const bool in_jaws = u >= b.jaw_x1_mm && u < b.jaw_x2_mm && v >= b.jaw_y1_mm && v < b.jaw_y2_mm;
      double val = 0;
      if (in_jaws) {
        if (f.empty()) {
          val = 1.0;
        } else {
          const int ix = static_cast<int>(std::floor((u - f.x0_mm) / f.dx_mm));
          const int iy = static_cast<int>(std::floor((v - f.y0_mm) / f.dy_mm));
          if (ix >= 0 && iy >= 0 && ix < f.nx && iy < f.ny) val = f.weight[static_cast<std::size_t>(iy) * f.nx + ix];
        }
      } else {
        val = m.jaw_transmission;
      }
      raw[static_cast<std::size_t>(iv) * nu + iu] = static_cast<float>(val);
    }
  }
  // Separable Gaussian blur (focal spot), truncated at 4 sigma; edges clamp.
  const int half = static_cast<int>(std::ceil(4 * sigma / du));
  std::vector<double> w(2 * half + 1);
  double ws = 0;
  for (int i = -half; i <= half; ++i) ws += w[i + half] = std::exp(-0.5 * (i * du / sigma) * (i * du / sigma));
  for (double& x : w) x /= ws;
  std::vector<float> tmp(raw.size());
  for (int iv = 0; iv < nv; ++iv)
    for (int iu = 0; iu < nu; ++iu) {
      double s = 0;
      for (int k = -half; k <= half; ++k) {
        int x = std::clamp(iu + k, 0, nu - 1);
        s += w[k + half] * raw[static_cast<std::size_t>(iv) * nu + x];
      }
      tmp[static_cast<std::size_t>(iv) * nu + iu] = static_cast<float>(s);
    }
  fr.data.resize(raw.size());
  for (int iv = 0; iv < nv; ++iv)
    for (int iu = 0; iu < nu; ++iu) {
      double s = 0;
      for (int k = -half; k <= half; ++k) {
        int y = std::clamp(iv + k, 0, nv - 1);
        s += w[k + half] * tmp[static_cast<std::size_t>(y) * nu + iu];
      }
      const double u = u0 + iu * du, v = v0 + iv * du;
      fr.data[static_cast<std::size_t>(iv) * nu + iu] = static_cast<float>(s * horn(m, std::hypot(u, v)));
    }
  fr.plane.u0 = static_cast<float>(u0);
  fr.plane.v0 = static_cast<float>(v0);
  fr.plane.du = static_cast<float>(du);
  fr.plane.nu = nu;
  fr.plane.nv = nv;
  fr.plane.data = fr.data.data();
  return fr;
}

void source_index(const Grid& grid, const impl::Box& box, const impl::BeamFrame& f, float out[3]) {
  auto idx = grid.world_to_index({f.source[0], f.source[1], f.source[2]});
  for (int a = 0; a < 3; ++a) out[a] = static_cast<float>(idx[a] - box.lo[a]);
}

double equivalent_square_cm(const Beam& b) {
  const double X = (b.jaw_x2_mm - b.jaw_x1_mm) / 10.0, Y = (b.jaw_y2_mm - b.jaw_y1_mm) / 10.0;
  return 2 * X * Y / (X + Y);
}

}  // namespace detail

// ------------------------------------------------------------------------------------------
// Dose

namespace {

using detail::PreparedBox;

/// Uncalibrated dose (per unit fluence, MU = 1, Sc = 1) of one beam on a prepared box.
void beam_box_dose(const Grid& grid, const PreparedBox& pb, const Beam& beam, const Machine& m,
                   const CalcOptions& o, std::vector<float>& dose_box) {
  const impl::BeamFrame f = detail::beam_frame(beam, m);
  const detail::DirectionSet ds = detail::make_directions(f, m, o, pb.geom);
  const detail::FluenceRaster fr = detail::make_fluence(beam, m);
  const impl::Spectrum sp = detail::spectrum(m);
  float src[3];
  detail::source_index(grid, pb.box, f, src);
  dose_box.assign(pb.density.size(), 0.f);
  if (o.use_cuda) {
#ifdef ISOLINE_DOSE_WITH_CUDA
    detail::CudaBeamJob job{};
    job.box = &pb.box;
    job.density = pb.density.data();
    job.q = pb.q.data();
    job.geom = pb.geom;
    job.frame = f;
    job.spectrum = sp;
    job.plane = fr.plane;
    for (int a = 0; a < 3; ++a) job.src_idx[a] = src[a];
    job.density_threshold = static_cast<float>(o.density_threshold);
    job.dirs = ds.dirs.data();
    job.n_dirs = static_cast<int>(ds.dirs.size());
    job.lut = ds.lut.data();
    job.dose_out = dose_box.data();
    job.device = o.cuda_device;
    detail::beam_dose_cuda(job);
    return;
#else
    throw EngineError(EngineError::Device, "compute dose: cuda: this build has no CUDA kernels");
#endif
  }
  std::vector<float> ta, tb;
  detail::terma_cpu(pb, f, sp, fr.plane, src, static_cast<float>(o.density_threshold), ta, tb);
  detail::cccs_cpu(pb, ds, ta, tb, dose_box);
}

}  // namespace

double calibration_factor(const Machine& m, const CalcOptions& o_in) {
  static std::mutex mu;
  static std::map<std::string, double> cache;
  CalcOptions o = o_in;
  o.use_cuda = false;  // the calibration always runs on the CPU, so both backends share it
  std::ostringstream ks;  // the model's content, not its address, identifies the calibration
  ks.precision(17);
  ks << m.name << '|' << o.n_zenith << '|' << o.n_azimuth << '|' << o.density_threshold << '|'
     << m.sad_mm << '|' << m.source_sigma_mm << '|' << m.reference_gy_per_mu << '|'
     << m.reference_field_cm << '|' << m.reference_ssd_mm;
  for (double w : m.energy_weight) ks << ',' << w;
  for (const auto& kb : m.kernel) ks << ';' << kb.A << ',' << kb.a << ',' << kb.B << ',' << kb.b;
  for (double h : m.horn_factor) ks << ':' << h;
  const std::string key = ks.str();
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
  }
  // Water phantom 24.3 x 24.3 x 30 cm, 3 mm voxels, surface at SSD, axis through voxel centres.
  Grid g;
  const double h = 3.0;
  g.size = {81, 100, 81};  // i: x (L), j: y (P, depth), k: z (S)
  g.spacing = {h, h, h};
  const double surface_y = -150.0;
  g.origin = {-40 * h, surface_y + 0.5 * h, -40 * h};
  std::vector<float> rho(g.num_voxels(), 1.0f);
  Beam b;
  b.gantry_deg = 0;  // source anterior (-y); beam travels +y
  b.isocenter_mm = {0, surface_y + (m.sad_mm - m.reference_ssd_mm) + 0.0, 0};
  // isocentre at SSD + (SAD - SSD) below the surface: surface at SSD from the source
  b.isocenter_mm[1] = surface_y + (m.sad_mm - m.reference_ssd_mm);
  const double half = m.reference_field_cm * 10.0 / 2.0 * m.sad_mm / m.reference_ssd_mm;
  b.jaw_x1_mm = b.jaw_y1_mm = -half;
  b.jaw_x2_mm = b.jaw_y2_mm = half;
  b.mu = 1;
  PreparedBox pb = detail::prepare_box(g, rho, o.density_threshold);
  std::vector<float> d;
  beam_box_dose(g, pb, b, m, o, d);
  double dmax = 0;
  for (int j = 0; j < g.size[1]; ++j)
    dmax = std::max<double>(dmax, d[(static_cast<std::size_t>(40) * g.size[1] + j) * g.size[0] + 40]);
  if (!(dmax > 0)) throw EngineError(EngineError::Input, "calibrate machine: " + m.name + ": reference dose is zero");
  const double k = m.reference_gy_per_mu / dmax;
  std::lock_guard<std::mutex> lock(mu);
  cache[key] = k;
  return k;
}

std::vector<float> compute_dose(const Grid& grid, const std::vector<float>& density,
                                const std::vector<Beam>& beams, const Machine& m,
                                const CalcOptions& o) {
  if (density.size() != grid.num_voxels())
    bad("compute dose: density: " + std::to_string(density.size()) + " values for a grid of " +
        std::to_string(grid.num_voxels()) + " voxels");
  validate_beams(beams, m, grid);
  if (o.use_cuda && !engine_cuda_available())
    throw EngineError(EngineError::Device, engine_built_with_cuda()
                                               ? "compute dose: cuda: no CUDA device is available"
                                               : "compute dose: cuda: this build has no CUDA kernels");
  const double k = calibration_factor(m, o);
  PreparedBox pb = detail::prepare_box(grid, density, o.density_threshold);
  std::vector<float> out(grid.num_voxels(), 0.f);
  if (pb.density.empty()) return out;
  std::vector<double> acc(pb.density.size(), 0.0);
  std::vector<float> d;
  for (const Beam& b : beams) {
    if (b.mu <= 0) continue;
    beam_box_dose(grid, pb, b, m, o, d);
    const double scale = k * b.mu * head_scatter(m, detail::equivalent_square_cm(b));
    for (std::size_t i = 0; i < d.size(); ++i) acc[i] += scale * d[i];
  }
  const impl::Box& bx = pb.box;
  for (int kk = 0; kk < bx.n[2]; ++kk)
    for (int j = 0; j < bx.n[1]; ++j)
      for (int i = 0; i < bx.n[0]; ++i) {
        std::size_t src = (static_cast<std::size_t>(kk) * bx.n[1] + j) * bx.n[0] + i;
        std::size_t dst = (static_cast<std::size_t>(kk + bx.lo[2]) * grid.size[1] + (j + bx.lo[1])) * grid.size[0] + (i + bx.lo[0]);
        out[dst] = static_cast<float>(acc[src]);
      }
  return out;
}

bool engine_built_with_cuda() {
#ifdef ISOLINE_DOSE_WITH_CUDA
  return true;
#else
  return false;
#endif
}

bool project_to_isocentre_plane(const Beam& beam, const Machine& machine, const std::array<double, 3>& point_mm,
                                double* x_mm, double* y_mm) {
  const impl::BeamFrame f = detail::beam_frame(beam, machine);
  const float p[3] = {static_cast<float>(point_mm[0]), static_cast<float>(point_mm[1]), static_cast<float>(point_mm[2])};
  float u = 0, v = 0, dist = 0;
  if (!impl::project(f, p, u, v, dist)) return false;
  *x_mm = u;
  *y_mm = v;
  return true;
}

bool engine_cuda_available() {
#ifdef ISOLINE_DOSE_WITH_CUDA
  return detail::cuda_devices() > 0;
#else
  return false;
#endif
}

}  // namespace isoline::dose
