"""The type stubs (.pyi) ship with the package and cannot silently go stale: every public name
of the compiled extension, every class member and every function's parameters appear in them."""
import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

import isoline

PKG = Path(isoline.__file__).resolve().parent
MODULES = ["core", "planning", "adaptive", "rtstruct", "contouring", "dose", "phantoms", "pipeline"]


def stub_tree(mod):
    path = PKG / f"{mod}.pyi"
    assert path.is_file(), f"missing stub {path}"
    return ast.parse(path.read_text())


def stub_index(tree):
    """{name: node} of top-level defs/classes/assignments; classes -> {member: [nodes]}."""
    top, classes = {}, {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            top.setdefault(node.name, []).append(node)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):  # a constant
            top.setdefault(node.target.id, []).append(node)
        if isinstance(node, ast.ClassDef):
            members = {}
            for b in node.body:
                if isinstance(b, ast.FunctionDef):
                    members.setdefault(b.name, []).append(b)
                elif isinstance(b, ast.AnnAssign) and isinstance(b.target, ast.Name):
                    members.setdefault(b.target.id, []).append(b)
            classes[node.name] = members
    return top, classes


def pybind_param_names(doc):
    """Parameter names of every signature line pybind11 wrote into a docstring."""
    sigs = []
    for line in doc.strip().split("\n"):
        m = re.match(r"^(?:\d+\.\s+)?\w+\((.*)\)\s*->", line.strip())
        if m:
            names, depth, cur = [], 0, ""
            for ch in m.group(1) + ",":
                depth += ch in "[(" 
                depth -= ch in "])"
                if ch == "," and depth == 0:
                    tok = cur.strip()
                    cur = ""
                    if tok and tok != "*":
                        names.append(tok.split(":")[0].strip())
                else:
                    cur += ch
            sigs.append(names)
    return sigs


def stub_param_names(fn):
    a = fn.args
    return [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]


def test_py_typed_and_stub_files_are_shipped():
    assert (PKG / "py.typed").is_file()
    assert (PKG / "__init__.pyi").is_file()
    for m in MODULES:
        assert (PKG / f"{m}.pyi").is_file()


@pytest.mark.parametrize("mod", MODULES)
def test_stub_lists_every_public_name(mod):
    native = importlib.import_module(f"isoline._isoline.{mod}")
    pkg = importlib.import_module(f"isoline.{mod}")
    top, classes = stub_index(stub_tree(mod))
    public = [n for n in dir(native) if not n.startswith("_")]
    missing = [n for n in public if n not in top]
    assert not missing, f"isoline/{mod}.pyi lacks {missing} (run bindings/tools/gen_stubs.py)"
    not_exported = [n for n in public if n not in pkg.__all__]
    assert not not_exported, f"isoline.{mod} does not re-export {not_exported}"
    extra = [n for n in pkg.__all__ if n not in top]
    assert not extra, f"isoline/{mod}.pyi lacks {extra} of isoline.{mod}.__all__"
    for name in public:
        obj = getattr(native, name)
        if inspect.isclass(obj):
            members = [m for m in obj.__dict__ if not m.startswith("_") or m in ("__init__", "__call__", "__len__",
                                                                                "__getitem__", "__contains__",
                                                                                "__iter__")]
            if "__init__(" not in (getattr(obj.__dict__.get("__init__"), "__doc__", None) or ""):
                members = [m for m in members if m != "__init__"]  # no constructor bound
            if "__members__" in obj.__dict__:  # enum values
                members = list(obj.__members__)
            lacking = [m for m in members if m not in classes[name]]
            assert not lacking, f"isoline/{mod}.pyi: class {name} lacks {lacking}"
        elif callable(obj):
            want = pybind_param_names(obj.__doc__ or "")
            have = [stub_param_names(f) for f in top[name]]
            for w in want:
                assert w in have, f"isoline/{mod}.pyi: {name}{tuple(w)} not in stub {have}"


@pytest.mark.parametrize("mod", MODULES)
def test_signatures_name_python_types(mod):
    """A C++ type name (isoline::dose::Plan) in a signature means a type was used before it
    was bound (or never bound): the stub and help() would show an unusable type."""
    native = importlib.import_module(f"isoline._isoline.{mod}")
    bad = []
    for name in dir(native):
        obj = getattr(native, name)
        docs = [(name, obj.__doc__ or "")]
        if inspect.isclass(obj):
            for m, v in obj.__dict__.items():
                d = v.fget.__doc__ if isinstance(v, property) and v.fget else getattr(v, "__doc__", "")
                docs.append((f"{name}.{m}", d or ""))
        for where, d in docs:
            for line in d.split("\n"):
                if "->" in line and "::" in line:
                    bad.append(f"{where}: {line.strip()[:160]}")
    assert not bad, "\n".join(bad)


def test_init_stub_matches_package():
    top = {n.targets[0].id if isinstance(n, ast.Assign) else None for n in stub_tree("__init__").body}
    tree = stub_tree("__init__")
    names = set()
    for n in tree.body:
        if isinstance(n, ast.ClassDef):
            names.add(n.name)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            names.update(a.asname or a.name for a in n.names)
        elif isinstance(n, ast.AnnAssign):
            names.add(n.target.id)
    assert set(isoline.__all__) <= names, set(isoline.__all__) - names
    del top
