#include "isoline/core/text.h"

#include <cctype>

namespace isoline::core {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string to_lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (const auto& x : items) out += (out.empty() ? "" : separator) + x;
  return out;
}

bool ends_with_nocase(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && to_lower(s.substr(s.size() - suffix.size())) == to_lower(suffix);
}

std::string xml_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string json_error(const std::string& what) {
  std::string s = what;
  if (s.rfind("[json.exception.", 0) == 0) {
    const auto close = s.find("] ");
    if (close != std::string::npos) s = s.substr(close + 2);
  }
  for (const char* noise : {"parse error at ", "syntax error while parsing value - ",
                            "syntax error while parsing object key - ", "syntax error while parsing object - ",
                            "syntax error while parsing array - "}) {
    const auto at = s.find(noise);
    if (at != std::string::npos) s.erase(at, std::string(noise).size());
  }
  return s;
}

namespace {
bool continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }
}  // namespace

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const std::size_t more = b < 0x80 ? 0 : (b >> 5) == 0x6 ? 1 : (b >> 4) == 0xE ? 2 : (b >> 3) == 0x1E ? 3 : 4;
    if (more == 4 || (more > 0 && i + more >= s.size())) return false;
    for (std::size_t k = 1; k <= more; ++k)
      if (!continuation(s[i + k])) return false;
    i += more + 1;
  }
  return true;
}

std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += !continuation(c);
  return n;
}

std::string utf8_prefix(std::string_view s, std::size_t max_chars) {
  std::size_t i = 0;
  for (std::size_t chars = 0; i < s.size() && chars < max_chars; ++chars)
    do ++i;
    while (i < s.size() && continuation(s[i]));
  return std::string(s.substr(0, i));
}

}  // namespace isoline::core
