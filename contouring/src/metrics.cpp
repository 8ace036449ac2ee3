// Dice, HD95 and surface Dice via ITK Maurer distance maps on the surface voxels.
#include "isoline/contouring/metrics.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <set>

#include "isoline/core/error.h"
#include "isoline/core/io.h"
#include "isoline/core/mask_ops.h"
#include "isoline/core/text.h"

namespace fs = std::filesystem;

namespace isoline::contouring {

using core::Geometry;
using core::Image;

namespace {

// Voxels of `m` (values != 0) with a 6-neighbour outside the mask or the grid.
Image surface(const Image& m) {
  const auto& g = m.geometry();
  Image s(g, core::PixelType::UInt8);
  const std::uint8_t* p = m.data<std::uint8_t>();
  std::uint8_t* o = s.data<std::uint8_t>();
  const std::int64_t nx = g.size[0], ny = g.size[1], nz = g.size[2];
  for (std::int64_t k = 0; k < nz; ++k)
    for (std::int64_t j = 0; j < ny; ++j)
      for (std::int64_t i = 0; i < nx; ++i) {
        const std::size_t v = g.offset(i, j, k);
        if (!p[v]) continue;
        const bool edge = i == 0 || j == 0 || k == 0 || i == nx - 1 || j == ny - 1 || k == nz - 1 ||
                          !p[v - 1] || !p[v + 1] || !p[v - nx] || !p[v + nx] ||
                          !p[v - nx * ny] || !p[v + nx * ny];
        o[v] = edge ? 1 : 0;
      }
  return s;
}

// Unsigned distance (mm) from every voxel to the nearest voxel of `set` (0 on it).
std::vector<float> distance_to(const Image& set) {
  const Image d = core::distance_map(set);
  return std::vector<float>(d.data<float>(), d.data<float>() + d.num_voxels());
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * double(v.size() - 1);
  const std::size_t lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  if (v[hi] == v[lo]) return v[lo];  // also keeps infinities finite-safe (no inf - inf)
  return v[lo] + (pos - double(lo)) * (v[hi] - v[lo]);
}

// Copy of `m` restricted to voxel box [lo, lo+size).
Image crop(const Image& m, const core::Index3& lo, const core::Index3& size) {
  Geometry g = m.geometry();
  g.origin = g.index_to_world({double(lo[0]), double(lo[1]), double(lo[2])});
  g.size = size;
  Image out(g, core::PixelType::UInt8);
  const std::uint8_t* p = m.data<std::uint8_t>();
  std::uint8_t* o = out.data<std::uint8_t>();
  for (std::int64_t k = 0; k < size[2]; ++k)
    for (std::int64_t j = 0; j < size[1]; ++j)
      for (std::int64_t i = 0; i < size[0]; ++i)
        o[g.offset(i, j, k)] = p[m.geometry().offset(i + lo[0], j + lo[1], k + lo[2])] ? 1 : 0;
  return out;
}

}  // namespace

MaskAgreement compare_masks(const Image& pred, const Image& ref, double tolerance_mm) {
  const char* op = "compare masks";
  for (const Image* m : {&pred, &ref}) {
    if (m->empty()) core::fail<core::InvalidInput>(op, "mask", "image is empty");
    if (m->pixel_type() != core::PixelType::UInt8)
      core::fail<core::InvalidInput>(op, "mask", "masks must be uint8");
  }
  if (!pred.geometry().same_grid(ref.geometry()))
    core::fail<core::InvalidInput>(op, "masks", "prediction and reference are not on the same grid");
  MaskAgreement r;
  const double vv = ref.geometry().voxel_volume_mm3() / 1000.0;
  const std::uint8_t* a = pred.data<std::uint8_t>();
  const std::uint8_t* b = ref.data<std::uint8_t>();
  std::size_t na = 0, nb = 0, nab = 0;
  for (std::size_t v = 0; v < pred.num_voxels(); ++v) {
    na += a[v] != 0;
    nb += b[v] != 0;
    nab += (a[v] != 0) && (b[v] != 0);
  }
  r.pred_cc = double(na) * vv;
  r.ref_cc = double(nb) * vv;
  if (na == 0 && nb == 0) {
    r.dice = 1;
    r.hd95_mm = 0;
    r.surface_dice = 1;
    return r;
  }
  r.dice = 2.0 * double(nab) / double(na + nb);
  if (na == 0 || nb == 0) {
    r.hd95_mm = std::numeric_limits<double>::infinity();
    r.surface_dice = 0;
    return r;
  }
  // Work in the bounding box of the union plus one voxel.
  Image uni = core::mask_union(pred, ref);
  auto bb = *core::bounding_box(uni);
  core::Index3 lo, size;
  for (int q = 0; q < 3; ++q) {
    lo[q] = std::max<std::int64_t>(bb[q] - 1, 0);
    const std::int64_t hi = std::min<std::int64_t>(bb[q + 3] + 1, ref.geometry().size[q] - 1);
    size[q] = hi - lo[q] + 1;
  }
  // Surfaces are taken on the full grid (a mask touching the image border has a surface
  // there), then cropped.
  Image sp = crop(surface(pred), lo, size), sr = crop(surface(ref), lo, size);
  std::vector<float> dp = distance_to(sp), dr = distance_to(sr);
  const std::uint8_t* spp = sp.data<std::uint8_t>();
  const std::uint8_t* srp = sr.data<std::uint8_t>();
  std::vector<double> d_pr, d_rp;
  for (std::size_t v = 0; v < sp.num_voxels(); ++v) {
    if (spp[v]) d_pr.push_back(dr[v]);
    if (srp[v]) d_rp.push_back(dp[v]);
  }
  r.hd95_mm = std::max(percentile(d_pr, 0.95), percentile(d_rp, 0.95));
  std::size_t within = 0;
  for (double d : d_pr) within += d <= tolerance_mm + 1e-9;
  for (double d : d_rp) within += d <= tolerance_mm + 1e-9;
  r.surface_dice = double(within) / double(d_pr.size() + d_rp.size());
  return r;
}

namespace {

std::string stem(const fs::path& p) {
  std::string n = p.filename().string();
  for (const char* ext : {".nii.gz", ".nii", ".nrrd", ".mha", ".mhd"}) {
    const std::string e = ext;
    if (n.size() > e.size() && n.compare(n.size() - e.size(), e.size(), e) == 0) return n.substr(0, n.size() - e.size());
  }
  return "";
}

// The structure masks of a case folder by name: its images, less those that are not masks
// (the CT, dose, possible-dose mask of an OpenKBP or phantom case folder).
std::map<std::string, fs::path> mask_files(const fs::path& dir) {
  std::map<std::string, fs::path> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) {
      std::string s = stem(e.path());
      if (!s.empty() && !core::is_not_mask_name(s)) out[s] = e.path();
    }
  return out;
}

// "a, b, c" of at most `max` items, then ", ...".
std::string list_text(const std::vector<std::string>& v, std::size_t max = 10) {
  std::string t;
  for (std::size_t n = 0; n < v.size() && n < max; ++n) t += (n ? ", " : "") + v[n];
  if (v.size() > max) t += ", ...";
  return t;
}

// World-space (LPS) box of a grid's voxels, their outer edges included: {lo x, y, z, hi x, y, z}.
std::array<double, 6> world_box(const Geometry& g) {
  std::array<double, 6> b = {HUGE_VAL, HUGE_VAL, HUGE_VAL, -HUGE_VAL, -HUGE_VAL, -HUGE_VAL};
  for (int c = 0; c < 8; ++c) {
    core::Vec3 ijk;
    for (int q = 0; q < 3; ++q) ijk[q] = (c >> q) & 1 ? double(g.size[q]) - 0.5 : -0.5;
    const core::Vec3 w = g.index_to_world(ijk);
    for (int q = 0; q < 3; ++q) {
      b[q] = std::min(b[q], w[q]);
      b[q + 3] = std::max(b[q + 3], w[q]);
    }
  }
  return b;
}

bool grids_overlap(const Geometry& a, const Geometry& b) {
  const auto x = world_box(a), y = world_box(b);
  for (int q = 0; q < 3; ++q)
    if (std::min(x[q + 3], y[q + 3]) - std::max(x[q], y[q]) <= 0) return false;
  return true;
}

// Names in `have` equal to `name` but for case ("BrainStem" for "Brainstem").
std::vector<std::string> case_variants(const std::string& name, const std::set<std::string>& have) {
  std::vector<std::string> v;
  for (const auto& h : have)
    if (h != name && core::to_lower(h) == core::to_lower(name)) v.push_back(h);
  return v;
}

}  // namespace

EvalResult evaluate_contours(const std::string& pred_dir, const std::string& ref_dir,
                             const std::vector<std::string>& structures, double tolerance_mm,
                             const core::Progress& progress) {
  const char* op = "evaluate contours";
  for (const auto& d : {pred_dir, ref_dir})
    if (!fs::is_directory(d)) core::fail<core::IoError>(op, d, "not a directory");
  EvalResult res;
  // Cases: sub-directories of ref_dir present in pred_dir, or the two directories themselves.
  struct Case {
    std::string id;
    std::map<std::string, fs::path> pred, ref;
  };
  std::vector<Case> cases;
  auto has_subdir = [](const std::string& d) {
    for (const auto& e : fs::directory_iterator(d))
      if (e.is_directory()) return true;
    return false;
  };
  for (const auto& d : {pred_dir, ref_dir})
    if (mask_files(d).empty() && !has_subdir(d))
      core::fail<core::InvalidInput>(op, d, "no mask files and no case folders");
  if (mask_files(ref_dir).empty()) {
    // Case folders not scored are named, so that a mean over fewer cases than intended does not
    // pass unnoticed: on one side only, or on both sides but without masks on one.
    std::vector<std::string> no_pred, no_ref, empty;
    for (const auto& e : fs::directory_iterator(ref_dir)) {
      if (!e.is_directory()) continue;
      const std::string id = e.path().filename().string();
      if (!fs::is_directory(fs::path(pred_dir) / id)) {
        no_pred.push_back(id);
        continue;
      }
      Case c{id, mask_files(fs::path(pred_dir) / id), mask_files(e.path())};
      if (c.pred.empty() || c.ref.empty())
        empty.push_back(id + (c.pred.empty() && c.ref.empty() ? " (neither side)"
                              : c.pred.empty()                ? " (no predicted masks)"
                                                              : " (no reference masks)"));
      else
        cases.push_back(std::move(c));
    }
    for (const auto& e : fs::directory_iterator(pred_dir))
      if (e.is_directory() && !fs::is_directory(fs::path(ref_dir) / e.path().filename()))
        no_ref.push_back(e.path().filename().string());
    for (auto* v : {&no_pred, &no_ref, &empty}) std::sort(v->begin(), v->end());
    if (!no_pred.empty())
      res.warnings.push_back(std::to_string(no_pred.size()) + " case folder(s) in " + ref_dir +
                             " without a prediction, not scored: " + list_text(no_pred));
    if (!no_ref.empty())
      res.warnings.push_back(std::to_string(no_ref.size()) + " case folder(s) in " + pred_dir +
                             " without a reference, not scored: " + list_text(no_ref));
    if (!empty.empty())
      res.warnings.push_back(std::to_string(empty.size()) + " case folder(s) on both sides without masks, not scored: " +
                             list_text(empty));
    std::sort(cases.begin(), cases.end(), [](const Case& x, const Case& y) {
      if (x.id.size() != y.id.size()) return x.id.size() < y.id.size();
      return x.id < y.id;
    });
    if (cases.empty())
      core::fail<core::InvalidInput>(op, ref_dir, "no mask files and no case sub-directories with masks shared with " +
                                                      pred_dir);
  } else {
    cases.push_back({"", mask_files(pred_dir), mask_files(ref_dir)});
  }
  // Default structures: every one predicted in any case, so that a case whose prediction lacks
  // a structure that the reference has is scored as missed, not left out of the mean.
  std::set<std::string> predicted, referenced, scored;
  for (const auto& c : cases) {
    for (const auto& [n, p] : c.pred) predicted.insert(n);
    for (const auto& [n, p] : c.ref) referenced.insert(n);
  }
  std::vector<std::string> names;
  for (const auto& n : structures.empty() ? std::vector<std::string>(predicted.begin(), predicted.end()) : structures)
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  for (std::size_t c = 0; c < cases.size(); ++c) {
    const Case& cs = cases[c];
    progress.update(double(c) / double(cases.size()), cs.id);
    std::vector<std::string> resampled, lost;
    std::string grids;  // the first differing pair, for the warning
    for (const auto& n : names) {
      auto r = cs.ref.find(n);
      if (r == cs.ref.end()) continue;  // not delineated: not scored
      scored.insert(n);
      const Image ref = core::read_mask(r->second.string(), op);
      Image pred;
      bool moved = false;
      auto p = cs.pred.find(n);
      if (p == cs.pred.end()) {
        pred = Image(ref.geometry(), core::PixelType::UInt8);
      } else {
        pred = core::read_mask(p->second.string(), op);
        const Geometry &pg = pred.geometry(), &rg = ref.geometry();
        if (!pg.same_grid(rg, 0.01)) {
          if (!grids_overlap(pg, rg))
            core::fail<core::InvalidInput>(op, p->second.string(),
                                           "the prediction does not overlap its reference " + r->second.string() +
                                               " in space (prediction: " + pg.summary() + "; reference: " +
                                               rg.summary() + "): a different patient or frame of reference?");
          if (grids.empty()) grids = pg.summary() + " against " + rg.summary();
          resampled.push_back(n);
          if (const double out = core::fraction_outside(pred, rg); out > 0) {
            char b[64];
            std::snprintf(b, sizeof b, "%.1f %%", 100 * out);
            lost.push_back(std::string(b) + " of " + n);
          }
          pred = core::resample(pred, rg, core::Interpolation::Nearest, 0.0);
          moved = true;
        }
      }
      EvalRow row{cs.id, n, compare_masks(pred, ref, tolerance_mm), ""};
      row.resampled = moved;
      res.rows.push_back(std::move(row));
    }
    if (!resampled.empty())
      res.warnings.push_back((cs.id.empty() ? std::string() : "case " + cs.id + ": ") +
                             "prediction on another grid than the reference (" + grids +
                             "), resampled onto the reference grid (nearest neighbour): " + list_text(resampled, 100) +
                             (lost.empty() ? std::string()
                                           : "; outside the reference grid, not scored: " + list_text(lost, 100)));
  }
  // Names that matched nothing, with the likely cause (a difference in case) where there is one.
  std::vector<std::string> never;
  for (const auto& n : names) {
    if (scored.count(n)) continue;
    const auto v = case_variants(n, referenced);
    never.push_back(v.empty() ? n : n + " (reference: " + list_text(v) + "; names are case-sensitive)");
  }
  if (!never.empty())
    res.warnings.push_back(std::string(structures.empty() ? "predicted" : "requested") +
                           " structure(s) without a reference of that name in any case, never scored: " +
                           list_text(never, 100));
  progress.done();
  return res;
}

std::vector<EvalRow> evaluate_dirs(const std::string& pred_dir, const std::string& ref_dir,
                                   const std::vector<std::string>& structures, double tolerance_mm,
                                   const core::Progress& progress) {
  return evaluate_contours(pred_dir, ref_dir, structures, tolerance_mm, progress).rows;
}

namespace {

std::string cc_text(double v, int decimals) {
  char b[48];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

// A range bound with `decimals` decimals, trailing zeros beyond `base` decimals dropped.
std::string bound_text(double v, int decimals, int base) {
  std::string t = cc_text(v, decimals);
  for (int d = decimals; d > base && t.back() == '0'; --d) t.pop_back();
  return t;
}

}  // namespace

std::string reference_flag(const std::string& structure, double ref_cc, const ModelCard& card) {
  auto it = card.expected.find(structure);
  if (it == card.expected.end() || !it->second.known) return "";
  const ExpectedRange& e = it->second;
  if (!(e.volume_cc_max > 0) || e.volume_cc_min > e.volume_cc_max) return "";  // no usable range
  if (ref_cc >= e.volume_cc_min && ref_cc <= e.volume_cc_max) return "";
  // One decimal (two for a range starting below 1 cc), more where needed so that the volume never prints equal to
  // the bound it crosses (5.388 cc against a minimum of 5.39 cc).
  const double crossed = ref_cc < e.volume_cc_min ? e.volume_cc_min : e.volume_cc_max;
  const int base = e.volume_cc_min < 1 ? 2 : 1;
  int d = base;
  while (d < 4 && cc_text(ref_cc, d) == cc_text(crossed, d)) ++d;
  const bool low = ref_cc < e.volume_cc_min;
  return "reference " + cc_text(ref_cc, d) + " cc, outside the usual " +
         bound_text(e.volume_cc_min, low ? d : base, base) + "-" + bound_text(e.volume_cc_max, low ? base : d, base) +
         " cc";
}

int flag_references(std::vector<EvalRow>& rows, const ModelCard& card) {
  int n = 0;
  for (auto& r : rows) {
    r.ref_flag = reference_flag(r.structure, r.m.ref_cc, card);
    n += !r.ref_flag.empty();
  }
  return n;
}

std::vector<EvalSummary> summarize(const std::vector<EvalRow>& rows) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<const EvalRow*>> by;
  for (const auto& r : rows) {
    if (!by.count(r.structure)) order.push_back(r.structure);
    by[r.structure].push_back(&r);
  }
  std::vector<EvalSummary> out;
  for (const auto& n : order) {
    EvalSummary s;
    s.structure = n;
    std::vector<double> d, h, sd, dp;
    for (const auto* r : by[n]) {
      d.push_back(r->m.dice);
      if (r->ref_flag.empty())
        dp.push_back(r->m.dice);
      else
        ++s.flagged;
      if (std::isfinite(r->m.hd95_mm))
        h.push_back(r->m.hd95_mm);
      else
        ++s.hd95_undefined;
      sd.push_back(r->m.surface_dice);
    }
    s.cases = static_cast<int>(d.size());
    auto mean = [](const std::vector<double>& v) {
      double t = 0;
      for (double x : v) t += x;
      return v.empty() ? 0.0 : t / double(v.size());
    };
    s.dice_mean = mean(d);
    s.dice_median = percentile(d, 0.5);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    s.hd95_mean = h.empty() ? nan : mean(h);
    s.hd95_median = h.empty() ? nan : percentile(h, 0.5);
    s.sdice_mean = mean(sd);
    s.dice_mean_plausible = dp.empty() ? nan : mean(dp);
    out.push_back(s);
  }
  return out;
}

namespace {

std::string fmt2(double v, const char* f = "%.2f") {
  char b[32];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

}  // namespace

std::string dice_plot_svg(const std::vector<EvalRow>& rows, const std::string& title) {
  const std::vector<EvalSummary> sum = summarize(rows);
  const double col = 84, left = 48, top = title.empty() ? 24 : 44, plot_h = 260, bottom = 44;
  const double width = left + col * double(std::max<std::size_t>(sum.size(), 1)) + 16;
  const double height = top + plot_h + bottom;
  auto y_of = [&](double d) { return top + plot_h * (1.0 - std::clamp(d, 0.0, 1.0)); };
  std::string o;
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + fmt2(width, "%.0f") + "\" height=\"" +
       fmt2(height, "%.0f") + "\" viewBox=\"0 0 " + fmt2(width, "%.0f") + " " + fmt2(height, "%.0f") +
       "\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  if (!title.empty())
    o += "<text x=\"" + fmt2(left, "%.0f") + "\" y=\"20\" font-size=\"13\">" + core::xml_escape(title) + "</text>\n";
  for (int g = 0; g <= 5; ++g) {  // grid and Dice axis
    const double v = g / 5.0, y = y_of(v);
    o += "<line x1=\"" + fmt2(left, "%.0f") + "\" x2=\"" + fmt2(width - 16, "%.0f") + "\" y1=\"" + fmt2(y, "%.1f") +
         "\" y2=\"" + fmt2(y, "%.1f") + "\" stroke=\"#ddd\"/>\n<text x=\"" + fmt2(left - 6, "%.0f") + "\" y=\"" +
         fmt2(y + 4, "%.1f") + "\" text-anchor=\"end\">" + fmt2(v, "%.1f") + "</text>\n";
  }
  o += "<text transform=\"translate(12," + fmt2(top + plot_h / 2, "%.0f") +
       ") rotate(-90)\" text-anchor=\"middle\">Dice</text>\n";
  for (std::size_t i = 0; i < sum.size(); ++i) {
    const EvalSummary& s = sum[i];
    const double cx = left + col * (double(i) + 0.5);
    std::size_t k = 0;
    for (const auto& r : rows) {
      if (r.structure != s.structure) continue;
      // Deterministic spread: cases side by side across the column, in a repeating pattern.
      const double x = cx + (double((k++ * 7) % 11) - 5.0) * 3.2;
      const double y = y_of(r.m.dice);
      const std::string tip = "<title>" + core::xml_escape((r.case_id.empty() ? s.structure : r.case_id) + ": Dice " +
                                                     fmt2(r.m.dice, "%.3f") +
                                                     (r.ref_flag.empty() ? "" : " (" + r.ref_flag + ")")) +
                              "</title>";
      if (r.ref_flag.empty())
        o += "<circle cx=\"" + fmt2(x, "%.1f") + "\" cy=\"" + fmt2(y, "%.1f") +
             "\" r=\"3\" fill=\"#1f77b4\" fill-opacity=\"0.75\">" + tip + "</circle>\n";
      else
        o += "<path d=\"M" + fmt2(x - 4, "%.1f") + " " + fmt2(y - 4, "%.1f") + "l8 8m0 -8l-8 8\" stroke=\"#d62728\" "
             "stroke-width=\"2\">" + tip + "</path>\n";
    }
    const double ym = y_of(s.dice_mean);
    o += "<line x1=\"" + fmt2(cx - 24, "%.1f") + "\" x2=\"" + fmt2(cx + 24, "%.1f") + "\" y1=\"" + fmt2(ym, "%.1f") +
         "\" y2=\"" + fmt2(ym, "%.1f") + "\" stroke=\"black\" stroke-width=\"2\"/>\n";
    o += "<text x=\"" + fmt2(cx, "%.1f") + "\" y=\"" + fmt2(top - 6, "%.0f") + "\" text-anchor=\"middle\">" +
         fmt2(s.dice_mean) + "</text>\n";
    o += "<text x=\"" + fmt2(cx, "%.1f") + "\" y=\"" + fmt2(top + plot_h + 16, "%.0f") +
         "\" text-anchor=\"middle\">" + core::xml_escape(s.structure) + "</text>\n<text x=\"" + fmt2(cx, "%.1f") +
         "\" y=\"" + fmt2(top + plot_h + 30, "%.0f") + "\" text-anchor=\"middle\" fill=\"#555\">n=" +
         std::to_string(s.cases) + "</text>\n";
  }
  o += "</svg>\n";
  return o;
}

}  // namespace isoline::contouring
