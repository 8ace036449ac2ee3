// De-identification (PS3.15 Basic Profile): every element of the output is checked against
// the profile's attribute list, UIDs stay consistent across the CT series and its RT-STRUCT,
// dciodvfy still passes, and re-identification gives the original identity back.
#include <cstring>
#include <map>
#include <set>

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcdict.h"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcitem.h"
#include "dcmtk/dcmdata/dcmetinf.h"
#include "dcmtk/dcmdata/dcsequen.h"
#include "dcmtk/dcmdata/dcuid.h"
#include "dcmtk/dcmdata/dcvr.h"
#include "isoline/contouring/contour.h"
#include "isoline/rtstruct/deidentify.h"
#include "isoline/rtstruct/rtdose.h"
#include "isoline/rtstruct/rtstruct.h"
#include "tests/node/node_test_util.h"

using namespace isoline;
using namespace isoline::test::node;
using isoline::test::run_command;
using isoline::test::TempDir;

namespace {

std::string value_of(DcmElement* el) {
  OFString v;
  el->getOFStringArray(v);
  std::string s = v.c_str();
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

/// A value of the right VR for an attribute the test plants (numbers, dates, names, UIDs).
std::string plant_value(DcmEVR vr, int n) {
  switch (vr) {
    case EVR_DA: return "20200102";
    case EVR_TM: return "101112";
    case EVR_DT: return "20200102101112";
    case EVR_PN: return "SECRET^PERSON" + std::to_string(n);
    case EVR_UI: {
      char uid[100];
      return dcmGenerateUniqueIdentifier(uid, SITE_INSTANCE_UID_ROOT);
    }
    case EVR_AS: return "042Y";
    case EVR_CS: return "SECRET" + std::to_string(n % 1000);
    case EVR_DS: return "12.5";
    case EVR_IS:
    case EVR_US:
    case EVR_SS:
    case EVR_UL:
    case EVR_SL: return "7";
    case EVR_FL:
    case EVR_FD: return "1.5";
    case EVR_AE: return "SECRETAE";
    case EVR_SH:
    case EVR_LO:
    case EVR_ST:
    case EVR_LT:
    case EVR_UT:
    case EVR_UC:
    case EVR_UR: return "secret-" + std::to_string(n);
    default: return "";
  }
}

/// Plants every attribute of the profile table that the dictionary knows (non-repeating,
/// not already present, not group 0000/0002), a nested PHI item, and private attributes.
/// Returns tag -> planted value (for the "no original value survives" check).
std::map<DcmTagKey, std::string> plant_phi(DcmDataset& ds) {
  std::map<DcmTagKey, std::string> planted;
  int n = 0;
  for (const auto& row : rtstruct::basic_profile_attributes()) {
    if (row.group_mask != 0xFFFF || row.element_mask != 0xFFFF) continue;
    if (row.group == 0x0000 || row.group == 0x0002 || row.group >= 0xFFFA) continue;
    const DcmTagKey key(row.group, row.element);
    if (ds.tagExists(key)) continue;
    DcmTag tag(key);
    const DcmEVR vr = tag.getEVR();
    if (vr == EVR_SQ) {
      DcmItem* item = nullptr;
      if (ds.findOrCreateSequenceItem(key, item, -2).good() && item) {
        item->putAndInsertString(DCM_CodeValue, ("SECRET" + std::to_string(++n)).c_str());
        item->putAndInsertString(DCM_PersonName, "SECRET^NESTED");
        planted[key] = "";
      }
      continue;
    }
    const std::string v = plant_value(vr, ++n);
    if (v.empty()) continue;
    if (ds.putAndInsertString(key, v.c_str()).good()) planted[key] = v;
  }
  // Overlay data and comments (60xx), a curve (50xx), private attributes.
  ds.putAndInsertString(DcmTagKey(0x6000, 0x4000), "secret overlay comment");
  ds.putAndInsertString(DcmTagKey(0x0009, 0x0010), "SECRET CREATOR");
  ds.putAndInsertString(DcmTagKey(0x0009, 0x1001), "secret private value");
  // A sequence the profile does not list, holding attributes it does: walked recursively.
  DcmItem* proc = nullptr;
  if (ds.findOrCreateSequenceItem(DCM_ProcedureCodeSequence, proc, -2).good() && proc) {
    proc->putAndInsertString(DCM_CodeValue, "P1");
    proc->putAndInsertString(DCM_CodingSchemeDesignator, "99TEST");
    proc->putAndInsertString(DCM_CodeMeaning, "planning");
    proc->putAndInsertString(DCM_PatientName, "SECRET^INSEQUENCE");
    proc->putAndInsertString(DCM_InstitutionName, "Secret Hospital");
    proc->putAndInsertString(DcmTagKey(0x0011, 0x0010), "PRIVATE");
  }
  return planted;
}

/// Every element (recursively) of a de-identified dataset against the profile.
void check_against_profile(DcmItem& item, const std::map<DcmTagKey, std::string>& planted,
                           const std::string& where, int& checked) {
  for (unsigned long i = 0; i < item.card(); ++i) {
    DcmElement* el = item.getElement(i);
    const DcmTagKey key = el->getTag();
    const std::string name = where + " " + DcmTag(key).getTagName() + " " + key.toString().c_str();
    ++checked;
    EXPECT_EQ(key.getGroup() % 2, 0) << "private attribute survived: " << name;
    const bool sq = DcmVR(el->getVR()).getValidEVR() == EVR_SQ;
    const auto* row = rtstruct::find_profile_attribute(key.getGroup(), key.getElement());
    if (row) {
      const std::string a = row->action;
      const std::string v = sq ? "" : value_of(el);
      auto p = planted.find(key);
      if (a == "X/Z/D" && key == DCM_OperatorsName && v.empty()) {
        // Type 2 in the RT Series module: kept empty (Z) in RT objects.
      } else if (a == "X") {
        ADD_FAILURE() << "attribute the profile removes (X) survived: " << name;
      } else if (a == "Z" || a == "X/Z") {
        if ((key == DCM_PatientName || key == DCM_PatientID) && where.find('>') == std::string::npos)
          EXPECT_NE(v.find("ANON-"), std::string::npos) << name << " = " << v;  // the pseudonym
        else
          EXPECT_TRUE(sq ? static_cast<DcmSequenceOfItems*>(el)->card() == 0 : v.empty()) << name << " = " << v;
      } else if (a == "D" || a == "Z/D" || a == "X/D" || a == "X/Z/D") {
        if (sq) {
          EXPECT_EQ(static_cast<DcmSequenceOfItems*>(el)->card(), 0u) << name;
        }
        if (p != planted.end() && !p->second.empty()) {
          EXPECT_NE(v, p->second) << "original value survived: " << name;
        }
      } else if (a == "U") {
        if (p != planted.end()) {
          EXPECT_NE(v, p->second) << "UID not replaced: " << name;
        }
      } else if (a == "X/Z/U*") {
        ADD_FAILURE() << "sequence with X/Z/U* kept (not Type 1/2 in these IODs): " << name;
      }
    }
    for (const std::string secret : {"SECRET", "secret", "DOE^JANE", kPatientId, "HOUSE^", "ACC-99812"}) {
      if (!sq) {
        EXPECT_EQ(value_of(el).find(secret), std::string::npos) << "identifying value survived: " << name;
      }
    }
    if (sq) {
      auto* s = static_cast<DcmSequenceOfItems*>(el);
      for (unsigned long k = 0; k < s->card(); ++k) check_against_profile(*s->getItem(k), planted, name + ">", checked);
    }
  }
}

std::string uid_of(const std::string& file, const DcmTagKey& tag) {
  DcmFileFormat ff;
  EXPECT_TRUE(ff.loadFile(file.c_str()).good()) << file;
  OFString v;
  ff.getDataset()->findAndGetOFString(tag, v);
  return v.c_str();
}

class Deidentify : public ::testing::Test {
 protected:
  void SetUp() override {
    ct_ = make_ct(tmp_.file("in"), 12);
    // An RT-STRUCT referencing the CT (the Body contour is enough for references).
    core::StructureSet ss;
    core::Structure body;
    body.name = "Body";
    body.mask = contouring::body_mask(ct_.image);
    ss.add(body);
    rs_ = tmp_.file("in/RS.dcm");
    rtstruct::write_rtstruct(ss, ct_, rs_);
  }
  TempDir tmp_;
  rtstruct::CtSeries ct_;
  std::string rs_;
};

TEST_F(Deidentify, ProfileTableIsTheBasicProfile) {
  const auto& rows = rtstruct::basic_profile_attributes();
  EXPECT_GT(rows.size(), 400u);  // PS3.15 Table E.1-1 lists ~460 attributes
  auto act = [](std::uint16_t g, std::uint16_t e) {
    const auto* r = rtstruct::find_profile_attribute(g, e);
    return r ? std::string(r->action) : std::string("-");
  };
  EXPECT_EQ(act(0x0010, 0x0010), "Z");      // Patient's Name
  EXPECT_EQ(act(0x0010, 0x0020), "Z");      // Patient ID
  EXPECT_EQ(act(0x0010, 0x0030), "Z");      // Patient's Birth Date
  EXPECT_EQ(act(0x0008, 0x0080), "X/Z/D");  // Institution Name
  EXPECT_EQ(act(0x0020, 0x000D), "U");      // Study Instance UID
  EXPECT_EQ(act(0x0008, 0x1155), "U");      // Referenced SOP Instance UID
  EXPECT_EQ(act(0x3006, 0x0024), "U");      // Referenced Frame of Reference UID
  EXPECT_EQ(act(0x6002, 0x3000), "X");      // Overlay Data, repeating group
  EXPECT_EQ(act(0x5010, 0x1234), "X");      // Curve Data
  EXPECT_EQ(act(0x0028, 0x0010), "-");      // Rows: not listed, kept
}

TEST_F(Deidentify, NoProfileAttributeSurvivesWalkingEveryElement) {
  std::map<DcmTagKey, std::string> planted;
  for (const auto& s : ct_.slices) {
    DcmFileFormat ff;
    ASSERT_TRUE(ff.loadFile(s.file.c_str()).good());
    ff.loadAllDataIntoMemory();  // saved onto the same file below
    planted = plant_phi(*ff.getDataset());
    ASSERT_TRUE(ff.saveFile(s.file.c_str(), EXS_LittleEndianExplicit).good());
  }
  ASSERT_GT(planted.size(), 250u) << "the test must plant most of the profile's attributes";
  rtstruct::DeidMap map;
  const auto r = rtstruct::deidentify_directory(tmp_.file("in"), tmp_.file("out"), map);
  ASSERT_EQ(r.files.size(), ct_.slices.size() + 1);
  int checked = 0;
  for (const auto& f : r.files) {
    DcmFileFormat ff;
    ASSERT_TRUE(ff.loadFile(f.file.c_str()).good());
    check_against_profile(*ff.getDataset(), planted, fs::path(f.file).filename().string(), checked);
    // Group 0002 too: Media Storage SOP Instance UID follows the new SOP Instance UID.
    OFString media;
    ff.getMetaInfo()->findAndGetOFString(DCM_MediaStorageSOPInstanceUID, media);
    EXPECT_EQ(std::string(media.c_str()), f.sop_instance_uid);
    OFString removed;
    ff.getDataset()->findAndGetOFString(DCM_PatientIdentityRemoved, removed);
    EXPECT_EQ(std::string(removed.c_str()), "YES");
  }
  EXPECT_GT(checked, 1000);
  std::printf("planted %zu profile attributes per file; checked %d elements in %zu files\n", planted.size(), checked,
              r.files.size());
  // The pixels are untouched: the de-identified series reads back to the same image.
  std::vector<std::string> cts;
  for (const auto& f : r.files)
    if (f.file.find("RS") == std::string::npos && rtstruct::dicom_modality(f.file) == "CT") cts.push_back(f.file);
  const auto back = rtstruct::read_ct_series(cts);
  ASSERT_EQ(back.image.num_voxels(), ct_.image.num_voxels());
  EXPECT_EQ(std::memcmp(back.image.data<std::int16_t>(), ct_.image.data<std::int16_t>(),
                        ct_.image.num_voxels() * sizeof(std::int16_t)), 0);
}

TEST_F(Deidentify, UidsStayConsistentAcrossSeriesAndRtStructAndRoundTrip) {
  rtstruct::DeidMap map;
  const std::string map_file = tmp_.file("map/deid.json");
  const auto r = rtstruct::deidentify_directory(tmp_.file("in"), tmp_.file("out"), map);
  map.save(map_file);
  std::string rs_out;
  std::set<std::string> study, series, frame, sops;
  for (const auto& f : r.files) {
    if (rtstruct::dicom_modality(f.file) == "RTSTRUCT") {
      rs_out = f.file;
      continue;
    }
    study.insert(uid_of(f.file, DCM_StudyInstanceUID));
    series.insert(uid_of(f.file, DCM_SeriesInstanceUID));
    frame.insert(uid_of(f.file, DCM_FrameOfReferenceUID));
    sops.insert(uid_of(f.file, DCM_SOPInstanceUID));
  }
  ASSERT_EQ(study.size(), 1u);
  ASSERT_EQ(series.size(), 1u);
  ASSERT_EQ(frame.size(), 1u);
  ASSERT_EQ(sops.size(), ct_.slices.size());
  EXPECT_NE(*study.begin(), ct_.info.study_instance_uid);
  EXPECT_NE(*series.begin(), ct_.series_instance_uid);
  EXPECT_NE(*frame.begin(), ct_.frame_of_reference_uid);
  for (const auto& s : ct_.slices) EXPECT_EQ(sops.count(s.sop_instance_uid), 0u);

  // The de-identified RT-STRUCT references the de-identified CT.
  ASSERT_FALSE(rs_out.empty());
  const auto rs = rtstruct::read_rtstruct(rs_out);
  EXPECT_EQ(rs.info.study_instance_uid, *study.begin());
  EXPECT_EQ(rs.referenced_series_instance_uid, *series.begin());
  EXPECT_EQ(rs.frame_of_reference_uid, *frame.begin());
  EXPECT_EQ(std::set<std::string>(rs.contour_image_uids.begin(), rs.contour_image_uids.end()), sops);
  EXPECT_EQ(rs.info.patient_id, uid_of(r.files[0].file, DCM_PatientID));  // one pseudonym per patient

  // De-identifying the study again (more slices later) reuses the map: same UIDs.
  rtstruct::DeidMap reloaded = rtstruct::DeidMap::load(map_file);
  const auto again = rtstruct::deidentify_file(ct_.slices[3].file, tmp_.file("again.dcm"), reloaded);
  EXPECT_EQ(again.pseudo_study_uid, *study.begin());
  EXPECT_EQ(uid_of(tmp_.file("again.dcm"), DCM_SeriesInstanceUID), *series.begin());
  EXPECT_EQ(sops.count(again.sop_instance_uid), 1u);

  // Re-identification of the de-identified RT-STRUCT: original references and identity.
  rtstruct::reidentify_file(rs_out, tmp_.file("rs-back.dcm"), reloaded);
  const auto back = rtstruct::read_rtstruct(tmp_.file("rs-back.dcm"));
  EXPECT_EQ(back.info.patient_name, kPatientName);
  EXPECT_EQ(back.info.patient_id, kPatientId);
  EXPECT_EQ(back.info.patient_birth_date, "19610203");
  EXPECT_EQ(back.info.study_instance_uid, ct_.info.study_instance_uid);
  EXPECT_EQ(back.referenced_series_instance_uid, ct_.series_instance_uid);
  EXPECT_EQ(back.frame_of_reference_uid, ct_.frame_of_reference_uid);
  std::set<std::string> want;
  for (const auto& s : ct_.slices) want.insert(s.sop_instance_uid);
  EXPECT_EQ(std::set<std::string>(back.contour_image_uids.begin(), back.contour_image_uids.end()), want);
}

TEST_F(Deidentify, DciodvfyStillPassesOnTheOutput) {
  ASSERT_TRUE(require_tool("dciodvfy"));
  // Realistic identifying attributes of a scanner's CT.
  for (const auto& s : ct_.slices) {
    DcmFileFormat ff;
    ASSERT_TRUE(ff.loadFile(s.file.c_str()).good());
    ff.loadAllDataIntoMemory();  // saved onto the same file below
    DcmDataset& ds = *ff.getDataset();
    ds.putAndInsertString(DCM_InstitutionName, "Secret Hospital");
    ds.putAndInsertString(DCM_InstitutionAddress, "1 Secret Road");
    ds.putAndInsertString(DCM_OperatorsName, "SECRET^OPERATOR");
    ds.putAndInsertString(DCM_StationName, "SECRETCT1");
    ds.putAndInsertString(DCM_DeviceSerialNumber, "SN-SECRET");
    ds.putAndInsertString(DCM_AcquisitionDate, "20240305");
    ds.putAndInsertString(DCM_SeriesDate, "20240305");
    ds.putAndInsertString(DCM_PatientAge, "063Y");
    ds.putAndInsertString(DcmTagKey(0x0010, 0x1000), "SECRET-OTHER");
    ASSERT_TRUE(ff.saveFile(s.file.c_str(), EXS_LittleEndianExplicit).good());
  }
  auto cli = run_command(isoline_exe() + " deidentify " + tmp_.file("in") + " " + tmp_.file("out") + " --map " +
                         tmp_.file("map.json") + " --quiet");
  ASSERT_EQ(cli.exit_code, 0) << cli.output;
  int files = 0;
  for (const auto& e : fs::directory_iterator(tmp_.file("out"))) {
    ++files;
    auto before = run_command("dciodvfy " + e.path().string());
    EXPECT_EQ(before.output.find("Error"), std::string::npos) << e.path() << "\n" << before.output;
    const std::string modality = rtstruct::dicom_modality(e.path().string());
    EXPECT_TRUE(modality == "CT" || modality == "RTSTRUCT") << modality;
  }
  EXPECT_EQ(files, static_cast<int>(ct_.slices.size()) + 1);
  // The originals pass too (the check is not vacuous: dciodvfy reports errors as "Error").
  auto orig = run_command("dciodvfy " + ct_.slices[0].file);
  EXPECT_EQ(orig.output.find("Error"), std::string::npos) << orig.output;
  auto bad = run_command("dcmodify -nb -m \"(0028,0010)=\" " + ct_.slices[1].file + " && dciodvfy " +
                         ct_.slices[1].file);
  EXPECT_NE(bad.output.find("Error"), std::string::npos) << "dciodvfy must flag a broken CT:\n" << bad.output;
  // Re-identification through the CLI.
  fs::create_directories(tmp_.file("rsonly"));
  for (const auto& e : fs::directory_iterator(tmp_.file("out")))
    if (rtstruct::dicom_modality(e.path().string()) == "RTSTRUCT")
      fs::copy_file(e.path(), tmp_.file("rsonly/RS.dcm"));
  auto re = run_command(isoline_exe() + " deidentify --reidentify " + tmp_.file("rsonly") + " " + tmp_.file("back") +
                        " --map " + tmp_.file("map.json"));
  ASSERT_EQ(re.exit_code, 0) << re.output;
  const auto back = rtstruct::read_rtstruct(tmp_.file("back/RS.dcm"));
  EXPECT_EQ(back.info.patient_id, kPatientId);
  EXPECT_EQ(back.referenced_series_instance_uid, ct_.series_instance_uid);
}

}  // namespace
