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


def test_the_structure_set_loaded_is_not_called_skipped(hn_case_dir, tmp_path):
    """load_patient("dicom/") warned "skipped 1 non-image DICOM object (RS.dcm ...)" for the
    RT-STRUCT it loaded (docs audit 19); an object it leaves out is still named."""
    import shutil
    pt = isoline.load_patient(hn_case_dir / "dicom")
    assert "SpinalCord" in pt.structures
    assert not any("non-image DICOM" in w for w in pt.warnings), pt.warnings
    two = tmp_path / "two"
    shutil.copytree(hn_case_dir / "dicom", two)
    shutil.copy(two / "RS.dcm", two / "old_RS.dcm")
    pt = isoline.load_patient(two)
    assert pt.files == [str(two / "RS.dcm")]
    assert "skipped 1 non-image DICOM object (old_RS.dcm: RTStructureSetStorage)" in pt.warnings, pt.warnings


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


def test_structure_set_of_another_scan_is_not_loaded(hn_case_dir, tmp_path):
    """The only RT-STRUCT beside a CT used to be loaded whatever its frame of reference."""
    import shutil
    from isoline import phantoms
    other = phantoms.make_head_neck(11, size=(48, 48, 16), spacing=(5.0, 5.0, 5.0))
    phantoms.write_phantom(other, str(tmp_path / "other"), nifti=False)
    mix = tmp_path / "mix"
    shutil.copytree(hn_case_dir / "dicom", mix)
    shutil.copy(tmp_path / "other" / "dicom" / "RS.dcm", mix / "RS.dcm")
    pt = isoline.load_patient(str(mix))
    assert len(pt.structures) == 0
    assert any("frame of reference differs from the CT's" in w for w in pt.warnings), pt.warnings
    # Its own structure set still loads; a single name is one name, not its letters.
    pt = isoline.load_patient(str(hn_case_dir / "dicom"), structures="PTV70")
    assert pt.structures.names() == ["PTV70"]


def test_mask_names_stay_inside_the_folder(tmp_path):
    g = isoline.core.Geometry(size=(4, 4, 4))
    m = np.zeros((4, 4, 4), np.uint8)
    m[1, 1, 1] = 1
    s = isoline.core.StructureSet(g)
    s.add("../escape", isoline.core.Image(m, g))
    s.add("a/b", isoline.core.Image(m, g))
    isoline.core.write_mask_dir(s, str(tmp_path / "md"))
    assert not (tmp_path / "escape.nii.gz").exists()
    assert sorted(p.name for p in (tmp_path / "md").iterdir()) == ["_.._escape.nii.gz", "a_b.nii.gz"]


def test_a_structures_mask_keeps_the_grid(small_hn):
    s = small_hn.structures.get("PTV70")
    g = core.Geometry(size=(4, 4, 4))
    with pytest.raises(isoline.InvalidInput, match="set mask: PTV70: the new mask is on another grid"):
        s.mask = core.Image(np.zeros((4, 4, 4), np.uint8), g)
    with pytest.raises(isoline.InvalidInput, match="mask must be uint8"):
        s.mask = core.Image(np.zeros(tuple(reversed(s.mask.geometry.size)), np.float32), s.mask.geometry)
