#include "isoline/pipeline/case_io.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "isoline/core/atomic_file.h"
#include "isoline/core/error.h"
#include "isoline/core/io.h"
#include "isoline/report/report.h"
#include "isoline/rtstruct/rtdose.h"
#include "isoline/rtstruct/rtstruct.h"

namespace fs = std::filesystem;

namespace isoline::pipeline {

CaseCt load_ct(const std::string& path, const core::Progress& progress, const std::string& patient_id,
               const std::string& patient_name) {
  std::error_code ec;
  if (!fs::exists(path, ec)) core::fail<core::IoError>("read CT", path, "no such file or directory");
  CaseCt c;
  c.path = fs::absolute(path, ec).lexically_normal().string();
  if (ec) c.path = path;
  if (core::is_image_path(path)) {
    c.series.image = core::read_image(path);
    if (c.series.image.pixel_type() == core::PixelType::UInt8)
      core::fail<core::InvalidInput>("read CT", path, "image is uint8 (a mask?), expected Hounsfield units");
    c.series.info = rtstruct::identity_for_image(c.series.image, patient_id, patient_name);
    c.series.frame_of_reference_uid = rtstruct::generate_uid();
  } else {
    if (!patient_id.empty() || !patient_name.empty())
      core::fail<core::InvalidInput>("read CT", path,
                                     "a DICOM CT keeps its own patient ID and name (a patient ID or name is "
                                     "given only for a CT from an image file)");
    c.series = rtstruct::read_ct_series(path, {}, progress);
    c.from_dicom = true;
  }
  progress.done();
  return c;
}

std::vector<std::string> write_ct_for_image(CaseCt& ct, const std::string& dir, const core::Progress& progress) {
  if (ct.from_dicom) return {};
  rtstruct::CtWriteOptions wo;
  wo.info = ct.series.info;
  wo.frame_of_reference_uid = ct.series.frame_of_reference_uid;
  wo.series_description = "Isoline CT (from " + fs::path(ct.path).filename().string() + ")";
  ct.series = rtstruct::write_ct_series(ct.series.image, (fs::path(dir) / "CT").string(), wo, progress);
  return {"CT/"};
}

void write_quality_json(const contouring::ContourResult& r, const std::string& path, const std::string& op,
                        const std::map<std::string, std::string>& given) {
  nlohmann::ordered_json j;
  j["model"] = r.model_name;
  j["model_version"] = r.model_version;
  j["in_scope"] = r.in_scope;
  j["warnings"] = r.warnings;
  j["structures"] = nlohmann::ordered_json::object();
  for (const auto& q : r.quality)
    j["structures"][q.name] = {{"volume_cc", q.volume_cc},
                               {"confidence", q.confidence},
                               {"kept_fraction", q.kept_fraction},
                               {"pieces", q.pieces},
                               {"flags", q.flags}};
  for (const auto& [name, source] : given)
    j["structures"][name] = {{"origin", "given"}, {"source", source}, {"flags", nlohmann::ordered_json::array()}};
  core::write_file_atomic(
      path, j.dump(1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n", op);
}

rtstruct::RtStructWriteOptions auto_contour_options(const contouring::ContourResult& r) {
  rtstruct::RtStructWriteOptions wo;
  // AlgorithmName names the model, AlgorithmVersion is the software's (Isoline's) version; the
  // model's version is in the StructureSetDescription with the whole-image warnings.
  wo.algorithm_name = "Isoline " + r.model_name;
  wo.structure_set_label = "AUTO";
  std::string d = "Isoline auto-contours, model " + r.model_name + " " + r.model_version + ": review required";
  for (const auto& w : r.warnings) d += "; WARNING: " + w;
  wo.structure_set_description = d;
  wo.series_description = r.warnings.empty() ? "Isoline auto-contours (review required)"
                                             : "Isoline auto-contours: WARNINGS (review required)";
  wo.approval_status = "UNAPPROVED";
  return wo;
}

core::StructureSet load_structures(const std::string& path, const CaseCt& ct, const std::vector<std::string>& names) {
  std::error_code ec;
  if (!fs::exists(path, ec)) core::fail<core::IoError>("read structures", path, "no such file or directory");
  core::StructureSet set;
  if (fs::is_directory(path, ec)) {
    set = core::read_mask_dir(path, names);
    if (set.empty()) core::fail<core::InvalidInput>("read structures", path, "no <structure>.nii.gz masks found");
    if (!set.geometry().same_grid(ct.series.image.geometry()))
      core::fail<core::InvalidInput>("read structures", path, "the masks are not on the CT grid (" +
                                                                  set.geometry().summary() + "; CT " +
                                                                  ct.series.image.geometry().summary() + ")");
  } else {
    rtstruct::RtStructData rs = rtstruct::read_rtstruct(path);
    // A CT read from an image file has no frame of reference of its own to compare with.
    if (ct.from_dicom && !ct.series.frame_of_reference_uid.empty())
      rtstruct::check_same_frame(rs, ct.series.frame_of_reference_uid, "read structures", path,
                                 "the CT's: the RT-STRUCT belongs to another scan or patient");
    core::StructureSet all = rtstruct::rasterize(rs, ct.series.image.geometry());
    if (names.empty()) {
      set = std::move(all);
    } else {
      set = core::StructureSet(ct.series.image.geometry());
      for (const auto& n : names)
        if (const core::Structure* s = all.find(n)) set.add(*s);
    }
    if (set.empty()) core::fail<core::InvalidInput>("read structures", path, "the RT-STRUCT has no usable ROI");
  }
  return set;
}


const std::vector<std::string>& case_ct_names() {
  static const std::vector<std::string> names = {"CT", "ct", "ct.nii.gz", "ct.nii", "ct.nrrd", "ct.mha", "dicom"};
  return names;
}

std::string case_ct_list() {
  const auto& names = case_ct_names();
  std::string s;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const bool folder = names[i].find('.') == std::string::npos;
    s += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i] + (folder ? "/" : "");
  }
  return s;
}

std::string find_case_ct(const std::string& dir, std::string* recorded_missing) {
  if (recorded_missing) recorded_missing->clear();
  std::error_code ec;
  for (const auto& n : case_ct_names())
    if (fs::exists(fs::path(dir) / n, ec)) return (fs::path(dir) / n).string();
  const fs::path metrics = fs::path(dir) / "metrics.json";
  if (!fs::is_regular_file(metrics, ec)) return {};
  std::string recorded;
  try {
    std::ifstream f(metrics);
    const nlohmann::json j = nlohmann::json::parse(f);
    if (j.contains("ct") && j["ct"].contains("path")) recorded = j["ct"]["path"].get<std::string>();
  } catch (const std::exception&) {
    return {};  // not write_plan_outputs' metrics.json
  }
  if (recorded.empty()) return {};
  if (fs::exists(recorded, ec)) return recorded;
  if (recorded_missing) *recorded_missing = recorded;
  return {};
}

PlanOutputs write_plan_outputs(const std::string& dir, const CaseCt& ct, const core::StructureSet& structures,
                               const planning::PlanResult& r) {
  (void)structures;
  core::ensure_directory(dir, "write plan");
  PlanOutputs o;
  o.dir = dir;
  planning::write_plan_json(r.plan, r.fractions, (fs::path(dir) / "plan.json").string());
  o.files.push_back("plan.json");
  core::write_image(r.dose, (fs::path(dir) / "dose.nii.gz").string());
  o.files.push_back("dose.nii.gz");
  {
    rtstruct::RtDoseWriteOptions wo;
    wo.dose_comment = "Isoline achievable dose, " + r.plan.name;
    if (wo.dose_comment.size() > 64) wo.dose_comment = "Isoline achievable dose";  // LO; the name is in plan.json
    rtstruct::write_rtdose(r.dose, ct.series, (fs::path(dir) / "RD.dcm").string(), wo);
    o.files.push_back("RD.dcm");
  }
  // Cumulative DVHs.
  {
    std::string csv = "structure,dose_gy,volume_fraction\n";
    char line[160];
    for (const auto& [name, d] : r.dvhs) {
      std::vector<double> x, y;
      d.cumulative(0.1, &x, &y);
      for (std::size_t i = 0; i < x.size(); ++i) {
        std::snprintf(line, sizeof line, "%s,%.2f,%.6f\n", name.c_str(), x[i], y[i]);
        csv += line;
      }
    }
    core::write_file_atomic((fs::path(dir) / "dvh.csv").string(), csv, "write DVH");
    o.files.push_back("dvh.csv");
  }
  // Metrics, criteria and timings for scripts.
  {
    nlohmann::json j;
    j["plan"] = r.plan.name;
    j["fractions"] = r.fractions;
    j["ct"] = {{"path", ct.path},
               {"dicom", ct.from_dicom},
               {"series_instance_uid", ct.series.series_instance_uid},
               {"frame_of_reference_uid", ct.series.frame_of_reference_uid}};
    j["timing_s"] = {{"influence", r.timing.influence_s}, {"optimise", r.timing.optimize_s},
                     {"dose", r.timing.dose_s}, {"total", r.timing.total_s}};
    j["optimizer"] = {{"iterations", r.optimizer.iterations}, {"converged", r.optimizer.converged}};
    j["warnings"] = r.warnings;
    for (const auto& [name, d] : r.dvhs)
      j["structures"][name] = {{"volume_cc", d.volume_cc()}, {"mean_gy", d.mean_gy()},   {"max_gy", d.max_gy()},
                               {"min_gy", d.min_gy()},       {"d0_1cc_gy", d.dose_at_cc(0.1)},
                               {"d99_gy", d.dose_at_percent(99)}, {"d95_gy", d.dose_at_percent(95)},
                               {"d50_gy", d.dose_at_percent(50)}, {"d2_gy", d.dose_at_percent(2)}};
    // "pass" is the verdict at mask-voxel centres (the normalisation's DVH); "pass_subvoxel" the
    // verdict on the sub-voxel value, about what a TPS computes from RS + RD; "verdict_differs"
    // marks the criteria where the two disagree (docs/planning.md, step 8).
    j["criteria"] = nlohmann::json::array();
    for (const auto& c : r.criteria) {
      const bool fine = c.evaluated && std::isfinite(c.value_subvoxel);
      j["criteria"].push_back({{"criterion", c.criterion.description},
                               {"evaluated", c.evaluated},
                               {"value", c.evaluated ? nlohmann::json(c.value) : nlohmann::json()},
                               {"value_subvoxel", fine ? nlohmann::json(c.value_subvoxel) : nlohmann::json()},
                               {"pass", c.pass},
                               {"pass_subvoxel", fine ? nlohmann::json(c.pass_subvoxel) : nlohmann::json()},
                               {"verdict_differs", c.verdict_differs()}});
    }
    j["criteria_passed"] = planning::count_passed(r.criteria);
    j["criteria_passed_subvoxel"] = planning::count_passed_subvoxel(r.criteria);
    core::write_file_atomic((fs::path(dir) / "metrics.json").string(), j.dump(1) + "\n", "write metrics");
    o.files.push_back("metrics.json");
  }
  return o;
}

void write_plan_report(const std::string& path, const std::string& title, const CaseCt& ct,
                       const core::StructureSet& structures, const planning::PlanResult& plan,
                       const std::vector<std::pair<std::string, std::string>>& info,
                       const std::vector<std::string>& warnings) {
  report::ReportInput in;
  in.title = title;
  in.info = info;
  char line[300];
  std::snprintf(line, sizeof line, "%zu beams (%s), %d fractions", plan.plan.beams.size(), plan.plan.machine.name.c_str(),
                plan.fractions);
  in.info.push_back({"Beams", line});
  std::snprintf(line, sizeof line, "%d iterations%s; influence matrix %.1f s, optimisation %.1f s, final dose %.1f s",
                plan.optimizer.iterations,
                plan.optimizer.converged ? " (converged)"
                                         : " (stopped at the iteration limit, not converged: more iterations may lower the OAR doses)",
                plan.timing.influence_s,
                plan.timing.optimize_s, plan.timing.dose_s);
  in.info.push_back({"Optimisation", line});
  in.warnings = warnings;
  in.warnings.insert(in.warnings.end(), plan.warnings.begin(), plan.warnings.end());
  in.ct = ct.series.image;
  in.structures = structures;
  in.doses.push_back({"Achievable plan", plan.dose, plan.dvhs, plan.criteria});
  report::write_html(in, path);
}

void write_contour_review(const core::Image& ct, const contouring::ContourResult& result,
                          const std::string& html_path, const std::string& png_path,
                          const std::string& title,
                          const std::vector<std::pair<std::string, std::string>>& info) {
  report::ReportInput in;
  in.title = title;
  in.info = info;
  in.info.push_back({"Model", result.model_name + " " + result.model_version});
  in.info.push_back({"Status", "automatic contours: to be reviewed before clinical use"});
  in.warnings = result.warnings;
  for (const auto& q : result.quality)
    for (const auto& f : q.flags) in.warnings.push_back(q.name + ": " + f);
  in.ct = ct;
  in.structures = result.structures;
  report::ReportOptions opt;
  opt.axial_series = 12;  // the organs slice by slice, not only through the target
  if (!html_path.empty()) report::write_html(in, html_path, opt);
  if (!png_path.empty()) report::write_figure_png(in, png_path);
}

}  // namespace isoline::pipeline
