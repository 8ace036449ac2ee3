"""pip install ./bindings — the isoline Python package with its compiled extension.

The extension (isoline/_isoline*.so) is the one CMake builds; this script does not compile
C++ itself. It takes, in order:
  1. $ISOLINE_BUILD_DIR/python/isoline/_isoline*.so (a configured and built CMake tree),
  2. <repo>/build/python/isoline/_isoline*.so (what `make build` produces),
  3. otherwise it configures and builds the `_isoline` target with CMake in a temporary
     directory (needs the Debian -dev packages of scripts/deps.sh; takes a while).
The pure-Python modules, the type stubs (.pyi) and py.typed come from bindings/isoline/.

Offline install into a virtual environment that sees Debian's numpy/torch/dask:
    /usr/bin/python3 -m venv --system-site-packages venv
    venv/bin/pip install --no-build-isolation --no-index ./bindings
"""
import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCRATCH = Path(tempfile.mkdtemp(prefix="isoline-pip-"))  # keeps build/ and egg-info out of the tree
atexit.register(shutil.rmtree, SCRATCH, True)


def version() -> str:
    m = re.search(r"project\(Isoline VERSION ([0-9.]+)", (ROOT / "CMakeLists.txt").read_text())
    return m.group(1) if m else "0.0.0"


def find_extension() -> Path:
    candidates = []
    if os.environ.get("ISOLINE_BUILD_DIR"):
        candidates.append(Path(os.environ["ISOLINE_BUILD_DIR"]) / "python" / "isoline")
    candidates.append(ROOT / "build" / "python" / "isoline")
    for d in candidates:
        found = sorted(d.glob("_isoline*.so"))
        if found:
            return found[0]
    build = SCRATCH / "cmake"
    print(f"isoline: no built extension in {', '.join(map(str, candidates))}; building with CMake in {build}",
          file=sys.stderr)
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    subprocess.check_call(["cmake", "-S", str(ROOT), "-B", str(build), *gen, "-DCMAKE_BUILD_TYPE=Release",
                           f"-DPython_EXECUTABLE={sys.executable}", "-DISOLINE_BUILD_TESTS=OFF"])
    subprocess.check_call(["cmake", "--build", str(build), "--target", "_isoline", "-j", str(os.cpu_count() or 2)])
    return sorted((build / "python" / "isoline").glob("_isoline*.so"))[0]


class BuildPyWithExtension(build_py):
    def run(self):
        super().run()
        ext = find_extension()
        dest = Path(self.build_lib) / "isoline" / ext.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ext, dest)
        print(f"isoline: packaged {ext}", file=sys.stderr)


class BinaryDistribution(Distribution):
    def has_ext_modules(self):  # platform wheel (cp311-linux), not "py3-none-any"
        return True


setup(
    name="isoline",
    version=version(),
    description="Auto-contouring, achievable dose and DICOM RT for radiotherapy planning (Python API)",
    packages=["isoline"],
    package_dir={"isoline": "isoline"},
    package_data={"isoline": ["*.pyi", "py.typed"]},
    python_requires=">=3.9",
    install_requires=["numpy"],
    extras_require={"batch": ["distributed"]},
    cmdclass={"build_py": BuildPyWithExtension},
    distclass=BinaryDistribution,
    options={"build": {"build_base": str(SCRATCH / "build")}, "egg_info": {"egg_base": str(SCRATCH)}},
    zip_safe=False,
)
