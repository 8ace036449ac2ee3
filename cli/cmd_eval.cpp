// isoline eval contours --pred DIR --ref DIR: Dice, HD95, surface Dice per structure.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <vector>
#include <algorithm>

#include <nlohmann/json.hpp>

#include "command.h"
#include "isoline/contouring/metrics.h"
#include "isoline/contouring/model.h"
#include "isoline/core/atomic_file.h"
#include "isoline/core/error.h"
#include "isoline/core/text.h"

namespace isoline::cli {

namespace {

nlohmann::json num(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

// A distance in mm with 2 decimals, "n/a" when undefined (NaN: no case; infinity: one mask empty).
std::string mm_text(double v) {
  if (!std::isfinite(v)) return "n/a";
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

int run_eval(const Args& args, const Context& ctx) {
  if (args.positional(0) != "contours")
    throw UsageError{"unknown evaluation '" + args.positional(0) + "' (available: contours)"};
  std::vector<std::string> names;
  for (const auto& v : args.get_all("--structures")) {
    std::stringstream ss(v);
    std::string s;
    while (std::getline(ss, s, ','))
      if (!s.empty()) names.push_back(s);
  }
  const double tol = args.get_double("--tolerance", 4.0);
  if (!(tol > 0)) throw UsageError{"--tolerance must be > 0 mm"};
  const auto plot = args.get("--plot");
  if (plot && !core::ends_with(*plot, ".svg"))
    throw UsageError{"--plot names an .svg file, not " + *plot};
  const auto json_out = args.get("--json");
  for (const auto* out : {&plot, &json_out})  // checked before the (long) scoring
    if (*out) core::check_output_location(**out, "evaluate contours");
  // Reference check: the card is read before any work, so a bad --model fails at once and
  // writes nothing. The default card missing (no model installed) only switches the check off.
  const bool check = !args.flag("--no-reference-check");
  if (!check && args.has("--model")) throw UsageError{"--model and --no-reference-check exclude each other"};
  std::optional<contouring::ModelCard> card;
  std::string check_note;
  if (check) {
    if (auto m = args.get("--model")) {
      card = contouring::load_model_card(*m);
    } else {
      const std::string path = contouring::default_model_card_path();
      try {
        card = contouring::load_model_card(path);
      } catch (const core::IoError& e) {
        check_note = std::string("reference check off: ") + e.what() + " (choose a card with --model)";
      }
    }
  }
  core::Progress progress(ctx.progress, "eval");
  auto result = contouring::evaluate_contours(args.value("--pred"), args.value("--ref"), names, tol, progress);
  // Case folders not scored, resampled grids, names that matched nothing: before the table (and
  // before failing when nothing could be scored, which they then explain).
  for (const auto& w : result.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  auto& rows = result.rows;
  if (rows.empty())
    core::fail<core::InvalidInput>("evaluate contours", args.value("--ref"), "no structure has both a reference and a prediction to score");
  if (card) contouring::flag_references(rows, *card);
  auto sum = contouring::summarize(rows);
  // Columns as wide as the longest case id and structure name; HD95 "n/a" where undefined.
  int case_w = 10, name_w = 14;
  for (const auto& r : rows) {
    case_w = std::max(case_w, static_cast<int>(r.case_id.size()));
    name_w = std::max(name_w, static_cast<int>(r.structure.size()));
  }
  if (args.flag("--per-case"))
    for (const auto& r : rows)
      std::printf("%-*s %-*s dice %.3f  hd95 %7s mm  sdice %.3f  ref %.1f cc  pred %.1f cc%s%s%s\n", case_w,
                  r.case_id.c_str(), name_w, r.structure.c_str(), r.m.dice, mm_text(r.m.hd95_mm).c_str(),
                  r.m.surface_dice, r.m.ref_cc, r.m.pred_cc, r.resampled ? "  (resampled)" : "",
                  r.ref_flag.empty() ? "" : "  FLAGGED: ", r.ref_flag.c_str());
  std::printf("%-*s %5s %9s %11s %10s %12s %8s %11s", name_w, "structure", "cases", "Dice mean", "Dice median",
              "HD95 mean", "HD95 median", "HD95 n/a", "surf. Dice");
  if (card) std::printf(" %7s %16s", "flagged", "Dice w/o flagged");
  std::printf("\n");
  for (const auto& s : sum) {
    std::printf("%-*s %5d %9.3f %11.3f %10s %12s %8d %11.3f", name_w, s.structure.c_str(), s.cases, s.dice_mean,
                s.dice_median, mm_text(s.hd95_mean).c_str(), mm_text(s.hd95_median).c_str(), s.hd95_undefined,
                s.sdice_mean);
    if (card) {
      if (std::isfinite(s.dice_mean_plausible))
        std::printf(" %7d %16.3f", s.flagged, s.dice_mean_plausible);
      else
        std::printf(" %7d %16s", s.flagged, "n/a");
    }
    std::printf("\n");
  }
  std::printf("(HD95 in mm, over the cases where both masks are non-empty; \"HD95 n/a\": cases where one is\n"
              " empty, scored Dice 0; surface Dice at %g mm; structures without a reference are skipped)\n", tol);
  if (card) {
    const std::string card_name = std::filesystem::path(card->card_path).filename().string();
    std::printf("(\"flagged\": cases whose reference volume lies outside the usual range of model card %s;\n"
                " \"Dice w/o flagged\": mean Dice over the other cases; \"Dice mean\" is over all cases)\n",
                card->card_path.c_str());
    bool any = false;
    for (const auto& r : rows) {
      if (r.ref_flag.empty()) continue;
      if (!any) std::printf("Flagged references (check them before trusting their Dice):\n");
      any = true;
      std::printf("%s%s%s: %s (model card %s)\n", r.case_id.c_str(), r.case_id.empty() ? "" : " ",
                  r.structure.c_str(), r.ref_flag.c_str(), card_name.c_str());
    }
    if (!any) std::printf("No reference volume outside the usual ranges of model card %s.\n", card_name.c_str());
  } else if (!check_note.empty()) {
    std::printf("(%s)\n", check_note.c_str());
  }
  if (const auto& jf = json_out) {
    nlohmann::json j;
    j["tolerance_mm"] = tol;
    j["pred"] = args.value("--pred");
    j["ref"] = args.value("--ref");
    j["reference_check"] = card ? nlohmann::json{{"model_card", card->card_path}} : nlohmann::json(nullptr);
    j["warnings"] = result.warnings;
    for (const auto& s : sum)
      j["structures"][s.structure] = {{"cases", s.cases},          {"dice_mean", s.dice_mean},
                                      {"dice_median", s.dice_median}, {"hd95_mm_mean", num(s.hd95_mean)},
                                      {"hd95_mm_median", num(s.hd95_median)},
                                      {"hd95_undefined_cases", s.hd95_undefined},
                                      {"surface_dice_mean", s.sdice_mean},
                                      {"flagged_cases", card ? nlohmann::json(s.flagged) : nlohmann::json(nullptr)},
                                      {"dice_mean_unflagged", card ? num(s.dice_mean_plausible) : nlohmann::json(nullptr)}};
    for (const auto& r : rows)
      j["cases"].push_back({{"case", r.case_id}, {"structure", r.structure}, {"dice", r.m.dice},
                            {"hd95_mm", num(r.m.hd95_mm)}, {"surface_dice", r.m.surface_dice},
                            {"ref_cc", r.m.ref_cc}, {"pred_cc", r.m.pred_cc}, {"resampled", r.resampled},
                            {"ref_flag", r.ref_flag.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.ref_flag)}});
    core::write_file_atomic(*jf, j.dump(1) + "\n", "evaluate contours");
  }
  if (plot) {
    core::write_file_atomic(*plot, contouring::dice_plot_svg(rows, "Dice per case: " + args.value("--pred")),
                            "evaluate contours");
    if (!args.quiet) std::printf("wrote %s\n", plot->c_str());
  }
  return 0;
}

}  // namespace

Command make_eval_command() {
  Command c;
  c.name = "eval";
  c.summary = "score contours against references (Dice, HD95, surface Dice)";
  c.description =
      "isoline eval contours --pred DIR --ref DIR: per structure Dice, 95% Hausdorff distance (mm)\n"
      "and surface Dice at --tolerance mm (default 4). DIR holds <Structure>.nii.gz masks of one\n"
      "case, or one sub-directory per case (matched by name). Structures without a reference\n"
      "mask are skipped (not delineated); a missing prediction counts as an empty mask. Masks\n"
      "hold 0 and 1 (a probability or label map is refused); a prediction on another grid is\n"
      "resampled onto the reference's (a warning), one not overlapping it is an error.\n"
      "Reference check: a reference whose volume lies outside the structure's usual range in the\n"
      "training data (model card \"expected\", default the installed card) is flagged and listed\n"
      "after the table; \"Dice mean\" stays over all cases, \"Dice w/o flagged\" leaves them out.\n"
      "It checks the volume only, not the reference's shape.";
  c.positionals = {{"WHAT", "what to evaluate: contours"}};
  c.options = {
      {"--pred", "DIR", "predicted masks", true},
      {"--ref", "DIR", "reference masks", true},
      {"--structures", "LIST", "comma-separated structures (default: every predicted one)", false, "", true},
      {"--tolerance", "MM", "surface Dice tolerance", false, "4"},
      {"--json", "FILE", "write per-structure and per-case figures as JSON"},
      {"--per-case", "", "print every case (flagged references marked)"},
      {"--plot", "SVG", "write a picture of the Dice of every case per structure (SVG)"},
      {"--model", "CARD", "model card .json whose usual volumes check the references (default: $ISOLINE_MODEL or the installed card)"},
      {"--no-reference-check", "", "do not check reference volumes"},
  };
  c.run = run_eval;
  return c;
}

}  // namespace isoline::cli
