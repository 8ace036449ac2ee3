// A 5 x 7 bitmap font (upper case, digits, a few signs) for labels burnt into pictures: the
// phantom preview and the report's views (orientation letters, scale bars, legends).
#pragma once

namespace isoline::core {

/// The glyph of `c` as 7 rows of 5 columns ('#' = ink, 35 characters), or nullptr for a
/// space and any character the font lacks (drawn blank).
const char* glyph_5x7(char c);

}  // namespace isoline::core
