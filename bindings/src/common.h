#pragma once

#include <pybind11/pybind11.h>

#include "isoline/core/geometry.h"
#include "isoline/core/image.h"
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

/// Pickle states (core.cpp): a Geometry as (size, spacing, origin, direction as 9 values); an
/// Image as (geometry state, numpy array or None when empty, dtype name).
pybind11::tuple geometry_state(const core::Geometry& g);
core::Geometry geometry_from_state(const pybind11::tuple& state);
pybind11::tuple image_state(const core::Image& image);
core::Image image_from_state(const pybind11::tuple& state);

/// copy.copy / copy.deepcopy of a bound class through `copy(const T&) -> T` (a C++ copy, or a
/// clone where the C++ copy would share pixel buffers): both give an independent object.
template <class T, class... Options, class Copy>
void def_copy(pybind11::class_<T, Options...>& cls, Copy copy,
              const char* doc = "An independent copy (its pixel data copied too); copy.copy and copy.deepcopy alike.") {
  cls.def("__copy__", [copy](const T& t) { return copy(t); }, doc);
  cls.def("__deepcopy__", [copy](const T& t, const pybind11::object&) { return copy(t); }, pybind11::arg("memo"), doc);
}

/// As def_copy with the C++ copy constructor (classes of plain values).
template <class T, class... Options>
void def_value_copy(pybind11::class_<T, Options...>& cls) {
  def_copy(cls, [](const T& t) { return T(t); }, "An independent copy; copy.copy and copy.deepcopy alike.");
}

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
