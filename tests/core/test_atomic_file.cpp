#include <filesystem>
#include <fstream>
#include <vector>

#include <gtest/gtest.h>
#include <unistd.h>

#include "isoline/core/atomic_file.h"
#include "isoline/core/error.h"
#include "tests/test_util.h"

using namespace isoline::core;
namespace fs = std::filesystem;

TEST(AtomicOutput, CommitRenamesKeepingExtension) {
  isoline::test::TempDir dir;
  const std::string target = dir.file("ct.nii.gz");
  {
    AtomicOutput out(target);
    EXPECT_NE(out.temp_path(), target);
    EXPECT_EQ(out.temp_path().substr(out.temp_path().size() - 7), ".nii.gz");
    std::ofstream(out.temp_path()) << "data";
    EXPECT_FALSE(fs::exists(target));
    out.commit();
  }
  EXPECT_TRUE(fs::exists(target));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(AtomicOutput, NoCommitLeavesNothing) {
  isoline::test::TempDir dir;
  const std::string target = dir.file("rs.dcm");
  std::ofstream(target) << "previous";
  {
    AtomicOutput out(target);
    std::ofstream(out.temp_path()) << "half-written";
    // an exception would unwind here without commit
  }
  std::ifstream in(target);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "previous");  // the earlier file is intact
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(AtomicOutput, DirectoryReplacesExisting) {
  isoline::test::TempDir dir;
  const std::string target = dir.file("case");
  fs::create_directory(target);
  std::ofstream(target + "/old.txt") << "x";
  {
    AtomicOutput out(target, /*directory=*/true);
    std::ofstream(out.temp_path() + "/new.txt") << "y";
    out.commit();
  }
  EXPECT_TRUE(fs::exists(target + "/new.txt"));
  EXPECT_FALSE(fs::exists(target + "/old.txt"));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(AtomicOutput, OutputDirectoryCheck) {
  isoline::test::TempDir dir;
  // Missing or empty: fine.
  EXPECT_NO_THROW(check_output_directory(dir.file("new"), false, "run"));
  fs::create_directories(dir.file("empty"));
  EXPECT_NO_THROW(check_output_directory(dir.file("empty"), false, "run"));
  // Non-empty: only with overwrite; the message names the way out.
  fs::create_directories(dir.file("full"));
  std::ofstream(dir.file("full/a.txt")) << "a";
  try {
    check_output_directory(dir.file("full"), false, "run");
    FAIL() << "non-empty directory accepted";
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("full: exists and is not empty (choose another directory or --overwrite)"),
              std::string::npos)
        << e.what();
  }
  EXPECT_NO_THROW(check_output_directory(dir.file("full"), true, "run"));
  EXPECT_THROW(check_output_directory(dir.file("full/a.txt"), true, "run"), InvalidInput);  // a file
  // The input itself, or a folder holding it: never, not even with overwrite.
  for (const std::string& out : std::vector<std::string>{dir.file("full"), dir.file("full/"), dir.str(), dir.file("full/../full")})
    EXPECT_THROW(check_output_directory(out, true, "adapt", {dir.file("full")}), InvalidInput) << out;
  EXPECT_THROW(check_output_directory(dir.str(), true, "run", {dir.file("full/a.txt")}), InvalidInput);
  // A sibling whose name merely starts the same is not "holding" it.
  EXPECT_NO_THROW(check_output_directory(dir.file("ful"), true, "adapt", {dir.file("full")}));
  EXPECT_NO_THROW(check_output_directory(dir.file("full2"), true, "adapt", {dir.file("full")}));
}

TEST(AtomicOutput, DirectoryTargetWithTrailingSlash) {
  isoline::test::TempDir dir;
  {
    AtomicOutput out(dir.file("masks") + "/", /*directory=*/true);
    EXPECT_EQ(out.target(), dir.file("masks"));
    std::ofstream(out.temp_path() + "/a.nii.gz") << "x";
    out.commit();
  }
  EXPECT_TRUE(fs::exists(dir.file("masks/a.nii.gz")));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(AtomicOutput, MissingParentDirectoryIsAClearError) {
  try {
    AtomicOutput out("/nonexistent-dir-isoline/x.nii.gz");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir-isoline"), std::string::npos);
  }
}

TEST(AtomicOutput, OutputLocationCheckedBeforeTheWork) {
  isoline::test::TempDir dir;
  EXPECT_NO_THROW(check_output_location(dir.file("a.dcm"), "contour"));
  EXPECT_NO_THROW(check_output_location(dir.file("masks"), "contour"));
  EXPECT_THROW(check_output_location(dir.file("new/masks"), "contour"), IoError);
  EXPECT_NO_THROW(check_output_location(dir.file("new/deeper/masks"), "contour", true));
  // A file where a parent directory would have to be: not a directory.
  std::ofstream(dir.file("plain")) << "x";
  EXPECT_THROW(check_output_location(dir.file("plain/masks"), "contour", true), IoError);
  try {
    check_output_location("/nonexistent-dir-isoline/rs.dcm", "contour");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir-isoline/rs.dcm"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos);
  }
  fs::create_directories(dir.file("ro"));
  fs::permissions(dir.file("ro"), fs::perms::owner_read | fs::perms::owner_exec);
  if (::geteuid() != 0) {  // root writes anywhere
    EXPECT_THROW(check_output_location(dir.file("ro") + "/x.html", "contour"), IoError);
  }
  fs::permissions(dir.file("ro"), fs::perms::owner_all);
  EXPECT_THROW(check_output_location("", "contour"), InvalidInput);
}
