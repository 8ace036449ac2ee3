// The isoline command never mixes patients, never destroys a user's files, checks what it can
// before long work, and leaves nothing half-written when interrupted. Each case here was a
// defect found by running the commands the way users do (session 11 audit).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
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
using isoline::test::small_phantom;

namespace {

void touch(const std::string& path) { std::ofstream(path) << "keep me\n"; }

// Entries of `dir` whose name starts with `prefix` (temporaries are ".<name>.tmp-...").
int count_prefixed(const fs::path& dir, const std::string& prefix) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().filename().string().rfind(prefix, 0) == 0;
  return n;
}

}  // namespace

TEST(CliSafety, OutputDirectoryIsReplacedWholeAndOnlyWithOverwrite) {
  TempDir t;
  const std::string c = small_phantom(t, "case");
  touch(c + "/notes.txt");
  // Again into the same, non-empty directory: refused, nothing touched.
  auto r = cli("phantom hn -q --size 64,64,24 --spacing 4,4,4 --seed 4 --out " + c);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "exists and is not empty")) << r.output;
  EXPECT_TRUE(has(r.output, "--overwrite")) << r.output;
  EXPECT_TRUE(fs::exists(c + "/notes.txt"));
  // With --overwrite: the new case only, no older file beside it.
  r = cli("phantom hn -q --size 64,64,24 --spacing 4,4,4 --seed 4 --overwrite --out " + c);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(fs::exists(c + "/notes.txt"));
  EXPECT_TRUE(fs::exists(c + "/ct.nii.gz"));
  EXPECT_EQ(count_prefixed(t.path(), ".case"), 0);
  // A file where a directory is wanted.
  touch(t.file("afile"));
  r = cli("phantom hn -q --size 64,64,24 --spacing 4,4,4 --out " + t.file("afile"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "not a directory")) << r.output;

  // convert RT-STRUCT -> masks into a non-empty folder, then with --overwrite.
  fs::create_directories(t.file("masks"));
  touch(t.file("masks/CTV.nii.gz.old"));
  r = cli("convert -q " + c + "/dicom/RS.dcm --ct " + c + "/dicom --out " + t.file("masks"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  r = cli("convert -q " + c + "/dicom/RS.dcm --ct " + c + "/dicom --out " + t.file("masks") + "/ --overwrite");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(fs::exists(t.file("masks/CTV.nii.gz.old")));
  EXPECT_TRUE(fs::exists(t.file("masks/PTV70.nii.gz")));
  // An --roi that is not in the RT-STRUCT: an error listing the ROIs, no directory.
  r = cli("convert -q " + c + "/dicom/RS.dcm --ct " + c + "/dicom --out " + t.file("m2") + " --roi Nonexistent");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "Nonexistent: no such structure (there are: ")) << r.output;
  EXPECT_FALSE(fs::exists(t.file("m2")));
}

TEST(CliSafety, AdaptNeverReplacesItsOwnInputs) {
  TempDir t;
  fs::create_directories(t.file("plan"));
  touch(t.file("plan/plan.json"));
  // --out the plan directory itself, or a folder holding it: refused even with --overwrite,
  // before anything is read (the plan here is not even valid).
  for (const std::string& out : std::vector<std::string>{t.file("plan"), t.str(), t.file("plan") + "/"}) {
    auto r = cli("adapt -q --plan-dir " + t.file("plan") + " --new-ct " + t.file("new.nii.gz") + " --out " + out +
                     " --overwrite --no-replan");
    EXPECT_EQ(r.exit_code, 1) << out << "\n" << r.output;
    EXPECT_TRUE(has(r.output, "would replace the input")) << r.output;
  }
  EXPECT_TRUE(fs::exists(t.file("plan/plan.json")));
  fs::create_directories(t.file("out"));
  touch(t.file("out/keep.txt"));
  auto r = cli("adapt -q --plan-dir " + t.file("plan") + " --new-ct " + t.file("new.nii.gz") + " --out " +
                   t.file("out") + " --no-replan");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "exists and is not empty")) << r.output;
  EXPECT_TRUE(fs::exists(t.file("out/keep.txt")));
}

// Session 16 audit of the guide: `plan` and `adapt` planned for 12 s / 94 s before finding that
// --out could not be written; `convert` RT-STRUCT -> masks did not create missing parent
// folders; an image given --out x.nrrd became a DICOM series in a folder named x.nrrd.
TEST(CliSafety, PlanAdaptAndConvertCheckWhereTheyWriteAndConvertImagesBetweenFormats) {
  TempDir t;
  const std::string c = small_phantom(t, "case");
  auto r = cli("plan -q --ct " + c + "/ct.nii.gz --structures " + c + "/masks --out /proc/isoline-test-plan");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "/proc is not writable")) << r.output;  // the check, not the final write
  fs::create_directories(t.file("plan"));
  touch(t.file("plan/plan.json"));
  r = cli("adapt -q --plan-dir " + t.file("plan") + " --new-ct " + c + "/ct.nii.gz --out /proc/isoline-test-adapt");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "/proc is not writable")) << r.output;
  // RT-STRUCT -> masks under folders that do not exist yet.
  r = cli("convert -q " + c + "/dicom/RS.dcm --ct " + c + "/dicom --out " + t.file("newA/newB/m"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(t.file("newA/newB/m/Brainstem.nii.gz")));
  r = cli("convert -q " + c + "/dicom/RS.dcm --out /proc/isoline-test-masks");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "/proc is not writable")) << r.output;
  // NIfTI -> NRRD and MetaImage: the same image, not a DICOM series.
  for (const char* name : {"ct.nrrd", "ct.mha"}) {
    r = cli("convert -q " + c + "/ct.nii.gz --out " + t.file(name));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    ASSERT_TRUE(fs::is_regular_file(t.file(name))) << name;
    r = cli("info " + t.file(name));
    const auto ref = cli("info " + c + "/ct.nii.gz");
    const auto from = [](const std::string& s) { return s.substr(s.find("size")); };
    EXPECT_EQ(from(r.output), from(ref.output)) << r.output << ref.output;
  }
}

// Session 23 audit: `run --out /proc/xx` got past the checks and failed at the end naming its
// temporary ("cannot create temporary directory /proc/.xx.tmp-21941-0-48275: No such file or
// directory"); `phantom --out nope/x` generated the whole phantom before saying that nope does
// not exist.
TEST(CliSafety, RunAndPhantomCheckWhereTheyWriteBeforeAnyWork) {
  TempDir t;
  const std::string c = small_phantom(t, "case");
  auto r = cli("run -q " + c + "/ct.nii.gz --out /proc/isoline-test-run");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "run: /proc/isoline-test-run: directory /proc is not writable")) << r.output;
  EXPECT_FALSE(has(r.output, ".tmp-")) << r.output;
  // The writer itself, should a folder stop taking files after the check: the output and the
  // reason, never the temporary's name.
  try {
    isoline::core::AtomicOutput out("/proc/isoline-test-atomic", /*directory=*/true);
    ADD_FAILURE() << "a temporary folder was made in /proc";
  } catch (const isoline::core::IoError& e) {
    const std::string m = e.what();
    EXPECT_TRUE(has(m, "/proc/isoline-test-atomic: directory /proc is not writable")) << m;
    EXPECT_FALSE(has(m, ".tmp-")) << m;
  }
  // phantom: before generating (progress would show "generate"), in well under a second.
  const auto t0 = std::chrono::steady_clock::now();
  r = cli("phantom hn --size 128,128,64 --out " + t.file("nope/x"));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "phantom: " + t.file("nope/x") + ": directory " + t.file("nope") + " does not exist"))
      << r.output;
  EXPECT_FALSE(has(r.output, "generate")) << "the phantom was generated first:\n" << r.output;
  EXPECT_FALSE(fs::exists(t.file("nope")));
  std::printf("phantom --out nope/x refused in %.2f s\n", secs);
  r = cli("phantom hn -q --size 64,64,16 --spacing 4,4,4 --out /proc/isoline-test-phantom");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "/proc is not writable")) << r.output;
  // "--out new/" names the folder new, whose parent exists: written.
  r = cli("phantom hn -q --size 32,32,8 --spacing 6,6,6 --no-dicom --out " + t.file("new") + "/");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(t.file("new/ct.nii.gz")));
}

TEST(CliSafety, DvhRefusesAnotherScansStructuresAndChecksItsArgumentsFirst) {
  TempDir t;
  const std::string a = small_phantom(t, "a"), b = small_phantom(t, "b", 24, 11);
  // A dose in a's frame of reference (1 Gy inside PTV70).
  auto r = cli("convert -q " + a + "/masks/PTV70.nii.gz --to rtdose --ct " + a + "/dicom --out " + t.file("rd.dcm"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = cli("dvh -q --dose " + t.file("rd.dcm") + " --rtstruct " + b + "/dicom/RS.dcm");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "frame of reference differs from the dose's")) << r.output;
  EXPECT_FALSE(has(r.output, "vol[cc]")) << r.output;
  r = cli("dvh -q --dose " + t.file("rd.dcm") + " --rtstruct " + a + "/dicom/RS.dcm --structure PTV70");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "PTV70")) << r.output;

  const std::string dose = a + "/masks/PTV70.nii.gz";  // any image on a's grid will do as a dose
  // A case folder as --masks: its CT and label map are not structures; its masks/ are read,
  // and the note says so (docs audit 19).
  r = cli("dvh -q --dose " + dose + " --masks " + a);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "holds no <name>.nii.gz masks: reading " + a + "/masks")) << r.output;
  EXPECT_TRUE(has(r.output, "\nPTV70 ")) << r.output;
  EXPECT_FALSE(has(r.output, "\nct ") || has(r.output, "\nlabels ")) << r.output;
  // A prescription that is not a number, a name that is not there, a bad bin, an output in a
  // missing folder: errors before any table is printed.
  for (const std::string& bad : std::vector<std::string>{"--target PTV70=7O", "--target PTV70=-5", "--structure Parotid_L",
                                "--target Nope=70", "--bin 0 --csv " + t.file("d.csv"),
                                "--csv " + t.file("d.csv") + " --json " + t.file("nodir/d.json"),
                                "--supersample -3"}) {
    r = cli("dvh -q --dose " + dose + " --masks " + a + "/masks " + bad);
    EXPECT_NE(r.exit_code, 0) << bad << "\n" << r.output;
    EXPECT_FALSE(has(r.output, "vol[cc]")) << bad << "\n" << r.output;
    EXPECT_FALSE(fs::exists(t.file("d.csv"))) << bad;
  }
  r = cli("dvh -q --dose " + dose + " --masks " + a + "/masks --structure Parotid_L");
  EXPECT_TRUE(has(r.output, "Parotid_L: no such structure (there are: Body, Brainstem")) << r.output;
}

TEST(CliSafety, RegisterChecksItsRequestBeforeWorking) {
  TempDir t;
  const std::string ct = small_phantom(t, "a") + "/ct.nii.gz";
  auto r = cli("register -q " + ct + " " + ct + " --field-in " + ct + " --warped " + t.file("w.nii.gz"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "not a displacement field (1 value(s) per voxel")) << r.output;
  EXPECT_FALSE(fs::exists(t.file("w.nii.gz")));
  for (const std::string& bad : std::vector<std::string>{"--rigid-only --no-rigid --out " + t.file("f.nii.gz"), std::string(""),
                                "--out " + t.file("f.txt"), "--out " + t.file("nodir/f.nii.gz"),
                                "--out " + t.file("f.nii.gz") + " --landmarks " + t.file("one.txt")}) {
    const auto t0 = std::chrono::steady_clock::now();
    r = cli("register -q " + ct + " " + ct + " " + bad);
    EXPECT_NE(r.exit_code, 0) << bad << "\n" << r.output;
    EXPECT_FALSE(fs::exists(t.file("f.nii.gz"))) << bad;
    // The registration never started (it takes several seconds even here).
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 3.0) << bad;
  }
}

TEST(CliSafety, DeidentifyRefusesAnInputWithoutDicom) {
  TempDir t;
  fs::create_directories(t.file("empty"));
  auto r = cli("deidentify -q " + t.file("empty") + " " + t.file("out") + " --map " + t.file("m.json"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "no files to de-identify")) << r.output;
  fs::create_directories(t.file("text"));
  touch(t.file("text/a.dcm"));
  r = cli("deidentify -q " + t.file("text") + " " + t.file("out") + " --map " + t.file("m.json"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "no readable DICOM file among 1 file(s)")) << r.output;
  EXPECT_FALSE(fs::exists(t.file("out")));
}

TEST(CliSafety, EvalNamesCaseFoldersOnOneSideOnly) {
  TempDir t;
  const std::string a = small_phantom(t, "a");
  for (const std::string& d : std::vector<std::string>{"pred/caseA", "pred/caseB", "ref/caseA", "ref/caseC"}) {
    fs::create_directories(t.file(d));
    fs::copy_file(a + "/masks/Brainstem.nii.gz", t.file(d + "/Brainstem.nii.gz"));
  }
  auto r = cli("eval contours -q --pred " + t.file("pred") + " --ref " + t.file("ref") + " --no-reference-check");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "without a prediction, not scored: caseC")) << r.output;
  EXPECT_TRUE(has(r.output, "without a reference, not scored: caseB")) << r.output;
}

TEST(CliSafety, InterruptRemovesTheUnfinishedOutput) {
  TempDir t;
  const std::string out = t.file("big");
  // A large phantom takes seconds to generate and write; SIGINT part-way through.
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string bin = isoline_bin();
    ::execl(bin.c_str(), bin.c_str(), "phantom", "hn", "-q", "--size", "512,512,160", "--out", out.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // SIGINT once the work has begun (its temporary output exists, so the handler is installed):
  // a fixed delay raced with process start on a loaded machine (LibTorch and ITK load first).
  for (int i = 0; i < 600 && count_prefixed(t.path(), ".big") == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_GT(count_prefixed(t.path(), ".big"), 0) << "the phantom's temporary output never appeared";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto t0 = std::chrono::steady_clock::now();
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(WIFEXITED(status)) << "killed by the signal instead of stopping";
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_LT(secs, 10.0);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(count_prefixed(t.path(), ".big"), 0) << "a temporary was left behind";
}

// The output side failing: a full disk or a file size limit while a command writes (here a file
// size limit, which needs no root). Each command exits 1 with one line naming its output (not a
// temporary) and the system's reason, leaves nothing under the output's name, no temporary, and
// an older output there as it was. Before: convert to .nii, .mha or RS.dcm with the limit a
// little below the file's size exited 0 with a short file (ITK and DCMTK lose the error of the
// last write); phantom named its temporary folder; deidentify replaced the map by an empty file.
TEST(CliSafety, AFullDiskIsAnErrorNamingTheOutputAndLeavesNothingHalfWritten) {
  TempDir t;
  const std::string c = small_phantom(t, "case");
  auto expect_refused = [&](const std::string& args, const std::string& target,
                            std::uintmax_t limit) {
    CommandResult r;
    {
      isoline::test::FileSizeLimit lim(limit);
      r = cli(args);
    }
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.output;
    EXPECT_TRUE(has(r.output, target + ": cannot write: File too large")) << args << "\n"
                                                                          << r.output;
    EXPECT_FALSE(has(r.output, ".tmp-")) << r.output;
    EXPECT_FALSE(has(r.output, "terminate called")) << r.output;
    EXPECT_TRUE(isoline::test::temporaries_in(t.str()).empty()) << args;
  };
  // One file, with the limit a little below its size (the last buffer is lost at close) or
  // part-way through.
  struct One {
    std::string args, out;
    std::uintmax_t limit;  ///< 0: 100 bytes below the size of an unlimited run's file
  };
  for (const One& o :
       {One{"convert -q " + c + "/ct.nii.gz --out ", "ct.nii", 352 + 64 * 64 * 24 * 2 - 100},
        One{"convert -q " + c + "/ct.nii.gz --out ", "ct.mha", 60000},
        One{"convert -q " + c + "/masks --ct " + c + "/dicom --out ", "rs.dcm", 0}}) {
    const std::string target = t.file(o.out);
    std::uintmax_t limit = o.limit;
    if (!limit) {
      auto r = cli(o.args + target);
      ASSERT_EQ(r.exit_code, 0) << r.output;
      limit = fs::file_size(target) - 100;
    }
    touch(target);
    expect_refused(o.args + target, target, limit);
    EXPECT_EQ(isoline::test::slurp(target), "keep me\n") << o.out;
  }
  // A directory: none of it appears, and the message names the file in it, not the temporary.
  expect_refused("phantom hn -q --size 64,64,24 --spacing 4,4,4 --out " + t.file("p2"),
                 t.file("p2") + "/ct.nii.gz", 30000);
  EXPECT_FALSE(fs::exists(t.file("p2")));
  // deidentify: the map of an earlier run is kept (was: replaced by an empty file).
  auto r = cli("deidentify -q --map " + t.file("map.json") + " " + c + "/dicom " + t.file("deid1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string map = isoline::test::slurp(t.file("map.json"));
  {
    isoline::test::FileSizeLimit lim(0);
    r = cli("deidentify -q --map " + t.file("map.json") + " " + c + "/dicom " + t.file("deid2"));
  }
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(
      r.output, "cannot write its de-identified copy into " + t.file("deid2") + ": File too large"))
      << r.output;
  EXPECT_TRUE(has(r.output, "write de-identification map: " + t.file("map.json") +
                                ": cannot write: File too large"))
      << r.output;
  EXPECT_EQ(isoline::test::slurp(t.file("map.json")), map);
  EXPECT_FALSE(fs::exists(t.file("deid2")));
  EXPECT_TRUE(isoline::test::temporaries_in(t.str()).empty());
}

// convert --to ct creates the missing folders above --out; a failure (here a full disk) removes
// them again: only those this run created, only when empty, like the output itself.
TEST(CliSafety, AFailedCtConversionRemovesTheFoldersItCreated) {
  TempDir t;
  const std::string c = small_phantom(t, "case");
  fs::create_directory(t.file("kept"));
  CommandResult r;
  {
    isoline::test::FileSizeLimit lim(4000);
    r = cli("convert -q " + c + "/ct.nii.gz --to ct --out " + t.file("kept/new/deeper/ct"));
  }
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "File too large")) << r.output;
  EXPECT_TRUE(has(r.output, t.file("kept/new/deeper/ct"))) << r.output;
  EXPECT_FALSE(fs::exists(t.file("kept/new"))) << "a folder this run created was left";
  EXPECT_TRUE(fs::is_directory(t.file("kept")));
  EXPECT_TRUE(isoline::test::temporaries_in(t.str()).empty());
  r = cli("convert -q " + c + "/ct.nii.gz --to ct --out " + t.file("kept/new/deeper/ct"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::is_directory(t.file("kept/new/deeper/ct")));
}
