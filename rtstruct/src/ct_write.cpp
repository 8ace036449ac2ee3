// CT series writer: one CT Image Storage file per slice, written into a temporary
// directory that is renamed onto the target.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>

#include "dicom_common.h"
#include "isoline/core/atomic_file.h"
#include "isoline/core/error.h"
#include "isoline/core/version.h"
#include "isoline/rtstruct/ct_series.h"

namespace fs = std::filesystem;

namespace isoline::rtstruct {

using detail::format_ds;
using detail::format_ds_list;
using detail::put;
using detail::put_us;

PatientStudy identity_for_image(const core::Image& ct, const std::string& patient_id,
                                const std::string& patient_name) {
  const char* op = "DICOM identity of an image CT";
  for (const auto* v : {&patient_id, &patient_name}) {
    if (v->size() > 64) core::fail<core::InvalidInput>(op, *v, "longer than 64 characters");
    for (unsigned char c : *v)
      if (c < 0x20 || c == '\\' || c == 0x7f)
        core::fail<core::InvalidInput>(op, *v, "holds a backslash or control character");
  }
  PatientStudy p;
  p.study_instance_uid = generate_uid();
  p.patient_name = patient_name.empty() ? "ANONYMOUS^" : patient_name;
  p.patient_id = patient_id;
  if (p.patient_id.empty()) {
    // FNV-1a (64 bit) over the geometry and the voxels.
    std::uint64_t h = 1469598103934665603ull;
    auto mix = [&h](const void* data, std::size_t n) {
      const auto* b = static_cast<const unsigned char*>(data);
      for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
    };
    const core::Geometry& g = ct.geometry();
    mix(g.size.data(), sizeof(g.size));
    mix(g.spacing.data(), sizeof(g.spacing));
    mix(g.origin.data(), sizeof(g.origin));
    mix(g.direction.data(), sizeof(g.direction));
    // As the DICOM series stores it (int16 HU): the same file read as float or as int16, by
    // `convert --to ct` or by `run`, gets the same ID.
    if (!ct.empty()) {
      const core::Image hu = ct.pixel_type() == core::PixelType::Int16 ? ct : ct.cast(core::PixelType::Int16);
      mix(hu.raw(), hu.byte_size());
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "IMG-%012llx", static_cast<unsigned long long>(h >> 16));
    p.patient_id = buf;
  }
  return p;
}

CtSeries write_ct_series(const core::Image& hu_in, const std::string& dir,
                         const CtWriteOptions& opt, const core::Progress& progress) {
  const char* op = "write CT series";
  if (hu_in.empty()) core::fail<core::InvalidInput>(op, dir, "image is empty");
  const core::Geometry& g = hu_in.geometry();
  g.validate("write CT series: " + dir);
  if (g.size[0] > 65535 || g.size[1] > 65535)
    core::fail<core::InvalidInput>(op, dir, "slices larger than 65535 pixels");
  core::Image hu =
      hu_in.pixel_type() == core::PixelType::Int16 ? hu_in : hu_in.cast(core::PixelType::Int16);

  CtSeries s;
  s.info = opt.info;
  if (s.info.study_instance_uid.empty()) s.info.study_instance_uid = generate_uid();
  if (s.info.patient_name.empty()) s.info.patient_name = "ANONYMOUS^";
  if (s.info.patient_id.empty()) s.info.patient_id = identity_for_image(hu_in).patient_id;
  if (s.info.study_date.empty()) s.info.study_date = detail::today();
  if (s.info.study_time.empty()) s.info.study_time = detail::now_time();
  if (s.info.study_id.empty()) s.info.study_id = "1";
  s.series_instance_uid =
      opt.series_instance_uid.empty() ? generate_uid() : opt.series_instance_uid;
  s.frame_of_reference_uid =
      opt.frame_of_reference_uid.empty() ? generate_uid() : opt.frame_of_reference_uid;
  s.series_description = opt.series_description;
  s.series_number = opt.series_number;
  s.patient_position = opt.patient_position;
  s.manufacturer = "Isoline";
  s.modality = "CT";
  s.image = hu;

  std::error_code ec;
  const fs::path target = fs::absolute(dir, ec);
  // Missing folders above it are created, and removed again when writing fails (only those).
  core::AtomicOutputs out;
  const std::string series_tmp = out.add(target.string(), /*directory=*/true, /*create_parents=*/true, op);

  const auto nx = g.size[0], ny = g.size[1], nz = g.size[2];
  const std::size_t npx = static_cast<std::size_t>(nx) * ny;
  const core::Vec3 r = g.axis(0), c = g.axis(1), kax = g.axis(2);
  const core::Vec3 n{r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2],
                     r[0] * c[1] - r[1] * c[0]};
  const std::string iop = format_ds_list({r[0], r[1], r[2], c[0], c[1], c[2]});
  const std::string ps = format_ds_list({g.spacing[1], g.spacing[0]});
  const std::string date = detail::today(), time = detail::now_time();
  const std::int16_t* src = hu.data<std::int16_t>();
  const int width = std::max(4, static_cast<int>(std::to_string(nz).size()));
  std::vector<Sint16> buf(npx);
  (void)kax;

  s.slices.resize(static_cast<std::size_t>(nz));
  for (std::int64_t k = 0; k < nz; ++k) {
    const std::int64_t order = opt.reverse_instance_numbers ? nz - 1 - k : k;
    std::string num = std::to_string(order + 1);
    if (num.size() < static_cast<std::size_t>(width)) num.insert(0, width - num.size(), '0');
    const std::string fname = opt.file_prefix + num + ".dcm";
    const core::Vec3 pos = g.index_to_world({0, 0, static_cast<double>(k)});
    SliceRef& ref = s.slices[static_cast<std::size_t>(k)];
    ref.sop_class_uid = UID_CTImageStorage;
    ref.sop_instance_uid = generate_uid();
    ref.file = (target / fname).string();
    ref.position = pos[0] * n[0] + pos[1] * n[1] + pos[2] * n[2];
    ref.instance_number = static_cast<int>(order + 1);

    DcmFileFormat ff;
    DcmDataset& ds = *ff.getDataset();
    put(ds, DCM_ImageType, "DERIVED\\SECONDARY\\AXIAL");
    put(ds, DCM_SOPClassUID, ref.sop_class_uid);
    put(ds, DCM_SOPInstanceUID, ref.sop_instance_uid);
    put(ds, DCM_InstanceCreationDate, date);
    put(ds, DCM_InstanceCreationTime, time);
    detail::write_patient_study(ds, s.info);
    put(ds, DCM_ContentDate, date);
    put(ds, DCM_ContentTime, time);
    put(ds, DCM_Modality, "CT");
    put(ds, DCM_Manufacturer, "Isoline");
    put(ds, DCM_ManufacturerModelName, "Isoline");
    put(ds, DCM_SoftwareVersions, core::version());
    put(ds, DCM_SeriesDescription, s.series_description);
    put(ds, DCM_SeriesInstanceUID, s.series_instance_uid);
    put(ds, DCM_SeriesNumber, std::to_string(s.series_number));
    put(ds, DCM_PatientPosition, s.patient_position);
    // Laterality (Type 2C) empty: dciodvfy warns, but reports an error when it is absent.
    put(ds, DCM_Laterality, "");
    put(ds, DCM_FrameOfReferenceUID, s.frame_of_reference_uid);
    put(ds, DCM_PositionReferenceIndicator, "");
    put(ds, DCM_InstanceNumber, std::to_string(ref.instance_number));
    put(ds, DCM_AcquisitionNumber, "");
    put(ds, DCM_KVP, "");
    put(ds, DCM_SliceThickness, format_ds(g.spacing[2]));
    put(ds, DCM_ImagePositionPatient, format_ds_list({pos[0], pos[1], pos[2]}));
    put(ds, DCM_ImageOrientationPatient, iop);
    put(ds, DCM_SliceLocation, format_ds(ref.position));
    put(ds, DCM_PixelSpacing, ps);
    put_us(ds, DCM_SamplesPerPixel, 1);
    put(ds, DCM_PhotometricInterpretation, "MONOCHROME2");
    put_us(ds, DCM_Rows, static_cast<unsigned short>(ny));
    put_us(ds, DCM_Columns, static_cast<unsigned short>(nx));
    put_us(ds, DCM_BitsAllocated, 16);
    put_us(ds, DCM_BitsStored, 16);
    put_us(ds, DCM_HighBit, 15);
    put_us(ds, DCM_PixelRepresentation, 1);
    put(ds, DCM_WindowCenter, "40");
    put(ds, DCM_WindowWidth, "400");
    put(ds, DCM_RescaleIntercept, format_ds(opt.rescale_intercept));
    put(ds, DCM_RescaleSlope, "1");
    put(ds, DCM_RescaleType, "HU");
    const std::int16_t* plane = src + static_cast<std::size_t>(k) * npx;
    for (std::size_t i = 0; i < npx; ++i) {
      const long v = std::lround(plane[i] - opt.rescale_intercept);
      buf[i] = static_cast<Sint16>(std::clamp(v, -32768L, 32767L));
    }
    OFCondition st =
        ds.putAndInsertUint16Array(DCM_PixelData, reinterpret_cast<const Uint16*>(buf.data()), npx);
    if (st.bad())
      core::fail<core::IoError>(op, dir, std::string("cannot set pixel data: ") + st.text());
    detail::save_atomic(ff, (fs::path(series_tmp) / fname).string(), EXS_LittleEndianExplicit,
                        op);
    progress.update(double(k + 1) / nz, "slices");
  }
  out.commit();
  return s;
}

}  // namespace isoline::rtstruct
