# Hand-written: the package's top level (the submodules have their own stubs).
from typing import Sequence

from . import adaptive as adaptive
from . import batch as batch
from . import contouring as contouring
from . import core as core
from . import dose as dose
from . import phantoms as phantoms
from . import pipeline as pipeline
from . import planning as planning
from . import rtstruct as rtstruct
from .patient import Patient as Patient, load_patient as load_patient

__version__: str

class Error(RuntimeError):
    # The warnings the operation had gathered before it failed (pipeline.run_case's, e.g.
    # "contouring: anatomy outside the model's scope? ...", adaptive.adapt's); () when none.
    warnings: Sequence[str]
class InvalidInput(Error, ValueError): ...
class IoError(Error, OSError): ...
class DeviceError(Error): ...
class NotSupported(Error): ...
class Cancelled(Error): ...

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
