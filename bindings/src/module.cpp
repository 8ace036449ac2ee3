// The isoline Python extension (isoline._isoline). One submodule per C++ module; the pure
// Python package in bindings/isoline/ re-exports them with docstrings and helpers.
#include <pybind11/pybind11.h>

#include "common.h"

namespace py = pybind11;

PYBIND11_MODULE(_isoline, m) {
  m.doc() = "Isoline native extension (use the `isoline` package instead of this module)";
  isoline::py_bind::register_errors(m);
  isoline::py_bind::bind_core(m.def_submodule("core", "Images, geometry, structures, I/O"));
  isoline::py_bind::bind_planning(m.def_submodule("planning", "DVH, metrics, criteria, fluence optimisation"));
  isoline::py_bind::bind_adaptive(m.def_submodule("adaptive", "Registration, warping, displacement fields"));
}
