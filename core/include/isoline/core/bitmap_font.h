// A 5 x 7 bitmap font (upper case, digits, a few signs) for labels burnt into pictures: the
// phantom preview and the report's views (orientation letters, scale bars, legends).
#pragma once

#include <cctype>
#include <string>

namespace isoline::core {

/// The glyph of `c` as 7 rows of 5 columns ('#' = ink, 35 characters), or nullptr for a
/// space and any character the font lacks (drawn blank).
const char* glyph_5x7(char c);

/// Calls put(x, y) for every ink pixel of upper-cased `text` drawn with its top-left corner
/// at (x, y), each glyph pixel a scale x scale block, 6 * scale apart. Returns the x after
/// the text. Clipping is put's business.
template <class Put>
int draw_text_5x7(int x, int y, const std::string& text, int scale, Put&& put) {
  for (char ch : text) {
    const char c = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (const char* rows = glyph_5x7(c))
      for (int r = 0; r < 7; ++r)
        for (int q = 0; q < 5; ++q)
          if (rows[r * 5 + q] == '#')
            for (int dy = 0; dy < scale; ++dy)
              for (int dx = 0; dx < scale; ++dx) put(x + q * scale + dx, y + r * scale + dy);
    x += 6 * scale;
  }
  return x;
}

}  // namespace isoline::core
