"""isoline.phantoms: generated cases with exact ground truth."""
import json

import numpy as np
import pytest

from isoline import core, phantoms


def test_head_neck(small_hn):
    p = small_hn
    assert p.kind == "hn"
    assert p.ct.array.shape == (40, 96, 96) and p.ct.dtype == "int16"
    assert p.labels.dtype == "uint8"
    for n in ["Body", "Brainstem", "SpinalCord", "PTV70", "GTV"]:
        assert n in p.structures
    # voxel volume agrees with the analytic solid within sampling error
    ptv = p.structures["GTV"].volume_cc
    if "GTV" in p.analytic_volume_cc:
        assert ptv == pytest.approx(p.analytic_volume_cc["GTV"], rel=0.25)
    assert p.facts["seed"] == "3"
    assert "oropharynx" in phantoms.head_neck_sites()
    assert phantoms.tissue_name(0) and phantoms.tissue_hu(0) < -900
    ffs = phantoms.make_head_neck(3, size=(48, 48, 20), spacing=(6, 6, 10), position="FFS", noise_sd_hu=0)
    assert ffs.position == phantoms.PatientPosition.FFS
    assert ffs.ct.geometry.orientation != "LPS"


def test_dose_phantom_and_write(tmp_path):
    w = phantoms.make_dose_phantom("lung-slab", size=(30, 30, 30), spacing=(10, 10, 10))
    assert "Lung" in w.structures
    assert w.ct.array.min() < -500
    files = phantoms.write_phantom(w, str(tmp_path / "lung"), dicom=False, preview=True)
    assert any(f.endswith("ct.nii.gz") for f in files) and any(f.endswith("preview.png") for f in files)
    assert json.loads((tmp_path / "lung" / "ground_truth.json").read_text())
    back = core.read_image(str(tmp_path / "lung" / "ct.nii.gz"))
    np.testing.assert_array_equal(back.array, w.ct.array)


def test_phantom_errors():
    with pytest.raises(ValueError):
        phantoms.make_head_neck(1, size=(0, 10, 10))
    with pytest.raises(ValueError):
        phantoms.make_dose_phantom("banana")
    with pytest.raises(ValueError):
        phantoms.make_head_neck(1, size=(20, 20, 10), position="XYZ")
