// Atomic output: write to a temporary name beside the target, rename when complete. A target
// that is a symbolic link (or a chain of them) is written through: the temporary goes beside the
// file the links lead to and replaces it, the links stay. A dangling link makes its target when
// that one's folder exists; into a missing folder, or a loop of links, it is an IoError.
// A failure (exception, crash) never leaves a partial file under the target name; a committed
// output is on disk (fsync) before its name appears. Errors about a temporary name the target
// instead: format_error() replaces a live temporary's name with its target's.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace isoline::core {

class AtomicOutput {
 public:
  /// Plans to write `target` (a file, or a directory when `directory` is true). The
  /// temporary name keeps the target's extension so format-sniffing writers still work.
  explicit AtomicOutput(std::string target, bool directory = false);
  ~AtomicOutput();  // removes the temporary when commit() was not called
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  /// Where to write now.
  const std::string& temp_path() const { return temp_; }
  const std::string& target() const { return target_; }
  /// What the rename replaces: the target, or where its symbolic links lead (the link stays).
  const std::string& destination() const { return path_; }
  /// Flushes the temporary (a directory: every file in it) to disk, renames it onto the target
  /// (replacing an existing one) and flushes the directory holding it. Throws IoError naming
  /// the target and the system's reason (a late "No space left on device" shows here).
  void commit();

 private:
  std::string target_;
  std::string path_;  ///< target_ with its symbolic links followed
  std::string temp_;
  bool directory_;
  bool nested_ = false;  ///< inside another output's temporary directory, which syncs it
  bool committed_ = false;
};

/// Several outputs of one command, committed together: add() plans each one and says where to
/// write it now; commit() renames them all onto their targets. Until commit() (a failure, a
/// cancellation) none of them appears, and directories created by add() for them are removed
/// again. Should a rename fail in commit(), the targets already renamed that did not exist
/// before are removed too (a replaced file cannot be brought back).
class AtomicOutputs {
 public:
  AtomicOutputs() = default;
  ~AtomicOutputs();
  AtomicOutputs(const AtomicOutputs&) = delete;
  AtomicOutputs& operator=(const AtomicOutputs&) = delete;

  /// Plans `target` (a file, or a directory when `directory`); with `create_parents` its
  /// missing parent directories are created now (IoError naming `operation`). Returns the
  /// temporary path to write.
  const std::string& add(const std::string& target, bool directory = false, bool create_parents = false,
                         const std::string& operation = "write output");
  /// Renames every temporary onto its target, in the order added. Throws IoError.
  void commit();

 private:
  std::vector<std::unique_ptr<AtomicOutput>> outputs_;
  std::vector<bool> existed_;
  std::vector<std::string> created_dirs_;  ///< by add(), outermost first
  bool committed_ = false;
};

/// A file written through the system calls, every failure checked: write() and close() throw
/// IoError naming `operation`, the file and the system's reason ("No space left on device",
/// "File too large"). Buffered writers (std::ofstream, stdio) can lose their last buffer at
/// close without telling; this one cannot. Usually written at an AtomicOutput's temp_path().
class OutputFile {
 public:
  /// Creates (or truncates) `path`; `mode` before the umask. Throws IoError.
  OutputFile(std::string path, std::string operation, unsigned mode = 0666);
  ~OutputFile();  // closes without a check when close() was not reached (an error is under way)
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  void write(const void* data, std::size_t size);
  void write(std::string_view text) { write(text.data(), text.size()); }
  /// Closes the file; throws IoError when the system reports a failure.
  void close();
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void fail_errno(const char* what, int err) const;
  std::string path_;
  std::string operation_;
  int fd_ = -1;
};

/// Writes `data` (text or bytes) to `path` atomically: a temporary beside it, renamed when
/// complete. Throws IoError naming `operation`, the file and the reason (missing directory,
/// disk full, file size limit); nothing is left under `path` on failure and an existing file
/// there is kept as it was.
void write_file_atomic(const std::string& path, std::string_view data, const std::string& operation);

/// Why writing to `file` fails, found by trying to append to it (it is being discarded): the
/// system's message ("No space left on device", "File too large"), or "" when appending works.
/// For writers that lose the reason (an ITK image writer that only reports a short file).
std::string write_failure_reason(const std::string& file);

/// The problem to report when writing `file` (a temporary being discarded) failed: "cannot
/// write: " and the system's reason (write_failure_reason), or `fallback` (the writer's own
/// message) when the system reports nothing.
std::string write_failure_problem(const std::string& file, const std::string& fallback);

/// The reason to add to a storage library's message about writing `file` (SQLite says "disk I/O
/// error" or "database or disk is full" alone): the system's message for `system_errno` when it
/// is that of a full or failing disk (EFBIG, ENOSPC, EDQUOT, EIO, EROFS). Else, when
/// `storage_failure` (the library reports an I/O or disk-full failure, its errno lost: 0 after
/// an EFBIG), "File too large: the file size limit is N bytes" when `file` or a companion of it
/// (`file` + each of `companion_suffixes`, e.g. "-wal", "-journal") is within 64 KiB of the file
/// size limit (RLIMIT_FSIZE), or "No space left on device" when its folder has under 1 MiB free.
/// "" when none of these says why.
std::string storage_failure_reason(const std::string& file, int system_errno, bool storage_failure,
                                   const std::vector<std::string>& companion_suffixes = {});

/// Checks, before long work, that `target` (a file or directory to be written atomically) can
/// be: its parent directory (that of the file its symbolic links lead to) exists and is writable (a file can be created in it, which also
/// catches directories that pass access(W_OK) but refuse files, such as /proc for root). With
/// `parents_created` (a writer that creates missing directories, e.g. write_mask_dir) the
/// nearest existing ancestor must be a writable directory instead; a relative path's ancestors
/// end at the working directory. Throws IoError naming `operation`, the target and the directory.
void check_output_location(const std::string& target, const std::string& operation,
                           bool parents_created = false);

/// Checks, before long work, an output *directory* that will be replaced as a whole or filled:
/// a path that is a file is refused, and so is a non-empty directory unless `overwrite` (the
/// message ends with `hint`, e.g. "choose another directory or --overwrite"). A directory that
/// is or holds one of `inputs` is refused even with `overwrite`: replacing it would destroy what
/// is being read. Throws InvalidInput naming `operation` and `dir`.
void check_output_directory(const std::string& dir, bool overwrite, const std::string& operation,
                            const std::vector<std::string>& inputs = {},
                            const std::string& hint = "choose another directory or --overwrite");

/// fsync of a file (or, with `directory`, of a folder: its entries). Returns 0 when it is on
/// disk, else the errno of what failed (open, fsync, close). A file system that cannot sync that
/// kind of file (EINVAL, EROFS) counts as synced.
int sync_path(const std::string& path, bool directory);

/// Creates `dir` and its parents when missing; throws IoError naming `operation`.
void ensure_directory(const std::string& dir, const std::string& operation);

}  // namespace isoline::core
