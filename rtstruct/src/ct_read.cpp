// CT series reader: scan headers, group by series, sort along the slice normal, check the
// geometry, decode pixels (DCMTK codecs; JPEG 2000 through GDCM), apply the rescale.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "dicom_common.h"
#include "isoline/core/error.h"
#include "isoline/rtstruct/ct_series.h"

namespace fs = std::filesystem;

namespace isoline::rtstruct {

namespace detail {
std::vector<float> decode_with_gdcm(const std::string& file, int rows, int cols);
}

namespace {

using detail::get_numbers;
using detail::get_string;

const char* kOp = "read CT series";

struct Header {
  std::string file;
  std::unique_ptr<DcmFileFormat> ff;
  std::string sop_class, sop_instance, series_uid, series_description, modality, frame_of_ref;
  std::string patient_position, manufacturer;
  bool localizer = false;  // ImageType says LOCALIZER (a scout / topogram)
  int series_number = 0, instance_number = 0;
  bool has_pixels = false;
  int rows = 0, cols = 0, frames = 1, bits_allocated = 0, bits_stored = 0, samples = 1,
      pixel_rep = 0;
  std::string photometric;
  std::vector<double> iop, ipp, spacing;
  double slope = 1.0, intercept = 0.0, tilt = 0.0;
  double position = 0.0;
};

std::string fmt(double v, int prec = 2) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

bool has_dicm_magic(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  char buf[132];
  if (!in.read(buf, 132)) return false;
  return std::memcmp(buf + 128, "DICM", 4) == 0;
}

std::string sop_class_name(const std::string& uid) {
  const char* n = dcmFindNameOfUID(uid.c_str(), nullptr);
  return n ? n : uid;
}

bool is_image_sop(const std::string& uid) {
  return dcmIsaStorageSOPClassUID(uid.c_str()) && dcmIsImageStorageSOPClassUID(uid.c_str());
}

// Reads the header of one file; returns nullptr for non-DICOM files when `lenient`.
std::unique_ptr<Header> read_header(const std::string& file, bool lenient) {
  auto h = std::make_unique<Header>();
  h->file = file;
  h->ff = std::make_unique<DcmFileFormat>();
  try {
    detail::load_file(*h->ff, file, kOp, /*headers_only=*/true);
  } catch (const core::IoError&) {
    if (lenient && !has_dicm_magic(file)) return nullptr;  // not DICOM at all: skip
    throw;
  }
  DcmDataset& ds = *h->ff->getDataset();
  h->sop_class = get_string(ds, DCM_SOPClassUID);
  if (h->sop_class.empty()) {
    OFString s;
    if (h->ff->getMetaInfo()->findAndGetOFString(DCM_MediaStorageSOPClassUID, s).good())
      h->sop_class = s.c_str();
  }
  h->sop_instance = get_string(ds, DCM_SOPInstanceUID);
  h->series_uid = get_string(ds, DCM_SeriesInstanceUID);
  h->series_description = detail::get_string_all(ds, DCM_SeriesDescription);
  h->modality = get_string(ds, DCM_Modality);
  h->localizer = detail::get_string_all(ds, DCM_ImageType).find("LOCALIZER") != std::string::npos;
  h->frame_of_ref = get_string(ds, DCM_FrameOfReferenceUID);
  h->patient_position = get_string(ds, DCM_PatientPosition);
  h->manufacturer = get_string(ds, DCM_Manufacturer);
  auto num = [&](const DcmTagKey& t, double fallback) {
    auto v = get_numbers(ds, t, file);
    return v.empty() || !std::isfinite(v[0]) ? fallback : v[0];
  };
  h->series_number = static_cast<int>(num(DCM_SeriesNumber, 0));
  h->instance_number = static_cast<int>(num(DCM_InstanceNumber, 0));
  h->has_pixels = ds.tagExists(DCM_PixelData);
  h->rows = static_cast<int>(num(DCM_Rows, 0));
  h->cols = static_cast<int>(num(DCM_Columns, 0));
  h->frames = static_cast<int>(num(DCM_NumberOfFrames, 1));
  h->bits_allocated = static_cast<int>(num(DCM_BitsAllocated, 0));
  h->bits_stored = static_cast<int>(num(DCM_BitsStored, h->bits_allocated));
  h->samples = static_cast<int>(num(DCM_SamplesPerPixel, 1));
  h->pixel_rep = static_cast<int>(num(DCM_PixelRepresentation, 0));
  h->photometric = get_string(ds, DCM_PhotometricInterpretation);
  h->iop = get_numbers(ds, DCM_ImageOrientationPatient, file);
  h->ipp = get_numbers(ds, DCM_ImagePositionPatient, file);
  h->spacing = get_numbers(ds, DCM_PixelSpacing, file);
  h->slope = num(DCM_RescaleSlope, 1.0);
  h->intercept = num(DCM_RescaleIntercept, 0.0);
  h->tilt = num(DCM_GantryDetectorTilt, 0.0);
  return h;
}

std::vector<std::string> collect_files(const std::string& path) {
  std::vector<std::string> files;
  std::error_code ec;
  if (!fs::exists(path, ec)) core::fail<core::IoError>(kOp, path, "no such file or directory");
  if (!fs::is_directory(path, ec)) return {path};
  for (auto it = fs::recursive_directory_iterator(
           path, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) core::fail<core::IoError>(kOp, path, "cannot list directory: " + ec.message());
    if (!it->is_regular_file(ec)) continue;
    const std::string name = it->path().filename().string();
    if (name == "DICOMDIR" || (!name.empty() && name[0] == '.')) continue;
    files.push_back(it->path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

struct Scan {
  std::vector<std::unique_ptr<Header>> headers;
  std::size_t non_dicom = 0;
};

Scan scan(const std::vector<std::string>& files, bool lenient, const core::Progress& progress) {
  Scan s;
  for (std::size_t i = 0; i < files.size(); ++i) {
    auto h = read_header(files[i], lenient);
    if (h)
      s.headers.push_back(std::move(h));
    else
      ++s.non_dicom;
    if (i % 16 == 0) progress.update(double(i) / files.size(), "headers");
  }
  return s;
}

std::string describe_series(const std::vector<SeriesSummary>& list) {
  std::string s;
  for (const auto& x : list) {
    if (!s.empty()) s += "; ";
    s += x.series_instance_uid + " (" + (x.modality.empty() ? "?" : x.modality) + ", \"" +
         x.series_description + "\", " + std::to_string(x.num_files) + " files)";
  }
  return s;
}

std::vector<SeriesSummary> summarize(const std::vector<std::unique_ptr<Header>>& hs) {
  std::map<std::string, SeriesSummary> m;
  std::vector<std::string> order;
  for (const auto& h : hs) {
    auto [it, inserted] = m.try_emplace(h->series_uid);
    if (inserted) {
      order.push_back(h->series_uid);
      it->second.series_instance_uid = h->series_uid;
      it->second.series_description = h->series_description;
      it->second.modality = h->modality;
      it->second.sop_class_uid = h->sop_class;
      it->second.series_number = h->series_number;
      it->second.first_file = h->file;
    }
    ++it->second.num_files;
  }
  std::vector<SeriesSummary> out;
  for (const auto& u : order) out.push_back(m[u]);
  return out;
}

core::Vec3 cross(const core::Vec3& a, const core::Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
double dot(const core::Vec3& a, const core::Vec3& b) {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

// Decodes slice pixels to modality values (HU) as float.
std::vector<float> decode(Header& h) {
  const std::size_t n = static_cast<std::size_t>(h.rows) * h.cols;
  DcmDataset& ds = *h.ff->getDataset();
  const E_TransferSyntax xfer = ds.getOriginalXfer();
  if (xfer == EXS_JPEG2000LosslessOnly || xfer == EXS_JPEG2000 ||
      xfer == EXS_JPEG2000MulticomponentLosslessOnly || xfer == EXS_JPEG2000Multicomponent) {
    return detail::decode_with_gdcm(h.file, h.rows, h.cols);
  }
  OFCondition st = ds.loadAllDataIntoMemory();
  if (st.bad())
    core::fail<core::IoError>(
        kOp, h.file, std::string("truncated or unreadable pixel data (") + st.text() + ")");
  st = ds.chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
  if (st.bad() || !ds.canWriteXfer(EXS_LittleEndianExplicit)) {
    const DcmXfer x(xfer);
    core::fail<core::NotSupported>(kOp, h.file,
                                   std::string("cannot decode transfer syntax ") + x.getXferName() +
                                       " (" + x.getXferID() + ")");
  }
  std::vector<float> out(n);
  if (h.bits_allocated == 16) {
    const Uint16* px = nullptr;
    unsigned long count = 0;
    if (ds.findAndGetUint16Array(DCM_PixelData, px, &count).bad() || !px)
      core::fail<core::IoError>(kOp, h.file, "pixel data cannot be read");
    if (count < n)
      core::fail<core::IoError>(kOp, h.file,
                                "truncated pixel data: " + std::to_string(count) + " of " +
                                    std::to_string(n) + " pixels present");
    const int bs = h.bits_stored > 0 && h.bits_stored <= 16 ? h.bits_stored : 16;
    const Uint16 mask = bs == 16 ? 0xFFFF : static_cast<Uint16>((1u << bs) - 1);
    for (std::size_t i = 0; i < n; ++i) {
      Uint16 u = px[i] & mask;
      double v;
      if (h.pixel_rep == 1) {
        int s = u;
        if (u & (1u << (bs - 1))) s -= (1 << bs);
        v = s;
      } else {
        v = u;
      }
      out[i] = static_cast<float>(v * h.slope + h.intercept);
    }
  } else if (h.bits_allocated == 8) {
    const Uint8* px = nullptr;
    unsigned long count = 0;
    if (ds.findAndGetUint8Array(DCM_PixelData, px, &count).bad() || !px || count < n)
      core::fail<core::IoError>(kOp, h.file, "truncated or unreadable 8-bit pixel data");
    for (std::size_t i = 0; i < n; ++i)
      out[i] = static_cast<float>(
          (h.pixel_rep == 1 ? double(static_cast<Sint8>(px[i])) : double(px[i])) * h.slope +
          h.intercept);
  } else {
    core::fail<core::NotSupported>(
        kOp, h.file, "BitsAllocated " + std::to_string(h.bits_allocated) + " is not supported");
  }
  // Free the decoded pixels now that they are copied.
  ds.findAndDeleteElement(DCM_PixelData);
  return out;
}

CtSeries assemble(std::vector<Header*> hs, const CtReadOptions& opt, const core::Progress& progress,
                  std::vector<std::string> warnings) {
  const std::string series = hs.front()->series_uid;
  const std::string subject = "series " + series + " (" + std::to_string(hs.size()) +
                              " files, first " + hs.front()->file + ")";
  // Per-slice checks.
  for (Header* h : hs) {
    if (!h->has_pixels) core::fail<core::InvalidInput>(kOp, h->file, "holds no pixel data");
    if (h->frames > 1)
      core::fail<core::NotSupported>(kOp, h->file,
                                     "multi-frame image (" + std::to_string(h->frames) +
                                         " frames); only single-frame CT slices are supported");
    if (h->samples != 1 || (h->photometric != "MONOCHROME2" && h->photometric != "MONOCHROME1"))
      core::fail<core::NotSupported>(
          kOp, h->file, "not a greyscale image (PhotometricInterpretation " + h->photometric + ")");
    if (h->rows <= 0 || h->cols <= 0)
      core::fail<core::InvalidInput>(kOp, h->file, "Rows/Columns missing or zero");
    if (h->iop.size() != 6 || h->ipp.size() != 3)
      core::fail<core::InvalidInput>(kOp, h->file,
                                     "ImageOrientationPatient or ImagePositionPatient missing");
    if (h->spacing.size() != 2 || !(h->spacing[0] > 0) || !(h->spacing[1] > 0))
      core::fail<core::InvalidInput>(kOp, h->file, "PixelSpacing missing or not positive");
    for (double v : h->iop)
      if (!std::isfinite(v))
        core::fail<core::InvalidInput>(kOp, h->file, "ImageOrientationPatient is not finite");
    for (double v : h->ipp)
      if (!std::isfinite(v))
        core::fail<core::InvalidInput>(kOp, h->file, "ImagePositionPatient is not finite");
    if (!std::isfinite(h->slope) || !std::isfinite(h->intercept) || h->slope == 0)
      core::fail<core::InvalidInput>(kOp, h->file, "RescaleSlope/RescaleIntercept are unusable");
  }
  Header& f = *hs.front();
  core::Vec3 r{f.iop[0], f.iop[1], f.iop[2]}, c{f.iop[3], f.iop[4], f.iop[5]};
  const double nr = std::sqrt(dot(r, r)), nc = std::sqrt(dot(c, c));
  if (nr < 0.9 || nr > 1.1 || nc < 0.9 || nc > 1.1 || std::fabs(dot(r, c)) > 1e-3)
    core::fail<core::InvalidInput>(kOp, f.file,
                                   "ImageOrientationPatient is not two orthonormal vectors");
  for (int a = 0; a < 3; ++a) {
    r[a] /= nr;
    c[a] /= nc;
  }
  // Re-orthogonalize c against r (tiny numerical drift in stored values).
  {
    const double d = dot(r, c);
    for (int a = 0; a < 3; ++a) c[a] -= d * r[a];
    const double n2 = std::sqrt(dot(c, c));
    for (int a = 0; a < 3; ++a) c[a] /= n2;
  }
  const core::Vec3 n = cross(r, c);
  for (Header* h : hs) {
    if (h->rows != f.rows || h->cols != f.cols)
      core::fail<core::InvalidInput>(kOp, subject,
                                     "mixed slice sizes: " + std::to_string(f.cols) + "x" +
                                         std::to_string(f.rows) + " in " + f.file + " but " +
                                         std::to_string(h->cols) + "x" + std::to_string(h->rows) +
                                         " in " + h->file);
    for (int a = 0; a < 6; ++a)
      if (std::fabs(h->iop[a] - f.iop[a]) > 1e-3)
        core::fail<core::InvalidInput>(kOp, subject,
                                       "mixed orientations: ImageOrientationPatient of " + h->file +
                                           " differs from " + f.file);
    if (std::fabs(h->spacing[0] - f.spacing[0]) > 1e-3 ||
        std::fabs(h->spacing[1] - f.spacing[1]) > 1e-3)
      core::fail<core::InvalidInput>(
          kOp, subject, "mixed pixel spacings: " + h->file + " differs from " + f.file);
    h->position = dot({h->ipp[0], h->ipp[1], h->ipp[2]}, n);
  }
  std::stable_sort(hs.begin(), hs.end(),
                   [](const Header* a, const Header* b) { return a->position < b->position; });
  for (std::size_t k = 1; k < hs.size(); ++k)
    if (std::fabs(hs[k]->position - hs[k - 1]->position) < 1e-3)
      core::fail<core::InvalidInput>(kOp, subject,
                                     "two slices at the same position " + fmt(hs[k]->position) +
                                         " mm: " + hs[k - 1]->file + " and " + hs[k]->file);
  // Gantry tilt: slice positions must move along the normal.
  const Header& h0 = *hs.front();
  for (Header* h : hs) {
    const double along = h->position - h0.position;
    double off2 = 0;
    for (int a = 0; a < 3; ++a) {
      const double d = h->ipp[a] - h0.ipp[a] - along * n[a];
      off2 += d * d;
    }
    if (std::sqrt(off2) > 0.01 + 1e-3 * std::fabs(along))
      core::fail<core::InvalidInput>(
          kOp, subject,
          "gantry tilt or sheared stack: slice " + h->file + " is offset " + fmt(std::sqrt(off2)) +
              " mm from the slice normal (GantryDetectorTilt " + fmt(h->tilt, 1) +
              " deg); resample the series to an orthogonal grid first");
  }
  if (std::fabs(h0.tilt) > 0.01 && hs.size() == 1)
    core::fail<core::InvalidInput>(kOp, h0.file,
                                   "gantry tilt " + fmt(h0.tilt, 1) + " deg is not supported");
  // Spacing along the normal.
  double dz = 0;
  bool uniform = true;
  std::string spacing_problem;
  if (hs.size() == 1) {
    auto th = get_numbers(*h0.ff->getDataset(), DCM_SliceThickness, h0.file);
    dz = !th.empty() && th[0] > 0 ? th[0] : 1.0;
  } else {
    // The reference gap is the median, not the smallest: positions written with jitter of a
    // hundredth of a millimetre are one uniform grid, not a refused series.
    std::vector<double> gaps;
    for (std::size_t k = 1; k < hs.size(); ++k) gaps.push_back(hs[k]->position - hs[k - 1]->position);
    std::vector<double> sorted = gaps;
    std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
    const double typical = sorted[sorted.size() / 2];
    const double tol = std::max(opt.spacing_tolerance * typical, 0.03);
    const double step = (hs.back()->position - hs.front()->position) / static_cast<double>(hs.size() - 1);
    // Every gap a whole multiple of the smallest one, which is below the median: slices are
    // missing all along (e.g. every other one of a partial transfer); the scan's spacing is the
    // smallest gap then, not the median.
    const double smallest = *std::min_element(gaps.begin(), gaps.end());
    auto whole_multiple = [tol](double d, double of) {
      const double m = d / of;
      return std::round(m) >= 1 && std::fabs(m - std::round(m)) * of <= tol;
    };
    const double nominal =
        smallest < typical - tol &&
                std::all_of(gaps.begin(), gaps.end(),
                            [&](double d) { return whole_multiple(d, smallest); })
            ? smallest
            : typical;
    long missing = 0, holes = 0;  // slices missing in whole-multiple gaps, and those gaps
    for (std::size_t k = 1; k < hs.size(); ++k) {
      const double d = gaps[k - 1];
      if (std::fabs(d - nominal) <= tol) continue;
      uniform = false;
      const long m = std::lround(d / nominal);
      const bool hole = m >= 2 && whole_multiple(d, nominal);
      if (hole) {
        missing += m - 1;
        ++holes;
      }
      if (!spacing_problem.empty()) continue;  // report the first problem
      if (hole)
        spacing_problem = "missing slices: gap of " + fmt(d) + " mm between " +
                          fmt(hs[k - 1]->position) + " mm (" + hs[k - 1]->file + ") and " +
                          fmt(hs[k]->position) + " mm (" + hs[k]->file + ") where the spacing is " +
                          fmt(nominal) + " mm";
      else
        spacing_problem = "non-uniform slice spacing: " + fmt(d) + " mm between " +
                          hs[k - 1]->file + " and " + hs[k]->file + ", " + fmt(nominal) +
                          " mm elsewhere";
    }
    if (spacing_problem.rfind("missing slices", 0) == 0)
      spacing_problem += " (about " + std::to_string(missing) + " slices missing" +
                         (holes > 1 ? " in " + std::to_string(holes) + " gaps" : "") + ")";
    if (uniform) {  // every gap near the typical one: no drift away from the uniform grid either
      for (std::size_t k = 1; k + 1 < hs.size() && spacing_problem.empty(); ++k) {
        const double off = hs[k]->position - (hs.front()->position + static_cast<double>(k) * step);
        if (std::fabs(off) > tol) {
          uniform = false;
          spacing_problem = "non-uniform slice spacing: " + hs[k]->file + " lies " + fmt(off, 3) +
                            " mm from a uniform grid of " + fmt(step, 3) + " mm";
        }
      }
    }
    // Resampling (when asked for) goes onto the smallest gap, so that no slice is lost.
    dz = uniform ? step : *std::min_element(gaps.begin(), gaps.end());
    if (!uniform && !opt.resample_nonuniform)
      core::fail<core::InvalidInput>(
          kOp, subject,
          spacing_problem + " (export the series again; the library and Python's read_ct_series(..., "
                            "resample_nonuniform=True) can interpolate onto a uniform grid)");
    if (!uniform)
      warnings.push_back("resampled to uniform " + fmt(dz, 3) + " mm spacing: " + spacing_problem);
  }

  CtSeries out;
  out.info = detail::read_patient_study(*h0.ff->getDataset());
  out.series_instance_uid = h0.series_uid;
  out.series_description = h0.series_description;
  out.series_number = h0.series_number;
  out.frame_of_reference_uid = h0.frame_of_ref;
  out.modality = h0.modality;
  out.patient_position = h0.patient_position;
  out.manufacturer = h0.manufacturer;
  for (Header* h : hs)
    out.slices.push_back({h->sop_class, h->sop_instance, h->file, h->position, h->instance_number});

  // Decode (two workers; DCMTK objects are per file).
  const std::size_t npx = static_cast<std::size_t>(f.rows) * f.cols;
  std::vector<std::vector<float>> planes(hs.size());
  detail::parallel_for(hs.size(), [&](std::size_t k) { planes[k] = decode(*hs[k]); });
  progress.update(0.9, "pixels");

  core::Geometry g;
  g.size = {f.cols, f.rows, static_cast<std::int64_t>(hs.size())};
  g.spacing = {f.spacing[1], f.spacing[0], dz};
  g.origin = {h0.ipp[0], h0.ipp[1], h0.ipp[2]};
  g.direction = {r[0], c[0], n[0], r[1], c[1], n[1], r[2], c[2], n[2]};
  auto to_i16 = [](float v) -> std::int16_t {
    const float x = std::round(v);
    return static_cast<std::int16_t>(std::clamp(x, -32768.0f, 32767.0f));
  };
  if (uniform) {
    out.image = core::Image::zeros<std::int16_t>(g);
    std::int16_t* dst = out.image.data<std::int16_t>();
    for (std::size_t k = 0; k < hs.size(); ++k)
      for (std::size_t i = 0; i < npx; ++i) dst[k * npx + i] = to_i16(planes[k][i]);
  } else {
    const double p0 = hs.front()->position, p1 = hs.back()->position;
    const auto nz = static_cast<std::int64_t>(std::floor((p1 - p0) / dz + 1e-6)) + 1;
    g.size[2] = nz;
    out.image = core::Image::zeros<std::int16_t>(g);
    std::int16_t* dst = out.image.data<std::int16_t>();
    std::size_t seg = 0;
    for (std::int64_t k = 0; k < nz; ++k) {
      const double p = p0 + k * dz;
      while (seg + 2 < hs.size() && hs[seg + 1]->position < p) ++seg;
      const double a = hs[seg]->position, b = hs[seg + 1]->position;
      const double t = std::clamp((p - a) / (b - a), 0.0, 1.0);
      for (std::size_t i = 0; i < npx; ++i)
        dst[k * npx + i] =
            to_i16(static_cast<float>((1 - t) * planes[seg][i] + t * planes[seg + 1][i]));
    }
    out.resampled = true;
  }
  out.warnings = std::move(warnings);
  progress.done();
  return out;
}

// "skipped 1 non-image DICOM object (RS.dcm: RT Structure Set Storage)"; several: their kinds.
std::string skipped_warning(const std::vector<std::pair<std::string, std::string>>& skipped) {
  std::string which;
  if (skipped.size() == 1) {
    which = fs::path(skipped[0].first).filename().string() + ": " + skipped[0].second;
  } else {
    std::set<std::string> kinds;
    for (const auto& o : skipped) kinds.insert(o.second);
    for (const auto& k : kinds) which += (which.empty() ? "" : ", ") + k;
  }
  return "skipped " + std::to_string(skipped.size()) + " non-image DICOM object" + (skipped.size() == 1 ? "" : "s") +
         " (" + which + ")";
}

CtSeries read_impl(const std::vector<std::string>& files, bool from_dir, const std::string& subject,
                   const CtReadOptions& opt, const core::Progress& progress) {
  Scan s = scan(files, from_dir, progress.sub(0.0, 0.3, "headers"));
  std::vector<std::string> warnings;
  if (s.non_dicom)
    warnings.push_back("skipped " + std::to_string(s.non_dicom) + " non-DICOM files");
  std::vector<std::unique_ptr<Header>> images, others;
  for (auto& h : s.headers) {
    const bool image = h->has_pixels && (h->sop_class.empty() || is_image_sop(h->sop_class));
    if (!image) {
      if (!from_dir)
        core::fail<core::InvalidInput>(kOp, h->file,
                                       "not an image slice: " + sop_class_name(h->sop_class) +
                                           " (Modality " +
                                           (h->modality.empty() ? "?" : h->modality) + ")");
      others.push_back(std::move(h));
    } else {
      images.push_back(std::move(h));
    }
  }
  std::vector<std::pair<std::string, std::string>> skipped;
  for (const auto& h : others) skipped.emplace_back(h->file, sop_class_name(h->sop_class));
  if (!skipped.empty()) warnings.push_back(skipped_warning(skipped));
  if (images.empty()) {
    std::string what = s.headers.empty() && others.empty() ? "no DICOM files" : "no image slices";
    if (!others.empty()) what += " (found " + describe_series(summarize(others)) + ")";
    core::fail<core::InvalidInput>(kOp, subject, what);
  }
  // Select the series.
  std::vector<std::unique_ptr<Header>> chosen;
  if (!opt.series_instance_uid.empty()) {
    for (auto& h : images)
      if (h->series_uid == opt.series_instance_uid) chosen.push_back(std::move(h));
    if (chosen.empty())
      core::fail<core::InvalidInput>(
          kOp, subject,
          "no series " + opt.series_instance_uid + "; found " + describe_series(summarize(images)));
  } else {
    std::vector<std::unique_ptr<Header>> cts, rest;
    for (auto& h : images) {
      if (h->modality == "CT" || opt.allow_non_ct)
        cts.push_back(std::move(h));
      else
        rest.push_back(std::move(h));
    }
    if (cts.empty())
      core::fail<core::InvalidInput>(kOp, subject,
                                     "no CT series; found " + describe_series(summarize(rest)));
    // A whole-study export holds scouts (topograms) in series of their own: they are not the
    // planning CT, and are left out when another series remains.
    {
      std::map<std::string, bool> all_localizer;
      for (const auto& h : cts) {
        auto it = all_localizer.emplace(h->series_uid, true).first;
        it->second = it->second && h->localizer;
      }
      std::size_t scouts = 0;
      for (const auto& [_, loc] : all_localizer) scouts += loc;
      if (scouts > 0 && scouts < all_localizer.size()) {
        std::vector<std::unique_ptr<Header>> kept, dropped;
        for (auto& h : cts) (all_localizer[h->series_uid] ? dropped : kept).push_back(std::move(h));
        warnings.push_back("skipped localizer (scout) series: " + describe_series(summarize(dropped)));
        cts = std::move(kept);
      }
    }
    auto list = summarize(cts);
    if (list.size() > 1)
      core::fail<core::InvalidInput>(
          kOp, subject,
          std::to_string(list.size()) +
              " series where one is expected (put the planning CT's files in a folder of their own; "
              "the library and Python's read_ct_series take a Series Instance UID): " +
              describe_series(list));
    chosen = std::move(cts);
  }
  if (std::all_of(chosen.begin(), chosen.end(), [](const auto& h) { return h->localizer; }))
    core::fail<core::InvalidInput>(kOp, subject,
                                   "a localizer (scout, ImageType LOCALIZER) series, not a planning CT: " +
                                       describe_series(summarize(chosen)));
  std::vector<Header*> ptrs;
  for (auto& h : chosen) ptrs.push_back(h.get());
  CtSeries out = assemble(ptrs, opt, progress.sub(0.3, 1.0, "pixels"), std::move(warnings));
  out.skipped_objects = std::move(skipped);
  return out;
}

}  // namespace

CtSeries read_ct_series(const std::string& path, const CtReadOptions& options,
                        const core::Progress& progress) {
  const auto files = collect_files(path);
  std::error_code ec;
  const bool dir = fs::is_directory(path, ec);
  if (dir && files.empty()) core::fail<core::InvalidInput>(kOp, path, "directory holds no files");
  return read_impl(files, dir, path, options, progress);
}

CtSeries read_ct_series(const std::vector<std::string>& files, const CtReadOptions& options,
                        const core::Progress& progress) {
  if (files.empty()) core::fail<core::InvalidInput>(kOp, "", "no files given");
  return read_impl(files, false, files.front() + (files.size() > 1 ? " ..." : ""), options,
                   progress);
}

void mark_used(CtSeries& s, const std::string& file) {
  if (s.skipped_objects.empty() || file.empty()) return;
  auto same = [&](const std::string& f) {
    std::error_code ec;
    return f == file || fs::equivalent(f, file, ec);
  };
  auto it = std::find_if(s.skipped_objects.begin(), s.skipped_objects.end(),
                         [&](const auto& o) { return same(o.first); });
  if (it == s.skipped_objects.end()) return;
  const auto w = std::find(s.warnings.begin(), s.warnings.end(), skipped_warning(s.skipped_objects));
  s.skipped_objects.erase(it);
  if (w == s.warnings.end()) return;
  if (s.skipped_objects.empty())
    s.warnings.erase(w);
  else
    *w = skipped_warning(s.skipped_objects);
}

std::vector<SeriesSummary> list_series(const std::string& path) {
  const auto files = collect_files(path);
  std::error_code ec;
  Scan s = scan(files, fs::is_directory(path, ec), core::Progress());
  return summarize(s.headers);
}

}  // namespace isoline::rtstruct
