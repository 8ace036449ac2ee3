// isoline jobs: the DICOM node's job queue (list, re-run, retry).
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "command.h"
#include "isoline/core/error.h"
#include "isoline/node/config.h"
#include "isoline/node/job_queue.h"

namespace isoline::cli {

namespace {

std::string when(double t) {
  if (t <= 0) return "-";
  const std::time_t s = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

int run_jobs(const Args& args, const Context&) {
  node::NodeConfig cfg;
  if (auto c = args.get("--config")) cfg = node::load_config(*c, cfg);
  if (auto w = args.get("--work")) cfg.work_dir = *w;
  const std::string db = node::queue_path(cfg.work_dir);
  std::error_code ec;
  if (!std::filesystem::exists(db, ec))
    core::fail<core::IoError>("jobs", db, "no job queue here (give the node's --work directory)");
  node::JobQueue q(db);
  if (args.has("--rerun")) {
    const long long id = q.rerun(args.get_int("--rerun", 0), node::now_seconds());
    if (!args.quiet) std::printf("queued job %lld (a running node picks it up)\n", id);
    return 0;
  }
  if (auto uid = args.get("--complete")) {
    auto rec = q.series(*uid);
    if (!rec) core::fail<core::InvalidInput>("jobs", *uid, "no such series in the queue");
    if (rec->state != "interrupted" && rec->state != "held")
      core::fail<core::InvalidInput>("jobs", *uid,
                                     "the series is " + rec->state + ", not interrupted or held");
    const long long id = q.complete_series(*uid, cfg.job_kind, node::now_seconds());
    if (!args.quiet)
      std::printf("job %lld: series with %d instances queued as it is (a running node picks it up)\n", id,
                  rec->num_instances);
    return 0;
  }
  if (args.has("--retry")) {
    const long long id = args.get_int("--retry", 0);
    q.retry(id, node::now_seconds());
    const auto j = q.job(id);
    if (!args.quiet) {
      if (j && j->state == "sending")
        std::printf("job %lld: its result is sent again (state sending; a running node picks it up)\n", id);
      else
        std::printf("job %lld queued again (a running node picks it up)\n", id);
    }
    return 0;
  }
  const auto jobs = q.jobs();
  const auto interrupted = q.interrupted_series();
  const auto held = q.held_series();
  if (args.flag("--json")) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& j : jobs)
      a.push_back({{"id", j.id},
                   {"series_instance_uid", j.series_instance_uid},
                   {"kind", j.kind},
                   {"state", j.state},
                   {"instances", j.num_instances},
                   {"process_attempts", j.process_attempts},
                   {"send_attempts", j.send_attempts},
                   {"created", j.created},
                   {"completed_series", j.completed_series},
                   {"result_ready", j.result_ready},
                   {"sent", j.sent},
                   {"next_attempt", j.next_attempt},
                   {"results", j.results},
                   {"sent_to", j.sent_to},
                   {"error", j.error},
                   {"progress", j.progress},
                   {"stage", j.stage}});
    std::printf("%s\n", a.dump(1).c_str());
    return 0;
  }
  for (const auto& r : interrupted)
    std::printf("interrupted series %s: %d instances, last %s; not processed until the sender sends it "
                "again (or isoline jobs --complete UID to process it as it is)\n",
                r.series_instance_uid.c_str(), r.num_instances, when(r.last_received).c_str());
  for (const auto& r : held)
    std::printf(
        "held series %s: %d instances, last %s; %s; not processed until more of it arrives (or "
        "isoline jobs --complete UID to process it as it is)\n",
        r.series_instance_uid.c_str(), r.num_instances, when(r.last_received).c_str(),
        r.hold_reason.c_str());
  if (jobs.empty()) {
    std::printf("no jobs\n");
    return 0;
  }
  std::printf("%-5s %-8s %-10s %9s %5s %5s  %-20s  %s\n", "id", "kind", "state", "instances", "runs", "sends",
              "created", "series");
  for (const auto& j : jobs) {
    std::printf("%-5lld %-8s %-10s %9d %5d %5d  %-20s  %s\n", j.id, j.kind.c_str(), j.state.c_str(),
                j.num_instances, j.process_attempts, j.send_attempts, when(j.created).c_str(),
                j.series_instance_uid.c_str());
    if (j.state == "running")
      std::printf("      %.0f %%%s%s\n", 100.0 * j.progress, j.stage.empty() ? "" : "  ", j.stage.c_str());
    if (j.state == "sending" && j.next_attempt > 0)
      std::printf("      next send attempt %s\n", when(j.next_attempt).c_str());
    if (j.state == "superseded" || j.state == "skipped") {
      std::string why = j.error;
      if (j.state == "superseded")  // names the newer job once it exists
        if (std::string now = q.superseded_reason(j.id); !now.empty()) why = now;
      std::printf("      %s%s\n", why.c_str(),
                  j.state == "superseded" && !j.sent_to.empty()
                      ? "; a result of these instances had already been sent before"
                      : "");
    } else if (!j.error.empty()) {
      std::printf("      error: %s\n", j.error.c_str());
    }
    if ((j.state == "failed" || j.state == "sending") && !j.sent_to.empty()) {
      std::string to;
      for (const auto& d : j.sent_to) to += (to.empty() ? "" : ", ") + d;
      std::printf("      received by %s; %s\n", to.c_str(),
                  j.state == "failed" ? "the destination(s) in the error did not get it"
                                      : "the other destination(s) are tried again");
    }
  }
  return 0;
}

}  // namespace

Command make_jobs_command() {
  Command c;
  c.name = "jobs";
  c.summary = "list the DICOM node's jobs and their state; re-run or retry one";
  c.description =
      "Lists the jobs of a DICOM node (`isoline listen`) from its work directory: one job per\n"
      "completed series, with its state (queued, running, sending, done, failed, superseded: the\n"
      "series grew after the job was made; skipped: a localizer), processing runs, send attempts\n"
      "and the last error, and the series whose association was aborted or of which the node\n"
      "refused an instance (interrupted: not processed until the sender sends them again) or\n"
      "that looked partial when complete (held: too few slices, missing Instance Numbers).\n"
      "--rerun ID queues the series of job ID again (a series is otherwise processed again only\n"
      "when instances it did not have arrive); --retry ID resumes a failed job; --complete UID\n"
      "processes an interrupted or held series as it is.";
  c.options = {
      {"--work", "DIR", "the node's work directory (default isoline-node)", false, "", false},
      {"--config", "JSON", "take the work directory from the node's configuration", false, "", false},
      {"--json", "", "machine-readable output", false, "", false},
      {"--rerun", "ID", "queue the series of job ID again", false, "", false},
      {"--retry", "ID", "resume failed job ID", false, "", false},
      {"--complete", "SERIES_UID", "process an interrupted or held series as it is", false, "", false},
  };
  c.run = run_jobs;
  return c;
}

}  // namespace isoline::cli
