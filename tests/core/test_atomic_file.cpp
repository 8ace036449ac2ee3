#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

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

TEST(AtomicOutput, MissingParentDirectoryIsAClearError) {
  try {
    AtomicOutput out("/nonexistent-dir-isoline/x.nii.gz");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir-isoline"), std::string::npos);
  }
}
