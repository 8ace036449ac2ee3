// isoline deidentify IN OUT: DICOM PS3.15 Basic Profile de-identification (and back).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string>

#include "command.h"
#include "isoline/core/atomic_file.h"
#include "isoline/core/error.h"
#include "isoline/rtstruct/deidentify.h"
#include "isoline/rtstruct/rtdose.h"

namespace fs = std::filesystem;

namespace isoline::cli {

namespace {

const char* const kMapRequired =
    "--map MAP.json is required: the map holds the original patient identities; keep it in a private folder "
    "apart from OUT (e.g. --map ~/deid-maps/study1.json)";

int run_deidentify(const Args& args, const Context& ctx) {
  const std::string in = args.positional(0);
  const std::string out = args.positional(1);
  // The map holds the original identities: no default location, which would sit next to the
  // de-identified data (a "share this folder" step takes it along). It is never inside OUT.
  const auto map_opt = args.get("--map");
  if (!map_opt || map_opt->empty()) throw UsageError{kMapRequired};
  const std::string map_file = *map_opt;
  std::error_code ec;
  if (!fs::exists(in, ec)) core::fail<core::IoError>("deidentify", in, "no such file or directory");
  const fs::path map_abs = fs::weakly_canonical(fs::absolute(map_file, ec), ec);
  const fs::path out_abs = fs::weakly_canonical(fs::absolute(out, ec), ec);
  const auto inside = [](const fs::path& p, const fs::path& dir) {
    auto rel = p.lexically_relative(dir);
    return !rel.empty() && *rel.begin() != "..";
  };
  if (!args.flag("--reidentify") && inside(map_abs, out_abs))
    core::fail<core::InvalidInput>("deidentify", map_file,
                                   "the map is inside OUT, with the de-identified data it would re-identify; "
                                   "put it in a private folder elsewhere");

  if (args.flag("--reidentify")) {
    if (!fs::exists(map_file, ec)) core::fail<core::IoError>("reidentify", map_file, "no such map");
    const rtstruct::DeidMap map = rtstruct::DeidMap::load(map_file);
    std::vector<std::string> files;
    if (fs::is_directory(in, ec)) {
      for (auto& e : fs::recursive_directory_iterator(in, ec))
        if (e.is_regular_file() && !rtstruct::dicom_modality(e.path().string()).empty()) files.push_back(e.path().string());
    } else {
      files.push_back(in);
    }
    std::sort(files.begin(), files.end());
    core::ensure_directory(out, "reidentify");
    // Each file keeps its path relative to IN, so two RS.dcm in different folders stay two.
    for (const auto& f : files) {
      const fs::path rel = fs::is_directory(in, ec) ? fs::relative(f, in, ec) : fs::path(f).filename();
      const fs::path target = fs::path(out) / rel;
      core::ensure_directory(target.parent_path().string(), "reidentify");
      for (const auto& w : rtstruct::reidentify_file(f, target.string(), map))
        std::fprintf(stderr, "warning: %s\n", w.c_str());
    }
    if (!args.quiet) std::printf("re-identified %zu files into %s\n", files.size(), out.c_str());
    return 0;
  }

  rtstruct::DeidMap map = rtstruct::DeidMap::load(map_file);
  core::Progress progress(ctx.progress, "deidentify");
  rtstruct::DeidDirectoryResult r;
  try {
    r = rtstruct::deidentify_directory(in, out, map, {}, progress);
  } catch (...) {
    // Whatever was written to OUT is in the map: a rerun then gives the same UIDs.
    if (!map.studies.empty()) {
      try {
        map.save(map_file);
        std::fprintf(stderr, "note: map %s saved for the files written before the error\n", map_file.c_str());
      } catch (const core::Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
      }
    }
    throw;
  }
  if (!r.files.empty()) map.save(map_file);
  std::set<std::string> studies;
  for (const auto& f : r.files) studies.insert(f.pseudo_study_uid);
  // A truncated or damaged slice is skipped like any non-DICOM file: name them, so that an
  // incomplete series is noticed.
  for (std::size_t n = 0; n < r.skipped.size() && n < 10; ++n)
    std::fprintf(stderr, "warning: skipped %s: not a readable DICOM file\n", r.skipped[n].c_str());
  if (r.skipped.size() > 10) std::fprintf(stderr, "warning: ... and %zu more skipped\n", r.skipped.size() - 10);
  std::size_t burned = 0;
  for (const auto& f : r.files)
    if (f.burned_in_annotation && burned++ < 10)
      std::fprintf(stderr,
                   "warning: %s: Burned In Annotation (0028,0301) is YES: its pixels may show the patient's "
                   "name or other identifying text, which de-identification does not remove (%s is NOT "
                   "de-identified; check it before sharing)\n",
                   f.source_file.c_str(), fs::path(f.file).filename().c_str());
  if (burned > 10) std::fprintf(stderr, "warning: ... and %zu more with Burned In Annotation YES\n", burned - 10);
  for (const auto& [file, why] : r.failed)
    std::fprintf(stderr, "error: %s: %s: not de-identified\n", file.c_str(), why.c_str());
  if (!args.quiet) {
    std::printf("de-identified %zu files (%zu studies) into %s\n", r.files.size(), studies.size(), out.c_str());
    if (!r.skipped.empty()) std::printf("skipped %zu non-DICOM files\n", r.skipped.size());
    if (!r.files.empty())
      std::printf("map %s (holds the original identities: keep it apart from the de-identified data)\n",
                  map_file.c_str());
  }
  if (!r.failed.empty())
    core::fail<core::InvalidInput>(
        "deidentify", in,
        std::to_string(r.failed.size()) + " DICOM file(s) not de-identified (named above); the other " +
            std::to_string(r.files.size()) + " are in OUT and in the map: fix those files and run the same "
            "command again (the map gives the same UIDs)");
  return 0;
}

}  // namespace

Command make_deidentify_command() {
  Command c;
  c.name = "deidentify";
  c.summary = "de-identify DICOM files (PS3.15 Basic Profile), or re-identify results";
  c.description =
      "Writes a de-identified copy of every DICOM file under IN into OUT following the DICOM\n"
      "PS3.15 Basic Application Level Confidentiality Profile: identifying attributes removed,\n"
      "emptied or replaced, private attributes removed, UIDs replaced through one consistent map\n"
      "per study (references between the objects stay valid), patient name and ID replaced by a\n"
      "pseudonym. The map (--map, required) keeps the original identities;\n"
      "--reidentify uses it to put back the UIDs and patient/study attributes into objects derived\n"
      "from the de-identified data (e.g. an RT-STRUCT), with the ROI names and descriptions of an\n"
      "RT-STRUCT that was de-identified with the same map. --map is required and may not be\n"
      "inside OUT: keep the map in a private folder (it is written readable by its owner only).\n"
      "A DICOM file that cannot be de-identified (no Study or SOP Instance UID) is named and left\n"
      "out, the others are written and the map saved, and the exit status is 1.";
  c.positionals = {{"IN", "DICOM file or directory"}, {"OUT", "output directory"}};
  c.options = {
      {"--map", "MAP.json", "de-identification map (outside OUT; extended, never overwritten)", true, "", false,
       kMapRequired},
      {"--reidentify", "", "re-identify IN (objects derived from de-identified data) into OUT", false, "", false},
  };
  c.run = run_deidentify;
  return c;
}

}  // namespace isoline::cli
