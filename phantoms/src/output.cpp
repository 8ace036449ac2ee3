// Writing a generated case: NIfTI CT, labels and masks, ground truth JSON, DICOM CT series
// and RT-STRUCT (through the rtstruct module), preview PNG.
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "isoline/core/atomic_file.h"
#include "isoline/core/error.h"
#include "isoline/core/io.h"
#include "isoline/core/version.h"
#include "isoline/phantoms/phantoms.h"

#if ISOLINE_PHANTOMS_DICOM
#include "isoline/rtstruct/ct_series.h"
#include "isoline/rtstruct/rtstruct.h"
#endif

namespace fs = std::filesystem;

namespace isoline::phantoms {

bool dicom_output_available() { return ISOLINE_PHANTOMS_DICOM != 0; }

std::vector<std::string> write_phantom(const Phantom& ph, const std::string& dir,
                                       const WriteOptions& o, const core::Progress& progress) {
  const char* op = "write phantom";
  if (ph.ct.empty()) core::fail<core::InvalidInput>(op, dir, "phantom has no CT");
  core::ensure_directory(dir, op);
  std::vector<std::string> files;
  const fs::path root(dir);
  std::string patient_id = o.patient_id;
  if (patient_id.empty()) {
    patient_id = "PHANTOM-" + ph.kind;
    auto seed = ph.facts.find("seed");
    if (seed != ph.facts.end()) patient_id += "-" + seed->second;
  }

  if (o.nifti) {
    progress.update(0.0, "ct.nii.gz");
    core::write_image(ph.ct, (root / "ct.nii.gz").string());
    files.push_back((root / "ct.nii.gz").string());
    progress.update(0.2, "labels.nii.gz");
    core::write_image(ph.labels, (root / "labels.nii.gz").string());
    files.push_back((root / "labels.nii.gz").string());
    progress.update(0.3, "masks");
    core::write_mask_dir(ph.structures, (root / "masks").string());
    for (const auto& s : ph.structures) files.push_back((root / "masks" / (s.name + ".nii.gz")).string());
  }

  // Ground truth facts.
  {
    nlohmann::json j;
    j["kind"] = ph.kind;
    j["generator"] = std::string("isoline ") + core::version();
    j["patient_id"] = patient_id;
    j["patient_position"] = to_string(ph.position);
    for (const auto& [k, v] : ph.facts) j["facts"][k] = v;
    j["noise_sd_hu"] = ph.noise_sd_hu;
    const auto& g = ph.ct.geometry();
    j["grid"] = {{"size", g.size}, {"spacing_mm", g.spacing}, {"origin_lps_mm", g.origin},
                 {"direction", g.direction}};
    for (const auto& s : ph.structures) {
      nlohmann::json e;
      e["type"] = core::to_dicom_string(s.type);
      e["color"] = {s.color.r, s.color.g, s.color.b};
      e["voxel_volume_cc"] = s.volume_cc();
      auto it = ph.analytic_volume_cc.find(s.name);
      if (it != ph.analytic_volume_cc.end())
        e["analytic_volume_cc"] = it->second;
      else
        e["analytic_volume_cc"] = nullptr;
      j["structures"][s.name] = e;
    }
    for (int t = 0; t < kNumTissues; ++t)
      j["tissues"][std::to_string(t)] = {{"name", tissue_name(static_cast<Tissue>(t))},
                                         {"hu", tissue_hu(static_cast<Tissue>(t))}};
    const std::string path = (root / "ground_truth.json").string();
    core::write_file_atomic(path, j.dump(2) + "\n", op);
    files.push_back(path);
  }

  if (o.dicom) {
#if ISOLINE_PHANTOMS_DICOM
    progress.update(0.5, "DICOM CT");
    rtstruct::CtWriteOptions co;
    co.info.patient_name = "Isoline^Phantom";
    co.info.patient_id = patient_id;
    co.info.study_description = "Isoline phantom " + ph.kind;
    co.series_description = "Isoline phantom CT";
    co.patient_position = to_string(ph.position);
    co.rescale_intercept = -1024;
    const std::string ddir = (root / "dicom").string();
    rtstruct::CtSeries series =
        rtstruct::write_ct_series(ph.ct, ddir, co, progress.sub(0.5, 0.75, "DICOM CT"));
    for (const auto& s : series.slices) files.push_back(s.file);
    rtstruct::RtStructWriteOptions ro;
    ro.structure_set_label = "PHANTOM";
    ro.algorithm_name = "Isoline phantom ground truth";
    const std::string rs = (fs::path(ddir) / "RS.dcm").string();
    rtstruct::write_rtstruct(ph.structures, series, rs, ro, progress.sub(0.75, 0.95, "RT-STRUCT"));
    files.push_back(rs);
#endif
  }

  if (o.preview) {
    progress.update(0.95, "preview.png");
    write_preview_png(ph, (root / "preview.png").string());
    files.push_back((root / "preview.png").string());
  }
  progress.done();
  return files;
}

}  // namespace isoline::phantoms
