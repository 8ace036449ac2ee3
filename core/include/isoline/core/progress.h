// Progress reporting for long operations.
//
// Library code receives a Progress, calls update(fraction, detail) and hands sub-ranges to
// the steps it calls. The application supplies a callback: the CLI draws a progress bar on
// a terminal and plain lines otherwise; Python passes a function. A callback may throw
// core::Cancelled to stop the operation. Updates are thread-safe and throttled.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace isoline::core {

struct ProgressEvent {
  std::string stage;   ///< e.g. "contour", "dose/terma"
  double fraction;     ///< overall fraction done, 0..1
  std::string detail;  ///< optional short text, e.g. "beam 3/9"
};

using ProgressCallback = std::function<void(const ProgressEvent&)>;

class Progress {
 public:
  /// A reporter that does nothing.
  Progress();
  explicit Progress(ProgressCallback callback, std::string stage = {});

  /// Reports `fraction` (0..1) of this reporter's range. Emits at most every 0.5 % or on a
  /// change of detail text; always emits 0 and 1.
  void update(double fraction, std::string_view detail = {}) const;
  /// Marks this range complete.
  void done() const { update(1.0); }

  /// A reporter for the part [begin, end] of this range, with stage "<stage>/<name>".
  Progress sub(double begin, double end, std::string_view name = {}) const;

  bool active() const;

 private:
  struct Shared;
  std::shared_ptr<Shared> shared_;
  std::string stage_;
  double begin_ = 0.0;
  double end_ = 1.0;
};

}  // namespace isoline::core
