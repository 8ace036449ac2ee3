// isoline::dose: CT calibration, plan JSON, and the engine on core images.
#include "isoline/dose/dose.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "isoline/core/error.h"
#include "isoline/core/text.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace isoline::dose {

namespace {

[[noreturn]] void rethrow(const EngineError& e) {
  switch (e.kind()) {
    case EngineError::Io: throw core::IoError(e.what());
    case EngineError::Device: throw core::DeviceError(e.what());
    default: throw core::InvalidInput(e.what());
  }
}

double interp(const std::vector<double>& x, const std::vector<double>& y, double v) {
  if (v <= x.front()) return y.front();
  if (v >= x.back()) return y.back();
  auto it = std::upper_bound(x.begin(), x.end(), v);
  std::size_t i = static_cast<std::size_t>(it - x.begin());
  return y[i - 1] + (v - x[i - 1]) / (x[i] - x[i - 1]) * (y[i] - y[i - 1]);
}

core::Image density_image(const core::Image& ct, const std::vector<double>& hu, const std::vector<double>& rho,
                          const char* what) {
  if (ct.empty()) core::fail<core::InvalidInput>(what, "CT", "empty image");
  core::Image out(ct.geometry(), core::PixelType::Float32);
  float* o = out.data<float>();
  const std::size_t n = ct.num_voxels();
  // A lookup table over integer HU keeps this fast for int16 CTs.
  const int lo = -1024, hi = 4000;
  std::vector<float> lut(hi - lo + 1);
  for (int h = lo; h <= hi; ++h) lut[h - lo] = static_cast<float>(interp(hu, rho, h));
  for (std::size_t i = 0; i < n; ++i) {
    const double v = ct.value(i);
    if (v >= lo && v <= hi && v == std::floor(v)) o[i] = lut[static_cast<int>(v) - lo];
    else o[i] = static_cast<float>(interp(hu, rho, v));
  }
  return out;
}

std::vector<double> numbers(const json& j, const std::string& ctx) {
  if (!j.is_array()) core::fail<core::InvalidInput>("read plan", ctx, "expected an array of numbers");
  std::vector<double> v;
  for (const auto& x : j) {
    if (!x.is_number()) core::fail<core::InvalidInput>("read plan", ctx, "expected an array of numbers");
    v.push_back(x.get<double>());
  }
  return v;
}

double number(const json& o, const char* key, double fallback, const std::string& ctx) {
  if (!o.contains(key)) return fallback;
  if (!o[key].is_number()) core::fail<core::InvalidInput>("read plan", ctx + "." + key, "expected a number");
  return o[key].get<double>();
}

/// Rasterises open rectangles (BLD mm) into a 1 mm fluence map.
FluenceMap raster_rectangles(const std::vector<std::array<double, 4>>& rects) {
  FluenceMap f;
  if (rects.empty()) return f;
  double x0 = 1e30, x1 = -1e30, y0 = 1e30, y1 = -1e30;
  for (const auto& r : rects) {
    x0 = std::min(x0, r[0]);
    x1 = std::max(x1, r[1]);
    y0 = std::min(y0, r[2]);
    y1 = std::max(y1, r[3]);
  }
  const double d = 1.0;
  x0 = std::floor(x0 / d) * d;
  y0 = std::floor(y0 / d) * d;
  f.x0_mm = x0;
  f.y0_mm = y0;
  f.dx_mm = f.dy_mm = d;
  f.nx = std::max(1, static_cast<int>(std::ceil((x1 - x0) / d - 1e-9)));
  f.ny = std::max(1, static_cast<int>(std::ceil((y1 - y0) / d - 1e-9)));
  f.weight.assign(static_cast<std::size_t>(f.nx) * f.ny, 0.f);
  for (int iy = 0; iy < f.ny; ++iy)
    for (int ix = 0; ix < f.nx; ++ix) {
      const double xa = x0 + ix * d, xb = xa + d, ya = y0 + iy * d, yb = ya + d;
      double open = 0;  // fraction of the pixel covered (rectangles do not overlap in practice)
      for (const auto& r : rects) {
        const double ox = std::max(0.0, std::min(xb, r[1]) - std::max(xa, r[0]));
        const double oy = std::max(0.0, std::min(yb, r[3]) - std::max(ya, r[2]));
        open += ox * oy / (d * d);
      }
      f.weight[static_cast<std::size_t>(iy) * f.nx + ix] = static_cast<float>(std::min(1.0, open));
    }
  return f;
}

Beam parse_beam(const json& b, std::size_t index, const json& root, const std::string& src) {
  const std::string ctx = src + ": beams[" + std::to_string(index) + "]";
  if (!b.is_object()) core::fail<core::InvalidInput>("read plan", ctx, "a beam must be an object");
  Beam beam;
  beam.name = b.value("name", "beam " + std::to_string(index + 1));
  beam.gantry_deg = number(b, "gantry_deg", 0, ctx);
  beam.couch_deg = number(b, "couch_deg", 0, ctx);
  beam.collimator_deg = number(b, "collimator_deg", 0, ctx);
  const json* iso = b.contains("isocenter_mm") ? &b["isocenter_mm"]
                    : root.contains("isocenter_mm") ? &root["isocenter_mm"] : nullptr;
  if (!iso) core::fail<core::InvalidInput>("read plan", ctx, "no isocenter_mm (per beam or for the plan)");
  auto iv = numbers(*iso, ctx + ".isocenter_mm");
  if (iv.size() != 3) core::fail<core::InvalidInput>("read plan", ctx + ".isocenter_mm", "needs 3 values (LPS mm)");
  beam.isocenter_mm = {iv[0], iv[1], iv[2]};
  if (!b.contains("mu")) core::fail<core::InvalidInput>("read plan", ctx, "no \"mu\" (monitor units)");
  beam.mu = number(b, "mu", 0, ctx);
  if (b.contains("jaws_mm")) {
    auto j = numbers(b["jaws_mm"], ctx + ".jaws_mm");
    if (j.size() != 4) core::fail<core::InvalidInput>("read plan", ctx + ".jaws_mm", "needs [x1, x2, y1, y2]");
    beam.jaw_x1_mm = j[0], beam.jaw_x2_mm = j[1], beam.jaw_y1_mm = j[2], beam.jaw_y2_mm = j[3];
  }
  int shapes = 0;
  if (b.contains("fluence")) {
    ++shapes;
    const json& f = b["fluence"];
    const std::string fc = ctx + ".fluence";
    auto org = numbers(f.at("origin_mm"), fc + ".origin_mm");
    auto bix = numbers(f.at("bixel_mm"), fc + ".bixel_mm");
    auto size = numbers(f.at("size"), fc + ".size");
    if (org.size() != 2 || bix.size() != 2 || size.size() != 2)
      core::fail<core::InvalidInput>("read plan", fc, "origin_mm, bixel_mm and size need 2 values each");
    beam.fluence.x0_mm = org[0];
    beam.fluence.y0_mm = org[1];
    beam.fluence.dx_mm = bix[0];
    beam.fluence.dy_mm = bix[1];
    beam.fluence.nx = static_cast<int>(size[0]);
    beam.fluence.ny = static_cast<int>(size[1]);
    for (double w : numbers(f.at("weights"), fc + ".weights")) beam.fluence.weight.push_back(static_cast<float>(w));
  }
  if (b.contains("aperture")) {
    ++shapes;
    std::vector<std::array<double, 4>> rects;
    for (const auto& r : b["aperture"].at("rectangles_mm")) {
      auto v = numbers(r, ctx + ".aperture.rectangles_mm");
      if (v.size() != 4 || !(v[0] < v[1]) || !(v[2] < v[3]))
        core::fail<core::InvalidInput>("read plan", ctx + ".aperture", "each rectangle is [x1, x2, y1, y2] with x1 < x2, y1 < y2");
      rects.push_back({v[0], v[1], v[2], v[3]});
    }
    beam.fluence = raster_rectangles(rects);
  }
  if (b.contains("mlc")) {
    ++shapes;
    const json& m = b["mlc"];
    auto bounds = numbers(m.at("leaf_boundaries_mm"), ctx + ".mlc.leaf_boundaries_mm");
    auto a = numbers(m.at("x1_mm"), ctx + ".mlc.x1_mm");
    auto c = numbers(m.at("x2_mm"), ctx + ".mlc.x2_mm");
    if (bounds.size() < 2 || a.size() != bounds.size() - 1 || c.size() != a.size())
      core::fail<core::InvalidInput>("read plan", ctx + ".mlc", "needs n+1 leaf boundaries and n x1/x2 positions");
    std::vector<std::array<double, 4>> rects;
    for (std::size_t i = 0; i < a.size(); ++i) {
      // MLC openings behind the jaws are clipped by them, as on a linac.
      const double x1 = std::max(a[i], beam.jaw_x1_mm), x2 = std::min(c[i], beam.jaw_x2_mm);
      const double y1 = std::max(bounds[i], beam.jaw_y1_mm), y2 = std::min(bounds[i + 1], beam.jaw_y2_mm);
      if (x1 < x2 && y1 < y2) rects.push_back({x1, x2, y1, y2});
      if (c[i] < a[i]) core::fail<core::InvalidInput>("read plan", ctx + ".mlc", "leaf pair " + std::to_string(i) + " has x2 < x1");
    }
    if (rects.empty()) core::fail<core::InvalidInput>("read plan", ctx + ".mlc", "the MLC aperture is closed inside the jaws");
    beam.fluence = raster_rectangles(rects);
  }
  if (shapes > 1) core::fail<core::InvalidInput>("read plan", ctx, "give at most one of fluence, aperture, mlc");
  return beam;
}

}  // namespace

// ------------------------------------------------------------------------------------------

HuCalibration HuCalibration::generic() {
  HuCalibration c;
  c.hu = {-1024, -1000, -800, -100, 0, 100, 1000, 3000};
  c.mass_density = {0.0012, 0.0012, 0.20, 0.93, 1.00, 1.07, 1.60, 2.80};
  c.relative_electron_density = {0.001, 0.001, 0.20, 0.94, 1.00, 1.06, 1.51, 2.55};
  return c;
}

void HuCalibration::validate(const std::string& source) const {
  if (hu.size() < 2 || hu.size() != mass_density.size() || hu.size() != relative_electron_density.size())
    core::fail<core::InvalidInput>("HU calibration", source,
                                   "hu, mass_density and relative_electron_density need >= 2 equal-length entries");
  for (std::size_t i = 1; i < hu.size(); ++i)
    if (!(hu[i] > hu[i - 1])) core::fail<core::InvalidInput>("HU calibration", source, "hu must increase strictly");
  for (std::size_t i = 0; i < hu.size(); ++i)
    if (!(mass_density[i] >= 0 && relative_electron_density[i] >= 0 && relative_electron_density[i] < 6))
      core::fail<core::InvalidInput>("HU calibration", source, "densities must lie in [0, 6)");
}

double HuCalibration::mass(double h) const { return interp(hu, mass_density, h); }
double HuCalibration::electron(double h) const { return interp(hu, relative_electron_density, h); }

core::Image electron_density_from_ct(const core::Image& ct, const HuCalibration& cal) {
  cal.validate("electron density");
  return density_image(ct, cal.hu, cal.relative_electron_density, "electron density");
}

core::Image mass_density_from_ct(const core::Image& ct, const HuCalibration& cal) {
  cal.validate("mass density");
  return density_image(ct, cal.hu, cal.mass_density, "mass density");
}

std::string find_machine(const std::string& name, const std::string& base_dir) {
  std::vector<fs::path> candidates;
  const bool is_path =
      name.find('/') != std::string::npos || (name.size() > 5 && name.substr(name.size() - 5) == ".json");
  const std::string file = is_path ? name : name + ".json";
  if (is_path && fs::path(file).is_absolute()) candidates.push_back(file);
  if (const char* env = std::getenv("ISOLINE_MACHINE_DIR")) candidates.push_back(fs::path(env) / file);
  candidates.push_back(fs::path(base_dir) / file);
  candidates.push_back(fs::path(ISOLINE_DOSE_MACHINE_DIR) / file);
  for (const auto& c : candidates) {
    std::error_code ec;
    if (fs::is_regular_file(c, ec)) return c.string();
  }
  core::fail<core::IoError>("find machine", name,
                            "no such machine file (looked in $ISOLINE_MACHINE_DIR, beside the plan and in " +
                                std::string(ISOLINE_DOSE_MACHINE_DIR) + ")");
}

Plan parse_plan(const std::string& text, const std::string& src, const std::string& base_dir) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    core::fail<core::InvalidInput>("read plan", src, "not valid JSON: " + core::json_error(e.what()));
  }
  if (!root.is_object()) core::fail<core::InvalidInput>("read plan", src, "the plan must be a JSON object");
  Plan p;
  try {
    p.name = root.value("name", fs::path(src).stem().string());
    p.machine_path = find_machine(root.value("machine", std::string("generic_6mv")), base_dir);
    try {
      p.machine = load_machine(p.machine_path);
    } catch (const EngineError& e) {
      rethrow(e);
    }
    if (root.contains("calculation")) {
      const json& c = root["calculation"];
      p.options.n_zenith = static_cast<int>(number(c, "n_zenith", p.options.n_zenith, src + ": calculation"));
      p.options.n_azimuth = static_cast<int>(number(c, "n_azimuth", p.options.n_azimuth, src + ": calculation"));
      p.options.density_threshold = number(c, "density_threshold", p.options.density_threshold, src + ": calculation");
      const int nb = static_cast<int>(p.machine.kernel.size());
      if (p.options.n_zenith < 1 || nb % p.options.n_zenith != 0 || p.options.n_azimuth < 1)
        core::fail<core::InvalidInput>("read plan", src + ": calculation",
                                       "n_zenith must divide " + std::to_string(nb) + " and n_azimuth must be >= 1");
    }
    if (root.contains("hu_to_density")) {
      const json& h = root["hu_to_density"];
      p.hu.hu = numbers(h.at("hu"), src + ": hu_to_density.hu");
      p.hu.mass_density = numbers(h.at("mass_density"), src + ": hu_to_density.mass_density");
      p.hu.relative_electron_density =
          numbers(h.at("relative_electron_density"), src + ": hu_to_density.relative_electron_density");
      p.hu.validate(src);
    }
    const double fx = number(root, "fractions", 1, src);
    if (!(fx >= 1) || fx != std::floor(fx) || fx > 1000)
      core::fail<core::InvalidInput>("read plan", src, "\"fractions\" must be a whole number from 1 to 1000");
    p.fractions = static_cast<int>(fx);
    if (!root.contains("beams") || !root["beams"].is_array())
      core::fail<core::InvalidInput>("read plan", src, "no \"beams\" array");
    for (std::size_t i = 0; i < root["beams"].size(); ++i) p.beams.push_back(parse_beam(root["beams"][i], i, root, src));
    if (p.beams.empty()) core::fail<core::InvalidInput>("read plan", src, "the plan has no beams");
  } catch (const json::exception& e) {
    core::fail<core::InvalidInput>("read plan", src, std::string("malformed plan: ") + e.what());
  }
  return p;
}

Plan read_plan(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) core::fail<core::IoError>("read plan", path, "cannot open file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_plan(ss.str(), path, fs::path(path).parent_path().string().empty() ? "." : fs::path(path).parent_path().string());
}

Grid to_grid(const core::Geometry& g) {
  Grid out;
  for (int a = 0; a < 3; ++a) {
    out.size[a] = static_cast<int>(g.size[a]);
    out.spacing[a] = g.spacing[a];
    out.origin[a] = g.origin[a];
  }
  for (int i = 0; i < 9; ++i) out.direction[i] = g.direction[i];
  return out;
}

namespace {
std::vector<float> density_vector(const core::Image& ct, const Plan& plan) {
  core::Image rho = electron_density_from_ct(ct, plan.hu);
  const float* d = rho.data<float>();
  return std::vector<float>(d, d + rho.num_voxels());
}
}  // namespace

core::Image compute_dose(const core::Image& ct, const Plan& plan, core::Device device,
                         const core::Progress& progress) {
  core::require_device(device, "compute dose");
  ct.geometry().validate("CT");
  const Grid grid = to_grid(ct.geometry());
  CalcOptions o = plan.options;
  o.use_cuda = device == core::Device::CUDA;
  try {
    validate_beams(plan.beams, plan.machine, grid);
    progress.update(0.0, "density");
    const std::vector<float> rho = density_vector(ct, plan);
    core::Image out(ct.geometry(), core::PixelType::Float32);
    float* d = out.data<float>();
    calibration_factor(plan.machine, o);
    for (std::size_t b = 0; b < plan.beams.size(); ++b) {
      progress.update(static_cast<double>(b) / plan.beams.size(),
                      "beam " + std::to_string(b + 1) + "/" + std::to_string(plan.beams.size()));
      if (plan.beams[b].mu <= 0) continue;
      const std::vector<float> one = dose::compute_dose(grid, rho, {plan.beams[b]}, plan.machine, o);
      for (std::size_t i = 0; i < one.size(); ++i) d[i] += one[i];
    }
    progress.done();
    return out;
  } catch (const EngineError& e) {
    rethrow(e);
  }
}

namespace {
void forward_progress(double f, void* user) { static_cast<const core::Progress*>(user)->update(f); }
}  // namespace

InfluenceMatrix compute_influence(const core::Image& ct, const core::Image& target, const Plan& plan,
                                  const InfluenceOptions& io, core::Device device,
                                  const core::Progress& progress) {
  core::require_device(device, "compute influence");
  if (!target.geometry().same_grid(ct.geometry()))
    core::fail<core::InvalidInput>("compute influence", "target", "the target mask is not on the CT grid");
  const Grid grid = to_grid(ct.geometry());
  CalcOptions o = plan.options;
  o.use_cuda = device == core::Device::CUDA;
  std::vector<std::uint8_t> t(target.num_voxels());
  for (std::size_t i = 0; i < t.size(); ++i) t[i] = target.value(i) != 0 ? 1 : 0;
  try {
    const std::vector<float> rho = density_vector(ct, plan);
    InfluenceMatrix m = dose::compute_influence(grid, rho, t, plan.beams, plan.machine, o, io, forward_progress,
                                                const_cast<core::Progress*>(&progress));
    progress.done();
    return m;
  } catch (const EngineError& e) {
    rethrow(e);
  }
}

}  // namespace isoline::dose
