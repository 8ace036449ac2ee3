"""isoline.dose: plans, dose calculation, influence matrix -> planning optimiser, DVH."""
import json
import threading

import numpy as np
import pytest

import isoline
from isoline import core, dose, phantoms, planning

PLAN = {"name": "py", "machine": "generic_6mv", "isocenter_mm": [0, 0, 0],
        "beams": [{"name": "AP", "gantry_deg": 0, "jaws_mm": [-40, 40, -40, 40], "mu": 100}]}


@pytest.fixture(scope="module")
def water():
    return phantoms.make_dose_phantom("water", size=(40, 40, 40), spacing=(5, 5, 5))


def test_plan_read_and_edit(tmp_path):
    p = tmp_path / "plan.json"
    p.write_text(json.dumps(PLAN))
    plan = dose.read_plan(str(p))
    assert plan.name == "py" and plan.machine.name == "generic_6mv"
    b = plan.beams[0]
    assert b.gantry_deg == 0 and b.mu == 100 and b.jaw_x2_mm == 40
    b.mu = 50
    plan.beams = [b]
    assert plan.beams[0].mu == 50
    f = dose.FluenceMap()
    f.weight = np.ones((3, 4))
    assert (f.nx, f.ny) == (4, 3)
    with pytest.raises(ValueError):
        dose.parse_plan('{"machine": "generic_6mv", "beams": [{"gantry_deg": 0}]}')
    with pytest.raises(OSError):
        dose.read_plan(str(tmp_path / "missing.json"))
    hu = dose.HuCalibration.generic()
    assert hu.electron(0) == pytest.approx(1.0, abs=0.02)


def test_compute_dose_depth_dose_and_progress(water):
    plan = dose.parse_plan(json.dumps(PLAN))
    seen = []
    d = dose.compute_dose(water.ct, plan, progress=lambda s, f, x: seen.append(f))
    assert d.dtype == "float32" and d.geometry.same_grid(water.ct.geometry)
    axis = d.array[20, :, 20]       # AP beam: enters at -y (anterior), goes to +y
    peak = int(np.argmax(axis))
    assert peak < 5 and np.all(np.diff(axis[peak + 1:]) < 0)   # build-up then attenuation
    assert d.array[20, 20, 0] < 0.1 * axis.max()                # outside the field
    # 100 MU, 8 x 8 cm field: about 1 Gy at d_max (generic machine: 1 cGy/MU at 10 x 10)
    assert 0.8 < axis.max() < 1.3
    assert seen and seen[-1] == 1.0
    plan.beams[0].mu = 200
    d2 = dose.compute_dose(water.ct, plan)
    np.testing.assert_allclose(d2.array, 2 * d.array, rtol=1e-4, atol=1e-6)
    assert "cpu" in dose.devices()
    if "cuda" not in dose.devices():
        with pytest.raises(isoline.DeviceError, match='use device="cpu"') as e:
            dose.compute_dose(water.ct, plan, device="cuda")
        assert "--device" not in str(e.value)   # the CLI's option; Python callers pass device=


def test_dose_dvh_and_influence_optimisation(water):
    plan = dose.parse_plan(json.dumps(PLAN))
    g = water.ct.geometry
    t = np.zeros(g.shape, np.uint8)
    t[17:23, 17:23, 17:23] = 1
    target = core.Image(t, g)
    A = dose.compute_influence(water.ct, target, plan, bixel_mm=10.0)
    assert A.rows == np.prod(g.shape) and A.cols > 0 and A.nnz > 0
    assert len(A.beamlets) == A.cols
    S = A.to_sparse_matrix()
    rows = np.flatnonzero(t.ravel())     # C order of (nz, ny, nx) = linear index i fastest
    res = planning.optimize_fluence(S, {"PTV": rows},
                                    [planning.Objective("PTV", planning.ObjectiveType.UNIFORM_DOSE, 2.0, weight=1)],
                                    normalise_structure="PTV", normalise_dose_gy=2.0, max_iterations=100)
    dose_vec = A.dot(res["weights"]).reshape(g.shape)
    dvh = planning.compute_dvh(core.Image(dose_vec.astype(np.float32), g), target, "PTV")
    assert dvh.mean_gy == pytest.approx(2.0, rel=0.05)
    assert dvh.metric("D95%") > 1.6


def test_dose_releases_gil(water):
    plan = dose.parse_plan(json.dumps(PLAN))
    counter = [0]
    done = threading.Event()

    def work():
        dose.compute_dose(water.ct, plan)
        done.set()

    th = threading.Thread(target=work)
    th.start()
    while not done.is_set():
        counter[0] += 1
    th.join()
    assert counter[0] > 1000   # the main thread ran Python code while the dose was computed


def test_ctrl_c_cancels_without_progress_callback(tmp_path):
    """Ctrl-C stops a long call also without progress=: the extension checks for signals while
    it works with the GIL released. compute_influence of 144 beams (about 50 s on a 2-core
    machine, 0.2-0.4 s a beam) is interrupted 1 s in; it must raise KeyboardInterrupt (not an
    Exception: a per-case `except Exception` loop must stop) from inside the call, with
    Isoline's message (after finishing the call it would be Python's own, later)."""
    import signal
    import subprocess
    import sys
    import time
    script = tmp_path / "long_call.py"
    script.write_text(f"""
import json, sys, time
import numpy as np
import isoline
from isoline import core, dose, phantoms
w = phantoms.make_dose_phantom("water", size=(48, 48, 48), spacing=(5, 5, 5))
t = np.zeros(w.ct.geometry.shape, np.uint8)
t[20:28, 20:28, 20:28] = 1
plan = dose.parse_plan(json.dumps({{**{PLAN!r}, "beams": [
    {{"name": f"B{{i}}", "gantry_deg": 2.5 * i, "jaws_mm": [-20, 20, -20, 20], "mu": 100}} for i in range(144)]}}))
print("start", flush=True)
t0 = time.monotonic()
try:
    dose.compute_influence(w.ct, core.Image(t, w.ct.geometry), plan, bixel_mm=5.0)
except Exception as e:
    print(f"caught by except Exception: {{e!r}}", flush=True)
    sys.exit(4)
except KeyboardInterrupt as e:
    print(f"cancelled after {{time.monotonic() - t0:.1f}} s: {{e}}", flush=True)
    sys.exit(0)
print("finished", flush=True)
sys.exit(3)
""")
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "start", p.stderr.read()[-2000:]
        time.sleep(1.0)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0 and "cancelled after" in out, (p.returncode, out, err[-2000:])
    assert "interrupted (Ctrl-C)" in out
