// The node's persistent queue: series completion, no double jobs, late instances, recovery
// after a crash, back-off scheduling; configuration parsing.
#include <fstream>

#include <sqlite3.h>

#include "isoline/core/error.h"
#include "isoline/node/config.h"
#include "isoline/node/job_queue.h"
#include "isoline/node/node_util.h"
#include "tests/test_util.h"

using namespace isoline;
using isoline::test::TempDir;

namespace {

node::InstanceRecord inst(const std::string& sop, const std::string& series) {
  return {sop, series, "1.2.3", "1.2.840.10008.5.1.4.1.1.2", "/tmp/" + sop + ".dcm", "SCANNER"};
}

TEST(JobQueue, SeriesCompletesAfterQuietTimeOnceAndOnlyNewInstancesRequeue) {
  using A = node::JobQueue::Arrival;
  TempDir t;
  node::JobQueue q(t.file("q.sqlite"));
  EXPECT_EQ(q.record_instance(inst("1.1", "9.9"), 100.0), A::Fresh);
  EXPECT_EQ(q.record_instance(inst("1.2", "9.9"), 101.0), A::Fresh);
  EXPECT_EQ(q.record_instance(inst("1.2", "9.9"), 101.5), A::Fresh);  // resent: same row
  EXPECT_TRUE(q.quiet_series(103.0, 2.0).empty());
  ASSERT_EQ(q.quiet_series(103.6, 2.0).size(), 1u);
  const long long id = q.complete_series("9.9", "contour", 103.6);
  EXPECT_GT(id, 0);
  EXPECT_EQ(q.complete_series("9.9", "contour", 104.0), 0) << "a series gets one job";
  EXPECT_TRUE(q.quiet_series(200.0, 2.0).empty());
  // The sender sends the series again: nothing new, not processed again.
  EXPECT_EQ(q.record_instance(inst("1.1", "9.9"), 105.0), A::Repeat);
  EXPECT_TRUE(q.quiet_series(200.0, 2.0).empty()) << "instances sent again do not reopen the series";
  auto j = q.job(id);
  ASSERT_TRUE(j);
  EXPECT_EQ(j->state, "queued");
  EXPECT_EQ(j->num_instances, 2);
  // An instance the (still queued) job did not have: the series receives again and gets a
  // second job with all; the first one is superseded (Grows).
  EXPECT_EQ(q.record_instance(inst("1.3", "9.9"), 110.0), A::Grows);
  EXPECT_EQ(q.series_files("9.9").size(), 3u);
  ASSERT_EQ(q.quiet_series(200.0, 2.0).size(), 1u) << "a grown series is completed again";
  const long long grown = q.complete_series("9.9", "contour", 200.0);
  ASSERT_GT(grown, id);
  EXPECT_EQ(q.job(grown)->num_instances, 3);
  EXPECT_EQ(q.complete_series("9.9", "contour", 201.0), 0);
  EXPECT_EQ(q.jobs().size(), 2u);
  const long long again = q.rerun(id, 220.0);
  EXPECT_NE(again, id);
  EXPECT_EQ(q.jobs().size(), 3u) << "an explicit re-run is a new job";
}

TEST(JobQueue, AnInterruptedSeriesWaitsUntilItIsSentAgain) {
  using A = node::JobQueue::Arrival;
  TempDir t;
  node::JobQueue q(t.file("q.sqlite"));
  q.record_instance(inst("1.1", "9.9"), 100.0);
  q.record_instance(inst("1.2", "9.9"), 100.5);
  q.mark_interrupted("9.9");  // the association was aborted after two instances
  EXPECT_TRUE(q.quiet_series(1000.0, 2.0).empty()) << "an interrupted series never completes by the quiet time";
  ASSERT_EQ(q.interrupted_series().size(), 1u);
  EXPECT_EQ(q.interrupted_series()[0].num_instances, 2);
  EXPECT_EQ(q.series("9.9")->state, "interrupted");
  // The sender sends the whole series again: it receives, and completes after the quiet time.
  EXPECT_EQ(q.record_instance(inst("1.1", "9.9"), 1001.0), A::Fresh);
  EXPECT_EQ(q.record_instance(inst("1.3", "9.9"), 1001.5), A::Fresh);
  EXPECT_TRUE(q.interrupted_series().empty());
  ASSERT_EQ(q.quiet_series(1004.0, 2.0).size(), 1u);
  const long long id = q.complete_series("9.9", "contour", 1004.0);
  EXPECT_EQ(q.job(id)->num_instances, 3);
  // Marking a completed series interrupted changes nothing.
  q.mark_interrupted("9.9");
  EXPECT_EQ(q.series("9.9")->state, "complete");
}

TEST(JobQueue, SurvivesReopenAndRecoversRunningJobs) {
  TempDir t;
  long long id = 0;
  {
    node::JobQueue q(t.file("q.sqlite"));
    q.record_instance(inst("1.1", "9.9"), 100.0);
    q.record_instance(inst("2.1", "8.8"), 100.0);
    id = q.complete_series("9.9", "contour", 103.0);
    q.mark_running(id, 104.0);
  }  // crash
  node::JobQueue q(t.file("q.sqlite"));
  q.recover(500.0);
  auto j = q.job(id);
  ASSERT_TRUE(j);
  EXPECT_EQ(j->state, "queued");
  EXPECT_EQ(j->process_attempts, 1);
  // The receiving series restarts its quiet time at the restart.
  EXPECT_TRUE(q.quiet_series(501.0, 2.0).empty());
  EXPECT_EQ(q.quiet_series(502.5, 2.0).size(), 1u);
  auto due = q.next_due(500.0);
  ASSERT_TRUE(due);
  EXPECT_EQ(due->id, id);
}

TEST(JobQueue, ProgressOfARunningJobAndAnOlderQueueGetsTheColumns) {
  TempDir t;
  {  // a queue as written before job progress existed
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(t.file("old.sqlite").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "CREATE TABLE jobs(id INTEGER PRIMARY KEY AUTOINCREMENT, series_uid TEXT NOT NULL,"
                           " kind TEXT NOT NULL, state TEXT NOT NULL, process_attempts INTEGER DEFAULT 0,"
                           " send_attempts INTEGER DEFAULT 0, next_attempt REAL DEFAULT 0, created REAL,"
                           " updated REAL, completed_series REAL DEFAULT 0, result_ready REAL DEFAULT 0,"
                           " sent REAL DEFAULT 0, num_instances INTEGER DEFAULT 0, results TEXT DEFAULT '',"
                           " sent_to TEXT DEFAULT '', error TEXT DEFAULT '');"
                           "INSERT INTO jobs(series_uid, kind, state, created, updated) VALUES('7.7', 'contour', 'done', 1, 1);",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  node::JobQueue old(t.file("old.sqlite"));
  ASSERT_EQ(old.jobs().size(), 1u);
  EXPECT_EQ(old.jobs()[0].state, "done");
  EXPECT_EQ(old.jobs()[0].progress, 0.0);

  node::JobQueue q(t.file("q.sqlite"));
  q.record_instance(inst("1.1", "9.9"), 100.0);
  const long long id = q.complete_series("9.9", "run", 103.0);
  q.set_progress(id, 0.5, "ignored: not running", 103.5);
  EXPECT_EQ(q.job(id)->progress, 0.0);
  q.mark_running(id, 104.0);
  q.set_progress(id, 0.42, "run/plan/optimise: iteration 3", 105.0);
  EXPECT_DOUBLE_EQ(q.job(id)->progress, 0.42);
  EXPECT_EQ(q.job(id)->stage, "run/plan/optimise: iteration 3");
  q.mark_result(id, {"/x/RS.dcm"}, 106.0);
  EXPECT_DOUBLE_EQ(q.job(id)->progress, 1.0);
  EXPECT_EQ(q.job(id)->stage, "");
  q.mark_queued(id, 107.0);  // a new run starts from zero
  q.mark_running(id, 108.0);
  EXPECT_EQ(q.job(id)->progress, 0.0);
}

TEST(JobQueue, SendBackoffAndGiveUp) {
  TempDir t;
  node::JobQueue q(t.file("q.sqlite"));
  q.record_instance(inst("1.1", "9.9"), 100.0);
  const long long id = q.complete_series("9.9", "contour", 103.0);
  q.mark_running(id, 104.0);
  q.mark_result(id, {"/tmp/RS.dcm"}, 105.0);
  ASSERT_TRUE(q.next_due(105.0));
  q.mark_send_failed(id, "connection refused", 115.0, false, 105.0);
  EXPECT_FALSE(q.next_due(110.0)) << "not due before the back-off";
  auto due = q.next_due(115.0);
  ASSERT_TRUE(due);
  EXPECT_EQ(due->state, "sending");
  EXPECT_EQ(due->send_attempts, 1);
  EXPECT_EQ(due->results, std::vector<std::string>{"/tmp/RS.dcm"});
  q.mark_sent_to(id, "A@h:1", 116.0);
  EXPECT_EQ(q.job(id)->sent_to, std::vector<std::string>{"A@h:1"});
  q.mark_send_failed(id, "still down", 0, true, 117.0);
  EXPECT_EQ(q.job(id)->state, "failed");
  EXPECT_FALSE(q.next_due(1e12));
  q.retry(id, 200.0);
  EXPECT_EQ(q.job(id)->state, "sending");
  q.mark_done(id, 201.0);
  EXPECT_EQ(q.job(id)->state, "done");
  EXPECT_THROW(q.retry(id, 202.0), core::InvalidInput);
}

TEST(NodeConfig, DestinationsAndJsonAndValidation) {
  auto d = node::parse_destination("TPS@10.0.0.5:104");
  EXPECT_EQ(d.aet, "TPS");
  EXPECT_EQ(d.host, "10.0.0.5");
  EXPECT_EQ(d.port, 104);
  EXPECT_THROW(node::parse_destination("TPS10.0.0.5:104"), core::InvalidInput);
  EXPECT_THROW(node::parse_destination("TPS@host:x"), core::InvalidInput);
  EXPECT_THROW(node::parse_destination("TPS@host:70000"), core::InvalidInput);
  TempDir t;
  std::ofstream(t.file("n.json")) << R"({"port": 4000, "aet": "NODE", "destinations": ["A@h:1", "B@g:2"],
    "allowed_calling_aets": ["CT1"], "quiet_seconds": 5, "complete_on_release": true, "deidentify": true})";
  auto c = node::load_config(t.file("n.json"));
  EXPECT_EQ(c.port, 4000);
  EXPECT_EQ(c.destinations.size(), 2u);
  EXPECT_EQ(c.allowed_calling_aets, std::vector<std::string>{"CT1"});
  EXPECT_DOUBLE_EQ(c.quiet_seconds, 5.0);
  EXPECT_TRUE(c.complete_on_release);
  EXPECT_NO_THROW(node::validate(c));
  c.job_kind = "run";
  EXPECT_NO_THROW(node::validate(c));
  c.job_kind = "dose";
  EXPECT_THROW(node::validate(c), core::InvalidInput);
  std::ofstream(t.file("bad.json")) << R"({"quiet": 5})";
  EXPECT_THROW(node::load_config(t.file("bad.json")), core::InvalidInput);
  std::ofstream(t.file("m.json")) << R"({"max_associations": 3})";
  EXPECT_EQ(node::load_config(t.file("m.json")).max_associations, 3);
  c.job_kind = "contour";
  for (int bad : {0, 65}) {
    c.max_associations = bad;
    EXPECT_THROW(node::validate(c), core::InvalidInput) << bad;
  }
  node::NodeConfig def;
  EXPECT_DOUBLE_EQ(def.quiet_seconds, 30.0);
  EXPECT_EQ(def.max_associations, 8);
}

}  // namespace

namespace {

// Audit 18, defect 1: a job whose series grows while it is queued or running must not send
// its (partial) result.
TEST(JobQueue, AJobWhoseSeriesGrewIsSupersededAndNamesTheNewerJob) {
  using A = node::JobQueue::Arrival;
  TempDir t;
  node::JobQueue q(t.file("q.sqlite"));
  for (int i = 0; i < 3; ++i) q.record_instance(inst("1." + std::to_string(i), "9.9"), 100.0);
  const long long first = q.complete_series("9.9", "contour", 104.0);
  EXPECT_EQ(q.superseded_reason(first), "");
  q.mark_running(first, 105.0);
  // More slices while job 1 runs: "grows", not "already processed".
  EXPECT_EQ(q.record_instance(inst("1.3", "9.9"), 106.0), A::Grows);
  EXPECT_EQ(q.record_instance(inst("1.4", "9.9"), 106.5), A::Grows);
  EXPECT_EQ(q.series("9.9")->state, "receiving");
  ASSERT_TRUE(q.latest_job("9.9"));
  EXPECT_EQ(q.latest_job("9.9")->id, first);
  std::string why = q.superseded_reason(first);
  EXPECT_NE(why.find("grew from 3 to 5 instances"), std::string::npos) << why;
  const long long second = q.complete_series("9.9", "contour", 110.0);
  ASSERT_GT(second, first);
  why = q.superseded_reason(first);
  EXPECT_EQ(why, "superseded by job " + std::to_string(second) + ": the series grew from 3 to 5 instances");
  EXPECT_EQ(q.superseded_reason(second), "") << "the newest job has the whole series";
  q.mark_result(first, {"/tmp/RS.dcm"}, 111.0);
  q.mark_superseded(first, why, 111.0);
  auto j = q.job(first);
  EXPECT_EQ(j->state, "superseded");
  EXPECT_EQ(j->error, why);
  EXPECT_EQ(q.next_due(1e12)->id, second) << "a superseded job is never due (nothing is sent)";
  // A finished job whose series grows later: "extends" (its result went out; the new job's
  // result supersedes it).
  q.mark_running(second, 112.0);
  q.mark_result(second, {"/tmp/RS2.dcm"}, 113.0);
  q.mark_sent_to(second, "A@h:1", 114.0);
  q.mark_done(second, 114.0);
  EXPECT_EQ(q.job(second)->send_attempts, 1) << "sends counts attempts, the successful one too";
  EXPECT_EQ(q.record_instance(inst("1.5", "9.9"), 120.0), A::Extends);
  // An explicit re-run with as many instances does not supersede the earlier job.
  const long long third = q.complete_series("9.9", "contour", 130.0);
  const long long rerun = q.rerun(third, 131.0);
  EXPECT_EQ(q.superseded_reason(third), "");
  EXPECT_EQ(q.superseded_reason(rerun), "");
  q.mark_skipped(rerun, "a localizer", 132.0);
  EXPECT_EQ(q.job(rerun)->state, "skipped");
}

TEST(JobQueue, DoneWithoutDestinationsCountsNoSendAttempt) {
  TempDir t;
  node::JobQueue q(t.file("q.sqlite"));
  q.record_instance(inst("1.1", "9.9"), 100.0);
  const long long id = q.complete_series("9.9", "contour", 103.0);
  q.mark_result(id, {"/tmp/RS.dcm"}, 105.0);
  q.mark_done(id, 106.0);
  EXPECT_EQ(q.job(id)->send_attempts, 0);
}

// Defect 4: the worker's error loop backs off and logs a repeated error once, then reminds.
TEST(NodeUtil, ErrorBackoffDoublesToItsLimitAndLogsARepeatedErrorOnceThenReminds) {
  node::ErrorBackoff b(0.2, 30.0, 300.0);
  EXPECT_FALSE(b.failing());
  EXPECT_EQ(b.delay(), 0.0);
  double now = 1000.0;
  EXPECT_TRUE(b.on_error("disk full", now));
  EXPECT_DOUBLE_EQ(b.delay(), 0.2);
  int logged = 0;
  for (int i = 0; i < 200; ++i) {
    now += b.delay();
    logged += b.on_error("disk full", now);
  }
  EXPECT_DOUBLE_EQ(b.delay(), 30.0) << "doubling stops at the limit";
  // 200 tries span about 200 * 30 s = 100 min: a reminder every 5 min, not 200 lines.
  EXPECT_GE(logged, 15);
  EXPECT_LE(logged, 21);
  EXPECT_TRUE(b.on_error("another error", now + 1)) << "a different error is logged at once";
  EXPECT_GT(b.on_success(), 0);
  EXPECT_FALSE(b.failing());
  EXPECT_EQ(b.on_success(), 0);
  EXPECT_TRUE(b.on_error("disk full", now + 2));
  EXPECT_DOUBLE_EQ(b.delay(), 0.2) << "back to the short wait after a success";
}

// Defect 7: one line per log entry.
TEST(NodeUtil, OneLineJoinsEmbeddedLineBreaks) {
  EXPECT_EQ(node::one_line("DIMSE Failed to send message\n0006:031d TCP I/O Error\n"),
            "DIMSE Failed to send message | 0006:031d TCP I/O Error");
  EXPECT_EQ(node::one_line("a\r\nb"), "a | b");
  EXPECT_EQ(node::one_line("plain"), "plain");
}

// Every log line is valid UTF-8 (DCMTK's lines carry what the peer sent, e.g. an AE title).
TEST(NodeUtil, Utf8EscapedShowsInvalidBytesAndKeepsValidCharacters) {
  EXPECT_EQ(node::utf8_escaped("M\xc3\xbcller"), "M\xc3\xbcller");
  EXPECT_EQ(node::utf8_escaped("CT\xe9X"), "CT\\xe9X");
  EXPECT_EQ(node::utf8_escaped("\xc3\xbc \xff \xe2\x82"), "\xc3\xbc \\xff \\xe2\\x82") << "a cut sequence too";
  EXPECT_EQ(node::utf8_escaped("\xc0\xaf \xe0\x80\xaf"), "\\xc0\\xaf \\xe0\\x80\\xaf") << "overlong";
  EXPECT_EQ(node::utf8_escaped("\xed\xa0\x80"), "\\xed\\xa0\\x80") << "a surrogate";
  EXPECT_EQ(node::utf8_escaped("\xf0\x9f\x99\x82"), "\xf0\x9f\x99\x82") << "4 bytes, valid";
  EXPECT_EQ(node::utf8_escaped(""), "");
}

// Defect 12: fsync's result is checked (the C-STORE is refused when it fails): core::sync_path,
// tested with core's atomic output (tests/core/test_atomic_file.cpp, SyncPath.*).

// A queue that cannot grow (a full disk; here a file size limit) is an error naming the queue's
// file and the system's reason, not SQLite's "disk I/O error" alone.
TEST(JobQueue, AFullDiskNamesTheQueueFileAndTheSystemsReason) {
  TempDir t;
  const std::string file = t.file("queue.sqlite");
  node::JobQueue q(file);
  std::string message;
  {
    isoline::test::FileSizeLimit lim(64 * 1024);
    try {
      for (int i = 0; i < 5000; ++i) q.record_instance(inst("1." + std::to_string(i), "9.9"), 100.0 + i);
    } catch (const core::IoError& e) {
      message = e.what();
    }
  }
  ASSERT_FALSE(message.empty()) << "5000 instances fitted under 64 KiB";
  EXPECT_NE(message.find("job queue: " + file), std::string::npos) << message;
  EXPECT_NE(message.find("File too large"), std::string::npos) << message;
}

}  // namespace

namespace {

node::InstanceRecord numbered(const std::string& sop, const std::string& series, int number,
                              bool first_in_association = false) {
  node::InstanceRecord r = inst(sop, series);
  r.instance_number = number;
  r.first_in_association = first_in_association;
  return r;
}

// Audit 18, defect 3: a series that looks partial when it falls quiet (or is released) is held,
// not processed: fewer instances than the minimum, fewer than its Images in Acquisition, gaps
// in its Instance Numbers; more of it makes it receive again. A localizer series is not held.
TEST(JobQueue, ASeriesThatLooksPartialIsHeldUntilMoreOfItArrives) {
  TempDir t;
  node::JobQueue q(t.file("q.sqlite"));
  q.record_instance(numbered("1.1", "9.1", 1), 100.0);
  node::Completion c = q.complete_if_whole("9.1", "contour", 3, true, 103.0);
  EXPECT_EQ(c.job, 0);
  EXPECT_EQ(c.held, "only 1 instance(s), fewer than the minimum of 3 slices (min_slices)");
  EXPECT_EQ(q.series("9.1")->state, "held");
  EXPECT_EQ(q.series("9.1")->hold_reason, c.held);
  ASSERT_EQ(q.held_series().size(), 1u);
  EXPECT_TRUE(q.quiet_series(1000.0, 2.0).empty()) << "a held series is not completed again by itself";
  EXPECT_TRUE(q.jobs().empty());
  // More arrives, with a gap in the Instance Numbers (3-4 and 6 missing): held again.
  for (int n : {2, 5, 7}) q.record_instance(numbered("1." + std::to_string(n), "9.1", n), 110.0);
  EXPECT_EQ(q.series("9.1")->state, "receiving");
  EXPECT_EQ(q.series("9.1")->hold_reason, "");
  c = q.complete_if_whole("9.1", "contour", 3, true, 113.0);
  EXPECT_EQ(c.job, 0);
  EXPECT_EQ(c.held, "it looks partial: 3 Instance Number(s) missing between 1 and 7 (3-4, 6)");
  // The missing ones arrive: a job with all seven.
  for (int n : {3, 4, 6}) q.record_instance(numbered("1." + std::to_string(n), "9.1", n), 120.0);
  c = q.complete_if_whole("9.1", "contour", 3, true, 123.0);
  EXPECT_EQ(c.held, "");
  ASSERT_GT(c.job, 0);
  EXPECT_EQ(q.job(c.job)->num_instances, 7);
  EXPECT_EQ(q.series("9.1")->state, "complete");

  // Images in Acquisition (0020,1002) above what arrived; with hold_partial off, a warning.
  for (int n = 1; n <= 4; ++n) {
    node::InstanceRecord r = numbered("2." + std::to_string(n), "9.2", n);
    r.images_in_acquisition = 6;
    q.record_instance(r, 130.0);
  }
  c = q.complete_if_whole("9.2", "contour", 3, true, 133.0);
  EXPECT_EQ(c.held, "it looks partial: 4 of the 6 images its Images in Acquisition (0020,1002) announces");
  q.record_instance(numbered("2.5", "9.2", 5), 134.0);
  c = q.complete_if_whole("9.2", "contour", 3, false, 137.0);
  EXPECT_EQ(c.held, "");
  EXPECT_EQ(c.warning, "it looks partial: 5 of the 6 images its Images in Acquisition (0020,1002) announces");
  EXPECT_GT(c.job, 0);

  // A scout of one image is not held (its job skips it); a forced completion is not checked.
  node::InstanceRecord scout = numbered("3.1", "9.3", 1);
  scout.localizer = true;
  q.record_instance(scout, 140.0);
  EXPECT_GT(q.complete_if_whole("9.3", "contour", 3, true, 143.0).job, 0);
  q.record_instance(numbered("4.1", "9.4", 1), 150.0);
  EXPECT_NE(q.complete_if_whole("9.4", "contour", 3, true, 153.0).held, "");
  EXPECT_GT(q.complete_series("9.4", "contour", 154.0), 0) << "isoline jobs --complete";
}

// Audit 18, defect 3: with completion on release, a series is complete once no instance came
// for the settle time after a release, so a sender with one association per image makes one
// job; the associations are counted.
TEST(JobQueue, AReleasedSeriesCompletesAfterTheSettleTimeWithoutNewInstances) {
  TempDir t;
  node::JobQueue q(t.file("q.sqlite"));
  double now = 100.0;
  for (int n = 1; n <= 5; ++n) {  // one association per image
    q.record_instance(numbered("1." + std::to_string(n), "9.1", n, true), now);
    q.mark_released("9.1", now + 0.01);
    EXPECT_EQ(q.released_series(now + 0.05, 2.0).size(), 0u);
    now += 0.1;
  }
  EXPECT_EQ(q.series("9.1")->associations, 5);
  EXPECT_TRUE(q.released_series(101.0, 2.0).empty()) << "not before the settle time";
  ASSERT_EQ(q.released_series(102.5, 2.0).size(), 1u);
  // An instance after the release (the next association) starts over.
  q.record_instance(numbered("1.6", "9.1", 6, true), 102.6);
  EXPECT_TRUE(q.released_series(200.0, 2.0).empty()) << "a release must follow the last instance";
  q.mark_released("9.1", 102.7);
  // A restart begins the settle time again.
  q.recover(300.0);
  EXPECT_TRUE(q.released_series(301.0, 2.0).empty());
  ASSERT_EQ(q.released_series(302.5, 2.0).size(), 1u);
  const node::Completion c = q.complete_if_whole("9.1", "contour", 3, true, 302.5);
  ASSERT_GT(c.job, 0);
  EXPECT_EQ(c.associations, 6);
  EXPECT_EQ(q.job(c.job)->num_instances, 6);
  EXPECT_TRUE(q.released_series(400.0, 2.0).empty());
  EXPECT_EQ(q.jobs().size(), 1u);
}

TEST(NodeConfig, CompletenessKeys) {
  TempDir t;
  std::ofstream(t.file("n.json")) << R"({"release_settle_seconds": 5, "min_slices": 0, "hold_partial_series": false})";
  const node::NodeConfig c = node::load_config(t.file("n.json"));
  EXPECT_EQ(c.release_settle_seconds, 5.0);
  EXPECT_EQ(c.min_slices, 0);
  EXPECT_FALSE(c.hold_partial_series);
  EXPECT_EQ(node::NodeConfig{}.min_slices, 20);
  EXPECT_EQ(node::NodeConfig{}.release_settle_seconds, 2.0);
  node::NodeConfig bad;
  bad.min_slices = -1;
  EXPECT_THROW(node::validate(bad), core::InvalidInput);
  bad = {};
  bad.release_settle_seconds = -1;
  EXPECT_THROW(node::validate(bad), core::InvalidInput);
}

// Audit 18, defect 9: a failed job's error names slices, not the node's link names, and tells
// the operator what to do instead of giving advice for Python users.
TEST(NodeUtil, JobErrorForOperatorNamesSlicesAndDropsLibraryAdvice) {
  const std::string lib =
      "read CT series: series 1.2.9 (56 files, first /w/jobs/1/ct/CT0.dcm): non-uniform slice spacing: 3.00 mm "
      "between /w/jobs/1/ct/CT0.dcm and /w/jobs/1/ct/CT1.dcm, 6.00 mm elsewhere (export the series again; the "
      "library and Python's read_ct_series(..., resample_nonuniform=True) can interpolate onto a uniform grid)";
  const std::string m = node::job_error_for_operator(
      lib, {{"/w/jobs/1/ct", "the series' instances"},
            {"/w/jobs/1/ct/CT0.dcm", "Instance Number 1 (SOP Instance UID 1.2.9.1)"},
            {"/w/jobs/1/ct/CT1.dcm", "Instance Number 3 (SOP Instance UID 1.2.9.3)"},
            {"/w/jobs/1/ct/CT10.dcm", "Instance Number 40 (SOP Instance UID 1.2.9.40)"}});
  EXPECT_EQ(m,
            "read CT series: series 1.2.9 (56 files, first Instance Number 1 (SOP Instance UID 1.2.9.1)): "
            "non-uniform slice spacing: 3.00 mm between Instance Number 1 (SOP Instance UID 1.2.9.1) and "
            "Instance Number 3 (SOP Instance UID 1.2.9.3), 6.00 mm elsewhere; send the series again from the "
            "scanner or PACS (instances the node lacks make it process the series again)");
  EXPECT_EQ(node::job_error_for_operator("contour: no body found (nothing above -500 HU)", {}),
            "contour: no body found (nothing above -500 HU)")
      << "other errors and their parentheses stay";
}

// Audit 18, defect 15: --debug logs patient names as UTF-8 whatever the sender's character set.
TEST(NodeUtil, Utf8ForLogDecodesTheCharacterSetAndEscapesWhatItCannot) {
  EXPECT_EQ(node::utf8_for_log("G\xf3mez^Jos\xe9", "ISO_IR 100"), "G\xc3\xb3mez^Jos\xc3\xa9");
  EXPECT_EQ(node::utf8_for_log("G\xf3mez", ""), "G\xc3\xb3mez") << "no character set: Latin-1, as the readers";
  EXPECT_EQ(node::utf8_for_log("M\xc3\xbcller", "ISO_IR 192"), "M\xc3\xbcller");
  EXPECT_EQ(node::utf8_for_log("DOE^JANE", "ISO_IR 100"), "DOE^JANE");
  EXPECT_EQ(node::utf8_for_log("M\xfcller", "ISO_IR 192"), "M\\xfcller") << "invalid bytes are escaped";
}

}  // namespace
