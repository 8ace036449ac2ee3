// The DICOM node against a real PACS (Orthanc) on 127.0.0.1: CT in by storescu, RT-STRUCT
// out to Orthanc (checked through its REST API), kill/restart, send retries, rejections,
// de-identification on the node, logs without PHI. Needs orthanc, dcmtk and curl (`make deps`).
#include <algorithm>
#include <csignal>
#include <functional>
#include <future>
#include <memory>
#include <regex>
#include <set>

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcuid.h"
#include "dcmtk/dcmnet/scu.h"

#include "isoline/node/config.h"
#include "isoline/node/job_queue.h"
#include "isoline/node/node.h"
#include "isoline/core/error.h"
#include "isoline/core/text.h"
#include "isoline/rtstruct/rtstruct.h"
#include "tests/node/node_test_util.h"

using namespace isoline;
using namespace isoline::test::node;
using isoline::test::run_command;
using isoline::test::slurp;
using isoline::test::TempDir;

namespace {

class NodeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    ct_ = new rtstruct::CtSeries(make_ct(dir_->file("ct")));
  }
  static void TearDownTestSuite() {
    delete ct_;
    delete dir_;
  }
  void SetUp() override {
    ::setenv("TCP_NODELAY", "1", 1);  // inherited by Orthanc (see docs/dicom-node.md)
    for (const char* t : {kOrthanc, "storescu", "echoscu", "curl"})
      if (!require_tool(t)) GTEST_FAIL() << "missing " << t;
  }
  static std::string ct_dir() { return dir_->file("ct"); }
  static const rtstruct::CtSeries& ct() { return *ct_; }

  /// Downloads one RT-STRUCT from Orthanc and reads it.
  rtstruct::RtStructData fetch_rtstruct(const Orthanc& o, const std::string& id) {
    const std::string f = work_.file("rs-" + id + ".dcm");
    auto r = run_command("curl -sf -o " + f + " " + o.url("/instances/" + id + "/file"));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return rtstruct::read_rtstruct(f);
  }

  void expect_references_ct(const rtstruct::RtStructData& rs) {
    EXPECT_EQ(rs.referenced_series_instance_uid, ct().series_instance_uid);
    EXPECT_EQ(rs.info.study_instance_uid, ct().info.study_instance_uid);
    EXPECT_EQ(rs.frame_of_reference_uid, ct().frame_of_reference_uid);
    std::set<std::string> want, got(rs.contour_image_uids.begin(), rs.contour_image_uids.end());
    for (const auto& s : ct().slices) want.insert(s.sop_instance_uid);
    EXPECT_EQ(got, want) << "the RT-STRUCT must reference every CT slice by its SOP Instance UID";
    EXPECT_GE(rs.rois.size(), 5u);
  }

  TempDir work_;
  static TempDir* dir_;
  static rtstruct::CtSeries* ct_;
};

TempDir* NodeTest::dir_ = nullptr;
rtstruct::CtSeries* NodeTest::ct_ = nullptr;

std::string dest(const Orthanc& o) { return "ORTHANC@127.0.0.1:" + std::to_string(o.dicom_port()); }

TEST_F(NodeTest, CtSeriesToRtStructInOrthancWithin60s) {
  Orthanc orthanc(work_.file("orthanc"));
  ASSERT_TRUE(orthanc.start()) << orthanc.log();
  NodeProcess node(work_.file("node"), free_port(), {"--forward", dest(orthanc), "--quiet-time", "2"});
  ASSERT_TRUE(node.start()) << node.log();

  EXPECT_EQ(echoscu("SCANNER", "ISOLINE", node.port()).exit_code, 0);  // Verification
  auto s = storescu("SCANNER", "ISOLINE", node.port(), ct_dir());
  ASSERT_EQ(s.exit_code, 0) << s.output;
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_for([&] { return !orthanc.rtstructs().empty(); }, 60))
      << "no RT-STRUCT in Orthanc 60 s after the last C-STORE\n" << node.log();
  const double latency = seconds_since(t0);
  std::printf("last C-STORE -> RT-STRUCT in Orthanc: %.1f s (quiet time 2 s)\n", latency);
  EXPECT_LT(latency, 60.0);

  const auto ids = orthanc.rtstructs();
  ASSERT_EQ(ids.size(), 1u);
  const auto rs = fetch_rtstruct(orthanc, ids[0]);
  expect_references_ct(rs);
  EXPECT_EQ(rs.info.patient_name, kPatientName);
  EXPECT_EQ(rs.info.patient_id, kPatientId);
  // The same through Orthanc's own view of the object.
  const Json tags = orthanc.get_json("/instances/" + ids[0] + "/simplified-tags");
  EXPECT_EQ(tags.value("Modality", ""), "RTSTRUCT");
  EXPECT_EQ(tags.value("StudyInstanceUID", ""), ct().info.study_instance_uid);

  const Json jobs = node.jobs();
  ASSERT_EQ(jobs.size(), 1u) << jobs.dump();
  EXPECT_EQ(jobs[0]["state"], "done");
  EXPECT_EQ(jobs[0]["instances"], static_cast<int>(ct().slices.size()));

  // The scanner sends the series again: stored, not contoured twice.
  s = storescu("SCANNER", "ISOLINE", node.port(), ct_dir());
  ASSERT_EQ(s.exit_code, 0) << s.output;
  std::this_thread::sleep_for(std::chrono::seconds(4));  // past the quiet time
  EXPECT_EQ(node.jobs().size(), 1u) << node.jobs().dump();
  EXPECT_EQ(orthanc.rtstructs().size(), 1u);
  EXPECT_NE(node.log().find("instances sent again are stored, not processed again"), std::string::npos) << node.log();

  EXPECT_EQ(node.stop(SIGTERM), 0) << node.log();
  const std::string log = node.log();
  EXPECT_EQ(log.find("DOE"), std::string::npos) << "patient name in the log:\n" << log;
  EXPECT_EQ(log.find(kPatientId), std::string::npos) << "patient ID in the log:\n" << log;
  EXPECT_NE(log.find("job 1: done"), std::string::npos) << log;
}

TEST_F(NodeTest, KilledMidSeriesRestartedCompletesAndContoursOnce) {
  Orthanc orthanc(work_.file("orthanc"));
  ASSERT_TRUE(orthanc.start()) << orthanc.log();
  const int port = free_port();
  const std::vector<std::string> args = {"--forward", dest(orthanc), "--quiet-time", "4"};
  // First half of the slices, then kill -9 before the series could complete.
  const std::string half = work_.file("half");
  fs::create_directories(half);
  for (std::size_t k = 0; k < ct().slices.size() / 2; ++k)
    fs::copy_file(ct().slices[k].file, half + "/" + fs::path(ct().slices[k].file).filename().string());
  {
    NodeProcess node(work_.file("node"), port, args);
    ASSERT_TRUE(node.start()) << node.log();
    auto s = storescu("SCANNER", "ISOLINE", port, half);
    ASSERT_EQ(s.exit_code, 0) << s.output;
    node.stop(SIGKILL);
    EXPECT_TRUE(node.jobs().empty()) << "killed before the quiet time: no job yet\n" << node.log();
  }
  NodeProcess node(work_.file("node"), port, args);
  ASSERT_TRUE(node.start()) << node.log();
  EXPECT_NE(node.log().find("listening"), std::string::npos);
  // The scanner sends the whole series again (the first half twice).
  auto s = storescu("SCANNER", "ISOLINE", port, ct_dir());
  ASSERT_EQ(s.exit_code, 0) << s.output;
  ASSERT_TRUE(wait_for([&] { return !orthanc.rtstructs().empty(); }, 60)) << node.log();
  // Wait past another quiet time: still exactly one job and one RT-STRUCT.
  std::this_thread::sleep_for(std::chrono::seconds(6));
  const auto ids = orthanc.rtstructs();
  ASSERT_EQ(ids.size(), 1u) << node.log();
  expect_references_ct(fetch_rtstruct(orthanc, ids[0]));
  const Json jobs = node.jobs();
  ASSERT_EQ(jobs.size(), 1u) << jobs.dump();
  EXPECT_EQ(jobs[0]["state"], "done");
  EXPECT_EQ(jobs[0]["process_attempts"], 1);
  EXPECT_EQ(jobs[0]["instances"], static_cast<int>(ct().slices.size()));
  const std::string log = node.log();
  std::size_t contoured = 0;
  for (auto p = log.find(": contoured"); p != std::string::npos; p = log.find(": contoured", p + 1)) ++contoured;
  EXPECT_EQ(contoured, 1u) << log;
}

TEST_F(NodeTest, SendRetriedWithBackoffUntilOrthancIsBackAcrossANodeRestart) {
  Orthanc orthanc(work_.file("orthanc"));
  ASSERT_TRUE(orthanc.start()) << orthanc.log();
  orthanc.stop();  // the TPS goes down before the result is ready
  const std::string cfg = work_.file("node.json");
  std::ofstream(cfg) << "{ \"destinations\": [\"" << dest(orthanc) << "\"], \"quiet_seconds\": 2,"
                     << " \"retry_initial_seconds\": 1, \"retry_max_seconds\": 2, \"max_send_attempts\": 100 }\n";
  const int port = free_port();
  auto node = std::make_unique<NodeProcess>(work_.file("node"), port, std::vector<std::string>{"--config", cfg});
  ASSERT_TRUE(node->start()) << node->log();
  auto s = storescu("SCANNER", "ISOLINE", port, ct_dir());
  ASSERT_EQ(s.exit_code, 0) << s.output;
  ASSERT_TRUE(wait_for(
      [&] {
        Json j = node->jobs();
        return j.size() == 1 && j[0]["state"] == "sending" && j[0]["send_attempts"].get<int>() >= 2;
      },
      60))
      << node->jobs().dump() << "\n" << node->log();
  EXPECT_NE(node->log().find("send failed (attempt 2/100), next in 2.0 s"), std::string::npos) << node->log();
  // The node restarts while the send is pending: the job survives in the queue.
  node->stop(SIGKILL);
  node = std::make_unique<NodeProcess>(work_.file("node"), port, std::vector<std::string>{"--config", cfg});
  ASSERT_TRUE(node->start()) << node->log();
  ASSERT_TRUE(orthanc.start()) << orthanc.log();  // same storage: the TPS is back
  ASSERT_TRUE(wait_for([&] { return !orthanc.rtstructs().empty(); }, 60)) << node->log();
  ASSERT_TRUE(wait_for([&] { return node->jobs()[0]["state"] == "done"; }, 10)) << node->jobs().dump();
  const Json jobs = node->jobs();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0]["process_attempts"], 1) << "contoured once, sent after the restart";
  EXPECT_GE(jobs[0]["send_attempts"].get<int>(), 2);
  expect_references_ct(fetch_rtstruct(orthanc, orthanc.rtstructs().at(0)));
}

TEST_F(NodeTest, RejectsUnknownCallerNonCtAndGarbageAndKeepsServing) {
  NodeProcess node(work_.file("node"), free_port(), {"--allow", "SCANNER", "--quiet-time", "2", "--debug"});
  ASSERT_TRUE(node.start()) << node.log();
  const int port = node.port();
  // Unknown calling AE title.
  auto e = echoscu("INTRUDER", "ISOLINE", port);
  EXPECT_NE(e.exit_code, 0) << e.output;
  auto s = storescu("INTRUDER", "ISOLINE", port, ct_dir());
  EXPECT_NE(s.output.find("Association Rejected"), std::string::npos) << s.output;
  // Wrong called AE title.
  EXPECT_NE(echoscu("SCANNER", "NOT_ISOLINE", port).exit_code, 0);
  // Non-CT SOP class (an MR image): no presentation context, nothing stored.
  const std::string mr = work_.file("mr");
  fs::create_directories(mr);
  {
    DcmFileFormat ff;
    ASSERT_TRUE(ff.loadFile(ct().slices[0].file.c_str()).good());
    DcmDataset& ds = *ff.getDataset();
    ds.putAndInsertString(DCM_SOPClassUID, UID_MRImageStorage);
    ds.putAndInsertString(DCM_SOPInstanceUID, "1.2.826.0.1.3680043.2.1125.99.1");
    ds.putAndInsertString(DCM_Modality, "MR");
    ASSERT_TRUE(ff.saveFile((mr + "/MR1.dcm").c_str(), EXS_LittleEndianExplicit, EET_ExplicitLength, EGL_recalcGL,
                            EPD_noChange, 0, 0, EWM_updateMeta)
                    .good());
  }
  s = storescu("SCANNER", "ISOLINE", port, mr);
  EXPECT_NE(s.output.find("No presentation context"), std::string::npos) << s.output;
  // Garbage on the port: random bytes, an HTTP request, a connection closed at once.
  for (const std::string g :
       {"head -c 65536 /dev/urandom", "printf 'GET / HTTP/1.0\\r\\n\\r\\n'", "printf ''",
        "printf '\\x01\\x00\\x00\\x00\\xff\\xff\\xff\\xff'"}) {
    run_command("timeout 15 bash -c \"" + g + " > /dev/tcp/127.0.0.1/" + std::to_string(port) + "\"");
  }
  ASSERT_TRUE(node.running()) << node.log();
  // Still serving: Verification and a CT series from the accepted caller.
  ASSERT_TRUE(wait_for([&] { return echoscu("SCANNER", "ISOLINE", port).exit_code == 0; }, 30)) << node.log();
  s = storescu("SCANNER", "ISOLINE", port, ct_dir());
  ASSERT_EQ(s.exit_code, 0) << s.output;
  EXPECT_EQ(s.output.find("Failed"), std::string::npos) << s.output;
  ASSERT_TRUE(wait_for([&] { Json j = node.jobs(); return j.size() == 1 && j[0]["state"] == "done"; }, 60))
      << node.jobs().dump() << "\n" << node.log();
  EXPECT_EQ(node.jobs()[0]["instances"], static_cast<int>(ct().slices.size()));
  EXPECT_TRUE(node.running());
  EXPECT_EQ(node.stop(SIGTERM), 0);
  const std::string log = node.log();
  EXPECT_NE(log.find("'INTRUDER'"), std::string::npos) << log;
  EXPECT_NE(log.find("calling AE title not accepted"), std::string::npos) << log;
  // --debug: patient identity is logged (and only then, see the first test).
  EXPECT_NE(log.find(kPatientId), std::string::npos) << log;
}

TEST_F(NodeTest, DeidentifiesOnTheNodeAndReidentifiesTheResultOnRelease) {
  Orthanc orthanc(work_.file("orthanc"));
  ASSERT_TRUE(orthanc.start()) << orthanc.log();
  // Quiet time 300 s: only the association release can complete the series in time.
  NodeProcess node(work_.file("node"), free_port(),
                   {"--forward", dest(orthanc), "--quiet-time", "300", "--complete-on-release", "--deidentify"});
  ASSERT_TRUE(node.start()) << node.log();
  auto s = storescu("SCANNER", "ISOLINE", node.port(), ct_dir());
  ASSERT_EQ(s.exit_code, 0) << s.output;
  ASSERT_TRUE(wait_for([&] { return !orthanc.rtstructs().empty(); }, 60)) << node.log();
  const auto rs = fetch_rtstruct(orthanc, orthanc.rtstructs().at(0));
  expect_references_ct(rs);  // original UIDs back
  EXPECT_EQ(rs.info.patient_name, kPatientName);
  EXPECT_EQ(rs.info.patient_id, kPatientId);
  EXPECT_EQ(rs.info.study_date, "20240305");
  // What the contouring saw was de-identified.
  const fs::path deid = work_.file("node") + "/jobs/1/deidentified";
  ASSERT_TRUE(fs::is_directory(deid));
  const auto seen = rtstruct::read_ct_series(deid.string());
  EXPECT_EQ(seen.slices.size(), ct().slices.size());
  EXPECT_NE(seen.info.patient_id, kPatientId);
  EXPECT_EQ(seen.info.patient_name.find("DOE"), std::string::npos);
  EXPECT_NE(seen.info.study_instance_uid, ct().info.study_instance_uid);
  EXPECT_NE(seen.series_instance_uid, ct().series_instance_uid);
  EXPECT_TRUE(fs::exists(work_.file("node") + "/deidentification-map.json"));
}

TEST_F(NodeTest, MainJobSendsRtStructAndRtDose) {
  Orthanc orthanc(work_.file("orthanc"));
  ASSERT_TRUE(orthanc.start()) << orthanc.log();
  const std::string cfg = work_.file("node.json");
  std::ofstream(cfg) << "{ \"job_kind\": \"run\", \"run_max_iterations\": 5, \"complete_on_release\": true,"
                     << " \"quiet_seconds\": 300, \"destinations\": [\"" << dest(orthanc) << "\"] }\n";
  NodeProcess node(work_.file("node"), free_port(), {"--config", cfg});
  ASSERT_TRUE(node.start()) << node.log();
  auto s = storescu("SCANNER", "ISOLINE", node.port(), ct_dir());
  ASSERT_EQ(s.exit_code, 0) << s.output;
  std::set<std::string> stages;  // what `isoline jobs` showed while the job ran
  double shown = 0;
  ASSERT_TRUE(wait_for(
      [&] {
        Json j = node.jobs();
        if (j.size() == 1 && j[0]["state"] == "running") {
          shown = std::max(shown, j[0]["progress"].get<double>());
          stages.insert(j[0]["stage"].get<std::string>().substr(0, 12));
        }
        return j.size() == 1 && j[0]["state"] == "done";
      },
      400))
      << node.jobs().dump() << "\n" << node.log();
  EXPECT_GT(shown, 0.2) << "no progress shown while the main job ran";
  EXPECT_GE(stages.size(), 2u) << "one stage only";
  EXPECT_DOUBLE_EQ(node.jobs()[0]["progress"].get<double>(), 1.0);
  ASSERT_EQ(orthanc.rtstructs().size(), 1u);
  expect_references_ct(fetch_rtstruct(orthanc, orthanc.rtstructs()[0]));
  auto r = orthanc.post("/tools/find", R"({"Level":"Instance","Query":{"Modality":"RTDOSE"}})");
  ASSERT_EQ(r.exit_code, 0);
  const Json doses = Json::parse(r.output, nullptr, false);
  ASSERT_EQ(doses.size(), 1u) << r.output;
  const Json tags = orthanc.get_json("/instances/" + doses[0].get<std::string>() + "/simplified-tags");
  EXPECT_EQ(tags.value("StudyInstanceUID", ""), ct().info.study_instance_uid);
  EXPECT_EQ(tags.value("FrameOfReferenceUID", ""), ct().frame_of_reference_uid);
  EXPECT_EQ(tags.value("DoseUnits", ""), "GY");
  EXPECT_NE(node.log().find("ran the main job"), std::string::npos) << node.log();
}

/// An association opened from the test process and held open until release().
class HeldAssociation {
 public:
  HeldAssociation(const std::string& calling, int port) {
    scu_.setAETitle(calling.c_str());
    scu_.setPeerHostName("127.0.0.1");
    scu_.setPeerPort(static_cast<Uint16>(port));
    scu_.setPeerAETitle("ISOLINE");
    scu_.setACSETimeout(20);
    OFList<OFString> ts;
    ts.push_back(UID_LittleEndianImplicitTransferSyntax);
    scu_.addPresentationContext(UID_VerificationSOPClass, ts);
    open_ = scu_.initNetwork().good() && scu_.negotiateAssociation().good();
  }
  ~HeldAssociation() { release(); }
  bool open() const { return open_; }
  bool echo() { return open_ && scu_.sendECHORequest(0).good(); }
  void release() {
    if (open_) scu_.releaseAssociation();
    open_ = false;
  }

 private:
  DcmSCU scu_;
  bool open_ = false;
};

TEST_F(NodeTest, ServesSeveralAssociationsAtOnceUpToTheLimit) {
  // A second CT series (another patient seed: other UIDs).
  const std::string ct2 = work_.file("ct2");
  const rtstruct::CtSeries second = make_ct(ct2, 40, 8);
  ASSERT_NE(second.series_instance_uid, ct().series_instance_uid);
  NodeProcess node(work_.file("node"), free_port(),
                   {"--quiet-time", "2", "--max-associations", "2"});
  ASSERT_TRUE(node.start()) << node.log();
  const int port = node.port();

  // A caller keeps its association open (idle). Served one at a time, the series below
  // would wait behind it for the DIMSE timeout (60 s) and storescu would give up (ACSE
  // timeout 30 s); served side by side, it goes through at once.
  HeldAssociation held("HOLDER", port);
  ASSERT_TRUE(held.open()) << node.log();
  const auto t0 = std::chrono::steady_clock::now();
  auto s = storescu("SCANNER", "ISOLINE", port, ct2);
  const double took = seconds_since(t0);
  ASSERT_EQ(s.exit_code, 0) << s.output << "\n" << node.log();
  std::printf("40 slices stored beside an open association in %.2f s\n", took);
  EXPECT_LT(took, 20.0) << "the series waited behind the open association";
  EXPECT_TRUE(held.echo()) << "the held association must still be served";

  // Two open at once (the limit): a third caller is rejected as transient, told why in the log.
  // (The scanner's association may still be winding down for a moment after storescu exits.)
  std::unique_ptr<HeldAssociation> second_held;
  ASSERT_TRUE(wait_for(
      [&] {
        second_held = std::make_unique<HeldAssociation>("HOLDER2", port);
        return second_held->open();
      },
      10))
      << node.log();
  auto e = echoscu("THIRD", "ISOLINE", port);
  EXPECT_NE(e.exit_code, 0) << e.output;
  EXPECT_NE(e.output.find("Rejected"), std::string::npos) << e.output;
  held.release();
  second_held->release();
  ASSERT_TRUE(wait_for([&] { return echoscu("THIRD", "ISOLINE", port).exit_code == 0; }, 10))
      << node.log();

  // Two scanners send their series at the same time: both stored whole, one job each.
  auto a = std::async(std::launch::async,
                      [&] { return storescu("SCANNER", "ISOLINE", port, ct_dir()); });
  auto b =
      std::async(std::launch::async, [&] { return storescu("SCANNER2", "ISOLINE", port, ct2); });
  const auto ra = a.get(), rb = b.get();
  EXPECT_EQ(ra.exit_code, 0) << ra.output;
  EXPECT_EQ(rb.exit_code, 0) << rb.output;
  ASSERT_TRUE(wait_for(
      [&] {
        Json j = node.jobs();
        return j.size() == 2 && j[0]["state"] == "done" && j[1]["state"] == "done";
      },
      90))
      << node.jobs().dump() << "\n"
      << node.log();
  for (const auto& j : node.jobs())
    EXPECT_EQ(j["instances"], static_cast<int>(ct().slices.size())) << j.dump();
  // ct2 came twice within its quiet time (alone, then beside ct): one series, one job.

  EXPECT_EQ(node.stop(SIGTERM), 0) << node.log();
  const std::string log = node.log();
  EXPECT_NE(log.find("refused: 2 associations open (max_associations 2)"), std::string::npos)
      << log;
  EXPECT_NE(log.find("'THIRD'"), std::string::npos) << log;
}

TEST_F(NodeTest, StopEndsAStalledAssociationWithinSeconds) {
  std::signal(SIGPIPE, SIG_IGN);  // the held association writes to a socket the node closed
  NodeProcess node(work_.file("node"), free_port(), {"--quiet-time", "2"});
  ASSERT_TRUE(node.start()) << node.log();
  // A sender that opened an association and went silent (a hung scanner). The node used to
  // wait for its DIMSE timeout (60 s) and more before it could stop.
  HeldAssociation held("STALLED", node.port());
  ASSERT_TRUE(held.open()) << node.log();
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(node.stop(SIGTERM), 0) << node.log();
  const double took = seconds_since(t0);
  std::printf("SIGTERM -> node stopped in %.1f s with a stalled association open\n", took);
  EXPECT_LT(took, 15.0) << node.log();
  const std::string log = node.log();
  EXPECT_NE(log.find("stop: ending 1 open association(s)"), std::string::npos) << log;
  EXPECT_NE(log.find("'STALLED' ended by the stop request"), std::string::npos) << log;
  EXPECT_NE(log.find("info stopped"), std::string::npos) << log;
  held.release();
}

TEST(NodeCli, ConfigWithUnknownKeyIsRejected) {
  TempDir t;
  std::ofstream(t.file("node.json")) << "{ \"quiet_second\": 5 }\n";
  auto r = run_command(isoline_exe() + " listen --config " + t.file("node.json") + " --work " + t.str());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("unknown key 'quiet_second'"), std::string::npos) << r.output;
}

TEST(NodeCli, PortInUseIsAClearError) {
  TempDir t;
  const int port = free_port();
  Process holder({"/usr/bin/python3", "-c",
                  "import socket,time;s=socket.socket();s.bind(('127.0.0.1'," + std::to_string(port) +
                      "));s.listen();time.sleep(30)"},
                 t.file("holder.log"));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::filesystem::permissions(t.str(), std::filesystem::perms(0755));  // as a umask of 022 makes it
  auto r = run_command(isoline_exe() + " listen --port " + std::to_string(port) + " --work " + t.str());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("port " + std::to_string(port)), std::string::npos) << r.output;
  // The work directory (received CTs, the de-identification map) is private to the node's user.
  EXPECT_EQ(std::filesystem::status(t.str()).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_all);
}

TEST(NodeCli, JobsListsAnInterruptedSeriesAndCompletesItOnRequest) {
  TempDir t;
  {
    node::JobQueue q(node::queue_path(t.str()));
    q.record_instance({"1.2.3.4", "9.8.7", "1.2.3", "1.2.840.10008.5.1.4.1.1.2", "/tmp/x.dcm", "SCANNER"}, 100.0);
    q.mark_interrupted("9.8.7");
  }
  auto r = run_command(isoline_exe() + " jobs --work " + t.str());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("interrupted series 9.8.7: 1 instances"), std::string::npos) << r.output;
  r = run_command(isoline_exe() + " jobs --work " + t.str() + " --complete 1.1.1");
  EXPECT_EQ(r.exit_code, 1) << r.output;  // no such series
  r = run_command(isoline_exe() + " jobs --work " + t.str() + " --complete 9.8.7");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  node::JobQueue q(node::queue_path(t.str()));
  ASSERT_EQ(q.jobs().size(), 1u);
  EXPECT_EQ(q.jobs()[0].num_instances, 1);
  EXPECT_TRUE(q.interrupted_series().empty());
}

}  // namespace

namespace {

/// Copies the CT of `from` into `to` as a new series (new Series/SOP Instance UIDs);
/// `edit(i, dataset)` changes slice i.
std::string copy_as_new_series(const std::string& from, const std::string& to,
                               const std::function<void(int, DcmDataset&)>& edit) {
  fs::create_directories(to);
  char uid[100];
  const std::string series = dcmGenerateUniqueIdentifier(uid, SITE_SERIES_UID_ROOT);
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(from)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (std::size_t i = 0; i < files.size(); ++i) {
    DcmFileFormat ff;
    EXPECT_TRUE(ff.loadFile(files[i].c_str()).good());
    DcmDataset& ds = *ff.getDataset();
    const std::string sop = dcmGenerateUniqueIdentifier(uid, SITE_INSTANCE_UID_ROOT);
    ds.putAndInsertString(DCM_SeriesInstanceUID, series.c_str());
    ds.putAndInsertString(DCM_SOPInstanceUID, sop.c_str());
    ff.getMetaInfo()->putAndInsertString(DCM_MediaStorageSOPInstanceUID, sop.c_str());
    edit(static_cast<int>(i), ds);
    EXPECT_TRUE(ff.saveFile((fs::path(to) / files[i].filename()).c_str(), EXS_LittleEndianExplicit).good());
  }
  return series;
}

// Audit 18, defects 8 and 2 (no PACS needed): a localizer-only series is skipped, not a
// failed job; a series of which the node refused an instance (failure status) is held as
// interrupted, even though its association was released normally (--complete-on-release).
TEST(NodeCli, LocalizerIsSkippedAndASeriesWithARefusedInstanceIsInterrupted) {
  TempDir t;
  make_ct(t.file("ct"), 4);
  const std::string scout = copy_as_new_series(t.file("ct"), t.file("scout"), [](int, DcmDataset& ds) {
    ds.putAndInsertString(DCM_ImageType, "ORIGINAL\\PRIMARY\\LOCALIZER");
  });
  const std::string partial = copy_as_new_series(t.file("ct"), t.file("partial"), [](int i, DcmDataset& ds) {
    if (i == 1) delete ds.remove(DCM_StudyInstanceUID);  // refused: C000, malformed UIDs
  });
  const int port = free_port();
  NodeProcess node(t.file("work"), port, {"--quiet-time", "1", "--complete-on-release"});
  ASSERT_TRUE(node.start()) << node.log();
  auto r = storescu("SCANNER", "ISOLINE", port, t.file("scout"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  storescu("SCANNER", "ISOLINE", port, t.file("partial"));  // one C-STORE fails
  // Defect 7: an MR proposed alone is refused at negotiation, and the log says so by name.
  copy_as_new_series(t.file("ct"), t.file("mr"), [](int, DcmDataset& ds) {
    ds.putAndInsertString(DCM_SOPClassUID, UID_MRImageStorage);
  });
  for (const auto& e : fs::directory_iterator(t.file("mr"))) {  // the meta header's class too
    DcmFileFormat ff;
    ff.loadFile(e.path().c_str());
    ff.getMetaInfo()->putAndInsertString(DCM_MediaStorageSOPClassUID, UID_MRImageStorage);
    ff.saveFile(e.path().c_str(), EXS_LittleEndianExplicit);
  }
  EXPECT_NE(storescu("SCANNER", "ISOLINE", port, t.file("mr"), "-R").exit_code, 0);
  // Defect 7: a destination's A-ASSOCIATE-RJ reason is kept in the send error.
  try {
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(t.file("ct"))) files.push_back(e.path().string());
    node::send_files(files, node::parse_destination("WRONGAE@127.0.0.1:" + std::to_string(port)), "SENDER");
    ADD_FAILURE() << "the node must reject a wrong called AE title";
  } catch (const core::IoError& e) {
    EXPECT_NE(std::string(e.what()).find("Called AE Title Not Recognized"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
  }
  Json jobs;
  EXPECT_TRUE(wait_for(
      [&] {
        jobs = node.jobs();
        return jobs.is_array() && !jobs.empty() && jobs[0]["state"] != "queued" && jobs[0]["state"] != "running";
      },
      30))
      << jobs.dump() << node.log();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // past the quiet time
  jobs = node.jobs();
  node.stop();
  const std::string log = node.log();
  ASSERT_EQ(jobs.size(), 1u) << "no job for the series with a refused instance: " << jobs.dump() << log;
  EXPECT_EQ(jobs[0]["series_instance_uid"], scout);
  EXPECT_EQ(jobs[0]["state"], "skipped") << log;
  EXPECT_NE(log.find("info job 1: series " + scout + " is a localizer (scout): not contoured"), std::string::npos)
      << log;
  EXPECT_EQ(log.find(" error "), std::string::npos) << log;
  EXPECT_NE(log.find("presentation context(s) refused for MRImageStorage (the node accepts"), std::string::npos)
      << log;
  EXPECT_NE(log.find("(series " + partial + ", instance "), std::string::npos) << "the refusal names the series: " << log;
  EXPECT_NE(log.find("series " + partial + " is incomplete: the node refused instance(s) of it"), std::string::npos)
      << log;
  node::JobQueue q(node::queue_path(t.file("work")));
  ASSERT_EQ(q.interrupted_series().size(), 1u);
  EXPECT_EQ(q.interrupted_series()[0].series_instance_uid, partial);
  EXPECT_LT(q.interrupted_series()[0].num_instances, 4) << log;
  r = run_command(isoline_exe() + " jobs --work " + t.file("work"));
  EXPECT_NE(r.output.find("skipped"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("interrupted series " + partial), std::string::npos) << r.output;
}

}  // namespace

namespace {

/// Instance Number of a DICOM file (0 when it has none).
int instance_number(const fs::path& f) {
  DcmFileFormat ff;
  Sint32 n = 0;
  if (ff.loadFile(f.c_str()).good()) ff.getDataset()->findAndGetSint32(DCM_InstanceNumber, n);
  return n;
}

/// Moves the files of `dir` whose Instance Number `pick` chooses into `to`.
void move_instances(const std::string& dir, const std::string& to, const std::function<bool(int)>& pick) {
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(dir))
    if (pick(instance_number(e.path()))) fs::rename(e.path(), fs::path(to) / e.path().filename());
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

// Audit 18, defect 3 (no PACS): with --complete-on-release, a sender that opens one association
// per image makes one job with the whole series (before: one job and one RT-STRUCT per slice),
// and the node says once that the sender does so; a one-slice series and a series with missing
// Instance Numbers are held, not processed, and `isoline jobs` says why; the missing instances
// make the held series complete.
TEST(NodeCli, PerImageAssociationsMakeOneJobAndPartialSeriesAreHeld) {
  TempDir t;
  make_ct(t.file("ct"), 24);
  auto same = [](int, DcmDataset&) {};
  const std::string one = copy_as_new_series(t.file("ct"), t.file("one"), same);
  move_instances(t.file("one"), t.file("one-rest"), [](int n) { return n != 1; });
  const std::string gap = copy_as_new_series(t.file("ct"), t.file("gap"), same);
  move_instances(t.file("gap"), t.file("gap-rest"), [](int n) { return n >= 10 && n <= 12; });
  const std::string per_image = copy_as_new_series(t.file("ct"), t.file("per-image"), same);
  const int port = free_port();
  NodeProcess node(t.file("work"), port, {"--quiet-time", "300", "--complete-on-release", "--release-settle", "3"});
  ASSERT_TRUE(node.start()) << node.log();
  EXPECT_EQ(storescu("SCANNER", "ISOLINE", port, t.file("one")).exit_code, 0);
  EXPECT_EQ(storescu("SCANNER", "ISOLINE", port, t.file("gap")).exit_code, 0);
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(t.file("per-image"))) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& f : files)  // one association per image, as scanners that push images as reconstructed
    EXPECT_EQ(storescu("SCANNER", "ISOLINE", port, f.string()).exit_code, 0);
  std::printf("24 images in 24 associations in %.1f s\n", seconds_since(t0));
  Json jobs;
  ASSERT_TRUE(wait_for(
      [&] {
        jobs = node.jobs();
        return jobs.is_array() && !jobs.empty();
      },
      60))
      << node.log();
  std::this_thread::sleep_for(std::chrono::seconds(4));  // past another settle time: no more jobs
  jobs = node.jobs();
  ASSERT_EQ(jobs.size(), 1u) << jobs.dump() << node.log();
  EXPECT_EQ(jobs[0]["series_instance_uid"], per_image);
  EXPECT_EQ(jobs[0]["instances"], 24);
  auto r = run_command(isoline_exe() + " jobs --work " + t.file("work"));
  EXPECT_NE(r.output.find("held series " + one + ": 1 instances"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("only 1 instance(s), fewer than the minimum of 20 slices (min_slices)"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("held series " + gap + ": 21 instances"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("it looks partial: 3 Instance Number(s) missing between 1 and 24 (10-12)"),
            std::string::npos)
      << r.output;
  // The missing instances arrive: the held series completes, with all 24.
  EXPECT_EQ(storescu("SCANNER", "ISOLINE", port, t.file("gap-rest")).exit_code, 0);
  EXPECT_TRUE(wait_for(
      [&] {
        jobs = node.jobs();
        return jobs.is_array() && jobs.size() == 2;
      },
      120))
      << jobs.dump() << node.log();
  node.stop();
  const std::string log = node.log();
  ASSERT_EQ(jobs.size(), 2u) << log;
  EXPECT_EQ(jobs[1]["series_instance_uid"], gap);
  EXPECT_EQ(jobs[1]["instances"], 24);
  EXPECT_EQ(count(log, "arrives over several associations (one per image?)"), 1u) << log;
  EXPECT_NE(log.find("series " + per_image + " complete (association released, nothing more for 3.0 s, over 24 "
                     "associations)"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("warning series " + one + " held, not processed: only 1 instance(s)"), std::string::npos) << log;
}

// Audit 18, defect 9 (no PACS): a job that fails on a series with missing slices names the
// slices by Instance Number and SOP Instance UID (not the node's links jobs/1/ct/CT0.dcm), says
// how many slices look missing and to send the series again (not Python advice).
// The node's jobs once its one job has failed (within 60 s; the test fails otherwise).
Json one_failed_job(NodeProcess& node) {
  Json jobs;
  EXPECT_TRUE(wait_for(
      [&] {
        jobs = node.jobs();
        return jobs.is_array() && jobs.size() == 1 && jobs[0]["state"] == "failed";
      },
      60))
      << jobs.dump() << node.log();
  return jobs;
}

TEST(NodeCli, AFailedJobNamesSlicesByInstanceNumberAndSaysSendTheSeriesAgain) {
  TempDir t;
  make_ct(t.file("ct"), 24);
  const std::string holes = copy_as_new_series(t.file("ct"), t.file("holes"), [](int, DcmDataset&) {});
  // Every other slice from 4 to 20 lost: 5 mm spacing with nine 10 mm gaps (the median gap).
  move_instances(t.file("holes"), t.file("lost"), [](int n) { return n >= 4 && n <= 20 && n % 2 == 0; });
  const int port = free_port();
  NodeProcess node(t.file("work"), port, {"--quiet-time", "1"});
  ASSERT_TRUE(node.start()) << node.log();
  EXPECT_EQ(storescu("SCANNER", "ISOLINE", port, t.file("holes")).exit_code, 0);
  ASSERT_TRUE(wait_for([&] { return node.log().find(" held, not processed") != std::string::npos; }, 30)) << node.log();
  auto r = run_command(isoline_exe() + " jobs --work " + t.file("work") + " --complete " + holes);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const Json jobs = one_failed_job(node);
  node.stop();
  ASSERT_EQ(jobs.size(), 1u) << node.log();
  const std::string error = jobs[0]["error"];
  EXPECT_NE(error.find("missing slices: gap of 10.00 mm between "), std::string::npos) << error;
  EXPECT_NE(error.find("where the spacing is 5.00 mm (about 9 slices missing in 9 gaps)"), std::string::npos) << error;
  EXPECT_NE(error.find(" mm (Instance Number 3 (SOP Instance UID "), std::string::npos) << error;
  EXPECT_NE(error.find("; send the series again from the scanner or PACS"), std::string::npos) << error;
  for (const char* internal : {"CT0.dcm", "/ct/", "/jobs/", "Python", "resample_nonuniform"})
    EXPECT_EQ(error.find(internal), std::string::npos) << internal << " in: " << error;
  EXPECT_NE(node.log().find("error job 1: failed: read CT series: "), std::string::npos) << node.log();
}

// A main job (job kind run) on a CT that is not head and neck (a water-lung-water slab): its
// auto-contoured targets come out empty and it fails. The warning that says why ("anatomy
// outside the model's scope?") is logged before the error, as a successful job logs its
// warnings; the queue's error is the error alone. Before, the log had only the error.
TEST(NodeCli, AFailedMainJobLogsTheWarningsGatheredBeforeItsError) {
  TempDir t;
  auto r = run_command(isoline_exe() + " phantom lung-slab -q --size 48,48,32 --out " + t.file("slab"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  fs::remove(t.file("slab/dicom/RS.dcm"));  // the CT series alone
  const int port = free_port();
  NodeProcess node(t.file("work"), port, {"--quiet-time", "1", "--job", "run"});
  ASSERT_TRUE(node.start()) << node.log();
  r = storescu("SCANNER", "ISOLINE", port, t.file("slab/dicom"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Json jobs = one_failed_job(node);
  node.stop();
  const std::string log = node.log();
  const auto warning = log.find("warning job 1: contouring: anatomy outside the model's scope? ");
  const auto error = log.find("error job 1: failed: run: ");
  ASSERT_NE(warning, std::string::npos) << log;
  ASSERT_NE(error, std::string::npos) << log;
  EXPECT_LT(warning, error) << log;
  EXPECT_NE(log.find("came out empty", error), std::string::npos) << log;
  ASSERT_EQ(jobs.size(), 1u) << log;
  const std::string job_error = jobs[0]["error"];
  EXPECT_NE(job_error.find("came out empty"), std::string::npos) << job_error;
  EXPECT_EQ(job_error.find("anatomy outside"), std::string::npos) << job_error;
}

// Audit 18, defect 14 (no PACS): `isoline jobs` says which destination received a result when
// another did not, --retry says the state a failed job with a result really goes to, and after a
// restart the log names the job that was running when the node died and, failed after as many
// interruptions as allowed, gives the --retry hint.
TEST(NodeCli, JobsSaysWhoReceivedAResultAndARestartNamesTheJobThatWasRunning) {
  TempDir t;
  const std::string work = t.file("work");
  fs::create_directories(work);
  {
    node::JobQueue q(node::queue_path(work));
    for (const std::string s : {"9.1", "9.2", "9.3", "9.4"})
      q.record_instance({"1." + s, s, "1.2.3", "1.2.840.10008.5.1.4.1.1.2", "/tmp/none.dcm", "SCANNER"}, 100.0);
    const std::string refused = "send: PACS@10.0.0.2:104: association: Connection refused";
    const long long partly = q.complete_series("9.1", "contour", 101.0);  // gave up on the PACS
    q.mark_result(partly, {"/tmp/RS.dcm"}, 103.0);
    q.mark_sent_to(partly, "TPS@10.0.0.1:104", 104.0);
    q.mark_send_failed(partly, refused, 0, true, 105.0);
    const long long sending = q.complete_series("9.2", "contour", 101.0);  // still trying the PACS
    q.mark_result(sending, {"/tmp/RS.dcm"}, 103.0);
    q.mark_sent_to(sending, "TPS@10.0.0.1:104", 104.0);
    q.mark_send_failed(sending, refused, 1e10, false, 105.0);
    const long long result = q.complete_series("9.3", "contour", 101.0);  // failed with a result
    q.mark_result(result, {"/tmp/RS.dcm"}, 103.0);
    q.mark_send_failed(result, refused, 0, true, 105.0);
    const long long crashed = q.complete_series("9.4", "contour", 101.0);  // the node died during it
    q.mark_running(crashed, 106.0);
    ASSERT_EQ(crashed, 4);
  }
  auto r = run_command(isoline_exe() + " jobs --work " + work);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(count(r.output, "received by TPS@10.0.0.1:104; the destination(s) in the error did not get it"), 1u)
      << r.output;
  EXPECT_EQ(count(r.output, "received by TPS@10.0.0.1:104; the other destination(s) are tried again"), 1u)
      << r.output;
  r = run_command(isoline_exe() + " jobs --work " + work + " --retry 3");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("job 3: its result is sent again (state sending"), std::string::npos) << r.output;
  std::ofstream(t.file("node.json")) << "{ \"max_process_attempts\": 1 }\n";
  NodeProcess node(work, free_port(), {"--config", t.file("node.json")});
  ASSERT_TRUE(node.start()) << node.log();
  EXPECT_TRUE(wait_for([&] { return node.log().find("job 4: failed") != std::string::npos; }, 30)) << node.log();
  node.stop();
  const std::string log = node.log();
  EXPECT_NE(log.find("; job(s) 4 were running when the node stopped and are not run again: interrupted "
                     "max_process_attempts (1) times"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("error job 4: failed: processing interrupted 1 times (crash?); not tried again (isoline jobs "
                     "--retry 4 to try again)"),
            std::string::npos)
      << log;
}

// Audit 18, defect 15 (no PACS): with --debug, a Latin-1 patient name is logged as UTF-8 (not
// its raw bytes), and DCMTK's own lines carry a UTC timestamp like the node's.
TEST(NodeCli, DebugLogIsUtf8AndDcmtkLinesCarryATimestamp) {
  TempDir t;
  make_ct(t.file("ct"), 2);
  copy_as_new_series(t.file("ct"), t.file("latin1"), [](int, DcmDataset& ds) {
    ds.putAndInsertString(DCM_SpecificCharacterSet, "ISO_IR 100");
    ds.putAndInsertString(DCM_PatientName, "G\xf3mez^Jos\xe9");
  });
  const int port = free_port();
  NodeProcess node(t.file("work"), port, {"--quiet-time", "300", "--debug"});
  ASSERT_TRUE(node.start()) << node.log();
  EXPECT_EQ(storescu("SCANNER", "ISOLINE", port, t.file("latin1")).exit_code, 0);
  EXPECT_TRUE(wait_for([&] { return node.log().find("released (2 instances") != std::string::npos; }, 20))
      << node.log();
  node.stop();
  const std::string log = node.log();
  EXPECT_NE(log.find("patient 'G\xc3\xb3mez^Jos\xc3\xa9' ID 'PHI-4711-ID'"), std::string::npos) << log;
  EXPECT_EQ(log.find("G\xf3mez"), std::string::npos) << "raw Latin-1 bytes in the log";
  std::istringstream lines(log);
  std::string line;
  int dcmtk = 0;
  while (std::getline(lines, line)) {
    EXPECT_NE(line.rfind("I: ", 0), 0u) << "a DCMTK line without a timestamp: " << line;
    if (line.find(" dcmtk INFO ") == 24) {
      ++dcmtk;
      EXPECT_EQ(line.size() > 24 && line[4] == '-' && line[10] == 'T' && line[19] == '.' && line[23] == 'Z', true)
          << line;
    }
  }
  EXPECT_GT(dcmtk, 0) << log;
}

// DCMTK's own lines (with --debug its association negotiation, refusals, C-ECHO) go to the
// --log file with the node's own lines, in their format, and not to standard error; without
// --log they stay on standard error.
TEST(NodeCli, LogFileHoldsDcmtkLinesTooAndStandardErrorWithoutIt) {
  TempDir t;
  const std::string file = t.file("isoline-node.log");
  {
    make_ct(t.file("ct"), 2);
    NodeProcess node(t.file("work"), free_port(),
                     {"--quiet-time", "1", "--min-slices", "0", "--debug", "--log", file});
    ASSERT_TRUE(node.start()) << node.log() << slurp(file);  // start() waits for a C-ECHO
    const int port = node.port();
    EXPECT_EQ(echoscu("ECHOTEST", "ISOLINE", port).exit_code, 0);
    EXPECT_NE(echoscu("ECHOTEST", "NOT_ISOLINE", port).exit_code, 0);  // refused: called AE title
    EXPECT_EQ(echoscu("CT\xe9X", "ISOLINE", port).exit_code, 0);  // a Latin-1 byte, not UTF-8
    // A second node on the same port does not start: why is in its log file too.
    const auto second = run_command(isoline_exe() + " listen --port " + std::to_string(port) + " --work " +
                                    t.file("work-second") + " --log " + t.file("second.log"));
    EXPECT_EQ(second.exit_code, 1) << second.output;
    const std::string second_log = slurp(t.file("second.log"));
    EXPECT_NE(second_log.find(" error stopped: "), std::string::npos) << second_log;
    EXPECT_NE(second_log.find("port " + std::to_string(port)), std::string::npos) << second_log;
    // A job reads DICOM through rtstruct, whose first read reconfigures DCMTK's root logger:
    // DCMTK's lines must still come after it.
    EXPECT_EQ(storescu("SCANNER", "ISOLINE", port, t.file("ct")).exit_code, 0);
    EXPECT_TRUE(wait_for([&] { Json j = node.jobs(); return j.size() == 1 && j[0]["state"] == "done"; }, 120))
        << node.jobs().dump() << slurp(file);
    EXPECT_EQ(echoscu("AFTERJOB", "ISOLINE", port).exit_code, 0);
    EXPECT_EQ(node.stop(), 0);
    const std::string log = slurp(file), err = node.log();
    EXPECT_NE(log.find(" info listening as ISOLINE"), std::string::npos) << log;
    EXPECT_NE(log.find(" dcmtk INFO Association Received 127.0.0.1: ECHOTEST -> ISOLINE"), std::string::npos)
        << log;
    EXPECT_NE(log.find(" dcmtk INFO Received C-ECHO Request"), std::string::npos) << log;
    EXPECT_NE(log.find(" dcmtk INFO Refusing Association (called AE title not recognized)"), std::string::npos)
        << log;
    EXPECT_NE(log.find(" dcmtk INFO Association Received 127.0.0.1: AFTERJOB -> ISOLINE"), std::string::npos)
        << log;
    EXPECT_EQ(err.find("dcmtk"), std::string::npos) << "DCMTK's lines on standard error with --log:\n" << err;
    EXPECT_EQ(err.find("Association"), std::string::npos) << err;
    // One entry per line, each with one timestamp and a level: nothing interleaved mid-line.
    EXPECT_TRUE(core::valid_utf8(log)) << log;
    EXPECT_NE(log.find(" dcmtk INFO Association Received 127.0.0.1: CT\\xe9X -> ISOLINE"), std::string::npos)
        << log;
    const std::regex stamp("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z");
    std::istringstream lines(log);
    int n = 0;
    for (std::string line; std::getline(lines, line); ++n) {
      ASSERT_GT(line.size(), 26u) << line;
      EXPECT_TRUE(std::regex_match(line.substr(0, 24), stamp) && line[24] == ' ') << line;
      EXPECT_EQ(std::distance(std::sregex_iterator(line.begin(), line.end(), stamp), std::sregex_iterator()), 1)
          << line;
      const std::string level = line.substr(25, line.find(' ', 25) - 25);
      EXPECT_TRUE(level == "info" || level == "warning" || level == "error" || level == "debug" ||
                  level == "dcmtk")
          << line;
    }
    EXPECT_GT(n, 5) << log;
  }
  {
    NodeProcess node(t.file("work2"), free_port(), {"--quiet-time", "300", "--debug"});
    ASSERT_TRUE(node.start()) << node.log();
    EXPECT_NE(echoscu("ECHOTEST", "NOT_ISOLINE", node.port()).exit_code, 0);
    EXPECT_EQ(node.stop(), 0);
    const std::string err = node.log();
    EXPECT_NE(err.find(" dcmtk INFO Association Received"), std::string::npos) << err;
    EXPECT_NE(err.find(" dcmtk INFO Refusing Association (called AE title not recognized)"), std::string::npos)
        << err;
    EXPECT_NE(err.find(" info listening as ISOLINE"), std::string::npos) << err;
  }
}

// Log rotation that moves the file away: after SIGHUP the node writes to a new file of the
// same name (the moved one keeps what came before), and it keeps serving.
TEST(NodeCli, SighupReopensTheLogFile) {
  TempDir t;
  const std::string file = t.file("isoline-node.log"), moved = t.file("isoline-node.log.1");
  NodeProcess node(t.file("work"), free_port(), {"--quiet-time", "300", "--debug", "--log", file});
  ASSERT_TRUE(node.start()) << node.log() << slurp(file);
  EXPECT_EQ(echoscu("BEFORE", "ISOLINE", node.port()).exit_code, 0);
  ASSERT_TRUE(wait_for([&] { return slurp(file).find("BEFORE -> ISOLINE") != std::string::npos; }, 20)) << slurp(file);
  fs::rename(file, moved);
  ASSERT_TRUE(node.signal(SIGHUP));
  EXPECT_TRUE(wait_for([&] { return echoscu("AFTER", "ISOLINE", node.port()).exit_code == 0; }, 20));
  EXPECT_TRUE(wait_for([&] { return slurp(file).find("AFTER -> ISOLINE") != std::string::npos; }, 20))
      << "new file:\n" << slurp(file) << "\nmoved file:\n" << slurp(moved);
  EXPECT_TRUE(node.running()) << "SIGHUP stopped the node:\n" << node.log();
  EXPECT_EQ(node.stop(), 0);
  const std::string before = slurp(moved), after = slurp(file);
  EXPECT_NE(before.find("BEFORE -> ISOLINE"), std::string::npos) << before;
  EXPECT_EQ(before.find("AFTER -> ISOLINE"), std::string::npos) << before;
  EXPECT_NE(after.find(" info log file reopened (SIGHUP)"), std::string::npos) << after;
  EXPECT_EQ(after.find("BEFORE -> ISOLINE"), std::string::npos) << after;
}

// A log file that can no longer be written (here: a file size limit; a full disk is the same)
// does not stop the node: the failure is said once on standard error, naming the file and the
// system's reason, the lines go to standard error meanwhile, and once the file can be written
// again (here: emptied) the node goes back to it and notes there how many lines it missed.
TEST(NodeCli, ALogFileThatCannotBeWrittenIsSaidOnceAndTheNodeKeepsServing) {
  TempDir t;
  const std::string file = t.file("isoline-node.log");
  const std::uintmax_t limit = 1 << 20;
  {
    std::ofstream f(file, std::ios::binary);
    const std::string filler(99, 'x');
    for (std::uintmax_t n = 0; n + 100 <= limit - 600; n += 100) f << filler << '\n';
  }
  const std::uintmax_t filled = fs::file_size(file);
  NodeProcess node(t.file("work"), free_port(), {"--quiet-time", "300", "--debug", "--log", file});
  {
    isoline::test::FileSizeLimit lim(limit);  // inherited by the node
    ASSERT_TRUE(node.start()) << node.log();
  }
  for (int i = 0; i < 5; ++i) EXPECT_EQ(echoscu("FULL" + std::to_string(i), "ISOLINE", node.port()).exit_code, 0);
  const std::string failed = "cannot write the log file " + file + ": File too large";
  EXPECT_TRUE(wait_for([&] { return node.log().find("FULL4 -> ISOLINE") != std::string::npos; }, 20))
      << node.log();
  EXPECT_TRUE(node.running()) << node.log();
  EXPECT_LE(fs::file_size(file), limit);
  EXPECT_GT(fs::file_size(file), filled);  // the lines that fitted are there
  {
    const std::string err = node.log();
    const auto first = err.find(failed);
    EXPECT_NE(first, std::string::npos) << err;
    EXPECT_EQ(err.find(failed, first + 1), std::string::npos) << "said more than once:\n" << err;
  }
  fs::resize_file(file, 0);  // space again
  EXPECT_TRUE(wait_for([&] { return echoscu("AGAIN", "ISOLINE", node.port()).exit_code == 0; }, 20));
  EXPECT_TRUE(wait_for([&] { return slurp(file).find("AGAIN -> ISOLINE") != std::string::npos; }, 20))
      << slurp(file) << "\nstandard error:\n" << node.log();
  EXPECT_EQ(node.stop(), 0);
  const std::string log = slurp(file), err = node.log();
  EXPECT_NE(log.find("lines went to standard error while the log file could not be written (File too large)"),
            std::string::npos)
      << log;
  EXPECT_NE(err.find("the log file " + file + " can be written again"), std::string::npos) << err;
  EXPECT_EQ(err.find("AGAIN -> ISOLINE"), std::string::npos) << err;
  EXPECT_EQ(err.find(failed, err.find(failed) + 1), std::string::npos) << err;
}

// A log file that cannot be opened stops the node before it listens, naming the file and why.
TEST(NodeCli, ALogFileThatCannotBeOpenedIsAClearError) {
  TempDir t;
  const int port = free_port();
  const std::string file = t.file("no-such-dir") + "/node.log";
  auto r = run_command(isoline_exe() + " listen --port " + std::to_string(port) + " --work " + t.file("work") +
                       " --log " + file);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(file), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("No such file or directory"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("listening"), std::string::npos) << r.output;
  r = run_command(isoline_exe() + " listen --port " + std::to_string(port) + " --work " + t.file("work") +
                  " --log " + t.str());  // a directory
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(t.str()), std::string::npos) << r.output;
}

}  // namespace
