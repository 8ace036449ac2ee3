// One exception hierarchy for all of Isoline.
//
// Messages name the operation and the input at fault, in one line:
//   "read image: /data/ct.nii.gz: file does not exist"
// Library code throws these and never prints or exits; the CLI and the Python bindings
// translate them (exit code / Python exception type).
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace isoline::core {

/// Base class of every error Isoline throws on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;

  /// The warnings a long operation had gathered when it failed (pipeline::run_case: the CT
  /// series', "contouring: anatomy outside the model's scope? ...", ...): often the reason for
  /// the failure, and lost otherwise, since they are returned only with a result. Not part of
  /// what(); the CLI prints them as "warning: ..." lines before the error line, Python has them
  /// as the exception's `warnings`. Empty for most errors.
  const std::vector<std::string>& warnings() const noexcept;
  /// Appends to warnings(): where an operation's warnings are known, e.g.
  /// `catch (core::Error& e) { e.add_warnings(gathered); throw; }` (the type is kept).
  void add_warnings(const std::vector<std::string>& warnings);

 private:
  // Shared and immutable: copying an exception must not throw.
  std::shared_ptr<const std::vector<std::string>> warnings_;
};

/// The caller's input is unusable: bad arguments, inconsistent geometry, malformed content.
/// Python: ValueError.
class InvalidInput : public Error {
 public:
  using Error::Error;
};

/// A file or directory cannot be read or written, or its content is not a readable format.
/// Python: OSError.
class IoError : public Error {
 public:
  using Error::Error;
};

/// A compute device was requested that this build or this machine cannot provide.
class DeviceError : public Error {
 public:
  using Error::Error;
};

/// The operation is valid but not supported (yet) for this input, e.g. a 4-D image.
class NotSupported : public Error {
 public:
  using Error::Error;
};

/// The user cancelled a long operation from its progress callback.
class Cancelled : public Error {
 public:
  using Error::Error;
};

/// Formats "operation: subject: problem" (subject omitted when empty).
std::string format_error(std::string_view operation, std::string_view subject,
                         std::string_view problem);

/// Throws E with format_error(operation, subject, problem).
template <class E>
[[noreturn]] void fail(std::string_view operation, std::string_view subject,
                       std::string_view problem) {
  throw E(format_error(operation, subject, problem));
}

}  // namespace isoline::core
