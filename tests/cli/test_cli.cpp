// The isoline executable as a user runs it: help, version, info, and clear errors.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

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

// Every command's help: option texts start in one column (a name too long for it puts its text
// on the next line, at that column), -q is listed only where it silences something, and where
// it is not listed it is refused.
TEST(Cli, EveryCommandsHelpHasItsTextsInOneColumn) {
  auto top = run_command(isoline_bin() + " --help");
  std::vector<std::string> names;
  std::istringstream lines(top.output);
  bool in_commands = false;
  for (std::string l; std::getline(lines, l);) {
    if (l == "commands:") in_commands = true;
    else if (l.empty()) in_commands = false;
    else if (in_commands) names.push_back(l.substr(2, l.find(' ', 2) - 2));
  }
  ASSERT_GE(names.size(), 10u) << top.output;
  for (const auto& name : names) {
    auto r = run_command(isoline_bin() + " " + name + " --help");
    ASSERT_EQ(r.exit_code, 0) << name;
    const auto opts = r.output.find("\noptions:\n");
    ASSERT_NE(opts, std::string::npos) << r.output;
    std::istringstream rows(r.output.substr(opts + 10));
    std::size_t col = 0;
    std::string prev;
    for (std::string l; std::getline(rows, l);) {
      ASSERT_GT(l.size(), 4u) << name << ": an empty row in\n" << r.output;
      std::size_t text;
      if (l[2] == ' ') {  // the text of the row above, whose name filled the column
        text = l.find_first_not_of(' ');
        EXPECT_EQ(prev.find("  ", 2), std::string::npos) << name << ": " << prev;
      } else {
        text = l.find("  ", 2);
        if (text == std::string::npos) {  // name alone: the text follows on the next line
          prev = l;
          continue;
        }
        text = l.find_first_not_of(' ', text);
      }
      if (col == 0) col = text;
      EXPECT_EQ(text, col) << name << ": " << l << "\n" << r.output;
      prev = l;
    }
    const bool lists_quiet = r.output.find("  -q, --quiet") != std::string::npos;
    EXPECT_NE(r.output.find("  -h, --help"), std::string::npos) << name;
    if (!lists_quiet) {
      auto q = run_command(isoline_bin() + " " + name + " -q");
      EXPECT_EQ(q.exit_code, 2) << name << ": -q is not listed but accepted";
      EXPECT_NE(q.output.find("does not apply"), std::string::npos) << q.output;
    }
  }
  EXPECT_EQ(run_command(isoline_bin() + " listen --help").output.find("  -q, --quiet"), std::string::npos);
  EXPECT_NE(run_command(isoline_bin() + " contour --help").output.find("  -q, --quiet"), std::string::npos);
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
