// Commands given what other commands write (session 19 docs audit): `serve` on an `isoline run`
// output of a DICOM CT, `dvh --masks` on a phantom folder, `run --targets` with the RT-STRUCT
// of the CT's own folder; and help texts that say what the code does.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <signal.h>
#include <sys/types.h>

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace fs = std::filesystem;
using isoline::test::cli;
using isoline::test::has;
using isoline::test::isoline_bin;
using isoline::test::run_command;
using isoline::test::slurp;
using isoline::test::small_phantom;
using isoline::test::TempDir;

namespace {

// Starts `isoline serve DIR --port 0` in the background and returns what it printed once it
// printed its URL or exited (at most 120 s); the server is then stopped (SIGTERM).
std::string serve_output(const TempDir& t, const std::string& dir) {
  const std::string log = t.file("serve.log"), pid_file = t.file("serve.pid");
  run_command(isoline_bin() + " serve " + dir + " --port 0 > " + log + " 2>&1 & echo $! > " + pid_file);
  const pid_t pid = static_cast<pid_t>(std::stol(slurp(pid_file)));
  auto alive = [pid] { return ::kill(pid, 0) == 0; };
  std::string out;
  for (int i = 0; i < 1200; ++i) {
    out = slurp(log);
    if (has(out, "open http") || !alive()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(pid, SIGTERM);
  for (int i = 0; i < 100 && alive(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return slurp(log);
}

}  // namespace

// `run` on a DICOM CT writes no CT/ (metrics.json records the CT's path); `serve` opened only
// folders with ct.nii.gz and said "no ct.nii.gz". `run --targets dicom/RS.dcm` warned that it
// skipped that very RS.dcm.
TEST(CliInputs, ARunOutputOfADicomCtOpensInServeAndItsTargetsAreNotCalledSkipped) {
  TempDir t;
  const std::string ph = small_phantom(t, "ph");
  // A second structure set beside the CT is left out, and named (only it).
  fs::copy_file(ph + "/dicom/RS.dcm", ph + "/dicom/old_RS.dcm");
  auto r = cli("run -q " + ph + "/dicom --targets " + ph + "/dicom/RS.dcm --iterations 5 --out " + t.file("run"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "skipped 1 non-image DICOM object (old_RS.dcm: RTStructureSetStorage)")) << r.output;
  EXPECT_FALSE(has(r.output, "(RS.dcm")) << r.output;
  ASSERT_FALSE(fs::exists(t.file("run/CT")));

  const std::string out = serve_output(t, t.file("run"));
  EXPECT_TRUE(has(out, "open http://127.0.0.1:")) << out;
  EXPECT_FALSE(has(out, "error")) << out;
  EXPECT_TRUE(fs::exists(t.file("run/review/review.sqlite")));
  EXPECT_FALSE(fs::exists(t.file("run/review/dicom_ct")));  // approval references the DICOM CT itself

  // The CT moved away: the message names the path metrics.json gives and how to make a case.
  fs::remove_all(t.file("run/review"));
  fs::rename(ph + "/dicom", t.file("moved"));
  r = cli("serve " + t.file("run") + " --port 0");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, ph + "/dicom (named in its metrics.json), no longer exists")) << r.output;
  EXPECT_TRUE(has(r.output, "isoline convert DICOM_CT --out CASE/ct.nii.gz")) << r.output;
}

// `dvh --masks PHANTOM` said "no such structure (there are: )": the masks are in masks/.
TEST(CliInputs, DvhReadsACaseFoldersMasksAndNeverListsNothing) {
  TempDir t;
  const std::string ph = small_phantom(t, "ph");
  const std::string dose = ph + "/ct.nii.gz";  // any image on the CT grid will do as a "dose"
  auto r = cli("dvh --dose " + dose + " --masks " + ph + " --structure Body -q");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "note: dvh: " + ph + " holds no <name>.nii.gz masks: reading " + ph + "/masks"))
      << r.output;
  EXPECT_TRUE(has(r.output, "\nBody ")) << r.output;
  fs::create_directories(t.file("empty"));
  r = cli("dvh --dose " + dose + " --masks " + t.file("empty") + " --structure Body -q");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "dvh: " + t.file("empty") + ": holds no <name>.nii.gz masks")) << r.output;
  EXPECT_FALSE(has(r.output, "there are: )")) << r.output;
}

TEST(CliInputs, HelpSaysWhatIsRequiredAndTheDefaults) {
  auto r = cli("deidentify --help");
  EXPECT_TRUE(has(r.output, "usage: isoline deidentify --map MAP.json [--reidentify] IN OUT")) << r.output;
  r = cli("deidentify a b");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(has(r.output, "--map MAP.json is required: the map holds the original patient identities")) << r.output;
  r = cli("register --help");
  EXPECT_TRUE(has(r.output, "(Gaussian sigma, mm) (default: 2.5)")) << r.output;
  EXPECT_TRUE(has(r.output, "coarse to fine (default: 100,80,50)")) << r.output;
  EXPECT_TRUE(has(r.output, "(default: 20261125)")) << r.output;
  r = cli("adapt --help");
  EXPECT_TRUE(has(r.output, "CT/, ct/, ct.nii.gz, ct.nii, ct.nrrd, ct.mha or dicom/")) << r.output;
  EXPECT_TRUE(has(r.output, "metrics.json records")) << r.output;
}

// The guide's -q rule (docs/cli.md) sorts every command: those that take -q (their help lists it)
// are named where it says what -q hides or keeps, those that refuse it where it says so. Session 23
// audit: `jobs`, which takes -q, was in neither list.
TEST(CliInputs, TheGuidesQuietRuleNamesEveryCommandInTheRightList) {
  const std::string guide = slurp(std::string(ISOLINE_SOURCE_DIR) + "/docs/cli.md");
  const auto begin = guide.find("`-q`/`--quiet` hides");
  const auto warnings = guide.find("Warnings (`warning: ...` on stderr)", begin);
  const auto end = guide.find("\n- ", warnings);
  ASSERT_NE(begin, std::string::npos);
  ASSERT_NE(warnings, std::string::npos);
  const std::string takes = guide.substr(begin, warnings - begin), refuses = guide.substr(warnings, end - warnings);
  std::istringstream help(cli("--help").output);
  std::string line;
  bool in_commands = false;
  int n = 0;
  while (std::getline(help, line)) {
    if (line == "commands:") {
      in_commands = true;
      continue;
    }
    if (!in_commands) continue;
    if (line.empty()) break;
    const std::string name = line.substr(2, line.find(' ', 2) - 2);
    const bool takes_q = has(cli(name + " --help").output, "-q, --quiet");
    const std::string quoted = "`" + name + "`";
    EXPECT_TRUE(has(takes_q ? takes : refuses, quoted))
        << name << (takes_q ? " takes -q but the guide's -q rule does not say what it hides"
                            : " refuses -q but the guide does not list it among those that do");
    EXPECT_FALSE(has(takes_q ? refuses : takes, quoted)) << name << " is in the wrong list";
    ++n;
  }
  EXPECT_GE(n, 15);
}
