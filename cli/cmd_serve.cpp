// isoline serve <case dir>: the review web server (ui module).
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <cstdlib>
#include <pthread.h>
#include <string>
#include <thread>

#include "command.h"
#include "isoline/core/error.h"
#include "isoline/pipeline/case_io.h"
#include "isoline/planning/plan.h"
#include "isoline/ui/server.h"

namespace isoline::cli {

namespace {

int run_serve(const Args& args, const Context&) {
  ui::ServerOptions o;
  o.case_dir = args.positional(0);
  // An `isoline run` output opens as it is: its CT is CT/, or the DICOM CT that its
  // metrics.json records (found as `adapt` finds a plan's CT); a path recorded there that no
  // longer exists is passed on, for the server to name it.
  {
    std::string recorded_missing;
    o.ct_path = pipeline::find_case_ct(o.case_dir, &recorded_missing);
    if (o.ct_path.empty()) o.ct_path = recorded_missing;
  }
  o.host = args.value("--host");
  const long port = args.get_int("--port", 0);
  if (port < 0 || port > 65535) throw UsageError{"--port must be 0..65535"};
  o.port = static_cast<int>(port);
  // No default name: versions and approvals record the name the reviewer types in the
  // browser (kept there across reloads); --author pre-fills it.
  if (auto a = args.get("--author")) {
    o.author = *a;
    if (o.author.find_first_not_of(" \t") == std::string::npos) throw UsageError{"--author must be a name, not blank"};
  }
  if (auto d = args.get("--db")) o.db_path = *d;
  o.ui_dir = args.get("--ui-dir") ? *args.get("--ui-dir") : ui::default_ui_dir();
  if (args.get("--ui-dir") && !std::filesystem::exists(std::filesystem::path(o.ui_dir) / "index.html"))
    core::fail<core::IoError>("serve", o.ui_dir, "not a built web client (no index.html)");
  // "Re-estimate dose": the achievable-dose plan for the edited structures.
  const planning::PlanTemplate tpl = planning::load_template(args.value("--template"));
  o.dose_estimator = [tpl](const core::Image& ct, const core::StructureSet& set, const core::Progress& progress) {
    return planning::make_plan(ct, set, planning::template_for(tpl, set), {}, progress).dose;
  };

  // SIGINT/SIGTERM stop the server from a waiting thread (not inside a signal handler).
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  ui::ReviewServer server(o);
  if (const char* d = std::getenv("ISOLINE_SERVE_TEST_SAVE_DELAY_S"))  // test hook (crash tests)
    server.db().set_commit_delay_for_testing(std::atof(d));
  server.bind();
  if (o.ui_dir.empty())
    std::fprintf(stderr, "warning: serve: the web client is not built; only the JSON API is available\n");
  if (o.host != "127.0.0.1" && o.host != "localhost" && o.host != "::1")
    std::fprintf(stderr, "warning: serve: listening on %s: reachable from other machines (the token still applies)\n",
                 o.host.c_str());
  std::printf("Isoline review server for %s\nopen %s\n(Ctrl-C to stop)\n", o.case_dir.c_str(), server.url().c_str());
  std::fflush(stdout);

  std::thread waiter([&] {
    int sig = 0;
    sigwait(&set, &sig);
    server.stop();
  });
  server.serve();
  // serve() returned: either a signal stopped it or the socket failed; wake the waiter.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  return 0;
}

}  // namespace

Command make_serve_command() {
  Command c;
  c.name = "serve";
  c.summary = "review web server: view, edit, version and approve a case's structures";
  c.description =
      "Serves a browser viewer/editor for a case directory (ct.nii.gz, masks/*.nii.gz, optional\n"
      "dose.nii.gz, structures.json and dicom/ CT) or an `isoline run` output (its CT/, or the\n"
      "DICOM CT its metrics.json names, which the approved RT-STRUCT then references). Prints a\n"
      "URL with a random access token; every request needs it. Binds 127.0.0.1 unless --host\n"
      "says otherwise. Every save is a new version in <case>/review/review.sqlite (never\n"
      "overwritten; stale saves get a conflict). Approve writes <case>/review/approved/<time>/\n"
      "with the approved RT-STRUCT, the untouched automatic one, the masks and an approval record.";
  c.positionals = {{"CASE", "case directory or `isoline run` output"}};
  c.options = {
      {"--port", "N", "TCP port (0 = the port of the last server on this case when free, else any)", false, "0"},
      {"--host", "ADDR", "address to bind", false, "127.0.0.1"},
      {"--author", "NAME", "reviewer name pre-filled in the browser (default: none; the reviewer types it)"},
      {"--db", "FILE", "review database (default <case>/review/review.sqlite)"},
      {"--ui-dir", "DIR", "bundled web client directory (default: the built one)"},
      {"--template", "NAME", "plan template for \"Re-estimate dose\"", false, planning::kDefaultTemplate},
  };
  c.run = run_serve;
  c.quiet_option = false;
  return c;
}

}  // namespace isoline::cli
