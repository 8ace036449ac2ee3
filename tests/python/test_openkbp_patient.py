"""isoline.load_patient on the OpenKBP layout (ct.nii.gz, masks and dose.nii.gz side by side)."""
import isoline


def test_load_patient_openkbp(shared_data):
    pt = isoline.load_patient(shared_data / "openkbp/train/pt_1")
    assert pt.ct.geometry.size == (128, 128, 128)
    assert "PTV70" in pt.structures and "possible_dose_mask" not in pt.structures
    assert pt.dose is not None and pt.dose.dtype == "float32"
