"""pip install ./bindings into a --system-site-packages venv, offline, reusing the built extension."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pip_install_into_venv(tmp_path):
    build = os.environ.get("ISOLINE_BUILD_DIR")
    assert build, "ISOLINE_BUILD_DIR not set (CTest sets it)"
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["ISOLINE_BUILD_DIR"] = build
    r = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-build-isolation", "--no-index", "-q",
                        str(ROOT / "bindings")], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    code = ("import isoline, pathlib, numpy as np\n"
            "from isoline import core\n"
            "p = pathlib.Path(isoline.__file__).parent\n"
            "assert (p / 'py.typed').is_file() and (p / 'core.pyi').is_file()\n"
            "a = np.zeros((2, 3, 4), np.uint8); assert np.shares_memory(core.Image(a).array, a)\n"
            "print(isoline.__file__, isoline.__version__)\n")
    r = subprocess.run([str(venv / "bin" / "python"), "-c", code], env=env, capture_output=True, text=True,
                       cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert str(venv) in r.stdout
    r = subprocess.run([str(venv / "bin" / "pip"), "show", "isoline"], env=env, capture_output=True, text=True)
    assert "Version:" in r.stdout
    # nothing left in the source tree by the build (build/, *.egg-info)
    assert not (ROOT / "bindings" / "build").exists()
    assert not list((ROOT / "bindings").glob("*.egg-info"))
