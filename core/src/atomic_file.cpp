#include "isoline/core/atomic_file.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>

#include <fcntl.h>
#include <unistd.h>

#include "isoline/core/error.h"

namespace fs = std::filesystem;

namespace isoline::core {

namespace {
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

// `probe`: also create (and remove) a file in the directory. access(W_OK) says yes for root in
// any directory of a writable file system, /proc included, where files cannot be created.
void check_location(const std::string& target, const std::string& operation, bool parents_created,
                    bool probe) {
  if (target.empty()) fail<InvalidInput>(operation, "", "output path is empty");
  fs::path parent = fs::path(target).parent_path();
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
                  fs::exists(parent, ec) ? parent.string() + " is a file, not a directory"
                                         : "directory " + parent.string() + " does not exist");
  if (::access(parent.c_str(), W_OK) != 0)
    fail<IoError>(operation, target, "directory " + parent.string() + " is not writable");
  if (probe) {
    static std::atomic<unsigned> counter{0};
    const fs::path p = parent / (".isoline-probe-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
      const int err = errno;
      fail<IoError>(operation, target,
                    "directory " + parent.string() + " is not writable (creating a file there failed: " +
                        std::strerror(err) + ")");
    }
    ::close(fd);
    ::unlink(p.c_str());
  }
}
}  // namespace

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
  check_location(target_, "write output", /*parents_created=*/false, /*probe=*/false);  // the temporary is the probe
  fs::path t(target_);
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
    if (!fs::create_directory(temp_, ec))
      fail<IoError>("write output", target_, "cannot create temporary directory " + temp_);
  }
}

void write_file_atomic(const std::string& path, std::string_view data, const std::string& operation) {
  AtomicOutput out(path);
  {
    std::ofstream f(out.temp_path(), std::ios::binary);
    if (!f) fail<IoError>(operation, path, "cannot open " + out.temp_path() + " for writing");
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
    f.close();
    if (!f) fail<IoError>(operation, path, "write failed (disk full?)");
  }
  out.commit();
}

AtomicOutput::~AtomicOutput() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(temp_, ec);  // best effort; never throws from a destructor
}

void AtomicOutput::commit() {
  std::error_code ec;
  if (!fs::exists(temp_, ec))
    fail<IoError>("write output", target_, "nothing was written to " + temp_);
  if (directory_ && fs::exists(target_, ec)) {
    // Directories cannot be renamed over a non-empty one: move the old one aside first.
    const std::string old = temp_ + ".old";
    fs::rename(target_, old, ec);
    if (ec) fail<IoError>("write output", target_, "cannot replace existing directory: " + ec.message());
    fs::rename(temp_, target_, ec);
    if (ec) {
      std::error_code ec2;
      fs::rename(old, target_, ec2);
      fail<IoError>("write output", target_, "cannot rename temporary directory: " + ec.message());
    }
    fs::remove_all(old, ec);
  } else {
    fs::rename(temp_, target_, ec);
    if (ec) fail<IoError>("write output", target_, "cannot rename temporary file: " + ec.message());
  }
  committed_ = true;
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
      if (!existed_[i]) fs::remove_all(outputs_[i]->target(), ec);
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
