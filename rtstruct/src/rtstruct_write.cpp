// RT Structure Set writer: exact voxel-edge contours of each mask slice, full reference
// chain to the CT, provenance, implicit VR little endian (ContourData may exceed 64 KiB).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <set>
#include <thread>

#include "contour_trace.h"
#include "dicom_common.h"
#include "isoline/core/error.h"
#include "isoline/core/text.h"
#include "isoline/core/version.h"
#include "isoline/rtstruct/rtstruct.h"

namespace isoline::rtstruct {

namespace {

const char* kOp = "write RT-STRUCT";

struct ContourOut {
  std::int64_t k = 0;
  std::size_t npoints = 0;
  std::string data;
};

// Contours of one mask, slice by slice.
std::vector<ContourOut> contours_of(const core::Image& mask, bool keyhole) {
  const core::Geometry& g = mask.geometry();
  const int nx = static_cast<int>(g.size[0]), ny = static_cast<int>(g.size[1]);
  const std::size_t npx = static_cast<std::size_t>(nx) * ny;
  const std::uint8_t* m = mask.data<std::uint8_t>();
  const core::Vec3 ax = g.axis(0), ay = g.axis(1), az = g.axis(2);
  std::vector<ContourOut> out;
  for (std::int64_t k = 0; k < g.size[2]; ++k) {
    auto loops = detail::trace_slice(m + static_cast<std::size_t>(k) * npx, nx, ny);
    if (loops.empty()) continue;
    double scale = 1.0;
    if (keyhole) {
      loops = detail::keyhole(std::move(loops));
      scale = 0.5;  // keyhole() works in doubled lattice units
    }
    core::Vec3 base;
    for (int a = 0; a < 3; ++a) base[a] = g.origin[a] + k * g.spacing[2] * az[a];
    for (const auto& l : loops) {
      ContourOut c;
      c.k = k;
      c.npoints = l.corners.size();
      c.data.reserve(c.npoints * 30);
      for (std::size_t i = 0; i < l.corners.size(); ++i) {
        const double ci = l.corners[i][0] * scale - 0.5, cj = l.corners[i][1] * scale - 0.5;
        for (int a = 0; a < 3; ++a) {
          if (i || a) c.data += '\\';
          detail::append_coordinate(
              c.data, base[a] + ci * g.spacing[0] * ax[a] + cj * g.spacing[1] * ay[a]);
        }
      }
      out.push_back(std::move(c));
    }
  }
  return out;
}

}  // namespace

void check_rtstruct_reference(const CtSeries& ct, const std::string& file, const std::string& hint) {
  if (ct.image.empty()) core::fail<core::InvalidInput>(kOp, file, "the CT series has no image");
  const core::Geometry& g = ct.image.geometry();
  if (ct.resampled || ct.slices.size() != static_cast<std::size_t>(g.size[2]))
    core::fail<core::InvalidInput>(
        kOp, file,
        "the CT image does not match its stored slices one to one (resampled?); "
        "contours must reference real CT slices");
  detail::require_ct_uids(
      ct, /*series_uid=*/true, kOp, file,
      "(an RT-STRUCT references its CT by them; a planning system could not attach it); " + hint);
  // (require_ct_uids has named the slices without a SOP Instance UID.)
  for (const auto& s : ct.slices)
    if (s.sop_class_uid.empty())
      core::fail<core::InvalidInput>(kOp, file, "CT slice " + s.file + " lacks its SOP Class UID");
}

RtStructWriteResult write_rtstruct(const core::StructureSet& structures, const CtSeries& ct,
                                   const std::string& file, const RtStructWriteOptions& opt,
                                   const core::Progress& progress) {
  check_rtstruct_reference(ct, file);
  const core::Geometry& g = ct.image.geometry();
  for (const auto& s : structures) {
    if (s.mask.pixel_type() != core::PixelType::UInt8)
      core::fail<core::InvalidInput>(kOp, s.name, "mask is not uint8");
    if (!s.mask.geometry().same_grid(g, 1e-2))
      core::fail<core::InvalidInput>(kOp, s.name,
                                     "mask is not on the CT grid (resample it onto the CT first)");
  }

  if (!opt.approval_status.empty()) {
    if (opt.approval_status != "UNAPPROVED" && opt.approval_status != "APPROVED" &&
        opt.approval_status != "REJECTED")
      core::fail<core::InvalidInput>(kOp, file,
                                     "approval status must be UNAPPROVED, APPROVED or REJECTED");
    if (opt.approval_status != "UNAPPROVED" && opt.reviewer_name.empty())
      core::fail<core::InvalidInput>(kOp, file, opt.approval_status + " needs a reviewer name");
  }
  RtStructWriteResult res;
  // Isoline's own text in the character set the file declares (the CT's), one value each.
  const std::string& charset = ct.info.specific_character_set;
  auto text = [&](const std::string& utf8, std::size_t max_chars) {
    return detail::own_text(utf8, charset, max_chars).encoded;
  };
  // ROI names: map, cut, make unique. Unique without regard to case: Eclipse structure IDs
  // are, so "PTV70" and "ptv70" would clash on import.
  std::vector<std::string> names, names_utf8;  // as written; UTF-8 for messages
  std::set<std::string> taken;  // lower case
  for (const auto& s : structures) {
    std::string n = s.name;
    if (auto it = opt.name_map.find(n); it != opt.name_map.end()) n = it->second;
    detail::OwnText c = detail::own_text(n, charset, opt.max_name_length);
    for (int i = 2; taken.count(core::to_lower(c.encoded)); ++i) {
      const std::string suf = "_" + std::to_string(i);
      c = detail::own_text(n, charset, opt.max_name_length - std::min(opt.max_name_length, suf.size()));
      c.encoded += suf;
      c.utf8 += suf;
      c.changed = true;
    }
    if (c.changed || c.utf8 != n) res.warnings.push_back("ROI \"" + s.name + "\" written as \"" + c.utf8 + "\"");
    taken.insert(core::to_lower(c.encoded));
    names.push_back(c.encoded);
    names_utf8.push_back(c.utf8);
  }
  {
    // A TPS takes one EXTERNAL (Body/External) per structure set: Eclipse and RayStation refuse
    // or drop a second.
    std::vector<std::string> external;
    for (std::size_t r = 0; r < structures.size(); ++r)
      if (structures[r].type == core::StructureType::External) external.push_back("\"" + names_utf8[r] + "\"");
    if (external.size() > 1)
      res.warnings.push_back(std::to_string(external.size()) + " ROIs of type EXTERNAL (" +
                             core::join(external, ", ") + "): a TPS takes one Body/External per structure set");
  }

  // Trace contours (two workers).
  const std::size_t nroi = structures.size();
  std::vector<std::vector<ContourOut>> contours(nroi);
  detail::parallel_for(nroi, [&](std::size_t i) {
    contours[i] = contours_of(structures[i].mask, opt.keyhole);
  });
  progress.update(0.6, "contours");

  const std::string version =
      opt.algorithm_version.empty() ? core::version() : opt.algorithm_version;
  const std::string date = detail::today(), time = detail::now_time();
  res.sop_instance_uid = generate_uid();
  res.series_instance_uid = generate_uid();

  DcmFileFormat ff;
  DcmDataset& ds = *ff.getDataset();
  using detail::put;
  detail::write_derived_header(ds, {UID_RTStructureSetStorage, res.sop_instance_uid, "RTSTRUCT", opt.series_description,
                                   res.series_instance_uid, opt.series_number, date, time}, ct);
  {
    const detail::OwnText label =
        detail::own_text(opt.structure_set_label.empty() ? "ISOLINE" : opt.structure_set_label, charset, 16);
    if (label.changed)
      res.warnings.push_back("structure set label \"" + opt.structure_set_label + "\" written as \"" +
                             label.utf8 + "\" (16 characters at most; the whole text is the structure set name)");
    put(ds, DCM_StructureSetLabel, label.encoded);
    put(ds, DCM_StructureSetName, text(opt.structure_set_label, 64));
    if (!opt.structure_set_description.empty()) {
      const detail::OwnText d = detail::own_text(opt.structure_set_description, charset, 1024);  // ST
      if (core::utf8_length(d.utf8) < core::utf8_length(opt.structure_set_description))
        res.warnings.push_back("structure set description cut to 1024 characters");
      put(ds, DCM_StructureSetDescription, d.encoded);
    }
  }
  // The same for every ROI, encoded once.
  const std::string algorithm_name = text(opt.algorithm_name, 64), algorithm_version = text(version, 64);
  const std::string interpreter = text(opt.roi_interpreter, 64);  // PN
  put(ds, DCM_StructureSetDate, date);
  put(ds, DCM_StructureSetTime, time);

  // Reference chain: frame of reference -> study -> series -> every CT slice.
  {
    DcmItem* fr = nullptr;
    ds.findOrCreateSequenceItem(DCM_ReferencedFrameOfReferenceSequence, fr, -2);
    put(*fr, DCM_FrameOfReferenceUID, ct.frame_of_reference_uid);
    DcmItem* st = nullptr;
    fr->findOrCreateSequenceItem(DCM_RTReferencedStudySequence, st, -2);
    put(*st, DCM_ReferencedSOPClassUID, "1.2.840.10008.3.1.2.3.1");  // Study Component Management
    put(*st, DCM_ReferencedSOPInstanceUID, ct.info.study_instance_uid);
    DcmItem* se = nullptr;
    st->findOrCreateSequenceItem(DCM_RTReferencedSeriesSequence, se, -2);
    put(*se, DCM_SeriesInstanceUID, ct.series_instance_uid);
    for (const auto& s : ct.slices) {
      DcmItem* ci = nullptr;
      se->findOrCreateSequenceItem(DCM_ContourImageSequence, ci, -2);
      put(*ci, DCM_ReferencedSOPClassUID, s.sop_class_uid);
      put(*ci, DCM_ReferencedSOPInstanceUID, s.sop_instance_uid);
    }
  }

  std::size_t written = 0;
  for (std::size_t r = 0; r < nroi; ++r) {
    const core::Structure& s = structures[r];
    if (contours[r].empty()) {
      res.warnings.push_back(
          "ROI \"" + names_utf8[r] + "\" is empty" +
          std::string(opt.keep_empty_rois ? " (written without contours)" : " (dropped)"));
      if (!opt.keep_empty_rois) continue;
    }
    const std::string number = std::to_string(r + 1);
    DcmItem* ri = nullptr;
    ds.findOrCreateSequenceItem(DCM_StructureSetROISequence, ri, -2);
    put(*ri, DCM_ROINumber, number);
    put(*ri, DCM_ReferencedFrameOfReferenceUID, ct.frame_of_reference_uid);
    put(*ri, DCM_ROIName, names[r]);
    if (!s.description.empty()) put(*ri, DCM_ROIDescription, text(s.description, 1024));  // ST
    if (const auto given = opt.given_rois.find(s.name); given != opt.given_rois.end()) {
      const std::string& g = given->second;
      put(*ri, DCM_ROIGenerationAlgorithm,
          g == "AUTOMATIC" || g == "SEMIAUTOMATIC" || g == "MANUAL" ? g : std::string());
    } else {
      put(*ri, DCM_ROIGenerationAlgorithm, "AUTOMATIC");
      DcmItem* alg = nullptr;
      ri->findOrCreateSequenceItem(DCM_ROIDerivationAlgorithmIdentificationSequence, alg, -2);
      DcmItem* fam = nullptr;
      alg->findOrCreateSequenceItem(DCM_AlgorithmFamilyCodeSequence, fam, -2);
      put(*fam, DCM_CodeValue, "123110");
      put(*fam, DCM_CodingSchemeDesignator, "DCM");
      put(*fam, DCM_CodeMeaning, "Artificial Intelligence");
      put(*alg, DCM_AlgorithmName, algorithm_name);
      put(*alg, DCM_AlgorithmVersion, algorithm_version);
    }

    DcmItem* rc = nullptr;
    ds.findOrCreateSequenceItem(DCM_ROIContourSequence, rc, -2);
    put(*rc, DCM_ReferencedROINumber, number);
    put(*rc, DCM_ROIDisplayColor,
        std::to_string(s.color.r) + "\\" + std::to_string(s.color.g) + "\\" +
            std::to_string(s.color.b));
    std::size_t cn = 0;
    for (const auto& c : contours[r]) {
      DcmItem* ci = nullptr;
      rc->findOrCreateSequenceItem(DCM_ContourSequence, ci, -2);
      DcmItem* im = nullptr;
      ci->findOrCreateSequenceItem(DCM_ContourImageSequence, im, -2);
      const SliceRef& sl = ct.slices[static_cast<std::size_t>(c.k)];
      put(*im, DCM_ReferencedSOPClassUID, sl.sop_class_uid);
      put(*im, DCM_ReferencedSOPInstanceUID, sl.sop_instance_uid);
      put(*ci, DCM_ContourGeometricType, "CLOSED_PLANAR");
      put(*ci, DCM_NumberOfContourPoints, std::to_string(c.npoints));
      put(*ci, DCM_ContourNumber, std::to_string(++cn));
      OFCondition st = ci->putAndInsertString(DCM_ContourData, c.data.c_str(),
                                              static_cast<Uint32>(c.data.size()));
      if (st.bad())
        core::fail<core::IoError>(kOp, file, std::string("cannot set ContourData: ") + st.text());
      ++res.num_contours;
    }

    DcmItem* ob = nullptr;
    ds.findOrCreateSequenceItem(DCM_RTROIObservationsSequence, ob, -2);
    put(*ob, DCM_ObservationNumber, number);
    put(*ob, DCM_ReferencedROINumber, number);
    put(*ob, DCM_RTROIInterpretedType, core::to_dicom_string(s.type));
    put(*ob, DCM_ROIInterpreter, interpreter);
    ++written;
  }
  if (!opt.approval_status.empty()) {
    put(ds, DCM_ApprovalStatus, opt.approval_status);
    if (opt.approval_status != "UNAPPROVED") {
      put(ds, DCM_ReviewDate, date);
      put(ds, DCM_ReviewTime, time);
      put(ds, DCM_ReviewerName, text(opt.reviewer_name, 64));
    }
  }
  // Type 1/2 sequences must exist even when empty.
  if (!ds.tagExists(DCM_StructureSetROISequence))
    ds.insertEmptyElement(DCM_StructureSetROISequence);
  if (!ds.tagExists(DCM_ROIContourSequence)) ds.insertEmptyElement(DCM_ROIContourSequence);
  if (!ds.tagExists(DCM_RTROIObservationsSequence))
    ds.insertEmptyElement(DCM_RTROIObservationsSequence);
  res.num_rois = written;
  progress.update(0.8, "encode");
  detail::save_atomic(ff, file, EXS_LittleEndianImplicit, kOp);
  progress.done();
  return res;
}

}  // namespace isoline::rtstruct
