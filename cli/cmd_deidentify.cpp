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

int run_deidentify(const Args& args, const Context& ctx) {
  const std::string in = args.positional(0);
  const std::string out = args.positional(1);
  std::string trimmed = out;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  const std::string map_file = args.get("--map").value_or(trimmed + ".deid-map.json");
  std::error_code ec;
  if (!fs::exists(in, ec)) core::fail<core::IoError>("deidentify", in, "no such file or directory");

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
      rtstruct::reidentify_file(f, target.string(), map);
    }
    if (!args.quiet) std::printf("re-identified %zu files into %s\n", files.size(), out.c_str());
    return 0;
  }

  rtstruct::DeidMap map = rtstruct::DeidMap::load(map_file);
  core::Progress progress(ctx.progress, "deidentify");
  auto r = rtstruct::deidentify_directory(in, out, map, {}, progress);
  map.save(map_file);
  std::set<std::string> studies;
  for (const auto& f : r.files) studies.insert(f.pseudo_study_uid);
  // A truncated or damaged slice is skipped like any non-DICOM file: name them, so that an
  // incomplete series is noticed.
  for (std::size_t n = 0; n < r.skipped.size() && n < 10; ++n)
    std::fprintf(stderr, "warning: skipped %s: not a readable DICOM file\n", r.skipped[n].c_str());
  if (r.skipped.size() > 10) std::fprintf(stderr, "warning: ... and %zu more skipped\n", r.skipped.size() - 10);
  if (!args.quiet) {
    std::printf("de-identified %zu files (%zu studies) into %s\n", r.files.size(), studies.size(), out.c_str());
    if (!r.skipped.empty()) std::printf("skipped %zu non-DICOM files\n", r.skipped.size());
    std::printf("map %s (holds the original identities: keep it apart from the de-identified data)\n",
                map_file.c_str());
  }
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
      "pseudonym. The map (--map, default OUT.deid-map.json) keeps the original identities;\n"
      "--reidentify uses it to put back the UIDs and patient/study attributes into objects derived\n"
      "from the de-identified data (e.g. an RT-STRUCT).";
  c.positionals = {{"IN", "DICOM file or directory"}, {"OUT", "output directory"}};
  c.options = {
      {"--map", "JSON", "de-identification map (default OUT.deid-map.json; extended, never overwritten)", false, "", false},
      {"--reidentify", "", "re-identify IN (objects derived from de-identified data) into OUT", false, "", false},
  };
  c.run = run_deidentify;
  return c;
}

}  // namespace isoline::cli
