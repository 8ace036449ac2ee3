// Small text helpers shared by the HTML reports and SVG pictures.
#pragma once

#include <string>

namespace isoline::core {

/// `s` safe inside XML/HTML text and attribute values: & < > " ' replaced by entities.
std::string xml_escape(const std::string& s);

}  // namespace isoline::core
