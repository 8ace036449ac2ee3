"""Isoline: auto-contouring, achievable dose and DICOM RT for radiotherapy planning.

Submodules mirror the C++ modules::

    import isoline
    ct = isoline.core.read_image("ct.nii.gz")      # Image with LPS geometry
    hu = ct.array                                   # numpy view (nz, ny, nx), no copy
    pt = isoline.load_patient("case/")              # DICOM dir or NIfTI + masks -> ct, structures

    isoline.core        images, geometry, structures, NIfTI/NRRD I/O, margins and booleans
    isoline.rtstruct    DICOM CT series, RT-STRUCT, RT-DOSE
    isoline.phantoms    generated head-and-neck and dose phantoms
    isoline.contouring  auto-contouring, Body, Dice/HD95
    isoline.dose        plans, dose calculation (CPU/CUDA), influence matrix
    isoline.planning    DVH, metrics, criteria, fluence optimisation
    isoline.adaptive    registration, warping, propagation, dose accumulation, replanning
    isoline.pipeline    the main job (isoline run): contour, plan, export
    isoline.batch       many cases on a Dask cluster with a resumable manifest

Errors: isoline.InvalidInput (a ValueError), isoline.IoError (an OSError),
isoline.DeviceError, isoline.NotSupported, isoline.Cancelled (a progress callback raised); all
derive from isoline.Error. Ctrl-C raises KeyboardInterrupt, as in any Python code.
"""
from . import _isoline
from ._isoline import Cancelled, DeviceError, Error, InvalidInput, IoError, NotSupported
from . import adaptive, contouring, core, dose, phantoms, pipeline, planning, rtstruct
from .patient import Patient, load_patient

__version__ = _isoline.core.version()


def __getattr__(name):  # isoline.batch imports dask only when used
    if name == "batch":
        import importlib
        return importlib.import_module(".batch", __name__)
    raise AttributeError(f"module 'isoline' has no attribute {name!r}")


__all__ = [
    "adaptive",
    "batch",
    "contouring",
    "core",
    "dose",
    "phantoms",
    "pipeline",
    "planning",
    "rtstruct",
    "Patient",
    "load_patient",
    "Error",
    "InvalidInput",
    "IoError",
    "DeviceError",
    "NotSupported",
    "Cancelled",
    "__version__",
]
