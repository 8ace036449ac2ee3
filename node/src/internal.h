// Internal interfaces of the node module (not installed).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "isoline/node/config.h"
#include "isoline/node/job_queue.h"

namespace isoline::node::detail {

/// Receives what the listener wants to say (one line, no PHI unless config.debug).
using Say = std::function<void(const std::string& level, const std::string& line)>;

/// The C-STORE SCP. open() binds the port (throws core::IoError); serve() accepts
/// associations until `stop` is set, recovering from network errors, each association in its
/// own thread with its own connection to the queue (config.max_associations at once), and
/// returns when those in progress have ended.
class Listener {
 public:
  Listener(const NodeConfig& config, std::atomic<bool>& stop, Say say,
           std::function<void()> wake_worker);
  ~Listener();
  void open();
  void serve();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Whether every file of a series is a localizer (ImageType contains LOCALIZER: a scout /
/// topogram), which is not contoured. False when a file cannot be read (the reader says why).
bool is_localizer_series(const std::vector<std::string>& files);

/// Configures DCMTK's log (the logger "dcmtk", parent of all its modules': errors only, or
/// informational output in debug mode) and where its lines go: to `say` (level "dcmtk INFO",
/// "dcmtk ERROR", ...), i.e. the node's own log with its lock, destination and line format, or
/// without `say` to standard error with the node's UTC timestamp. Process-wide: the last call
/// wins. Kept when a DICOM read later reconfigures DCMTK's root logger.
void configure_dcmtk_logging(bool debug, Say say = {});

/// Undoes configure_dcmtk_logging: DCMTK's lines go to its root logger again.
void reset_dcmtk_logging();

}  // namespace isoline::node::detail
