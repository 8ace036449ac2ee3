// Small pieces of the node kept apart so that they can be tested alone: one-line log
// entries, DICOM text as UTF-8 for the log, a failed job's error in the operator's terms, the
// worker's back-off on repeated errors.
#pragma once

#include <map>
#include <string>

namespace isoline::node {

/// `s` as one log line: embedded line breaks (e.g. DCMTK's two-line errors) become " | ",
/// trailing ones are dropped.
std::string one_line(const std::string& s);

/// The node's log line for an event: "2026-11-25T16:28:19.541Z info <text>" (UTC, milliseconds),
/// `text` made one line (one_line) and valid UTF-8 (utf8_escaped); no line break at the end.
std::string log_line(const std::string& level, const std::string& text);

/// `s` with every byte that is not part of a valid UTF-8 sequence shown as \xNN, so that a log
/// line is valid UTF-8 whatever a message carried (valid characters are kept).
std::string utf8_escaped(const std::string& s);

/// A DICOM text value (the bytes of the character set `specific_character_set` names, e.g.
/// "ISO_IR 100"; empty = ISO_IR 100, as the readers assume) as UTF-8 for a log line. What
/// cannot be converted keeps its ASCII characters and shows every other byte as \xNN, so the
/// log stays valid UTF-8.
std::string utf8_for_log(const std::string& value, const std::string& specific_character_set);

/// A failed job's error as the node's operator can act on it. `labels` maps the job's input
/// files (the node's own links, meaningless outside it) and folders to what names them, e.g.
/// "Instance Number 12 (SOP Instance UID 1.2.3)"; advice in parentheses meant for users of the
/// library or Python (resample_nonuniform=True, ...) is dropped; when the CT series could not be
/// read, "send the series again" is added.
std::string job_error_for_operator(std::string message,
                                   const std::map<std::string, std::string>& labels);

/// The worker's error loop: the wait before the next try grows from `initial_seconds`,
/// doubling up to `max_seconds`, while errors repeat; an error is logged when it first
/// occurs (or changes), then only as a reminder every `remind_seconds`.
class ErrorBackoff {
 public:
  explicit ErrorBackoff(double initial_seconds = 0.2, double max_seconds = 30.0,
                        double remind_seconds = 300.0)
      : initial_(initial_seconds), max_(max_seconds), remind_(remind_seconds) {}
  /// An error at `now`. Returns whether to log it now (first time, a different error, or the
  /// reminder is due); the delay before the next try grows.
  bool on_error(const std::string& what, double now);
  /// A successful round: returns how many errors there were since the last success (0 when
  /// none, so the caller can log the recovery once) and resets the back-off.
  int on_success();
  bool failing() const { return failing_; }
  /// Seconds to wait before the next try (0 when not failing).
  double delay() const { return failing_ ? delay_ : 0.0; }
  /// Errors since the current one was last logged (for the reminder's text).
  int repeats() const { return repeats_; }

 private:
  double initial_, max_, remind_;
  bool failing_ = false;
  std::string last_;
  double delay_ = 0, last_logged_ = 0;
  int repeats_ = 0, total_ = 0;
};

}  // namespace isoline::node
