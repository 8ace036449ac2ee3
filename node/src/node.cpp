// The node: listener thread + worker (series completion, jobs, sending with back-off).
#include "isoline/node/node.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "internal.h"
#include "isoline/contouring/contour.h"
#include "isoline/core/atomic_file.h"
#include "isoline/core/device.h"
#include "isoline/core/error.h"
#include "isoline/core/text.h"
#include "isoline/node/job_queue.h"
#include "isoline/node/node_util.h"
#include "isoline/pipeline/case_io.h"
#include "isoline/pipeline/run.h"
#include "isoline/rtstruct/ct_series.h"
#include "isoline/rtstruct/deidentify.h"
#include "isoline/rtstruct/rtstruct.h"

namespace fs = std::filesystem;

namespace isoline::node {

namespace {

std::string fmt_seconds(double s) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f s", s);
  return b;
}

/// run_job's way of saying the series is not to be processed (not an error: a localizer).
struct Skipped : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace

struct Node::Impl {
  NodeConfig cfg;
  /// Loaded on the first contouring job and kept for the next ones (one worker thread).
  std::unique_ptr<contouring::Model> model;
  LogSink sink;
  std::atomic<bool> stop{false};
  std::mutex log_mutex;
  std::mutex wake_mutex;
  std::condition_variable wake;
  bool woken = false;

  void say(const std::string& level, const std::string& line) {
    std::lock_guard<std::mutex> lock(log_mutex);
    // DCMTK's lines come here too (configure_dcmtk_logging): one lock for both.
    if (sink) sink(log_line(level, line));
  }

  void notify() {
    {
      std::lock_guard<std::mutex> lock(wake_mutex);
      woken = true;
    }
    wake.notify_all();
  }

  std::string job_dir(long long id) const {
    return (fs::path(cfg.work_dir) / "jobs" / std::to_string(id)).string();
  }

  /// Runs the job (contour, or the main job) on the series of `job`; returns the files to
  /// send. The results appear atomically as <job>/result/ (re-identified when de-identifying);
  /// results of an earlier, interrupted run of the same job are reused.
  std::vector<std::string> run_job(JobQueue& q, const Job& job) {
    const std::string tag = "job " + std::to_string(job.id) + ": ";
    const fs::path dir = job_dir(job.id);
    const fs::path result = dir / "result";
    std::error_code ec;
    if (fs::is_directory(result, ec)) {
      say("info", tag + "results written before the restart are reused (not processed again)");
      return result_files(result);
    }
    core::ensure_directory(dir.string(), "node job");
    const std::vector<InstanceRecord> instances = q.series_instances(job.series_instance_uid);
    std::vector<std::string> files;
    for (const auto& i : instances) files.push_back(i.file);
    if (files.empty())
      core::fail<core::InvalidInput>("node job", job.series_instance_uid, "no stored instances");
    // A scout (topogram) comes from the scanner in a series of its own: not a failure.
    if (job.kind == "contour" && detail::is_localizer_series(files))
      throw Skipped("series " + job.series_instance_uid + " is a localizer (scout): not contoured");

    // Stop requests end the job here; the progress goes to the queue (`isoline jobs`) at most
    // once a second, best effort (a busy database must not fail the job).
    auto last = std::make_shared<std::pair<std::mutex, double>>();
    last->second = -1.0;
    // A job whose series grows while it runs is superseded: it stops at the next report
    // instead of contouring on for nothing (process() says why).
    const core::Progress progress([this, &q, id = job.id, last](const core::ProgressEvent& e) {
      if (stop.load()) throw core::Cancelled("node job: stopped");
      const double now = now_seconds();
      {
        std::lock_guard<std::mutex> lock(last->first);
        if (now - last->second < 1.0) return;
        last->second = now;
      }
      bool grown = false;
      try {
        q.set_progress(id, e.fraction, e.detail.empty() ? e.stage : e.stage + ": " + e.detail, now);
        grown = !q.superseded_reason(id).empty();
      } catch (const std::exception&) {
      }
      if (grown) throw core::Cancelled("node job: superseded");
    });

    // The input: the series alone in one directory (de-identified, or hard links).
    rtstruct::DeidMap map;
    const std::string map_file = (fs::path(cfg.work_dir) / "deidentification-map.json").string();
    const fs::path input = dir / (cfg.deidentify ? "deidentified" : "ct");
    fs::remove_all(input, ec);
    core::ensure_directory(input.string(), "node job");
    if (cfg.deidentify) map = rtstruct::DeidMap::load(map_file);
    std::vector<std::string> in_files;
    // The links' names mean nothing to the operator: errors name the slices instead.
    std::map<std::string, std::string> labels{{input.string(), "the series' instances"},
                                              {dir.string(), "job " + std::to_string(job.id)}};
    for (std::size_t i = 0; i < files.size(); ++i) {
      const std::string f = (input / ("CT" + std::to_string(i) + ".dcm")).string();
      const auto& in = instances[i];
      labels[f] = labels[in.file] = in.instance_number
                                        ? "Instance Number " + std::to_string(*in.instance_number) +
                                              " (SOP Instance UID " + in.sop_instance_uid + ")"
                                        : "SOP Instance UID " + in.sop_instance_uid;
      in_files.push_back(f);
    }
    // Library errors name the node's files and give advice for library users: rephrased,
    // with the warnings gathered before them (the main job's: process() logs them).
    auto for_operator = [&labels](const auto& body) {
      try {
        body();
      } catch (const core::Cancelled&) {
        throw;
      } catch (const core::Error& e) {
        core::Error rephrased(job_error_for_operator(e.what(), labels));
        rephrased.add_warnings(e.warnings());
        throw rephrased;
      }
    };
    for_operator([&] {
      for (std::size_t i = 0; i < files.size(); ++i) {
        if (cfg.deidentify) {
          rtstruct::deidentify_file(files[i], in_files[i], map);
        } else {
          fs::create_hard_link(files[i], in_files[i], ec);
          if (ec) fs::copy_file(files[i], in_files[i], fs::copy_options::overwrite_existing);
        }
      }
    });
    if (cfg.deidentify) {
      map.save(map_file);
      say("info", tag + "de-identified " + std::to_string(in_files.size()) + " instances");
    }

    // The results appear at once (and on disk) when complete: a temporary folder beside.
    core::AtomicOutput staged(result.string(), /*directory=*/true);
    const fs::path raw = dir / "output";  // results as computed (de-identified when de-identifying)
    fs::remove_all(raw, ec);
    core::ensure_directory(raw.string(), "node job");
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::string> produced;
    std::string summary;
    for_operator([&] {
      if (job.kind == "run") {
        pipeline::RunOptions o;
        o.ct_path = input.string();
        o.out_dir = (raw / "run").string();
        o.model_card = cfg.model_card;
        o.device = core::parse_device(cfg.device);
        o.max_iterations = cfg.run_max_iterations;
        o.overwrite = true;
        pipeline::RunResult r = pipeline::run_case(o, progress);
        for (const auto& w : r.warnings) say("warning", tag + w);
        for (const char* name : {"RS.dcm", "RD.dcm"}) {
          const fs::path f = fs::path(r.out_dir) / name;
          if (fs::exists(f, ec)) produced.push_back(f.string());
        }
        summary = "main job (contour " + fmt_seconds(r.contour_s) + ", plan " +
                  fmt_seconds(r.plan_s) + ")";
      } else {
        rtstruct::CtSeries series =
            rtstruct::read_ct_series(in_files, {}, progress.sub(0, 0.1, "read"));
        if (cfg.debug)
          say("debug",
              tag + "patient '" +
                  utf8_for_log(series.info.patient_name, series.info.specific_character_set) +
                  "' ID '" +
                  utf8_for_log(series.info.patient_id, series.info.specific_character_set) + "'");
        const std::string rs = (raw / "RS.dcm").string();
        rtstruct::check_rtstruct_reference(series, rs);  // before the network runs
        if (!model)
          model =
              std::make_unique<contouring::Model>(cfg.model_card, core::parse_device(cfg.device));
        contouring::ContourOptions opt;
        opt.structures = cfg.structures;
        contouring::ContourResult r =
            contouring::contour(series.image, *model, opt, progress.sub(0.1, 0.9, "contour"));
        for (const auto& w : r.warnings) say("warning", tag + w);
        const rtstruct::RtStructWriteOptions wo = pipeline::auto_contour_options(r);
        auto res =
            rtstruct::write_rtstruct(r.structures, series, rs, wo, progress.sub(0.9, 1.0, "write"));
        produced.push_back(rs);
        summary = std::to_string(series.slices.size()) +
                  " slices: " + std::to_string(res.num_rois) + " ROIs, " +
                  std::to_string(res.num_contours) + " contours";
      }
    });
    if (produced.empty())
      core::fail<core::IoError>("node job", raw.string(), "the job produced no DICOM result");
    for (const auto& f : produced) {
      const std::string to = (fs::path(staged.temp_path()) / fs::path(f).filename()).string();
      if (cfg.deidentify) {
        for (const auto& w : rtstruct::reidentify_file(f, to, map)) say("warning", tag + "re-identify: " + w);
      }
      else
        fs::copy_file(f, to, fs::copy_options::overwrite_existing);
    }
    staged.commit();
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string verb = job.kind == "run" ? "ran the " : "contoured ";
    say("info", tag + verb + summary + " in " + fmt_seconds(secs));
    return result_files(result);
  }

  static std::vector<std::string> result_files(const fs::path& result) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(result, ec))
      if (e.path().extension() == ".dcm") out.push_back(e.path().string());
    std::sort(out.begin(), out.end());  // RD.dcm before RS.dcm: order does not matter to a PACS
    return out;
  }

  /// The series of `job` has grown since the job was made: the job ends superseded and
  /// sends nothing (more). Returns whether it did.
  bool superseded(JobQueue& q, const Job& job) {
    const std::string why = q.superseded_reason(job.id);
    if (why.empty()) return false;
    q.mark_superseded(job.id, why, now_seconds());
    const std::string tag = "job " + std::to_string(job.id) + ": ";
    if (job.sent_to.empty())
      say("warning", tag + why + "; its result is not sent");
    else
      say("warning", tag + why + "; it had already sent a result of " + std::to_string(job.num_instances) +
                         " instances (part of the series) to " + core::join(job.sent_to, ", ") +
                         ": the newer job's result replaces it there; nothing more is sent");
    return true;
  }

  void process(JobQueue& q, Job job) {
    const std::string tag = "job " + std::to_string(job.id) + ": ";
    if (superseded(q, job)) return;
    if (job.state == "queued") {
      if (job.process_attempts >= cfg.max_process_attempts) {
        q.mark_failed(job.id,
                      "processing was interrupted " + std::to_string(job.process_attempts) +
                          " times (crash?); not tried again (isoline jobs --retry " +
                          std::to_string(job.id) + " to try again)",
                      now_seconds());
        say("error", tag + "failed: processing interrupted " +
                         std::to_string(job.process_attempts) +
                         " times (crash?); not tried again (isoline jobs --retry " +
                         std::to_string(job.id) + " to try again)");
        return;
      }
      q.mark_running(job.id, now_seconds());
      try {
        std::vector<std::string> results = run_job(q, job);
        q.mark_result(job.id, results, now_seconds());
      } catch (const core::Cancelled&) {
        if (!stop.load()) {  // its series grew while it ran: superseded, not interrupted
          auto now = q.job(job.id);
          if (now && superseded(q, *now)) return;
        }
        q.mark_queued(job.id, now_seconds());
        say("info", tag + "interrupted by the stop request; stays queued");
        return;
      } catch (const Skipped& e) {
        q.mark_skipped(job.id, e.what(), now_seconds());
        say("info", tag + e.what());
        return;
      } catch (const std::exception& e) {
        q.mark_failed(job.id, e.what(), now_seconds());
        // Logged as a successful job logs them, before the error they often explain: the
        // warnings gathered until the failure (the main job's "contouring: anatomy outside the
        // model's scope? ..." before its targets come out empty).
        if (const auto* error = dynamic_cast<const core::Error*>(&e))
          for (const auto& w : error->warnings()) say("warning", tag + w);
        say("error", tag + "failed: " + e.what());
        return;
      }
      auto again = q.job(job.id);
      if (!again) return;
      job = *again;
    }
    if (job.state != "sending") return;
    // Instances that arrived while the job ran make its result a part of the series.
    if (superseded(q, job)) return;
    if (cfg.destinations.empty()) {
      q.mark_done(job.id, now_seconds());
      say("info", tag + "done (no destination configured; results in " + job_dir(job.id) + ")");
      return;
    }
    std::string errors;
    bool all = true;
    for (const auto& d : cfg.destinations) {
      const std::string name = d.to_string();
      if (std::find(job.sent_to.begin(), job.sent_to.end(), name) != job.sent_to.end()) continue;
      try {
        send_files(job.results, d, cfg.aet, cfg.acse_timeout, cfg.dimse_timeout);
        q.mark_sent_to(job.id, name, now_seconds());
        say("info", tag + "sent " + std::to_string(job.results.size()) + " file(s) to " + name);
      } catch (const core::Error& e) {
        all = false;
        errors += (errors.empty() ? "" : "; ") + std::string(e.what());
      }
    }
    if (all) {
      const double now = now_seconds();
      q.mark_done(job.id, now);
      say("info", tag + "done, " + fmt_seconds(now - job.completed_series) +
                      " after the series was complete");
      return;
    }
    const int attempt = job.send_attempts + 1;
    const bool give_up = attempt >= cfg.max_send_attempts;
    const double delay =
        std::min(cfg.retry_max_seconds, cfg.retry_initial_seconds * std::pow(2.0, attempt - 1));
    q.mark_send_failed(job.id, errors, now_seconds() + delay, give_up, now_seconds());
    if (give_up)
      say("error", tag + "send failed " + std::to_string(attempt) +
                       " times, giving up (isoline jobs --retry " + std::to_string(job.id) +
                       "): " + errors);
    else
      say("warning", tag + "send failed (attempt " + std::to_string(attempt) + "/" +
                         std::to_string(cfg.max_send_attempts) + "), next in " +
                         fmt_seconds(delay) + ": " + errors);
  }

  /// A series fell quiet or was released: a job, unless it looks partial (held: said why).
  void complete(JobQueue& q, const std::string& s, const std::string& how, double now) {
    const Completion c =
        q.complete_if_whole(s, cfg.job_kind, cfg.min_slices, cfg.hold_partial_series, now);
    if (!c.held.empty())
      say("warning",
          "series " + s + " held, not processed: " + c.held +
              "; it is processed when more of it arrives (send the series again), or as it is "
              "with isoline jobs --complete " + s);
    if (!c.job) return;
    const std::string tag = "job " + std::to_string(c.job) + ": ";
    say("info",
        tag + "series " + s + " complete (" + how +
            (c.associations > 1 ? ", over " + std::to_string(c.associations) + " associations"
                                : "") +
            ")");
    if (!c.warning.empty())
      say("warning", tag + "series " + s + " processed although " + c.warning +
                         " (hold_partial_series is off)");
  }

  void worker(JobQueue& q) {
    ErrorBackoff backoff;  // 0.2 s doubling to 30 s; a repeated error logged every 5 min
    while (!stop.load()) {
      bool ok = false;
      try {
        const double now = now_seconds();
        if (cfg.complete_on_release)
          for (const auto& s : q.released_series(now, cfg.release_settle_seconds))
            complete(
                q, s,
                "association released, nothing more for " + fmt_seconds(cfg.release_settle_seconds),
                now);
        for (const auto& s : q.quiet_series(now, cfg.quiet_seconds))
          complete(q, s, "quiet for " + fmt_seconds(cfg.quiet_seconds), now);
        const auto job = q.next_due(now);
        if (job) process(q, *job);
        ok = true;
        if (const int n = backoff.on_success())
          say("info", "worker: working again after " + std::to_string(n) + " failed tries");
        if (job) continue;
      } catch (const std::exception& e) {
        const std::string what = e.what();
        if (backoff.on_error(what, now_seconds()))
          say("error", std::string("worker: ") + what + " (work directory " + cfg.work_dir +
                           ": if its disk is full, free space there; the node keeps retrying, next in " +
                           fmt_seconds(backoff.delay()) + ", this error is logged again every 5 min" +
                           (backoff.repeats() ? ", failed " + std::to_string(backoff.repeats() + 1) +
                                                    " times so far"
                                              : std::string()) +
                           ")");
      }
      std::unique_lock<std::mutex> lock(wake_mutex);
      if (ok || !backoff.failing())
        wake.wait_for(lock, std::chrono::milliseconds(200), [this] { return woken || stop.load(); });
      else  // back off: arrivals do not cut the wait short while the queue fails
        wake.wait_for(lock, std::chrono::duration<double>(backoff.delay()), [this] { return stop.load(); });
      woken = false;
    }
  }
};

Node::Node(NodeConfig config, LogSink log) : impl_(std::make_unique<Impl>()) {
  validate(config);
  impl_->cfg = std::move(config);
  impl_->sink = std::move(log);
  core::ensure_directory(impl_->cfg.work_dir, "listen");
  {
    // The work directory holds the received CTs (patient data) and, with --deidentify, the map
    // back to the patients: readable by the node's user only, whatever the umask.
    std::error_code ec;
    fs::permissions(impl_->cfg.work_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
    if (ec)
      core::fail<core::IoError>("listen", impl_->cfg.work_dir,
                                "cannot make the work directory private (mode 0700): " + ec.message());
  }
  // Debian's DCMTK leaves Nagle's algorithm on: ~40 ms per C-STORE on loopback without this.
  ::setenv("TCP_NODELAY", "1", 0);
  JobQueue check(queue_path(impl_->cfg.work_dir));  // fails early on an unusable database
  // DCMTK's own lines (network errors; with debug its network log) go through say(): the
  // same destination (standard error or --log's file), lock and line format as the node's.
  if (impl_->sink)
    detail::configure_dcmtk_logging(impl_->cfg.debug, [m = impl_.get()](const std::string& level,
                                                                       const std::string& line) {
      m->say(level, line);
    });
  else
    detail::configure_dcmtk_logging(impl_->cfg.debug);
}

Node::~Node() {
  // DCMTK's logger must not keep calling into this node.
  detail::reset_dcmtk_logging();
}

const NodeConfig& Node::config() const {
  return impl_->cfg;
}

std::atomic<bool>& Node::stop_flag() {
  return impl_->stop;
}

void Node::stop() {
  impl_->stop.store(true);
  impl_->notify();
}

void Node::run() {
  Impl& m = *impl_;
  JobQueue worker_queue(queue_path(m.cfg.work_dir));
  // Running when the node stopped (crash, kill -9): run again, or given up after
  // max_process_attempts interruptions.
  std::vector<std::string> was_running, given_up;
  for (const auto& j : worker_queue.jobs())
    if (j.state == "running")
      (j.process_attempts >= m.cfg.max_process_attempts ? given_up : was_running)
          .push_back(std::to_string(j.id));
  worker_queue.recover(now_seconds());
  auto say = [&m](const std::string& level, const std::string& line) { m.say(level, line); };
  detail::Listener listener(m.cfg, m.stop, say, [&m] { m.notify(); });
  listener.open();
  {
    std::string dest;
    for (const auto& d : m.cfg.destinations) dest += (dest.empty() ? "" : ", ") + d.to_string();
    m.say("info",
          "listening as " + m.cfg.aet + " on port " + std::to_string(m.cfg.port) + ", job " +
              m.cfg.job_kind + ", quiet time " + fmt_seconds(m.cfg.quiet_seconds) +
              (m.cfg.complete_on_release ? " or association release" : "") + ", destinations: " +
              (dest.empty() ? "none" : dest) + (m.cfg.deidentify ? ", de-identifying" : ""));
    const auto pending = worker_queue.jobs();
    int open = 0;
    for (const auto& j : pending) open += j.state == "queued" || j.state == "sending";
    if (open)
      m.say(
          "info",
          "resuming " + std::to_string(open) + " pending job(s)" +
              (was_running.empty() ? std::string()
                                   : "; job(s) " + core::join(was_running, ", ") +
                                         " were running when the node stopped and run again") +
              (given_up.empty() ? std::string()
                                : "; job(s) " + core::join(given_up, ", ") +
                                      " were running when the node stopped and are not run again: "
                                      "interrupted max_process_attempts (" +
                                      std::to_string(m.cfg.max_process_attempts) + ") times"));
  }
  std::thread net([&] {
    try {
      listener.serve();
    } catch (const std::exception& e) {
      m.say("error", std::string("listener stopped: ") + e.what());
      m.stop.store(true);
      m.notify();
    }
  });
  m.worker(worker_queue);
  m.stop.store(true);
  net.join();
  m.say("info", "stopped");
}

}  // namespace isoline::node
