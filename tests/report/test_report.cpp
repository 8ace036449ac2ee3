#include <png.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "isoline/core/dose_style.h"
#include "isoline/core/error.h"
#include "isoline/phantoms/phantoms.h"
#include "isoline/report/report.h"
#include "tests/report/report_fixtures.h"
#include "tests/test_util.h"

namespace isoline {
namespace {

using core::Geometry;
using core::Image;
using core::Vec3;

struct Decoded {
  int w = 0, h = 0;
  std::vector<std::uint8_t> rgb;
};

/// Decodes PNG bytes with libpng (simplified API); fails the test when invalid.
Decoded decode_png(const std::vector<std::uint8_t>& bytes) {
  Decoded d;
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&img, bytes.data(), bytes.size())) {
    ADD_FAILURE() << "not a PNG: " << img.message;
    return d;
  }
  img.format = PNG_FORMAT_RGB;
  d.w = int(img.width);
  d.h = int(img.height);
  d.rgb.resize(PNG_IMAGE_SIZE(img));
  if (!png_image_finish_read(&img, nullptr, d.rgb.data(), 0, nullptr)) {
    ADD_FAILURE() << "PNG decode failed: " << img.message;
    d = {};
  }
  return d;
}

std::vector<std::uint8_t> from_base64(const std::string& s) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::vector<std::uint8_t> out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    const int v = val(c);
    if (v < 0) continue;
    acc = (acc << 6) | std::uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(std::uint8_t((acc >> bits) & 0xff));
    }
  }
  return out;
}

std::vector<std::vector<std::uint8_t>> embedded_pngs(const std::string& html) {
  std::vector<std::vector<std::uint8_t>> out;
  const std::string key = "src=\"data:image/png;base64,";
  for (std::size_t p = html.find(key); p != std::string::npos; p = html.find(key, p + 1)) {
    const std::size_t b = p + key.size(), e = html.find('"', b);
    out.push_back(from_base64(html.substr(b, e - b)));
  }
  return out;
}

double grey_variance(const Decoded& d) {
  double s = 0, s2 = 0;
  const std::size_t n = std::size_t(d.w) * d.h;
  for (std::size_t i = 0; i < n; ++i) {
    const double g = (d.rgb[3 * i] + d.rgb[3 * i + 1] + d.rgb[3 * i + 2]) / 3.0;
    s += g;
    s2 += g * g;
  }
  return n ? s2 / n - (s / n) * (s / n) : 0.0;
}

std::size_t count(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

/// A small anisotropic CT (ellipse of soft tissue with a "bone" rod) and three structures.
struct Small {
  Image ct;
  core::StructureSet ss;
};

Small make_small() {
  Geometry g;
  g.size = {48, 40, 16};
  g.spacing = {2.0, 2.0, 5.0};
  g.origin = {-47, -39, -37.5};
  Small s;
  s.ct = Image(g, core::PixelType::Int16);
  Image body(g, core::PixelType::UInt8), ptv(g, core::PixelType::UInt8), oar(g, core::PixelType::UInt8);
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i) {
        const Vec3 w = g.index_to_world({double(i), double(j), double(k)});
        const bool in_body = (w[0] / 40) * (w[0] / 40) + (w[1] / 30) * (w[1] / 30) <= 1 && std::abs(w[2]) < 30;
        const bool bone = std::hypot(w[0], w[1] - 15) < 6;
        s.ct.at<std::int16_t>(i, j, k) = std::int16_t(in_body ? (bone ? 700 : 40 + (i % 3) * 5) : -1000);
        body.at<std::uint8_t>(i, j, k) = in_body;
        ptv.at<std::uint8_t>(i, j, k) = std::hypot(w[0] - 12, w[1] + 5, w[2]) < 12;
        oar.at<std::uint8_t>(i, j, k) = bone;
      }
  s.ss.add("Body", body);
  s.ss.add("PTV60", ptv);
  s.ss.add("SpinalCord", oar);
  s.ss.find("SpinalCord")->description = "auto-contour; CHECK: low confidence (test flag)";
  s.ss.find("Body")->description = "auto-contour; flags: none";
  return s;
}

/// Dose: 60 Gy in the PTV, 20 Gy in the rest of the body (exact values), on the CT grid.
Image step_dose(const Small& s, double in_ptv, double elsewhere) {
  Image d(s.ct.geometry(), core::PixelType::Float32);
  const auto* ptv = s.ss.get("PTV60").mask.data<std::uint8_t>();
  const auto* body = s.ss.get("Body").mask.data<std::uint8_t>();
  float* p = d.data<float>();
  for (std::size_t n = 0; n < d.num_voxels(); ++n) p[n] = ptv[n] ? float(in_ptv) : (body[n] ? float(elsewhere) : 0.f);
  return d;
}

report::ReportInput small_input(const Small& s) {
  report::ReportInput in;
  in.title = "Test <report> & co";
  in.info = {{"Patient", "TEST-1"}, {"Plan", "synthetic"}};
  in.warnings = {"a test warning"};
  in.ct = s.ct;
  in.structures = s.ss;
  in.prescription_gy = 60;
  return in;
}

TEST(Report, HtmlIsSelfContainedWithThreeReadableViews) {
  const Small s = make_small();
  auto in = small_input(s);
  in.doses.push_back(test::evaluate_set("Plan", step_dose(s, 60, 20), s.ss, {}));
  const std::string html = report::render_html(in);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(html.find("http:"), std::string::npos);
  EXPECT_EQ(html.find("https:"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  // Every src= is a data URI; every url( refers to an element of the document.
  EXPECT_EQ(count(html, "src=\""), count(html, "src=\"data:image/png;base64,"));
  EXPECT_EQ(count(html, "url("), count(html, "url(#"));
  // Escaping of user text.
  EXPECT_NE(html.find("Test &lt;report&gt; &amp; co"), std::string::npos);
  EXPECT_NE(html.find("a test warning"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"flag\">auto-contour; CHECK: low confidence (test flag)</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>auto-contour; flags: none</td>"), std::string::npos);  // nothing to check: plain
  const auto pngs = embedded_pngs(html);
  ASSERT_EQ(pngs.size(), 3u);
  for (const auto& bytes : pngs) {
    const Decoded d = decode_png(bytes);
    EXPECT_GT(d.w, 100);
    EXPECT_GT(d.h, 50);
    EXPECT_GT(grey_variance(d), 100.0);  // not a flat picture
  }
}

TEST(Report, ViewsKeepThePhysicalAspectRatio) {
  const Small s = make_small();  // 96 x 80 x 80 mm with 2 x 2 x 5 mm voxels
  auto in = small_input(s);
  in.structures = core::StructureSet();  // the whole CT is shown without a body
  const auto v = report::render_views(in, -1);
  ASSERT_EQ(v.size(), 3u);
  const double ext[3] = {96, 80, 80};  // x, y, z
  auto ratio = [](const report::Picture& p) { return double(p.width) / p.height; };
  EXPECT_NEAR(ratio(v[0]), ext[0] / ext[1], 0.03);  // axial x : y
  EXPECT_NEAR(ratio(v[1]), ext[0] / ext[2], 0.03);  // coronal x : z
  EXPECT_NEAR(ratio(v[2]), ext[1] / ext[2], 0.03);  // sagittal y : z
  for (const auto& p : v) {
    EXPECT_EQ(std::max(p.width, p.height), report::ReportOptions{}.view_box_px);
    EXPECT_NEAR(p.geometry.spacing[0], p.geometry.spacing[1], 1e-9);
  }
}

TEST(Report, DvhPlotHasOnePathPerStructurePerDoseSet) {
  const Small s = make_small();
  auto in = small_input(s);
  in.doses.push_back(test::evaluate_set("Planned", step_dose(s, 60, 20), s.ss, {}));
  in.doses.push_back(test::evaluate_set("Unadapted", step_dose(s, 55, 25), s.ss, {}));
  in.doses.push_back(test::evaluate_set("Adapted", step_dose(s, 61, 18), s.ss, {}));
  const std::string html = report::render_html(in);
  EXPECT_EQ(count(html, "<path class=\"dvh\""), 3u * s.ss.size());
  for (const auto& set : in.doses)
    for (const auto& st : s.ss)
      EXPECT_EQ(count(html, "data-set=\"" + set.name + "\" data-structure=\"" + st.name + "\""), 1u)
          << set.name << " " << st.name;
  // Three rows of three views (one per dose set), one shared colour scale.
  EXPECT_EQ(embedded_pngs(html).size(), 9u);
  EXPECT_NE(html.find("dashed"), std::string::npos);
  EXPECT_NE(html.find("Dose (Gy)"), std::string::npos);
  EXPECT_NE(html.find("Volume (%)"), std::string::npos);
}

/// The result cell that follows the row of `criterion` in the column of dose set `set`.
std::string result_of(const std::string& html, const std::string& criterion, int set) {
  const std::size_t row = html.find("<tr><td>" + criterion + "</td>");
  if (row == std::string::npos) return "missing row";
  const std::size_t end = html.find("</tr>", row);
  const std::string tr = html.substr(row, end - row);
  std::vector<std::string> classes;
  const std::regex cell("<td class=\"(pass|fail|na)\">");
  for (auto it = std::sregex_iterator(tr.begin(), tr.end(), cell); it != std::sregex_iterator(); ++it)
    classes.push_back((*it)[1]);
  return set < int(classes.size()) ? classes[std::size_t(set)] : "missing cell";
}

TEST(Report, CriteriaTableShowsPassFailAndNotEvaluated) {
  const Small s = make_small();
  auto in = small_input(s);
  std::vector<planning::Criterion> crit = {
      {"PTV60", "D95%", false, 57.0, "PTV60 D95% >= 57 Gy"},
      {"SpinalCord", "Dmax", true, 10.0, "SpinalCord Dmax <= 10 Gy"},
      {"SpinalCord", "Dmean", true, 30.0, "SpinalCord Dmean <= 30 Gy"},
      {"Parotid", "Dmean", true, 26.0, "Parotid Dmean <= 26 Gy"},
  };
  // Set 1: PTV 60 Gy, cord 20 Gy -> pass, fail, pass, n/a. Set 2: PTV 50, cord 5 -> fail,
  // pass, pass, n/a.
  in.doses.push_back(test::evaluate_set("A", step_dose(s, 60, 20), s.ss, crit));
  in.doses.push_back(test::evaluate_set("B", step_dose(s, 50, 5), s.ss, crit));
  const std::string html = report::render_html(in);
  EXPECT_EQ(result_of(html, "PTV60 D95% &gt;= 57 Gy", 0), "pass");
  EXPECT_EQ(result_of(html, "SpinalCord Dmax &lt;= 10 Gy", 0), "fail");
  EXPECT_EQ(result_of(html, "SpinalCord Dmean &lt;= 30 Gy", 0), "pass");
  EXPECT_EQ(result_of(html, "Parotid Dmean &lt;= 26 Gy", 0), "na");
  EXPECT_EQ(result_of(html, "PTV60 D95% &gt;= 57 Gy", 1), "fail");
  EXPECT_EQ(result_of(html, "SpinalCord Dmax &lt;= 10 Gy", 1), "pass");
  EXPECT_EQ(result_of(html, "Parotid Dmean &lt;= 26 Gy", 1), "na");
  // The value shown is the evaluated one.
  EXPECT_NE(html.find("<td class=\"num\">20.00 Gy</td><td class=\"fail\">"), std::string::npos);
  EXPECT_NE(html.find("2 of 3 evaluated (4 criteria)"), std::string::npos);
  // Metrics: the target row has HI and CI columns; the step dose is uniform in the PTV.
  EXPECT_NE(html.find("<td class=\"num\">60.00</td>"), std::string::npos);
}

// Session-18 audit, defect 2: where the sub-voxel value (about what a planning system computes
// from RS + RD) gives the other verdict than the voxel-centre value, the report says so in the
// cell, marks the row, and lists the criteria above the table and in the summary.
TEST(Report, CriteriaTableMarksAVerdictThatDiffersAsATpsComputesIt) {
  const Small s = make_small();
  auto in = small_input(s);
  std::vector<planning::Criterion> crit = {
      {"PTV60", "D95%", false, 57.0, "PTV60 D95% >= 57 Gy"},
      {"SpinalCord", "Dmax", true, 25.0, "SpinalCord Dmax <= 25 Gy"},
  };
  in.doses.push_back(test::evaluate_set("Plan", step_dose(s, 60, 20), s.ss, crit));
  auto& c = in.doses.back().criteria;
  ASSERT_TRUE(c[0].pass && c[1].pass);
  c[0].value_subvoxel = 55.5, c[0].pass_subvoxel = false;  // PTV: FAIL as a TPS computes it
  c[1].value_subvoxel = 21.0, c[1].pass_subvoxel = true;   // cord: PASS both ways
  const std::string html = report::render_html(in);
  const std::size_t row = html.find("<tr class=\"differs\"><td>PTV60 D95% &gt;= 57 Gy</td>");
  ASSERT_NE(row, std::string::npos) << html.substr(html.find("<table class=\"criteria\">"), 3000);
  const std::string tr = html.substr(row, html.find("</tr>", row) - row);
  EXPECT_NE(tr.find("<td class=\"pass\">PASS at voxel centres<br><span class=\"differs\""), std::string::npos) << tr;
  EXPECT_NE(tr.find("FAIL as a TPS computes it</span>"), std::string::npos) << tr;
  EXPECT_NE(tr.find("<span class=\"differs\""), tr.rfind("<span class=\"differs\""));  // the value is highlighted too
  EXPECT_NE(tr.find("55.50 Gy sub-voxel"), std::string::npos) << tr;
  // The row that agrees is as before: PASS, the sub-voxel value grey.
  EXPECT_EQ(result_of(html, "SpinalCord Dmax &lt;= 25 Gy", 0), "pass");
  EXPECT_NE(html.find("<span class=\"sub\""), std::string::npos);
  EXPECT_NE(html.find("<b>The verdict differs as a planning system computes it</b>"), std::string::npos);
  EXPECT_NE(html.find("for 1 criterion: PTV60 D95% &gt;= 57 Gy."), std::string::npos);
  // The summary at the top: both counts, red, naming the criterion.
  EXPECT_NE(html.find("<td class=\"fail\">2 of 2 met at mask-voxel centres; 1 of 2 as a planning system computes them "
                      "(sub-voxel)<br><span class=\"differs\">verdict differs: PTV60 D95% &gt;= 57 Gy</span>"),
            std::string::npos);
  // Without a difference no such marks.
  c[0].value_subvoxel = 58.0, c[0].pass_subvoxel = true;
  const std::string same = report::render_html(in);
  EXPECT_EQ(same.find("class=\"differs\""), std::string::npos);
  EXPECT_NE(same.find("<td class=\"pass\">2 of 2 met at mask-voxel centres; 2 of 2 as a planning system"), std::string::npos);
}

bool coloured(const report::Picture& p, int u, int v) {
  const std::uint8_t* q = &p.rgb[(std::size_t(v) * p.width + u) * 3];
  return !(q[0] == q[1] && q[1] == q[2]);
}

TEST(Report, CoarseOffsetDoseLandsWhereItBelongs) {
  // CT: 1 mm voxels; dose: 4 mm voxels with an origin offset of 1.3 mm, non-zero only in a
  // cube at patient left (+x), anterior (-y), superior (+z).
  Geometry g;
  g.size = {100, 90, 60};
  g.spacing = {1.0, 1.0, 1.0};
  g.origin = {-49.5, -44.5, -29.5};
  report::ReportInput in;
  in.ct = Image(g, core::PixelType::Int16);
  std::int16_t* c = in.ct.data<std::int16_t>();
  for (std::size_t n = 0; n < in.ct.num_voxels(); ++n) c[n] = std::int16_t(n % 7 * 10);
  Geometry dg;
  dg.size = {30, 28, 20};
  dg.spacing = {4.0, 4.0, 4.0};
  dg.origin = {-58.7, -56.7, -38.7};
  Image dose(dg, core::PixelType::Float32);
  const Vec3 lo{10, -30, 4}, hi{34, -10, 20};  // the cube (mm, LPS)
  for (std::int64_t k = 0; k < dg.size[2]; ++k)
    for (std::int64_t j = 0; j < dg.size[1]; ++j)
      for (std::int64_t i = 0; i < dg.size[0]; ++i) {
        const Vec3 w = dg.index_to_world({double(i), double(j), double(k)});
        bool inside = true;
        for (int a = 0; a < 3; ++a) inside = inside && w[a] >= lo[a] && w[a] <= hi[a];
        dose.at<float>(i, j, k) = inside ? 50.0f : 0.0f;
      }
  in.doses.push_back({"Plan", dose, {}, {}});
  in.prescription_gy = 50;
  in.focus = Vec3{22, -20, 12};
  report::ReportOptions opt;
  opt.isodoses.clear();
  const auto views = report::render_views(in, 0, opt);
  ASSERT_EQ(views.size(), 3u);
  const double tol = 4.5;  // one dose voxel of interpolation fall-off, plus rounding
  for (int v = 0; v < 3; ++v) {
    const auto& p = views[std::size_t(v)];
    std::size_t inside_col = 0, inside_n = 0, outside_col = 0, outside_n = 0;
    for (int y = 26; y < p.height - 26; ++y)  // skip the burnt-in labels and scale bar
      for (int x = 26; x < p.width - 26; ++x) {
        const Vec3 w = p.geometry.index_to_world({double(x), double(y), 0.0});
        bool deep = true, far = false;
        for (int a = 0; a < 3; ++a) {
          deep = deep && w[a] > lo[a] + tol && w[a] < hi[a] - tol;
          far = far || w[a] < lo[a] - tol || w[a] > hi[a] + tol;
        }
        if (deep) {
          ++inside_n;
          inside_col += coloured(p, x, y);
        } else if (far) {
          ++outside_n;
          outside_col += coloured(p, x, y);
        }
      }
    EXPECT_GT(inside_n, 100u) << "view " << v;
    EXPECT_EQ(inside_col, inside_n) << "view " << v;
    EXPECT_GT(outside_n, 1000u) << "view " << v;
    EXPECT_EQ(outside_col, 0u) << "view " << v;
  }
  // Orientation: patient left (+x) is on the image right in the axial and coronal views,
  // anterior (-y) up in the axial view and left in the sagittal view, superior up.
  auto centroid = [](const report::Picture& p) {
    double su = 0, sv = 0, n = 0;
    for (int y = 0; y < p.height; ++y)
      for (int x = 0; x < p.width; ++x)
        if (coloured(p, x, y) && y > 26 && y < p.height - 26) {
          su += x;
          sv += y;
          ++n;
        }
    return std::pair<double, double>{su / n / p.width, sv / n / p.height};
  };
  const auto ax = centroid(views[0]), co = centroid(views[1]), sa = centroid(views[2]);
  EXPECT_GT(ax.first, 0.5);   // left of patient -> right of image
  EXPECT_LT(ax.second, 0.5);  // anterior -> up
  EXPECT_GT(co.first, 0.5);
  EXPECT_LT(co.second, 0.5);  // superior -> up
  EXPECT_LT(sa.first, 0.5);   // anterior -> left
  EXPECT_LT(sa.second, 0.5);
}

TEST(Report, AtomicWriteAndClearErrors) {
  test::TempDir dir;
  const Small s = make_small();
  auto in = small_input(s);
  const std::string bad = dir.file("no/such/dir/report.html");
  try {
    report::write_html(in, bad);
    FAIL() << "expected IoError";
  } catch (const core::IoError& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(bad));

  const std::string good = dir.file("report.html");
  report::write_html(in, good);
  ASSERT_TRUE(std::filesystem::exists(good));
  const auto size = std::filesystem::file_size(good);
  EXPECT_GT(size, 1000u);
  // A failing render (dose index out of range in PNG output, empty CT in HTML) leaves the
  // existing file untouched and no temporary behind.
  auto broken = in;
  broken.ct = Image();
  EXPECT_THROW(report::write_html(broken, good), core::InvalidInput);
  EXPECT_EQ(std::filesystem::file_size(good), size);
  EXPECT_THROW(report::write_view_pngs(in, dir.file("v_"), 3), core::InvalidInput);
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    ++files;
    EXPECT_EQ(e.path().filename().string().rfind(".", 0), std::string::npos) << e.path();
  }
  EXPECT_EQ(files, 1u);

  const auto paths = report::write_view_pngs(in, dir.file("v_"), -1);
  ASSERT_EQ(paths.size(), 3u);
  for (const auto& p : paths) {
    std::ifstream f(p, std::ios::binary);
    const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(f)), {});
    EXPECT_GT(decode_png(bytes).w, 0) << p;
  }
}

TEST(Report, SamePatientStoredHfsOrFfsGivesTheSameViews) {
  // The FFS grid stores the same voxel centres in another order (rows towards patient
  // right, slices towards inferior): the views are sampled in patient space, so they agree.
  phantoms::HeadNeckOptions o;
  o.size = {64, 64, 30};
  o.spacing = {4.0, 4.0, 6.0};
  o.noise_sd_hu = 0;
  const auto hfs = phantoms::make_head_neck(o);
  o.position = phantoms::PatientPosition::FFS;
  const auto ffs = phantoms::make_head_neck(o);
  ASSERT_FALSE(hfs.ct.geometry().same_grid(ffs.ct.geometry()));
  const std::vector<std::pair<std::string, double>> targets = {{"PTV70", 70}};
  auto input = [&](const phantoms::Phantom& ph) {
    report::ReportInput in;
    in.ct = ph.ct;
    in.structures = ph.structures;
    in.doses.push_back({"Plan", test::synthetic_plan_dose(ph.ct, ph.structures, targets, 8.0), {}, {}});
    return in;
  };
  for (int dose_index : {-1, 0}) {
  const auto a = report::render_views(input(hfs), dose_index), b = report::render_views(input(ffs), dose_index);
  for (int v = 0; v < 3; ++v) {
    const auto& pa = a[std::size_t(v)];
    const auto& pb = b[std::size_t(v)];
    ASSERT_EQ(pa.width, pb.width);
    ASSERT_EQ(pa.height, pb.height);
    std::size_t differ = 0;
    for (std::size_t n = 0; n < std::size_t(pa.width) * pa.height; ++n)
      for (int c = 0; c < 3; ++c) differ += std::abs(int(pa.rgb[3 * n + c]) - int(pb.rgb[3 * n + c])) > 8;
    EXPECT_LT(double(differ) / (3.0 * pa.width * pa.height), 0.01) << "view " << v << " dose " << dose_index;
  }
  }
}

TEST(Report, DoseSetOnItsOwnAnatomy) {
  // Adaptive layout: the planned dose on the planning CT (here: the same patient 30 mm
  // towards patient left), the others on the report's (daily) CT.
  const Small daily = make_small();
  Small planning = make_small();
  Geometry g = planning.ct.geometry();
  g.origin[0] += 30.0;
  planning.ct.set_geometry(g);
  core::StructureSet moved(g);
  for (const auto& st : planning.ss) {
    core::Structure c = st;
    c.mask = st.mask.clone();
    c.mask.set_geometry(g);
    moved.add(c);
  }
  Image planned_dose = step_dose(planning, 60, 20);
  planned_dose.set_geometry(g);
  auto in = small_input(daily);
  report::DoseSet planned("Planned", planned_dose);
  planned.ct = planning.ct;
  planned.structures = moved;
  in.doses.push_back(planned);
  in.doses.emplace_back("Unadapted", step_dose(daily, 60, 20));
  const auto a = report::render_views(in, 0), b = report::render_views(in, 1);
  // The sagittal plane goes through each anatomy's PTV centre (x = 12 mm + shift).
  EXPECT_NEAR(a[2].geometry.origin[0] - b[2].geometry.origin[0], 30.0, 1.0);
  // Same anatomy relative to the picture: the pictures agree.
  ASSERT_EQ(a[0].width, b[0].width);
  ASSERT_EQ(a[0].height, b[0].height);
  std::size_t differ = 0;
  for (std::size_t n = 0; n < a[0].rgb.size(); ++n) differ += std::abs(int(a[0].rgb[n]) - int(b[0].rgb[n])) > 8;
  EXPECT_LT(double(differ) / double(a[0].rgb.size()), 0.01);
  EXPECT_EQ(embedded_pngs(report::render_html(in)).size(), 6u);
}

TEST(Report, FigurePngHasOneRowPerDoseSet) {
  test::TempDir dir;
  const Small s = make_small();
  auto in = small_input(s);
  in.doses.push_back(test::evaluate_set("Planned", step_dose(s, 60, 20), s.ss, {}));
  const std::string one = dir.file("one.png");
  report::write_figure_png(in, one);
  in.doses.push_back(test::evaluate_set("Adapted", step_dose(s, 61, 18), s.ss, {}));
  const std::string two = dir.file("two.png");
  report::write_figure_png(in, two);
  auto read = [](const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return decode_png(std::vector<std::uint8_t>((std::istreambuf_iterator<char>(f)), {}));
  };
  const Decoded d1 = read(one), d2 = read(two);
  EXPECT_EQ(d1.w, d2.w);
  const int row = report::render_views(in, 0)[1].height;  // the tallest view of the small CT
  EXPECT_GE(d2.h - d1.h, row);
  EXPECT_GT(grey_variance(d2), 100.0);
}

TEST(Report, HeadNeckPhantomWithSyntheticDose) {
  phantoms::HeadNeckOptions o;
  o.size = {96, 96, 40};
  o.spacing = {3.0, 3.0, 6.0};
  o.noise_sd_hu = 0;
  const phantoms::Phantom ph = phantoms::make_head_neck(o);
  const std::vector<std::pair<std::string, double>> targets = {{"PTV70", 70}, {"PTV63", 63}, {"PTV56", 56}};
  const Image dose = test::synthetic_plan_dose(ph.ct, ph.structures, targets, 6.0);
  const auto crit = planning::load_criteria(std::string(ISOLINE_SOURCE_DIR) + "/planning/criteria/hn.json");
  report::ReportInput in;
  in.title = "Phantom";
  in.ct = ph.ct;
  in.structures = ph.structures;
  in.doses.push_back(test::evaluate_set("Synthetic", dose, ph.structures, crit));
  const std::string html = report::render_html(in);
  // Prescription from the highest target name, criteria all evaluated.
  EXPECT_NE(html.find("70.00 Gy (targets: PTV70 70.0 Gy"), std::string::npos);
  const std::size_t t0 = html.find("<table class=\"criteria\">");
  ASSERT_NE(t0, std::string::npos);
  const std::string table = html.substr(t0, html.find("</table>", t0) - t0);
  EXPECT_EQ(count(table, "<td class=\"na\">not evaluated</td>"), 0u);
  EXPECT_EQ(count(table, "<td class=\"pass\">") + count(table, "<td class=\"fail\">"), crit.size());
  EXPECT_NE(html.find("<tr><th>Criteria met: Synthetic</th>"), std::string::npos);
  EXPECT_EQ(count(html, "<path class=\"dvh\""), ph.structures.size());
  const auto pngs = embedded_pngs(html);
  ASSERT_EQ(pngs.size(), 3u);
  for (const auto& b : pngs) {
    const Decoded d = decode_png(b);
    EXPECT_GE(std::max(d.w, d.h), 400);  // upscaled from 3 mm voxels
    EXPECT_GT(grey_variance(d), 200.0);
    // The views go through the PTV70 centre: a good share of coloured (dose) pixels.
    std::size_t col = 0;
    for (std::size_t i = 0; i < std::size_t(d.w) * d.h; ++i)
      col += !(d.rgb[3 * i] == d.rgb[3 * i + 1] && d.rgb[3 * i + 1] == d.rgb[3 * i + 2]);
    EXPECT_GT(double(col) / (double(d.w) * d.h), 0.05);
  }
}

TEST(Report, AxialSeriesSpreadsOverTheStructuresHeadFirst) {
  const Small s = make_small();  // SpinalCord over the whole CT (z -40..40 mm), the body |z| < 30
  auto in = small_input(s);
  const auto series = report::render_axial_series(in, 4);
  ASSERT_EQ(series.size(), 4u);
  const double want[4] = {30, 10, -10, -30};  // centres of 4 equal parts of -40..40, head first
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(series[std::size_t(i)].geometry.origin[2], want[i], 1e-6) << i;
    EXPECT_GT(grey_variance(decode_png(report::encode_png(series[std::size_t(i)]))), 100.0) << i;
  }
  // Only a body outline: the series spans what is shown of the CT instead.
  auto body_only = in;
  body_only.structures = core::StructureSet(s.ct.geometry());
  body_only.structures.add("Body", s.ss.get("Body").mask);
  body_only.structures.find("Body")->type = core::StructureType::External;
  const auto two = report::render_axial_series(body_only, 2);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_NEAR(two[0].geometry.origin[2], 20.0, 1e-6);
  EXPECT_NEAR(two[1].geometry.origin[2], -20.0, 1e-6);
  EXPECT_THROW(report::render_axial_series(in, 0), core::InvalidInput);
  EXPECT_THROW(report::render_axial_series(in, 65), core::InvalidInput);
  // In the HTML report on request only.
  EXPECT_EQ(report::render_html(in).find("Axial slices"), std::string::npos);
  report::ReportOptions opt;
  opt.axial_series = 3;
  const std::string html = report::render_html(in, opt);
  EXPECT_NE(html.find("Axial slices"), std::string::npos);
  EXPECT_EQ(embedded_pngs(html).size(), 6u);  // 3 views + 3 slices
  EXPECT_NE(html.find("Automatic contours: review and edit them"), std::string::npos);  // no dose
}

TEST(Report, IsodoseLinesDoNotLookLikeHeadNeckStructures) {
  // An outline in an isodose colour reads as a dose line (the 80 % line and PTV63 were both
  // magenta before session 10).
  const report::ReportOptions opt;
  for (const char* s : {"Brainstem", "SpinalCord", "RightParotid", "LeftParotid", "Esophagus",
                        "Larynx", "Mandible", "PTV70", "PTV63", "PTV56", "Body"}) {
    const core::Color c = core::default_color(s);
    for (const auto& iso : opt.isodoses) {
      const double d = std::hypot(double(c.r) - iso.color.r, double(c.g) - iso.color.g,
                                  double(c.b) - iso.color.b);
      EXPECT_GE(d, 80.0) << s << " looks like the " << iso.percent << " % isodose line";
    }
  }
}


// The report shows the dose in the review UI's colours (core/include/isoline/core/dose_style.h),
// so the physicist reading the report and the oncologist in the UI see the same dose alike.
TEST(Report, DefaultDoseColoursAreTheReviewUis) {
  const report::ReportOptions opt;
  ASSERT_EQ(opt.isodoses.size(), core::kIsodoseLines.size());
  for (const auto& l : core::kIsodoseLines) {
    bool found = false;
    for (const auto& iso : opt.isodoses)
      found = found || (std::abs(iso.percent - 100.0 * l.fraction) < 1e-9 && iso.color.r == l.color.r &&
                        iso.color.g == l.color.g && iso.color.b == l.color.b);
    EXPECT_TRUE(found) << l.fraction;
  }
  ASSERT_EQ(opt.wash.size(), core::kDoseWash.size());
  for (std::size_t i = 0; i < opt.wash.size(); ++i) {
    EXPECT_NEAR(opt.wash[i].percent, 100.0 * core::kDoseWash[i].fraction, 1e-9);
    EXPECT_EQ(opt.wash[i].color.r, core::kDoseWash[i].color.r);
    EXPECT_EQ(opt.wash[i].color.g, core::kDoseWash[i].color.g);
    EXPECT_EQ(opt.wash[i].color.b, core::kDoseWash[i].color.b);
  }
}

// The wash colour is the dose as a fraction of the prescription through the colour stops,
// interpolated between them, nothing below the first and the last one's colour above it; the
// HTML colour bar and the PNG figure's bar show the same stops, and no jet map is left.
TEST(Report, WashColoursFollowThePrescriptionThroughTheStops) {
  Geometry g;
  g.size = {40, 40, 20};
  g.spacing = {2.0, 2.0, 2.0};
  g.origin = {-39.0, -39.0, -19.0};
  report::ReportInput in;
  in.ct = Image(g, core::PixelType::Int16);  // 0 HU: all patient, mid grey in the window
  in.prescription_gy = 60;
  report::ReportOptions opt;
  opt.isodoses.clear();
  opt.wash_opacity = 1.0;
  auto centre_colour = [&](double gy) {
    Image d(g, core::PixelType::Float32);
    for (std::size_t n = 0; n < d.num_voxels(); ++n) d.data<float>()[n] = float(gy);
    in.doses = {{"Plan", d, {}, {}}};
    const auto p = report::render_views(in, 0, opt)[0];
    const std::uint8_t* q = &p.rgb[(std::size_t(p.height / 2) * p.width + p.width / 2) * 3];
    return std::array<int, 3>{q[0], q[1], q[2]};
  };
  using C = std::array<int, 3>;
  EXPECT_EQ(centre_colour(0.80 * 60), (C{145, 80, 115}));  // 80 %: plum, the 80 % line's
  EXPECT_EQ(centre_colour(0.50 * 60), (C{40, 105, 230}));  // 50 %: blue
  EXPECT_EQ(centre_colour(1.05 * 60), (C{255, 120, 85}));  // 105 %: coral
  EXPECT_EQ(centre_colour(1.30 * 60), (C{255, 120, 85}));  // above the last stop: its colour
  EXPECT_EQ(centre_colour(1.00 * 60), (C{208, 145, 45}));  // halfway 95 .. 105 %
  const C grey = centre_colour(0.05 * 60);                 // below 10 %: no wash, the CT's grey
  EXPECT_EQ(grey[0], grey[1]);
  EXPECT_EQ(grey[1], grey[2]);
  EXPECT_EQ(centre_colour(0.10 * 60), (C{0, 0, 120}));     // from 10 %: dark blue

  // HTML colour bar: the stops' colours, no jet
  opt = report::ReportOptions{};
  const std::string html = report::render_html(in, opt);
  EXPECT_EQ(html.find("id=\"jet\""), std::string::npos);
  for (const char* c : {"#000078", "#2869e6", "#915073", "#a0aa05"})
    EXPECT_NE(html.find(std::string("stop-color=\"") + c + "\""), std::string::npos) << c;
  EXPECT_NE(html.find("colourwash from 10 % of 60.0 Gy"), std::string::npos);
  // and the isodose legend in the UI's colours at their levels
  EXPECT_NE(html.find("background:#ff7855\"></span>105 % (63.0 Gy)"), std::string::npos);
  EXPECT_NE(html.find("background:#a0aa05\"></span>95 % (57.0 Gy)"), std::string::npos);
}

TEST(Report, FigureColourBarShowsTheWash) {
  Geometry g;
  g.size = {40, 40, 20};
  g.spacing = {2.0, 2.0, 2.0};
  g.origin = {-39.0, -39.0, -19.0};
  report::ReportInput in;
  in.ct = Image(g, core::PixelType::Int16);
  in.prescription_gy = 60;
  Image d(g, core::PixelType::Float32);
  for (std::size_t n = 0; n < d.num_voxels(); ++n) d.data<float>()[n] = 60.0f;
  in.doses = {{"Plan", d, {}, {}}};
  test::TempDir dir;
  const std::string path = dir.file("figure.png");
  report::write_figure_png(in, path);
  std::ifstream f(path, std::ios::binary);
  const Decoded img = decode_png(std::vector<std::uint8_t>((std::istreambuf_iterator<char>(f)), {}));
  ASSERT_GT(img.w, 0);
  // Every stop colour of the wash within the bar's range (0 .. 60 Gy: up to 100 %) appears
  // in the bar, and no jet colour (pure red 255,0,0 at its top) does.
  auto has = [&](int r, int gg, int b) {
    for (std::size_t n = 0; n + 2 < img.rgb.size(); n += 3)
      if (img.rgb[n] == r && img.rgb[n + 1] == gg && img.rgb[n + 2] == b) return true;
    return false;
  };
  EXPECT_TRUE(has(145, 80, 115));
  EXPECT_TRUE(has(40, 105, 230));
  EXPECT_FALSE(has(255, 0, 0));
}

}  // namespace
}  // namespace isoline
