// Colours of the dose: isodose lines and the colourwash, the same in the review UI (the
// server sends them to the client with GET /api/case, "dose") and in the HTML/PNG report
// (report::ReportOptions' defaults), so the same dose looks the same to whoever reads either.
// This file is the one place they are chosen.
//
// Rule: structures and dose never share a colour. Every structure colour the palette can give
// (core::default_color: the named head-and-neck colours, PTV70 red, PTV63 crimson, ... and
// the palette for other names) is at least kDoseStyleMinRgbDistance apart in RGB (the rule the
// palette keeps between structures) and kDoseStyleMinDeltaE apart in CIE76 Delta-E from every
// isodose colour and every colour stop of the wash; an isodose line, drawn as a line like a
// structure's outline, is at least kIsodoseMinDeltaE from every structure colour (the 50 %
// blue (80, 115, 225) was Delta-E 33 from RightParotid's blue: two blue lines told apart by
// shade only); tests/core/test_dose_style.cpp checks both. The structure palette leaves few
// colours that far from all of it (blue, plum, yellow-green, coral and dark ones), so the
// lines are those four, pairwise at least 59 apart, warmer for higher doses (the hot spot's coral
// is Delta-E 41 from PTV70's red and 47 from the brainstem's orange). The UI also draws the
// isodose lines dashed, where structure outlines are solid: a second cue besides colour.
#pragma once

#include <array>

#include "isoline/core/structure.h"

namespace isoline::core {

inline constexpr double kDoseStyleMinRgbDistance = 80.0;
inline constexpr double kDoseStyleMinDeltaE = 25.0;
inline constexpr double kIsodoseMinDeltaE = 40.0;

struct DoseColourStop {
  double fraction;  ///< of the prescription
  Color color;
};

/// Isodose lines: level (fraction of the prescription) and colour, lowest first.
inline constexpr std::array<DoseColourStop, 4> kIsodoseLines{{
    {0.50, {40, 105, 230}},   // blue
    {0.80, {145, 80, 115}},   // plum
    {0.95, {160, 170, 5}},    // yellow-green
    {1.05, {255, 120, 85}},   // coral: the hot spot
}};

/// Colourwash: colour stops at fractions of the prescription, interpolated between; below
/// the first stop nothing is drawn, above the last one its colour. The stops are the isodose
/// colours at their levels, so wash and lines read as one scale, plus a dark blue at 10 %.
inline constexpr std::array<DoseColourStop, 5> kDoseWash{{
    {0.10, {0, 0, 120}},
    {0.50, {40, 105, 230}},
    {0.80, {145, 80, 115}},
    {0.95, {160, 170, 5}},
    {1.05, {255, 120, 85}},
}};

}  // namespace isoline::core
