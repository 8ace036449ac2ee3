// Log lines (timestamp, level, one line, UTF-8), the worker's error back-off,
// a job's error for the operator, DICOM text as UTF-8 for the log.
#include "isoline/node/node_util.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <utility>
#include <vector>

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dcspchrs.h"
#include "isoline/core/text.h"

namespace isoline::node {

std::string job_error_for_operator(std::string m,
                                   const std::map<std::string, std::string>& labels) {
  // Longest first: a folder is a prefix of its files.
  std::vector<std::pair<std::string, std::string>> by_length(labels.begin(), labels.end());
  std::sort(by_length.begin(), by_length.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  for (const auto& [from, to] : by_length) {
    if (from.empty()) continue;
    for (std::size_t p = m.find(from); p != std::string::npos; p = m.find(from, p + to.size()))
      m.replace(p, from.size(), to);
  }
  // Parenthesised advice for library and Python users (the node's operator has neither).
  for (std::size_t open = m.find('('); open != std::string::npos;) {
    std::size_t close = open;
    for (int depth = 0; close < m.size(); ++close) {
      depth += m[close] == '(' ? 1 : m[close] == ')' ? -1 : 0;
      if (depth == 0) break;
    }
    if (close >= m.size()) break;
    const std::string group = m.substr(open, close - open + 1);
    if (group.find("Python") != std::string::npos ||
        group.find("resample_nonuniform") != std::string::npos) {
      const std::size_t from = open > 0 && m[open - 1] == ' ' ? open - 1 : open;
      m.erase(from, close + 1 - from);
      open = m.find('(', from);
    } else {
      open = m.find('(', open + 1);
    }
  }
  if (m.find("read CT series") != std::string::npos)
    m += "; send the series again from the scanner or PACS (instances the node lacks make it "
         "process the series again)";
  return m;
}

std::string log_line(const std::string& level, const std::string& text) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const int ms = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char stamp[48];
  std::snprintf(stamp, sizeof stamp, "%s.%03dZ", buf, ms);
  return std::string(stamp) + " " + level + " " + utf8_escaped(one_line(text));
}

std::string utf8_escaped(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    if (const std::size_t n = core::utf8_sequence_at(s, i)) {
      out.append(s, i, n);
      i += n;
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned char>(s[i]));
      out += hex;
      ++i;
    }
  }
  return out;
}

std::string utf8_for_log(const std::string& value, const std::string& specific_character_set) {
  bool ascii = true;
  for (char c : value) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) return value;
  const std::string cs = specific_character_set.empty() ? "ISO_IR 100" : specific_character_set;
  DcmSpecificCharacterSet conv;
  OFString out;
  if (conv.selectCharacterSet(cs.c_str(), "ISO_IR 192").good() &&
      conv.convertString(OFString(value.data(), value.size()), out).good()) {
    std::string u(out.c_str(), out.length());
    if (core::valid_utf8(u)) return u;
  }
  std::string esc;
  for (char c : value) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x80) {
      esc += c;
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", b);
      esc += hex;
    }
  }
  return esc;
}

std::string one_line(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      if (i + 1 < s.size()) out += " | ";
      continue;
    }
    out += c;
  }
  while (!out.empty() && (out.back() == ' ' || out.back() == '|')) out.pop_back();
  return out;
}

bool ErrorBackoff::on_error(const std::string& what, double now) {
  ++total_;
  if (!failing_ || what != last_) {
    const bool was = failing_;
    failing_ = true;
    last_ = what;
    delay_ = was ? std::min(max_, std::max(delay_, initial_) * 2.0) : initial_;
    last_logged_ = now;
    repeats_ = 0;
    return true;
  }
  delay_ = std::min(max_, delay_ * 2.0);
  ++repeats_;
  if (now - last_logged_ >= remind_) {
    last_logged_ = now;
    return true;
  }
  return false;
}

int ErrorBackoff::on_success() {
  const int n = total_;
  failing_ = false;
  last_.clear();
  delay_ = 0;
  repeats_ = 0;
  total_ = 0;
  return n;
}

}  // namespace isoline::node
