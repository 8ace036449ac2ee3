// Small text helpers: suffix tests for file names, escaping for the HTML reports and SVG pictures.
#pragma once

#include <string>

namespace isoline::core {

/// True when `s` ends with `suffix` (case-sensitive), e.g. an output name's extension.
bool ends_with(const std::string& s, const std::string& suffix);

/// `s` safe inside XML/HTML text and attribute values: & < > " ' replaced by entities.
std::string xml_escape(const std::string& s);

}  // namespace isoline::core
