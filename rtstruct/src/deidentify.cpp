// De-identification (PS3.15 Basic Application Level Confidentiality Profile) and
// re-identification through a persistent per-study UID map. See deidentify.h.
#include "isoline/rtstruct/deidentify.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
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
    j["studies"][uid] = js;
  }
  const fs::path parent = fs::path(file).parent_path();
  if (!parent.empty()) core::ensure_directory(parent.string(), "write de-identification map");
  core::AtomicOutput out(file);
  {
    std::ofstream o(out.temp_path());
    o << j.dump(1) << "\n";
    if (!o) core::fail<core::IoError>("write de-identification map", file, "cannot write");
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
  DcmDataset& ds = *ff.getDataset();
  const E_TransferSyntax xfer = save_xfer(ff);
  DeidResult res;
  res.original_study_uid = detail::get_string(ds, DCM_StudyInstanceUID);
  if (res.original_study_uid.empty())
    core::fail<core::InvalidInput>("de-identify", in_file, "no StudyInstanceUID");

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

  Deidentifier d(map, study, detail::get_string(ds, DCM_Modality).rfind("RT", 0) == 0);
  d.item(ds);
  // Patient's Name and ID (Z): a consistent pseudonym instead of an empty value.
  detail::put(ds, DCM_PatientID, study.pseudo_patient_id);
  detail::put(ds, DCM_PatientName, "ANONYMIZED^" + study.pseudo_patient_id);
  put_deid_marks(ds);
  ff.getMetaInfo()->clear();  // regenerated from the dataset (Media Storage SOP Instance UID: U)

  res.pseudo_study_uid = detail::get_string(ds, DCM_StudyInstanceUID);
  res.sop_instance_uid = detail::get_string(ds, DCM_SOPInstanceUID);
  res.file = out_file;
  detail::save_atomic(ff, out_file, xfer, "de-identify");
  return res;
}

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
    try {
      (void)read_sop_instance_uid(files[i]);  // header only: is it DICOM at all?
    } catch (const core::Error&) {
      r.skipped.push_back(files[i]);
      continue;
    }
    const std::string tmp_name = (fs::path(out_dir) / (".deid-" + std::to_string(i) + ".dcm")).string();
    DeidResult one = deidentify_file(files[i], tmp_name, map, options);
    const std::string final_name = (fs::path(out_dir) / (one.sop_instance_uid + ".dcm")).string();
    fs::rename(tmp_name, final_name, ec);
    if (ec) core::fail<core::IoError>("de-identify", final_name, "cannot rename: " + ec.message());
    one.file = final_name;
    r.files.push_back(std::move(one));
  }
  if (r.files.empty()) {
    if (created) fs::remove(out_dir, ec);  // only when it is still empty
    core::fail<core::InvalidInput>("de-identify", in_dir,
                                   "no readable DICOM file among " + std::to_string(files.size()) + " file(s)");
  }
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

void reidentify_file(const std::string& in_file, const std::string& out_file, const DeidMap& map) {
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
}

}  // namespace isoline::rtstruct
