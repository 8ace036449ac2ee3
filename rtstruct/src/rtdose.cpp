// RT Dose writer and reader: multi-frame, 32-bit unsigned with DoseGridScaling in Gy.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

#include "dcmtk/dcmdata/dcpixel.h"
#include "dicom_common.h"
#include "isoline/core/error.h"
#include "isoline/core/version.h"
#include "isoline/rtstruct/rtdose.h"

namespace isoline::rtstruct {

namespace {
core::Vec3 cross(const core::Vec3& a, const core::Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
double dot(const core::Vec3& a, const core::Vec3& b) {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}
constexpr const char* kWriteOp = "write RT-DOSE";
}  // namespace

void check_rtdose_reference(const CtSeries& ct, const std::string& file) {
  detail::require_ct_uids(ct, /*series_uid=*/false, kWriteOp, file,
                          "(an RT-DOSE lies in its CT's frame of reference and study)");
}

RtDoseWriteResult write_rtdose(const core::Image& dose_in, const CtSeries& ct,
                               const std::string& file, const RtDoseWriteOptions& opt) {
  const char* op = kWriteOp;
  if (dose_in.empty()) core::fail<core::InvalidInput>(op, file, "dose image is empty");
  check_rtdose_reference(ct, file);
  const core::Geometry& g = dose_in.geometry();
  g.validate("write RT-DOSE: " + file);
  // The dose must lie on the CT at all: a grid elsewhere is another patient's or scan's dose
  // (the TPS would show nothing, or refuse it).
  if (!ct.image.empty()) {
    auto box = [](const core::Geometry& geo, core::Vec3* lo, core::Vec3* hi) {
      for (int a = 0; a < 3; ++a) (*lo)[a] = 1e300, (*hi)[a] = -1e300;
      for (int c = 0; c < 8; ++c) {
        const core::Vec3 w = geo.index_to_world({c & 1 ? geo.size[0] - 0.5 : -0.5, c & 2 ? geo.size[1] - 0.5 : -0.5,
                                                 c & 4 ? geo.size[2] - 0.5 : -0.5});
        for (int a = 0; a < 3; ++a) (*lo)[a] = std::min((*lo)[a], w[a]), (*hi)[a] = std::max((*hi)[a], w[a]);
      }
    };
    core::Vec3 dlo, dhi, clo, chi;
    box(g, &dlo, &dhi);
    box(ct.image.geometry(), &clo, &chi);
    for (int a = 0; a < 3; ++a)
      if (dhi[a] < clo[a] || dlo[a] > chi[a])
        core::fail<core::InvalidInput>(op, file,
                                       "the dose grid does not overlap the CT: another patient's or scan's dose?");
  }
  if (g.size[0] > 65535 || g.size[1] > 65535)
    core::fail<core::InvalidInput>(op, file, "grid too large");
  const core::Image dose = dose_in.pixel_type() == core::PixelType::Float32
                               ? dose_in
                               : dose_in.cast(core::PixelType::Float32);
  const float* d = dose.data<float>();
  const std::size_t nvox = dose.num_voxels();
  double mx = 0;
  for (std::size_t i = 0; i < nvox; ++i) {
    if (!std::isfinite(d[i]))
      core::fail<core::InvalidInput>(op, file, "dose holds a non-finite value");
    if (d[i] < -1e-6) core::fail<core::InvalidInput>(op, file, "dose holds a negative value");
    mx = std::max(mx, static_cast<double>(d[i]));
  }
  // Scaling: the full 32-bit range, written as a DS of at most 16 characters, rounded up so
  // that max / scaling never overflows.
  if (opt.bits_allocated != 16 && opt.bits_allocated != 32)
    core::fail<core::InvalidInput>(op, file, "bits_allocated must be 16 or 32");
  const bool b32 = opt.bits_allocated == 32;
  const double umax = b32 ? 4294967295.0 : 65535.0;
  double target = mx > 0 ? mx / umax : 1e-9;
  std::string sstr = detail::format_ds(target);
  double scaling = std::strtod(sstr.c_str(), nullptr);
  for (int i = 0; mx / scaling > umax && i < 20; ++i) {
    target *= 1.0 + 1e-9 * std::pow(10.0, i / 2);
    sstr = detail::format_ds(target);
    scaling = std::strtod(sstr.c_str(), nullptr);
  }

  // Frames must advance along row x column: reverse k for a left-handed grid.
  const core::Vec3 r = g.axis(0), c = g.axis(1), n = cross(r, c);
  const bool reverse = dot(n, g.axis(2)) < 0;
  const auto nx = g.size[0], ny = g.size[1], nz = g.size[2];
  const std::size_t npx = static_cast<std::size_t>(nx) * ny;
  std::vector<Uint32> px(nvox);
  RtDoseWriteResult res;
  for (std::int64_t f = 0; f < nz; ++f) {
    const std::int64_t k = reverse ? nz - 1 - f : f;
    for (std::size_t i = 0; i < npx; ++i) {
      const double v = std::max(0.0, static_cast<double>(d[k * npx + i])) / scaling;
      const double q = std::min(umax, std::round(v));
      px[f * npx + i] = static_cast<Uint32>(q);
      res.max_quantization_error_gy =
          std::max(res.max_quantization_error_gy, std::fabs(q - v) * scaling);
    }
  }
  const core::Vec3 origin = g.index_to_world({0, 0, reverse ? double(nz - 1) : 0.0});
  std::vector<double> offsets(static_cast<std::size_t>(nz));
  for (std::int64_t f = 0; f < nz; ++f) offsets[f] = f * g.spacing[2];

  res.sop_instance_uid = generate_uid();
  res.series_instance_uid = generate_uid();
  res.dose_grid_scaling = scaling;
  const std::string date = detail::today(), time = detail::now_time();
  DcmFileFormat ff;
  DcmDataset& ds = *ff.getDataset();
  using detail::put;
  using detail::put_us;
  detail::write_derived_header(ds, {UID_RTDoseStorage, res.sop_instance_uid, "RTDOSE", opt.series_description,
                                   res.series_instance_uid, opt.series_number, date, time}, ct);
  put(ds, DCM_ContentDate, date);
  put(ds, DCM_ContentTime, time);
  put(ds, DCM_ImagePositionPatient, detail::format_ds_list({origin[0], origin[1], origin[2]}));
  put(ds, DCM_ImageOrientationPatient,
      detail::format_ds_list({r[0], r[1], r[2], c[0], c[1], c[2]}));
  put(ds, DCM_PixelSpacing, detail::format_ds_list({g.spacing[1], g.spacing[0]}));
  put(ds, DCM_SliceThickness, "");
  put_us(ds, DCM_SamplesPerPixel, 1);
  put(ds, DCM_PhotometricInterpretation, "MONOCHROME2");
  put(ds, DCM_NumberOfFrames, std::to_string(nz));
  ds.putAndInsertTagKey(DCM_FrameIncrementPointer, DCM_GridFrameOffsetVector);
  put_us(ds, DCM_Rows, static_cast<unsigned short>(ny));
  put_us(ds, DCM_Columns, static_cast<unsigned short>(nx));
  put_us(ds, DCM_BitsAllocated, static_cast<unsigned short>(opt.bits_allocated));
  put_us(ds, DCM_BitsStored, static_cast<unsigned short>(opt.bits_allocated));
  put_us(ds, DCM_HighBit, static_cast<unsigned short>(opt.bits_allocated - 1));
  put_us(ds, DCM_PixelRepresentation, 0);
  put(ds, DCM_DoseUnits, "GY");
  put(ds, DCM_DoseType, opt.dose_type);
  if (!opt.dose_comment.empty())  // LO: 64 characters, one value, in the file's character set
    put(ds, DCM_DoseComment, detail::own_text(opt.dose_comment, ct.info.specific_character_set, 64).encoded);
  if (!opt.referenced_plan_sop_instance_uid.empty()) {
    put(ds, DCM_DoseSummationType, "PLAN");
    DcmItem* it = nullptr;
    ds.findOrCreateSequenceItem(DCM_ReferencedRTPlanSequence, it, -2);
    put(*it, DCM_ReferencedSOPClassUID, opt.referenced_plan_sop_class_uid);
    put(*it, DCM_ReferencedSOPInstanceUID, opt.referenced_plan_sop_instance_uid);
  } else {
    // PLAN is what a dose of a whole plan is, and what planning systems expect; without an RT
    // Plan to reference, the Type 1C ReferencedRTPlanSequence is absent (docs/dicom.md, known
    // limits). RECORD would need no reference but means a treatment record's dose.
    put(ds, DCM_DoseSummationType, "PLAN");
  }
  put(ds, DCM_GridFrameOffsetVector, detail::format_ds_list(offsets));
  put(ds, DCM_DoseGridScaling, sstr);
  auto* pd = new DcmPixelData(DCM_PixelData);
  pd->setVR(EVR_OW);
  std::vector<Uint16> px16;
  if (!b32) {
    px16.resize(nvox);
    for (std::size_t i = 0; i < nvox; ++i) px16[i] = static_cast<Uint16>(px[i]);
  }
  OFCondition st = b32 ? pd->putUint16Array(reinterpret_cast<const Uint16*>(px.data()), nvox * 2)
                       : pd->putUint16Array(px16.data(), nvox);
  if (st.good()) st = ds.insert(pd, true);
  if (st.bad())
    core::fail<core::IoError>(op, file, std::string("cannot set pixel data: ") + st.text());
  detail::save_atomic(ff, file, EXS_LittleEndianExplicit, op);
  return res;
}

RtDose read_rtdose(const std::string& file) {
  const char* op = "read RT-DOSE";
  DcmFileFormat ff;
  detail::load_file(ff, file, op);
  DcmDataset& ds = *ff.getDataset();
  if (detail::get_string(ds, DCM_Modality) != "RTDOSE" &&
      detail::get_string(ds, DCM_SOPClassUID) != UID_RTDoseStorage)
    core::fail<core::InvalidInput>(
        op, file, "not an RT Dose object (Modality " + detail::get_string(ds, DCM_Modality) + ")");
  RtDose out;
  out.sop_instance_uid = detail::get_string(ds, DCM_SOPInstanceUID);
  out.frame_of_reference_uid = detail::get_string(ds, DCM_FrameOfReferenceUID);
  out.dose_units = detail::get_string(ds, DCM_DoseUnits);
  out.dose_type = detail::get_string(ds, DCM_DoseType);
  out.dose_summation_type = detail::get_string(ds, DCM_DoseSummationType);
  out.info = detail::read_patient_study(ds);
  DcmItem* plan = nullptr;
  if (ds.findAndGetSequenceItem(DCM_ReferencedRTPlanSequence, plan, 0).good() && plan)
    out.referenced_plan_sop_instance_uid = detail::get_string(*plan, DCM_ReferencedSOPInstanceUID);
  auto nums = [&](const DcmTagKey& t) { return detail::get_numbers(ds, t, file); };
  auto one = [&](const DcmTagKey& t, double fb) {
    auto v = nums(t);
    return v.empty() || !std::isfinite(v[0]) ? fb : v[0];
  };
  const long rows = std::lround(one(DCM_Rows, 0)), cols = std::lround(one(DCM_Columns, 0));
  const long frames = std::lround(one(DCM_NumberOfFrames, 1));
  const int bits = static_cast<int>(one(DCM_BitsAllocated, 0));
  const int rep = static_cast<int>(one(DCM_PixelRepresentation, 0));
  out.dose_grid_scaling = one(DCM_DoseGridScaling, 1.0);
  const auto ipp = nums(DCM_ImagePositionPatient), iop = nums(DCM_ImageOrientationPatient),
             ps = nums(DCM_PixelSpacing);
  auto offsets = nums(DCM_GridFrameOffsetVector);
  if (rows <= 0 || cols <= 0 || frames <= 0)
    core::fail<core::InvalidInput>(op, file, "Rows/Columns/NumberOfFrames missing");
  if (ipp.size() != 3 || iop.size() != 6 || ps.size() != 2 || !(ps[0] > 0) || !(ps[1] > 0))
    core::fail<core::InvalidInput>(
        op, file, "ImagePositionPatient/ImageOrientationPatient/PixelSpacing missing");
  if (bits != 16 && bits != 32)
    core::fail<core::NotSupported>(op, file, "BitsAllocated " + std::to_string(bits));
  if (frames > 1 && offsets.size() != static_cast<std::size_t>(frames))
    core::fail<core::InvalidInput>(op, file,
                                   "GridFrameOffsetVector does not list one offset per frame");
  if (offsets.empty()) offsets = {0.0};
  const double off0 = offsets.front();
  double dz = 1.0;
  bool reverse = false;
  if (frames > 1) {
    dz = (offsets.back() - off0) / (frames - 1);
    if (dz < 0) reverse = true, dz = -dz;
    for (long f = 1; f < frames; ++f)
      if (std::fabs(std::fabs(offsets[f] - offsets[f - 1]) - dz) > std::max(1e-3, 0.01 * dz))
        core::fail<core::NotSupported>(op, file, "non-uniform GridFrameOffsetVector");
    if (!(dz > 0))
      core::fail<core::InvalidInput>(op, file, "GridFrameOffsetVector has zero spacing");
  } else {
    dz = std::max(1e-3, one(DCM_SliceThickness, 1.0));
  }
  if (ds.chooseRepresentation(EXS_LittleEndianExplicit, nullptr).bad())
    core::fail<core::NotSupported>(op, file, "compressed RT Dose pixel data is not supported");
  DcmElement* el = nullptr;
  if (ds.findAndGetElement(DCM_PixelData, el).bad() || !el)
    core::fail<core::InvalidInput>(op, file, "no pixel data");
  Uint8* bytes = nullptr;
  Uint16* words = nullptr;
  if (el->getUint16Array(words).good() && words)
    bytes = reinterpret_cast<Uint8*>(words);
  else if (el->getUint8Array(bytes).bad() || !bytes)
    core::fail<core::IoError>(op, file, "pixel data cannot be read");
  const std::size_t npx = static_cast<std::size_t>(rows) * cols, nvox = npx * frames;
  if (el->getLength() < nvox * (bits / 8))
    core::fail<core::IoError>(op, file, "truncated pixel data");
  core::Vec3 r{iop[0], iop[1], iop[2]}, c{iop[3], iop[4], iop[5]};
  const core::Vec3 n = cross(r, c);
  core::Geometry g;
  g.size = {cols, rows, frames};
  g.spacing = {ps[1], ps[0], dz};
  g.origin = {ipp[0], ipp[1], ipp[2]};
  if (reverse)
    for (int a = 0; a < 3; ++a) g.origin[a] += (offsets.back() - off0) * n[a];
  g.direction = {r[0], c[0], n[0], r[1], c[1], n[1], r[2], c[2], n[2]};
  g.validate("read RT-DOSE: " + file);
  out.dose = core::Image::zeros<float>(g);
  float* dst = out.dose.data<float>();
  for (long f = 0; f < frames; ++f) {
    const long src = reverse ? frames - 1 - f : f;
    for (std::size_t i = 0; i < npx; ++i) {
      const std::size_t s = src * npx + i;
      double v;
      if (bits == 32) {
        Uint32 u;
        std::memcpy(&u, bytes + 4 * s, 4);
        v = rep ? static_cast<double>(static_cast<Sint32>(u)) : u;
      } else {
        Uint16 u;
        std::memcpy(&u, bytes + 2 * s, 2);
        v = rep ? static_cast<double>(static_cast<Sint16>(u)) : u;
      }
      dst[f * npx + i] = static_cast<float>(v * out.dose_grid_scaling);
    }
  }
  return out;
}

std::string dicom_modality(const std::string& file) {
  DcmFileFormat ff;
  try {
    detail::load_file(ff, file, "read DICOM", true);
  } catch (const core::Error&) {
    return {};
  }
  std::string m = detail::get_string(*ff.getDataset(), DCM_Modality);
  if (m.empty() && ff.getDataset()->tagExists(DCM_SOPClassUID)) m = "OT";
  return m;
}

std::string dicom_modality_checked(const std::string& file) {
  const std::string m = dicom_modality(file);
  if (!m.empty()) return m;
  char head[132] = {};
  std::ifstream f(file, std::ios::binary);
  if (f.read(head, sizeof head) && std::string(head + 128, 4) == "DICM") {
    DcmFileFormat ff;
    detail::load_file(ff, file, "read DICOM", false);  // throws the reason
  }
  return m;
}

std::string read_sop_instance_uid(const std::string& file) {
  DcmFileFormat ff;
  detail::load_file(ff, file, "read DICOM", true);
  const std::string uid = detail::get_string(*ff.getDataset(), DCM_SOPInstanceUID);
  if (uid.empty()) core::fail<core::InvalidInput>("read DICOM", file, "no SOP Instance UID");
  return uid;
}

std::string plan_reference_for(const std::string& file, const CtSeries& ct) {
  const char* op = "RT Plan reference";
  DcmFileFormat ff;
  detail::load_file(ff, file, op, true);
  DcmDataset& ds = *ff.getDataset();
  const std::string modality = detail::get_string(ds, DCM_Modality);
  if (modality != "RTPLAN")
    core::fail<core::InvalidInput>(op, file, "not an RT Plan (Modality " + (modality.empty() ? std::string("none") : modality) + ")");
  const std::string pid = detail::get_string(ds, DCM_PatientID);
  if (!pid.empty() && !ct.info.patient_id.empty() && pid != ct.info.patient_id)
    core::fail<core::InvalidInput>(op, file,
                                   "the plan is of patient ID \"" + pid + "\", the CT of \"" + ct.info.patient_id +
                                       "\" (a dose must reference its own patient's plan)");
  const std::string forf = detail::get_string(ds, DCM_FrameOfReferenceUID);
  if (!forf.empty() && !ct.frame_of_reference_uid.empty() && forf != ct.frame_of_reference_uid)
    core::fail<core::InvalidInput>(op, file,
                                   "the plan's frame of reference " + forf + " is not the CT's " +
                                       ct.frame_of_reference_uid + " (different scans or patients)");
  const std::string uid = detail::get_string(ds, DCM_SOPInstanceUID);
  if (uid.empty()) core::fail<core::InvalidInput>(op, file, "no SOP Instance UID");
  return uid;
}

}  // namespace isoline::rtstruct
