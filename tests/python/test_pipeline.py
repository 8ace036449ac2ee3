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


@pytest.fixture(scope="module")
def lung_slab_dir(tmp_path_factory):
    """A water-lung-water slab (48 x 48 x 32 voxels), not head and neck: the auto-contoured
    targets come out empty, after the contouring warned that the anatomy is outside its scope."""
    from isoline import core, phantoms
    d = tmp_path_factory.mktemp("slab")
    core.write_image(phantoms.make_dose_phantom("lung-slab", size=(48, 48, 32)).ct, str(d / "ct.nii.gz"))
    return d


def test_a_failed_run_case_carries_the_warnings_gathered_before_it(lung_slab_dir, tmp_path):
    """The error of a run whose auto-contoured targets came out empty has the contouring's
    warning that explains it as `e.warnings` (as RunResult.warnings would have had it)."""
    with pytest.raises(isoline.InvalidInput) as e:
        pipeline.run_case(str(lung_slab_dir / "ct.nii.gz"), str(tmp_path / "out"), max_iterations=30)
    assert "came out empty" in str(e.value)
    assert any(w.startswith("contouring: anatomy outside the model's scope? ") for w in e.value.warnings), \
        e.value.warnings
    assert not (tmp_path / "out").exists()


def test_a_failed_batch_case_records_the_warnings_gathered_before_it(lung_slab_dir, tmp_path):
    """The batch job "run" on that CT: the failed case's record, summary.csv and progress line
    carry those warnings (before: the error alone)."""
    import csv
    lines = []
    rep = batch.run_batch({"slab": lung_slab_dir}, tmp_path / "out", "run",
                          options={"max_iterations": 30, "report": False}, n_workers=1,
                          progress=lambda k, n, cid, rec: lines.append(rec))
    assert list(rep.failed) == ["slab"] and not rep.done
    rec = batch.read_manifest(tmp_path / "out")["cases"]["slab"]
    assert rec["status"] == "failed" and "came out empty" in rec["error"]
    assert any(w.startswith("contouring: anatomy outside the model's scope? ") for w in rec["warnings"]), rec
    with open(tmp_path / "out" / batch.SUMMARY_NAME, newline="") as f:
        row = next(csv.DictReader(f))
    assert row["status"] == "failed" and "contouring: anatomy outside the model's scope? " in row["warnings"]
    assert lines[-1]["warnings"] == rec["warnings"]
