#include <pybind11/pybind11.h>

#include <cctype>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "common.h"
#include "isoline/core/error.h"
#include "isoline/dose/engine.h"

namespace py = pybind11;

namespace isoline::py_bind {

namespace {

// The library's messages name the CLI's flag ("contour: --device cuda: ...; use --device cpu");
// Python callers pass the argument device="cuda" / device="cpu" instead.
std::string python_message(std::string message) {
  static const std::string flag = "--device ";
  for (auto at = message.find(flag); at != std::string::npos; at = message.find(flag, at)) {
    auto end = at + flag.size();
    // the value: "cpu", "cuda", "cuda:1" (a ':' only inside it, not the one that ends the subject)
    auto word = [&](std::size_t i) { return i < message.size() && std::isalnum(static_cast<unsigned char>(message[i])); };
    while (word(end) || (end < message.size() && message[end] == ':' && word(end + 1))) ++end;
    const std::string value = message.substr(at + flag.size(), end - at - flag.size());
    const std::string argument = "device=\"" + value + "\"";
    message.replace(at, end - at, argument);
    at += argument.size();
  }
  return message;
}

// The message prefix of a cancellation by an interrupt: translated to KeyboardInterrupt.
constexpr const char* kInterrupted = "cancelled: interrupted";

// A cancellation by a progress callback that raised: carries the callback's exception so that
// the translator chains it as the isoline.Cancelled's __cause__ (`raise Cancelled(...) from e`).
// The exception object is released under the GIL, wherever the C++ exception dies.
class CallbackRaised : public core::Cancelled {
 public:
  CallbackRaised(const std::string& message, py::object exception)
      : core::Cancelled(message), exception_(new py::object(std::move(exception)), [](py::object* o) {
          py::gil_scoped_acquire gil;
          delete o;
        }) {}
  const py::object& exception() const { return *exception_; }

 private:
  std::shared_ptr<py::object> exception_;
};

// One line: runs of whitespace (a multi-line str(exception)) become one space.
std::string one_line(const std::string& text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// Runs Python's signal handlers (the caller holds the GIL); Ctrl-C (or any handler that
// raises) cancels the operation.
void check_signals() {
  if (PyErr_CheckSignals() != 0) {
    PyErr_Clear();
    throw core::Cancelled(std::string(kInterrupted) + " (Ctrl-C)");
  }
}

// Without a Python callback: a callback that only checks for Ctrl-C, at most every 100 ms and
// only on the calling thread (Python runs signal handlers on its main thread only; other
// threads, e.g. OpenMP workers, return at once without touching the GIL).
core::ProgressCallback signal_check_callback() {
  const py::object main_thread = py::module_::import("threading").attr("main_thread")();
  if (PyThread_get_thread_ident() != main_thread.attr("ident").cast<unsigned long>()) return {};
  using Clock = std::chrono::steady_clock;
  auto last = std::make_shared<Clock::time_point>(Clock::now());
  return [last, thread = std::this_thread::get_id()](const core::ProgressEvent&) {
    if (std::this_thread::get_id() != thread) return;
    const auto now = Clock::now();
    if (now - *last < std::chrono::milliseconds(100)) return;
    *last = now;
    py::gil_scoped_acquire gil;
    check_signals();
  };
}

// `type(message)`, with the warnings the operation had gathered before it failed
// (core::Error::warnings(): pipeline.run_case's) as the exception's `warnings`, a list of str;
// without any, the class's empty tuple.
py::object make_error(const py::object& type, const core::Error& e, const std::string& message) {
  py::object exc = type(message);
  if (!e.warnings().empty()) {
    py::list warnings;
    for (const auto& w : e.warnings()) warnings.append(py::str(w));
    exc.attr("warnings") = warnings;
  }
  return exc;
}

void set_error(const py::object& type, const core::Error& e, const std::string& message) {
  if (e.warnings().empty())
    PyErr_SetString(type.ptr(), message.c_str());
  else
    PyErr_SetObject(type.ptr(), make_error(type, e, message).ptr());
}

}  // namespace

void register_errors(py::module_& m) {
  // Multiple inheritance from built-ins so `except ValueError` / `except OSError` work.
  // `warnings`: what the operation had gathered before it failed (set_error); () for most errors.
  static py::object base = py::reinterpret_steal<py::object>(PyErr_NewExceptionWithDoc(
      "isoline.Error",
      "Base class of Isoline errors. `warnings`: the warnings the operation had gathered before it "
      "failed (pipeline.run_case: e.g. 'contouring: anatomy outside the model's scope? ...'), often "
      "the reason; () when none.",
      PyExc_RuntimeError, py::dict(py::arg("warnings") = py::tuple()).ptr()));
  auto make = [&](const char* name, const char* doc, PyObject* builtin) {
    py::tuple bases = builtin ? py::make_tuple(base, py::handle(builtin)) : py::make_tuple(base);
    std::string qual = std::string("isoline.") + name;
    return py::reinterpret_steal<py::object>(
        PyErr_NewExceptionWithDoc(qual.c_str(), doc, bases.ptr(), nullptr));
  };
  static py::object invalid = make("InvalidInput", "Unusable input (also a ValueError).", PyExc_ValueError);
  static py::object io = make("IoError", "File cannot be read or written (also an OSError).", PyExc_OSError);
  static py::object device = make("DeviceError", "Requested compute device unavailable.", nullptr);
  static py::object unsupported = make("NotSupported", "Valid but unsupported input.", nullptr);
  static py::object cancelled = make("Cancelled", "Cancelled by a progress callback that raised (Ctrl-C raises KeyboardInterrupt).", nullptr);
  m.attr("Error") = base;
  m.attr("InvalidInput") = invalid;
  m.attr("IoError") = io;
  m.attr("DeviceError") = device;
  m.attr("NotSupported") = unsupported;
  m.attr("Cancelled") = cancelled;

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const core::InvalidInput& e) {
      set_error(invalid, e, e.what());
    } catch (const core::IoError& e) {
      set_error(io, e, e.what());
    } catch (const core::DeviceError& e) {
      set_error(device, e, python_message(e.what()));
    } catch (const core::NotSupported& e) {
      set_error(unsupported, e, e.what());
    } catch (const core::Cancelled& e) {
      // Ctrl-C (or a callback's KeyboardInterrupt) stays a KeyboardInterrupt, as everywhere in
      // Python: a per-case loop with `except Exception:` stops instead of logging a failed case
      // and going on. A callback that raises anything else is isoline.Cancelled.
      const bool interrupt = std::string(e.what()).rfind(kInterrupted, 0) == 0;
      const auto* raised = dynamic_cast<const CallbackRaised*>(&e);
      if (interrupt) {
        PyErr_SetString(PyExc_KeyboardInterrupt, e.what());
      } else if (!raised || !raised->exception()) {
        set_error(cancelled, e, e.what());
      } else {
        // raise isoline.Cancelled(message) from <the callback's exception>
        py::object exc = make_error(cancelled, e, e.what());
        PyException_SetCause(exc.ptr(), raised->exception().inc_ref().ptr());  // steals; sets __suppress_context__
        PyErr_SetObject(cancelled.ptr(), exc.ptr());
      }
    } catch (const core::Error& e) {
      set_error(base, e, e.what());
    } catch (const dose::EngineError& e) {  // normally wrapped by isoline::dose already
      PyErr_SetString(e.kind() == dose::EngineError::Io       ? io.ptr()
                      : e.kind() == dose::EngineError::Device ? device.ptr()
                                                              : invalid.ptr(),
                      python_message(e.what()).c_str());
    }
  });
}

core::ProgressCallback wrap_progress(const py::object& callback) {
  if (callback.is_none()) return signal_check_callback();
  // Keep the callable alive with the callback; copies/destruction happen under the GIL.
  auto holder = std::shared_ptr<py::object>(new py::object(callback), [](py::object* o) {
    py::gil_scoped_acquire gil;
    delete o;
  });
  return [holder](const core::ProgressEvent& e) {
    py::gil_scoped_acquire gil;
    try {
      (*holder)(e.stage, e.fraction, e.detail);
    } catch (py::error_already_set& err) {
      if (err.matches(PyExc_KeyboardInterrupt))
        throw core::Cancelled(std::string(kInterrupted) + " (KeyboardInterrupt in progress callback)");
      // One line (err.what() carries pybind11's "At:" frames): the exception's type and message;
      // the exception itself (with its traceback) becomes the Cancelled's __cause__.
      const py::object value = err.value();
      if (err.trace() && value) PyException_SetTraceback(value.ptr(), err.trace().ptr());
      std::string text = py::str(err.type().attr("__name__")).cast<std::string>();
      std::string detail;
      try {
        detail = one_line(py::str(value).cast<std::string>());
      } catch (const py::error_already_set&) {  // a __str__ that raises
      }
      if (!detail.empty()) text += ": " + detail;
      throw CallbackRaised("cancelled: progress callback raised: " + text, value);
    }
    check_signals();
  };
}

}  // namespace isoline::py_bind
