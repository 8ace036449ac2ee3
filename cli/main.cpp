// isoline: the command-line entry point. Translates errors into one-line messages and exit
// codes; the subcommands live in cmd_*.cpp and are listed in registry.cpp.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "command.h"
#include "isoline/contouring/contour.h"
#include "isoline/core/device.h"
#include "isoline/core/error.h"
#include "isoline/core/version.h"
#include "progress_bar.h"

using namespace isoline;

namespace {

// Ctrl-C / SIGTERM during a long command: the next progress update on the main thread throws
// core::Cancelled, so the work unwinds and every temporary output is removed (nothing is left
// half-written). A second signal ends the process at once.
std::atomic<int> g_stop_signal{0};

extern "C" void on_interrupt_signal(int sig) {
  if (g_stop_signal.exchange(sig) != 0) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}

core::ProgressCallback cancellable(core::ProgressCallback inner) {
  const std::thread::id main_thread = std::this_thread::get_id();
  return [inner = std::move(inner), main_thread](const core::ProgressEvent& e) {
    // Only on the main thread: an exception must not leave a worker thread (OpenMP) region.
    if (g_stop_signal.load() != 0 && std::this_thread::get_id() == main_thread)
      throw core::Cancelled(std::string("interrupted by ") + (g_stop_signal.load() == SIGTERM ? "SIGTERM" : "SIGINT"));
    if (inner) inner(e);
  };
}

// The warnings a failed operation had gathered (core::Error::warnings(), e.g. `run`'s "contouring:
// anatomy outside the model's scope? ..."), as a successful command prints them: "warning: ..."
// on stderr, also with -q; before the error line, which they often explain.
void print_warnings(const core::Error& e) {
  for (const auto& w : e.warnings()) std::fprintf(stderr, "warning: %s\n", w.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> rest(argv + 1, argv + argc);
  if (rest.empty() || rest[0] == "-h" || rest[0] == "--help" || rest[0] == "help") {
    if (rest.size() >= 2 && rest[0] == "help") {
      rest = {rest[1], "--help"};
    } else {
      std::fputs(cli::global_help().c_str(), stdout);
      return rest.empty() ? 2 : 0;
    }
  }
  if (rest[0] == "--version" || rest[0] == "-V") {
    std::printf("%s\n", core::build_info());
    // What --device cuda can use on this machine: the dose engine and optimiser (CUDA kernels of
    // this build) and the contouring network (the linked LibTorch).
    const int gpus = core::cuda_device_count();
    std::printf("cuda: %s\n", !core::built_with_cuda() ? "not built"
                               : gpus > 0          ? core::cuda_device_name(0).c_str()
                                                   : "no device visible");
    std::printf("contouring network on cuda: %s\n",
                contouring::cuda_available() ? "yes" : "no (LibTorch without CUDA: isoline run falls back to the CPU)");
    return 0;
  }
  const cli::Command* cmd = nullptr;
  for (const auto& c : cli::commands())
    if (c.name == rest[0]) cmd = &c;
  if (!cmd) {
    std::fprintf(stderr, "isoline: error: unknown command '%s' (see isoline --help)\n", rest[0].c_str());
    return 2;
  }
  std::vector<std::string> cmd_args(rest.begin() + 1, rest.end());
  for (const auto& a : cmd_args)
    if (a == "-h" || a == "--help") {
      std::fputs(cli::command_help(*cmd).c_str(), stdout);
      return 0;
    }
  try {
    cli::Args args = cli::parse_args(*cmd, cmd_args);
    cli::Context ctx;
    ctx.progress = cli::make_progress_renderer(args.quiet);
    // The node and the review server handle their own stop signals.
    if (cmd->name != "listen" && cmd->name != "serve") {
      std::signal(SIGINT, on_interrupt_signal);
      std::signal(SIGTERM, on_interrupt_signal);
      ctx.progress = cancellable(std::move(ctx.progress));
    }
    int rc = cmd->run(args, ctx);
    cli::finish_progress_line();
    return rc;
  } catch (const cli::UsageError& e) {
    cli::finish_progress_line();
    std::fprintf(stderr, "isoline %s: error: %s\n%s\n", cmd->name.c_str(), e.message.c_str(),
                 cli::usage_line(*cmd).c_str());
    return 2;
  } catch (const core::Cancelled& e) {
    cli::finish_progress_line();
    print_warnings(e);
    if (const int sig = g_stop_signal.load()) {
      std::fprintf(stderr, "isoline %s: %s; stopped (unfinished outputs removed)\n", cmd->name.c_str(), e.what());
      return 128 + sig;
    }
    std::fprintf(stderr, "isoline %s: error: %s\n", cmd->name.c_str(), e.what());
    return 1;
  } catch (const core::Error& e) {
    cli::finish_progress_line();
    print_warnings(e);
    std::fprintf(stderr, "isoline %s: error: %s\n", cmd->name.c_str(), e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    cli::finish_progress_line();
    std::fprintf(stderr, "isoline %s: error: out of memory\n", cmd->name.c_str());
    return 1;
  } catch (const std::exception& e) {
    cli::finish_progress_line();
    std::fprintf(stderr, "isoline %s: internal error: %s\n", cmd->name.c_str(), e.what());
    return 70;
  }
}
