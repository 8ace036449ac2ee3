// The node's SQLite queue (WAL, one connection per thread, busy timeout).
#include "isoline/node/job_queue.h"

#include <chrono>
#include <sstream>

#include <sqlite3.h>

#include "isoline/core/atomic_file.h"
#include "isoline/core/error.h"
#include "isoline/core/text.h"

namespace isoline::node {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string line;
  while (std::getline(ss, line))
    if (!line.empty()) out.push_back(line);
  return out;
}

// SQLite's message for the last failure on `db` (the database `file`), with the system's reason
// where it can be known (core::storage_failure_reason): SQLite says "disk I/O error" or
// "database or disk is full" alone, and its sqlite3_system_errno() is often 0 by then (a file
// size limit: EFBIG lost). ReviewDb (ui/src/review_db.cpp) has the same wrapper.
std::string sqlite_error(sqlite3* db, const char* message, const std::string& file) {
  const std::string m = message ? message : "?";
  if (!db) return m;
  const int code = sqlite3_extended_errcode(db);
  const bool storage = (code & 0xff) == SQLITE_IOERR || code == SQLITE_FULL;
  const std::string reason =
      core::storage_failure_reason(file, sqlite3_system_errno(db), storage, {"-wal", "-journal"});
  return reason.empty() ? m : m + " (" + reason + ")";
}

}  // namespace

struct JobQueue::Impl {
  sqlite3* db = nullptr;
  std::string file;

  [[noreturn]] void fail(const std::string& what) const {
    core::fail<core::IoError>("job queue", file,
                              what + ": " + (db ? sqlite_error(db, sqlite3_errmsg(db), file) : "no database"));
  }

  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      const std::string e = sqlite_error(db, err, file);
      sqlite3_free(err);
      core::fail<core::IoError>("job queue", file, e);
    }
  }

  /// A prepared statement with positional binding.
  struct Stmt {
    Impl& q;
    sqlite3_stmt* s = nullptr;
    int n = 0;
    Stmt(Impl& qq, const char* sql) : q(qq) {
      if (sqlite3_prepare_v2(q.db, sql, -1, &s, nullptr) != SQLITE_OK) q.fail("prepare");
    }
    ~Stmt() { sqlite3_finalize(s); }
    Stmt& bind(const std::string& v) {
      sqlite3_bind_text(s, ++n, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
      return *this;
    }
    Stmt& bind(const char* v) { return bind(std::string(v)); }
    Stmt& bind(double v) {
      sqlite3_bind_double(s, ++n, v);
      return *this;
    }
    Stmt& bind(long long v) {
      sqlite3_bind_int64(s, ++n, v);
      return *this;
    }
    Stmt& bind(int v) { return bind(static_cast<long long>(v)); }
    Stmt& bind(const std::optional<int>& v) {
      if (v) return bind(*v);
      sqlite3_bind_null(s, ++n);
      return *this;
    }
    bool step() {
      const int rc = sqlite3_step(s);
      if (rc == SQLITE_ROW) return true;
      if (rc == SQLITE_DONE) return false;
      q.fail("step");
    }
    std::string text(int i) const {
      const unsigned char* t = sqlite3_column_text(s, i);
      return t ? reinterpret_cast<const char*>(t) : "";
    }
    double real(int i) const { return sqlite3_column_double(s, i); }
    long long integer(int i) const { return sqlite3_column_int64(s, i); }
  };

  static constexpr const char* kJobColumns =
      "id, series_uid, kind, state, process_attempts, send_attempts, next_attempt, created, updated, "
      "completed_series, result_ready, sent, num_instances, results, sent_to, error, progress, stage";

  Job read_job(const Stmt& st) const {
    Job j;
    j.id = st.integer(0);
    j.series_instance_uid = st.text(1);
    j.kind = st.text(2);
    j.state = st.text(3);
    j.process_attempts = static_cast<int>(st.integer(4));
    j.send_attempts = static_cast<int>(st.integer(5));
    j.next_attempt = st.real(6);
    j.created = st.real(7);
    j.updated = st.real(8);
    j.completed_series = st.real(9);
    j.result_ready = st.real(10);
    j.sent = st.real(11);
    j.num_instances = static_cast<int>(st.integer(12));
    j.results = split(st.text(13));
    j.sent_to = split(st.text(14));
    j.error = st.text(15);
    j.progress = st.real(16);
    j.stage = st.text(17);
    return j;
  }

  /// complete_series inside a transaction of the caller's.
  long long complete_locked(const std::string& series_uid, const std::string& kind, double now);

  std::vector<std::string> series_in_state(const char* state) {
    Stmt st(*this, "SELECT series_uid FROM series WHERE state=? ORDER BY last_received");
    st.bind(state);
    std::vector<std::string> out;
    while (st.step()) out.push_back(st.text(0));
    return out;
  }

  /// Adds a column to a table of an older queue.
  void ensure_column(const std::string& table, const std::string& column, const std::string& decl) {
    bool has = false;
    {
      Stmt cols(*this, ("PRAGMA table_info(" + table + ")").c_str());
      while (cols.step()) has = has || cols.text(1) == column;
    }
    if (!has) exec(("ALTER TABLE " + table + " ADD COLUMN " + column + " " + decl + ";").c_str());
  }

  std::vector<Job> query_jobs(const std::string& where, double now = 0) {
    const std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs " + where;
    Stmt st(*this, sql.c_str());
    if (where.find('?') != std::string::npos) st.bind(now);
    std::vector<Job> out;
    while (st.step()) out.push_back(read_job(st));
    return out;
  }
};

JobQueue::JobQueue(const std::string& db_file) : impl_(std::make_unique<Impl>()) {
  impl_->file = db_file;
  if (sqlite3_open_v2(db_file.c_str(), &impl_->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    const std::string e = impl_->db ? sqlite_error(impl_->db, sqlite3_errmsg(impl_->db), db_file) : "cannot open";
    sqlite3_close(impl_->db);
    impl_->db = nullptr;
    core::fail<core::IoError>("job queue", db_file, e);
  }
  sqlite3_busy_timeout(impl_->db, 10000);
  impl_->exec("PRAGMA journal_mode=WAL;");
  impl_->exec("PRAGMA synchronous=FULL;");  // a recorded instance survives a power cut
  impl_->exec(
      "CREATE TABLE IF NOT EXISTS series("
      " series_uid TEXT PRIMARY KEY, study_uid TEXT, calling_aet TEXT, state TEXT NOT NULL,"
      " first_received REAL, last_received REAL);"
      "CREATE TABLE IF NOT EXISTS instances("
      " sop_uid TEXT PRIMARY KEY, series_uid TEXT NOT NULL, study_uid TEXT, sop_class_uid TEXT,"
      " file TEXT NOT NULL, calling_aet TEXT, received REAL);"
      "CREATE INDEX IF NOT EXISTS instances_series ON instances(series_uid);"
      "CREATE TABLE IF NOT EXISTS jobs("
      " id INTEGER PRIMARY KEY AUTOINCREMENT, series_uid TEXT NOT NULL, kind TEXT NOT NULL,"
      " state TEXT NOT NULL, process_attempts INTEGER DEFAULT 0, send_attempts INTEGER DEFAULT 0,"
      " next_attempt REAL DEFAULT 0, created REAL, updated REAL, completed_series REAL DEFAULT 0,"
      " result_ready REAL DEFAULT 0, sent REAL DEFAULT 0, num_instances INTEGER DEFAULT 0,"
      " results TEXT DEFAULT '', sent_to TEXT DEFAULT '', error TEXT DEFAULT '',"
      " progress REAL DEFAULT 0, stage TEXT DEFAULT '');"
      "CREATE INDEX IF NOT EXISTS jobs_series ON jobs(series_uid);");
  // A queue written by an older node gets the columns added since: job progress (session
  // 10); the instance data and series state of the completeness checks (session 19).
  impl_->ensure_column("jobs", "progress", "REAL DEFAULT 0");
  impl_->ensure_column("jobs", "stage", "TEXT DEFAULT ''");
  impl_->ensure_column("instances", "instance_number", "INTEGER");
  impl_->ensure_column("instances", "images_in_acquisition", "INTEGER");
  impl_->ensure_column("instances", "localizer", "INTEGER DEFAULT 0");
  impl_->ensure_column("series", "hold_reason", "TEXT DEFAULT ''");
  impl_->ensure_column("series", "associations", "INTEGER DEFAULT 0");
  impl_->ensure_column("series", "released", "REAL DEFAULT 0");
}

JobQueue::~JobQueue() {
  if (impl_ && impl_->db) sqlite3_close(impl_->db);
}

JobQueue::Arrival JobQueue::record_instance(const InstanceRecord& r, double now) {
  Impl& q = *impl_;
  q.exec("BEGIN IMMEDIATE;");
  try {
    Impl::Stmt known(q, "SELECT COUNT(*) FROM instances WHERE sop_uid=?");
    known.bind(r.sop_instance_uid);
    known.step();
    const bool repeat = known.integer(0) > 0;
    Impl::Stmt(q, "INSERT OR REPLACE INTO instances(sop_uid, series_uid, study_uid, sop_class_uid, file, calling_aet,"
                  " received, instance_number, images_in_acquisition, localizer) VALUES(?,?,?,?,?,?,?,?,?,?)")
        .bind(r.sop_instance_uid).bind(r.series_instance_uid).bind(r.study_instance_uid)
        .bind(r.sop_class_uid).bind(r.file).bind(r.calling_aet).bind(now).bind(r.instance_number)
        .bind(r.images_in_acquisition).bind(r.localizer ? 1 : 0)
        .step();
    // An interrupted or held series receives again: the sender sends (more of) it.
    Impl::Stmt(q, "INSERT INTO series(series_uid, study_uid, calling_aet, state, first_received, last_received,"
                  " associations) VALUES(?,?,?,'receiving',?,?,?) ON CONFLICT(series_uid) DO UPDATE SET"
                  " last_received=excluded.last_received, associations=associations+excluded.associations,"
                  " hold_reason=CASE WHEN state='held' THEN '' ELSE hold_reason END,"
                  " state=CASE WHEN state IN ('interrupted','held') THEN 'receiving' ELSE state END")
        .bind(r.series_instance_uid).bind(r.study_instance_uid).bind(r.calling_aet).bind(now).bind(now)
        .bind(r.first_in_association ? 1 : 0)
        .step();
    Impl::Stmt has(q, "SELECT COUNT(*) FROM jobs WHERE series_uid=?");
    has.bind(r.series_instance_uid);
    has.step();
    Arrival a = Arrival::Fresh;
    if (has.integer(0) > 0) {
      a = repeat ? Arrival::Repeat : Arrival::Extends;
      if (a == Arrival::Extends) {  // the series grew after its job was made: receive it again
        Impl::Stmt(q, "UPDATE series SET state='receiving' WHERE series_uid=?").bind(r.series_instance_uid).step();
        Impl::Stmt last(q, "SELECT state FROM jobs WHERE series_uid=? ORDER BY id DESC LIMIT 1");
        last.bind(r.series_instance_uid);
        if (last.step()) {
          const std::string st = last.text(0);
          if (st == "queued" || st == "running" || st == "sending") a = Arrival::Grows;
        }
      }
    }
    q.exec("COMMIT;");
    return a;
  } catch (...) {
    sqlite3_exec(q.db, "ROLLBACK;", nullptr, nullptr, nullptr);
    throw;
  }
}

std::vector<SeriesRecord> JobQueue::interrupted_series() {
  std::vector<SeriesRecord> out;
  for (const auto& u : impl_->series_in_state("interrupted"))
    if (auto r = series(u)) out.push_back(*r);
  return out;
}

std::vector<SeriesRecord> JobQueue::held_series() {
  std::vector<SeriesRecord> out;
  for (const auto& u : impl_->series_in_state("held"))
    if (auto r = series(u)) out.push_back(*r);
  return out;
}

void JobQueue::mark_interrupted(const std::string& series_uid) {
  Impl::Stmt(*impl_, "UPDATE series SET state='interrupted' WHERE series_uid=? AND state='receiving'")
      .bind(series_uid)
      .step();
}

std::vector<std::string> JobQueue::series_files(const std::string& series_uid) {
  Impl::Stmt st(*impl_, "SELECT file FROM instances WHERE series_uid=? ORDER BY sop_uid");
  st.bind(series_uid);
  std::vector<std::string> out;
  while (st.step()) out.push_back(st.text(0));
  return out;
}

std::optional<SeriesRecord> JobQueue::series(const std::string& series_uid) {
  Impl::Stmt st(*impl_,
                "SELECT s.series_uid, s.study_uid, s.calling_aet, s.state, s.first_received, s.last_received,"
                " (SELECT COUNT(*) FROM instances i WHERE i.series_uid=s.series_uid), s.hold_reason, s.associations,"
                " s.released FROM series s WHERE series_uid=?");
  st.bind(series_uid);
  if (!st.step()) return std::nullopt;
  SeriesRecord r;
  r.series_instance_uid = st.text(0);
  r.study_instance_uid = st.text(1);
  r.calling_aet = st.text(2);
  r.state = st.text(3);
  r.first_received = st.real(4);
  r.last_received = st.real(5);
  r.num_instances = static_cast<int>(st.integer(6));
  r.hold_reason = st.text(7);
  r.associations = static_cast<int>(st.integer(8));
  r.released = st.real(9);
  return r;
}

std::vector<InstanceRecord> JobQueue::series_instances(const std::string& series_uid) {
  Impl::Stmt st(*impl_,
                "SELECT sop_uid, series_uid, study_uid, sop_class_uid, file, calling_aet, instance_number,"
                " images_in_acquisition, localizer FROM instances WHERE series_uid=? ORDER BY sop_uid");
  st.bind(series_uid);
  std::vector<InstanceRecord> out;
  while (st.step()) {
    InstanceRecord r{st.text(0), st.text(1), st.text(2), st.text(3), st.text(4), st.text(5)};
    if (sqlite3_column_type(st.s, 6) != SQLITE_NULL) r.instance_number = static_cast<int>(st.integer(6));
    if (sqlite3_column_type(st.s, 7) != SQLITE_NULL) r.images_in_acquisition = static_cast<int>(st.integer(7));
    r.localizer = st.integer(8) != 0;
    out.push_back(std::move(r));
  }
  return out;
}

std::optional<Job> JobQueue::latest_job(const std::string& series_uid) {
  Impl& q = *impl_;
  Impl::Stmt st(q, (std::string("SELECT ") + Impl::kJobColumns + " FROM jobs WHERE series_uid=? ORDER BY id DESC LIMIT 1").c_str());
  st.bind(series_uid);
  if (!st.step()) return std::nullopt;
  return q.read_job(st);
}

std::vector<std::string> JobQueue::quiet_series(double now, double quiet_seconds) {
  Impl::Stmt st(*impl_, "SELECT series_uid FROM series WHERE state='receiving' AND last_received <= ?");
  st.bind(now - quiet_seconds);
  std::vector<std::string> out;
  while (st.step()) out.push_back(st.text(0));
  return out;
}

void JobQueue::mark_released(const std::string& series_uid, double now) {
  Impl::Stmt(*impl_, "UPDATE series SET released=? WHERE series_uid=? AND state='receiving'")
      .bind(now).bind(series_uid).step();
}

std::vector<std::string> JobQueue::released_series(double now, double settle_seconds) {
  Impl::Stmt st(*impl_,
                "SELECT series_uid FROM series WHERE state='receiving' AND released > 0 AND released >= last_received"
                " AND released <= ?");
  st.bind(now - settle_seconds);
  std::vector<std::string> out;
  while (st.step()) out.push_back(st.text(0));
  return out;
}

namespace {

/// "40-45, 60, 63-70" (the first `max` runs, then "...").
std::string ranges(const std::vector<std::pair<long long, long long>>& runs, std::size_t max = 4) {
  std::string out;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    if (i == max) return out + ", ...";
    const auto [a, b] = runs[i];
    out += (out.empty() ? "" : ", ") + std::to_string(a) + (b > a ? "-" + std::to_string(b) : "");
  }
  return out;
}

}  // namespace

long long JobQueue::Impl::complete_locked(const std::string& series_uid, const std::string& kind, double now) {
  Impl& q = *this;
  Impl::Stmt(q, "UPDATE series SET state='complete', hold_reason='' WHERE series_uid=?").bind(series_uid).step();
  // One job per series, and one more whenever the series has grown past what its jobs had
  // (instances that arrived after it was processed).
  Impl::Stmt had(q, "SELECT COUNT(*), COALESCE(MAX(num_instances), 0) FROM jobs WHERE series_uid=?");
  had.bind(series_uid);
  had.step();
  Impl::Stmt n(q, "SELECT COUNT(*) FROM instances WHERE series_uid=?");
  n.bind(series_uid);
  n.step();
  if (had.integer(0) > 0 && n.integer(0) <= had.integer(1)) return 0;
  Impl::Stmt(q, "INSERT INTO jobs(series_uid, kind, state, created, updated, completed_series, num_instances)"
                " VALUES(?,?,'queued',?,?,?,?)")
      .bind(series_uid).bind(kind).bind(now).bind(now).bind(now).bind(n.integer(0))
      .step();
  return sqlite3_last_insert_rowid(q.db);
}

long long JobQueue::complete_series(const std::string& series_uid, const std::string& kind, double now) {
  Impl& q = *impl_;
  q.exec("BEGIN IMMEDIATE;");
  try {
    const long long id = q.complete_locked(series_uid, kind, now);
    q.exec("COMMIT;");
    return id;
  } catch (...) {
    sqlite3_exec(q.db, "ROLLBACK;", nullptr, nullptr, nullptr);
    throw;
  }
}

Completion JobQueue::complete_if_whole(const std::string& series_uid, const std::string& kind, int min_instances,
                                       bool hold_partial, double now) {
  Impl& q = *impl_;
  Completion c;
  q.exec("BEGIN IMMEDIATE;");  // no instance recorded between the checks and the decision
  try {
    Impl::Stmt rec(q, "SELECT state, associations FROM series WHERE series_uid=?");
    rec.bind(series_uid);
    if (!rec.step() || rec.text(0) != "receiving") {
      q.exec("COMMIT;");
      return c;
    }
    c.associations = static_cast<int>(rec.integer(1));
    Impl::Stmt counts(q, "SELECT COUNT(*), COALESCE(SUM(localizer), 0), COALESCE(MAX(images_in_acquisition), 0)"
                         " FROM instances WHERE series_uid=?");
    counts.bind(series_uid);
    counts.step();
    const long long n = counts.integer(0);
    const bool scout = n > 0 && counts.integer(1) == n;  // its job skips it
    const long long in_acquisition = counts.integer(2);
    std::string too_few, partial;
    if (!scout && n < min_instances)
      too_few = "only " + std::to_string(n) + " instance(s), fewer than the minimum of " +
                std::to_string(min_instances) + " slices (min_slices)";
    if (!scout) {
      if (in_acquisition > n)
        partial = std::to_string(n) + " of the " + std::to_string(in_acquisition) +
                  " images its Images in Acquisition (0020,1002) announces";
      std::vector<long long> numbers;
      Impl::Stmt nums(q, "SELECT DISTINCT instance_number FROM instances WHERE series_uid=? AND instance_number"
                         " IS NOT NULL ORDER BY instance_number");
      nums.bind(series_uid);
      while (nums.step()) numbers.push_back(nums.integer(0));
      std::vector<std::pair<long long, long long>> runs;  // missing Instance Numbers
      long long missing = 0;
      for (std::size_t i = 1; i < numbers.size(); ++i)
        if (numbers[i] > numbers[i - 1] + 1) {
          runs.emplace_back(numbers[i - 1] + 1, numbers[i] - 1);
          missing += numbers[i] - numbers[i - 1] - 1;
        }
      if (missing > 0)
        partial += (partial.empty() ? "" : "; ") + std::to_string(missing) +
                   " Instance Number(s) missing between " + std::to_string(numbers.front()) + " and " +
                   std::to_string(numbers.back()) + " (" + ranges(runs) + ")";
    }
    std::string held = too_few;
    if (hold_partial && !partial.empty()) held += (held.empty() ? "" : "; ") + ("it looks partial: " + partial);
    if (!held.empty()) {
      Impl::Stmt(q, "UPDATE series SET state='held', hold_reason=? WHERE series_uid=?")
          .bind(held).bind(series_uid).step();
      c.held = held;
    } else {
      if (!partial.empty()) c.warning = "it looks partial: " + partial;
      c.job = q.complete_locked(series_uid, kind, now);
    }
    q.exec("COMMIT;");
    return c;
  } catch (...) {
    sqlite3_exec(q.db, "ROLLBACK;", nullptr, nullptr, nullptr);
    throw;
  }
}

long long JobQueue::rerun(long long job_id, double now) {
  auto j = job(job_id);
  if (!j) core::fail<core::InvalidInput>("job queue", "job " + std::to_string(job_id), "no such job");
  Impl& q = *impl_;
  Impl::Stmt n(q, "SELECT COUNT(*) FROM instances WHERE series_uid=?");
  n.bind(j->series_instance_uid);
  n.step();
  Impl::Stmt(q, "INSERT INTO jobs(series_uid, kind, state, created, updated, completed_series, num_instances)"
                " VALUES(?,?,'queued',?,?,?,?)")
      .bind(j->series_instance_uid).bind(j->kind).bind(now).bind(now).bind(now).bind(n.integer(0))
      .step();
  return sqlite3_last_insert_rowid(q.db);
}

void JobQueue::retry(long long job_id, double now) {
  auto j = job(job_id);
  if (!j) core::fail<core::InvalidInput>("job queue", "job " + std::to_string(job_id), "no such job");
  if (j->state != "failed")
    core::fail<core::InvalidInput>("job queue", "job " + std::to_string(job_id),
                                   "is " + j->state + ", only failed jobs can be retried");
  const char* state = j->results.empty() ? "queued" : "sending";
  Impl::Stmt(*impl_, "UPDATE jobs SET state=?, process_attempts=0, send_attempts=0, next_attempt=0, error='', updated=? WHERE id=?")
      .bind(state).bind(now).bind(job_id)
      .step();
}

void JobQueue::recover(double now) {
  Impl::Stmt(*impl_, "UPDATE jobs SET state='queued', updated=? WHERE state='running'").bind(now).step();
  // A release before the crash keeps its meaning: the settle time restarts too (SET
  // expressions read the row as it was).
  Impl::Stmt(*impl_,
             "UPDATE series SET released=CASE WHEN released > 0 AND released >= last_received THEN ? ELSE released END,"
             " last_received=? WHERE state='receiving'")
      .bind(now).bind(now).step();
}

std::optional<Job> JobQueue::next_due(double now) {
  auto v = impl_->query_jobs(
      "WHERE state='queued' OR (state='sending' AND next_attempt <= ?) ORDER BY (state='sending') DESC, id LIMIT 1", now);
  if (v.empty()) return std::nullopt;
  return v.front();
}

std::optional<Job> JobQueue::job(long long id) {
  auto v = impl_->query_jobs("WHERE id=" + std::to_string(id));
  if (v.empty()) return std::nullopt;
  return v.front();
}

std::vector<Job> JobQueue::jobs() { return impl_->query_jobs("ORDER BY id"); }

void JobQueue::mark_running(long long id, double now) {
  Impl::Stmt(*impl_,
             "UPDATE jobs SET state='running', process_attempts=process_attempts+1, progress=0, stage='',"
             " updated=? WHERE id=?")
      .bind(now).bind(id).step();
}

void JobQueue::set_progress(long long id, double fraction, const std::string& stage, double now) {
  Impl::Stmt(*impl_, "UPDATE jobs SET progress=?, stage=?, updated=? WHERE id=? AND state='running'")
      .bind(fraction).bind(stage).bind(now).bind(id).step();
}

void JobQueue::mark_result(long long id, const std::vector<std::string>& results, double now) {
  Impl::Stmt(*impl_,
             "UPDATE jobs SET state='sending', results=?, result_ready=?, next_attempt=0, progress=1, stage='',"
             " updated=? WHERE id=?")
      .bind(core::join(results, "\n")).bind(now).bind(now).bind(id).step();
}

void JobQueue::mark_sent_to(long long id, const std::string& destination, double now) {
  auto j = job(id);
  if (!j) return;
  auto sent = j->sent_to;
  sent.push_back(destination);
  Impl::Stmt(*impl_, "UPDATE jobs SET sent_to=?, updated=? WHERE id=?").bind(core::join(sent, "\n")).bind(now).bind(id).step();
}

void JobQueue::mark_send_failed(long long id, const std::string& error, double next_attempt, bool give_up,
                                double now) {
  Impl::Stmt(*impl_, "UPDATE jobs SET state=?, send_attempts=send_attempts+1, next_attempt=?, error=?, updated=? WHERE id=?")
      .bind(give_up ? "failed" : "sending").bind(next_attempt).bind(error).bind(now).bind(id).step();
}

void JobQueue::mark_done(long long id, double now) {
  Impl::Stmt(*impl_, "UPDATE jobs SET state='done', sent=?, error='', send_attempts=send_attempts+(sent_to<>''), updated=? WHERE id=?").bind(now).bind(now).bind(id).step();
}

std::string JobQueue::superseded_reason(long long id) {
  auto j = job(id);
  if (!j) return {};
  Impl& q = *impl_;
  Impl::Stmt later(q, "SELECT id, num_instances FROM jobs WHERE series_uid=? AND id>? AND num_instances>?"
                      " AND state NOT IN ('superseded','skipped') ORDER BY id DESC LIMIT 1");
  later.bind(j->series_instance_uid).bind(id).bind(j->num_instances);
  if (later.step())
    return "superseded by job " + std::to_string(later.integer(0)) + ": the series grew from " +
           std::to_string(j->num_instances) + " to " + std::to_string(later.integer(1)) + " instances";
  Impl::Stmt n(q, "SELECT COUNT(*) FROM instances WHERE series_uid=?");
  n.bind(j->series_instance_uid);
  n.step();
  if (n.integer(0) > j->num_instances)
    return "superseded: the series grew from " + std::to_string(j->num_instances) + " to " +
           std::to_string(n.integer(0)) + " instances after the job was made (a new job takes the "
           "whole series once it is complete)";
  return {};
}

void JobQueue::mark_superseded(long long id, const std::string& why, double now) {
  Impl::Stmt(*impl_, "UPDATE jobs SET state='superseded', error=?, next_attempt=0, stage='', updated=? WHERE id=?")
      .bind(why).bind(now).bind(id).step();
}

void JobQueue::mark_skipped(long long id, const std::string& why, double now) {
  Impl::Stmt(*impl_, "UPDATE jobs SET state='skipped', error=?, stage='', updated=? WHERE id=?")
      .bind(why).bind(now).bind(id).step();
}

void JobQueue::mark_failed(long long id, const std::string& error, double now) {
  Impl::Stmt(*impl_, "UPDATE jobs SET state='failed', error=?, updated=? WHERE id=?").bind(error).bind(now).bind(id).step();
}

void JobQueue::mark_queued(long long id, double now) {
  Impl::Stmt(*impl_, "UPDATE jobs SET state='queued', process_attempts=MAX(process_attempts-1,0), updated=? WHERE id=?")
      .bind(now).bind(id).step();
}

}  // namespace isoline::node
