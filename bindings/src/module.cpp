// The isoline Python extension (isoline._isoline). One submodule per C++ module; the pure
// Python package in bindings/isoline/ re-exports them with docstrings and helpers.
// Order matters for the generated signatures: a type is bound before the functions that use it.
#include <pybind11/pybind11.h>

#include "common.h"

namespace py = pybind11;

PYBIND11_MODULE(_isoline, m) {
  m.doc() = "Isoline native extension (use the `isoline` package instead of this module)";
  isoline::py_bind::register_errors(m);
  isoline::py_bind::bind_core(m.def_submodule("core", "Images, geometry, structures, I/O"));
  isoline::py_bind::bind_rtstruct(m.def_submodule("rtstruct", "DICOM CT series, RT Structure Set, RT Dose"));
  isoline::py_bind::bind_phantoms(m.def_submodule("phantoms", "Generated head-and-neck and dose phantoms"));
  isoline::py_bind::bind_contouring(m.def_submodule("contouring", "Auto-contouring, Body mask, agreement metrics"));
  auto planning = m.def_submodule("planning", "DVH, metrics, criteria, fluence optimisation, plan templates");
  isoline::py_bind::bind_planning(planning);  // SparseMatrix before dose's InfluenceMatrix.to_sparse_matrix
  isoline::py_bind::bind_dose(m.def_submodule("dose", "Plans, dose calculation, influence matrix"));
  auto adaptive = m.def_submodule("adaptive", "Registration, warping, propagation, dose accumulation, replanning");
  isoline::py_bind::bind_adaptive(adaptive);
  // dose::Plan <-> planning: dose binds before, and adaptive's RegistrationResult before adapt().
  isoline::py_bind::bind_plan(planning);
  isoline::py_bind::bind_adapt(adaptive);
  isoline::py_bind::bind_pipeline(m.def_submodule("pipeline", "The main job: contour, plan, export"));
}
