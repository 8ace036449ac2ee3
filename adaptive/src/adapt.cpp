// The adaptive replanning workflow: register, propagate (and fuse), recompute, re-plan,
// accumulate, compare.
#include "isoline/adaptive/adapt.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <sstream>

#include "isoline/contouring/contour.h"
#include "isoline/contouring/model.h"
#include "isoline/core/atomic_file.h"
#include "isoline/core/device.h"
#include "isoline/core/error.h"
#include "isoline/core/mask_ops.h"
#include "isoline/core/text.h"
#include "isoline/report/report.h"

namespace isoline::adaptive {

using core::fail;
using core::Geometry;
using core::Image;
using core::InvalidInput;

namespace {

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The grid of `g` with spacing at least `mm` per axis (same extent and direction).
Geometry coarsen(const Geometry& g, double mm) {
  if (!(mm > 0)) return g;
  Geometry out = g;
  bool changed = false;
  for (int a = 0; a < 3; ++a) {
    if (g.spacing[a] >= mm - 1e-6) continue;
    const double extent = g.spacing[a] * g.size[a];
    out.size[a] = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(extent / mm - 1e-6)));
    out.spacing[a] = extent / out.size[a];
    changed = true;
  }
  if (!changed) return g;
  // Keep the outer voxel boundaries: first voxel centre moves by half the spacing change.
  core::Vec3 shift{};
  for (int a = 0; a < 3; ++a) shift[a] = 0.5 * (out.spacing[a] - g.spacing[a]);
  const core::Vec3 o = g.index_to_world({0, 0, 0});
  for (int r = 0; r < 3; ++r) {
    double s = 0;
    for (int c = 0; c < 3; ++c) s += g.direction[r * 3 + c] * shift[c];
    out.origin[r] = o[r] + s;
  }
  return out;
}

std::string esc(const std::string& s) { return core::xml_escape(s); }

}  // namespace

Image recompute_dose(const Image& ct, const dose::Plan& plan, int fractions, double grid_mm, core::Device device,
                     const core::Progress& progress) {
  if (fractions < 1) fail<InvalidInput>("recompute dose", "plan", "fractions must be >= 1");
  const Geometry g = coarsen(ct.geometry(), grid_mm);
  Image c = g.same_grid(ct.geometry(), 1e-6) ? ct : core::resample(ct, g, core::Interpolation::Linear, -1000.0);
  Image d = dose::compute_dose(c, plan, device, progress);
  float* p = d.data<float>();
  for (std::size_t n = 0; n < d.num_voxels(); ++n) p[n] *= static_cast<float>(fractions);
  return d;
}

dose::Plan align_plan(const dose::Plan& plan, const RigidTransform& t) {
  dose::Plan out = plan;
  for (auto& b : out.beams) {
    // x = R^T (y - c - t) + c: the inverse of y = R (x - c) + c + t.
    core::Vec3 d{};
    for (int a = 0; a < 3; ++a) d[a] = b.isocenter_mm[a] - t.center[a] - t.translation[a];
    for (int a = 0; a < 3; ++a) {
      double s = t.center[a];
      for (int k = 0; k < 3; ++k) s += t.rotation[k * 3 + a] * d[k];
      b.isocenter_mm[a] = s;
    }
  }
  return out;
}

bool replan_available() { return ISOLINE_ADAPTIVE_REPLAN != 0; }

namespace {

// The checks of check_adapt_inputs; gives the criteria they read.
std::vector<planning::Criterion> checked_inputs(const AdaptInput& in, const AdaptOptions& opt) {
  const char* op = "adapt";
  // A device that cannot run fails now, not after the registration. The contouring network
  // falls back to the CPU where LibTorch has no CUDA (contouring::network_device).
  core::require_device(opt.plan_options.device, op);
  if (in.fractions < 1)
    fail<InvalidInput>(op, "plan", "fractions must be >= 1, got " + std::to_string(in.fractions));
  if (opt.fractions_delivered < 0 || opt.fractions_delivered > in.fractions)
    fail<InvalidInput>(op, "fractions delivered",
                       std::to_string(opt.fractions_delivered) + " is not between 0 and the plan's " +
                           std::to_string(in.fractions) + " fractions");
  std::vector<planning::Criterion> criteria;
  if (!in.tpl.criteria_path.empty()) criteria = planning::load_criteria(in.tpl.criteria_path);
  if (opt.recontour)
    contouring::load_model_card(opt.model_card.empty() ? contouring::default_model_card_path() : opt.model_card);
  // A planned dose in cGy (or per fraction in another unit) would be summed with Gy doses in
  // the accumulation without a word: no plan's maximum reaches 5 times its prescription.
  double rx = 0;
  for (const auto& l : in.tpl.targets) rx = std::max(rx, l.dose_gy);
  if (!in.planned_dose.empty() && rx > 0) {
    const double mx = in.planned_dose.min_max().second;
    if (mx > 5.0 * rx) {
      char buf[200];
      std::snprintf(buf, sizeof buf,
                    "%smaximum %.1f is %.0f times the template's %.1f Gy prescription: not in Gy (cGy?)",
                    in.planned_dose_source.empty() ? "" : "planned dose ", mx, mx / rx, rx);
      fail<InvalidInput>(op, in.planned_dose_source.empty() ? "planned dose" : in.planned_dose_source, buf);
    }
  }
  return criteria;
}

}  // namespace

void check_adapt_inputs(const AdaptInput& in, const AdaptOptions& opt) { checked_inputs(in, opt); }

namespace {

// adapt's steps; the warnings go into r.warnings as they arise.
void adapt_steps(const AdaptInput& in, const AdaptOptions& opt, const core::Progress& progress, AdaptResult& r) {
  const char* op = "adapt";
  if (in.planning_ct.empty()) fail<InvalidInput>(op, "planning CT", "image is empty");
  if (in.new_ct.empty()) fail<InvalidInput>(op, "new CT", "image is empty");
  if (in.planning_structures.empty()) fail<InvalidInput>(op, "planning structures", "no structures");
  // Everything that can be checked is checked before the registration (about 20 s on a
  // 96 x 96 x 64 CT), the contouring network loaded too.
  std::vector<planning::Criterion> criteria = checked_inputs(in, opt);
  std::optional<contouring::Model> network;
  std::string network_note;
  if (opt.recontour)
    network.emplace(opt.model_card, contouring::network_device(opt.plan_options.device, &network_note));
  const auto t0 = std::chrono::steady_clock::now();
  r.fractions_delivered = opt.fractions_delivered;
  r.criteria = std::move(criteria);
  if (!network_note.empty()) r.warnings.push_back("re-contouring: " + network_note);

  // 1. Registration: new CT fixed, planning CT moving (field on the new CT grid).
  auto t = std::chrono::steady_clock::now();
  r.registration = register_images(in.new_ct, in.planning_ct, opt.registration, progress.sub(0.0, 0.3, "register"));
  r.timing.registration_s = since(t);
  if (r.registration.min_jacobian <= 0)
    r.warnings.push_back("registration folds (min Jacobian " + std::to_string(r.registration.min_jacobian) +
                         "): check the propagated structures");

  // 2. Propagation (+ optional re-contouring and fusion).
  t = std::chrono::steady_clock::now();
  core::StructureSet propagated =
      propagate_structures(in.planning_structures, r.registration.field, progress.sub(0.3, 0.35, "propagate"));
  if (opt.recontour) {
    auto cr = contouring::contour(in.new_ct, *network, {}, progress.sub(0.35, 0.45, "re-contour"));
    for (const auto& w : cr.warnings) r.warnings.push_back("re-contouring: " + w);
    auto fused = fuse_structures(propagated, cr.structures, opt.fuse);
    r.structures = std::move(fused.structures);
    r.agreement = std::move(fused.agreement);
    for (const auto& a : r.agreement)
      if (a.flagged) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "%s: propagated and re-contoured versions disagree (Dice %.2f)",
                      a.name.c_str(), a.dice);
        r.warnings.push_back(buf);
      }
  } else {
    r.structures = std::move(propagated);
    for (const auto& s : r.structures) r.agreement.push_back({s.name, "propagated", -1.0, false});
  }
  r.timing.propagation_s = since(t);

  // 3. Unadapted: the original fluence on the new anatomy, set up on it.
  t = std::chrono::steady_clock::now();
  r.unadapted_plan = opt.setup_correction ? align_plan(in.plan, r.registration.rigid) : in.plan;
  if (!in.plan.beams.empty())
    for (int a = 0; a < 3; ++a)
      r.setup_shift_mm[a] = r.unadapted_plan.beams[0].isocenter_mm[a] - in.plan.beams[0].isocenter_mm[a];
  try {
    r.unadapted_dose = recompute_dose(in.new_ct, r.unadapted_plan, in.fractions, in.tpl.dose_grid_mm,
                                      opt.plan_options.device, progress.sub(0.45, 0.55, "unadapted dose"));
  } catch (const InvalidInput& e) {
    fail<InvalidInput>(op, "original plan on the new CT",
                       std::string(e.what()) + (opt.setup_correction ? ""
                                                                     : " (without setup correction the beams keep the "
                                                                       "planning CT's coordinates)"));
  }
  r.planned_dose = in.planned_dose.empty()
                       ? recompute_dose(in.planning_ct, in.plan, in.fractions, in.tpl.dose_grid_mm,
                                        opt.plan_options.device, progress.sub(0.55, 0.6, "planned dose"))
                       : in.planned_dose;
  r.timing.unadapted_s = since(t);

  // 4. Re-plan on the new anatomy with the original template.
  if (opt.replan) {
    t = std::chrono::steady_clock::now();
#if ISOLINE_ADAPTIVE_REPLAN
    r.adapted = planning::make_plan(in.new_ct, r.structures, in.tpl, opt.plan_options, progress.sub(0.6, 0.9, "re-plan"));
#else
    fail<core::NotSupported>(op, "re-plan", "this build has no planning::make_plan (planning/src/plan.cpp)");
#endif
    for (const auto& w : r.adapted.warnings) r.warnings.push_back("re-plan: " + w);
    r.timing.replan_s = since(t);
  }

  // 5. Accumulation on the planning dose grid.
  t = std::chrono::steady_clock::now();
  const Geometry pg = r.planned_dose.geometry();
  std::vector<float> residual;
  DisplacementField back = invert_field(r.registration.field, pg, 30, &r.inverse_residual_mm, &residual);
  // Where the warped-back doses are known: planning points whose new-CT point lies on the new
  // doses' grids (warp_dose of ones: 1 there, 0 beyond, as the doses themselves are 0 there).
  // A new CT that covers less of the patient (or another patient's) leaves the rest unknown.
  auto ones = [](const Geometry& g) {
    Image one(g, core::PixelType::Float32);
    std::fill(one.data<float>(), one.data<float>() + one.num_voxels(), 1.0f);
    return one;
  };
  Image known = warp_dose(ones(r.unadapted_dose.geometry()), back);
  if (opt.replan && !r.adapted.dose.geometry().same_grid(r.unadapted_dose.geometry(), 1e-6)) {
    const Image k = warp_dose(ones(r.adapted.dose.geometry()), back);
    for (std::size_t n = 0; n < known.num_voxels(); ++n)
      known.data<float>()[n] = std::min(known.data<float>()[n], k.data<float>()[n]);
  }
  for (std::size_t n = 0; n < known.num_voxels(); ++n)
    known.data<float>()[n] = known.data<float>()[n] >= 1.0f - 1e-4f ? 1.0f : 0.0f;
  {
    // Where the dose is: the share beyond the new CT, and how far off the warped-back dose
    // may be taken from elsewhere.
    const double floor = 0.1 * r.planned_dose.min_max().second;
    std::size_t region = 0, beyond = 0, measured = 0, over = 0;
    double worst = 0;
    for (std::size_t n = 0; n < residual.size(); ++n) {
      if (!(r.planned_dose.value(n) >= floor)) continue;
      ++region;
      if (known.value(n) < 1.0 || residual[n] < 0) {
        ++beyond;
        continue;
      }
      ++measured;
      over += residual[n] > 1.0f;
      worst = std::max(worst, double(residual[n]));
    }
    r.dose_region_beyond_new_ct = region ? double(beyond) / double(region) : 0.0;
    r.inverse_residual_dose_region_mm = worst;
    r.inverse_fraction_over_1mm = measured ? double(over) / double(measured) : 0.0;
    if (r.inverse_fraction_over_1mm > 0.005) {
      char buf[300];
      std::snprintf(buf, sizeof buf,
                    "the dose warp-back (inverse of the registration) is more than 1 mm off in %.1f %% of the "
                    "dose region on the new CT (up to %.1f mm): the accumulated dose there is uncertain; check the "
                    "registration",
                    100.0 * r.inverse_fraction_over_1mm, worst);
      r.warnings.push_back(buf);
    }
  }
  {
    DoseAccumulator acc(pg);
    acc.add_warped(r.unadapted_dose, back, 1.0);
    r.accumulated_unadapted = acc.total();
  }
  {
    DoseAccumulator acc(pg);
    const double f = in.fractions;
    if (opt.fractions_delivered > 0) acc.add(r.planned_dose, opt.fractions_delivered / f);
    const Image& rest = opt.replan ? r.adapted.dose : r.unadapted_dose;
    acc.add_warped(rest, back, (f - opt.fractions_delivered) / f);
    r.accumulated_adapted = acc.total();
  }
  // Planning structures with a part beyond the new CT: their accumulated DVHs would count
  // 0 Gy there (PTV70 D99 0 Gy, an organ's mean falsely low), so they have none.
  core::StructureSet accumulable;
  const Image on_grid = ones(pg);
  for (const auto& s : in.planning_structures) {
    if (s.mask.count_nonzero() == 0) continue;
    // Sampled as evaluate_dose samples the doses: the share whose accumulated dose mixes in
    // points beyond the new CT (of the part on the planning dose grid, which all doses lack
    // alike beyond it).
    const double share = planning::compute_dvh(on_grid, s.mask, s.name).volume_fraction_at_dose(1.0 - 1e-3) -
                         planning::compute_dvh(known, s.mask, s.name).volume_fraction_at_dose(1.0 - 1e-3);
    if (share > 1e-9)
      r.beyond_new_ct[s.name] = share;
    else
      accumulable.add(s);
  }
  if (!r.beyond_new_ct.empty() || r.dose_region_beyond_new_ct > 0) {
    std::ostringstream w;
    w.setf(std::ios::fixed);
    w.precision(1);
    w << "part of the planning CT lies beyond the new CT (its points map outside the new CT through the "
         "registration: a new CT that covers less of the patient, or another patient's), where no dose is known "
         "and the accumulated doses hold 0 Gy";
    if (r.dose_region_beyond_new_ct > 0) w << ": " << 100.0 * r.dose_region_beyond_new_ct << " % of the dose region";
    if (!r.beyond_new_ct.empty()) {
      std::vector<std::pair<std::string, double>> by_share(r.beyond_new_ct.begin(), r.beyond_new_ct.end());
      std::stable_sort(by_share.begin(), by_share.end(),
                       [](const auto& x, const auto& y) { return x.second > y.second; });
      w << (r.dose_region_beyond_new_ct > 0 ? ";" : ":");
      for (std::size_t i = 0; i < by_share.size(); ++i)
        w << (i ? ", " : " ") << by_share[i].first << " " << 100.0 * by_share[i].second << " %";
      w << " of their volume: these structures have no accumulated figures, and their propagated contours (the "
           "unadapted and adapted figures) hold only their part on the new CT";
    }
    r.warnings.push_back(w.str());
  }
  r.timing.accumulation_s = since(t);

  // 6. Evaluation.
  progress.update(0.95, "evaluate");
  r.planned = evaluate_dose("planned", r.planned_dose, in.planning_structures, r.criteria);
  r.unadapted = evaluate_dose("unadapted", r.unadapted_dose, r.structures, r.criteria);
  r.columns = {"planned", "unadapted"};
  if (opt.replan) {
    r.adapted_eval = evaluate_dose("adapted", r.adapted.dose, r.structures, r.criteria);
    r.columns.push_back("adapted");
  }
  r.accumulated_unadapted_eval =
      evaluate_dose("accumulated unadapted", r.accumulated_unadapted, accumulable, r.criteria);
  r.accumulated_adapted_eval = evaluate_dose(opt.replan ? "accumulated adapted" : "accumulated",
                                             r.accumulated_adapted, accumulable, r.criteria);
  std::vector<const DoseEvaluation*> cols{&r.planned, &r.unadapted};
  if (opt.replan) cols.push_back(&r.adapted_eval);
  cols.push_back(&r.accumulated_unadapted_eval);
  r.columns.push_back("accumulated unadapted");
  if (opt.replan) {
    cols.push_back(&r.accumulated_adapted_eval);
    r.columns.push_back("accumulated adapted");
  }
  r.rows = compare(cols, r.criteria);
  r.timing.total_s = since(t0);
  progress.done();
}

}  // namespace

AdaptResult adapt(const AdaptInput& in, const AdaptOptions& opt, const core::Progress& progress) {
  AdaptResult r;
  try {
    adapt_steps(in, opt, progress, r);
  } catch (core::Error& e) {
    // The warnings gathered before a failure (registration folds, the re-contouring's "anatomy
    // outside the model's scope?", the re-plan's) may explain it: they go with the error, as
    // the result would have carried them (run_case does the same; the CLI prints them before
    // the error line, Python has them as the exception's `warnings`).
    e.add_warnings(r.warnings);
    throw;
  }
  return r;
}

namespace {

// The adaptive sections (all five columns, structure agreement, registration, timing).
std::string adapt_sections_html(const AdaptResult& r) {
  std::ostringstream h;
  auto num = [](double v, int prec = 2) {
    if (!std::isfinite(v)) return std::string("&ndash;");
    char b[32];
    std::snprintf(b, sizeof b, "%.*f", prec, v);
    return std::string(b);
  };
  h << "<style>.adapt table{border-collapse:collapse;margin:1em 0}.adapt td,.adapt th{border:1px solid #bbb;"
       "padding:3px 8px;text-align:right}.adapt th{background:#eee}.adapt td.l,.adapt th.l{text-align:left}"
       ".adapt .pass{background:#d8f0d8}.adapt .fail{background:#f6d0d0;font-weight:bold}.adapt .warn{color:#a40}"
       "</style>\n<div class=\"adapt\">\n";
  h << "<h2>Registration</h2><p>New CT (fixed) &larr; planning CT (moving): " << num(r.registration.seconds, 1)
    << " s; Jacobian min " << num(r.registration.min_jacobian, 3) << ", folding "
    << num(100.0 * r.registration.folding_fraction, 4) << " %"
    << (r.registration.rigid_start.empty() ? std::string()
                                           : "; the rigid step continued from the start &ldquo;" +
                                                 esc(r.registration.rigid_start) +
                                                 "&rdquo;, the best of those tried (the CTs' centres aligned, the CTs "
                                                 "as scanned, their bodies' centres of mass aligned, their ends aligned)")
    << ". Dose warp-back: inverse residual "
    << num(r.inverse_residual_mm, 2) << " mm at most; in the dose region (&ge; 10 % of the planned maximum) ";
  if (r.dose_region_beyond_new_ct >= 1.0)
    h << "all of it lies beyond the new CT (no dose known there; residual not measured). ";
  else
    h << (r.dose_region_beyond_new_ct > 0 ? num(100.0 * r.dose_region_beyond_new_ct, 2) +
                                                " % lies beyond the new CT (no dose known there), the rest "
                                          : std::string())
      << num(r.inverse_residual_dose_region_mm, 2) << " mm at most, over 1 mm in "
      << num(100.0 * r.inverse_fraction_over_1mm, 2) << " % of its voxels. ";
  h << "Unadapted dose: isocentre set up on the new CT by a shift of ("
    << num(r.setup_shift_mm[0], 1) << ", " << num(r.setup_shift_mm[1], 1) << ", " << num(r.setup_shift_mm[2], 1)
    << ") mm (LPS; the planning CT's coordinates when zero or when setup correction is off).</p>\n";
  if (!r.warnings.empty()) {
    h << "<ul class=\"warn\">";
    for (const auto& w : r.warnings) h << "<li>" << esc(w) << "</li>";
    h << "</ul>\n";
  }
  h << "<h2>Adaptive comparison: criteria and DVH metrics</h2>\n<p>Planned: planning CT and structures. Unadapted: the original "
       "fluence recomputed on the new CT. Adapted: re-optimised on the new CT. Both on the structures "
       "propagated to the new CT. Accumulated: doses warped back to the planning CT, on the planning "
       "structures (&ndash; for a structure part of which lies beyond the new CT, where no dose is known). Doses "
       "in Gy over all fractions.</p>\n";
  h << "<table><tr><th class=\"l\">structure</th><th class=\"l\">metric</th><th class=\"l\">criterion</th>";
  for (const auto& c : r.columns) h << "<th>" << esc(c) << "</th>";
  h << "</tr>\n";
  for (const auto& row : r.rows) {
    h << "<tr><td class=\"l\">" << esc(row.structure) << "</td><td class=\"l\">" << esc(row.metric)
      << "</td><td class=\"l\">" << esc(row.criterion) << "</td>";
    for (std::size_t c = 0; c < row.values.size(); ++c) {
      const int p = row.pass[c];
      h << "<td" << (p == 1 ? " class=\"pass\"" : p == 0 ? " class=\"fail\"" : "") << ">" << num(row.values[c])
        << (p == 1 ? " &#10003;" : p == 0 ? " &#10007;" : "") << "</td>";
    }
    h << "</tr>\n";
  }
  h << "</table>\n";
  auto passed = [](const DoseEvaluation& e) {
    int n = 0, m = 0;
    for (const auto& c : e.criteria)
      if (c.evaluated) {
        ++m;
        n += c.pass;
      }
    return std::to_string(n) + " of " + std::to_string(m);
  };
  if (!r.criteria.empty()) {
    h << "<p>Criteria passed: planned " << passed(r.planned) << ", unadapted " << passed(r.unadapted);
    if (!r.adapted_eval.label.empty()) h << ", adapted " << passed(r.adapted_eval);
    h << ".</p>\n";
  }
  h << "<h2>Structures on the new CT</h2>\n<table><tr><th class=\"l\">structure</th><th class=\"l\">source</th>"
       "<th>volume [cc]</th><th>Dice propagated vs re-contoured</th><th class=\"l\">note</th></tr>\n";
  for (const auto& a : r.agreement) {
    const core::Structure* s = r.structures.find(a.name);
    h << "<tr><td class=\"l\">" << esc(a.name) << "</td><td class=\"l\">" << esc(a.source) << "</td><td>"
      << num(s ? s->volume_cc() : NAN, 1) << "</td><td" << (a.flagged ? " class=\"fail\"" : "") << ">"
      << (a.dice >= 0 ? num(a.dice) : std::string("&ndash;")) << "</td><td class=\"l\">"
      << esc(s ? s->description : "") << "</td></tr>\n";
  }
  h << "</table>\n<h2>Timing</h2><p>registration " << num(r.timing.registration_s, 1) << " s, propagation "
    << num(r.timing.propagation_s, 1) << " s, unadapted dose " << num(r.timing.unadapted_s, 1) << " s, re-plan "
    << num(r.timing.replan_s, 1) << " s, accumulation " << num(r.timing.accumulation_s, 1) << " s, total "
    << num(r.timing.total_s, 1) << " s.</p>\n</div>\n";
  return h.str();
}

// `field` sampled at the voxels of `grid` (trilinear).
DisplacementField resample_field(const DisplacementField& field, const Geometry& grid) {
  DisplacementField out = DisplacementField::zeros(grid);
  for (std::int64_t k = 0; k < grid.size[2]; ++k)
    for (std::int64_t j = 0; j < grid.size[1]; ++j)
      for (std::int64_t i = 0; i < grid.size[0]; ++i) {
        const core::Vec3 u = field.sample(grid.index_to_world({double(i), double(j), double(k)}));
        for (int a = 0; a < 3; ++a) out.data[grid.offset(i, j, k) * 3 + a] = static_cast<float>(u[a]);
      }
  return out;
}

}  // namespace

void write_adapt_report_html(const AdaptInput& in, const AdaptResult& r, const std::string& path,
                             const std::string& title) {
  report::ReportInput ri;
  ri.title = title;
  char line[200];
  std::snprintf(line, sizeof line, "%.1f s, Jacobian min %.3f, folding %.4f %%", r.registration.seconds,
                r.registration.min_jacobian, 100.0 * r.registration.folding_fraction);
  ri.info.push_back({"Registration (new CT <- planning CT)",
                     std::string(line) + (r.registration.rigid_start.empty()
                                              ? std::string()
                                              : "; rigid step from the start: " + r.registration.rigid_start)});
  std::snprintf(line, sizeof line, "isocentre shifted (%.1f, %.1f, %.1f) mm (LPS) for the unadapted dose",
                r.setup_shift_mm[0], r.setup_shift_mm[1], r.setup_shift_mm[2]);
  ri.info.push_back({"Setup on the new CT", line});
  ri.info.push_back({"Template", in.tpl.name});
  std::snprintf(line, sizeof line, "%d (accumulated dose: %d planned + %d %s)", in.fractions, r.fractions_delivered,
                in.fractions - r.fractions_delivered, r.adapted_eval.label.empty() ? "unadapted" : "adapted");
  ri.info.push_back({"Fractions", line});
  std::snprintf(line, sizeof line, "%.1f s total", r.timing.total_s);
  ri.info.push_back({"Time", line});
  ri.info.push_back({"Views", "new CT with the structures on it; the planned dose is shown mapped onto the new "
                              "anatomy through the registration, its DVHs and criteria are on the planning CT"});
  ri.warnings = r.warnings;
  ri.ct = in.new_ct;
  ri.structures = r.structures;
  for (const auto& l : in.tpl.targets) ri.target_dose_gy[l.structure] = l.dose_gy;
  const Image planned_on_new = warp(r.planned_dose.pixel_type() == core::PixelType::Float32
                                        ? r.planned_dose
                                        : r.planned_dose.cast(core::PixelType::Float32),
                                    resample_field(r.registration.field, r.unadapted_dose.geometry()), 0.0);
  ri.doses.push_back({"Planned", planned_on_new, r.planned.dvhs, r.planned.criteria});
  ri.doses.push_back({"Unadapted", r.unadapted_dose, r.unadapted.dvhs, r.unadapted.criteria});
  if (!r.adapted_eval.label.empty())
    ri.doses.push_back({"Adapted", r.adapted.dose, r.adapted_eval.dvhs, r.adapted_eval.criteria});
  std::string html = report::render_html(ri);
  const std::size_t end = html.rfind("</body>");
  const std::string extra = adapt_sections_html(r);
  if (end == std::string::npos)
    html += extra;
  else
    html.insert(end, extra);
  std::ostringstream h;
  h << html;
  core::write_file_atomic(path, h.str(), "write adapt report");
}

}  // namespace isoline::adaptive
