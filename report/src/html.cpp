// The HTML document: header and info, views (base64 PNG data URIs) with colour bar and
// legends, DVH plot (inline SVG), criteria, metrics and structures with quality flags.
// No scripts, no external resources.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "internal.h"
#include "isoline/core/error.h"
#include "isoline/core/atomic_file.h"
#include "isoline/core/text.h"
#include "isoline/core/version.h"

namespace isoline::report {

using core::Color;

namespace {

std::string esc(const std::string& s) { return core::xml_escape(s); }

std::string fmt(double v, int decimals) {
  if (!std::isfinite(v)) return "&ndash;";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string css_color(Color c) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c.r, c.g, c.b);
  return buf;
}

const char* kCss = R"(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:24px;color:#1d1d1f;background:#fafafa;max-width:1500px}
h1{font-size:1.6em;margin:0 0 12px}h2{font-size:1.25em;margin:28px 0 10px;border-bottom:2px solid #ddd;padding-bottom:4px}
h3{font-size:1.05em;margin:14px 0 6px}
table{border-collapse:collapse;font-size:0.9em;background:#fff}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eef0f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.pass{background:#d7f5d7;color:#0b5d0b;font-weight:600}td.fail{background:#fbd3d3;color:#9b0d0d;font-weight:600}
td.na{background:#eee;color:#666;font-style:italic}
.info th{width:180px}.warn{background:#fff4ce;border:1px solid #e0c060;padding:8px 12px;margin:12px 0}
.views{display:flex;gap:8px;align-items:flex-start;flex-wrap:wrap}.views img{display:block;background:#000}
.swatch{display:inline-block;width:12px;height:12px;border:1px solid #555;vertical-align:middle;margin-right:4px}
.legend span.item{margin-right:14px;white-space:nowrap}.flag{color:#9b5d00;font-weight:600}
.note{color:#555;font-size:0.85em}
.sub{color:#777;font-size:0.8em}
.differs{display:inline-block;background:#ffb347;color:#5a2d00;font-weight:700;font-size:0.85em;padding:1px 4px;margin-top:2px}
tr.differs>td:first-child{border-left:4px solid #e07000}
@media print{body{background:#fff;margin:8mm;max-width:none}.views,svg,table{break-inside:avoid}h2,h3{break-after:avoid}}
)";

bool is_target(const core::Structure* s) { return s && core::is_target_type(s->type); }

/// Structure names in report order: the structure set's order, then DVH names not in it.
std::vector<std::string> structure_order(const ReportInput& in) {
  std::vector<std::string> names = in.structures.names();
  std::set<std::string> seen(names.begin(), names.end());
  for (const auto& d : in.doses)
    for (const auto& [n, dvh] : d.dvhs)
      if (seen.insert(n).second) names.push_back(n);
  return names;
}

Color structure_color(const ReportInput& in, const std::string& name, std::size_t index) {
  if (const auto* s = in.structures.find(name)) return s->color;
  return core::default_color(name, index);
}

/// The structure colour, darkened when it would be too pale to see on the white plot.
Color plot_color(const ReportInput& in, const std::string& name, std::size_t index) {
  Color c = structure_color(in, name, index);
  const double lum = 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b;
  if (lum > 190) {
    const double k = 150.0 / lum;
    c = {std::uint8_t(c.r * k), std::uint8_t(c.g * k), std::uint8_t(c.b * k)};
  }
  return c;
}

const char* dash_of(std::size_t set) {
  static const char* k[] = {"", "9 5", "2 4", "12 4 3 4"};
  return k[set % 4];
}

/// Nice tick step for a range.
double tick_step(double range, int max_ticks) {
  const double raw = range / std::max(1, max_ticks);
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * p >= raw) return m * p;
  return 10 * p;
}

void dvh_svg(std::ostringstream& o, const ReportInput& in, double rx) {
  const auto names = structure_order(in);
  double dmax = rx * 1.1;
  for (const auto& d : in.doses)
    for (const auto& [n, dvh] : d.dvhs)
      if (!dvh.empty()) dmax = std::max(dmax, dvh.max_gy());
  const double xstep = tick_step(dmax, 10);
  const double xmax = std::ceil(dmax / xstep - 1e-9) * xstep;
  // Tall enough for the legend (one line per structure, plus the dose sets).
  std::size_t legend_lines = in.doses.size() > 1 ? in.doses.size() + 1 : 0;
  for (const auto& n : names) {
    bool any = false;
    for (const auto& set : in.doses) any = any || set.dvhs.count(n);
    legend_lines += any;
  }
  const int W = 980, L = 60, R = 230, T = 16, B = 50;
  const int H = std::max(460, T + 8 + int(legend_lines) * 16 + B);
  const int pw = W - L - R, ph = H - T - B;
  auto X = [&](double gy) { return L + gy / xmax * pw; };
  auto Y = [&](double pct) { return T + (1.0 - pct / 100.0) * ph; };
  o << "<svg width=\"" << W << "\" height=\"" << H
    << "\" viewBox=\"0 0 " << W << ' ' << H << "\" font-family=\"sans-serif\" font-size=\"12\" "
    << "role=\"img\" aria-label=\"Cumulative dose-volume histograms\">\n";
  o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"#fff\" stroke=\"#444\"/>\n";
  for (double g = 0; g <= xmax + 1e-9; g += xstep) {
    o << "<line x1=\"" << fmt(X(g), 1) << "\" y1=\"" << T << "\" x2=\"" << fmt(X(g), 1) << "\" y2=\""
      << T + ph << "\" stroke=\"#e3e3e3\"/>";
    o << "<text x=\"" << fmt(X(g), 1) << "\" y=\"" << T + ph + 16 << "\" text-anchor=\"middle\">"
      << fmt(g, xstep < 1 ? 1 : 0) << "</text>\n";
  }
  for (int p = 0; p <= 100; p += 10) {
    o << "<line x1=\"" << L << "\" y1=\"" << fmt(Y(p), 1) << "\" x2=\"" << L + pw << "\" y2=\""
      << fmt(Y(p), 1) << "\" stroke=\"#e3e3e3\"/>";
    o << "<text x=\"" << L - 6 << "\" y=\"" << fmt(Y(p) + 4, 1) << "\" text-anchor=\"end\">" << p
      << "</text>\n";
  }
  o << "<text x=\"" << L + pw / 2 << "\" y=\"" << H - 10 << "\" text-anchor=\"middle\">Dose (Gy)</text>\n";
  o << "<text x=\"16\" y=\"" << T + ph / 2 << "\" text-anchor=\"middle\" transform=\"rotate(-90 16 "
    << T + ph / 2 << ")\">Volume (%)</text>\n";
  if (rx > 0 && rx <= xmax)
    o << "<line x1=\"" << fmt(X(rx), 1) << "\" y1=\"" << T << "\" x2=\"" << fmt(X(rx), 1) << "\" y2=\""
      << T + ph << "\" stroke=\"#888\" stroke-dasharray=\"3 3\"/><text x=\"" << fmt(X(rx) + 3, 1)
      << "\" y=\"" << T + 12 << "\" fill=\"#666\">Rx " << fmt(rx, 1) << " Gy</text>\n";
  // Curves: one path per structure per dose set.
  for (std::size_t si = 0; si < in.doses.size(); ++si) {
    const auto& set = in.doses[si];
    for (std::size_t ni = 0; ni < names.size(); ++ni) {
      auto it = set.dvhs.find(names[ni]);
      if (it == set.dvhs.end() || it->second.empty()) continue;
      std::vector<double> d, f;
      it->second.cumulative(std::max(xmax / 500.0, 0.01), &d, &f);
      std::ostringstream path;
      for (std::size_t k = 0; k < d.size(); ++k) {
        // Keep the ends of every flat run (and the first and last points).
        const bool flat_before = k > 0 && std::abs(f[k] - f[k - 1]) < 1e-4;
        const bool flat_after = k + 1 < d.size() && std::abs(f[k + 1] - f[k]) < 1e-4;
        if (flat_before && flat_after) continue;
        path << (k == 0 ? "M" : "L") << fmt(X(d[k]), 1) << ' ' << fmt(Y(100.0 * f[k]), 1);
      }
      // Drop to zero just beyond the maximum.
      path << "L" << fmt(X(std::min(it->second.max_gy(), xmax)), 1) << ' ' << fmt(Y(0), 1);
      o << "<path class=\"dvh\" data-set=\"" << esc(set.name) << "\" data-structure=\""
        << esc(names[ni]) << "\" d=\"" << path.str() << "\" fill=\"none\" stroke=\""
        << css_color(plot_color(in, names[ni], ni)) << "\" stroke-width=\"1.8\"";
      if (*dash_of(si)) o << " stroke-dasharray=\"" << dash_of(si) << "\"";
      o << "><title>" << esc(set.name + ": " + names[ni]) << "</title></path>\n";
    }
  }
  // Legend: structures (colour), then dose sets (line style).
  int ly = T + 4;
  const int lx = L + pw + 16;
  for (std::size_t ni = 0; ni < names.size(); ++ni) {
    bool any = false;
    for (const auto& set : in.doses) any = any || set.dvhs.count(names[ni]);
    if (!any) continue;
    o << "<line x1=\"" << lx << "\" y1=\"" << ly + 5 << "\" x2=\"" << lx + 24 << "\" y2=\"" << ly + 5
      << "\" stroke=\"" << css_color(plot_color(in, names[ni], ni)) << "\" stroke-width=\"3\"/>"
      << "<text x=\"" << lx + 30 << "\" y=\"" << ly + 9 << "\">" << esc(names[ni]) << "</text>\n";
    ly += 16;
  }
  if (in.doses.size() > 1) {
    ly += 8;
    for (std::size_t si = 0; si < in.doses.size(); ++si) {
      o << "<line x1=\"" << lx << "\" y1=\"" << ly + 5 << "\" x2=\"" << lx + 24 << "\" y2=\"" << ly + 5
        << "\" stroke=\"#222\" stroke-width=\"1.8\"";
      if (*dash_of(si)) o << " stroke-dasharray=\"" << dash_of(si) << "\"";
      o << "/><text x=\"" << lx + 30 << "\" y=\"" << ly + 9 << "\">" << esc(in.doses[si].name)
        << "</text>\n";
      ly += 16;
    }
  }
  o << "</svg>\n";
}

void colour_bar_svg(std::ostringstream& o, double rx, double vmax, const ReportOptions& opt) {
  const int W = 520, H = 58, L = 12, bw = 460, T = 18, bh = 16;
  o << "<svg width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"11\" role=\"img\" aria-label=\"Dose colour scale in Gy\">";
  // The wash as a gradient over 0 .. vmax Gy: its stops where they fall on the bar, the
  // colour at the bar's end; grey where nothing is drawn (below the lowest stop).
  std::vector<IsodoseLevel> stops = opt.wash;
  std::sort(stops.begin(), stops.end(),
            [](const IsodoseLevel& a, const IsodoseLevel& b) { return a.percent < b.percent; });
  const double thr = stops.empty() ? vmax : std::min(vmax, stops.front().percent / 100.0 * rx);
  o << "<defs><linearGradient id=\"dosewash\" x1=\"0\" x2=\"1\" y1=\"0\" y2=\"0\">";
  for (const auto& st : stops) {
    const double at = st.percent / 100.0 * rx / vmax;
    if (at >= 0 && at < 1)
      o << "<stop offset=\"" << fmt(at, 4) << "\" stop-color=\"" << css_color(st.color) << "\"/>";
  }
  if (const auto end = detail::wash_color(opt.wash, 100.0 * vmax / rx))
    o << "<stop offset=\"1\" stop-color=\"" << css_color(*end) << "\"/>";
  o << "</linearGradient></defs>";
  o << "<text x=\"" << L << "\" y=\"12\">Dose (Gy); colourwash from "
    << (stops.empty() ? std::string("-") : fmt(stops.front().percent, 0)) << " % of " << fmt(rx, 1)
    << " Gy (the review UI's colours)</text>";
  o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << bw << "\" height=\"" << bh
    << "\" fill=\"" << (thr < vmax ? "url(#dosewash)" : "#777") << "\" stroke=\"#444\"/>";
  if (thr > 0)
    o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << fmt(bw * std::min(1.0, thr / vmax), 1)
      << "\" height=\"" << bh << "\" fill=\"#777\" stroke=\"#444\"/>";
  const double step = tick_step(vmax, 8);
  for (double d = 0; d <= vmax + 1e-9; d += step) {
    const double x = L + d / vmax * bw;
    o << "<line x1=\"" << fmt(x, 1) << "\" y1=\"" << T + bh << "\" x2=\"" << fmt(x, 1) << "\" y2=\""
      << T + bh + 4 << "\" stroke=\"#444\"/><text x=\"" << fmt(x, 1) << "\" y=\"" << T + bh + 15
      << "\" text-anchor=\"middle\">" << fmt(d, step < 1 ? 1 : 0) << "</text>";
  }
  o << "</svg>\n";
}

void views_section(std::ostringstream& o, const ReportInput& in, const ReportOptions& opt) {
  const double rx = detail::prescription(in), vmax = detail::dose_scale_max(in);
  o << (in.doses.empty() ? "<h2>Contours</h2>\n" : "<h2>Dose and contours</h2>\n");
  if (!in.doses.empty()) {
    o << "<div class=\"legend\">";
    colour_bar_svg(o, rx, vmax, opt);
    o << "<div>Isodose lines: ";
    for (const auto& L : opt.isodoses)
      o << "<span class=\"item\"><span class=\"swatch\" style=\"background:" << css_color(L.color)
        << "\"></span>" << fmt(L.percent, 0) << " % (" << fmt(L.percent / 100 * rx, 1) << " Gy)</span>";
    o << "</div></div>\n";
  }
  o << "<div class=\"legend\" style=\"margin:6px 0\">Structures: ";
  for (const auto& s : in.structures)
    o << "<span class=\"item\"><span class=\"swatch\" style=\"background:" << css_color(s.color)
      << "\"></span>" << esc(s.name) << "</span> ";
  o << "</div>\n<p class=\"note\">Radiological convention: axial views with the patient's right on "
       "the left and anterior up; coronal and sagittal views with superior up (sagittal: anterior "
       "on the left). True physical aspect ratio in every view; the scale bar is labelled (5, 2 or 1 cm).</p>\n";
  const int rows = in.doses.empty() ? 1 : int(in.doses.size());
  static const char* kNames[3] = {"axial", "coronal", "sagittal"};
  for (int r = 0; r < rows; ++r) {
    const auto views = render_views(in, in.doses.empty() ? -1 : r, opt);
    if (!in.doses.empty()) o << "<h3>" << esc(in.doses[std::size_t(r)].name) << "</h3>\n";
    o << "<div class=\"views\">\n";
    for (int v = 0; v < 3; ++v) {
      const auto& p = views[std::size_t(v)];
      o << "<img class=\"view\" alt=\"" << kNames[v]
        << (in.doses.empty() ? std::string() : " " + esc(in.doses[std::size_t(r)].name)) << "\" width=\""
        << p.width << "\" height=\"" << p.height << "\" src=\"data:image/png;base64,"
        << detail::base64(encode_png(p)) << "\">\n";
    }
    o << "</div>\n";
  }
  if (opt.axial_series > 0) {
    ReportOptions small = opt;
    small.view_box_px = std::min(opt.view_box_px, 300);
    o << "<h3>Axial slices, head to foot (z in mm)</h3>\n<div class=\"views\">\n";
    for (const auto& p : render_axial_series(in, opt.axial_series, small))
      o << "<img class=\"view\" alt=\"axial slice\" width=\"" << p.width << "\" height=\"" << p.height
        << "\" src=\"data:image/png;base64," << detail::base64(encode_png(p)) << "\">\n";
    o << "</div>\n";
  }
}

// The cell's class is the voxel-centre verdict's; where the sub-voxel value gives the other
// verdict, both are written and the second is highlighted.
std::string result_cell(const planning::CriterionResult& r) {
  if (!r.evaluated) return "<td class=\"na\">not evaluated</td>";
  std::string cell = r.pass ? "<td class=\"pass\">PASS" : "<td class=\"fail\">FAIL";
  if (r.verdict_differs())
    cell += std::string(" at voxel centres<br><span class=\"differs\" title=\"the sub-voxel DVH, about what a planning "
                        "system computes from RS.dcm + RD.dcm, gives the other verdict\">") +
            (r.pass_subvoxel ? "PASS" : "FAIL") + " as a TPS computes it</span>";
  return cell + "</td>";
}

std::string value_text(const planning::CriterionResult& r) {
  if (!r.evaluated) return "&ndash;";
  const std::string& m = r.criterion.metric;
  std::string unit = planning::is_dose_metric(m) ? " Gy"
                     : (m.size() > 5 && m.compare(m.size() - 5, 5, "Gy_cc") == 0) ? " cc"
                                                                                   : " %";
  std::string out = fmt(r.value, 2) + unit;
  if (std::isfinite(r.value_subvoxel))
    out += std::string("<br><span class=\"") + (r.verdict_differs() ? "differs" : "sub") + "\" title=\"sub-voxel DVH (4x4x4 samples per voxel), as a planning system shows "
           "it from RS + RD\">" + fmt(r.value_subvoxel, 2) + unit + " sub-voxel</span>";
  return out;
}

std::string criterion_text(const planning::Criterion& c) {
  if (!c.description.empty()) return c.description;
  return c.structure + " " + c.metric + (c.at_most ? " <= " : " >= ") + fmt(c.limit, 2);
}

void criteria_section(std::ostringstream& o, const ReportInput& in) {
  bool any = false;
  for (const auto& d : in.doses) any = any || !d.criteria.empty();
  if (!any) return;
  o << "<h2>Clinical criteria</h2>\n";
  // Rows keyed by the criterion text, in order of first appearance.
  std::vector<std::string> keys;
  for (const auto& d : in.doses)
    for (const auto& r : d.criteria) {
      const std::string k = criterion_text(r.criterion);
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
    }
  o << "<table class=\"criteria\"><tr><th>Criterion</th>";
  for (const auto& d : in.doses) o << "<th colspan=\"2\">" << esc(d.name) << "</th>";
  o << "</tr>\n";
  auto result_of = [](const DoseSet& d, const std::string& k) {
    const planning::CriterionResult* r = nullptr;
    for (const auto& x : d.criteria)
      if (criterion_text(x.criterion) == k) r = &x;
    return r;
  };
  std::vector<std::string> differ;  // "criterion (dose set)" where the two verdicts differ
  for (const auto& k : keys) {
    bool row_differs = false;
    for (const auto& d : in.doses)
      if (const auto* r = result_of(d, k); r && r->verdict_differs()) {
        row_differs = true;
        differ.push_back(in.doses.size() > 1 ? k + " (" + d.name + ")" : k);
      }
    o << (row_differs ? "<tr class=\"differs\">" : "<tr>") << "<td>" << esc(k) << "</td>";
    for (const auto& d : in.doses) {
      const planning::CriterionResult* r = result_of(d, k);
      if (!r)
        o << "<td class=\"num\">&ndash;</td><td class=\"na\">not evaluated</td>";
      else
        o << "<td class=\"num\">" << value_text(*r) << "</td>" << result_cell(*r);
    }
    o << "</tr>\n";
  }
  o << "<tr><th>Passed</th>";
  for (const auto& d : in.doses) {
    int evaluated = 0;
    for (const auto& r : d.criteria) evaluated += r.evaluated;
    o << "<th colspan=\"2\">" << planning::count_passed(d.criteria) << " of " << evaluated
      << " evaluated (" << d.criteria.size() << " criteria)";
    if (const int fine = planning::count_subvoxel(d.criteria))
      o << "<br>" << planning::count_passed_subvoxel(d.criteria) << " of " << fine << " as a TPS computes them";
    o << "</th>";
  }
  o << "</tr></table>\n";
  bool fine = false;
  for (const auto& d : in.doses)
    for (const auto& r : d.criteria) fine = fine || std::isfinite(r.value_subvoxel);
  if (fine)
    o << "<p class=\"note\">PASS/FAIL uses the dose at mask-voxel centres (as OpenKBP evaluates; the "
         "normalisation uses the same DVH). The grey \"sub-voxel\" value is the same metric with "
         "4&times;4&times;4 samples per voxel and interpolated dose, about what a planning system shows from "
         "RS.dcm and RD.dcm: at a steep target edge it gives lower coverage and higher maxima. Where it gives "
         "the other verdict, the cell says so in orange.</p>\n";
  if (!differ.empty()) {
    o << "<p class=\"warn\"><b>The verdict differs as a planning system computes it</b> (sub-voxel DVH from "
         "RS.dcm + RD.dcm) for " << differ.size() << (differ.size() == 1 ? " criterion: " : " criteria: ");
    for (std::size_t i = 0; i < differ.size(); ++i) o << (i ? "; " : "") << esc(differ[i]);
    o << ".</p>\n";
  }
}

void metrics_section(std::ostringstream& o, const ReportInput& in, const ReportOptions& opt) {
  if (in.doses.empty()) return;
  const auto names = structure_order(in);
  std::map<std::string, double> target_gy;
  const auto targets = detail::find_targets(in);
  for (const auto& t : targets) target_gy[t.name] = t.dose_gy;
  // Paddick CI counts every voxel above the prescription, so it only means something for
  // the highest level (a lower level's isodose contains the higher targets).
  const std::string ci_target = targets.empty() ? std::string() : targets.front().name;
  o << "<h2>Dose metrics</h2>\n<table class=\"metrics\"><tr><th>Structure</th><th>Dose</th>"
       "<th>Volume (cc)</th><th>Dmean (Gy)</th><th>D0.1cc (Gy)</th><th>Dmax (Gy)</th><th>D99 (Gy)</th>"
       "<th>D95 (Gy)</th><th>D50 (Gy)</th><th>D2 (Gy)</th><th>HI</th><th>CI</th></tr>\n";
  for (const auto& n : names) {
    const core::Structure* st = in.structures.find(n);
    const bool target = is_target(st) || target_gy.count(n);
    bool first = true;
    std::size_t count = 0;
    for (const auto& d : in.doses) count += d.dvhs.count(n);
    if (!count) continue;
    for (const auto& d : in.doses) {
      auto it = d.dvhs.find(n);
      if (it == d.dvhs.end()) continue;
      const auto& h = it->second;
      o << "<tr>";
      if (first) o << "<td rowspan=\"" << count << "\">" << esc(n) << "</td>";
      first = false;
      o << "<td>" << esc(d.name) << "</td><td class=\"num\">" << fmt(h.volume_cc(), 1) << "</td>";
      if (h.empty()) {
        o << "<td colspan=\"9\" class=\"na\">empty</td></tr>\n";
        continue;
      }
      o << "<td class=\"num\">" << fmt(h.mean_gy(), 2) << "</td><td class=\"num\">"
        << fmt(h.dose_at_cc(0.1), 2) << "</td><td class=\"num\">" << fmt(h.max_gy(), 2) << "</td>";
      if (target) {
        o << "<td class=\"num\">" << fmt(h.dose_at_percent(99), 2) << "</td><td class=\"num\">"
          << fmt(h.dose_at_percent(95), 2) << "</td><td class=\"num\">" << fmt(h.dose_at_percent(50), 2)
          << "</td><td class=\"num\">" << fmt(h.dose_at_percent(2), 2) << "</td><td class=\"num\">"
          << fmt(planning::homogeneity_index(h), 3) << "</td>";
        std::string ci = "&ndash;";
        auto tg = target_gy.find(n);
        if (opt.conformity && n == ci_target && st && !st->mask.empty() && !d.dose.empty() &&
            tg != target_gy.end() && tg->second > 0) {
          const core::Image dose = d.dose.pixel_type() == core::PixelType::Float32
                                       ? d.dose
                                       : d.dose.cast(core::PixelType::Float32);
          ci = fmt(planning::conformity_index(dose, st->mask, tg->second), 3) + " <span class=\"note\">@" +
               fmt(tg->second, 1) + " Gy</span>";
        }
        o << "<td class=\"num\">" << ci << "</td>";
      } else {
        o << "<td colspan=\"6\"></td>";
      }
      o << "</tr>\n";
    }
  }
  o << "</table>\n<p class=\"note\">Dx: minimum dose to the hottest x % of the volume; D0.1cc: to "
       "the hottest 0.1 cm&sup3;. HI = (D2 &minus; D98) / D50 (ICRU 83). CI: Paddick conformity index "
       "of the highest target at its prescription.</p>\n";
}

void structures_section(std::ostringstream& o, const ReportInput& in) {
  o << "<h2>Structures and contouring quality</h2>\n<table class=\"structures\"><tr><th>Structure</th>"
       "<th>Type</th><th>Volume (cc)</th><th>Quality flags</th></tr>\n";
  for (const auto& s : in.structures) {
    const std::string type = core::to_dicom_string(s.type);
    o << "<tr><td><span class=\"swatch\" style=\"background:" << css_color(s.color) << "\"></span>"
      << esc(s.name) << "</td><td>" << esc(type.empty() ? "OTHER" : type) << "</td><td class=\"num\">"
      << (s.mask.empty() ? std::string("&ndash;") : fmt(s.volume_cc(), 1)) << "</td><td"
      // Only what asks for a look stands out ("CHECK: ..."; "flags: none" reads plain).
      << (s.description.find("CHECK") == std::string::npos ? ">" : " class=\"flag\">") << esc(s.description)
      << "</td></tr>\n";
  }
  o << "</table>\n";
}

}  // namespace

std::string render_html(const ReportInput& in, const ReportOptions& opt) {
  std::ostringstream o;
  const std::string title = in.title.empty() ? "Isoline report" : in.title;
  o << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" << esc(title)
    << "</title>\n<style>" << kCss << "</style>\n</head>\n<body>\n<h1>" << esc(title) << "</h1>\n";
  o << "<table class=\"info\">\n";
  for (const auto& [k, v] : in.info) o << "<tr><th>" << esc(k) << "</th><td>" << esc(v) << "</td></tr>\n";
  if (!in.doses.empty()) {  // a page of contours alone has no prescription to show
    o << "<tr><th>Prescription</th><td>" << fmt(detail::prescription(in), 2) << " Gy";
    const auto targets = detail::find_targets(in);
    if (!targets.empty()) {
      o << " (targets:";
      for (const auto& t : targets)
        o << ' ' << esc(t.name) << (t.dose_gy > 0 ? " " + fmt(t.dose_gy, 1) + " Gy" : "");
      o << ")";
    }
    o << "</td></tr>\n";
  }
  for (const auto& d : in.doses) {
    if (d.criteria.empty()) continue;
    int evaluated = 0;
    for (const auto& r : d.criteria) evaluated += r.evaluated;
    const int passed = planning::count_passed(d.criteria);
    // With sub-voxel values the cell is green only when both verdicts pass everything.
    const int fine = planning::count_subvoxel(d.criteria), passed_fine = planning::count_passed_subvoxel(d.criteria);
    const bool all = passed == evaluated && passed_fine == fine;
    o << "<tr><th>Criteria met: " << esc(d.name) << "</th><td" << (all ? " class=\"pass\"" : " class=\"fail\"")
      << ">" << passed << " of " << evaluated << " met";
    if (fine) o << " at mask-voxel centres; " << passed_fine << " of " << fine << " as a planning system computes them (sub-voxel)";
    if (std::size_t(evaluated) < d.criteria.size())
      o << " (" << d.criteria.size() - std::size_t(evaluated) << " not evaluated: structure missing)";
    std::string differ;
    for (const auto& r : d.criteria)
      if (r.verdict_differs()) differ += (differ.empty() ? "" : ", ") + r.criterion.description;
    if (!differ.empty()) o << "<br><span class=\"differs\">verdict differs: " << esc(differ) << "</span>";
    o << "</td></tr>\n";
  }
  o << "</table>\n";
  if (!in.warnings.empty()) {
    o << "<div class=\"warn\"><b>Warnings</b><ul>\n";
    for (const auto& w : in.warnings) o << "<li>" << esc(w) << "</li>\n";
    o << "</ul></div>\n";
  }
  views_section(o, in, opt);
  if (!in.doses.empty()) {
    o << "<h2>Dose-volume histograms</h2>\n";
    if (in.doses.size() > 1) {
      o << "<p class=\"note\">Line style per dose:";
      static const char* kStyle[] = {"solid", "dashed", "dotted", "dash-dot"};
      for (std::size_t i = 0; i < in.doses.size(); ++i)
        o << ' ' << esc(in.doses[i].name) << " = " << kStyle[i % 4] << (i + 1 < in.doses.size() ? "," : ".");
      o << "</p>\n";
    }
    dvh_svg(o, in, detail::prescription(in));
  }
  criteria_section(o, in);
  metrics_section(o, in, opt);
  structures_section(o, in);
  o << "<p class=\"note\">Generated by Isoline " << esc(core::version()) << " (" << esc(core::git_commit())
    << "). "
    << (in.doses.empty() ? "Automatic contours: review and edit them before any clinical use."
                         : "Achievable-dose estimate for planning support, not a treatment plan.")
    << "</p>\n</body>\n</html>\n";
  return o.str();
}

void write_html(const ReportInput& in, const std::string& path, const ReportOptions& opt) {
  // Check the destination first so a bad directory fails before the (slower) rendering.
  core::check_output_location(path, "write report");
  const std::string html = render_html(in, opt);
  core::write_file_atomic(path, html, "write report");
}

}  // namespace isoline::report
