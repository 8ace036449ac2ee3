// isoline info <file-or-dir>: geometry and content summary.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include "command.h"
#include "isoline/adaptive/registration.h"
#include "isoline/core/error.h"
#include "isoline/core/io.h"
#include "isoline/rtstruct/ct_series.h"
#include "isoline/rtstruct/rtdose.h"
#include "isoline/rtstruct/rtstruct.h"

namespace fs = std::filesystem;

namespace isoline::cli {

namespace {

// A 3-component image: the displacement fields `isoline register` and `adapt` write.
void describe_field(const std::string& path) {
  const adaptive::DisplacementField f = adaptive::read_field(path);
  double max_mm = 0, sum_mm = 0;
  for (std::size_t v = 0; v + 2 < f.data.size(); v += 3) {
    const double m = std::sqrt(double(f.data[v]) * f.data[v] + double(f.data[v + 1]) * f.data[v + 1] +
                               double(f.data[v + 2]) * f.data[v + 2]);
    max_mm = std::max(max_mm, m);
    sum_mm += m;
  }
  const std::size_t n = f.data.size() / 3;
  std::printf("file      %s\n", path.c_str());
  std::printf("kind      displacement field (3 components per voxel, mm; fixed -> moving)\n");
  std::printf("%s\n", f.geometry.describe().c_str());
  std::printf("vectors   |u| mean %.2f mm, max %.2f mm over %zu voxels\n", n ? sum_mm / n : 0.0, max_mm, n);
}

void describe_image(const std::string& path) {
  core::Image img;
  try {
    img = core::read_image(path);
  } catch (const core::NotSupported& e) {
    if (std::string(e.what()).find("got 3 components") == std::string::npos) throw;
    describe_field(path);
    return;
  }
  auto [lo, hi] = img.min_max();
  std::printf("file      %s\n", path.c_str());
  static const char* kNames[] = {"unknown", "NIfTI", "NRRD", "MetaImage"};
  std::printf("kind      %s 3-D image\n", kNames[static_cast<int>(core::image_format_from_path(path))]);
  std::printf("%s\n", img.geometry().describe().c_str());
  std::printf("pixels    %s, range [%g, %g], %zu non-zero of %zu\n", core::to_string(img.pixel_type()),
              lo, hi, img.count_nonzero(), img.num_voxels());
}

void describe_ct(const rtstruct::CtSeries& ct, double read_seconds = -1) {
  auto [lo, hi] = ct.image.min_max();
  std::printf("kind      DICOM %s series, %zu slices%s\n", ct.modality.c_str(), ct.slices.size(),
              ct.resampled ? " (resampled)" : "");
  std::printf("series    %s \"%s\"\n", ct.series_instance_uid.c_str(), ct.series_description.c_str());
  std::printf("patient   %s (%s), position %s\n", ct.info.patient_name.c_str(), ct.info.patient_id.c_str(),
              ct.patient_position.empty() ? "?" : ct.patient_position.c_str());
  std::printf("frame     %s\n", ct.frame_of_reference_uid.c_str());
  std::printf("%s\n", ct.image.geometry().describe().c_str());
  std::printf("pixels    HU range [%g, %g]\n", lo, hi);
  if (read_seconds >= 0) std::printf("read      %.3f s\n", read_seconds);
  for (const auto& w : ct.warnings) std::printf("warning   %s\n", w.c_str());
}

void describe_rtstruct(const std::string& path) {
  auto rs = rtstruct::read_rtstruct(path);
  std::printf("file      %s\n", path.c_str());
  std::printf("kind      DICOM RT Structure Set \"%s\", %zu ROIs\n", rs.structure_set_label.c_str(), rs.rois.size());
  std::printf("patient   %s (%s)\n", rs.info.patient_name.c_str(), rs.info.patient_id.c_str());
  std::printf("frame     %s\n", rs.frame_of_reference_uid.c_str());
  std::printf("CT        series %s, %zu slices referenced\n",
              rs.referenced_series_instance_uid.empty() ? "?" : rs.referenced_series_instance_uid.c_str(),
              rs.contour_image_uids.size());
  std::printf("%-4s %-24s %-10s %9s %11s\n", "#", "ROI", "type", "contours", "volume cc");
  for (const auto& r : rs.rois)
    std::printf("%-4d %-24s %-10s %9zu %11.2f\n", r.number, r.name.c_str(),
                r.interpreted_type.empty() ? "-" : r.interpreted_type.c_str(), r.contours.size(),
                rtstruct::contour_volume_cc(rs, r));
  for (const auto& w : rs.warnings) std::printf("warning   %s\n", w.c_str());
}

void describe_rtdose(const std::string& path) {
  auto d = rtstruct::read_rtdose(path);
  std::printf("file      %s\n", path.c_str());
  std::printf("kind      DICOM RT Dose, %s %s %s\n", d.dose_units.c_str(), d.dose_type.c_str(),
              d.dose_summation_type.c_str());
  std::printf("frame     %s\n", d.frame_of_reference_uid.c_str());
  if (!d.referenced_plan_sop_instance_uid.empty()) std::printf("plan      %s\n", d.referenced_plan_sop_instance_uid.c_str());
  std::printf("%s\n", d.dose.geometry().describe().c_str());
  std::printf("dose      max %.4f Gy (DoseGridScaling %g)\n", d.dose.min_max().second, d.dose_grid_scaling);
}

void describe_dicom_file(const std::string& path, const std::string& modality) {
  if (modality == "RTSTRUCT") return describe_rtstruct(path);
  if (modality == "RTDOSE") return describe_rtdose(path);
  if (modality == "RTPLAN") {
    std::printf("file      %s\nkind      DICOM RT Plan\n", path.c_str());
    return;
  }
  rtstruct::CtReadOptions o;
  o.allow_non_ct = true;
  std::printf("file      %s\n", path.c_str());
  describe_ct(rtstruct::read_ct_series(path, o));
}

void describe_dicom_dir(const std::string& path) {
  auto list = rtstruct::list_series(path);
  if (list.empty()) core::fail<core::IoError>("info", path, "directory holds no recognised image or DICOM data");
  std::printf("directory %s: %zu DICOM series\n", path.c_str(), list.size());
  for (const auto& s : list)
    std::printf("  %-8s %4zu files  %s \"%s\"\n", s.modality.c_str(), s.num_files, s.series_instance_uid.c_str(),
                s.series_description.c_str());
  for (const auto& s : list) {
    std::printf("\n");
    if (s.modality == "RTSTRUCT" || s.modality == "RTDOSE" || s.modality == "RTPLAN") {
      describe_dicom_file(s.first_file, s.modality);
      continue;
    }
    rtstruct::CtReadOptions o;
    o.allow_non_ct = true;
    o.series_instance_uid = s.series_instance_uid;
    try {
      const auto t0 = std::chrono::steady_clock::now();
      auto ct = rtstruct::read_ct_series(path, o);
      describe_ct(ct, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    } catch (const core::Error& e) {
      std::printf("series    %s: %s\n", s.series_instance_uid.c_str(), e.what());
    }
  }
}

int run_info(const Args& args, const Context&) {
  const std::string path = args.positional(0);
  std::error_code ec;
  if (!fs::exists(path, ec)) core::fail<core::IoError>("info", path, "no such file or directory");
  if (core::is_image_path(path)) {
    describe_image(path);
    return 0;
  }
  if (fs::is_directory(path, ec)) {
    describe_dicom_dir(path);
    return 0;
  }
  const std::string modality = rtstruct::dicom_modality_checked(path);
  if (!modality.empty()) {
    describe_dicom_file(path, modality);
    return 0;
  }
  core::fail<core::IoError>("info", path,
                            "not a recognised file (expected NIfTI .nii/.nii.gz, NRRD, MetaImage "
                            ".mha/.mhd, or DICOM)");
}

}  // namespace

Command make_info_command() {
  Command c;
  c.name = "info";
  c.summary = "describe a CT series, image, RT-STRUCT or RT-DOSE";
  c.description =
      "Prints the geometry (size, spacing, LPS origin, direction) and a content summary of\n"
      "a NIfTI/NRRD/MetaImage file, a DICOM file or a directory of DICOM files.";
  c.positionals = {{"PATH", "file or directory to describe"}};
  c.run = run_info;
  c.quiet_option = false;
  return c;
}

}  // namespace isoline::cli
