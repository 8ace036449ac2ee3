#pragma once

#include <cstdio>

#include "isoline/core/progress.h"

namespace isoline::cli {

/// Renders progress on stderr: an updating bar when stderr is a terminal, otherwise one
/// plain line per 10 % step or stage change (friendly to logs and CI). Empty when quiet.
/// `out` and `tty` exist for tests: tty < 0 asks isatty(out).
core::ProgressCallback make_progress_renderer(bool quiet, std::FILE* out = stderr, int tty = -1);

/// Ends a bar line on the terminal if one is open (call before printing anything else).
void finish_progress_line();

}  // namespace isoline::cli
