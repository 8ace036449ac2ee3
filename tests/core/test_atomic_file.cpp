#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include <gtest/gtest.h>
#include <sys/stat.h>
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

// A full disk or a file size limit while writing (audit of the output side): an IoError naming
// the file and the system's reason, nothing under the target name, no temporary left, an older
// file under that name kept. Before: "write failed (disk full?)", a guess without the reason.
TEST(AtomicOutput, AWriteThatRunsOutOfSpaceNamesTheFileAndTheReasonAndKeepsTheOldFile) {
  isoline::test::TempDir dir;
  const std::string target = dir.file("report.html");
  write_file_atomic(target, "previous", "write report");
  const std::string big(64 * 1024, 'x');
  for (const std::size_t limit : {std::size_t(0), std::size_t(1000), big.size() - 1}) {
    try {
      isoline::test::FileSizeLimit lim(limit);
      write_file_atomic(target, big, "write report");
      ADD_FAILURE() << "no error at a limit of " << limit << " bytes";
    } catch (const IoError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("write report: " + target + ": "), std::string::npos) << m;
      EXPECT_NE(m.find("File too large"), std::string::npos) << m;
      EXPECT_EQ(m.find(".tmp-"), std::string::npos) << m;
    }
    EXPECT_EQ(isoline::test::slurp(target), "previous");
    EXPECT_TRUE(isoline::test::temporaries_in(dir.str()).empty());
  }
}

// OutputFile checks each write and the close, and says why it failed.
TEST(OutputFile, EveryFailureIsAnIoErrorWithTheSystemsReason) {
  isoline::test::TempDir dir;
  {
    OutputFile f(dir.file("a.bin"), "write data");
    f.write(std::string(5000, 'a'));
    f.close();
  }
  EXPECT_EQ(fs::file_size(dir.file("a.bin")), 5000u);
  try {
    isoline::test::FileSizeLimit lim(4096);
    OutputFile f(dir.file("b.bin"), "write data");
    f.write(std::string(3000, 'b'));
    f.write(std::string(3000, 'b'));  // crosses the limit: a short write, then EFBIG
    ADD_FAILURE() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("write data: " + dir.file("b.bin") +
                                         ": cannot write: File too large"),
              std::string::npos)
        << e.what();
  }
  try {
    OutputFile f(dir.file("no/such/dir/c.bin"), "write data");
    ADD_FAILURE() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("No such file or directory"), std::string::npos)
        << e.what();
  }
  if (fs::exists("/dev/full")) {  // a device that is always full
    try {
      OutputFile f("/dev/full", "write data");
      f.write("x");
      ADD_FAILURE() << "no error";
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find("/dev/full: cannot write: No space left on device"),
                std::string::npos)
          << e.what();
    }
  }
}

// Writers inside an AtomicOutput name what they write by its temporary path: the error names
// the target instead (a nested directory and file too), also in another thread's message.
TEST(AtomicOutput, ErrorsNameTheTargetNotTheTemporary) {
  isoline::test::TempDir dir;
  const std::string target = dir.file("case");
  AtomicOutput outer(target, /*directory=*/true);
  fs::create_directories(outer.temp_path() + "/dicom");
  AtomicOutput inner(outer.temp_path() + "/dicom/RS.dcm");
  const std::string m1 =
      format_error("write RT-STRUCT", inner.temp_path(), "cannot write: File too large");
  EXPECT_EQ(m1, "write RT-STRUCT: " + target + "/dicom/RS.dcm: cannot write: File too large");
  const std::string raw = outer.temp_path() + "/ct.nii";  // a writer's own intermediate file
  EXPECT_EQ(format_error("write image", target + "/ct.nii.gz", "cannot read " + raw),
            "write image: " + target + "/ct.nii.gz: cannot read " + target + "/ct.nii");
  AtomicOutput file(dir.file("ct.nii.gz"));
  const std::string gz = file.temp_path();
  EXPECT_EQ(format_error("op", gz, "x"), "op: " + dir.file("ct.nii.gz") + ": x");
  EXPECT_EQ(format_error("op", gz.substr(0, gz.size() - 3), "x"),
            "op: " + dir.file("ct.nii") + ": x");
}

TEST(AtomicOutput, TemporaryNamesAreForgottenWithTheirOutput) {
  isoline::test::TempDir dir;
  std::string temp;
  {
    AtomicOutput out(dir.file("a.json"));
    temp = out.temp_path();
  }
  EXPECT_EQ(format_error("op", temp, "x"), "op: " + temp + ": x");
}

// An output named by a device or pipe (a FIFO, /dev/stdout): the rename replaced it by a plain
// file (as root even /dev/stdout). Now refused before any work, the FIFO left as it was.
TEST(AtomicOutput, ADeviceOrPipeAsOutputIsRefusedNotReplaced) {
  isoline::test::TempDir dir;
  const std::string fifo = dir.file("pipe.json");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (int i = 0; i < 2; ++i) {
    try {
      if (i == 0)
        check_output_location(fifo, "eval");
      else
        write_file_atomic(fifo, "{}", "eval");
      ADD_FAILURE() << "no error";
    } catch (const InvalidInput& e) {
      EXPECT_NE(std::string(e.what()).find(fifo + ": is a device, pipe or socket, not a file"),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_TRUE(fs::is_fifo(fifo));
  EXPECT_TRUE(isoline::test::temporaries_in(dir.str()).empty());
}

// A symbolic link given as output is written through: the file at the end of the chain (a
// relative link is read from the link's folder) gets the new content, its temporary beside it,
// and the links stay links. A dangling link whose target's folder exists makes that file; one
// into a missing folder, or a loop, is an error naming the link.
TEST(AtomicOutput, ASymbolicLinkIsWrittenThroughAndStaysALink) {
  isoline::test::TempDir dir;
  fs::create_directory(dir.file("real"));
  std::ofstream(dir.file("real/data.txt")) << "old";
  fs::create_symlink("real/data.txt", dir.file("link1.txt"));
  fs::create_symlink(dir.file("link1.txt"), dir.file("link2.txt"));
  {
    AtomicOutput out(dir.file("link2.txt"));
    EXPECT_EQ(fs::path(out.temp_path()).parent_path(), fs::path(dir.file("real")));
  }
  check_output_location(dir.file("link2.txt"), "test");
  write_file_atomic(dir.file("link2.txt"), "new", "test");
  EXPECT_TRUE(fs::is_symlink(dir.file("link2.txt")));
  EXPECT_TRUE(fs::is_symlink(dir.file("link1.txt")));
  EXPECT_EQ(isoline::test::slurp(dir.file("real/data.txt")), "new");
  EXPECT_TRUE(isoline::test::temporaries_in(dir.str()).empty());

  fs::create_symlink("real/made.txt", dir.file("dangling.txt"));
  write_file_atomic(dir.file("dangling.txt"), "made", "test");
  EXPECT_TRUE(fs::is_symlink(dir.file("dangling.txt")));
  EXPECT_EQ(isoline::test::slurp(dir.file("real/made.txt")), "made");

  fs::create_symlink("nowhere/x.txt", dir.file("lost.txt"));
  try {
    write_file_atomic(dir.file("lost.txt"), "x", "test");
    ADD_FAILURE() << "a link into a missing folder was written";
  } catch (const IoError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(dir.file("lost.txt") + ": "), std::string::npos) << m;
    EXPECT_NE(m.find("symbolic link to " + dir.file("nowhere/x.txt")), std::string::npos) << m;
    EXPECT_NE(m.find("does not exist"), std::string::npos) << m;
  }
  EXPECT_TRUE(fs::is_symlink(dir.file("lost.txt")));
  EXPECT_FALSE(fs::exists(dir.file("nowhere")));

  fs::create_symlink("loop2", dir.file("loop1"));
  fs::create_symlink("loop1", dir.file("loop2"));
  try {
    write_file_atomic(dir.file("loop1"), "x", "test");
    ADD_FAILURE() << "a loop of links was written";
  } catch (const IoError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(dir.file("loop1") + ": "), std::string::npos) << m;
    EXPECT_NE(m.find("symbolic links"), std::string::npos) << m;
  }
  EXPECT_TRUE(fs::is_symlink(dir.file("loop1")));

  // A directory output through a link: the folder it names is replaced, the link stays.
  fs::create_directory(dir.file("realdir"));
  std::ofstream(dir.file("realdir/a")) << "a";
  fs::create_directory_symlink("realdir", dir.file("dirlink"));
  {
    AtomicOutput out(dir.file("dirlink"), /*directory=*/true);
    std::ofstream(out.temp_path() + "/b") << "b";
    out.commit();
  }
  EXPECT_TRUE(fs::is_symlink(dir.file("dirlink")));
  EXPECT_TRUE(fs::exists(dir.file("realdir/b")));
  EXPECT_FALSE(fs::exists(dir.file("realdir/a")));
  EXPECT_TRUE(isoline::test::temporaries_in(dir.str()).empty());
}

// sync_path: 0 when the file or folder is on disk, else the system's errno.
TEST(SyncPath, ReportsTheSystemsError) {
  isoline::test::TempDir t;
  std::ofstream(t.file("f")) << "x";
  EXPECT_EQ(sync_path(t.file("f"), false), 0);
  EXPECT_EQ(sync_path(t.str(), true), 0);
  EXPECT_EQ(sync_path(t.file("missing"), false), ENOENT);
  EXPECT_EQ(sync_path(t.file("f"), true), ENOTDIR);
}

// storage_failure_reason: what a storage library's "disk I/O error" leaves out. The system's
// errno when it names a full or failing disk; else, for a storage failure, the file size limit
// when the file or a companion (a -wal) is near it; else nothing (this folder has room).
TEST(StorageFailureReason, NamesTheErrnoOrTheFileSizeLimitOfTheFileOrACompanion) {
  isoline::test::TempDir t;
  const std::string db = t.file("db.sqlite");
  std::ofstream(db) << "x";
  std::ofstream(db + "-wal") << std::string((1 << 20) - 30000, 'w');  // within 64 KiB of 1 MiB
  EXPECT_EQ(storage_failure_reason(db, ENOSPC, false), std::strerror(ENOSPC));
  EXPECT_EQ(storage_failure_reason(db, 0, true), "");
  EXPECT_EQ(storage_failure_reason(db, 0, false), "");
  {
    isoline::test::FileSizeLimit lim(1 << 20);
    EXPECT_EQ(storage_failure_reason(db, 0, true), "");  // the file alone is far from it
    EXPECT_EQ(storage_failure_reason(db, 0, true, {"-wal", "-journal"}),
              std::string(std::strerror(EFBIG)) + ": the file size limit is 1048576 bytes");
    EXPECT_EQ(storage_failure_reason(db, 0, false, {"-wal"}), "");  // not a storage failure
  }
}
