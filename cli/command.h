// The `isoline` command line: every subcommand is one entry of the registry table
// (registry.cpp), which also generates `isoline --help` and `isoline <cmd> --help`.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "isoline/core/progress.h"

namespace isoline::cli {

struct OptionSpec {
  std::string name;     ///< "--out"
  std::string metavar;  ///< "FILE"; empty for a flag without value
  std::string help;
  bool required = false;
  std::string default_value{};  ///< shown in help; returned by Args::get when absent
  bool repeatable = false;    ///< may be given several times (Args::get_all)
  std::string missing{};      ///< usage error when a required option is missing (default: "missing required option X")
};

struct PositionalSpec {
  std::string name;  ///< "CT"
  std::string help;
  bool required = true;
  bool variadic = false;  ///< takes all remaining positionals (must be last)
};

/// Thrown for command-line mistakes; printed with the command's usage line, exit code 2.
struct UsageError {
  std::string message;
};

/// Each of `wanted` (structure names given on the command line) is one of `present`; else
/// InvalidInput "operation: input: <label>NAME: no such structure (there are: A, B, ...)".
void require_structures(const std::vector<std::string>& wanted, const std::vector<std::string>& present,
                        const std::string& operation, const std::string& input, const std::string& label = "");

class Args {
 public:
  bool has(const std::string& option) const;
  bool flag(const std::string& option) const { return has(option); }
  /// Value of an option (its default when absent and a default exists).
  std::optional<std::string> get(const std::string& option) const;
  /// Value of a required option, or of an option with a default.
  std::string value(const std::string& option) const;
  std::vector<std::string> get_all(const std::string& option) const;
  double get_double(const std::string& option, double fallback) const;
  long get_int(const std::string& option, long fallback) const;
  const std::vector<std::string>& positionals() const { return positionals_; }
  const std::string& positional(std::size_t i) const { return positionals_.at(i); }

  /// Global switches shared by all commands.
  bool quiet = false;

 private:
  friend Args parse_args(const struct Command&, const std::vector<std::string>&);
  std::map<std::string, std::vector<std::string>> options_;
  std::map<std::string, std::string> defaults_;
  std::vector<std::string> positionals_;
};

/// What a command gets besides its arguments.
struct Context {
  /// Progress renderer: a bar on a terminal, plain lines otherwise, nothing with --quiet.
  core::ProgressCallback progress;
};

struct Command {
  std::string name;
  std::string summary;      ///< one line, in `isoline --help`
  std::string description;  ///< paragraph(s), in `isoline <cmd> --help`
  std::vector<PositionalSpec> positionals;
  std::vector<OptionSpec> options;
  int (*run)(const Args&, const Context&) = nullptr;
  /// Whether -q/--quiet means anything here (progress or summary lines to silence); a command
  /// without it (listen, serve, info) neither lists it nor accepts it.
  bool quiet_option = true;
};

/// The registry table, in the order shown by `isoline --help`.
const std::vector<Command>& commands();

Args parse_args(const Command& cmd, const std::vector<std::string>& argv);
std::string usage_line(const Command& cmd);
std::string command_help(const Command& cmd);
std::string global_help();

}  // namespace isoline::cli
