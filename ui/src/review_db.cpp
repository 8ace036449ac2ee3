// SQLite-backed structure version store (see review_db.h).
#include "isoline/ui/review_db.h"

#include <sqlite3.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <thread>
#include <type_traits>

#include "isoline/core/atomic_file.h"
#include "isoline/core/text.h"

namespace isoline::ui {

namespace {

constexpr const char* kOp = "review database";

// SQLite's message for the last failure on `db` (the database `file`), with the system's reason
// where it can be known (core::storage_failure_reason): SQLite says "disk I/O error" or
// "database or disk is full" alone, and its sqlite3_system_errno() is often 0 by then (a file
// size limit: EFBIG lost). The node's job queue (node/src/job_queue.cpp) has the same wrapper.
std::string sqlite_error(sqlite3* db, const char* message, const std::string& file) {
  const std::string m = message ? message : "?";
  if (!db) return m;
  const int code = sqlite3_extended_errcode(db);
  const bool storage = (code & 0xff) == SQLITE_IOERR || code == SQLITE_FULL;
  const std::string reason =
      core::storage_failure_reason(file, sqlite3_system_errno(db), storage, {"-wal", "-journal"});
  return reason.empty() ? m : m + " (" + reason + ")";
}

std::string now_utc() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string color_to_string(const core::Color& c) {
  return std::to_string(c.r) + "," + std::to_string(c.g) + "," + std::to_string(c.b);
}
core::Color color_from_string(const std::string& s) {
  core::Color c;
  int r = 255, g = 0, b = 0;
  if (std::sscanf(s.c_str(), "%d,%d,%d", &r, &g, &b) == 3) {
    c.r = static_cast<std::uint8_t>(r);
    c.g = static_cast<std::uint8_t>(g);
    c.b = static_cast<std::uint8_t>(b);
  }
  return c;
}

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql, const std::string& path) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK)
      core::fail<core::IoError>(kOp, path,
                                "prepare: " + sqlite_error(db, sqlite3_errmsg(db), path));
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt& bind(int i, std::int64_t v) { sqlite3_bind_int64(s_, i, v); return *this; }
  Stmt& bind(int i, double v) { sqlite3_bind_double(s_, i, v); return *this; }
  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& blob(int i, const std::string& v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  /// true while a row is available.
  bool step(const std::string& path) {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    core::fail<core::IoError>(kOp, path, "step: " + sqlite_error(db_, sqlite3_errmsg(db_), path));
  }
  std::int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  double dbl(int c) const { return sqlite3_column_double(s_, c); }
  std::string text(int c) const {
    const unsigned char* t = sqlite3_column_text(s_, c);
    return t ? reinterpret_cast<const char*>(t) : "";
  }
  std::string bytes(int c) const {
    const void* p = sqlite3_column_blob(s_, c);
    int n = sqlite3_column_bytes(s_, c);
    return p ? std::string(static_cast<const char*>(p), static_cast<std::size_t>(n)) : std::string();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

// Unsaved drawings (not versions): one per structure, reviewer and tab, replaced in place. (A
// review.sqlite of before per-tab drafts is rebuilt to it: ReviewDb::migrate_drafts.)
const char* const kDraftsTable =
    "CREATE TABLE IF NOT EXISTS drafts(structure_id INTEGER NOT NULL REFERENCES structures(id),"
    "  reviewer TEXT NOT NULL, base_version INTEGER NOT NULL, time TEXT NOT NULL, action TEXT NOT NULL,"
    "  voxels INTEGER NOT NULL, volume_cc REAL NOT NULL, mask BLOB NOT NULL,"
    "  tab TEXT NOT NULL DEFAULT '', seq INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY(structure_id, reviewer, tab));";

// What became of a tab's drawing that is no draft any more, up to its change number `seq`:
// "saved" (a version now: saved by the tab, or by a window it was restored into), "discarded",
// or "restored" (another window's draft holds it now). A request of that tab not above it that
// arrives later writes nothing (put_draft: `stale`, `gone`): the page-leave request of a page
// gone before its answer, or the copy its browser kept of it (sent on the next open of the
// case there, which may be days later, so these are not pruned; one small row per tab and
// structure). A draft put without a tab counts its writes itself and has none.
const char* const kDraftsGoneTable =
    "CREATE TABLE IF NOT EXISTS drafts_gone(structure_id INTEGER NOT NULL, reviewer TEXT NOT NULL,"
    "  tab TEXT NOT NULL, seq INTEGER NOT NULL, how TEXT NOT NULL, time TEXT NOT NULL,"
    "  PRIMARY KEY(structure_id, reviewer, tab));";

// Notes that `reviewer`'s drawing of structure `id` in tab `tab`, up to change `seq`, went `how`
// (kDraftsGoneTable). The caller holds the database's lock, in a transaction.
void mark_draft_gone(sqlite3* db, const std::string& path, std::int64_t id, const std::string& reviewer,
                     const std::string& tab, std::int64_t seq, const char* how) {
  if (tab.empty()) return;
  Stmt w(db,
         "INSERT INTO drafts_gone(structure_id, reviewer, tab, seq, how, time) VALUES(?,?,?,?,?,?)"
         " ON CONFLICT(structure_id, reviewer, tab) DO UPDATE SET seq=MAX(seq, excluded.seq),"
         " how=CASE WHEN excluded.seq >= seq THEN excluded.how ELSE how END, time=excluded.time",
         path);
  w.bind(1, id).bind(2, reviewer).bind(3, tab).bind(4, seq).bind(5, std::string(how)).bind(6, now_utc());
  w.step(path);
}

// Removes `reviewer`'s draft of structure `id` from tab `tab` unless it was written after its
// change number `up_to_seq` (a window still open that drew on keeps its own), and notes how it
// went (mark_draft_gone, up to the change number it held); true when one was removed. The
// caller holds the database's lock, in a transaction.
bool delete_draft(sqlite3* db, const std::string& path, std::int64_t id, const std::string& reviewer,
                  const std::string& tab, std::int64_t up_to_seq, const char* how) {
  std::int64_t seq = 0;
  {
    Stmt q(db, "SELECT seq FROM drafts WHERE structure_id = ? AND reviewer = ? AND tab = ? AND seq <= ?", path);
    q.bind(1, id).bind(2, reviewer).bind(3, tab).bind(4, up_to_seq);
    if (!q.step(path)) return false;
    seq = q.i64(0);
  }
  Stmt s(db, "DELETE FROM drafts WHERE structure_id = ? AND reviewer = ? AND tab = ? AND seq <= ?", path);
  s.bind(1, id).bind(2, reviewer).bind(3, tab).bind(4, up_to_seq);
  s.step(path);
  mark_draft_gone(db, path, id, reviewer, tab, seq, how);
  return true;
}

}  // namespace

std::string compress_mask(const core::Image& mask) {
  if (mask.pixel_type() != core::PixelType::UInt8)
    core::fail<core::InvalidInput>("compress mask", "", "mask is not uint8");
  const auto* src = static_cast<const Bytef*>(mask.raw());
  const uLong n = static_cast<uLong>(mask.byte_size());
  uLongf cap = compressBound(n);
  std::string out(cap, '\0');
  if (compress2(reinterpret_cast<Bytef*>(out.data()), &cap, src, n, 1) != Z_OK)
    core::fail<core::IoError>("compress mask", "", "zlib failed");
  out.resize(cap);
  return out;
}

core::Image decompress_mask(const std::string& blob, const core::Geometry& grid) {
  core::Image m(grid, core::PixelType::UInt8);
  uLongf n = static_cast<uLongf>(m.byte_size());
  int rc = uncompress(static_cast<Bytef*>(m.raw()), &n,
                      reinterpret_cast<const Bytef*>(blob.data()), static_cast<uLong>(blob.size()));
  if (rc != Z_OK || n != m.byte_size())
    core::fail<core::IoError>("decompress mask", "", "stored mask does not match the case grid");
  return m;
}

struct ReviewDb::Impl {
  sqlite3* db = nullptr;
  mutable std::mutex mu;
  void exec(const char* sql, const std::string& path) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      const std::string e = sqlite_error(db, err, path);
      sqlite3_free(err);
      core::fail<core::IoError>(kOp, path, e);
    }
  }
  // `body()` in one write transaction (BEGIN IMMEDIATE ... COMMIT), rolled back when it throws;
  // its result. The caller holds `mu` where other threads may use the database.
  template <class F>
  auto transaction(const std::string& path, F&& body) -> decltype(body()) {
    exec("BEGIN IMMEDIATE", path);
    try {
      if constexpr (std::is_void_v<decltype(body())>) {
        body();
        exec("COMMIT", path);
      } else {
        auto result = body();
        exec("COMMIT", path);
        return result;
      }
    } catch (...) {
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }
};

ReviewDb::ReviewDb(const std::string& path) : impl_(new Impl), path_(path) {
  if (sqlite3_open_v2(path.c_str(), &impl_->db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    const std::string e =
        impl_->db ? sqlite_error(impl_->db, sqlite3_errmsg(impl_->db), path) : "cannot open";
    sqlite3_close(impl_->db);
    delete impl_;
    core::fail<core::IoError>(kOp, path, e);
  }
  try {
    sqlite3_busy_timeout(impl_->db, 5000);
    impl_->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", path);
    impl_->exec(
        "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE IF NOT EXISTS structures(id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  type TEXT NOT NULL, color TEXT NOT NULL, description TEXT NOT NULL,"
        "  origin TEXT NOT NULL, created TEXT NOT NULL);"
        "CREATE TABLE IF NOT EXISTS versions(structure_id INTEGER NOT NULL REFERENCES structures(id),"
        "  version INTEGER NOT NULL, name TEXT NOT NULL, author TEXT NOT NULL, time TEXT NOT NULL,"
        "  action TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, voxels INTEGER NOT NULL,"
        "  volume_cc REAL NOT NULL, mask BLOB NOT NULL, PRIMARY KEY(structure_id, version));"
        "CREATE TABLE IF NOT EXISTS flag_checks(structure_id INTEGER NOT NULL REFERENCES structures(id),"
        "  version INTEGER NOT NULL, flags TEXT NOT NULL, author TEXT NOT NULL, time TEXT NOT NULL,"
        "  checked INTEGER NOT NULL);",
        path);
    impl_->exec(kDraftsTable, path);
    impl_->exec(kDraftsGoneTable, path);
    migrate_drafts(path);
  } catch (...) {
    sqlite3_close(impl_->db);
    delete impl_;
    throw;
  }
}

namespace {
/// The drafts table as it is: whether it has the tab column, and whether tab is in its key.
std::pair<bool, bool> drafts_schema(sqlite3* db, const std::string& path) {
  bool has_tab = false, tab_in_key = false;
  Stmt cols(db, "PRAGMA table_info(drafts)", path);
  while (cols.step(path))
    if (cols.text(1) == "tab") {
      has_tab = true;
      tab_in_key = cols.i64(5) > 0;  // its position in the primary key, 0 when not in it
    }
  return {has_tab, tab_in_key};
}
}  // namespace

// A review.sqlite of before per-tab drafts kept one draft per structure and reviewer (primary
// key structure_id, reviewer; the oldest without the tab and seq columns). Its table is
// rebuilt with the tab in the key, every draft copied (tab and seq as they were, '' and 0
// when the columns were missing), in one transaction: all of them or none.
void ReviewDb::migrate_drafts(const std::string& path) {
  // The saves' change numbers that a server of before kept in drafts_saved (for a day) are
  // drafts_gone's "saved" now.
  bool saved_table = false;
  {
    Stmt t(impl_->db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'drafts_saved'", path);
    saved_table = t.step(path);
  }
  if (saved_table)
    impl_->transaction(path, [&] {
      impl_->exec("INSERT OR IGNORE INTO drafts_gone(structure_id, reviewer, tab, seq, how, time)"
                  " SELECT structure_id, reviewer, tab, seq, 'saved', time FROM drafts_saved WHERE tab <> '';"
                  "DROP TABLE drafts_saved;",
                  path);
    });
  if (drafts_schema(impl_->db, path).second) return;
  impl_->transaction(path, [&] {
    const auto [has_tab, tab_in_key] = drafts_schema(impl_->db, path);  // again, under the write lock
    if (!tab_in_key) {
      impl_->exec("ALTER TABLE drafts RENAME TO drafts_before_tabs;", path);
      impl_->exec(kDraftsTable, path);
      impl_->exec(has_tab ? "INSERT INTO drafts SELECT structure_id, reviewer, base_version, time, action,"
                            " voxels, volume_cc, mask, tab, seq FROM drafts_before_tabs;"
                          : "INSERT INTO drafts SELECT structure_id, reviewer, base_version, time, action,"
                            " voxels, volume_cc, mask, '', 0 FROM drafts_before_tabs;",
                  path);
      impl_->exec("DROP TABLE drafts_before_tabs;", path);
    }
  });
}

ReviewDb::~ReviewDb() {
  sqlite3_close(impl_->db);
  delete impl_;
}

std::optional<std::string> ReviewDb::meta(const std::string& key) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Stmt s(impl_->db, "SELECT value FROM meta WHERE key=?", path_);
  s.bind(1, key);
  if (s.step(path_)) return s.text(0);
  return std::nullopt;
}

void ReviewDb::set_meta(const std::string& key, const std::string& value) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Stmt s(impl_->db, "INSERT INTO meta(key,value) VALUES(?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", path_);
  s.bind(1, key).bind(2, value);
  s.step(path_);
}

namespace {

const char* kLatestSql =
    "SELECT s.id, s.type, s.color, s.description, s.origin, v.version, v.name, v.author, v.time,"
    " v.action, v.deleted, v.voxels, v.volume_cc FROM structures s JOIN versions v"
    " ON v.structure_id = s.id AND v.version = (SELECT MAX(version) FROM versions WHERE structure_id = s.id)";

StructureInfo read_info(const Stmt& s) {
  StructureInfo i;
  i.id = s.i64(0);
  i.type = s.text(1);
  i.color = color_from_string(s.text(2));
  i.description = s.text(3);
  i.origin = s.text(4);
  i.latest.structure_id = i.id;
  i.latest.version = s.i64(5);
  i.latest.name = s.text(6);
  i.latest.author = s.text(7);
  i.latest.time = s.text(8);
  i.latest.action = s.text(9);
  i.latest.deleted = s.i64(10) != 0;
  i.latest.voxels = s.i64(11);
  i.latest.volume_cc = s.dbl(12);
  return i;
}

}  // namespace

std::vector<StructureInfo> ReviewDb::structures(bool include_deleted) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Stmt s(impl_->db, (std::string(kLatestSql) + " ORDER BY s.id").c_str(), path_);
  std::vector<StructureInfo> out;
  while (s.step(path_)) {
    StructureInfo i = read_info(s);
    if (include_deleted || !i.latest.deleted) out.push_back(i);
  }
  return out;
}

std::optional<StructureInfo> ReviewDb::find(const std::string& name) const {
  for (auto& i : structures())
    if (i.latest.name == name) return i;
  return std::nullopt;
}

StructureInfo ReviewDb::get(std::int64_t id) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Stmt s(impl_->db, (std::string(kLatestSql) + " WHERE s.id = ?").c_str(), path_);
  s.bind(1, id);
  if (!s.step(path_))
    core::fail<core::InvalidInput>(kOp, path_, "no structure with id " + std::to_string(id));
  return read_info(s);
}

std::vector<VersionInfo> ReviewDb::history(std::int64_t id) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Stmt s(impl_->db,
         id ? "SELECT structure_id, version, name, author, time, action, deleted, voxels, volume_cc"
              " FROM versions WHERE structure_id = ? ORDER BY version"
            : "SELECT structure_id, version, name, author, time, action, deleted, voxels, volume_cc"
              " FROM versions ORDER BY rowid",
         path_);
  if (id) s.bind(1, id);
  std::vector<VersionInfo> out;
  while (s.step(path_)) {
    VersionInfo v;
    v.structure_id = s.i64(0);
    v.version = s.i64(1);
    v.name = s.text(2);
    v.author = s.text(3);
    v.time = s.text(4);
    v.action = s.text(5);
    v.deleted = s.i64(6) != 0;
    v.voxels = s.i64(7);
    v.volume_cc = s.dbl(8);
    out.push_back(v);
  }
  return out;
}

core::Image ReviewDb::mask(std::int64_t id, std::int64_t version, const core::Geometry& grid) const {
  std::string blob;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    Stmt s(impl_->db,
           version > 0 ? "SELECT mask FROM versions WHERE structure_id=? AND version=?"
                       : "SELECT mask FROM versions WHERE structure_id=? ORDER BY version DESC LIMIT 1",
           path_);
    s.bind(1, id);
    if (version > 0) s.bind(2, version);
    if (!s.step(path_))
      core::fail<core::InvalidInput>(kOp, path_,
                                     "no version " + std::to_string(version) + " of structure " +
                                         std::to_string(id));
    blob = s.bytes(0);
  }
  return decompress_mask(blob, grid);
}

namespace {

/// The bytes a zlib blob holds (any size).
std::string inflate_all(const std::string& blob) {
  z_stream z{};
  if (inflateInit(&z) != Z_OK) core::fail<core::IoError>("decompress mask", "", "zlib init failed");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(blob.data()));
  z.avail_in = static_cast<uInt>(blob.size());
  std::string out;
  char buf[1 << 16];
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
  }
  inflateEnd(&z);
  if (rc != Z_STREAM_END) core::fail<core::IoError>("decompress mask", "", "stored mask is damaged");
  return out;
}

}  // namespace

std::optional<VersionInfo> ReviewDb::contour_edit(std::int64_t id) const {
  struct Row {
    VersionInfo v;
    std::string blob;
  };
  std::vector<Row> rows;  // newest first
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    Stmt s(impl_->db,
           "SELECT structure_id, version, name, author, time, action, deleted, voxels, volume_cc, mask"
           " FROM versions WHERE structure_id = ? ORDER BY version DESC",
           path_);
    s.bind(1, id);
    while (s.step(path_)) {
      Row r;
      r.v.structure_id = s.i64(0);
      r.v.version = s.i64(1);
      r.v.name = s.text(2);
      r.v.author = s.text(3);
      r.v.time = s.text(4);
      r.v.action = s.text(5);
      r.v.deleted = s.i64(6) != 0;
      r.v.voxels = s.i64(7);
      r.v.volume_cc = s.dbl(8);
      r.blob = s.bytes(9);
      rows.push_back(std::move(r));
    }
  }
  if (rows.size() < 2) return std::nullopt;
  const Row& latest = rows.front();
  const Row& first = rows.back();
  // Equal blobs are equal masks; different blobs of the same voxel count are compared
  // decompressed (a mask written by another zlib build may compress differently).
  auto same = [](const Row& a, const Row& b) {
    if (a.blob == b.blob) return true;
    if (a.v.voxels != b.v.voxels) return false;
    return inflate_all(a.blob) == inflate_all(b.blob);
  };
  if (same(latest, first)) return std::nullopt;
  // The version that made this contour: the oldest of the run of versions (newest back)
  // holding the same mask (a rename after a brush stroke names the stroke's version).
  std::size_t k = 0;
  while (k + 1 < rows.size() && rows[k + 1].blob == latest.blob) ++k;
  return rows[k].v;
}

void ReviewDb::check_flags(std::int64_t id, std::int64_t version, const std::string& flags,
                           const std::string& author, bool checked) {
  (void)get(id);  // throws for an unknown structure
  std::lock_guard<std::mutex> lock(impl_->mu);
  Stmt s(impl_->db, "INSERT INTO flag_checks(structure_id,version,flags,author,time,checked) VALUES(?,?,?,?,?,?)", path_);
  s.bind(1, id).bind(2, version).bind(3, flags).bind(4, author).bind(5, now_utc())
      .bind(6, static_cast<std::int64_t>(checked ? 1 : 0));
  s.step(path_);
}

std::vector<FlagCheck> ReviewDb::flag_checks(std::int64_t id) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Stmt s(impl_->db,
         id ? "SELECT structure_id, version, flags, author, time, checked FROM flag_checks WHERE structure_id = ? ORDER BY rowid"
            : "SELECT structure_id, version, flags, author, time, checked FROM flag_checks ORDER BY rowid",
         path_);
  if (id) s.bind(1, id);
  std::vector<FlagCheck> out;
  while (s.step(path_)) {
    FlagCheck c;
    c.structure_id = s.i64(0);
    c.version = s.i64(1);
    c.flags = s.text(2);
    c.author = s.text(3);
    c.time = s.text(4);
    c.checked = s.i64(5) != 0;
    out.push_back(c);
  }
  return out;
}

std::optional<FlagCheck> ReviewDb::flag_check(std::int64_t id) const {
  auto all = flag_checks(id);
  if (all.empty()) return std::nullopt;
  return all.back();
}

namespace {
const char* kDraftCols = "structure_id, reviewer, base_version, time, action, voxels, volume_cc, tab, seq";
DraftInfo read_draft(const Stmt& s) {
  DraftInfo d;
  d.structure_id = s.i64(0);
  d.reviewer = s.text(1);
  d.base_version = s.i64(2);
  d.time = s.text(3);
  d.action = s.text(4);
  d.voxels = s.i64(5);
  d.volume_cc = s.dbl(6);
  d.tab = s.text(7);
  d.seq = s.i64(8);
  return d;
}
}  // namespace

DraftInfo ReviewDb::put_draft(std::int64_t id, const std::string& reviewer, std::int64_t base_version,
                              const core::Image& mask, const std::string& action, const std::string& tab,
                              std::int64_t seq, const std::vector<DraftRef>& replaces) {
  if (reviewer.empty()) core::fail<core::InvalidInput>("draft", "reviewer", "missing: a draft is kept per reviewer");
  const std::string blob = compress_mask(mask);
  DraftInfo d;
  d.structure_id = id;
  d.reviewer = reviewer;
  d.tab = tab;
  d.base_version = base_version;
  d.time = now_utc();
  d.action = action;
  d.voxels = static_cast<std::int64_t>(mask.count_nonzero());
  d.volume_cc = static_cast<double>(d.voxels) * mask.geometry().voxel_volume_mm3() / 1000.0;
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->exec("BEGIN IMMEDIATE", path_);
  try {
    Stmt cur(impl_->db,
             "SELECT version, name FROM versions WHERE structure_id=? ORDER BY version DESC LIMIT 1", path_);
    cur.bind(1, id);
    const bool known = cur.step(path_);
    const std::int64_t latest = known ? cur.i64(0) : 0;
    if (latest <= 0) core::fail<core::InvalidInput>("draft", "structure " + std::to_string(id), "no such structure");
    const std::string name = cur.text(1);
    if (base_version < 1 || base_version > latest)
      core::fail<core::InvalidInput>("draft", "base_version",
                                     "must be a version of the structure, 1 to " + std::to_string(latest) + ", got " +
                                         std::to_string(base_version));
    // This drawing of the tab (or a later one) is no draft any more: saved, discarded or
    // restored into another window. A request of it that arrives after that (sent when the page
    // was hidden or left, or the copy its browser kept when the page went before the answer)
    // writes nothing: a saved drawing does not come back as an unsaved one, nor a discarded one.
    if (!tab.empty()) {
      Stmt gone(impl_->db, "SELECT seq, how FROM drafts_gone WHERE structure_id = ? AND reviewer = ? AND tab = ?", path_);
      gone.bind(1, id).bind(2, reviewer).bind(3, tab);
      if (gone.step(path_) && seq <= gone.i64(0)) {
        d.gone = gone.text(1);
        impl_->exec("COMMIT", path_);
        d.stale = true;
        d.saved = d.gone == "saved";
        d.seq = seq;
        return d;
      }
    }
    // Whether the kept draft of tab `t` at change number `n` is superseded by this drawing:
    // restored from it, and not written since it was read.
    const auto superseded = [&](const std::string& t, std::int64_t n) {
      return t != tab && std::any_of(replaces.begin(), replaces.end(),
                                     [&](const DraftRef& r) { return r.tab == t && n <= r.seq; });
    };
    // A tab's first draft of the structure adds a row: at most kDraftLimit of a reviewer's
    // (those it supersedes not counted); none is ever dropped to make room.
    Stmt own(impl_->db, "SELECT 1 FROM drafts WHERE structure_id = ? AND reviewer = ? AND tab = ?", path_);
    own.bind(1, id).bind(2, reviewer).bind(3, tab);
    if (!own.step(path_)) {
      std::int64_t kept = 0;
      Stmt all(impl_->db, "SELECT tab, seq FROM drafts WHERE structure_id = ? AND reviewer = ?", path_);
      all.bind(1, id).bind(2, reviewer);
      while (all.step(path_))
        if (!superseded(all.text(0), all.i64(1))) ++kept;
      if (kept >= kDraftLimit)
        throw DraftLimit("draft: " + name + ": " + std::to_string(kept) + " unsaved drawings of " + reviewer +
                         " are kept already (from other windows or earlier sessions): restore or discard some of "
                         "them (over the viewer) so that this one can be kept; none of them was dropped");
    }
    Stmt w(impl_->db,
           "INSERT INTO drafts(structure_id,reviewer,base_version,time,action,voxels,volume_cc,mask,tab,seq)"
           " VALUES(?,?,?,?,?,?,?,?,?,?)"
           " ON CONFLICT(structure_id, reviewer, tab) DO UPDATE SET base_version=excluded.base_version,"
           " time=excluded.time, action=excluded.action, voxels=excluded.voxels, volume_cc=excluded.volume_cc,"
           // a draft put without a tab has no change numbers of its own: its writes are counted
           // (so that one written again after it was restored is not replaced)
           " mask=excluded.mask, seq=CASE WHEN excluded.tab = '' THEN MAX(excluded.seq, drafts.seq + 1)"
           " ELSE excluded.seq END"
           " WHERE excluded.tab = '' OR excluded.seq > drafts.seq",
           path_);
    w.bind(1, id).bind(2, reviewer).bind(3, base_version).bind(4, d.time).bind(5, action).bind(6, d.voxels)
        .bind(7, d.volume_cc).blob(8, blob).bind(9, tab).bind(10, seq);
    w.step(path_);
    const bool written = sqlite3_changes(impl_->db) > 0;
    if (written && !tab.empty()) {  // (a newer drawing of the tab than went: ordered by seq again)
      Stmt done(impl_->db, "DELETE FROM drafts_gone WHERE structure_id = ? AND reviewer = ? AND tab = ?", path_);
      done.bind(1, id).bind(2, reviewer).bind(3, tab);
      done.step(path_);
    }
    if (written) {  // the drafts this drawing was restored from: it holds them now (not what
                    // they were given since: a window still open that drew on keeps its own)
      for (const auto& r : replaces)
        if (r.tab != tab) delete_draft(impl_->db, path_, id, reviewer, r.tab, r.seq, "restored");
    }
    {  // the draft kept, as kept (its change number; when not written, an older request of the
       // same tab: the newer draft stays)
      Stmt kept(impl_->db,
                (std::string("SELECT ") + kDraftCols + " FROM drafts WHERE structure_id = ? AND reviewer = ? AND tab = ?")
                    .c_str(),
                path_);
      kept.bind(1, id).bind(2, reviewer).bind(3, tab);
      if (kept.step(path_)) d = read_draft(kept);
      d.stale = !written;
    }
    impl_->exec("COMMIT", path_);
  } catch (...) {
    sqlite3_exec(impl_->db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  return d;
}

std::vector<DraftInfo> ReviewDb::drafts(std::int64_t id) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  const std::string sql = std::string("SELECT ") + kDraftCols + " FROM drafts" +
                          (id ? " WHERE structure_id = ?" : "") + " ORDER BY time, structure_id, reviewer, tab";
  Stmt s(impl_->db, sql.c_str(), path_);
  if (id) s.bind(1, id);
  std::vector<DraftInfo> out;
  while (s.step(path_)) out.push_back(read_draft(s));
  return out;
}

std::vector<DraftInfo> ReviewDb::drafts_of(std::int64_t id, const std::string& reviewer) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  const std::string sql =
      std::string("SELECT ") + kDraftCols + " FROM drafts WHERE structure_id = ? AND reviewer = ? ORDER BY time, tab";
  Stmt s(impl_->db, sql.c_str(), path_);
  s.bind(1, id).bind(2, reviewer);
  std::vector<DraftInfo> out;
  while (s.step(path_)) out.push_back(read_draft(s));
  return out;
}

std::optional<DraftInfo> ReviewDb::draft(std::int64_t id, const std::string& reviewer, const std::string& tab) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  const std::string sql =
      std::string("SELECT ") + kDraftCols + " FROM drafts WHERE structure_id = ? AND reviewer = ? AND tab = ?";
  Stmt s(impl_->db, sql.c_str(), path_);
  s.bind(1, id).bind(2, reviewer).bind(3, tab);
  if (s.step(path_)) return read_draft(s);
  return std::nullopt;
}

std::optional<core::Image> ReviewDb::draft_mask(std::int64_t id, const std::string& reviewer, const std::string& tab,
                                                const core::Geometry& grid) const {
  std::string blob;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    Stmt s(impl_->db, "SELECT mask FROM drafts WHERE structure_id = ? AND reviewer = ? AND tab = ?", path_);
    s.bind(1, id).bind(2, reviewer).bind(3, tab);
    if (!s.step(path_)) return std::nullopt;
    blob = s.bytes(0);
  }
  return decompress_mask(blob, grid);
}

bool ReviewDb::discard_draft(std::int64_t id, const std::string& reviewer, const std::string& tab,
                             std::int64_t up_to_seq) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->transaction(path_, [&] { return delete_draft(impl_->db, path_, id, reviewer, tab, up_to_seq, "discarded"); });
}

std::int64_t ReviewDb::version_count() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Stmt s(impl_->db, "SELECT COUNT(*) FROM versions", path_);
  s.step(path_);
  return s.i64(0);
}

namespace {

void check_name(const std::string& name) {
  const std::size_t chars = core::utf8_length(name);  // characters, not bytes
  if (chars == 0 || chars > 64) core::fail<core::InvalidInput>("structure name", name, "must be 1 to 64 characters");
  if (name.front() == ' ' || name.back() == ' ')
    core::fail<core::InvalidInput>("structure name", name, "begins or ends with a space");
  for (unsigned char c : name)
    if (c < 0x20 || c == '/' || c == '\\' || c == 0x7f)
      core::fail<core::InvalidInput>("structure name", name, "contains a control character or a slash");
  if (name == "." || name == "..")
    core::fail<core::InvalidInput>("structure name", name, "is not allowed");
}

/// Inside a transaction: the id of the live structure currently named `name`, or 0.
std::int64_t live_id_named(sqlite3* db, const std::string& name, const std::string& path) {
  Stmt s(db,
         "SELECT v.structure_id FROM versions v WHERE v.name = ? AND v.deleted = 0 AND v.version ="
         " (SELECT MAX(version) FROM versions WHERE structure_id = v.structure_id)",
         path);
  s.bind(1, name);
  return s.step(path) ? s.i64(0) : 0;
}

}  // namespace

std::int64_t ReviewDb::create_structure(const std::string& name, const std::string& type,
                                        const core::Color& color, const std::string& description,
                                        const std::string& origin, const core::Image& mask,
                                        const std::string& author, const std::string& action) {
  check_name(name);
  if (find(name)) core::fail<core::InvalidInput>("create structure", name, "a structure with this name exists");
  const std::string blob = compress_mask(mask);
  const auto voxels = static_cast<std::int64_t>(mask.count_nonzero());
  const double cc = static_cast<double>(voxels) * mask.geometry().voxel_volume_mm3() / 1000.0;
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->exec("BEGIN IMMEDIATE", path_);
  try {
    if (live_id_named(impl_->db, name, path_))  // re-checked under the write lock
      core::fail<core::InvalidInput>("create structure", name, "a structure with this name exists");
    Stmt a(impl_->db, "INSERT INTO structures(type,color,description,origin,created) VALUES(?,?,?,?,?)", path_);
    a.bind(1, type).bind(2, color_to_string(color)).bind(3, description).bind(4, origin).bind(5, now_utc());
    a.step(path_);
    const std::int64_t id = sqlite3_last_insert_rowid(impl_->db);
    Stmt v(impl_->db,
           "INSERT INTO versions(structure_id,version,name,author,time,action,deleted,voxels,volume_cc,mask)"
           " VALUES(?,1,?,?,?,?,0,?,?,?)",
           path_);
    v.bind(1, id).bind(2, name).bind(3, author).bind(4, now_utc()).bind(5, action).bind(6, voxels).bind(7, cc).blob(8, blob);
    v.step(path_);
    impl_->exec("COMMIT", path_);
    return id;
  } catch (...) {
    sqlite3_exec(impl_->db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::int64_t ReviewDb::restore(std::int64_t id, std::int64_t base_version, const std::string& author) {
  return save_version_impl(id, base_version, core::Image(), author, "restore (undo delete)", {}, false, true, {},
                           std::nullopt);
}

std::int64_t ReviewDb::save_version(std::int64_t id, std::int64_t base_version, const core::Image& mask,
                                    const std::string& author, const std::string& action,
                                    const std::string& new_name, bool deleted,
                                    const std::vector<DraftRef>& clear_drafts,
                                    const std::optional<DraftRef>& saved_by) {
  return save_version_impl(id, base_version, mask, author, action, new_name, deleted, false, clear_drafts, saved_by);
}

std::int64_t ReviewDb::save_version_impl(std::int64_t id, std::int64_t base_version, const core::Image& mask,
                                         const std::string& author, const std::string& action,
                                         const std::string& new_name, bool deleted, bool restoring,
                                         const std::vector<DraftRef>& clear_drafts,
                                         const std::optional<DraftRef>& saved_by) {
  if (!new_name.empty()) check_name(new_name);
  std::string blob;
  std::int64_t voxels = 0;
  double cc = 0;
  if (!mask.empty()) {
    blob = compress_mask(mask);
    voxels = static_cast<std::int64_t>(mask.count_nonzero());
    cc = static_cast<double>(voxels) * mask.geometry().voxel_volume_mm3() / 1000.0;
  }
  if (!new_name.empty()) {
    auto other = find(new_name);
    if (other && other->id != id)
      core::fail<core::InvalidInput>("rename structure", new_name, "a structure with this name exists");
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->exec("BEGIN IMMEDIATE", path_);
  try {
    Stmt cur(impl_->db,
             "SELECT version, name, deleted, voxels, volume_cc, mask, author, action FROM versions WHERE structure_id=?"
             " ORDER BY version DESC LIMIT 1",
             path_);
    cur.bind(1, id);
    if (!cur.step(path_))
      core::fail<core::InvalidInput>("save structure", std::to_string(id), "no such structure");
    const std::int64_t latest = cur.i64(0);
    const std::string name = cur.text(1);
    const bool was_deleted = cur.i64(2) != 0;
    if (was_deleted && !restoring) core::fail<core::InvalidInput>("save structure", name, "the structure was deleted");
    if (!was_deleted && restoring) core::fail<core::InvalidInput>("restore structure", name, "the structure is not deleted");
    if (base_version != latest)
      throw Conflict("save structure: " + name + ": conflict: based on version " +
                         std::to_string(base_version) + " but version " + std::to_string(latest) +
                         " was saved meanwhile by " + cur.text(6) + " (" + cur.text(7) + "); reload to see it",
                     latest, id, base_version);
    if (restoring) {
      if (live_id_named(impl_->db, name, path_))
        core::fail<core::InvalidInput>("restore structure", name,
                                       "a structure with this name exists now: rename it first");
    }
    if (!new_name.empty()) {
      const std::int64_t other = live_id_named(impl_->db, new_name, path_);
      if (other && other != id)
        core::fail<core::InvalidInput>("rename structure", new_name, "a structure with this name exists");
    }
    if (mask.empty()) {
      voxels = cur.i64(3);
      cc = cur.dbl(4);
      blob = cur.bytes(5);
    }
    Stmt v(impl_->db,
           "INSERT INTO versions(structure_id,version,name,author,time,action,deleted,voxels,volume_cc,mask)"
           " VALUES(?,?,?,?,?,?,?,?,?,?)",
           path_);
    v.bind(1, id).bind(2, latest + 1).bind(3, new_name.empty() ? name : new_name).bind(4, author)
        .bind(5, now_utc()).bind(6, action).bind(7, static_cast<std::int64_t>(deleted ? 1 : 0))
        .bind(8, voxels).bind(9, cc).blob(10, blob);
    v.step(path_);
    for (const auto& r : clear_drafts)  // the drawing these drafts kept is this version now
      delete_draft(impl_->db, path_, id, author, r.tab, r.seq, "saved");
    if (saved_by)  // a later request of this drawing is no draft
      mark_draft_gone(impl_->db, path_, id, author, saved_by->tab, saved_by->seq, "saved");
    if (commit_delay_ > 0) {  // test hook: announce the open transaction, then wait
      std::FILE* f = std::fopen((path_ + ".test-in-save").c_str(), "w");
      if (f) std::fclose(f);
      std::this_thread::sleep_for(std::chrono::duration<double>(commit_delay_));
    }
    impl_->exec("COMMIT", path_);
    return latest + 1;
  } catch (...) {
    sqlite3_exec(impl_->db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

}  // namespace isoline::ui
