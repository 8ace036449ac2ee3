// Helpers of the DICOM node tests: free loopback ports, background processes (Orthanc, the
// node), a small CT series with recognizable patient data, Orthanc's REST API through curl.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "isoline/phantoms/phantoms.h"
#include "isoline/rtstruct/ct_series.h"
#include "tests/test_util.h"

namespace isoline::test::node {

namespace fs = std::filesystem;
using Json = nlohmann::json;

inline constexpr const char* kPatientName = "DOE^JANE";
inline constexpr const char* kPatientId = "PHI-4711-ID";
inline constexpr const char* kOrthanc = "/usr/sbin/Orthanc";

/// A loopback port nobody listens on right now (bind to :0, read, close).
inline int free_port() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  ::close(s);
  return port;
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Polls `ok` every 100 ms for up to `timeout` seconds.
inline bool wait_for(const std::function<bool()>& ok, double timeout) {
  const auto t0 = std::chrono::steady_clock::now();
  while (seconds_since(t0) < timeout) {
    if (ok()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return ok();
}

/// Fails the test (not skip) when a tool the suite needs is missing (`make deps` installs it).
inline bool require_tool(const std::string& path_or_name) {
  const bool ok = path_or_name.find('/') != std::string::npos
                      ? fs::exists(path_or_name)
                      : run_command("command -v " + path_or_name).exit_code == 0;
  if (!ok)
    ADD_FAILURE() << "required tool missing: " << path_or_name
                  << " (install the Debian packages with `make deps`: orthanc, dcmtk, curl, dicom3tools)";
  return ok;
}

/// A background process with its output in a log file.
class Process {
 public:
  Process() = default;
  Process(const std::vector<std::string>& argv, const std::string& log) { start(argv, log); }
  ~Process() { kill(SIGKILL); }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  void start(const std::vector<std::string>& argv, const std::string& log) {
    log_ = log;
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::setpgid(0, 0);
      std::vector<char*> a;
      for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
      a.push_back(nullptr);
      ::execv(a[0], a.data());
      ::_exit(127);
    }
  }
  bool running() {
    if (pid_ <= 0) return false;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      status_ = st;
      pid_ = -1;
      return false;
    }
    return true;
  }
  /// Sends `sig` and waits for the exit (up to `timeout` s, then SIGKILL). Returns the status.
  int kill(int sig = SIGTERM, double timeout = 20) {
    if (pid_ <= 0) return status_;
    ::kill(pid_, sig);
    const auto t0 = std::chrono::steady_clock::now();
    while (running()) {
      if (seconds_since(t0) > timeout) ::kill(pid_, SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return status_;
  }
  std::string log() const { return slurp(log_); }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int status_ = 0;
  std::string log_;
};

/// Orthanc on loopback with a temporary configuration (the TPS stand-in).
class Orthanc {
 public:
  explicit Orthanc(const std::string& dir) : dir_(dir), http_(free_port()), dicom_(free_port()) {
    fs::create_directories(dir);
    std::ofstream(dir + "/orthanc.json")
        << "{ \"Name\": \"isoline-test\", \"StorageDirectory\": \"" << dir << "/storage\","
        << " \"IndexDirectory\": \"" << dir << "/index\", \"HttpPort\": " << http_ << ", \"DicomPort\": " << dicom_
        << ", \"DicomAet\": \"ORTHANC\", \"RemoteAccessAllowed\": false, \"AuthenticationEnabled\": false,"
        << " \"Plugins\": [], \"StableAge\": 2, \"DicomCheckCalledAet\": true }\n";
  }
  ~Orthanc() { stop(); }
  bool start() {
    proc_ = std::make_unique<Process>(std::vector<std::string>{kOrthanc, dir_ + "/orthanc.json"}, dir_ + "/orthanc.log");
    return wait_for([&] { return get("/system").exit_code == 0 || !proc_->running(); }, 20) && proc_->running();
  }
  void stop() {
    if (proc_) proc_->kill(SIGTERM);
    proc_.reset();
  }
  int dicom_port() const { return dicom_; }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(http_) + path; }
  CommandResult get(const std::string& path) const { return run_command("curl -sf " + url(path)); }
  CommandResult post(const std::string& path, const std::string& body) const {
    const std::string f = dir_ + "/body.txt";
    std::ofstream(f) << body;
    return run_command("curl -sf -X POST --data-binary @" + f + " " + url(path));
  }
  Json get_json(const std::string& path) const {
    auto r = get(path);
    return r.exit_code == 0 ? Json::parse(r.output, nullptr, false) : Json();
  }
  /// Orthanc IDs of the RT-STRUCT instances stored.
  std::vector<std::string> rtstructs() const {
    auto r = post("/tools/find", R"({"Level":"Instance","Query":{"Modality":"RTSTRUCT"}})");
    std::vector<std::string> out;
    if (r.exit_code != 0) return out;
    Json j = Json::parse(r.output, nullptr, false);
    if (j.is_array())
      for (const auto& x : j) out.push_back(x.get<std::string>());
    return out;
  }
  std::string log() const { return proc_ ? proc_->log() : slurp(dir_ + "/orthanc.log"); }

 private:
  std::string dir_;
  int http_, dicom_;
  std::unique_ptr<Process> proc_;
};

/// The small CT of the suite: the head-and-neck phantom on 128 x 128 x `slices` voxels of
/// 3 x 3 x 5 mm, patient DOE^JANE / PHI-4711-ID, written to `dir`.
inline rtstruct::CtSeries make_ct(const std::string& dir, int slices = 40, std::uint64_t seed = 7) {
  phantoms::HeadNeckOptions o;
  o.seed = seed;
  o.size = {128, 128, slices};
  o.spacing = {3.0, 3.0, 5.0};
  phantoms::Phantom ph = phantoms::make_head_neck(o);
  rtstruct::CtWriteOptions w;
  w.info.patient_name = kPatientName;
  w.info.patient_id = kPatientId;
  w.info.patient_birth_date = "19610203";
  w.info.patient_sex = "F";
  w.info.study_date = "20240305";
  w.info.study_time = "101500";
  w.info.accession_number = "ACC-99812";
  w.info.referring_physician_name = "HOUSE^GREGORY";
  w.info.study_description = "HN planning CT";
  w.info.study_id = "ST-77";
  w.series_description = "Planning CT DOE";
  w.rescale_intercept = -1024;
  return rtstruct::write_ct_series(ph.ct, dir, w);
}

/// Path of the isoline executable under test (fails the test when it is missing).
inline std::string isoline_exe() {
  const std::string b = isoline_bin();
  if (!fs::exists(b)) ADD_FAILURE() << "isoline executable missing: " << b;
  return b;
}

/// Runs storescu (TCP_NODELAY set: Debian's DCMTK otherwise stalls ~40 ms per C-STORE).
inline CommandResult storescu(const std::string& calling, const std::string& called, int port,
                              const std::string& path, const std::string& extra = "") {
  return run_command("TCP_NODELAY=1 storescu -aet " + calling + " -aec " + called + " " + extra + " +sd 127.0.0.1 " +
                     std::to_string(port) + " " + path);
}

inline CommandResult echoscu(const std::string& calling, const std::string& called, int port) {
  return run_command("TCP_NODELAY=1 echoscu -aet " + calling + " -aec " + called + " 127.0.0.1 " + std::to_string(port));
}

/// The node (`isoline listen`) as a background process.
class NodeProcess {
 public:
  NodeProcess(const std::string& work, int port, std::vector<std::string> extra) : work_(work), port_(port) {
    fs::create_directories(work);
    argv_ = {isoline_exe(), "listen", "--port", std::to_string(port), "--aet", "ISOLINE", "--work", work};
    argv_.insert(argv_.end(), extra.begin(), extra.end());
  }
  /// Starts and waits until it answers C-ECHO.
  bool start() {
    proc_ = std::make_unique<Process>(argv_, work_ + "/node.log");
    // Up when it answers an association request (accepted, or rejected by --allow).
    return wait_for(
               [&] {
                 if (!proc_->running()) return true;
                 auto e = echoscu("ECHOTEST", "ISOLINE", port_);
                 return e.exit_code == 0 || e.output.find("Rejected") != std::string::npos;
               },
               30) &&
           proc_->running();
  }
  int stop(int sig = SIGTERM) { return proc_ ? proc_->kill(sig) : 0; }
  /// Sends `sig` without waiting for anything (e.g. SIGHUP).
  bool signal(int sig) { return proc_ && proc_->pid() > 0 && ::kill(proc_->pid(), sig) == 0; }
  bool running() { return proc_ && proc_->running(); }
  std::string log() const { return slurp(work_ + "/node.log"); }
  Json jobs() const {
    auto r = run_command(isoline_bin() + " jobs --json --work " + work_);
    if (r.exit_code != 0) return Json::array();
    return Json::parse(r.output, nullptr, false);
  }
  int port() const { return port_; }

 private:
  std::string work_;
  int port_;
  std::vector<std::string> argv_;
  std::unique_ptr<Process> proc_;
};

}  // namespace isoline::test::node
