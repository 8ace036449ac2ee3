"""Every public class and function of every isoline module has a docstring that says something
(docs/python.md promises help() on any of them): pybind11's generated signature line, its
"Members:" list of an enum or a dataclass's generated signature do not count."""
import dataclasses
import importlib
import inspect
import re

import pytest

import isoline

MODULES = ["isoline", "isoline.core", "isoline.planning", "isoline.adaptive", "isoline.rtstruct",
           "isoline.contouring", "isoline.dose", "isoline.phantoms", "isoline.pipeline", "isoline.patient",
           "isoline.batch"]
SIGNATURE = re.compile(r"^(?:\d+\.\s+)?\w+\(.*\)\s*->.*$")


def described(obj):
    """The docstring's own text: without pybind11's signature lines, "Overloaded function." and
    an enum's member list."""
    doc = inspect.cleandoc(obj.__doc__ or "")   # not getdoc: it falls back on a base class's
    if dataclasses.is_dataclass(obj) and doc.startswith(obj.__name__ + "("):
        return ""
    if inspect.isclass(obj) and "__members__" in obj.__dict__:
        doc = doc.split("Members:")[0]
    lines = [l for l in doc.splitlines() if not SIGNATURE.match(l.strip()) and l.strip() != "Overloaded function."]
    return "\n".join(lines).strip()


def public_objects(name):
    mod = importlib.import_module(name)
    names = getattr(mod, "__all__", None) or [n for n in dir(mod) if not n.startswith("_")]
    for n in names:
        obj = getattr(mod, n)
        if inspect.ismodule(obj) or not (inspect.isclass(obj) or callable(obj)):
            continue
        yield f"{name}.{n}", obj


@pytest.mark.parametrize("name", MODULES)
def test_every_public_class_and_function_has_a_docstring(name):
    missing = [where for where, obj in public_objects(name) if not described(obj)]
    assert not missing, f"no docstring: {missing} (pybind11: py::class_<T>(m, \"Name\", \"doc\"), m.def(..., \"doc\"))"


def public_methods(name):
    """Public methods (not properties) of the module's public classes, bound or pure Python."""
    for where, cls in public_objects(name):
        if not inspect.isclass(cls) or not cls.__module__.startswith("isoline"):
            continue
        enum = "__members__" in cls.__dict__
        for attr, obj in vars(cls).items():
            if attr.startswith("_") or isinstance(obj, property) or (enum and attr in ("name", "value")):
                continue
            fn = obj.__func__ if isinstance(obj, (staticmethod, classmethod)) else obj
            if callable(fn):
                yield f"{where}.{attr}", fn


@pytest.mark.parametrize("name", MODULES)
def test_every_public_method_of_a_class_has_a_docstring(name):
    methods = list(public_methods(name))
    missing = [where for where, fn in methods if not described(fn)]
    assert not missing, f"no docstring: {missing} (pybind11: .def(\"name\", ..., \"doc\"))"


def test_the_method_check_sees_methods():
    found = dict(public_methods("isoline.core"))
    assert "isoline.core.Image.cast" in found and "isoline.core.Geometry.same_grid" in found
    assert "isoline.core.Image.array" not in found                     # a property
    assert "isoline.adaptive.DoseAccumulator.add_warped" in dict(public_methods("isoline.adaptive"))
    assert "isoline.batch.Manifest.record" in dict(public_methods("isoline.batch"))


def test_documented_semantics_of_a_few_methods():
    """The points the method docstrings must make (audit 18): cast's rounding and saturation,
    same_grid's tolerance unit, what an accumulator weight means and that `fractions` is the
    sum of the weights."""
    from isoline import adaptive, core
    assert "rounded" in core.Image.cast.__doc__ and "saturated" in core.Image.cast.__doc__
    assert "tolerance_mm (millimetres)" in core.Geometry.same_grid.__doc__
    assert "weight" in adaptive.DoseAccumulator.add.__doc__ and "10 / 35" in adaptive.DoseAccumulator.add.__doc__
    assert "sum of the weights" in adaptive.DoseAccumulator.fractions.__doc__
    # ... and what the cast docstring says is what it does
    import numpy as np
    f = core.Image(np.array([-1.6, -0.5, 0.5, 2.5, 300.0, -5.0], np.float32).reshape(1, 1, 6))
    assert f.cast("int16").array.ravel().tolist() == [-2, -1, 1, 3, 300, -5]
    assert f.cast("uint8").array.ravel().tolist() == [0, 0, 1, 3, 255, 0]


def test_the_check_sees_a_missing_docstring():
    class Bare:
        pass

    def bare():
        pass

    @dataclasses.dataclass
    class Data:
        x: int = 0

    assert not described(Bare) and not described(bare) and not described(Data)
    assert not described(isoline._isoline.contouring._write_review)   # signature only (private)
    assert described(isoline.core.Structure) and described(isoline.core.StructureType)
