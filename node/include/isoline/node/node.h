// The DICOM node: a C-STORE SCP (CT Image Storage + Verification) that stores instances
// durably, a worker that declares series complete (quiet time or association release),
// runs the configured job and sends the results by C-STORE with retries and back-off.
// DCMTK (dcmnet) and SQLite stay inside the .cpp files.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "isoline/node/config.h"

namespace isoline::node {

/// Log lines (already free of PHI unless the node runs with debug on).
using LogSink = std::function<void(const std::string& line)>;

class Node {
 public:
  /// Validates the configuration, creates the work directory and opens the queue. Throws
  /// core::InvalidInput / NotSupported / IoError.
  explicit Node(NodeConfig config, LogSink log = {});
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  /// Serves until stop() is called: recovers pending work, listens, processes jobs. Throws
  /// core::IoError when the port cannot be opened.
  void run();
  /// Asks run() to return (thread-safe; also safe from a signal handler through
  /// stop_flag()). A job being processed is interrupted and stays queued.
  void stop();
  std::atomic<bool>& stop_flag();

  const NodeConfig& config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Sends DICOM files to a destination by C-STORE (one association, one presentation
/// context per SOP class). Throws core::IoError with the reason (connection refused,
/// association rejected, a failure status).
void send_files(const std::vector<std::string>& files, const Destination& to,
                const std::string& calling_aet, int acse_timeout = 10, int dimse_timeout = 60);

/// C-ECHO to a destination. Throws core::IoError.
void echo(const Destination& to, const std::string& calling_aet, int timeout = 10);

}  // namespace isoline::node
