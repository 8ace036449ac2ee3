"""isoline.pipeline.run_case (the main job) and the batch job "run" built on it."""
import json

import pytest

import isoline
from isoline import batch, pipeline


def test_run_case_contours_plans_and_exports(hn_case_dir, tmp_path):
    seen = []
    r = pipeline.run_case(str(hn_case_dir / "ct.nii.gz"), str(tmp_path / "out"), max_iterations=15,
                          report=False, progress=lambda s, f, d: seen.append(f), patient_id="MRN0042",
                          patient_name="Doe^Jane")
    for f in ("RS.dcm", "RD.dcm", "plan.json"):
        assert f in r.files and (tmp_path / "out" / f).is_file()
    assert r.quality and r.plan.criteria and r.total_s > 0
    # A NIfTI CT names no patient: the one given is the DICOM outputs' patient.
    assert r.patient_id == "MRN0042"
    pydicom = pytest.importorskip("pydicom")
    for f in ("RS.dcm", "RD.dcm"):
        ds = pydicom.dcmread(str(tmp_path / "out" / f))
        assert (ds.PatientID, str(ds.PatientName)) == ("MRN0042", "Doe^Jane"), f
    for c in r.plan.criteria:  # the sub-voxel verdict beside the voxel-centre one
        assert c.verdict_differs() == (c.evaluated and c.value_subvoxel == c.value_subvoxel
                                       and c.passed_subvoxel != c.passed)
    assert seen and seen[-1] == 1.0
    assert isoline.rtstruct.dicom_modality(str(tmp_path / "out" / "RD.dcm")) == "RTDOSE"
    with pytest.raises(isoline.Error):
        pipeline.run_case(str(hn_case_dir / "ct.nii.gz"), str(tmp_path / "out"), max_iterations=5)  # not empty
    with pytest.raises(OSError):
        pipeline.run_case(str(tmp_path / "missing.nii.gz"), str(tmp_path / "out3"))


def test_batch_main_job(hn_case_dir, tmp_path):
    # planning on the phantom's own masks (structures_path) instead of contouring
    rep = batch.run_batch({"hn3": hn_case_dir}, tmp_path / "out", "run",
                          options={"max_iterations": 10, "report": False,
                                   "structures_path": str(hn_case_dir / "masks")}, n_workers=1)
    assert rep.done == ["hn3"], rep.failed
    rec = batch.read_manifest(tmp_path / "out")["cases"]["hn3"]
    assert "RD.dcm" in rec["result"]["outputs"] and rec["result"]["criteria"]
    assert (tmp_path / "out" / "hn3" / "RD.dcm").is_file()
    assert json.loads((tmp_path / "out" / "hn3" / "plan.json").read_text())["beams"]
