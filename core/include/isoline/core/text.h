// Small text helpers: suffix tests for file names, escaping for the HTML reports and SVG pictures,
// JSON error text for users, UTF-8 checks and cuts by character.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace isoline::core {

/// True when `s` ends with `suffix` (case-sensitive), e.g. an output name's extension.
bool ends_with(const std::string& s, const std::string& suffix);
/// ends_with ignoring ASCII case: "RS.DCM" ends with ".dcm".
bool ends_with_nocase(const std::string& s, const std::string& suffix);
/// `s` with ASCII letters in lower case (other bytes, UTF-8 included, unchanged).
std::string to_lower(std::string s);
/// The items with `separator` between them; no separator is written while the result is still
/// empty (so leading empty items leave no separator behind).
std::string join(const std::vector<std::string>& items, const std::string& separator);

/// `s` safe inside XML/HTML text and attribute values: & < > " ' replaced by entities.
std::string xml_escape(const std::string& s);

/// A JSON library's error text for a user: "[json.exception.parse_error.101] parse error at
/// line 3, column 7: syntax error while parsing value - invalid literal; last read: 'h'"
/// becomes "line 3, column 7: invalid literal; last read: 'h'".
std::string json_error(const std::string& what);

/// True when `s` is well-formed UTF-8 (RFC 3629, as JSON libraries check it: 1 to 4 byte
/// sequences, no overlong forms, no surrogates, nothing above U+10FFFF).
bool valid_utf8(std::string_view s);
/// Bytes of the well-formed UTF-8 sequence that starts at s[i] (as valid_utf8 checks it), or 0
/// when none starts there.
std::size_t utf8_sequence_at(std::string_view s, std::size_t i);
/// Characters (code points) of UTF-8 `s`: the bytes that do not continue a sequence.
std::size_t utf8_length(std::string_view s);
/// The first `max_chars` characters of UTF-8 `s` (never half a character).
std::string utf8_prefix(std::string_view s, std::size_t max_chars);

}  // namespace isoline::core
