// `isoline deidentify` (PS3.15 Basic Profile) as a user runs it on a folder: a bad file among
// good ones, RT-STRUCT round trip, burned-in annotation, dates, the map's place and mode.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include <gtest/gtest.h>

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcitem.h"
#include "dcmtk/dcmdata/dcmetinf.h"
#include "dcmtk/dcmdata/dcsequen.h"
#include "dcmtk/dcmdata/dcvr.h"
#include "isoline/core/io.h"
#include "tests/rtstruct/rt_test_util.h"

namespace fs = std::filesystem;
using namespace isoline;
using isoline::test::TempDir;

namespace {

core::Geometry grid() {
  core::Geometry g;
  g.size = {24, 20, 6};
  g.spacing = {2.0, 2.0, 2.5};
  g.origin = {-23.0, -19.0, -6.25};
  return g;
}


/// A 6-slice CT in t/ct and (with `rs`) an RT-STRUCT t/rs.dcm on it.
void make_ct(TempDir& t, bool rs = false) {
  auto r = test::dicom_phantom_ct(t, grid());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  if (!rs) return;
  fs::create_directories(t.file("masks"));
  core::write_image(test::anatomy_mask(grid()), t.file("masks/Anatomy.nii.gz"));
  r = test::cli("convert " + t.file("masks") + " --ct " + t.file("ct") + " --out " + t.file("rs.dcm") +
          " --rename Anatomy=Parotid_L -q");
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

std::vector<std::string> dicom_files(const std::string& dir) {
  std::vector<std::string> v;
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".dcm") v.push_back(e.path().string());
  std::sort(v.begin(), v.end());
  return v;
}

std::string str(DcmItem& it, const DcmTagKey& t) {
  OFString v;
  it.findAndGetOFStringArray(t, v);
  return v.c_str();
}

template <class F>
void edit(const std::string& in, const std::string& out, F f) {
  DcmFileFormat ff;
  ASSERT_TRUE(ff.loadFile(in.c_str()).good()) << in;
  f(*ff.getDataset());
  ff.getMetaInfo()->clear();
  ASSERT_TRUE(ff.saveFile(out.c_str(), EXS_LittleEndianExplicit).good()) << out;
}

std::string modality(const std::string& f) {
  DcmFileFormat ff;
  ff.loadFile(f.c_str());
  return str(*ff.getDataset(), DCM_Modality);
}

}  // namespace

// Defect 5 and 15: a file without Study Instance UID and one with an empty SOP Instance UID
// among good slices: both named with their problem, the good ones written, the map saved; the
// rerun after removing the bad files keeps one study and series (same UIDs, no duplicates).
TEST(DeidentifyCli, BadFileNamedOthersWrittenMapSavedRerunGivesSameUids) {
  TempDir t;
  make_ct(t);
  fs::create_directories(t.file("in"));
  const auto slices = dicom_files(t.file("ct"));
  ASSERT_EQ(slices.size(), 6u);
  for (const auto& s : slices) fs::copy_file(s, t.file("in/" + fs::path(s).filename().string()));
  edit(slices[0], t.file("in/zzz_nostudy.dcm"), [](DcmDataset& ds) {
    delete ds.remove(DCM_StudyInstanceUID);
    ds.putAndInsertString(DCM_SOPInstanceUID, (str(ds, DCM_SOPInstanceUID) + ".5").c_str());
  });
  edit(slices[1], t.file("in/zzz_nosop.dcm"), [](DcmDataset& ds) { ds.putAndInsertString(DCM_SOPInstanceUID, ""); });
  const std::string map = t.file("private/map.json");
  auto r = test::cli("deidentify -q " + t.file("in") + " " + t.file("out") + " --map " + map);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(test::has(r.output, "zzz_nostudy.dcm: lacks its Study Instance UID")) << r.output;
  EXPECT_TRUE(test::has(r.output, "zzz_nosop.dcm: lacks its SOP Instance UID")) << r.output;
  EXPECT_FALSE(test::has(r.output, "not a readable DICOM file")) << r.output;
  EXPECT_TRUE(test::has(r.output, "2 DICOM file(s) not de-identified")) << r.output;
  EXPECT_EQ(dicom_files(t.file("out")).size(), 6u);
  ASSERT_TRUE(fs::exists(map)) << "the map of the files written must be saved";
  // Fixed input, same command: the same 6 files (same UIDs), one study, one series.
  fs::remove(t.file("in/zzz_nostudy.dcm"));
  fs::remove(t.file("in/zzz_nosop.dcm"));
  r = test::cli("deidentify -q " + t.file("in") + " " + t.file("out") + " --map " + map);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto out = dicom_files(t.file("out"));
  EXPECT_EQ(out.size(), 6u);
  std::set<std::string> studies, series, patients;
  for (const auto& f : out) {
    DcmFileFormat ff;
    ASSERT_TRUE(ff.loadFile(f.c_str()).good());
    studies.insert(str(*ff.getDataset(), DCM_StudyInstanceUID));
    series.insert(str(*ff.getDataset(), DCM_SeriesInstanceUID));
    patients.insert(str(*ff.getDataset(), DCM_PatientID));
  }
  EXPECT_EQ(studies.size(), 1u);
  EXPECT_EQ(series.size(), 1u);
  EXPECT_EQ(patients.size(), 1u);
}

// Defect 6: de-identify and re-identify an RT-STRUCT: ROI names, ROI descriptions, structure
// set label/description and series description come back (emptied/removed in between).
TEST(DeidentifyCli, RtStructRoundTripRestoresRoiNamesAndDescriptions) {
  TempDir t;
  make_ct(t, true);
  fs::create_directories(t.file("in"));
  for (const auto& s : dicom_files(t.file("ct"))) fs::copy_file(s, t.file("in/" + fs::path(s).filename().string()));
  edit(t.file("rs.dcm"), t.file("in/RS.dcm"), [](DcmDataset& ds) {
    ds.putAndInsertString(DCM_StructureSetLabel, "AutoSeg");
    ds.putAndInsertString(DCM_StructureSetDescription, "model hn v1.2");
    ds.putAndInsertString(DCM_SeriesDescription, "Isoline: WARNINGS (review required)");
    DcmItem* roi = nullptr;
    ASSERT_TRUE(ds.findAndGetSequenceItem(DCM_StructureSetROISequence, roi, 0).good());
    roi->putAndInsertString(DCM_ROIDescription, "confidence 0.00 CHECK: miss");
  });
  const std::string map = t.file("private/map.json");
  auto r = test::cli("deidentify -q " + t.file("in") + " " + t.file("out") + " --map " + map);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string deid_rs;
  for (const auto& f : dicom_files(t.file("out")))
    if (modality(f) == "RTSTRUCT") deid_rs = f;
  ASSERT_FALSE(deid_rs.empty());
  {
    DcmFileFormat ff;
    ASSERT_TRUE(ff.loadFile(deid_rs.c_str()).good());
    DcmItem* roi = nullptr;
    ASSERT_TRUE(ff.getDataset()->findAndGetSequenceItem(DCM_StructureSetROISequence, roi, 0).good());
    EXPECT_EQ(str(*roi, DCM_ROIName), "");  // the profile: Z
    EXPECT_FALSE(roi->tagExists(DCM_ROIDescription));
    EXPECT_FALSE(ff.getDataset()->tagExists(DCM_StructureSetDescription));
  }
  fs::create_directories(t.file("back_in"));
  fs::copy_file(deid_rs, t.file("back_in/RS.dcm"));
  r = test::cli("deidentify --reidentify " + t.file("back_in") + " " + t.file("back") + " --map " + map);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(test::has(r.output, "warning")) << r.output;
  DcmFileFormat ff;
  ASSERT_TRUE(ff.loadFile(t.file("back/RS.dcm").c_str()).good());
  DcmDataset& ds = *ff.getDataset();
  EXPECT_EQ(str(ds, DCM_StructureSetLabel), "AutoSeg");
  EXPECT_EQ(str(ds, DCM_StructureSetDescription), "model hn v1.2");
  EXPECT_EQ(str(ds, DCM_SeriesDescription), "Isoline: WARNINGS (review required)");
  DcmItem* roi = nullptr;
  ASSERT_TRUE(ds.findAndGetSequenceItem(DCM_StructureSetROISequence, roi, 0).good());
  EXPECT_EQ(str(*roi, DCM_ROIName), "Parotid_L");
  EXPECT_EQ(str(*roi, DCM_ROIDescription), "confidence 0.00 CHECK: miss");

  // An RT-STRUCT with empty ROI names the map knows nothing of: re-identified with a warning.
  edit(deid_rs, t.file("back_in/RS.dcm"), [](DcmDataset& d) {
    d.putAndInsertString(DCM_SOPInstanceUID, "1.2.826.0.1.3680043.2.1143.999.1");
  });
  r = test::cli("deidentify --reidentify " + t.file("back_in") + " " + t.file("back2") + " --map " + map);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(test::has(r.output, "warning:") && test::has(r.output, "ROI(s) have no name")) << r.output;
}

// Defect 11: Burned In Annotation YES is named in a warning.
TEST(DeidentifyCli, BurnedInAnnotationYesIsWarnedAbout) {
  TempDir t;
  make_ct(t);
  fs::create_directories(t.file("in"));
  edit(dicom_files(t.file("ct"))[0], t.file("in/burned.dcm"),
       [](DcmDataset& ds) { ds.putAndInsertString(DCM_BurnedInAnnotation, "YES"); });
  edit(dicom_files(t.file("ct"))[1], t.file("in/clean.dcm"),
       [](DcmDataset& ds) { ds.putAndInsertString(DCM_BurnedInAnnotation, "NO"); });
  auto r = test::cli("deidentify -q " + t.file("in") + " " + t.file("out") + " --map " + t.file("m.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(test::has(r.output, "warning: " + t.file("in/burned.dcm") + ": Burned In Annotation")) << r.output;
  EXPECT_FALSE(test::has(r.output, "clean.dcm")) << r.output;
}

// Defect 10: no real date or time survives next to Longitudinal Temporal Information
// Modified = REMOVED (instance creation, calibration, contrast, nested ones included).
TEST(DeidentifyCli, NoDateOrTimeSurvivesWhenMarkedRemoved) {
  TempDir t;
  make_ct(t);
  fs::create_directories(t.file("in"));
  edit(dicom_files(t.file("ct"))[0], t.file("in/a.dcm"), [](DcmDataset& ds) {
    ds.putAndInsertString(DCM_InstanceCreationDate, "20221208");
    ds.putAndInsertString(DCM_InstanceCreationTime, "101112");
    ds.putAndInsertString(DCM_DateOfLastCalibration, "20221208");
    ds.putAndInsertString(DCM_TimeOfLastCalibration, "080910");
    ds.putAndInsertString(DCM_ContrastBolusStartTime, "101500");
    ds.putAndInsertString(DCM_ContrastBolusStopTime, "101600");
    ds.putAndInsertString(DCM_SeriesDate, "20221208");
    DcmItem* item = nullptr;
    ASSERT_TRUE(ds.findOrCreateSequenceItem(DCM_RequestAttributesSequence, item, -2).good());
    item->putAndInsertString(DCM_ScheduledProcedureStepStartDate, "20221208");
  });
  auto r = test::cli("deidentify -q " + t.file("in") + " " + t.file("out") + " --map " + t.file("m.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto out = dicom_files(t.file("out"));
  ASSERT_EQ(out.size(), 1u);
  DcmFileFormat ff;
  ASSERT_TRUE(ff.loadFile(out[0].c_str()).good());
  EXPECT_EQ(str(*ff.getDataset(), DCM_LongitudinalTemporalInformationModified), "REMOVED");
  const std::set<std::string> dummies = {"", "19000101", "000000", "19000101000000"};
  int dates = 0;
  std::function<void(DcmItem&)> walk = [&](DcmItem& it) {
    for (unsigned long i = 0; i < it.card(); ++i) {
      DcmElement* el = it.getElement(i);
      const DcmEVR vr = DcmVR(el->getVR()).getValidEVR();
      if (vr == EVR_SQ) {
        auto* sq = static_cast<DcmSequenceOfItems*>(el);
        for (unsigned long k = 0; k < sq->card(); ++k) walk(*sq->getItem(k));
      } else if (vr == EVR_DA || vr == EVR_DT || vr == EVR_TM) {
        ++dates;
        OFString v;
        el->getOFStringArray(v);
        EXPECT_TRUE(dummies.count(v.c_str())) << el->getTag() << " = " << v;
      }
    }
  };
  walk(*ff.getDataset());
  EXPECT_GT(dates, 0);
}

// Defect 13: --map is required, may not be inside OUT, and is written 0600.
TEST(DeidentifyCli, MapIsRequiredPrivateAndNotInsideOut) {
  TempDir t;
  make_ct(t);
  auto r = test::cli("deidentify -q " + t.file("ct") + " " + t.file("out"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(test::has(r.output, "--map MAP.json is required")) << r.output;
  EXPECT_FALSE(fs::exists(t.file("out")));
  EXPECT_FALSE(fs::exists(t.file("out.deid-map.json")));
  r = test::cli("deidentify -q " + t.file("ct") + " " + t.file("out") + " --map " + t.file("out/map.json"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(test::has(r.output, "inside OUT")) << r.output;
  EXPECT_FALSE(fs::exists(t.file("out")));
  ::umask(022);
  r = test::cli("deidentify -q " + t.file("ct") + " " + t.file("out") + " --map " + t.file("keys/map.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  struct stat st {};
  ASSERT_EQ(::stat(t.file("keys/map.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Extending it keeps it private.
  r = test::cli("deidentify -q " + t.file("ct") + " " + t.file("out2") + " --map " + t.file("keys/map.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_EQ(::stat(t.file("keys/map.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}
