// isoline listen: the DICOM node (CT in by C-STORE, RT-STRUCT out by C-STORE).
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

#include "command.h"
#include "isoline/core/error.h"
#include "isoline/node/config.h"
#include "isoline/node/node.h"
#include "isoline/node/node_util.h"

namespace isoline::cli {

namespace {

std::atomic<bool>* g_stop = nullptr;

extern "C" void on_stop_signal(int) {
  if (g_stop) g_stop->store(true);
}

// SIGHUP with --log: the log file is reopened before the next line (log rotation that moves
// the file away, e.g. logrotate's `create` with a postrotate `kill -HUP`).
std::atomic<bool> g_reopen{false};

extern "C" void on_reopen_signal(int) { g_reopen.store(true); }

// Where the node's lines go: standard error, or the --log file (reopened on SIGHUP). Called
// under the node's log lock, so one thread at a time. Every write is checked: a log file that
// cannot be written (a full disk, a file size limit) does not stop the node. That is said once
// on standard error, naming the file and why; the lines go to standard error meanwhile, and
// every line tries the file again: once it can be written, the node goes back to it (saying so
// on standard error) and notes there how many lines went to standard error.
struct LogOut {
  std::string path;  // empty: standard error
  int fd = -1;       // the log file; -1: standard error
  bool failing = false;
  bool partial = false;  // a failed write left part of a line in the file
  long diverted = 0;     // lines written to standard error instead while failing
  std::string reason;    // why the file cannot be written (the first failure's)
  ~LogOut() {
    if (fd >= 0) ::close(fd);
  }
  /// Opens `file` for appending; returns the descriptor, or -1 with errno set.
  static int open_log(const std::string& file) {
    return ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
  }
  void write(const std::string& line) {
    if (!path.empty() && g_reopen.exchange(false)) {
      const int f = open_log(path);
      if (f >= 0) {
        ::close(fd);
        fd = f;
        partial = false;  // a new file (or the old one, whose last line is then left unfinished)
        put(node::log_line("info", "log file reopened (SIGHUP)"));
      } else {
        put(node::log_line("error", "cannot reopen the log file " + path + " (SIGHUP): " + std::strerror(errno) +
                                        "; still writing to the file opened before"));
      }
    }
    put(line);
  }
  void put(const std::string& line) {
    if (fd < 0) {
      write_all(STDERR_FILENO, line + "\n");
      return;
    }
    std::string text = partial ? "\n" : "";
    if (failing)
      text += node::log_line("warning", std::to_string(diverted) +
                                            " lines went to standard error while the log file could not be written (" +
                                            reason + ")") +
              "\n";
    text += line + "\n";
    const auto [written, err] = write_all(fd, text);
    if (!err) {
      partial = false;
      if (failing) {
        failing = false;
        write_all(STDERR_FILENO, node::log_line("info", "the log file " + path + " can be written again; " +
                                                            "lines go there from now on") +
                                     "\n");
      }
      return;
    }
    partial = partial ? written > 1 : written > 0;  // text began with "\n" when partial
    if (!failing) {
      failing = true;
      diverted = 0;
      reason = std::strerror(err);
      write_all(STDERR_FILENO,
                node::log_line("error", "cannot write the log file " + path + ": " + reason +
                                            "; the node keeps serving and writes its log lines here until the "
                                            "file can be written again") +
                    "\n");
    }
    ++diverted;
    write_all(STDERR_FILENO, line + "\n");
  }
  /// Writes all of `text` to `f`; returns the bytes written and the errno that stopped it (0: all).
  static std::pair<std::size_t, int> write_all(int f, const std::string& text) {
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(f, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return {done, n < 0 ? errno : EIO};
      done += static_cast<std::size_t>(n);
    }
    return {done, 0};
  }
};

int run_listen(const Args& args, const Context&) {
  node::NodeConfig cfg;
  if (auto c = args.get("--config")) cfg = node::load_config(*c, cfg);
  if (args.has("--port")) {
    const long p = args.get_int("--port", -1);
    if (p < 1 || p > 65535) throw UsageError{"--port must be 1-65535"};
    cfg.port = static_cast<int>(p);
  }
  if (auto a = args.get("--aet")) cfg.aet = *a;
  if (args.has("--forward")) {
    cfg.destinations.clear();
    for (const auto& f : args.get_all("--forward")) cfg.destinations.push_back(node::parse_destination(f));
  }
  if (args.has("--allow")) cfg.allowed_calling_aets = args.get_all("--allow");
  if (auto w = args.get("--work")) cfg.work_dir = *w;
  if (args.has("--quiet-time")) cfg.quiet_seconds = args.get_double("--quiet-time", cfg.quiet_seconds);
  if (args.flag("--complete-on-release")) cfg.complete_on_release = true;
  if (args.has("--release-settle"))
    cfg.release_settle_seconds = args.get_double("--release-settle", cfg.release_settle_seconds);
  if (args.has("--min-slices")) {
    const long n = args.get_int("--min-slices", -1);
    if (n < 0) throw UsageError{"--min-slices must be >= 0"};
    cfg.min_slices = static_cast<int>(n);
  }
  if (auto j = args.get("--job")) cfg.job_kind = *j;
  if (args.has("--max-associations")) {
    const long n = args.get_int("--max-associations", -1);
    if (n < 1 || n > 64) throw UsageError{"--max-associations must be 1-64"};
    cfg.max_associations = static_cast<int>(n);
  }
  if (args.flag("--deidentify")) cfg.deidentify = true;
  if (args.flag("--debug")) cfg.debug = true;
  if (auto l = args.get("--log")) cfg.log_file = *l;

  // A file size limit (ulimit -f, systemd's LimitFSIZE) fails the write that passes it (EFBIG:
  // an instance is refused, the log goes to standard error) instead of killing the node.
  std::signal(SIGXFSZ, SIG_IGN);
  // The log file is opened in append mode before the node starts (a file that cannot be opened
  // stops it here) and again on SIGHUP. Every line goes through the node's logger: its own and
  // DCMTK's.
  auto out = std::make_shared<LogOut>();
  if (!cfg.log_file.empty()) {
    out->fd = LogOut::open_log(cfg.log_file);
    if (out->fd < 0)
      core::fail<core::IoError>("listen", cfg.log_file,
                                std::string("cannot open the log file: ") + std::strerror(errno));
    out->path = cfg.log_file;
    std::signal(SIGHUP, on_reopen_signal);  // from here on: a SIGHUP during start-up is kept for the first line
  }
  try {
    node::Node n(cfg, [out](const std::string& line) { out->write(line); });
    struct ClearStop {  // before n goes, also when run() throws
      ~ClearStop() { g_stop = nullptr; }
    } clear_stop;
    g_stop = &n.stop_flag();
    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
    std::signal(SIGPIPE, SIG_IGN);
    n.run();
  } catch (const std::exception& e) {
    // Why the node did not start (work directory, queue, port in use) is in the log file too,
    // for a service whose standard error nobody reads; the error itself still goes to stderr.
    if (!out->path.empty()) out->write(node::log_line("error", std::string("stopped: ") + e.what()));
    throw;
  }
  return 0;
}

}  // namespace

Command make_listen_command() {
  Command c;
  c.name = "listen";
  c.summary = "DICOM node: receive CT by C-STORE, contour, send the RT-STRUCT back";
  c.description =
      "Runs a DICOM Storage SCP (CT Image Storage and Verification), serving several associations\n"
      "at once (--max-associations). Received instances are stored durably under the work\n"
      "directory and recorded in a persistent SQLite queue. A series is complete after\n"
      "--quiet-time seconds without new instances (default 30), or on association release with\n"
      "--complete-on-release (after --release-settle seconds without more); a series with fewer\n"
      "than --min-slices instances, or that looks partial (fewer than its Images in Acquisition,\n"
      "gaps in its Instance Numbers), is held until more of it arrives. Then it is contoured\n"
      "(job 'contour'; job 'run': the main job, also planning and RT-DOSE) and the RT-STRUCT\n"
      "(and RT-DOSE), referencing the CT, is sent by C-STORE to every --forward destination,\n"
      "retrying with back-off. A restart resumes pending work; a series is never contoured\n"
      "twice (see `isoline jobs`, which also shows how far a running job is). --deidentify\n"
      "processes a de-identified copy (DICOM PS3.15 Basic Profile) and re-identifies the results\n"
      "before sending. Logs carry no patient names or IDs unless --debug. Options override the\n"
      "--config JSON file (docs/dicom-node.md). Stop with SIGINT/SIGTERM.";
  c.options = {
      {"--config", "JSON", "node configuration file", false, "", false},
      {"--port", "N", "listening port (default 11112)", false, "", false},
      {"--aet", "AET", "our AE title (default ISOLINE)", false, "", false},
      {"--forward", "AET@HOST:PORT", "destination of the results (repeatable)", false, "", true},
      {"--allow", "AET", "accepted calling AE title (repeatable; default: any)", false, "", true},
      {"--work", "DIR", "work directory: instances, queue, results (default isoline-node)", false, "", false},
      {"--quiet-time", "S", "seconds without instances before a series is complete (default 30)", false, "", false},
      {"--complete-on-release", "", "also complete a series when its association is released", false, "", false},
      {"--release-settle", "S", "with --complete-on-release: seconds without instances after a release (default 2)", false, "", false},
      {"--min-slices", "N", "hold a series with fewer instances instead of processing it (default 20; 0: none)", false, "", false},
      {"--job", "KIND", "contour (default) or run (the main job: contour, plan, dose, report)", false, "", false},
      {"--max-associations", "N", "associations served at once, each in its own thread (default 8)", false, "", false},
      {"--deidentify", "", "process de-identified data, re-identify results before sending", false, "", false},
      {"--debug", "", "log patient names/IDs and DCMTK network details", false, "", false},
      {"--log", "FILE", "append the log (the node's lines and DCMTK's) to FILE instead of standard error; SIGHUP reopens it", false, "", false},
  };
  c.run = run_listen;
  c.quiet_option = false;
  return c;
}

}  // namespace isoline::cli
