// Small text helpers: suffix tests for file names, escaping for the HTML reports and SVG pictures.
#pragma once

#include <string>

namespace isoline::core {

/// True when `s` ends with `suffix` (case-sensitive), e.g. an output name's extension.
bool ends_with(const std::string& s, const std::string& suffix);

/// `s` safe inside XML/HTML text and attribute values: & < > " ' replaced by entities.
std::string xml_escape(const std::string& s);

/// A JSON library's error text for a user: "[json.exception.parse_error.101] parse error at
/// line 3, column 7: syntax error while parsing value - invalid literal; last read: 'h'"
/// becomes "line 3, column 7: invalid literal; last read: 'h'".
std::string json_error(const std::string& what);

}  // namespace isoline::core
