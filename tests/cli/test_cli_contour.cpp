// `isoline contour` on a small phantom: what reaches the RT-STRUCT and the masks folder (model,
// whole-image warnings, quality.json), output names, --structures and --device mistakes found
// before any work, and outputs committed all together or not at all (contour audit, items 3,
// 7-10, 15, 16).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "isoline/core/atomic_file.h"
#include "isoline/core/error.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using isoline::test::CommandResult;
using isoline::test::isoline_bin;
using isoline::test::run_command;
using isoline::test::TempDir;
using isoline::test::cli;
using isoline::test::has;
using isoline::test::slurp;
using isoline::test::small_phantom;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The whole-image warnings `isoline contour` printed ("warning: CT: text"), not the series
// reader's ("skipped 1 non-image DICOM object (RS.dcm: RT Structure Set Storage)").
std::vector<std::string> warnings_of(const std::string& output, const std::string& ct) {
  std::vector<std::string> w;
  const std::string prefix = "warning: " + ct + ": ";
  for (std::size_t p = output.find(prefix); p != std::string::npos; p = output.find(prefix, p + 1)) {
    const std::size_t b = p + prefix.size();
    const std::string text = output.substr(b, output.find('\n', b) - b);
    if (!has(text, "non-image DICOM")) w.push_back(text);
  }
  return w;
}

// Runs isoline with `args`; `on_line` sees every line of its output as it comes (stdout and
// stderr together) and may act on the running process (pid). Returns the exit status, or 128 +
// the signal that killed it.
int run_watching(const std::vector<std::string>& args, const std::function<void(const std::string&, pid_t)>& on_line,
                 std::string* output) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    ::close(fds[0]);
    ::close(fds[1]);
    const std::string bin = isoline_bin();
    std::vector<char*> argv{const_cast<char*>(bin.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  FILE* in = ::fdopen(fds[0], "r");
  char buf[4096];
  while (std::fgets(buf, sizeof buf, in)) {
    *output += buf;
    on_line(buf, pid);
  }
  std::fclose(in);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

// Item 3 + 15 + 7 + 9: the whole-image warnings and the model's name and version are in the
// RT-STRUCT (StructureSetDescription), the set is UNAPPROVED, --out X.DCM is an RT-STRUCT in any
// case, and --structures names are trimmed; -q still prints the warnings.
TEST(ContourCli, RtStructKeepsModelAndWholeImageWarnings) {
  TempDir t;
  const std::string c = small_phantom(t, "short", 4);  // 16 mm: shorter than the model's scope allows
  const std::string rs = t.file("out/RS.DCM");
  fs::create_directories(t.file("out"));
  auto r = cli("contour -q " + c + "/dicom --out " + rs + " --structures ' Brainstem , ,Body '");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(fs::is_regular_file(rs)) << "an RT-STRUCT, not a masks directory";
  const auto warnings = warnings_of(r.output, c + "/dicom");
  ASSERT_FALSE(warnings.empty()) << "a 16 mm CT is outside the model's scope\n" << r.output;
  const std::string bytes = slurp(rs);
  EXPECT_TRUE(has(bytes, "Isoline auto-contours, model isoline-hn-2p5d 2.0.1: review required")) << bytes.size();
  for (const auto& w : warnings) EXPECT_TRUE(has(bytes, "WARNING: " + w.substr(0, 40))) << w;
  EXPECT_TRUE(has(bytes, "UNAPPROVED"));
  EXPECT_TRUE(has(bytes, "Brainstem"));
  EXPECT_FALSE(has(r.output, "wrote")) << "-q";

  // An ordinary CT: the description names the model and says nothing else.
  const std::string c2 = small_phantom(t, "case");
  r = cli("contour -q " + c2 + "/dicom --out " + t.file("out/rs2.Dcm") + " --structures Brainstem");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(fs::is_regular_file(t.file("out/rs2.Dcm")));
}

// Item 3 + 10: masks output keeps the table's content in quality.json (written with the masks,
// as a whole); a relative --out whose parents do not exist is created like an absolute one.
TEST(ContourCli, MasksCarryQualityJsonAndRelativeParentsAreCreated) {
  TempDir t;
  const std::string c = small_phantom(t, "short", 4);  // 16 mm: shorter than the model's scope allows
  auto r = run_command("cd " + t.str() + " && " + isoline_bin() +
                       " contour -q short/ct.nii.gz --out newA/newB/m --structures Brainstem,Mandible,Body");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto warnings = warnings_of(r.output, "short/ct.nii.gz");
  EXPECT_FALSE(warnings.empty()) << "-q still prints the warnings\n" << r.output;
  ASSERT_TRUE(fs::exists(t.file("newA/newB/m/Brainstem.nii.gz")));
  const std::string q = slurp(t.file("newA/newB/m/quality.json"));
  for (const char* want : {"\"model\": \"isoline-hn-2p5d\"", "\"model_version\": \"2.0.1\"", "\"in_scope\": false",
                           "\"Brainstem\"", "\"Mandible\"", "\"Body\"", "\"volume_cc\"", "\"confidence\"", "\"flags\""})
    EXPECT_TRUE(has(q, want)) << want << "\n" << q;
  for (const auto& w : warnings) EXPECT_TRUE(has(q, w.substr(0, 40))) << w;
  // --masks beside an RT-STRUCT gets one too; no temporary is left anywhere.
  r = cli("contour -q " + c + "/dicom --out " + t.file("rs.dcm") + " --masks " + t.file("x/y/masks") +
          " --structures Brainstem");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(t.file("x/y/masks/quality.json")));
  for (const auto& e : fs::recursive_directory_iterator(t.path()))
    EXPECT_FALSE(has(e.path().filename().string(), ".tmp-")) << e.path();
}

// Item 9 + 16: mistakes in --structures, --device and the input are found before any work.
TEST(ContourCli, ArgumentMistakesAreRefusedBeforeWork) {
  TempDir t;
  const std::string c = small_phantom(t, "case");
  for (const char* bad : {"Brainstem,Brainstem", "' , ,'", "Body,External", "Brainstem --structures ' Brainstem'"}) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = cli("contour -q " + c + "/ct.nii.gz --out " + t.file("m") + " --structures " + bad);
    EXPECT_EQ(r.exit_code, 2) << bad << "\n" << r.output;
    EXPECT_TRUE(has(r.output, "--structures")) << r.output;
    EXPECT_LT(seconds_since(t0), 3.0) << bad;
    EXPECT_FALSE(fs::exists(t.file("m"))) << bad;
  }
  // --device gpu is accepted as cuda (core::parse_device); without CUDA in LibTorch the error
  // names what was typed.
  if (!has(cli("--version").output, "contouring network on cuda: yes")) {
    auto r = cli("contour -q " + c + "/ct.nii.gz --out " + t.file("m") + " --device gpu");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(has(r.output, "--device gpu:")) << r.output;
    EXPECT_FALSE(fs::exists(t.file("m")));
  }
  // One DICOM file is one slice: the series directory is asked for.
  std::string slice;
  for (const auto& e : fs::directory_iterator(c + "/dicom"))
    if (e.path().filename().string().rfind("RS", 0) != 0) slice = e.path().string();
  ASSERT_FALSE(slice.empty());
  auto r = cli("contour -q " + slice + " --out " + t.file("m"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "give the series directory")) << r.output;
  EXPECT_FALSE(fs::exists(t.file("m")));
  // A folder where the RT-STRUCT or the report file would go.
  fs::create_directories(t.file("r.html"));
  r = cli("contour -q " + c + "/dicom --out " + t.file("rs.dcm") + " --report " + t.file("r.html"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "is a directory")) << r.output;
  EXPECT_FALSE(fs::exists(t.file("rs.dcm")));
}

// Item 10: a directory where no file can be created (/proc, even for root) is refused at once.
TEST(ContourCli, UnwritableOutputDirectoryIsRefusedBeforeWork) {
  TempDir t;
  const std::string c = small_phantom(t, "case");
  for (const char* out : {"/proc/isoline-test-rs.dcm", "/proc/isoline-test/masks"}) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = cli("contour -q " + c + "/dicom --out " + out + " --structures Brainstem");
    EXPECT_EQ(r.exit_code, 1) << out << "\n" << r.output;
    EXPECT_TRUE(has(r.output, "/proc is not writable")) << r.output;
    EXPECT_LT(seconds_since(t0), 3.0) << out;
  }
}

// Item 8: RS, masks, report and preview are committed together after the last check for a stop.
// (a) the report's folder removed during the run: exit 1 and none of the outputs;
// (b) SIGTERM once writing has begun: exit 143 and none of them, or (had it finished first)
//     exit 0 and all of them; never a "stopped" run that left its outputs.
TEST(ContourCli, FailureOrStopLeavesNoOutputs) {
  TempDir t;
  const std::string c = small_phantom(t, "case");
  fs::create_directories(t.file("rdir"));
  fs::create_directories(t.file("out"));
  std::string output;
  int rc = run_watching({"contour", c + "/dicom", "--out", t.file("out/RS.dcm"), "--masks", t.file("out/masks"),
                         "--report", t.file("rdir/r.html")},
                        [&](const std::string& line, pid_t) {
                          if (has(line, "contour/segment")) fs::remove_all(t.file("rdir"));
                        },
                        &output);
  EXPECT_EQ(rc, 1) << output;
  EXPECT_TRUE(has(output, "rdir")) << output;
  EXPECT_FALSE(fs::exists(t.file("out/RS.dcm"))) << output;
  EXPECT_FALSE(fs::exists(t.file("out/masks"))) << output;
  EXPECT_TRUE(fs::is_empty(t.file("out"))) << "a temporary was left behind";

  fs::create_directories(t.file("rdir"));
  output.clear();
  bool sent = false;
  rc = run_watching({"contour", c + "/dicom", "--out", t.file("out/RS.dcm"), "--masks", t.file("out/new/masks"),
                     "--report", t.file("rdir/r.html"), "--preview", t.file("rdir/p.png")},
                    [&](const std::string& line, pid_t pid) {
                      if (!sent && has(line, "contour/write")) sent = ::kill(pid, SIGTERM) == 0;
                    },
                    &output);
  ASSERT_TRUE(sent) << output;
  const std::vector<std::string> all{t.file("out/RS.dcm"), t.file("out/new/masks/quality.json"), t.file("rdir/r.html"),
                                     t.file("rdir/p.png")};
  if (rc == 143) {
    EXPECT_TRUE(has(output, "stopped (unfinished outputs removed)")) << output;
    for (const auto& f : all) EXPECT_FALSE(fs::exists(f)) << f << "\n" << output;
    EXPECT_FALSE(fs::exists(t.file("out/new"))) << "a folder made for the masks is removed too";
    EXPECT_TRUE(fs::is_empty(t.file("out")));
    EXPECT_TRUE(fs::is_empty(t.file("rdir")));
  } else {
    EXPECT_EQ(rc, 0) << output;
    for (const auto& f : all) EXPECT_TRUE(fs::exists(f)) << f << "\n" << output;
  }
}

// The group behind item 8: nothing before commit(), the created parents removed again, and a
// failing rename in commit() takes back the targets it had already created.
TEST(AtomicOutputs, AllOrNothing) {
  TempDir t;
  {
    isoline::core::AtomicOutputs outs;
    std::ofstream(outs.add(t.file("a.txt"))) << "a";
    fs::create_directories(outs.add(t.file("p/q/dir"), true, true) + "/sub");
    EXPECT_TRUE(fs::is_directory(t.file("p/q")));
  }  // no commit
  EXPECT_TRUE(fs::is_empty(t.path()));

  fs::create_directories(t.file("busy/x"));  // a non-empty directory cannot be replaced by a file
  std::ofstream(t.file("old.txt")) << "old";
  {
    isoline::core::AtomicOutputs outs;
    std::ofstream(outs.add(t.file("new.txt"))) << "new";
    std::ofstream(outs.add(t.file("old.txt"))) << "replaced";
    std::ofstream(outs.add(t.file("busy"))) << "file";
    EXPECT_THROW(outs.commit(), isoline::core::IoError);
  }
  EXPECT_FALSE(fs::exists(t.file("new.txt")));
  EXPECT_TRUE(fs::is_directory(t.file("busy/x")));
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(t.path())) left.push_back(e.path().filename().string());
  EXPECT_EQ(left.size(), 2u) << "busy and old.txt only";

  isoline::core::AtomicOutputs outs;
  std::ofstream(outs.add(t.file("n/one.txt"), false, true)) << "1";
  std::ofstream(outs.add(t.file("two.txt"))) << "2";
  outs.commit();
  EXPECT_EQ(slurp(t.file("n/one.txt")), "1");
  EXPECT_EQ(slurp(t.file("two.txt")), "2");
}
