#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "command.h"
#include "isoline/core/error.h"
#include "isoline/core/version.h"

namespace isoline::cli {

bool Args::has(const std::string& option) const { return options_.count(option) > 0; }

std::optional<std::string> Args::get(const std::string& option) const {
  auto it = options_.find(option);
  if (it != options_.end() && !it->second.empty()) return it->second.back();
  auto d = defaults_.find(option);
  if (d != defaults_.end()) return d->second;
  return std::nullopt;
}

std::string Args::value(const std::string& option) const {
  auto v = get(option);
  if (!v) throw UsageError{"missing required option " + option};
  return *v;
}

std::vector<std::string> Args::get_all(const std::string& option) const {
  auto it = options_.find(option);
  return it == options_.end() ? std::vector<std::string>{} : it->second;
}

double Args::get_double(const std::string& option, double fallback) const {
  auto v = get(option);
  if (!v) return fallback;
  char* end = nullptr;
  double d = std::strtod(v->c_str(), &end);
  if (end == v->c_str() || *end != '\0') throw UsageError{option + " expects a number, got '" + *v + "'"};
  return d;
}

long Args::get_int(const std::string& option, long fallback) const {
  auto v = get(option);
  if (!v) return fallback;
  char* end = nullptr;
  long d = std::strtol(v->c_str(), &end, 10);
  if (end == v->c_str() || *end != '\0') throw UsageError{option + " expects an integer, got '" + *v + "'"};
  return d;
}

Args parse_args(const Command& cmd, const std::vector<std::string>& argv) {
  Args args;
  for (const auto& o : cmd.options)
    if (!o.default_value.empty()) args.defaults_[o.name] = o.default_value;
  bool only_positionals = false;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (!only_positionals && a == "--") {
      only_positionals = true;
      continue;
    }
    if (!only_positionals && a.size() > 1 && a[0] == '-' && !(a.size() > 1 && std::isdigit(static_cast<unsigned char>(a[1])))) {
      if (a == "-q" || a == "--quiet") {
        if (!cmd.quiet_option)
          throw UsageError{a + " does not apply to isoline " + cmd.name + ": it prints no progress to silence"};
        args.quiet = true;
        continue;
      }
      std::string name = a, inline_value;
      bool has_inline = false;
      if (auto eq = a.find('='); eq != std::string::npos) {
        name = a.substr(0, eq);
        inline_value = a.substr(eq + 1);
        has_inline = true;
      }
      auto spec = std::find_if(cmd.options.begin(), cmd.options.end(),
                               [&](const OptionSpec& o) { return o.name == name; });
      if (spec == cmd.options.end()) throw UsageError{"unknown option " + name};
      auto& values = args.options_[name];
      if (!values.empty() && !spec->repeatable) throw UsageError{name + " given more than once"};
      if (spec->metavar.empty()) {
        if (has_inline) throw UsageError{name + " takes no value"};
        values.emplace_back();
      } else if (has_inline) {
        values.push_back(inline_value);
      } else {
        if (i + 1 >= argv.size()) throw UsageError{name + " needs a value (" + spec->metavar + ")"};
        values.push_back(argv[++i]);
      }
      continue;
    }
    args.positionals_.push_back(a);
  }
  for (const auto& o : cmd.options)
    if (o.required && !args.has(o.name))
      throw UsageError{o.missing.empty() ? "missing required option " + o.name : o.missing};
  std::size_t min_pos = 0, max_pos = 0;
  bool variadic = false;
  for (const auto& p : cmd.positionals) {
    if (p.required) ++min_pos;
    ++max_pos;
    variadic = variadic || p.variadic;
  }
  if (args.positionals_.size() < min_pos)
    throw UsageError{"missing argument " + cmd.positionals[args.positionals_.size()].name};
  if (!variadic && args.positionals_.size() > max_pos)
    throw UsageError{"unexpected argument '" + args.positionals_[max_pos] + "'"};
  return args;
}

std::string usage_line(const Command& cmd) {
  std::ostringstream os;
  os << "usage: isoline " << cmd.name;
  for (const auto& o : cmd.options) {
    std::string s = o.name + (o.metavar.empty() ? "" : " " + o.metavar);
    os << " " << (o.required ? s : "[" + s + "]");
  }
  for (const auto& p : cmd.positionals) {
    std::string s = p.name + (p.variadic ? "..." : "");
    os << " " << (p.required ? s : "[" + s + "]");
  }
  return os.str();
}

namespace {
// One help row: the option (or argument) at two spaces, its text from column `col`; a name
// too long for the column puts the text on the next line at that column (as argparse does).
void help_row(std::ostream& os, const std::string& left, const std::string& text, std::size_t col) {
  os << left;
  if (left.size() + 2 <= col)
    os << std::string(col - left.size(), ' ');
  else
    os << "\n" << std::string(col, ' ');
  os << text << "\n";
}
}  // namespace

std::string command_help(const Command& cmd) {
  constexpr std::size_t kMaxCol = 26;
  std::vector<std::pair<std::string, std::string>> args_rows, option_rows;
  for (const auto& p : cmd.positionals) args_rows.emplace_back("  " + p.name, p.help);
  for (const auto& o : cmd.options) {
    std::string text = o.help;
    if (o.required) text += " (required)";
    if (!o.default_value.empty()) text += " (default: " + o.default_value + ")";
    option_rows.emplace_back("  " + o.name + (o.metavar.empty() ? "" : " " + o.metavar), text);
  }
  if (cmd.quiet_option) option_rows.emplace_back("  -q, --quiet", "no progress output");
  option_rows.emplace_back("  -h, --help", "show this help");
  // The text column: two spaces after the longest name that fits under kMaxCol.
  std::size_t col = 16;
  for (const auto* rows : {&args_rows, &option_rows})
    for (const auto& r : *rows)
      if (r.first.size() + 2 <= kMaxCol) col = std::max(col, r.first.size() + 2);
  std::ostringstream os;
  os << usage_line(cmd) << "\n\n" << cmd.summary << "\n";
  if (!cmd.description.empty()) os << "\n" << cmd.description << "\n";
  if (!args_rows.empty()) {
    os << "\narguments:\n";
    for (const auto& r : args_rows) help_row(os, r.first, r.second, col);
  }
  os << "\noptions:\n";
  for (const auto& r : option_rows) help_row(os, r.first, r.second, col);
  return os.str();
}

std::string global_help() {
  std::ostringstream os;
  os << "isoline " << core::version()
     << " - auto-contouring, achievable dose and DICOM RT for radiotherapy planning\n\n"
     << "usage: isoline <command> [options] [arguments]\n\ncommands:\n";
  for (const auto& c : commands()) {
    std::string left = "  " + c.name;
    os << left << std::string(left.size() < 14 ? 14 - left.size() : 1, ' ') << c.summary << "\n";
  }
  os << "\nglobal options:\n"
     << "  -h, --help    show this help (isoline <command> --help for a command)\n"
     << "  --version     show version and build information\n"
     << "\nExit status: 0 success, 1 error (message on stderr), 2 wrong usage.\n";
  return os.str();
}

void require_structures(const std::vector<std::string>& wanted, const std::vector<std::string>& present,
                        const std::string& operation, const std::string& input, const std::string& label) {
  for (const auto& w : wanted)
    if (std::find(present.begin(), present.end(), w) == present.end()) {
      std::string list;
      for (const auto& p : present) list += (list.empty() ? "" : ", ") + p;
      core::fail<core::InvalidInput>(operation, input,
                                     label + w + ": no such structure (" +
                                         (list.empty() ? std::string("it holds none") : "there are: " + list) + ")");
    }
}

}  // namespace isoline::cli
