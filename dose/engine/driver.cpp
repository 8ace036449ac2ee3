// isoline-dose-engine: the engine's standalone driver (no ITK/DCMTK/Torch). Reads a plain case:
//
//   {"density": "density.f32",            raw float32, relative electron density, i fastest
//    "size": [nx, ny, nz], "spacing": [sx, sy, sz], "origin": [x, y, z],   (LPS mm, identity axes)
//    "machine": "generic_6mv.json",       relative paths are relative to the case file
//    "target": "target.u8",               optional raw uint8 mask (for --influence)
//    "options": {"n_zenith": 6, "n_azimuth": 8},
//    "beams": [{"gantry": 0, "couch": 0, "collimator": 0, "isocenter": [x, y, z],
//               "jaws": [x1, x2, y1, y2], "mu": 100,
//               "fluence": {"x0": -50, "y0": -50, "dx": 5, "dy": 5, "nx": 20, "ny": 20,
//                           "weights": [...]}}]}
//
// Usage: isoline-dose-engine CASE.json [--out dose.f32] [--device cpu|cuda] [--compare]
//                            [--influence] [--repeat N]
// Prints one JSON line with timings (and the CPU/CUDA difference with --compare).
#include <chrono>
#include <cstdarg>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include <sys/resource.h>

#include "isoline/dose/engine.h"
#include "json_lite.h"

using namespace isoline::dose;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw EngineError(EngineError::Io, "read case: " + path + ": cannot open file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

template <class T>
std::vector<T> read_raw(const std::string& path, std::size_t n) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw EngineError(EngineError::Io, "read volume: " + path + ": cannot open file");
  std::vector<T> v(n);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * sizeof(T)));
  if (in.gcount() != static_cast<std::streamsize>(n * sizeof(T)))
    throw EngineError(EngineError::Io, "read volume: " + path + ": file is shorter than size[] implies");
  return v;
}

std::string resolve(const std::string& base, const std::string& p) {
  if (!p.empty() && p[0] == '/') return p;
  auto slash = base.find_last_of('/');
  return slash == std::string::npos ? p : base.substr(0, slash + 1) + p;
}

/// CPU time (user + system) of this process so far: with the wall time it shows how much of a
/// run's wall time was lost to other processes on a shared machine.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

/// The JSON line is collected and printed at the end, so a failure prints only the error.
std::string g_line;
void add(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void add(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  g_line += buf;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0) {
    std::fprintf(stderr,
                 "usage: isoline-dose-engine CASE.json [--out dose.f32] [--device cpu|cuda] "
                 "[--compare] [--influence] [--repeat N]\n");
    return 2;
  }
  try {
    const std::string case_path = argv[1];
    std::string out_path, device = "cpu";
    bool compare = false, influence = false;
    int repeat = 1;
    for (int i = 2; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--out" && i + 1 < argc) out_path = argv[++i];
      else if (a == "--device" && i + 1 < argc) device = argv[++i];
      else if (a == "--compare") compare = true;
      else if (a == "--influence") influence = true;
      else if (a == "--repeat" && i + 1 < argc) repeat = std::max(1, std::atoi(argv[++i]));
      else throw EngineError(EngineError::Input, "arguments: unknown option " + a);
    }
    json::Value c = json::parse(read_text(case_path), case_path);
    const std::string ctx = "read case: " + case_path;
    Grid g;
    auto size = c.at("size", ctx).numbers(ctx + ": size");
    auto spacing = c.at("spacing", ctx).numbers(ctx + ": spacing");
    auto origin = c.at("origin", ctx).numbers(ctx + ": origin");
    if (size.size() != 3 || spacing.size() != 3 || origin.size() != 3)
      throw EngineError(EngineError::Input, ctx + ": size, spacing and origin need 3 values");
    for (int a = 0; a < 3; ++a) {
      g.size[a] = static_cast<int>(size[a]);
      g.spacing[a] = spacing[a];
      g.origin[a] = origin[a];
    }
    auto density = read_raw<float>(resolve(case_path, c.at("density", ctx).str), g.num_voxels());
    Machine m = load_machine(resolve(case_path, c.at("machine", ctx).str));
    CalcOptions o;
    if (c.has("options")) {
      const auto& op = c.obj.at("options");
      o.n_zenith = static_cast<int>(op.get_number("n_zenith", o.n_zenith, ctx));
      o.n_azimuth = static_cast<int>(op.get_number("n_azimuth", o.n_azimuth, ctx));
    }
    std::vector<Beam> beams;
    for (const auto& bj : c.at("beams", ctx).arr) {
      Beam b;
      b.gantry_deg = bj.get_number("gantry", 0, ctx);
      b.couch_deg = bj.get_number("couch", 0, ctx);
      b.collimator_deg = bj.get_number("collimator", 0, ctx);
      auto iso = bj.at("isocenter", ctx).numbers(ctx + ": isocenter");
      if (iso.size() != 3) throw EngineError(EngineError::Input, ctx + ": isocenter needs 3 values");
      b.isocenter_mm = {iso[0], iso[1], iso[2]};
      if (bj.has("jaws")) {
        auto j = bj.obj.at("jaws").numbers(ctx + ": jaws");
        if (j.size() != 4) throw EngineError(EngineError::Input, ctx + ": jaws needs [x1, x2, y1, y2]");
        b.jaw_x1_mm = j[0], b.jaw_x2_mm = j[1], b.jaw_y1_mm = j[2], b.jaw_y2_mm = j[3];
      }
      b.mu = bj.get_number("mu", 100, ctx);
      if (bj.has("fluence")) {
        const auto& f = bj.obj.at("fluence");
        b.fluence.x0_mm = f.get_number("x0", 0, ctx);
        b.fluence.y0_mm = f.get_number("y0", 0, ctx);
        b.fluence.dx_mm = f.get_number("dx", 5, ctx);
        b.fluence.dy_mm = f.get_number("dy", 5, ctx);
        b.fluence.nx = static_cast<int>(f.get_number("nx", 0, ctx));
        b.fluence.ny = static_cast<int>(f.get_number("ny", 0, ctx));
        for (double w : f.at("weights", ctx).numbers(ctx + ": fluence.weights"))
          b.fluence.weight.push_back(static_cast<float>(w));
      }
      beams.push_back(b);
    }
    add("{\"case\": \"%s\", \"voxels\": %zu, \"beams\": %zu, \"directions\": %d",
                case_path.c_str(), g.num_voxels(), beams.size(), o.n_zenith * o.n_azimuth);
    calibration_factor(m, o);  // not timed: cached per machine and options
    o.use_cuda = device == "cuda";
    std::vector<float> dose;
    double best = 1e30, best_cpu = 0;
    for (int r = 0; r < repeat; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      const double c0 = cpu_seconds();
      dose = compute_dose(g, density, beams, m, o);
      const double t = seconds_since(t0);
      if (t < best) best = t, best_cpu = cpu_seconds() - c0;
    }
    float dmax = 0;
    for (float d : dose) dmax = std::max(dmax, d);
    add(", \"device\": \"%s\", \"dose_seconds\": %.4f, \"dose_cpu_seconds\": %.3f, \"dose_max_gy\": %.6g",
                device.c_str(), best, best_cpu, dmax);
    if (compare) {
      CalcOptions o2 = o;
      o2.use_cuda = !o.use_cuda;
      auto t0 = std::chrono::steady_clock::now();
      auto other = compute_dose(g, density, beams, m, o2);
      double t = seconds_since(t0);
      double md = 0;
      for (std::size_t i = 0; i < dose.size(); ++i) md = std::max<double>(md, std::fabs(dose[i] - other[i]));
      add(", \"other_device_seconds\": %.4f, \"max_diff_percent_of_max\": %.5f", t, 100.0 * md / dmax);
    }
    if (influence) {
      std::vector<std::uint8_t> target;
      if (c.has("target")) target = read_raw<std::uint8_t>(resolve(case_path, c.obj.at("target").str), g.num_voxels());
      else throw EngineError(EngineError::Input, ctx + ": --influence needs \"target\"");
      CalcOptions oi = o;  // --device applies to the influence matrix too
      auto t0 = std::chrono::steady_clock::now();
      const double c0 = cpu_seconds();
      InfluenceMatrix A = compute_influence(g, density, target, beams, m, oi, InfluenceOptions{});
      add(", \"influence_seconds\": %.3f, \"influence_cpu_seconds\": %.2f, \"beamlets\": %lld, \"nnz\": %zu",
                  seconds_since(t0), cpu_seconds() - c0, static_cast<long long>(A.cols), A.nnz());
      if (compare) {
        // the other device's matrix; agreement of the dose of all beamlets at weight 1
        CalcOptions oi2 = oi;
        oi2.use_cuda = !oi.use_cuda;
        auto t1 = std::chrono::steady_clock::now();
        InfluenceMatrix A2 = compute_influence(g, density, target, beams, m, oi2, InfluenceOptions{});
        const double t2 = seconds_since(t1);
        const std::vector<float> ones(static_cast<std::size_t>(A.cols), 1.f);
        const std::vector<float> y1 = A.multiply(ones), y2 = A2.multiply(ones);
        double ymax = 0, md = 0;
        for (std::size_t i = 0; i < y1.size(); ++i) {
          ymax = std::max<double>(ymax, y1[i]);
          md = std::max<double>(md, std::fabs(y1[i] - y2[i]));
        }
        add(", \"influence_other_device_seconds\": %.3f, \"influence_max_diff_percent_of_max\": %.5f", t2,
            ymax > 0 ? 100.0 * md / ymax : 0.0);
      }
    }
    add("}");
    std::printf("%s\n", g_line.c_str());
    if (!out_path.empty()) {
      std::ofstream out(out_path, std::ios::binary);
      out.write(reinterpret_cast<const char*>(dose.data()), static_cast<std::streamsize>(dose.size() * sizeof(float)));
      out.close();  // the last buffer is written here: check it too
      if (!out) throw EngineError(EngineError::Io, "write dose: " + out_path + ": write failed");
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "isoline-dose-engine: %s\n", e.what());
    return 1;
  }
}
