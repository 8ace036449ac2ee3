#include "isoline/core/text.h"

namespace isoline::core {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
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

}  // namespace isoline::core
