#include "progress_bar.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include <unistd.h>

namespace isoline::cli {

namespace {
std::FILE* g_open_stream = nullptr;  // stream with an unfinished bar line
}

void finish_progress_line() {
  if (g_open_stream) {
    std::fputc('\n', g_open_stream);
    g_open_stream = nullptr;
  }
}

core::ProgressCallback make_progress_renderer(bool quiet, std::FILE* out, int tty_flag) {
  if (quiet) return {};
  const bool tty = tty_flag < 0 ? ::isatty(::fileno(out)) != 0 : tty_flag != 0;
  struct State {
    std::string stage;
    int last_decile = -1;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  };
  auto st = std::make_shared<State>();
  if (tty) {
    return [st, out](const core::ProgressEvent& e) {
      const int width = 30;
      const int filled = static_cast<int>(std::lround(e.fraction * width));
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - st->start).count();
      std::string bar(filled, '#');
      bar.resize(width, '.');
      std::fprintf(out, "\r\033[K[%s] %3d%% %5.1fs %s%s%s", bar.c_str(),
                   static_cast<int>(e.fraction * 100 + 1e-9), secs, e.stage.c_str(),
                   e.detail.empty() ? "" : ": ", e.detail.c_str());
      g_open_stream = out;
      if (e.fraction >= 1.0) finish_progress_line();
      std::fflush(out);
    };
  }
  return [st, out](const core::ProgressEvent& e) {
    const int decile = static_cast<int>(e.fraction * 10 + 1e-9);
    if (decile == st->last_decile && e.stage == st->stage) return;
    st->last_decile = decile;
    st->stage = e.stage;
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - st->start).count();
    std::fprintf(out, "progress %3d%% %6.1fs %s%s%s\n", static_cast<int>(e.fraction * 100 + 1e-9),
                 secs, e.stage.c_str(), e.detail.empty() ? "" : ": ", e.detail.c_str());
    std::fflush(out);
  };
}

}  // namespace isoline::cli
