from pathlib import Path

import numpy as np
import pytest

import isoline
from isoline import core, planning

CRITERIA = Path(__file__).resolve().parents[2] / "planning" / "criteria" / "hn.json"


def ramp_case():
    g = core.Geometry(size=(100, 10, 10), spacing=(1, 1, 1))
    x = np.arange(100, dtype=np.float32)
    dose = np.broadcast_to(x, g.shape).copy()
    mask = np.zeros(g.shape, dtype=np.uint8)
    mask[2:8, 2:8, 20:60] = 1
    return core.Image(dose, g), core.Image(mask, g)


def test_dvh_matches_numpy():
    dose, mask = ramp_case()
    dvh = planning.compute_dvh(dose, mask, "box", planning.DvhOptions(supersample=1))
    vals = dose.array[mask.array > 0]
    assert dvh.mean_gy == pytest.approx(vals.mean(), abs=1e-4)
    assert dvh.max_gy == pytest.approx(vals.max())
    assert dvh.volume_cc == pytest.approx(vals.size / 1000)
    assert dvh.metric("V50Gy") == pytest.approx(100 * (vals >= 50).mean())
    x, y = dvh.cumulative(1.0)
    assert y[0] == 1.0 and np.all(np.diff(y) <= 0)


def test_criteria_table():
    dose, mask = ramp_case()
    dvh = planning.compute_dvh(dose, mask, "PTV70")
    results = planning.evaluate_criteria(planning.load_criteria(str(CRITERIA)), {"PTV70": dvh})
    by = {r.criterion.description: r for r in results}
    r = by["PTV70 D99% >= 66.5 Gy"]
    assert r.evaluated and not r.passed and r.value < 30
    assert not by["Brainstem D0.1cc <= 50 Gy"].evaluated


def test_optimizer_from_scipy_style_csr():
    # 60 voxels, 12 beamlets with Gaussian profiles; target voxels 20..40.
    v = np.arange(60)[:, None]
    c = 2.5 + 5 * np.arange(12)[None, :]
    dense = np.exp(-0.5 * (v - c) ** 2 / 4.0).astype(np.float32)
    dense[dense < 1e-4] = 0
    indptr = np.concatenate([[0], np.cumsum((dense > 0).sum(1))])
    indices = np.nonzero(dense)[1].astype(np.int32)
    data = dense[dense > 0]
    A = planning.SparseMatrix(indptr, indices, data, 12)
    assert A.nnz == data.size
    np.testing.assert_allclose(A.dot(np.ones(12)), dense.sum(1), rtol=1e-5)
    seen = []
    res = planning.optimize_fluence(
        A,
        {"PTV": np.arange(20, 40), "OAR": np.arange(46, 60)},
        [planning.Objective("PTV", planning.ObjectiveType.UNIFORM_DOSE, 60.0, weight=100),
         planning.Objective("OAR", planning.ObjectiveType.MAX_DOSE, 5.0, weight=10)],
        normalise_structure="PTV", normalise_dose_gy=60.0, max_iterations=400,
        progress=lambda stage, f, detail: seen.append(f))
    w = res["weights"]
    assert (w >= 0).all()
    d = dense @ w
    assert abs(d[22:38].mean() - 60) < 1.0
    assert d[50:].max() < 8
    assert seen and seen[-1] == 1.0
    if "cuda" in isoline.dose.devices():  # the GPU products give the same plan
        g = planning.optimize_fluence(
            A, {"PTV": np.arange(20, 40), "OAR": np.arange(46, 60)},
            [planning.Objective("PTV", planning.ObjectiveType.UNIFORM_DOSE, 60.0, weight=100),
             planning.Objective("OAR", planning.ObjectiveType.MAX_DOSE, 5.0, weight=10)],
            normalise_structure="PTV", normalise_dose_gy=60.0, max_iterations=400, device="cuda")
        np.testing.assert_allclose(dense @ g["weights"], d, atol=0.01 * d.max())
    else:
        with pytest.raises(isoline.DeviceError):
            planning.optimize_fluence(A, {"PTV": np.arange(20, 40)},
                                      [planning.Objective("PTV", planning.ObjectiveType.UNIFORM_DOSE, 60.0)],
                                      device="cuda")
    assert res["objective"][-1] < res["objective"][0]


def test_progress_callback_can_cancel():
    A = planning.SparseMatrix(np.array([0, 1, 2]), np.array([0, 1], dtype=np.int32), np.array([1, 1], dtype=np.float32), 2)

    def stop(stage, fraction, detail):
        if fraction > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt, match="cancelled: interrupted"):  # an interrupt stays one
        planning.optimize_fluence(A, {"T": np.array([0, 1])},
                                  [planning.Objective("T", planning.ObjectiveType.UNIFORM_DOSE, 1.0)],
                                  max_iterations=50, progress=stop)


def test_bad_matrix_is_value_error():
    with pytest.raises(ValueError):
        planning.SparseMatrix(np.array([0, 5]), np.array([0], dtype=np.int32), np.array([1], dtype=np.float32), 1)


def test_structure_rows_beyond_the_matrix_are_refused_not_read():
    """Voxel indices outside the influence matrix used to crash the process (out-of-bounds read)."""
    A = planning.SparseMatrix(np.array([0, 2, 3]), np.array([0, 1, 1], np.int32), np.array([1, 2, 3], np.float32), 2)
    obj = [planning.Objective("PTV70", planning.ObjectiveType.MIN_DVH, 70.0, volume_percent=95, weight=100)]
    for rows in ([0, 1, 99999999], [0, -1]):
        with pytest.raises(isoline.InvalidInput, match=r"PTV70: voxel \(row\) index -?\d+ out of range"):
            planning.optimize_fluence(A, {"PTV70": np.array(rows)}, obj, max_iterations=5)


def test_dvh_of_a_non_finite_dose_is_refused():
    g = isoline.core.Geometry(size=(4, 4, 4))
    dose = np.full((4, 4, 4), 10, np.float32)
    dose[1, 1, 1] = np.nan
    mask = np.zeros((4, 4, 4), np.uint8)
    mask[1, 1, 1:3] = 1
    with pytest.raises(isoline.InvalidInput, match="non-finite"):
        planning.compute_dvh(isoline.core.Image(dose, g), isoline.core.Image(mask, g), "PTV70")
