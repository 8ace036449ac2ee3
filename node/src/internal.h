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

/// Configures DCMTK's logger: warnings only, or informational output in debug mode.
void configure_dcmtk_logging(bool debug);

}  // namespace isoline::node::detail
