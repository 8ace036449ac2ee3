#pragma once

#include <pybind11/pybind11.h>

#include "isoline/core/progress.h"

namespace isoline::py_bind {

/// Registers isoline.Error and its subclasses and the C++ -> Python translation:
/// InvalidInput -> ValueError subclass, IoError -> OSError subclass, others -> RuntimeError.
void register_errors(pybind11::module_& m);

/// Wraps an optional Python callable f(stage: str, fraction: float, detail: str) as a core
/// progress callback that re-acquires the GIL; KeyboardInterrupt/exceptions raised in it
/// cancel the operation. Without a callable (None), the callback only checks for Ctrl-C
/// (at most every 100 ms, from the main Python thread), so Ctrl-C cancels the call either way.
core::ProgressCallback wrap_progress(const pybind11::object& callback);

void bind_core(pybind11::module_ m);
void bind_planning(pybind11::module_ m);
void bind_adaptive(pybind11::module_ m);
void bind_rtstruct(pybind11::module_ m);
void bind_contouring(pybind11::module_ m);
void bind_dose(pybind11::module_ m);
void bind_phantoms(pybind11::module_ m);
void bind_plan(pybind11::module_ m);   // into the planning submodule
void bind_adapt(pybind11::module_ m);  // into the adaptive submodule
void bind_pipeline(pybind11::module_ m);

}  // namespace isoline::py_bind
