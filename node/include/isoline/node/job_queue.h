// The node's persistent state (SQLite, WAL): received instances, series and their
// completion, and jobs (one per completed series) with retries and back-off.
//
// Series states: receiving -> complete (a job is queued); interrupted when the association
// that carried it ended abnormally or the node refused one of its instances; held when it
// looked partial at completion (fewer instances than the minimum, fewer than its Images in
// Acquisition, gaps in its Instance Numbers). Interrupted and held series receive again when an
// instance of them arrives, and `isoline jobs --complete` processes one as it is.
//
// Job states: queued -> running -> sending -> done; failed when processing or sending gave
// up (error kept); superseded when the series grew after the job was made (nothing more is
// sent; a newer job has the whole series); skipped when the series is not processed (a
// localizer). A restart turns running jobs back to queued; results written before a
// crash are reused (a series is never contoured twice unless a re-run is asked for).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace isoline::node {

struct InstanceRecord {
  std::string sop_instance_uid;
  std::string series_instance_uid;
  std::string study_instance_uid;
  std::string sop_class_uid;
  std::string file;
  std::string calling_aet;
  /// Instance Number (0020,0013) and Images in Acquisition (0020,1002), when the instance has
  /// them; whether its ImageType says LOCALIZER (a scout).
  std::optional<int> instance_number{};
  std::optional<int> images_in_acquisition{};
  bool localizer = false;
  /// The first instance of its series in the association that carried it (counts the
  /// associations a series arrived over).
  bool first_in_association = false;
};

struct SeriesRecord {
  std::string series_instance_uid;
  std::string study_instance_uid;
  std::string calling_aet;
  std::string state;  ///< receiving | interrupted | held | complete
  int num_instances = 0;
  double first_received = 0, last_received = 0;  ///< Unix time, s
  std::string hold_reason;                       ///< held: why the series looks partial
  int associations = 0;                          ///< associations it arrived over
  double released = 0;  ///< when an association carrying it was last released (0: never)
};

/// What declaring a series complete with the sanity checks gave (JobQueue::complete_if_whole).
struct Completion {
  long long job = 0;     ///< the new job, 0 when none (held, or a job already has every instance)
  std::string held;      ///< why the series is held (looks partial); empty when not held
  std::string warning;   ///< why it looks partial although processed (hold_partial false)
  int associations = 0;  ///< associations the series arrived over
};

struct Job {
  long long id = 0;
  std::string series_instance_uid;
  std::string kind;   ///< contour | run
  std::string state;  ///< queued | running | sending | done | failed | superseded | skipped
  int process_attempts = 0;
  int send_attempts = 0;  ///< send attempts made (each one to every destination not yet reached)
  double next_attempt = 0;  ///< Unix time of the next send attempt
  double created = 0, updated = 0;
  double completed_series = 0;  ///< when the series was declared complete
  double result_ready = 0;      ///< when the results were written
  double sent = 0;              ///< when every destination accepted the results
  int num_instances = 0;
  std::vector<std::string> results;  ///< files to send
  std::vector<std::string> sent_to;  ///< destinations that accepted them
  std::string error;  ///< failed: the error; superseded/skipped: why
  double progress = 0;  ///< of the processing, 0..1 (running; 1 once the results exist)
  std::string stage;    ///< what the processing is doing, e.g. "contour/segment/network: slices"
};

class JobQueue {
 public:
  /// Opens (creating) the database. Throws core::IoError.
  explicit JobQueue(const std::string& db_file);
  ~JobQueue();
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;

  /// What a stored instance was to its series.
  enum class Arrival {
    Fresh,    ///< the series is still receiving (or resumes after an interruption)
    Repeat,   ///< the series was processed and this instance was part of it: not again
    Extends,  ///< the series was processed without this instance: it is processed again,
              ///< with every instance, once complete
    Grows,    ///< the series' latest job is not finished (queued, running or sending) and
              ///< lacks this instance: that job is superseded (sends nothing) and the series
              ///< is processed again, with every instance, once complete
  };
  /// Records a stored instance (idempotent: the same SOP Instance UID replaces its row) and
  /// touches its series: an interrupted series resumes receiving; a processed series that
  /// gets an instance it did not have receives again, and complete_series then queues a new
  /// job for it.
  Arrival record_instance(const InstanceRecord& r, double now);
  /// The association that carried the series ended abnormally (aborted, network error): a
  /// receiving series is marked interrupted and is not completed by the quiet time (nor the
  /// release) until an instance of it arrives again (the sender resends it).
  void mark_interrupted(const std::string& series_uid);
  /// Series marked interrupted and not sent again since.
  std::vector<SeriesRecord> interrupted_series();
  /// Series held as partial and not sent more since.
  std::vector<SeriesRecord> held_series();
  /// Stored instances of a series (file, SOP Instance UID, Instance Number), ordered as
  /// series_files.
  std::vector<InstanceRecord> series_instances(const std::string& series_uid);
  /// Files of a series, in no particular order.
  std::vector<std::string> series_files(const std::string& series_uid);
  std::optional<SeriesRecord> series(const std::string& series_uid);
  /// The newest job of a series.
  std::optional<Job> latest_job(const std::string& series_uid);

  /// Series still receiving whose last instance is older than `quiet_seconds`.
  std::vector<std::string> quiet_series(double now, double quiet_seconds);
  /// An association that carried the series was released normally at `now` (completion on
  /// release): see released_series.
  void mark_released(const std::string& series_uid, double now);
  /// Series still receiving that were released and got no instance since, for at least
  /// `settle_seconds` (a sender that opens one association per image starts its next one
  /// within that time, and the series stays one job).
  std::vector<std::string> released_series(double now, double settle_seconds);
  /// Declares a receiving series complete as complete_series does, after checking that it
  /// does not look partial: fewer than `min_instances` instances (0: no minimum), fewer
  /// instances than its Images in Acquisition, or gaps in its Instance Numbers. A minimum not
  /// met, or (with `hold_partial`) a partial look, holds the series (state held, the reason
  /// kept) instead of queueing a job; without `hold_partial` the partial look is a warning. A
  /// series of localizers only is not checked (its job skips it).
  Completion complete_if_whole(const std::string& series_uid, const std::string& kind,
                               int min_instances, bool hold_partial, double now);
  /// Marks a receiving series complete and queues a job for it, unless a job already has as
  /// many instances as the series (returns 0 then). Returns the new job's id.
  long long complete_series(const std::string& series_uid, const std::string& kind, double now);
  /// Queues a new job for an already processed series (an explicit re-run).
  long long rerun(long long job_id, double now);
  /// A failed job back to its last stage (queued, or sending when results exist).
  void retry(long long job_id, double now);

  /// After a restart: running jobs back to queued; receiving series restart their quiet
  /// time (and a release's settle time) at `now` (instances sent before the crash are kept).
  void recover(double now);

  /// The next job to work on: a queued job, or a sending job whose next attempt is due.
  std::optional<Job> next_due(double now);
  std::optional<Job> job(long long id);
  std::vector<Job> jobs();

  void mark_running(long long id, double now);
  /// Progress of a running job (a single statement; callers throttle it).
  void set_progress(long long id, double fraction, const std::string& stage, double now);
  void mark_result(long long id, const std::vector<std::string>& results, double now);
  void mark_sent_to(long long id, const std::string& destination, double now);
  void mark_send_failed(long long id, const std::string& error, double next_attempt, bool give_up,
                        double now);
  void mark_done(long long id, double now);
  /// Why the result of job `id` must not be sent: its series has grown since the job was
  /// made (it holds more instances now, or a later job of the series has more), e.g.
  /// "superseded by job 2: the series grew from 30 to 60 instances". Empty when it has not.
  std::string superseded_reason(long long id);
  /// The job ends without sending (more): state superseded, `why` kept as its note.
  void mark_superseded(long long id, const std::string& why, double now);
  /// The job ends without processing (e.g. a localizer series): state skipped, `why` kept.
  void mark_skipped(long long id, const std::string& why, double now);
  void mark_failed(long long id, const std::string& error, double now);
  /// Back to queued (processing interrupted by a stop request).
  void mark_queued(long long id, double now);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Current Unix time in seconds (fractional).
double now_seconds();

}  // namespace isoline::node
