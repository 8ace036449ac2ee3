// Colours of the dose: isodose lines and the colourwash, the same in the review UI (the
// server sends them to the client with GET /api/case, "dose") and in the HTML/PNG report
// (report::ReportOptions' defaults), so the same dose looks the same to whoever reads either.
// This file is the one place they are chosen.
//
// Rule: structures and dose never share a colour. Every structure colour the palette can give
// (core::default_color: the named head-and-neck colours, PTV70 red, PTV63 crimson, ... and
// the palette for other names) is at least kDoseStyleMinRgbDistance apart in RGB (the rule the
// palette keeps between structures) and kDoseStyleMinDeltaE apart in CIE76 Delta-E from every
// isodose colour and every colour stop of the wash; tests/core/test_dose_style.cpp checks it.
// Higher isodoses are warmer (blue, olive green, light yellow, magenta for the hot spot), but
// none is red or orange: those are the targets' and the brainstem's.
#pragma once

#include <array>

#include "isoline/core/structure.h"

namespace isoline::core {

inline constexpr double kDoseStyleMinRgbDistance = 80.0;
inline constexpr double kDoseStyleMinDeltaE = 25.0;

struct DoseColourStop {
  double fraction;  ///< of the prescription
  Color color;
};

/// Isodose lines: level (fraction of the prescription) and colour, lowest first.
inline constexpr std::array<DoseColourStop, 4> kIsodoseLines{{
    {0.50, {80, 115, 225}},   // blue
    {0.80, {145, 175, 0}},    // olive green
    {0.95, {255, 255, 140}},  // light yellow
    {1.05, {255, 0, 255}},    // magenta: the hot spot
}};

/// Colourwash: colour stops at fractions of the prescription, interpolated between; below
/// the first stop nothing is drawn, above the last one its colour. The stops are the isodose
/// colours at their levels, so wash and lines read as one scale, plus a dark blue at 10 %.
inline constexpr std::array<DoseColourStop, 5> kDoseWash{{
    {0.10, {0, 0, 120}},
    {0.50, {80, 115, 225}},
    {0.80, {145, 175, 0}},
    {0.95, {255, 255, 140}},
    {1.05, {255, 0, 255}},
}};

}  // namespace isoline::core
