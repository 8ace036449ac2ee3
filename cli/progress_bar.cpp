#include "progress_bar.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include <unistd.h>

namespace isoline::cli {

namespace {
bool g_line_open = false;
}

void finish_progress_line() {
  if (g_line_open) {
    std::fputc('\n', stderr);
    g_line_open = false;
  }
}

core::ProgressCallback make_progress_renderer(bool quiet) {
  if (quiet) return {};
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  struct State {
    std::string stage;
    int last_decile = -1;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  };
  auto st = std::make_shared<State>();
  if (tty) {
    return [st](const core::ProgressEvent& e) {
      const int width = 30;
      const int filled = static_cast<int>(std::lround(e.fraction * width));
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - st->start).count();
      std::string bar(filled, '#');
      bar.resize(width, '.');
      std::fprintf(stderr, "\r\033[K[%s] %3d%% %5.1fs %s%s%s", bar.c_str(),
                   static_cast<int>(e.fraction * 100 + 1e-9), secs, e.stage.c_str(),
                   e.detail.empty() ? "" : ": ", e.detail.c_str());
      g_line_open = true;
      if (e.fraction >= 1.0) finish_progress_line();
      std::fflush(stderr);
    };
  }
  return [st](const core::ProgressEvent& e) {
    const int decile = static_cast<int>(e.fraction * 10 + 1e-9);
    if (decile == st->last_decile && e.stage == st->stage) return;
    st->last_decile = decile;
    st->stage = e.stage;
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - st->start).count();
    std::fprintf(stderr, "progress %3d%% %6.1fs %s%s%s\n", static_cast<int>(e.fraction * 100 + 1e-9),
                 secs, e.stage.c_str(), e.detail.empty() ? "" : ": ", e.detail.c_str());
    std::fflush(stderr);
  };
}

}  // namespace isoline::cli
