"""Isoline: auto-contouring, achievable dose and DICOM RT for radiotherapy planning.

Submodules mirror the C++ modules::

    import isoline
    ct = isoline.core.read_image("ct.nii.gz")      # Image with LPS geometry
    hu = ct.array                                   # numpy view (nz, ny, nx), no copy

Errors: isoline.InvalidInput (a ValueError), isoline.IoError (an OSError),
isoline.DeviceError, isoline.NotSupported, isoline.Cancelled; all derive from isoline.Error.
"""
from . import _isoline
from ._isoline import Cancelled, DeviceError, Error, InvalidInput, IoError, NotSupported
from . import adaptive, core, planning

__version__ = _isoline.core.version()

__all__ = [
    "adaptive",
    "core",
    "planning",
    "Error",
    "InvalidInput",
    "IoError",
    "DeviceError",
    "NotSupported",
    "Cancelled",
    "__version__",
]
