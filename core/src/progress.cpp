#include "isoline/core/progress.h"

#include <algorithm>
#include <mutex>

namespace isoline::core {

struct Progress::Shared {
  ProgressCallback callback;
  std::mutex mutex;
  double last_fraction = -1.0;
  std::string last_stage;
  std::string last_detail;
};

Progress::Progress() = default;

Progress::Progress(ProgressCallback callback, std::string stage)
    : stage_(std::move(stage)) {
  if (callback) {
    shared_ = std::make_shared<Shared>();
    shared_->callback = std::move(callback);
  }
}

bool Progress::active() const { return shared_ != nullptr; }

void Progress::update(double fraction, std::string_view detail) const {
  if (!shared_) return;
  fraction = std::clamp(fraction, 0.0, 1.0);
  const double overall = begin_ + (end_ - begin_) * fraction;
  ProgressEvent event;
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    const bool changed_text = stage_ != shared_->last_stage || detail != shared_->last_detail;
    const bool boundary = fraction <= 0.0 || fraction >= 1.0;
    if (!changed_text && !boundary && overall - shared_->last_fraction < 0.005) return;
    if (!changed_text && overall == shared_->last_fraction) return;
    shared_->last_fraction = overall;
    shared_->last_stage = stage_;
    shared_->last_detail = std::string(detail);
    event = ProgressEvent{stage_, overall, std::string(detail)};
  }
  // Called outside the lock: the callback may throw Cancelled or take its time.
  shared_->callback(event);
}

Progress Progress::sub(double begin, double end, std::string_view name) const {
  Progress p = *this;
  begin = std::clamp(begin, 0.0, 1.0);
  end = std::clamp(end, begin, 1.0);
  p.begin_ = begin_ + (end_ - begin_) * begin;
  p.end_ = begin_ + (end_ - begin_) * end;
  if (!name.empty()) p.stage_ = stage_.empty() ? std::string(name) : stage_ + "/" + std::string(name);
  return p;
}

}  // namespace isoline::core
