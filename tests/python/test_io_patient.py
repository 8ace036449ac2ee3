"""Image I/O (NIfTI, NRRD) and isoline.load_patient on NIfTI, DICOM and OpenKBP layouts."""
import numpy as np
import pytest

import isoline
from isoline import core


@pytest.mark.parametrize("ext", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_image_formats_roundtrip(tmp_path, ext, small_hn):
    path = str(tmp_path / ("ct" + ext))
    core.write_image(small_hn.ct, path)
    back = core.read_image(path)
    assert back.dtype == "int16"
    assert back.geometry.same_grid(small_hn.ct.geometry, 1e-4)
    np.testing.assert_array_equal(back.array, small_hn.ct.array)
    f = core.read_image(path, dtype="float32")
    assert f.dtype == "float32" and f.array.max() == small_hn.ct.array.max()


def test_load_patient_from_phantom_dir(hn_case_dir, small_hn):
    pt = isoline.load_patient(hn_case_dir)
    assert pt.series is None and pt.ct.dtype == "int16"
    assert set(pt.structures.names()) == set(small_hn.structures.names())
    np.testing.assert_array_equal(pt.structures["PTV70"].mask.array, small_hn.structures["PTV70"].mask.array)
    sub = isoline.load_patient(hn_case_dir / "ct.nii.gz", structures=["Brainstem", "Nothing"])
    assert sub.structures.names() == ["Brainstem"]


def test_load_patient_from_dicom(hn_case_dir, small_hn):
    pt = isoline.load_patient(hn_case_dir / "dicom")
    assert pt.series is not None and pt.series.series_instance_uid
    np.testing.assert_array_equal(pt.ct.array, small_hn.ct.array)
    assert "SpinalCord" in pt.structures
    np.testing.assert_array_equal(pt.structures["SpinalCord"].mask.array,
                                  small_hn.structures["SpinalCord"].mask.array)
    assert any(f.endswith(".dcm") for f in pt.files)


def test_load_patient_errors(tmp_path, hn_case_dir):
    # isoline's own exceptions (isoline.Error), still OSError / ValueError, "operation: input: problem"
    with pytest.raises(isoline.IoError, match="^load patient: .*nothing: does not exist$"):
        isoline.load_patient(tmp_path / "nothing")
    with pytest.raises(isoline.IoError, match="^load patient: .*: mask directory does not exist$"):
        isoline.load_patient(hn_case_dir / "ct.nii.gz", masks=tmp_path / "no_masks")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(isoline.InvalidInput, match="^load patient: .*notes.txt: "):
        isoline.load_patient(tmp_path / "notes.txt")
    assert issubclass(isoline.IoError, isoline.Error) and issubclass(isoline.IoError, OSError)
    assert issubclass(isoline.InvalidInput, isoline.Error) and issubclass(isoline.InvalidInput, ValueError)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(isoline.Error):
        isoline.load_patient(empty)
