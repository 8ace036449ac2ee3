// De-identification (PS3.15 Basic Application Level Confidentiality Profile) and
// re-identification through a persistent per-study UID map. See deidentify.h.
#include "isoline/rtstruct/deidentify.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "dicom_common.h"
#include "isoline/core/atomic_file.h"
#include "isoline/core/error.h"
#include "isoline/core/text.h"
#include "isoline/rtstruct/rtdose.h"

#include "dcmtk/dcmdata/dcelem.h"
#include "dcmtk/dcmdata/dcvr.h"

namespace fs = std::filesystem;

namespace isoline::rtstruct {

namespace {

const std::vector<ProfileAttribute> kRows = {
#include "deidentify_profile.inc"
};

/// Patient and study attributes kept in the map and restored by re-identification.
const DcmTagKey kRestoreTags[] = {DCM_PatientName,      DCM_PatientID,   DCM_PatientBirthDate,
                                  DCM_PatientSex,       DCM_StudyDate,   DCM_StudyTime,
                                  DCM_StudyID,          DCM_AccessionNumber,
                                  DCM_ReferringPhysicianName, DCM_StudyDescription};

/// Instance-level text of an RT object that the profile empties or removes and that a
/// treatment planning system needs back: kept per instance in the map, restored by
/// re-identification (top level, then inside the items of the ROI sequences).
const DcmTagKey kInstanceTags[] = {DCM_StructureSetLabel,    DCM_StructureSetName,
                                   DCM_StructureSetDescription, DCM_StructureSetDate,
                                   DCM_StructureSetTime,     DCM_SeriesDescription,
                                   DCM_InstanceCreationDate, DCM_InstanceCreationTime,
                                   DCM_SeriesDate,           DCM_SeriesTime,
                                   DCM_ContentDate,          DCM_ContentTime,
                                   DCM_ReviewDate,           DCM_ReviewTime,
                                   DCM_ReviewerName};
struct InstanceSequence {
  DcmTagKey sequence;
  std::vector<DcmTagKey> tags;
};
const InstanceSequence kInstanceSequences[] = {
    {DCM_StructureSetROISequence, {DCM_ROIName, DCM_ROIDescription, DCM_ROIGenerationDescription}},
    {DCM_RTROIObservationsSequence,
     {DCM_ROIObservationLabel, DCM_ROIObservationDescription, DCM_ROIInterpreter}},
};

std::string tag_key(const DcmTagKey& t) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04X,%04X", t.getGroup(), t.getElement());
  return buf;
}

/// JSON strings must be UTF-8: values with other bytes are stored as "hex:<hex digits>".
std::string encode_bytes(const std::string& v) {
  bool plain = v.rfind("hex:", 0) != 0;
  for (unsigned char c : v) plain = plain && c >= 0x20 && c < 0x7F;
  if (plain) return v;
  static const char* d = "0123456789abcdef";
  std::string out = "hex:";
  for (unsigned char c : v) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

std::string decode_bytes(const std::string& v) {
  if (v.rfind("hex:", 0) != 0) return v;
  std::string out;
  for (std::size_t i = 4; i + 1 < v.size(); i += 2)
    out += static_cast<char>(std::stoi(v.substr(i, 2), nullptr, 16));
  return out;
}

std::string random_hex(int digits) {
  static std::mt19937_64 rng{std::random_device{}()};
  static const char* d = "0123456789ABCDEF";
  std::string s;
  for (int i = 0; i < digits; ++i) s += d[rng() & 15];
  return s;
}

/// Combined actions resolved for the IODs Isoline handles (CT Image, RT Structure Set,
/// RT Dose, RT Plan): X unless the attribute is Type 1/2 there.
DeidAction resolve(const ProfileAttribute& row) {
  const std::string a = row.action;
  if (a == "K") return DeidAction::Keep;
  if (a == "X" || a == "C") return DeidAction::Remove;
  if (a == "Z" || a == "Z/D") return DeidAction::Empty;
  if (a == "D") return DeidAction::Dummy;
  if (a == "U") return DeidAction::ReplaceUid;
  // Type 2 in the RT Structure Set / RT General Plan modules: must stay present.
  const DcmTagKey t(row.group, row.element);
  if (t == DCM_StructureSetTime || t == DCM_RTPlanDate || t == DCM_RTPlanTime) return DeidAction::Dummy;
  if (t == DCM_ReviewerName) return DeidAction::Empty;  // Type 2C in the Approval module
  return DeidAction::Remove;                           // X/Z, X/D, X/Z/D, X/Z/U*
}

std::string dummy_for(DcmEVR vr) {
  switch (vr) {
    case EVR_DA: return "19000101";
    case EVR_TM: return "000000";
    case EVR_DT: return "19000101000000";
    case EVR_DS:
    case EVR_IS: return "0";
    case EVR_AS: return "000Y";
    case EVR_AE:
    case EVR_CS:
    case EVR_SH:
    case EVR_LO:
    case EVR_LT:
    case EVR_ST:
    case EVR_UT:
    case EVR_UC:
    case EVR_PN: return "ANONYMIZED";
    default: return "";
  }
}

bool is_string_vr(DcmEVR vr) { return !dummy_for(vr).empty() || vr == EVR_UI; }

class Deidentifier {
 public:
  /// `rt_object`: an RT object (RT Series module: Operators' Name is Type 2 there).
  Deidentifier(DeidMap& map, DeidStudy& study, bool rt_object) : map_(map), study_(study), rt_object_(rt_object) {}

  std::string map_uid(const std::string& uid) {
    if (uid.empty()) return uid;
    auto it = study_.uids.find(uid);
    if (it != study_.uids.end()) return it->second;
    // A UID met in another study keeps the pseudonym it got there: an RT-STRUCT filed in its
    // own study still references the CT (study, series, slices, frame of reference) it was
    // drawn on, whichever of the two is de-identified first.
    for (const auto& [_, other] : map_.studies)
      if (auto o = other.uids.find(uid); o != other.uids.end()) return o->second;
    std::string fresh = generate_uid();
    study_.uids.emplace(uid, fresh);
    return fresh;
  }

  void item(DcmItem& it, int depth = 0) {
    std::vector<DcmTagKey> remove;
    for (unsigned long i = 0; i < it.card(); ++i) {
      DcmElement* el = it.getElement(i);
      const DcmTagKey key = el->getTag();
      const Uint16 g = key.getGroup();
      if (g & 1u) {  // private attributes (and their creators): X
        remove.push_back(key);
        continue;
      }
      const DcmEVR vr = DcmVR(el->getVR()).getValidEVR();
      const ProfileAttribute* row = find_profile_attribute(g, key.getElement());
      if (!row) {
        if (vr == EVR_SQ) sequence(*static_cast<DcmSequenceOfItems*>(el));
        // Every other date and time (Instance Creation, Date of Last Calibration, Contrast/
        // Bolus Start Time, ...) is emptied: the output says Longitudinal Temporal
        // Information Modified = REMOVED. Emptied, not removed: Type 2 ones stay valid.
        else if (vr == EVR_DA || vr == EVR_DT || vr == EVR_TM) el->clear();
        continue;
      }
      DeidAction action = resolve(*row);
      if (rt_object_ && depth == 0 && key == DCM_OperatorsName) action = DeidAction::Empty;
      switch (action) {
        case DeidAction::Keep:
          if (vr == EVR_SQ) sequence(*static_cast<DcmSequenceOfItems*>(el));
          break;
        case DeidAction::Remove: remove.push_back(key); break;
        case DeidAction::Empty: el->clear(); break;
        case DeidAction::CleanSequence:
        case DeidAction::Dummy:
          if (vr == EVR_SQ || !is_string_vr(vr)) {
            el->clear();  // a dummy sequence: no items (nothing of the original survives)
          } else if (vr == EVR_UI) {
            replace_uids(*el);
          } else {
            el->putString(dummy_for(vr).c_str());
          }
          break;
        case DeidAction::ReplaceUid:
          if (vr == EVR_UI) replace_uids(*el);
          else el->clear();
          break;
      }
    }
    for (const auto& k : remove) delete it.remove(k);
  }

 private:
  void sequence(DcmSequenceOfItems& sq) {
    for (unsigned long i = 0; i < sq.card(); ++i) item(*sq.getItem(i), 1);
  }

  void replace_uids(DcmElement& el) {
    OFString all;
    el.getOFStringArray(all);
    std::stringstream ss(all.c_str());
    std::string part, out;
    bool first = true;
    while (std::getline(ss, part, '\\')) {
      while (!part.empty() && (part.back() == ' ' || part.back() == '\0')) part.pop_back();
      out += (first ? "" : "\\") + map_uid(part);
      first = false;
    }
    el.putString(out.c_str());
  }

  DeidMap& map_;
  DeidStudy& study_;
  bool rt_object_;
};

/// The original instance-level text of an RT object (kInstanceTags, kInstanceSequences).
std::map<std::string, std::string> instance_text(DcmDataset& ds) {
  std::map<std::string, std::string> out;
  auto take = [](DcmItem& it, const DcmTagKey& t, std::string& v) {
    DcmElement* el = nullptr;
    if (it.findAndGetElement(t, el, OFFalse).bad() || !el) return false;
    OFString s;
    el->getOFStringArray(s);
    v = s.c_str();
    return true;
  };
  std::string v;
  for (const auto& t : kInstanceTags)
    if (take(ds, t, v)) out[tag_key(t)] = v;
  for (const auto& s : kInstanceSequences) {
    DcmSequenceOfItems* sq = nullptr;
    if (ds.findAndGetSequence(s.sequence, sq, OFFalse).bad() || !sq) continue;
    for (unsigned long i = 0; i < sq->card(); ++i)
      for (const auto& t : s.tags)
        if (take(*sq->getItem(i), t, v))
          out[tag_key(s.sequence) + "[" + std::to_string(i) + "]/" + tag_key(t)] = v;
  }
  return out;
}

bool is_yes(std::string v) {
  for (auto& c : v) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return v == "YES";
}

void check_uids(DcmDataset& ds, const std::string& file) {
  if (detail::get_string(ds, DCM_StudyInstanceUID).empty())
    core::fail<core::InvalidInput>("de-identify", file, "lacks its Study Instance UID (0020,000D)");
  if (detail::get_string(ds, DCM_SOPInstanceUID).empty())
    core::fail<core::InvalidInput>("de-identify", file, "lacks its SOP Instance UID (0008,0018)");
}

// With `into_folder`, `out_file` is a folder and the file in it is named by its new SOP Instance
// UID (known once it is de-identified).
DeidResult deidentify_loaded(DcmFileFormat& ff, const std::string& in_file, const std::string& out_file,
                             DeidMap& map, const DeidOptions& options, bool into_folder = false);

void put_deid_marks(DcmItem& ds) {
  detail::put(ds, DCM_PatientIdentityRemoved, "YES");
  detail::put(ds, DCM_DeidentificationMethod,
              "DICOM PS3.15 Basic Application Confidentiality Profile");
  delete ds.remove(DCM_DeidentificationMethodCodeSequence);
  DcmItem* code = nullptr;
  if (ds.findOrCreateSequenceItem(DCM_DeidentificationMethodCodeSequence, code, -2).good() && code) {
    detail::put(*code, DCM_CodeValue, "113100");
    detail::put(*code, DCM_CodingSchemeDesignator, "DCM");
    detail::put(*code, DCM_CodeMeaning, "Basic Application Confidentiality Profile");
  }
  detail::put(ds, DCM_LongitudinalTemporalInformationModified, "REMOVED");
}

E_TransferSyntax save_xfer(DcmFileFormat& ff) {
  E_TransferSyntax x = ff.getDataset()->getOriginalXfer();
  if (x == EXS_Unknown || x == EXS_LittleEndianImplicit) x = EXS_LittleEndianExplicit;
  return x;
}

}  // namespace

const std::vector<ProfileAttribute>& basic_profile_attributes() { return kRows; }

const ProfileAttribute* find_profile_attribute(std::uint16_t group, std::uint16_t element) {
  static const auto index = [] {
    std::unordered_map<std::uint32_t, const ProfileAttribute*> m;
    for (const auto& r : kRows)
      if (r.group_mask == 0xFFFF && r.element_mask == 0xFFFF) m.emplace((r.group << 16) | r.element, &r);
    return m;
  }();
  auto it = index.find((static_cast<std::uint32_t>(group) << 16) | element);
  if (it != index.end()) return it->second;
  for (const auto& r : kRows)  // repeating groups (50xx, 60xx)
    if ((r.group_mask != 0xFFFF || r.element_mask != 0xFFFF) && (group & r.group_mask) == r.group &&
        (element & r.element_mask) == r.element)
      return &r;
  return nullptr;
}

// ------------------------------------------------------------------------------------------
// Map

DeidMap DeidMap::load(const std::string& file) {
  DeidMap m;
  std::error_code ec;
  if (!fs::exists(file, ec)) return m;
  std::ifstream in(file);
  if (!in) core::fail<core::IoError>("read de-identification map", file, "cannot open");
  nlohmann::json j;
  try {
    in >> j;
    for (auto& [study_uid, s] : j.at("studies").items()) {
      DeidStudy st;
      st.pseudo_patient_id = s.at("pseudo_patient_id").get<std::string>();
      for (auto& [k, v] : s.at("original").items()) st.original[k] = decode_bytes(v.get<std::string>());
      for (auto& [k, v] : s.at("uids").items()) st.uids[k] = v.get<std::string>();
      if (s.contains("instances"))  // absent in maps written before it existed
        for (auto& [sop, attrs] : s.at("instances").items())
          for (auto& [k, v] : attrs.items()) st.instances[sop][k] = decode_bytes(v.get<std::string>());
      m.studies.emplace(study_uid, std::move(st));
    }
  } catch (const nlohmann::json::exception& e) {
    core::fail<core::IoError>("read de-identification map", file, "malformed: " + core::json_error(e.what()));
  }
  return m;
}

void DeidMap::save(const std::string& file) const {
  nlohmann::json j;
  j["format"] = "isoline-deidentification-map";
  j["version"] = 1;
  j["studies"] = nlohmann::json::object();
  for (const auto& [uid, s] : studies) {
    nlohmann::json js;
    js["pseudo_patient_id"] = s.pseudo_patient_id;
    js["original"] = nlohmann::json::object();
    for (const auto& [k, v] : s.original) js["original"][k] = encode_bytes(v);
    js["uids"] = s.uids;
    if (!s.instances.empty()) {
      js["instances"] = nlohmann::json::object();
      for (const auto& [sop, attrs] : s.instances)
        for (const auto& [k, v] : attrs) js["instances"][sop][k] = encode_bytes(v);
    }
    j["studies"][uid] = js;
  }
  const fs::path parent = fs::path(file).parent_path();
  if (!parent.empty()) core::ensure_directory(parent.string(), "write de-identification map");
  core::AtomicOutput out(file);
  {
    // It holds PHI: readable by its owner only (0600), from the moment it exists. Every write
    // is checked, close included: a full disk must not leave an empty map in place of the old.
    core::OutputFile o(out.temp_path(), "write de-identification map", 0600);
    ::fchmod(o.fd(), 0600);  // also when the temporary existed already
    o.write(j.dump(1) + "\n");
    o.close();
  }
  out.commit();
}

std::string DeidMap::original_uid(const std::string& pseudo_uid) const {
  for (const auto& [_, s] : studies)
    for (const auto& [orig, pseudo] : s.uids)
      if (pseudo == pseudo_uid) return orig;
  return {};
}

const DeidStudy* DeidMap::study_by_pseudo_uid(const std::string& pseudo_study_uid) const {
  for (const auto& [orig, s] : studies) {
    auto it = s.uids.find(orig);
    if (it != s.uids.end() && it->second == pseudo_study_uid) return &s;
  }
  return nullptr;
}

// ------------------------------------------------------------------------------------------
// De-identification

DeidResult deidentify_file(const std::string& in_file, const std::string& out_file, DeidMap& map,
                           const DeidOptions& options) {
  DcmFileFormat ff;
  detail::load_file(ff, in_file, "de-identify");
  return deidentify_loaded(ff, in_file, out_file, map, options);
}

namespace {

DeidResult deidentify_loaded(DcmFileFormat& ff, const std::string& in_file, const std::string& out_file,
                             DeidMap& map, const DeidOptions& options, bool into_folder) {
  DcmDataset& ds = *ff.getDataset();
  check_uids(ds, in_file);  // before the map changes
  const E_TransferSyntax xfer = save_xfer(ff);
  DeidResult res;
  res.source_file = in_file;
  res.original_study_uid = detail::get_string(ds, DCM_StudyInstanceUID);
  res.burned_in_annotation = is_yes(detail::get_string(ds, DCM_BurnedInAnnotation));
  const std::string original_sop = detail::get_string(ds, DCM_SOPInstanceUID);
  const bool rt_object = detail::get_string(ds, DCM_Modality).rfind("RT", 0) == 0;

  auto found = map.studies.find(res.original_study_uid);
  if (found == map.studies.end()) {
    DeidStudy st;
    for (const auto& t : kRestoreTags)
      if (detail::has(ds, t)) {
        OFString v;
        ds.findAndGetOFStringArray(t, v);
        st.original[tag_key(t)] = v.c_str();
      }
    // One pseudonym per patient: reuse the one given to another study of the same patient.
    const std::string pid = detail::get_string(ds, DCM_PatientID);
    for (const auto& [_, other] : map.studies) {
      auto o = other.original.find(tag_key(DCM_PatientID));
      if (!pid.empty() && o != other.original.end() && o->second == pid) st.pseudo_patient_id = other.pseudo_patient_id;
    }
    if (st.pseudo_patient_id.empty()) st.pseudo_patient_id = options.patient_id_prefix + "-" + random_hex(8);
    found = map.studies.emplace(res.original_study_uid, std::move(st)).first;
  }
  DeidStudy& study = found->second;
  if (rt_object) {
    auto text = instance_text(ds);
    if (!text.empty()) study.instances[original_sop] = std::move(text);
  }

  Deidentifier d(map, study, rt_object);
  d.item(ds);
  // Patient's Name and ID (Z): a consistent pseudonym instead of an empty value.
  detail::put(ds, DCM_PatientID, study.pseudo_patient_id);
  detail::put(ds, DCM_PatientName, "ANONYMIZED^" + study.pseudo_patient_id);
  put_deid_marks(ds);
  ff.getMetaInfo()->clear();  // regenerated from the dataset (Media Storage SOP Instance UID: U)

  res.pseudo_study_uid = detail::get_string(ds, DCM_StudyInstanceUID);
  res.sop_instance_uid = detail::get_string(ds, DCM_SOPInstanceUID);
  res.file = into_folder ? (fs::path(out_file) / (res.sop_instance_uid + ".dcm")).string() : out_file;
  detail::save_atomic(ff, res.file, xfer, "de-identify");
  return res;
}

}  // namespace

DeidDirectoryResult deidentify_directory(const std::string& in_dir, const std::string& out_dir,
                                         DeidMap& map, const DeidOptions& options,
                                         const core::Progress& progress) {
  std::error_code ec;
  if (!fs::exists(in_dir, ec)) core::fail<core::IoError>("de-identify", in_dir, "no such file or directory");
  std::vector<std::string> files;
  if (fs::is_directory(in_dir, ec)) {
    const fs::path out_abs = fs::weakly_canonical(out_dir, ec);
    for (auto it = fs::recursive_directory_iterator(in_dir, ec); it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (ec) break;
      if (it->is_directory() && fs::weakly_canonical(it->path(), ec) == out_abs) {
        it.disable_recursion_pending();
        continue;
      }
      if (it->is_regular_file()) files.push_back(it->path().string());
    }
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(in_dir);
  }
  if (files.empty()) core::fail<core::InvalidInput>("de-identify", in_dir, "no files to de-identify");
  const bool created = !fs::exists(out_dir, ec);
  core::ensure_directory(out_dir, "de-identify");
  DeidDirectoryResult r;
  for (std::size_t i = 0; i < files.size(); ++i) {
    progress.update(static_cast<double>(i) / std::max<std::size_t>(files.size(), 1));
    auto ff = std::make_unique<DcmFileFormat>();
    try {
      detail::load_file(*ff, files[i], "de-identify", true);  // is it DICOM at all?
    } catch (const core::Error&) {
      r.skipped.push_back(files[i]);
      continue;
    }
    // A DICOM file that cannot be de-identified is named and left out; the others are still
    // done (nothing is written for it, the map does not change for it).
    try {
      check_uids(*ff->getDataset(), files[i]);
      ff = std::make_unique<DcmFileFormat>();
      detail::load_file(*ff, files[i], "de-identify");
    } catch (const core::Error& e) {
      std::string why = e.what();
      if (auto p = why.find(files[i] + ": "); p != std::string::npos) why = why.substr(p + files[i].size() + 2);
      r.failed.emplace_back(files[i], why);
      continue;
    }
    DeidResult one;
    try {
      one = deidentify_loaded(*ff, files[i], out_dir, map, options, /*into_folder=*/true);
    } catch (const core::IoError& e) {
      // Not this file's fault (a full disk): name the input and OUT, and the system's reason.
      if (created && r.files.empty()) fs::remove(out_dir, ec);  // only when it is still empty
      std::string why = e.what();
      if (auto p = why.find((fs::path(out_dir) / "").string()); p != std::string::npos)
        if (auto q = why.find(".dcm: ", p); q != std::string::npos) why = why.substr(q + 6);
      if (why.rfind("cannot write: ", 0) == 0) why = why.substr(14);
      core::fail<core::IoError>("de-identify", files[i],
                                "cannot write its de-identified copy into " + out_dir + ": " + why);
    }
    r.files.push_back(std::move(one));
  }
  if (r.files.empty() && r.failed.empty()) {
    if (created) fs::remove(out_dir, ec);  // only when it is still empty
    core::fail<core::InvalidInput>("de-identify", in_dir,
                                   "no readable DICOM file among " + std::to_string(files.size()) + " file(s)");
  }
  if (r.files.empty() && created) fs::remove(out_dir, ec);
  progress.done();
  return r;
}

// ------------------------------------------------------------------------------------------
// Re-identification

namespace {

void restore_uids(DcmItem& it, const std::unordered_map<std::string, std::string>& reverse) {
  for (unsigned long i = 0; i < it.card(); ++i) {
    DcmElement* el = it.getElement(i);
    const DcmEVR vr = DcmVR(el->getVR()).getValidEVR();
    if (vr == EVR_SQ) {
      auto* sq = static_cast<DcmSequenceOfItems*>(el);
      for (unsigned long k = 0; k < sq->card(); ++k) restore_uids(*sq->getItem(k), reverse);
    } else if (vr == EVR_UI) {
      OFString all;
      el->getOFStringArray(all);
      std::stringstream ss(all.c_str());
      std::string part, out;
      bool first = true, changed = false;
      while (std::getline(ss, part, '\\')) {
        while (!part.empty() && (part.back() == ' ' || part.back() == '\0')) part.pop_back();
        auto f = reverse.find(part);
        if (f != reverse.end()) {
          part = f->second;
          changed = true;
        }
        out += (first ? "" : "\\") + part;
        first = false;
      }
      if (changed) el->putString(out.c_str());
    }
  }
}

}  // namespace

std::vector<std::string> reidentify_file(const std::string& in_file, const std::string& out_file,
                                         const DeidMap& map) {
  std::vector<std::string> warnings;
  DcmFileFormat ff;
  detail::load_file(ff, in_file, "re-identify");
  DcmDataset& ds = *ff.getDataset();
  const E_TransferSyntax xfer = save_xfer(ff);
  const std::string pseudo_study = detail::get_string(ds, DCM_StudyInstanceUID);
  const DeidStudy* study = map.study_by_pseudo_uid(pseudo_study);
  if (!study)
    core::fail<core::InvalidInput>("re-identify", in_file,
                                   "its study is not in the de-identification map");
  std::unordered_map<std::string, std::string> reverse;  // every study's: references may cross studies
  for (const auto& [_, st] : map.studies)
    for (const auto& [orig, pseudo] : st.uids) reverse.emplace(pseudo, orig);
  restore_uids(ds, reverse);
  // Instance-level text of an RT object de-identified here (the SOP Instance UID is the
  // original one again).
  const std::string sop = detail::get_string(ds, DCM_SOPInstanceUID);
  const std::map<std::string, std::string>* text = nullptr;
  for (const auto& [_, st] : map.studies)
    if (auto f = st.instances.find(sop); f != st.instances.end()) text = &f->second;
  std::vector<std::string> not_restored;
  if (text) {
    for (const auto& [path, value] : *text) {
      DcmItem* target = &ds;
      std::string leaf = path;
      if (auto slash = path.find('/'); slash != std::string::npos) {
        unsigned g = 0, e = 0, idx = 0;
        target = nullptr;
        if (std::sscanf(path.c_str(), "%x,%x[%u]", &g, &e, &idx) == 3) {
          DcmItem* item = nullptr;
          if (ds.findAndGetSequenceItem(DcmTagKey(Uint16(g), Uint16(e)), item, static_cast<int>(idx)).good())
            target = item;
        }
        leaf = path.substr(slash + 1);
      }
      unsigned g = 0, e = 0;
      if (!target || std::sscanf(leaf.c_str(), "%x,%x", &g, &e) != 2 ||
          target->putAndInsertString(DcmTagKey(Uint16(g), Uint16(e)), value.c_str()).bad())
        not_restored.push_back(path);
    }
    if (!not_restored.empty()) {
      std::string list;
      for (std::size_t n = 0; n < not_restored.size() && n < 5; ++n) list += (n ? ", " : "") + not_restored[n];
      if (not_restored.size() > 5) list += ", ...";
      warnings.push_back(in_file + ": " + std::to_string(not_restored.size()) +
                         " attribute(s) kept in the map could not be put back (the object's items "
                         "changed since de-identification): " + list);
    }
  }
  if (detail::get_string(ds, DCM_Modality) == "RTSTRUCT") {
    std::size_t unnamed = 0;
    DcmSequenceOfItems* sq = nullptr;
    if (ds.findAndGetSequence(DCM_StructureSetROISequence, sq).good() && sq)
      for (unsigned long i = 0; i < sq->card(); ++i)
        unnamed += detail::get_string(*sq->getItem(i), DCM_ROIName).empty();
    if (unnamed)
      warnings.push_back(in_file + ": " + std::to_string(unnamed) +
                         " ROI(s) have no name and the map holds none for this structure set "
                         "(ROI Names are emptied by de-identification; names, ROI descriptions and "
                         "the structure set label come back only for an RT-STRUCT de-identified "
                         "with this map)");
  }
  for (const auto& t : kRestoreTags) {
    auto v = study->original.find(tag_key(t));
    if (v != study->original.end()) ds.putAndInsertString(t, v->second.c_str());
    else if (t == DCM_StudyDescription) delete ds.remove(t);
    else ds.putAndInsertString(t, "");
  }
  for (const auto& t : {DCM_PatientIdentityRemoved, DCM_DeidentificationMethod,
                        DCM_DeidentificationMethodCodeSequence, DCM_LongitudinalTemporalInformationModified})
    delete ds.remove(t);
  ff.getMetaInfo()->clear();
  detail::save_atomic(ff, out_file, xfer, "re-identify");
  return warnings;
}

}  // namespace isoline::rtstruct
