// Approval: approved masks + JSON record + RT-STRUCTs (rtstruct module), with the review
// attributes (ROIGenerationAlgorithm per ROI, Approval module) set through DCMTK.
#include "approve.h"

#include <dcmtk/dcmdata/dctk.h>

#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "isoline/core/atomic_file.h"
#include "isoline/core/error.h"
#include "isoline/core/io.h"
#include "isoline/core/mask_ops.h"
#include "isoline/rtstruct/ct_series.h"
#include "isoline/rtstruct/dicom_file.h"
#include "isoline/rtstruct/rtstruct.h"

namespace fs = std::filesystem;

namespace isoline::ui {

namespace {

constexpr const char* kOp = "approve";

bool same_mask(const core::Image& a, const core::Image& b) {
  return a.byte_size() == b.byte_size() && std::memcmp(a.raw(), b.raw(), a.byte_size()) == 0;
}

rtstruct::CtSeries reference_ct(const ApprovalInput& in) {
  if (!in.dicom_ct.empty()) return rtstruct::read_ct_series(in.dicom_ct);
  std::error_code ec;
  const fs::path dicom = fs::path(in.case_dir) / "dicom";
  if (fs::is_directory(dicom, ec)) return rtstruct::read_ct_series(dicom.string());
  const fs::path own = fs::path(in.review_dir) / "dicom_ct";
  if (fs::is_directory(own, ec)) return rtstruct::read_ct_series(own.string());
  rtstruct::CtWriteOptions o;
  o.series_description = "Isoline CT (from " + fs::path(in.case_dir).filename().string() + " NIfTI)";
  o.info.patient_id = fs::path(in.case_dir).filename().string();
  return rtstruct::write_ct_series(in.ct, own.string(), o);
}

}  // namespace

void read_reference_ct(const std::string& dir) { (void)rtstruct::read_ct_series(dir); }

std::vector<std::string> quality_flags(const std::string& description) {
  std::vector<std::string> out;
  std::size_t p = 0;
  while (p <= description.size()) {
    std::size_t q = description.find(';', p);
    if (q == std::string::npos) q = description.size();
    const std::string item = description.substr(p, q - p);
    const auto b = item.find_first_not_of(' ');
    if (b != std::string::npos) out.push_back(item.substr(b, item.find_last_not_of(' ') - b + 1));
    p = q + 1;
  }
  return out;
}

namespace {

// ROIGenerationAlgorithm per ROI (AUTOMATIC, SEMIAUTOMATIC, MANUAL) after review; the writer
// puts the Approval module, the reviewer and the ROI interpreter in the file's character set.
void patch_review(const std::string& file, const std::vector<std::string>& algorithms) {
  DcmFileFormat ff;
  OFCondition c = ff.loadFile(file.c_str());
  if (c.bad()) core::fail<core::IoError>(kOp, file, std::string("cannot read back: ") + c.text());
  DcmDataset* ds = ff.getDataset();
  DcmSequenceOfItems* seq = nullptr;
  if (ds->findAndGetSequence(DCM_StructureSetROISequence, seq).good() && seq) {
    for (unsigned long i = 0; i < seq->card(); ++i) {
      DcmItem* item = seq->getItem(i);
      long number = 0;
      item->findAndGetLongInt(DCM_ROINumber, number);
      if (number < 1 || static_cast<std::size_t>(number) > algorithms.size()) continue;
      const std::string& alg = algorithms[static_cast<std::size_t>(number - 1)];
      item->putAndInsertString(DCM_ROIGenerationAlgorithm, alg.c_str());
      if (alg == "MANUAL") item->findAndDeleteElement(DCM_ROIDerivationAlgorithmIdentificationSequence);
    }
  }
  core::AtomicOutput out(file);
  rtstruct::save_dicom_file(ff, out.temp_path(), UID_LittleEndianExplicitTransferSyntax,
                            /*new_meta=*/true, kOp);
  out.commit();
}

}  // namespace

std::string generation_algorithm(const ApprovalStructure& s) {
  if (s.info.origin != "auto" || s.automatic.empty()) return "MANUAL";
  return same_mask(s.mask, s.automatic) ? "AUTOMATIC" : "SEMIAUTOMATIC";
}

nlohmann::json write_approval(const ApprovalInput& in) {
  static std::mutex mu;  // one approval at a time
  std::lock_guard<std::mutex> lock(mu);
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32], iso[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  std::strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
  const fs::path root = fs::path(in.review_dir) / "approved";
  core::ensure_directory(root.string(), kOp);
  std::string name = stamp;
  for (int n = 2; fs::exists(root / name); ++n) name = std::string(stamp) + "_" + std::to_string(n);
  const fs::path target = root / name;

  nlohmann::json rec;
  rec["reviewer"] = in.reviewer;
  rec["status"] = in.status;
  rec["time"] = iso;
  rec["case_dir"] = in.case_dir;
  rec["directory"] = target.string();

  core::StructureSet approved(in.ct.geometry()), automatic(in.ct.geometry());
  std::vector<std::string> algorithms;
  nlohmann::json list = nlohmann::json::array();
  std::vector<std::string> unchecked;  // approved with quality flags nobody checked
  for (const auto& s : in.structures) {
    core::Structure a;
    a.name = s.info.latest.name;
    a.type = core::structure_type_from_string(s.info.type);
    a.color = s.info.color;
    a.description = s.info.description;
    if (!s.automatic.empty()) {  // RS_auto: every automatic structure, also one deleted in review
      core::Structure b = a;
      b.mask = s.automatic;
      automatic.add(b);
    }
    if (s.deleted) {  // not approved; said in the record
      list.push_back({{"id", s.info.id}, {"name", s.info.latest.name}, {"version", s.info.latest.version},
                      {"author", s.info.latest.author}, {"deleted", true}});
      continue;
    }
    const std::string alg = generation_algorithm(s);
    algorithms.push_back(alg);
    a.mask = s.mask;
    core::Structure& added = approved.add(a);
    auto voxels_changed = [&](const core::Image& from) {
      std::size_t changed = 0;
      const auto* x = s.mask.data<std::uint8_t>();
      const auto* y = from.data<std::uint8_t>();
      for (std::size_t i = 0, n = s.mask.num_voxels(); i < n; ++i) changed += (x[i] != 0) != (y[i] != 0);
      return changed;
    };
    nlohmann::json e = {{"id", s.info.id}, {"name", a.name}, {"version", s.info.latest.version},
                        {"author", s.info.latest.author}, {"generation_algorithm", alg},
                        {"volume_cc", s.info.latest.volume_cc}};
    // "edited": the reviewer changed it (a given target is MANUAL whether edited or not).
    if (!s.automatic.empty()) {
      e["voxels_changed_from_automatic"] = voxels_changed(s.automatic);
      e["edited"] = e["voxels_changed_from_automatic"] != 0;
    } else if (!s.given.empty()) {
      e["voxels_changed_from_given"] = voxels_changed(s.given);
      e["edited"] = e["voxels_changed_from_given"] != 0;
    } else {
      e["voxels_changed_from_automatic"] = 0;
      e["edited"] = true;  // made by the reviewer
    }
    // The quality flags describe the automatic (or given) contour: the physicist sees
    // whether the reviewer checked them, edited that contour, or left them unchecked.
    const auto flags = quality_flags(s.info.description);
    if (!flags.empty()) {
      e["quality_flags"] = flags;
      std::string note;
      if (e["edited"] == true && (!s.automatic.empty() || !s.given.empty())) {
        e["quality_flags_review"] = "contour edited";
        note = "flags on the automatic contour; edited in review";
      } else if (s.flag_check && s.flag_check->checked) {
        e["quality_flags_review"] = "checked";
        note = "flags checked by " + s.flag_check->author + " " + s.flag_check->time;
      } else {
        e["quality_flags_review"] = "unchecked";
        note = "flags not checked";
        unchecked.push_back(a.name);
      }
      if (s.flag_check)
        e["quality_flags_check"] = {{"checked", s.flag_check->checked}, {"by", s.flag_check->author},
                                    {"time", s.flag_check->time}, {"version", s.flag_check->version}};
      // ROIDescription of the approved RT-STRUCT (ST, 1024 characters): the flags and this.
      added.description = s.info.description + " [" + note + "]";
    }
    list.push_back(std::move(e));
  }
  rec["structures"] = list;
  rec["quality_flags_unchecked"] = unchecked;
  rec["unsaved_drafts"] = in.unsaved_drafts;

  core::AtomicOutput out(target.string(), true);
  const fs::path tmp = out.temp_path();
  core::ensure_directory((tmp / "masks").string(), kOp);
  core::write_mask_dir(approved, (tmp / "masks").string());

  // RT-STRUCTs referencing the DICOM CT. Without them there is no approval: an error leaves
  // nothing under approved/ (the temporary is removed) and the reviewer is told.
  {
    rtstruct::CtSeries ct = reference_ct(in);
    const bool same = ct.image.geometry().same_grid(in.ct.geometry(), 0.01);
    auto on_ct = [&](core::StructureSet set) {
      if (same) return set;
      core::StructureSet r(ct.image.geometry());
      for (auto s : set) {
        s.mask = core::resample(s.mask, ct.image.geometry(), core::Interpolation::Nearest);
        r.add(s);
      }
      return r;
    };
    rtstruct::RtStructWriteOptions wo;
    wo.structure_set_label = "APPROVED";
    wo.series_description = "Isoline reviewed structures (" + in.status + " by " + in.reviewer + ")";
    wo.series_number = 902;
    wo.algorithm_name = "Isoline";
    wo.approval_status = in.status;
    wo.reviewer_name = in.reviewer;
    wo.roi_interpreter = in.reviewer;
    const std::string rs = (tmp / "RS_approved.dcm").string();
    auto r1 = rtstruct::write_rtstruct(on_ct(approved), ct, rs, wo);
    patch_review(rs, algorithms);
    rtstruct::RtStructWriteOptions wa;
    wa.structure_set_label = "AUTO";
    wa.series_description = "Isoline auto-contours (untouched)";
    wa.series_number = 901;
    const std::string ra = (tmp / "RS_auto.dcm").string();
    rtstruct::write_rtstruct(on_ct(automatic), ct, ra, wa);
    rec["rtstruct"] = (target / "RS_approved.dcm").string();
    rec["rtstruct_automatic"] = (target / "RS_auto.dcm").string();
    rec["rtstruct_sop_instance_uid"] = r1.sop_instance_uid;
    rec["ct_series_instance_uid"] = ct.series_instance_uid;
    rec["rtstruct_warnings"] = r1.warnings;
  }
  core::write_file_atomic((tmp / "approval.json").string(),
                          rec.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                          kOp);
  out.commit();
  return rec;
}

}  // namespace isoline::ui
