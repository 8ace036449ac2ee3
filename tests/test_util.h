// Helpers shared by the GoogleTest suites.
#pragma once

#include <algorithm>
#include <array>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

namespace isoline::test {

/// A fresh directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("isoline-test-" + std::to_string(rd()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string str() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// Path inside ../shared/data. Fails the test (not skip) when the data are missing, so a
/// CI without the data reports it instead of passing silently.
inline std::string shared_data(const std::string& rel) {
  const std::string p = std::string(ISOLINE_SHARED_DATA) + "/" + rel;
  if (!std::filesystem::exists(p))
    ADD_FAILURE() << "shared data missing: " << p
                  << " (tests labelled 'data' need ../shared/data beside the checkout)";
  return p;
}

struct CommandResult {
  int exit_code = -1;
  std::string output;  ///< stdout and stderr together
};

/// While alive, files written by this process and the commands it starts cannot grow beyond
/// `bytes` (RLIMIT_FSIZE, the soft limit) and a write past it fails with EFBIG, "File too large"
/// (SIGXFSZ ignored, else it would kill the writer): a full disk without root or a tiny file
/// system. Keep its scope to the write under test.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(std::uint64_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &old_);
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit r = old_;
    r.rlim_cur = old_.rlim_max == RLIM_INFINITY
                     ? static_cast<rlim_t>(bytes)
                     : std::min(static_cast<rlim_t>(bytes), old_.rlim_max);
    ::setrlimit(RLIMIT_FSIZE, &r);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    std::signal(SIGXFSZ, old_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  rlimit old_{};
  void (*old_handler_)(int) = SIG_DFL;
};

/// Paths under `dir` (at any depth) that look like a temporary of Isoline's atomic writers.
inline std::vector<std::string> temporaries_in(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    const std::string n = it->path().filename().string();
    if (n.find(".tmp-") != std::string::npos || n.find(".isoline-probe") != std::string::npos)
      out.push_back(it->path().string());
  }
  return out;
}

/// Runs a shell command and captures its combined output.
inline CommandResult run_command(const std::string& cmd) {
  CommandResult r;
  FILE* pipe = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf;
  while (std::fgets(buf.data(), buf.size(), pipe)) r.output += buf.data();
  int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

/// Path of the isoline executable under test.
inline std::string isoline_bin() {
  const char* env = std::getenv("ISOLINE_BIN");
  return env ? env : std::string(ISOLINE_BINARY_DIR) + "/bin/isoline";
}

/// `isoline ARGS` (the executable under test), output captured.
inline CommandResult cli(const std::string& args) { return run_command(isoline_bin() + " " + args); }

/// The whole file as bytes (empty when it cannot be read).
inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

/// True when `text` contains `part`.
inline bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

/// `isoline phantom hn` into t/name: 64 x 64 x `slices` voxels of 4 mm (ct.nii.gz, masks/,
/// dicom/ with RS.dcm), about a second. 24 slices (96 mm) is an ordinary case.
inline std::string small_phantom(const TempDir& t, const std::string& name, int slices = 24, int seed = 3) {
  const std::string dir = t.file(name);
  auto r = cli("phantom hn -q --size 64,64," + std::to_string(slices) + " --spacing 4,4,4 --seed " +
               std::to_string(seed) + " --out " + dir);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return dir;
}

}  // namespace isoline::test
