#include "isoline/core/atomic_file.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <mutex>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "isoline/core/error.h"

namespace fs = std::filesystem;

namespace isoline::core {

int sync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) return errno;
  int err = ::fsync(fd) == 0 ? 0 : errno;
  if (err == EINVAL || err == EROFS) err = 0;
  if (::close(fd) != 0 && !err && errno != EINTR) err = errno;
  return err;
}

namespace {
// The live temporaries' names and their targets' ("." + stem + tag [+ ext] -> stem [+ ext]), for
// format_error: a message never names a temporary, which is gone by the time it is read.
struct LiveName {
  std::string temp, target;
  bool directory;
};
std::mutex g_names_mutex;
std::vector<LiveName> g_names;

void remember_name(const std::string& temp, const std::string& target, bool directory) {
  std::lock_guard<std::mutex> lock(g_names_mutex);
  g_names.push_back({temp, target, directory});
}

// True when `path` lies inside a live temporary directory, which syncs it when committed.
bool inside_temporary_directory(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_names_mutex);
  for (const auto& n : g_names)
    if (n.directory && path.find(n.temp + "/") != std::string::npos) return true;
  return false;
}

void forget_name(const std::string& temp) {
  std::lock_guard<std::mutex> lock(g_names_mutex);
  for (auto it = g_names.begin(); it != g_names.end();)
    it = it->temp == temp ? g_names.erase(it) : std::next(it);
}

std::string errno_text(int err) {
  return std::strerror(err);
}

// Every file and folder of the tree at `dir`, to disk: write-back of all files is started first
// so that they are written together, then each is waited for. Returns {path, errno} of the
// first failure.
std::pair<std::string, int> sync_tree(const std::string& dir) {
  std::vector<std::string> files, dirs{dir};
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_symlink(ec)) continue;
    if (it->is_directory(ec))
      dirs.push_back(it->path().string());
    else if (it->is_regular_file(ec))
      files.push_back(it->path().string());
  }
  if (ec) return {dir, ec.value()};
#ifdef SYNC_FILE_RANGE_WRITE
  for (const auto& f : files) {
    const int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;  // reported by sync_path below
    ::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    ::close(fd);
  }
#endif
  for (const auto& f : files)
    if (int e = sync_path(f, false)) return {f, e};
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it)
    if (int e = sync_path(*it, true)) return {*it, e};
  return {{}, 0};
}

// Splits "name.nii.gz" into ("name", ".nii.gz") so the temporary keeps the full extension.
std::pair<std::string, std::string> split_extension(const std::string& filename) {
  static const char* kDouble[] = {".nii.gz", ".tar.gz"};
  for (const char* ext : kDouble) {
    const std::string e(ext);
    if (filename.size() > e.size() && filename.compare(filename.size() - e.size(), e.size(), e) == 0)
      return {filename.substr(0, filename.size() - e.size()), e};
  }
  const auto dot = filename.find_last_of('.');
  if (dot == std::string::npos || dot == 0) return {filename, ""};
  return {filename.substr(0, dot), filename.substr(dot)};
}

// `path` with the symbolic links at its end followed: each link's target (a relative one read
// from the link's folder) until a name that is not a link, or does not exist (a dangling link's
// target). Links among the folders above need no following: a rename works through them.
std::string follow_links(const std::string& path, const std::string& operation) {
  fs::path p(path);
  std::error_code ec;
  for (int hops = 0; fs::is_symlink(fs::symlink_status(p, ec)); ++hops) {
    if (hops == 40) fail<IoError>(operation, path, "too many levels of symbolic links (a loop of links?)");
    const fs::path to = fs::read_symlink(p, ec);
    if (ec) fail<IoError>(operation, path, "cannot read the symbolic link " + p.string() + ": " + ec.message());
    p = to.is_absolute() ? to : p.parent_path() / to;
  }
  return p.string();
}

// Checks where `target` is to be written; returns where that is: `target`, or where its symbolic
// links lead (follow_links), which is then checked and named in the messages.
// `probe`: also create (and remove) a file in the directory. access(W_OK) says yes for root in
// any directory of a writable file system, /proc included, where files cannot be created.
std::string check_location(const std::string& target, const std::string& operation, bool parents_created,
                           bool probe) {
  if (target.empty()) fail<InvalidInput>(operation, "", "output path is empty");
  // "dir/" is the folder "dir": its parent is dir's parent, not dir itself.
  std::string named = target;
  while (named.size() > 1 && named.back() == '/') named.pop_back();
  const std::string path = follow_links(named, operation);
  const std::string via = path == named ? "" : "is a symbolic link to " + path + ": ";
  // The rename at the end would replace a device or pipe (e.g. /dev/stdout, a FIFO) by a plain
  // file instead of writing into it: refused.
  std::error_code sec;
  const fs::file_status st = fs::status(path, sec);
  if (!sec && fs::exists(st) && !fs::is_regular_file(st) && !fs::is_directory(st))
    fail<InvalidInput>(operation, target,
                       via + (via.empty() ? "is" : "it is") + " a device, pipe or socket, not a file: name a file to write");
  fs::path parent = fs::path(path).parent_path();
  if (parent.empty()) parent = ".";
  std::error_code ec;
  if (parents_created)
    while (!fs::exists(parent, ec)) {
      // A relative path's top folder has no parent_path(): its parent is the working directory.
      fs::path up = parent.has_parent_path() ? parent.parent_path() : fs::path(".");
      if (up == parent) break;
      parent = up;
    }
  if (!fs::is_directory(parent, ec))
    fail<IoError>(operation, target,
                  via + (fs::exists(parent, ec) ? parent.string() + " is a file, not a directory"
                                                : "directory " + parent.string() + " does not exist"));
  if (::access(parent.c_str(), W_OK) != 0)
    fail<IoError>(operation, target, via + "directory " + parent.string() + " is not writable");
  if (probe) {
    static std::atomic<unsigned> counter{0};
    const fs::path p = parent / (".isoline-probe-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
      const int err = errno;
      fail<IoError>(operation, target,
                    via + "directory " + parent.string() + " is not writable (creating a file there failed: " +
                        std::strerror(err) + ")");
    }
    ::close(fd);
    ::unlink(p.c_str());
  }
  return path;
}
}  // namespace

namespace detail {
std::string name_targets_not_temporaries(std::string message) {
  std::lock_guard<std::mutex> lock(g_names_mutex);
  for (auto it = g_names.rbegin(); it != g_names.rend(); ++it)
    for (auto p = message.find(it->temp); p != std::string::npos;
         p = message.find(it->temp, p + it->target.size()))
      message.replace(p, it->temp.size(), it->target);
  return message;
}
}  // namespace detail

void check_output_location(const std::string& target, const std::string& operation,
                           bool parents_created) {
  check_location(target, operation, parents_created, /*probe=*/true);
}

void check_output_directory(const std::string& dir, bool overwrite, const std::string& operation,
                            const std::vector<std::string>& inputs, const std::string& hint) {
  if (dir.empty()) fail<InvalidInput>(operation, "", "output directory is empty");
  std::error_code ec;
  const fs::path out = fs::weakly_canonical(fs::absolute(dir, ec), ec);
  for (const auto& in : inputs) {
    if (in.empty()) continue;
    const fs::path p = fs::weakly_canonical(fs::absolute(in, ec), ec);
    // `out` is `p` or one of its ancestors: compare element by element.
    auto o = out.begin(), i = p.begin();
    for (; o != out.end() && i != p.end() && *o == *i; ++o, ++i) {
    }
    if (o == out.end() || (std::next(o) == out.end() && o->empty()))
      fail<InvalidInput>(operation, dir, "would replace the input " + in + " (choose another directory)");
  }
  if (!fs::exists(dir, ec)) return;
  if (!fs::is_directory(dir, ec)) fail<InvalidInput>(operation, dir, "exists and is not a directory");
  if (!fs::is_empty(dir, ec) && !overwrite)
    fail<InvalidInput>(operation, dir, "exists and is not empty (" + hint + ")");
}

AtomicOutput::AtomicOutput(std::string target, bool directory)
    : target_(std::move(target)), directory_(directory) {
  if (directory_) {  // "dir/" names the directory "dir"
    fs::path p = fs::path(target_).lexically_normal();
    if (p.filename().empty() && p.has_parent_path() && p.parent_path() != p.root_path()) p = p.parent_path();
    target_ = p.string();
  }
  // A symbolic link is written through: the temporary goes beside the file it leads to, which
  // the rename replaces; the link stays.
  path_ = check_location(target_, "write output", /*parents_created=*/false, /*probe=*/false);  // the temporary is the probe
  fs::path t(path_);
  fs::path parent = t.parent_path();
  if (parent.empty()) parent = ".";
  std::error_code ec;
  static std::atomic<unsigned> counter{0};
  const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
  auto [stem, ext] = split_extension(t.filename().string());
  const std::string tag = ".tmp-" + std::to_string(::getpid()) + "-" +
                          std::to_string(counter++) + "-" + std::to_string(stamp % 100000);
  temp_ = (parent / ("." + stem + tag + ext)).string();
  if (directory_) {
    // Named by its folder, never by the temporary's own name (gone by the time it is read):
    // "/proc/xx: directory /proc is not writable (creating a folder there failed: ...)", as the
    // up-front check (check_output_location) says it.
    if (!fs::create_directory(temp_, ec)) {
      const int err = ec ? ec.value() : EEXIST;
      const std::string reason = errno_text(err);
      const std::string via = path_ == target_ ? "" : "is a symbolic link to " + path_ + ": ";
      if (err == ENOSPC || err == EDQUOT || err == EMLINK || err == EIO)
        fail<IoError>("write output", target_,
                      via + "cannot create a folder in directory " + parent.string() + ": " + reason);
      fail<IoError>("write output", target_,
                    via + "directory " + parent.string() + " is not writable (creating a folder there failed: " +
                        reason + ")");
    }
  }
  nested_ = inside_temporary_directory(temp_);
  // Longer name first: ".ct.tmp-1-2-3.nii.gz" is "ct.nii.gz", the raw ".ct.tmp-1-2-3.nii" "ct.nii".
  if (!ext.empty()) remember_name("." + stem + tag + ext, stem + ext, directory_);
  remember_name("." + stem + tag, stem, directory_);
}

OutputFile::OutputFile(std::string path, std::string operation, unsigned mode)
    : path_(std::move(path)), operation_(std::move(operation)) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, static_cast<mode_t>(mode));
  if (fd_ < 0) fail_errno("cannot create the file", errno);
}

OutputFile::~OutputFile() {
  if (fd_ >= 0) ::close(fd_);
}

void OutputFile::fail_errno(const char* what, int err) const {
  fail<IoError>(operation_, path_, std::string(what) + ": " + errno_text(err));
}

void OutputFile::write(const void* data, std::size_t size) {
  if (fd_ < 0) fail<IoError>(operation_, path_, "written after it was closed");
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, p, std::min<std::size_t>(size, std::size_t(1) << 30));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_errno("cannot write", errno);
    }
    if (n == 0) fail_errno("cannot write", EIO);
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

void OutputFile::close() {
  if (fd_ < 0) return;
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0 && errno != EINTR) fail_errno("cannot write", errno);
}

void write_file_atomic(const std::string& path, std::string_view data, const std::string& operation) {
  AtomicOutput out(path);
  OutputFile f(out.temp_path(), operation);
  f.write(data);
  f.close();
  out.commit();
}

std::string write_failure_reason(const std::string& file) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? std::string() : errno_text(errno);
  static const char zeros[4096] = {};
  int err = 0;
  for (int i = 0; i < 64 && !err; ++i)  // up to 256 KiB: a partly filled last block takes some
    if (::write(fd, zeros, sizeof zeros) < 0) err = errno;
  if (!err && ::fsync(fd) != 0) err = errno;
  ::close(fd);
  return err ? errno_text(err) : std::string();
}

std::string write_failure_problem(const std::string& file, const std::string& fallback) {
  const std::string reason = write_failure_reason(file);
  return reason.empty() ? fallback : "cannot write: " + reason;
}

std::string storage_failure_reason(const std::string& file, int system_errno, bool storage_failure,
                                   const std::vector<std::string>& companion_suffixes) {
  const int err = system_errno;
  if (err == EFBIG || err == ENOSPC || err == EDQUOT || err == EIO || err == EROFS)
    return errno_text(err);
  if (!storage_failure) return {};
  rlimit limit{};
  if (::getrlimit(RLIMIT_FSIZE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    std::vector<std::string> files{file};
    for (const auto& suffix : companion_suffixes) files.push_back(file + suffix);
    for (const auto& f : files) {
      std::error_code ec;
      const auto size = fs::file_size(f, ec);
      if (!ec && size + 65536 > limit.rlim_cur)  // within a few pages of the limit
        return errno_text(EFBIG) + ": the file size limit is " + std::to_string(limit.rlim_cur) +
               " bytes";
    }
  }
  const std::string dir = fs::path(file).parent_path().string();
  struct statvfs fsinfo {};
  if (::statvfs(dir.empty() ? "." : dir.c_str(), &fsinfo) == 0 &&
      static_cast<unsigned long long>(fsinfo.f_bavail) * fsinfo.f_frsize < (1ull << 20))
    return errno_text(ENOSPC);
  return {};
}

AtomicOutput::~AtomicOutput() {
  const auto [stem, ext] = split_extension(fs::path(temp_).filename().string());
  if (!ext.empty()) forget_name(stem + ext);
  forget_name(stem);
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(temp_, ec);  // best effort; never throws from a destructor
}

void AtomicOutput::commit() {
  std::error_code ec;
  if (!fs::exists(temp_, ec))
    fail<IoError>("write output", target_,
                  std::string(directory_ ? "its temporary folder" : "its temporary file") +
                      " disappeared before it was complete (removed by another program?)");
  // On disk before the name appears: after a power loss the target is the old file or the
  // complete new one, never an empty or partial one (a late ENOSPC/EIO shows here). Inside a
  // temporary directory that is left to its commit, which syncs all its files at once.
  if (!nested_ && directory_) {
    const auto [where, err] = sync_tree(temp_);
    if (err)
      fail<IoError>("write output", target_,
                    "cannot write " + where + " to disk: " + errno_text(err));
  } else if (!nested_) {
    if (const int err = sync_path(temp_, false))
      fail<IoError>("write output", target_, "cannot write to disk: " + errno_text(err));
  }
  if (directory_ && fs::exists(path_, ec)) {
    // Directories cannot be renamed over a non-empty one: move the old one aside first.
    const std::string old = temp_ + ".old";
    fs::rename(path_, old, ec);
    if (ec) fail<IoError>("write output", target_, "cannot replace existing directory: " + ec.message());
    fs::rename(temp_, path_, ec);
    if (ec) {
      std::error_code ec2;
      fs::rename(old, path_, ec2);
      fail<IoError>("write output", target_, "cannot rename temporary directory: " + ec.message());
    }
    fs::remove_all(old, ec);
  } else {
    fs::rename(temp_, path_, ec);
    if (ec) fail<IoError>("write output", target_, "cannot rename temporary file: " + ec.message());
  }
  committed_ = true;
  // The new name itself (a failure here is not the output's: it is complete and in place).
  fs::path parent = fs::path(path_).parent_path();
  if (!nested_) sync_path(parent.empty() ? std::string(".") : parent.string(), true);
}

AtomicOutputs::~AtomicOutputs() {
  if (committed_) return;
  outputs_.clear();  // their temporaries first
  std::error_code ec;
  for (auto it = created_dirs_.rbegin(); it != created_dirs_.rend(); ++it) fs::remove(*it, ec);  // empty ones only
}

const std::string& AtomicOutputs::add(const std::string& target, bool directory, bool create_parents,
                                      const std::string& operation) {
  if (create_parents) {
    fs::path d = fs::path(target).lexically_normal();
    if (d.filename().empty()) d = d.parent_path();  // "dir/"
    std::vector<fs::path> missing;  // innermost first
    std::error_code ec;
    for (fs::path p = d.parent_path(); !p.empty() && !fs::exists(p, ec) && p != p.parent_path(); p = p.parent_path())
      missing.push_back(p);
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
      ensure_directory(it->string(), operation);
      created_dirs_.push_back(it->string());
    }
  }
  std::error_code ec;
  existed_.push_back(fs::exists(target, ec));
  outputs_.push_back(std::make_unique<AtomicOutput>(target, directory));
  return outputs_.back()->temp_path();
}

void AtomicOutputs::commit() {
  std::size_t done = 0;
  try {
    for (; done < outputs_.size(); ++done) outputs_[done]->commit();
  } catch (...) {
    std::error_code ec;
    for (std::size_t i = 0; i < done; ++i)
      if (!existed_[i]) fs::remove_all(outputs_[i]->destination(), ec);
    throw;
  }
  committed_ = true;
}

void ensure_directory(const std::string& dir, const std::string& operation) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    fail<IoError>(operation, dir, "cannot create directory: " + (ec ? ec.message() : "not a directory"));
}

}  // namespace isoline::core
