// The isoline executable as a user runs it: help, version, info, and clear errors.
#include <fstream>

#include <gtest/gtest.h>

#include "tests/test_util.h"

using isoline::test::isoline_bin;
using isoline::test::run_command;

namespace {
int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}
}  // namespace

TEST(Cli, HelpListsEveryRegisteredCommand) {
  auto r = run_command(isoline_bin() + " --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("usage: isoline <command>"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("info"), std::string::npos) << r.output;
}

TEST(Cli, CommandHelp) {
  auto r = run_command(isoline_bin() + " info --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("usage: isoline info"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("PATH"), std::string::npos) << r.output;
}

TEST(Cli, Version) {
  auto r = run_command(isoline_bin() + " --version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("isoline 0."), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("cuda: "), std::string::npos) << r.output;  // what --device cuda can use
  EXPECT_NE(r.output.find("contouring network on cuda: "), std::string::npos) << r.output;
}

TEST(Cli, UnknownCommandAndMissingArgumentAreUsageErrors) {
  // exit status 2 and a message containing `text`
  auto expect_usage_error = [](const std::string& arguments, const std::string& text) {
    auto r = run_command(isoline_bin() + " " + arguments);
    EXPECT_EQ(r.exit_code, 2) << arguments;
    EXPECT_NE(r.output.find(text), std::string::npos) << r.output;
  };
  expect_usage_error("frobnicate", "unknown command");
  expect_usage_error("info", "missing argument PATH");
  expect_usage_error("info --bogus x", "unknown option --bogus");
  // Bad option values are usage errors before any input is read (the files do not exist).
  expect_usage_error("register no_fixed.mha no_moving.mha --seed -3", "--seed");
  expect_usage_error("register no_fixed.mha no_moving.mha --max-voxels -1", "--max-voxels");
}

TEST(Cli, InfoOnOpenKbpCt) {
  const std::string p = isoline::test::shared_data("openkbp/train/pt_1/ct.nii.gz");
  auto r = run_command(isoline_bin() + " info " + p);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("128 x 128 x 128"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("spacing"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("mm LPS"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("int16"), std::string::npos) << r.output;
}

TEST(Cli, InfoOnMissingPathIsOneLineNamingIt) {
  auto r = run_command(isoline_bin() + " info /nonexistent");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(count_lines(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("/nonexistent"), std::string::npos) << r.output;
}

TEST(Cli, InfoOnTextFileIsOneLineNamingIt) {
  isoline::test::TempDir dir;
  for (const std::string name : {"notes.txt", "fake.nii.gz"}) {
    const std::string p = dir.file(name);
    std::ofstream(p) << "just some text\n";
    auto r = run_command(isoline_bin() + " info " + p);
    EXPECT_NE(r.exit_code, 0) << name;
    EXPECT_EQ(count_lines(r.output), 1) << r.output;
    EXPECT_NE(r.output.find(p), std::string::npos) << r.output;
  }
}
