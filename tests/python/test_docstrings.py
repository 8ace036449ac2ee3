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
