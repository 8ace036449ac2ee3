// The dose colours (core/include/isoline/core/dose_style.h), shared by the review UI and the
// report: far from every structure colour.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "isoline/core/dose_style.h"
#include "isoline/core/structure.h"

namespace isoline {
namespace {

// CIE76 Delta-E between two sRGB colours (D65).
double delta_e76(const core::Color& a, const core::Color& b) {
  auto lab = [](const core::Color& c) {
    auto lin = [](double u) { u /= 255.0; return u > 0.04045 ? std::pow((u + 0.055) / 1.055, 2.4) : u / 12.92; };
    const double r = lin(c.r), g = lin(c.g), bl = lin(c.b);
    const double x = (0.4124 * r + 0.3576 * g + 0.1805 * bl) / 0.95047, y = 0.2126 * r + 0.7152 * g + 0.0722 * bl,
                 z = (0.0193 * r + 0.1192 * g + 0.9505 * bl) / 1.08883;
    auto f = [](double t) { return t > 0.008856 ? std::cbrt(t) : 7.787 * t + 16.0 / 116.0; };
    return std::array<double, 3>{116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))};
  };
  const auto p = lab(a), q = lab(b);
  return std::hypot(p[0] - q[0], p[1] - q[1], p[2] - q[2]);
}

// Every structure colour the palette can give: the named head-and-neck ones, the palette for
// any other name (as many as it has), and the edited structure's red and white rim.
std::vector<std::pair<std::string, core::Color>> structure_colours() {
  std::vector<std::pair<std::string, core::Color>> structures;
  for (const char* n : {"PTV70", "PTV63", "PTV56", "Brainstem", "SpinalCord", "RightParotid", "LeftParotid",
                        "Esophagus", "Larynx", "Mandible", "Body", "External"})
    structures.emplace_back(n, core::default_color(n));
  for (std::size_t i = 0; i < 64; ++i) structures.emplace_back("GTV #" + std::to_string(i), core::default_color("GTV", i));
  structures.emplace_back("edited structure (drawing red)", core::Color{255, 0, 0});
  structures.emplace_back("edited structure's rim (white)", core::Color{255, 255, 255});
  return structures;
}

// Structures and dose never share a colour (core/include/isoline/core/dose_style.h): every isodose
// colour and every colour stop of the colourwash is far from every structure colour the
// palette can give (the named head-and-neck ones and the palette for any other name), and
// from the edited structure's red and white rim; the isodose colours are told apart.
TEST(DoseStyle, IsodoseAndWashColoursAreFarFromEveryStructureColour) {
  const auto structures = structure_colours();
  auto rgb = [](const core::Color& a, const core::Color& b) {
    return std::hypot(double(a.r) - b.r, double(a.g) - b.g, double(a.b) - b.b);
  };
  std::vector<std::pair<std::string, core::Color>> dose;
  for (const auto& l : core::kIsodoseLines) dose.emplace_back("isodose " + std::to_string(l.fraction), l.color);
  for (const auto& w : core::kDoseWash) dose.emplace_back("wash " + std::to_string(w.fraction), w.color);
  for (const auto& [dn, dc] : dose)
    for (const auto& [sn, sc] : structures) {
      EXPECT_GE(rgb(dc, sc), core::kDoseStyleMinRgbDistance) << dn << " looks like " << sn;
      EXPECT_GE(delta_e76(dc, sc), core::kDoseStyleMinDeltaE) << dn << " looks like " << sn;
    }
  for (std::size_t i = 0; i < core::kIsodoseLines.size(); ++i)
    for (std::size_t j = i + 1; j < core::kIsodoseLines.size(); ++j)
      EXPECT_GE(delta_e76(core::kIsodoseLines[i].color, core::kIsodoseLines[j].color), core::kDoseStyleMinDeltaE) << i << " " << j;
  // the check itself: the old 105 % red is caught next to PTV70
  EXPECT_LT(delta_e76({255, 40, 40}, core::default_color("PTV70")), core::kDoseStyleMinDeltaE);
}

// An isodose line is a coloured line, as a structure's outline is: the smallest Delta-E
// between any isodose colour and any structure colour the palette gives is at least
// kIsodoseMinDeltaE (40). The 50 % blue (80, 115, 225) was 33 from RightParotid's (0, 170, 255)
// (audit 18: two blue lines on the parotid slice); a palette change that brings a structure
// colour near an isodose colour fails here too.
TEST(DoseStyle, IsodoseLinesAreAtLeast40DeltaEFromEveryStructureColour) {
  const auto structures = structure_colours();
  double worst = 1e9;
  std::string pair;
  for (const auto& l : core::kIsodoseLines)
    for (const auto& [sn, sc] : structures) {
      const double d = delta_e76(l.color, sc);
      if (d < worst) {
        worst = d;
        pair = std::to_string(int(std::lround(100 * l.fraction))) + " % isodose and " + sn;
      }
    }
  std::printf("smallest Delta-E76 between an isodose colour and a structure colour: %.1f (%s)\n", worst, pair.c_str());
  EXPECT_GE(worst, core::kIsodoseMinDeltaE) << pair;
  EXPECT_GE(core::kIsodoseMinDeltaE, 40.0);
  // the isodose lines among themselves: no two alike either
  for (std::size_t i = 0; i < core::kIsodoseLines.size(); ++i)
    for (std::size_t j = i + 1; j < core::kIsodoseLines.size(); ++j)
      EXPECT_GE(delta_e76(core::kIsodoseLines[i].color, core::kIsodoseLines[j].color), core::kIsodoseMinDeltaE) << i << " " << j;
  // the check itself: the old 50 % blue is caught next to RightParotid
  EXPECT_LT(delta_e76({80, 115, 225}, core::default_color("RightParotid")), core::kIsodoseMinDeltaE);
}

}  // namespace
}  // namespace isoline
