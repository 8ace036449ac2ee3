// Shared helpers of the report module (not installed).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "isoline/report/report.h"

namespace isoline::report::detail {

struct Target {
  std::string name;
  double dose_gy = 0.0;  ///< 0 when unknown
};

/// Targets present in the structure set, highest prescription first.
std::vector<Target> find_targets(const ReportInput& in);
/// Prescription used for scaling: input's, else highest target, else max dose, else 1.
double prescription(const ReportInput& in);
/// Upper end of the common dose colour scale (Gy).
double dose_scale_max(const ReportInput& in);
/// The colourwash colour of `percent` of the prescription: interpolated between the stops
/// (any order), the highest stop's colour above it; nullopt below the lowest stop or with
/// no stops.
std::optional<core::Color> wash_color(const std::vector<IsodoseLevel>& stops, double percent);
/// Text in the 5x7 bitmap font (upper case), for burnt-in labels.
void draw_text(Picture& p, int x, int y, const std::string& text, int scale, core::Color c);
int text_width(const std::string& text, int scale);
void fill_rect(Picture& p, int x, int y, int w, int h, core::Color c);
/// Base64 (RFC 4648) of bytes.
std::string base64(const std::vector<std::uint8_t>& bytes);

}  // namespace isoline::report::detail
