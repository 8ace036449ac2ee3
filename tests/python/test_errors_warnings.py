"""Errors and warnings as docs/python.md promises them: one-line messages in the
"operation: input: problem" style naming the Python argument, the exception a progress
callback raised kept as the Cancelled's __cause__, names load_patient did not find and DVH
voxels outside the dose grid reported."""
import gzip
import warnings

import numpy as np
import pytest

import isoline
from isoline import contouring, core, dose, phantoms, planning


class Timeout(Exception):
    def __init__(self, seconds):
        super().__init__(f"gave up after {seconds} s\nsecond line")
        self.seconds = seconds


def raising(exc):
    def progress(stage, fraction, detail):
        raise exc
    return progress


def test_cancelled_is_one_line_and_chains_the_callbacks_exception():
    with pytest.raises(isoline.Cancelled) as info:
        phantoms.make_head_neck(3, size=(48, 48, 16), spacing=(6.0, 6.0, 10.0), progress=raising(Timeout(5)))
    e = info.value
    assert "\n" not in str(e) and "At:" not in str(e)
    assert str(e) == "cancelled: progress callback raised: Timeout: gave up after 5 s second line"
    assert isinstance(e.__cause__, Timeout) and e.__cause__.seconds == 5   # the object itself
    assert e.__cause__.__traceback__ is not None                           # where it was raised
    # so that `except Timeout` can be written around the call:
    try:
        try:
            phantoms.make_head_neck(3, size=(48, 48, 16), spacing=(6.0, 6.0, 10.0), progress=raising(Timeout(7)))
        except isoline.Cancelled as c:
            raise c.__cause__
    except Timeout as t:
        assert t.seconds == 7


def test_cancelled_from_a_callback_in_a_dose_calculation_chains_too(small_hn):
    import json
    plan = dose.parse_plan(json.dumps({"machine": "generic_6mv", "beams": [
        {"gantry_deg": a, "isocenter_mm": list(small_hn.ct.geometry.index_to_world((48, 48, 20))),
         "jaws_mm": [-30, 30, -30, 30], "mu": 100} for a in (0, 120, 240)]}))
    with pytest.raises(isoline.Cancelled) as info:
        dose.compute_dose(small_hn.ct, plan, progress=raising(ZeroDivisionError("division by zero")))
    assert str(info.value) == "cancelled: progress callback raised: ZeroDivisionError: division by zero"
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    # a KeyboardInterrupt stays one
    with pytest.raises(KeyboardInterrupt):
        dose.compute_dose(small_hn.ct, plan, progress=raising(KeyboardInterrupt()))


def test_float_geometry_size_is_invalid_input_naming_the_argument():
    with pytest.raises(isoline.InvalidInput, match=r"^set geometry: size: expected 3 integers, got \(4\.5, 5, 6\)$"):
        core.Geometry(size=(4.5, 5, 6))
    with pytest.raises(ValueError, match="spacing: expected 3 numbers"):
        core.Geometry(size=(4, 5, 6), spacing=(1, "x", 1))
    assert core.Geometry(size=(np.int64(4), 5, 6)).size == (4, 5, 6)   # numpy integers are integers


def test_device_messages_name_the_python_argument(small_hn):
    if core.built_with_cuda() and core.cuda_device_count() > 0:
        pytest.skip("this machine has a GPU")
    with pytest.raises(isoline.DeviceError) as info:
        contouring.contour(small_hn.ct, structures=["Body"], device="cuda")
    msg = str(info.value)
    assert "--device" not in msg and 'device="cuda"' in msg and 'use device="cpu"' in msg, msg


def test_an_empty_image_file_says_so(tmp_path):
    for name in ("ct.nii.gz", "ct.nrrd", "ct.mha"):
        (tmp_path / name).write_bytes(b"")
        with pytest.raises(isoline.IoError) as info:
            core.read_image(str(tmp_path / name))
        assert str(info.value) == f"read image: {tmp_path / name}: file is empty (0 bytes)"
    # a gzip of nothing is not empty on disk: still a format problem
    (tmp_path / "z.nii.gz").write_bytes(gzip.compress(b""))
    with pytest.raises(isoline.IoError, match="z.nii.gz: (?!file is empty)"):
        core.read_image(str(tmp_path / "z.nii.gz"))


def test_load_patient_names_the_requested_structures_it_did_not_find(hn_case_dir):
    pt = isoline.load_patient(hn_case_dir, structures=["Brainstem ", "brainstem", "SpinalCord", "Liver"])
    assert pt.structures.names() == ["SpinalCord"]
    found = "\n".join(pt.warnings)
    assert len(pt.warnings) == 3, pt.warnings
    assert "structure 'Brainstem ': requested but not found in" in found and "(did you mean 'Brainstem'?)" in found
    assert "structure 'brainstem': requested but not found" in found
    assert "structure 'Liver': requested but not found" in found
    # the same from the DICOM folder (RT-STRUCT ROI names)
    pt = isoline.load_patient(hn_case_dir / "dicom", structures=["SpinalCord", "Spinal Cord"])
    assert pt.structures.names() == ["SpinalCord"]
    about = [w for w in pt.warnings if w.startswith("structure ")]
    assert len(about) == 1 and "'Spinal Cord': requested but not found in" in about[0] \
        and "RS.dcm" in about[0] and "did you mean 'SpinalCord'" in about[0], pt.warnings
    # all found: no warning; no list: no warning
    assert isoline.load_patient(hn_case_dir, structures=["SpinalCord"]).warnings == []
    assert isoline.load_patient(hn_case_dir).warnings == []


def test_compute_dvh_warns_when_the_mask_reaches_outside_the_dose_grid():
    g = core.Geometry(size=(20, 20, 10), spacing=(2, 2, 3))                      # 40 x 40 x 30 mm
    half_out = core.Geometry(size=(30, 20, 10), spacing=(2, 2, 3), origin=(20, 0, 0))
    d = core.Image(np.full(g.shape, 60.0, np.float32), g)
    m = core.Image(np.ones(half_out.shape, np.uint8), half_out)
    with pytest.warns(UserWarning, match=r"compute DVH: OAR: 66\.7 % of the mask's voxels lie outside the dose grid"):
        h = planning.compute_dvh(d, m, "OAR")
    assert h.mean_gy == pytest.approx(20.0)                                     # counted as 0 Gy there
    assert planning.fraction_outside(g, m) == pytest.approx(2 / 3)
    inside = core.Image(np.ones(g.shape, np.uint8), g)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert planning.compute_dvh(d, inside, "in").mean_gy == pytest.approx(60.0)
    assert planning.fraction_outside(g, inside) == 0.0
