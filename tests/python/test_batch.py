"""isoline.batch: contouring over generated phantoms on a local Dask cluster; a worker killed
mid-way; a failing case; the re-run does only what is missing."""
import json
import os
import signal
from pathlib import Path

import pytest

import isoline
from isoline import batch, phantoms

N_GOOD = int(os.environ.get("ISOLINE_BATCH_TEST_CASES", "5"))  # the figure: 20 (see docs/python.md)


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch_cases")
    for s in range(N_GOOD):
        p = phantoms.make_head_neck(10 + s, size=(96, 96, 40), spacing=(3.0, 3.0, 5.0))
        # case 0 as DICOM only (-> RS.dcm), the others as NIfTI (-> masks/)
        phantoms.write_phantom(p, str(root / f"hn{s}"), nifti=(s != 0), dicom=(s == 0))
    (root / "broken").mkdir()
    (root / "broken" / "ct.nii.gz").write_bytes(b"not an image")
    return root


def test_batch_kill_worker_then_resume(cases, tmp_path):
    out = tmp_path / "out"
    opts = {"structures": ["SpinalCord", "Mandible", "Body"], "preview": True}
    cluster = batch.local_cluster(n_workers=2, allowed_failures=0)
    from dask.distributed import Client
    client = Client(cluster)
    killed = []

    def kill_one(case_id, rec):
        if killed or rec["status"] != "done":
            return
        pids = client.run(os.getpid)
        busy = [w for w, keys in client.processing().items() if keys]
        victim = busy[0] if busy else next(iter(pids))
        os.kill(pids[victim], signal.SIGKILL)
        killed.append(victim)

    try:
        r1 = batch.run_batch(cases, out, "contour", options=opts, client=client, on_result=kill_one)
    finally:
        client.close()
        cluster.close()
    assert killed, "no worker was killed"
    assert set(r1.done) | set(r1.failed) == {f"hn{s}" for s in range(N_GOOD)} | {"broken"}
    assert "IoError" in r1.failed["broken"] and "broken/ct.nii.gz" in r1.failed["broken"]
    lost = [c for c, e in r1.failed.items() if c != "broken"]
    assert lost, f"killing a busy worker lost no case: {r1}"
    assert all("KilledWorker" in r1.failed[c] for c in lost)
    m = batch.read_manifest(out)
    assert {c for c, r in m["cases"].items() if r["status"] == "done"} == set(r1.done)

    # re-run on a fresh default local cluster: only the failed/missing cases run
    r2 = batch.run_batch(cases, out, "contour", options=opts, n_workers=2)
    assert sorted(r2.ran) == sorted(r1.failed)
    assert sorted(r2.skipped) == sorted(r1.done)
    assert sorted(r2.done) == sorted(lost)
    print(f"\nrun 1: {len(r1.done)} done, {len(r1.failed)} failed ({sorted(r1.failed)}), killed {killed}; "
          f"run 2: ran {sorted(r2.ran)}, skipped {len(r2.skipped)}, done {len(r2.done)}")
    assert list(r2.failed) == ["broken"]

    m = batch.read_manifest(out)
    for s in range(N_GOOD):
        rec = m["cases"][f"hn{s}"]
        assert rec["status"] == "done"
        assert rec["model_loads_in_worker"] == 1       # one model per worker process
        d = out / f"hn{s}"
        assert (d / "quality.json").is_file()
        q = json.loads((d / "quality.json").read_text())
        assert set(q["structures"]) == {"SpinalCord", "Mandible", "Body"}
        assert (d / "preview.png").read_bytes()[:4] == b"\x89PNG"
        if s == 0:
            assert (d / "RS.dcm").is_file()
        else:
            assert (d / "masks" / "SpinalCord.nii.gz").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]   # no temporary leftovers, no lock file

    # a third run has nothing left but the broken case
    r3 = batch.run_batch(cases, out, "contour", options=opts, n_workers=1)
    assert r3.ran == ["broken"] and len(r3.skipped) == N_GOOD


def test_manifest_rejects_other_job(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"job": "plan", "cases": {}}))
    with pytest.raises(isoline.InvalidInput, match="^batch: .*manifest.json: manifest is for job 'plan'"):
        batch.Manifest(tmp_path / "manifest.json", "contour", {})
    with pytest.raises(isoline.InvalidInput, match="^batch: nonexistent-job: unknown job"):
        batch.run_batch({}, tmp_path, "nonexistent-job")
    # on a worker, an unknown job becomes a failed record naming isoline's exception
    rec = batch._run_case("nonexistent-job", "c1", str(tmp_path / "c1"), str(tmp_path), {})
    assert rec["status"] == "failed"
    assert rec["error"].startswith("InvalidInput: batch: nonexistent-job: unknown job")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".c1.")]


def test_discover_cases(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b.nii.gz").write_bytes(b"")
    (tmp_path / ".hidden").mkdir()
    assert batch.discover_cases(tmp_path) == {"a": str(tmp_path / "a"), "b": str(tmp_path / "b.nii.gz")}
    assert batch.discover_cases({"x": tmp_path / "a"}) == {"x": str(tmp_path / "a")}
    with pytest.raises(isoline.IoError, match="^batch: .*nothing: not a directory of cases$"):
        batch.discover_cases(tmp_path / "nothing")
    with pytest.raises(isoline.InvalidInput, match="^batch: .*: duplicate case id 'b'$"):
        batch.discover_cases([tmp_path / "b.nii.gz", tmp_path / "a" / "b.nii.gz"])
    with pytest.raises(isoline.IoError, match="^load case: .*nothing: does not exist$"):
        batch.load_ct(tmp_path / "nothing")


def test_command_line(tmp_path):
    """python3 -m isoline.batch: the worker plugin and jobs pickle by reference (not __main__)."""
    import subprocess
    import sys
    (tmp_path / "cases" / "broken").mkdir(parents=True)
    (tmp_path / "cases" / "broken" / "ct.nii.gz").write_bytes(b"junk")
    r = subprocess.run([sys.executable, "-m", "isoline.batch", str(tmp_path / "cases"), str(tmp_path / "out"),
                        "--workers", "1", "--preview", "--review"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr[-2000:]
    assert "[1/1] broken: failed " in r.stdout and "s (IoError: read image: " in r.stdout
    m = batch.read_manifest(tmp_path / "out")
    assert m["cases"]["broken"]["status"] == "failed"
    assert m["options"].get("preview") is True and m["options"].get("review") is True
    # A re-run asking for other options is refused in one line, not a traceback.
    r = subprocess.run([sys.executable, "-m", "isoline.batch", str(tmp_path / "cases"), str(tmp_path / "out"),
                        "--workers", "1"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    assert r.stderr.startswith("python3 -m isoline.batch: error: ") and "Traceback" not in r.stderr, r.stderr


def test_output_folder_holding_the_cases_is_refused_before_anything_is_written(tmp_path):
    """run_batch(cases, cases) used to replace every case folder by its output."""
    p = phantoms.make_head_neck(3, size=(48, 48, 16), spacing=(5.0, 5.0, 5.0))
    phantoms.write_phantom(p, str(tmp_path / "caseA"), dicom=False)
    before = sorted(x.name for x in (tmp_path / "caseA").iterdir())
    with pytest.raises(isoline.InvalidInput, match="would replace its input"):
        batch.run_batch(str(tmp_path), str(tmp_path), "contour", options={"structures": ["Body"]}, n_workers=1)
    assert sorted(x.name for x in (tmp_path / "caseA").iterdir()) == before
    assert not (tmp_path / batch.MANIFEST_NAME).exists()


def test_misspelt_option_is_refused(tmp_path):
    with pytest.raises(isoline.InvalidInput, match=r"options: structure: unknown to job 'contour'"):
        batch.run_batch(str(tmp_path), str(tmp_path / "out"), "contour", options={"structure": ["Body"]})
    assert not (tmp_path / "out").exists()


def test_rerun_with_other_options_is_refused_and_one_run_per_folder(cases, tmp_path):
    """A re-run asking for other options must not skip the cases made with the old ones (and
    record the new options for them); a second run_batch on the same folder is refused while
    the first one holds it; outputs follow the umask, not mkdtemp's owner-only mode."""
    out = tmp_path / "out"
    old = os.umask(0o022)
    try:
        rep = batch.run_batch({"hn1": cases / "hn1"}, out, "contour", options={"structures": ["Body"]}, n_workers=1)
    finally:
        os.umask(old)
    assert rep.done == ["hn1"]
    assert (out / "hn1").stat().st_mode & 0o755 == 0o755
    assert (out / "manifest.json").stat().st_mode & 0o644 == 0o644
    with pytest.raises(isoline.InvalidInput, match="made with options"):
        batch.run_batch({"hn1": cases / "hn1"}, out, "contour", options={"structures": ["Mandible"]}, n_workers=1)
    held = batch._OutputLock(out)
    try:
        with pytest.raises(isoline.InvalidInput, match="another run_batch is writing there"):
            batch.run_batch({"hn1": cases / "hn1"}, out, "contour", options={"structures": ["Body"]}, n_workers=1)
    finally:
        held.release()
    rep = batch.run_batch({"hn1": cases / "hn1"}, out, "contour", options={"structures": ["Body"]}, n_workers=1)
    assert rep.skipped == ["hn1"]


def test_the_output_lock_file_is_gone_after_release_and_never_held_twice(tmp_path, monkeypatch):
    import fcntl
    lock_file = tmp_path / ".batch.lock"
    a = batch._OutputLock(tmp_path)
    assert lock_file.is_file()
    with pytest.raises(isoline.InvalidInput, match="another run_batch is writing there"):
        batch._OutputLock(tmp_path)
    a.release()
    assert not lock_file.exists()          # a finished run leaves no .batch.lock behind
    a.release()                            # twice is harmless

    # The race deleting the file opens: B opens the lock file, A releases (deletes, unlocks)
    # before B locks it. B must not keep a lock on the deleted file (a third run would create
    # and lock a new one: two runs at once); it locks the file that is in the folder.
    a = batch._OutputLock(tmp_path)
    real_flock, done = fcntl.flock, []

    def flock(fd, op):
        if op & fcntl.LOCK_EX and not done:
            done.append(fd)
            a.release()                    # A finishes between B's open and B's flock
        return real_flock(fd, op)
    monkeypatch.setattr(batch.fcntl, "flock", flock)
    b = batch._OutputLock(tmp_path)
    monkeypatch.setattr(batch.fcntl, "flock", real_flock)
    assert done and os.fstat(b.fd).st_ino == lock_file.stat().st_ino
    with pytest.raises(isoline.InvalidInput, match="another run_batch is writing there"):
        batch._OutputLock(tmp_path)
    b.release()
    assert not lock_file.exists()


def test_a_case_without_a_ct_says_what_was_looked_for(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "notes.txt").write_text("no CT here")
    with pytest.raises(isoline.InvalidInput, match="neither ct.nii.gz .* nor a DICOM CT series"):
        batch.load_ct(tmp_path / "c")


def _isoline_bin():
    """The isoline executable of the build whose package is imported (CTest sets ISOLINE_BIN)."""
    exe = os.environ.get("ISOLINE_BIN") or str(Path(isoline.__file__).resolve().parents[2] / "bin" / "isoline")
    if not os.access(exe, os.X_OK):
        pytest.fail(f"isoline executable not found: {exe} (set ISOLINE_BIN)")
    return exe


def test_batch_rtstruct_is_the_one_isoline_contour_writes(cases, tmp_path):
    """The batch contour job's RS.dcm was written with plain write_rtstruct: no ApprovalStatus,
    no model version or warnings in StructureSetDescription. It is now the RT-STRUCT of
    `isoline contour` (pipeline::auto_contour_options) for the same CT."""
    import subprocess
    pydicom = pytest.importorskip("pydicom")
    structures = ["SpinalCord", "Mandible", "Body"]
    rep = batch.run_batch({"hn0": cases / "hn0"}, tmp_path / "out", "contour",
                          options={"structures": structures}, n_workers=1)
    assert rep.done == ["hn0"], rep.failed
    cli_rs = tmp_path / "cli_RS.dcm"
    r = subprocess.run([_isoline_bin(), "contour", "-q", "--structures", ",".join(structures),
                        "--out", str(cli_rs), str(cases / "hn0" / "dicom")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    b = pydicom.dcmread(tmp_path / "out" / "hn0" / "RS.dcm")
    c = pydicom.dcmread(cli_rs)
    q = json.loads((tmp_path / "out" / "hn0" / "quality.json").read_text())

    assert b.ApprovalStatus == "UNAPPROVED"
    assert b.StructureSetLabel == "AUTO"
    assert f"model {q['model']} {q['model_version']}" in b.StructureSetDescription
    for w in q["warnings"]:
        assert f"WARNING: {w}" in b.StructureSetDescription
    for kw in ("ApprovalStatus", "StructureSetLabel", "StructureSetDescription", "SeriesDescription"):
        assert b.get(kw) == c.get(kw), kw

    def rois(ds):
        return [(r.ROIName, r.get("ROIDescription"),
                 r.ROIDerivationAlgorithmIdentificationSequence[0].AlgorithmName)
                for r in ds.StructureSetROISequence]
    assert rois(b) == rois(c)
    assert {n for n, _, _ in rois(b)} == set(structures)
    assert all(alg == f"Isoline {q['model']}" and desc for _, desc, alg in rois(b))  # quality in each ROI


_INTERRUPTED_SCRIPT = r'''
import signal, sys, time
from pathlib import Path
from isoline import batch

signal.signal(signal.SIGINT, signal.default_int_handler)  # as at a terminal, also when started in background


def job(case_id, input_path, out, options):
    (out / "part.txt").write_text("written before the long step")
    if case_id != "a":
        time.sleep(120)  # still running when the signal comes
    return {"outputs": ["part.txt"], "warnings": []}


if __name__ == "__main__":
    cases = {c: sys.argv[1] for c in ("a", "b", "c")}
    try:
        batch.run_batch(cases, sys.argv[2], job, n_workers=2)
    except KeyboardInterrupt as e:
        print(f"interrupted: {e}", flush=True)
        sys.exit(3)
    sys.exit(0)
'''


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_interrupted_run_records_what_finished_and_leaves_no_temporary_folders(tmp_path, sig):
    """Ctrl-C / SIGTERM (kill, a cluster's time limit) while cases run. SIGTERM used to end the
    process at once: no cleanup, no record of cases finished meanwhile; both left the unfinished
    cases' temporary folders in the output. Now: the finished case is recorded, the temporary
    folders are removed, summary.csv is written, the run ends within seconds, and the re-run
    does only what is missing."""
    import subprocess
    import sys
    import time
    script = tmp_path / "run.py"
    script.write_text(_INTERRUPTED_SCRIPT)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(isoline.__file__).resolve().parents[1]),
                                                       os.environ.get("PYTHONPATH", "")]))
    (tmp_path / "input").mkdir()
    p = subprocess.Popen([sys.executable, str(script), str(tmp_path / "input"), str(out)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 180
        while time.time() < deadline:  # until "a" is recorded and "b" and "c" are running
            try:
                m = batch.read_manifest(out)
            except (OSError, ValueError):
                m = {"cases": {}}
            if "a" in m["cases"] and len(list(out.glob(".[bc].*/part.txt"))) == 2:
                break
            assert p.poll() is None, p.communicate()[0][-3000:]
            time.sleep(0.2)
        else:
            pytest.fail("case a did not finish")
        t0 = time.time()
        p.send_signal(sig)
        stdout, _ = p.communicate(timeout=60)
        stopped_s = time.time() - t0
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 3, stdout[-3000:]
    assert f"interrupted: {'SIGTERM' if sig == signal.SIGTERM else ''}" in stdout
    assert stopped_s < 30
    assert not [x.name for x in out.iterdir() if x.name.startswith((".a.", ".b.", ".c."))]
    assert not (out / "b").exists() and not (out / "c").exists()
    m = batch.read_manifest(out)
    assert set(m["cases"]) == {"a"} and m["cases"]["a"]["status"] == "done"
    rows = (out / batch.SUMMARY_NAME).read_text().splitlines()
    assert rows[0].split(",") == batch.SUMMARY_COLUMNS and rows[1].startswith("a,done,")
    assert len(rows) == 2


def test_progress_and_summary_csv_name_each_case_with_its_file_and_reason(cases, tmp_path):
    """A missing input, a corrupt file and a good case: progress(k, n, case, record) after a
    first (0, n, None, None); summary.csv has one row per case, the failures with the file and
    the reason; the command line prints [k/n] lines and points to the summary."""
    import csv
    calls = []
    inputs = {"hn1": cases / "hn1", "broken": cases / "broken", "missing": tmp_path / "no-such-case"}
    rep = batch.run_batch(inputs, tmp_path / "out", "contour", options={"structures": ["Body"]}, n_workers=1,
                          progress=lambda k, n, cid, rec: calls.append((k, n, cid, rec and rec["status"])))
    assert rep.done == ["hn1"] and set(rep.failed) == {"broken", "missing"}
    assert calls[0] == (0, 3, None, None)
    assert [c[0] for c in calls[1:]] == [1, 2, 3] and all(c[1] == 3 for c in calls)
    assert {c[2]: c[3] for c in calls[1:]} == {"hn1": "done", "broken": "failed", "missing": "failed"}
    with open(tmp_path / "out" / batch.SUMMARY_NAME, newline="") as f:
        rows = {r["case"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"hn1", "broken", "missing"}
    assert rows["hn1"]["status"] == "done" and float(rows["hn1"]["seconds"]) > 0
    assert rows["hn1"]["outputs"] == "masks quality.json"
    assert rows["broken"]["status"] == "failed"
    assert rows["broken"]["error"].startswith("IoError: ") and "broken/ct.nii.gz" in rows["broken"]["error"]
    assert rows["missing"]["error"] == f"IoError: load case: {tmp_path / 'no-such-case'}: does not exist"
    # a run with nothing left to do still writes the summary (e.g. after deleting it)
    (tmp_path / "out" / batch.SUMMARY_NAME).unlink()
    rep = batch.run_batch({"hn1": cases / "hn1"}, tmp_path / "out", "contour", options={"structures": ["Body"]})
    assert rep.skipped == ["hn1"] and (tmp_path / "out" / batch.SUMMARY_NAME).is_file()


def test_command_line_progress_and_interrupt_message(monkeypatch, capsys, tmp_path):
    """[k/n] lines with warnings and the time left (a failed case's: those gathered before the
    failure, not counted as a done case with warnings); Ctrl-C / SIGTERM: one line, 130 / 143."""
    def fake(cases, out, job, *, progress, **kw):
        progress(0, 2, None, None)
        progress(1, 2, "p1", {"status": "done", "seconds": 2.0,
                              "result": {"warnings": ["the CT holds almost no air"]}})
        progress(2, 2, "p2", {"status": "failed", "seconds": 0.1, "error": "IoError: read image: p2/ct.nii.gz: bad",
                              "warnings": ["contouring: anatomy outside the model's scope? ..."]})
        r = batch.BatchReport(job="contour", out_dir=Path(out), done=["p1"], failed={"p2": "x"})
        return r
    monkeypatch.setattr(batch, "run_batch", fake)
    assert batch.main([str(tmp_path), str(tmp_path / "out")]) == 1
    o = capsys.readouterr().out.splitlines()
    assert o[0] == "2 cases to run"
    assert o[1].startswith("[1/2] p1: done 2.0 s, 1 warning: the CT holds almost no air (about ")
    assert o[2] == ("[2/2] p2: failed 0.1 s (IoError: read image: p2/ct.nii.gz: bad), 1 warning: "
                    "contouring: anatomy outside the model's scope? ...")
    assert o[3].startswith("1 done (1 with warnings), 1 failed, 0 already done") and "summary.csv" in o[3]
    for how, code in (("SIGTERM", 143), ("", 130)):
        def interrupted(*a, **kw):
            raise KeyboardInterrupt(how)
        monkeypatch.setattr(batch, "run_batch", interrupted)
        assert batch.main([str(tmp_path), str(tmp_path / "out")]) == code
        err = capsys.readouterr().err
        assert err.startswith(f"python3 -m isoline.batch: interrupted ({how or 'Ctrl-C'})") and "resumes" in err


def test_a_manifest_or_summary_that_cannot_be_written_is_an_ioerror_naming_it(tmp_path):
    """A full disk (here a file size limit, no root needed) while manifest.json or summary.csv is
    written: an isoline.IoError "batch: PATH: cannot write: File too large" (was a bare OSError
    naming no file, a traceback from python3 -m isoline.batch), the previous file kept, no
    temporary left."""
    import errno
    import resource
    m = batch.Manifest(tmp_path / "manifest.json", "contour", {})
    m.record("a", {"status": "failed", "error": "IoError: " + "y" * 3000})
    batch.write_summary(tmp_path)
    before = {n: (tmp_path / n).read_text() for n in ("manifest.json", "summary.csv")}
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, hard))
        with pytest.raises(isoline.IoError) as e:
            m.record("b", {"status": "done"})
        assert str(e.value) == f"batch: {tmp_path / 'manifest.json'}: cannot write: File too large"
        assert e.value.errno == errno.EFBIG
        with pytest.raises(isoline.IoError) as e:
            batch.write_summary(tmp_path)
        assert str(e.value) == f"batch: {tmp_path / 'summary.csv'}: cannot write: File too large"
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)
    assert {n: (tmp_path / n).read_text() for n in ("manifest.json", "summary.csv")} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "summary.csv"]


def test_options_of_the_other_job_and_a_bad_template_are_refused_before_any_case(tmp_path):
    """Session 23 audit: ``--job run --template nosuch`` ran every case, each failing with "read plan
    template: nosuch: no such template"; ``--job contour --template hn --iterations 5`` ran,
    ignoring both."""
    import subprocess
    import sys
    (tmp_path / "cases" / "broken").mkdir(parents=True)
    (tmp_path / "cases" / "broken" / "ct.nii.gz").write_bytes(b"junk")
    out = tmp_path / "out"

    def batch_cli(*args):
        return subprocess.run([sys.executable, "-m", "isoline.batch", str(tmp_path / "cases"), str(out),
                               "--workers", "1", *args], capture_output=True, text=True, timeout=300)

    for args, said in [(["--job", "contour", "--template", "hn", "--iterations", "5"],
                        "error: --template and --iterations are for --job run, not --job contour"),
                       (["--template", "hn"], "error: --template is for --job run, not --job contour"),
                       (["--job", "run", "--structures", "Body", "--preview"],
                        "error: --structures and --preview are for --job contour, not --job run"),
                       (["--job", "run", "--review"], "error: --review is for --job contour, not --job run"),
                       (["--job", "run", "--iterations", "-1"], "error: --iterations must be >= 0")]:
        r = batch_cli(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert said in r.stderr and "usage: " in r.stderr, (args, r.stderr)
        assert not out.exists(), args
    # The template is loaded once, before any case: one line, nothing written.
    r = batch_cli("--job", "run", "--template", "nosuch")
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.startswith("python3 -m isoline.batch: error: read plan template: nosuch: no such template"), r.stderr
    assert "Traceback" not in r.stderr and "broken" not in r.stdout, r.stdout + r.stderr
    assert not out.exists()
    # The same from Python.
    with pytest.raises(isoline.IoError, match="^read plan template: nosuch: no such template"):
        batch.run_batch(tmp_path / "cases", out, "run", options={"template": "nosuch"})
    with pytest.raises(isoline.InvalidInput, match=r"^batch: options: max_iterations: -1: must be a whole number >= 0"):
        batch.run_batch(tmp_path / "cases", out, "run", options={"max_iterations": -1})
    assert not out.exists()
