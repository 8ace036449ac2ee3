// isoline dvh: DVH metrics and a clinical-criteria table for a dose and structures.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>

#include "command.h"
#include "criteria_table.h"
#include "isoline/core/atomic_file.h"
#include "isoline/core/error.h"
#include "isoline/core/io.h"
#include "isoline/planning/criteria.h"
#include "isoline/planning/dvh.h"
#include "isoline/rtstruct/rtdose.h"
#include "isoline/rtstruct/rtstruct.h"

namespace isoline::cli {

namespace {

// Dose in Gy: an RT Dose file (DICOM; `frame` gets its frame of reference) or any image
// core::read_image reads.
core::Image read_dose(const std::string& path, std::string* frame) {
  if (rtstruct::dicom_modality(path) == "RTDOSE") {
    rtstruct::RtDose d = rtstruct::read_rtdose(path);
    *frame = d.frame_of_reference_uid;
    if (d.dose_units != "GY")
      core::fail<core::InvalidInput>("dvh", path, "RT Dose units are " + d.dose_units + ", not GY");
    return std::move(d.dose);
  }
  return core::read_image(path, core::PixelType::Float32);
}


// True when an External ROI (BODY) has contours on the first and the last plane of the set:
// it was contoured on every image slice, so the image (and every ROI) ends at those planes.
bool external_spans_all_planes(const rtstruct::RtStructData& rs, const core::Geometry& planes) {
  for (const auto& roi : rs.rois) {
    std::string t = roi.interpreted_type;
    for (auto& ch : t) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (t != "EXTERNAL") continue;
    bool first = false, last = false;
    for (const auto& c : roi.contours) {
      if (c.geometric_type != "CLOSED_PLANAR" || c.points.empty()) continue;
      const double k = planes.world_to_index(c.points.front())[2];
      first = first || std::abs(k) < 0.1;
      last = last || std::abs(k - (planes.size[2] - 1)) < 0.1;
    }
    if (first && last) return true;
  }
  return false;
}

std::string fmt(double v, const char* f = "%.2f") {
  if (!std::isfinite(v)) return "-";
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    o += c;
  }
  return o;
}

struct Row {
  std::string name;
  bool target = false;
  double rx = 0;  // Gy, 0 = unknown
  planning::Dvh dvh;
  double hi = NAN, ci = NAN, v95rx = NAN, v100rx = NAN;
  std::vector<double> extra;  // --metric values
};

int run_dvh(const Args& args, const Context& ctx) {
  core::Progress progress(ctx.progress, "dvh");
  auto masks_dir = args.get("--masks");
  const auto rs_path = args.get("--rtstruct");
  if (masks_dir.has_value() == rs_path.has_value())
    throw UsageError{"give exactly one of --masks DIR and --rtstruct FILE"};
  // A case folder (`isoline phantom`, a `run` output) keeps its masks in masks/: read them
  // there when the folder itself holds none, and say so.
  if (masks_dir && core::mask_names(*masks_dir).empty()) {
    const std::string sub = (std::filesystem::path(*masks_dir) / "masks").string();
    std::error_code ec;
    const bool has_sub = std::filesystem::is_directory(sub, ec);
    if (!has_sub || core::mask_names(sub).empty())
      core::fail<core::InvalidInput>("dvh", *masks_dir,
                                     std::string("holds no <name>.nii.gz masks") +
                                         (has_sub ? " (nor does its masks/ folder)" : "") +
                                         ": give --masks the folder of the structures' <name>.nii.gz files");
    std::fprintf(stderr, "note: dvh: %s holds no <name>.nii.gz masks: reading %s\n", masks_dir->c_str(), sub.c_str());
    masks_dir = sub;
  }
  const std::string dose_path = args.value("--dose");
  const std::vector<std::string> names = args.get_all("--structure");

  // Targets and their prescriptions.
  std::map<std::string, double> target_rx;  // explicit --target NAME[=GY]
  for (const auto& t : args.get_all("--target")) {
    const auto eq = t.find('=');
    double rx = 0.0;
    if (eq != std::string::npos) {
      const std::string v = t.substr(eq + 1);
      std::size_t used = 0;
      try {
        rx = std::stod(v, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (v.empty() || used != v.size() || !(rx > 0) || !std::isfinite(rx))
        throw UsageError{"--target expects NAME or NAME=GY with a dose > 0, got '" + t + "'"};
      if (rx > planning::kMaxPrescriptionGy)
        throw UsageError{"--target " + t + ": " + v + " Gy is not a plausible prescription (cGy? 70 Gy is 70)"};
    }
    target_rx[t.substr(0, eq)] = rx;
  }
  // Everything else that can be wrong is checked before the dose is read and the table printed.
  const double rx_default = args.get_double("--rx", 0.0);
  if (rx_default > planning::kMaxPrescriptionGy)
    throw UsageError{"--rx: not a plausible prescription in Gy (cGy? 70 Gy is 70)"};
  const double bin = args.get_double("--bin", 0.1);
  if (!(bin > 0)) throw UsageError{"--bin must be > 0 Gy"};
  const double pixel = args.get_double("--pixel", 1.0);
  if (!(pixel > 0.05)) throw UsageError{"--pixel must be > 0.05 mm"};
  if (args.get_int("--supersample", 0) < 0) throw UsageError{"--supersample must be >= 0 (0 = automatic)"};
  for (const char* o : {"--csv", "--json"})
    if (auto f = args.get(o)) core::check_output_location(*f, "dvh");
  std::vector<planning::Criterion> criteria;
  if (auto crit = args.get("--criteria")) criteria = planning::load_criteria(*crit);
  std::string dose_frame;
  const core::Image dose = read_dose(dose_path, &dose_frame);
  if (const double max_gy = dose.min_max().second; max_gy > 200)
    std::fprintf(stderr, "warning: %s: maximum %.0f Gy: is this dose in cGy? (doses are read as Gy)\n",
                 dose_path.c_str(), max_gy);
  const std::vector<std::string> metrics = args.get_all("--metric");
  for (const auto& m : metrics) {
    planning::Dvh probe("probe", {1.f}, {1.0});
    try {
      planning::evaluate_metric(probe, m);
    } catch (const core::Error& e) {
      throw UsageError{std::string("--metric: ") + e.what()};
    }
  }

  planning::DvhOptions opt;
  opt.supersample = static_cast<int>(args.get_int("--supersample", 0));
  std::vector<Row> rows;
  std::map<std::string, planning::Dvh> dvhs;
  std::vector<std::string> outside;  // structures wholly outside the dose grid
  auto process = [&](const core::Structure& s) {
    // A structure beyond the dose grid would get 0 Gy there: left out when it lies wholly
    // outside, a warning when partly.
    const double out_frac = planning::fraction_outside(dose.geometry(), s.mask);
    if (out_frac >= 1.0) {  // (0 for an empty mask)
      outside.push_back(s.name);
      return;
    }
    if (out_frac > 0.001)
      std::fprintf(stderr, "warning: %.1f %% of %s lies outside the dose grid (counted as 0 Gy there)\n",
                   100 * out_frac, s.name.c_str());
    Row r;
    r.name = s.name;
    r.dvh = planning::compute_dvh(dose, s.mask, s.name, opt);
    if (!target_rx.empty()) {
      auto it = target_rx.find(s.name);
      r.target = it != target_rx.end();
      if (r.target) r.rx = it->second;
    } else {
      r.target = s.is_target();
    }
    if (r.target) {
      if (r.rx <= 0) r.rx = core::prescription_from_name(s.name);
      if (r.rx <= 0) r.rx = rx_default;
      r.hi = planning::homogeneity_index(r.dvh);
      if (r.rx > 0 && !r.dvh.empty()) {
        r.ci = planning::conformity_index(dose, s.mask, r.rx, opt);
        r.v95rx = 100 * r.dvh.volume_fraction_at_dose(0.95 * r.rx);
        r.v100rx = 100 * r.dvh.volume_fraction_at_dose(r.rx);
      }
    }
    for (const auto& m : metrics) r.extra.push_back(planning::evaluate_metric(r.dvh, m));
    dvhs[s.name] = r.dvh;
    rows.push_back(std::move(r));
  };

  // --structure and --target name structures that are there; the list says which ones are.
  std::vector<std::string> wanted = names;
  for (const auto& [t, rx] : target_rx) wanted.push_back(t);
  std::vector<std::string> no_contours;
  if (masks_dir) {
    const core::StructureSet set = core::read_mask_dir(*masks_dir, names);
    const auto present = set.names();
    if (std::any_of(wanted.begin(), wanted.end(),
                    [&](const std::string& w) { return std::find(present.begin(), present.end(), w) == present.end(); }))
      // Only then every mask is read, for the list (a --target may also lie outside --structure).
      require_structures(wanted, core::read_mask_dir(*masks_dir).names(), "dvh", *masks_dir);
    if (set.empty()) core::fail<core::InvalidInput>("dvh", *masks_dir, "no structure masks found");
    std::size_t n = 0;
    for (const auto& s : set) {
      progress.update(double(n++) / set.size(), s.name);
      process(s);
    }
  } else {
    const rtstruct::RtStructData rs = rtstruct::read_rtstruct(*rs_path);
    if (!dose_frame.empty())
      rtstruct::check_same_frame(rs, dose_frame, "dvh", *rs_path,
                                 "the dose's (" + dose_path +
                                     "): the structures and the dose belong to different scans or patients");
    {
      std::vector<std::string> present;
      for (const auto& roi : rs.rois) present.push_back(roi.name);
      require_structures(wanted, present, "dvh", *rs_path);
    }
    std::vector<std::string> todo;
    for (const auto& roi : rs.rois) {
      bool closed = false;
      for (const auto& c : roi.contours) closed = closed || (c.geometric_type == "CLOSED_PLANAR" && c.points.size() >= 3);
      const bool wanted = names.empty() || std::find(names.begin(), names.end(), roi.name) != names.end();
      if (!wanted) continue;
      if (closed)
        todo.push_back(roi.name);
      else
        no_contours.push_back(roi.name);
    }
    if (todo.empty())
      core::fail<core::InvalidInput>("dvh", *rs_path, "no ROI with closed contours" +
                                                           std::string(names.empty() ? "" : " among --structure"));
    // Fine in-plane grid fitted to the contour planes, not the dose grid: boundary voxels of
    // the coarse dose grid would change volumes by several %.
    const core::Geometry planes = rtstruct::contour_grid(rs, pixel, 3.0);
    const core::Geometry grid = planning::dvh_raster_grid(planes, external_spans_all_planes(rs, planes));
    // One ROI at a time: a fine grid over a whole BODY is large, masks are not kept.
    for (std::size_t n = 0; n < todo.size(); ++n) {
      progress.update(double(n) / todo.size(), todo[n]);
      rtstruct::RasterizeOptions ro;
      ro.names = {todo[n]};
      const core::StructureSet one = rtstruct::rasterize(rs, grid, ro);
      if (const core::Structure* s = one.find(todo[n])) process(*s);
    }
  }
  progress.done();
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.name < b.name; });

  std::printf("%-16s %9s %7s %7s %7s %7s %7s %7s %7s %7s %7s", "structure", "vol[cc]", "mean", "min", "max",
              "D0.1cc", "D0.03cc", "D98%", "D95%", "D50%", "D2%");
  for (const auto& m : metrics) std::printf(" %9s", m.c_str());
  std::printf("\n");
  for (const auto& r : rows) {
    const auto& d = r.dvh;
    std::printf("%-16s %9.2f %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f", r.name.c_str(), d.volume_cc(),
                d.mean_gy(), d.min_gy(), d.max_gy(), d.dose_at_cc(0.1), d.dose_at_cc(0.03), d.dose_at_percent(98),
                d.dose_at_percent(95), d.dose_at_percent(50), d.dose_at_percent(2));
    for (double v : r.extra) std::printf(" %9.2f", v);
    std::printf("\n");
  }
  for (const auto& nm : no_contours) std::printf("%-16s (no closed contours, skipped)\n", nm.c_str());
  for (const auto& nm : outside) std::printf("%-16s (outside the dose grid, skipped)\n", nm.c_str());
  std::printf("doses in Gy; Dx%% = minimum dose to the hottest x %% of the volume, Dxcc to the hottest x cc\n");

  bool any_target = false;
  for (const auto& r : rows) any_target = any_target || r.target;
  if (any_target) {
    std::printf("\n%-16s %7s %7s %7s %9s %9s %7s %7s\n", "target", "Rx[Gy]", "D99%", "D95%", "V95%Rx", "V100%Rx",
                "HI", "CI");
    for (const auto& r : rows)
      if (r.target)
        std::printf("%-16s %7s %7.2f %7.2f %9s %9s %7s %7s\n", r.name.c_str(), r.rx > 0 ? fmt(r.rx).c_str() : "-",
                    r.dvh.dose_at_percent(99), r.dvh.dose_at_percent(95), fmt(r.v95rx, "%.1f%%").c_str(),
                    fmt(r.v100rx, "%.1f%%").c_str(), fmt(r.hi, "%.3f").c_str(), fmt(r.ci, "%.3f").c_str());
    std::printf("HI = (D2%% - D98%%) / D50%% (ICRU 83); CI = Paddick TV_PIV^2 / (TV x PIV) at Rx"
                "%s\n", rx_default > 0 || !target_rx.empty() ? "" : " (Rx from the name, or --rx)");
  }

  int failed = 0;
  if (args.get("--criteria")) {
    auto results = planning::evaluate_criteria(criteria, dvhs);
    std::printf("\n");
    failed = print_criteria_table(results);
  }

  if (auto csv = args.get("--csv")) {
    std::ostringstream f;
    f << "structure,dose_gy,cumulative_fraction,cumulative_cc,differential_cc\n";
    f.precision(9);
    for (const auto& r : rows) {
      std::vector<double> x, y, xd, dv;
      r.dvh.cumulative(bin, &x, &y);
      r.dvh.differential(bin, &xd, &dv);
      for (std::size_t i = 0; i < x.size(); ++i)
        f << r.name << "," << x[i] << "," << y[i] << "," << y[i] * r.dvh.volume_cc() << ","
          << (i < dv.size() ? dv[i] : 0.0) << "\n";
    }
    core::write_file_atomic(*csv, f.str(), "dvh");
  }

  if (auto js = args.get("--json")) {
    std::ostringstream f;
    f.precision(9);
    f << "{\n  \"dose\": \"" << json_escape(dose_path) << "\",\n  \"structures\": [";
    bool first = true;
    for (const auto& r : rows) {
      const auto& d = r.dvh;
      f << (first ? "\n" : ",\n") << "    {\"name\": \"" << json_escape(r.name) << "\", \"volume_cc\": " << d.volume_cc()
        << ", \"mean_gy\": " << d.mean_gy() << ", \"min_gy\": " << d.min_gy() << ", \"max_gy\": " << d.max_gy()
        << ", \"d0.1cc_gy\": " << d.dose_at_cc(0.1) << ", \"d0.03cc_gy\": " << d.dose_at_cc(0.03);
      for (double p : {99.0, 98.0, 95.0, 50.0, 2.0}) f << ", \"d" << p << "_gy\": " << d.dose_at_percent(p);
      if (r.target) {
        f << ", \"target\": true";
        if (r.rx > 0) f << ", \"rx_gy\": " << r.rx;
        if (std::isfinite(r.hi)) f << ", \"hi\": " << r.hi;
        if (std::isfinite(r.ci)) f << ", \"ci\": " << r.ci;
        if (std::isfinite(r.v95rx)) f << ", \"v95rx_percent\": " << r.v95rx;
      }
      for (std::size_t m = 0; m < metrics.size(); ++m)
        f << ", \"" << json_escape(metrics[m]) << "\": " << r.extra[m];
      f << "}";
      first = false;
    }
    f << "\n  ]\n}\n";
    core::write_file_atomic(*js, f.str(), "dvh");
  }
  return args.flag("--fail-on-criteria") && failed > 0 ? 3 : 0;
}

}  // namespace

Command make_dvh_command() {
  Command c;
  c.name = "dvh";
  c.summary = "DVH metrics and clinical criteria for a dose and structures";
  c.description =
      "Computes each structure's DVH with sub-voxel dose sampling (trilinear interpolation) and\n"
      "prints volume, mean, min, max, D0.1cc, D0.03cc, D98%, D95%, D50% and D2% (plus any\n"
      "--metric), and for targets D99%, D95%, V95%Rx, V100%Rx, homogeneity (ICRU 83) and\n"
      "Paddick conformity indices. Structures come from a directory of masks or an RT-STRUCT\n"
      "(rasterised on a --pixel mm grid fitted to its contour planes). Targets are PTV/CTV/GTV\n"
      "ROIs (interpreted type or name) unless --target is given; their prescription is\n"
      "--target NAME=GY, else a number >= 10 in the name (PTV70), else --rx. With --criteria,\n"
      "evaluates a criteria file (e.g. planning/criteria/hn.json) and prints PASS/FAIL.";
  c.options = {
      {"--dose", "FILE", "dose in Gy: RT Dose (DICOM), NIfTI, NRRD or MHA", true},
      {"--masks", "DIR", "directory of <structure>.nii.gz masks (or --rtstruct)"},
      {"--rtstruct", "FILE", "RT Structure Set (or --masks)"},
      {"--structure", "NAME", "only these structures (repeatable)", false, "", true},
      {"--target", "NAME[=GY]", "target structure and its prescription (repeatable)", false, "", true},
      {"--rx", "GY", "prescription for targets without one"},
      {"--metric", "M", "extra column: D<x>%, D<x>cc, V<x>Gy, V<x>Gy_cc, Dmean... (repeatable)", false, "", true},
      {"--criteria", "FILE", "criteria JSON file"},
      {"--csv", "FILE", "write cumulative and differential DVHs as CSV"},
      {"--bin", "GY", "CSV bin width", false, "0.1"},
      {"--json", "FILE", "write the metrics as JSON"},
      {"--pixel", "MM", "in-plane pixel of the RT-STRUCT rasterisation grid", false, "1.0"},
      {"--supersample", "N", "sub-samples per voxel axis (0 = automatic)", false, "0"},
      {"--fail-on-criteria", "", "exit with status 3 when a criterion fails"},
  };
  c.run = run_dvh;
  return c;
}

}  // namespace isoline::cli
