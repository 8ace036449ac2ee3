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

std::string command_help(const Command& cmd) {
  std::ostringstream os;
  os << usage_line(cmd) << "\n\n" << cmd.summary << "\n";
  if (!cmd.description.empty()) os << "\n" << cmd.description << "\n";
  if (!cmd.positionals.empty()) {
    os << "\narguments:\n";
    for (const auto& p : cmd.positionals) {
      std::string left = "  " + p.name;
      os << left << std::string(left.size() < 24 ? 24 - left.size() : 1, ' ') << p.help << "\n";
    }
  }
  os << "\noptions:\n";
  for (const auto& o : cmd.options) {
    std::string left = "  " + o.name + (o.metavar.empty() ? "" : " " + o.metavar);
    os << left << std::string(left.size() < 24 ? 24 - left.size() : 1, ' ') << o.help;
    if (o.required) os << " (required)";
    if (!o.default_value.empty()) os << " (default: " << o.default_value << ")";
    os << "\n";
  }
  os << "  -q, --quiet             no progress output\n";
  os << "  -h, --help              show this help\n";
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
