"""Many cases on a Dask cluster: a job (contouring, or any registered job) per case, a local
cluster by default or an existing scheduler by address, one model per worker process, failures
reported per case, and a resumable manifest so that a re-run only does what is missing.

Example::

    from isoline import batch
    report = batch.run_batch("cases/", "out/", job="contour",
                             options={"structures": ["Brainstem", "SpinalCord", "Body"]},
                             n_workers=2)                       # or scheduler="tcp://host:8786"
    report.done, report.failed                                  # case ids, {case id: error}
    # out/manifest.json records every case; running the same command again skips done cases.
    # out/summary.csv: one row per case (status, seconds, warnings, error naming file and reason).
    # Ctrl-C or SIGTERM: finished cases stay recorded, no temporary folder is left; re-run to resume.

Cases are a directory (each entry — a case directory holding ct.nii.gz or DICOM, or a CT image
file — is one case), a list of paths (id = the entry's name) or a dict {case id: path}.

Jobs are plain functions ``job(case_id, input_path, case_out_dir, options) -> dict`` registered
with :func:`register_job`; the dict (JSON-able) is stored in the manifest. The built-in
``"contour"`` job writes ``RS.dcm`` (DICOM input) or ``masks/*.nii.gz`` (image input) and
``quality.json`` into ``<out>/<case id>/`` (options ``"preview": True`` adds ``preview.png``, the
three views with the outlines, and ``"review": True`` ``review.html``, as ``isoline contour
--preview/--report``); ``"run"`` is the whole main job (``isoline run``:
contours, plan, RS.dcm, RD.dcm, plan.json, dose, report; see :mod:`isoline.pipeline`).
"""
from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from ._isoline import InvalidInput, IoError

PathLike = Union[str, "os.PathLike[str]"]
JobFunction = Callable[[str, str, Path, Dict[str, Any]], Dict[str, Any]]

MANIFEST_NAME = "manifest.json"
SUMMARY_NAME = "summary.csv"
MANIFEST_VERSION = 1

# ------------------------------------------------------------------------------------------
# Jobs

JOBS: Dict[str, JobFunction] = {}
# The options each built-in job reads (run_batch refuses others: a typo would be ignored).
JOB_OPTIONS: Dict[str, set] = {
    "contour": {"model_card", "device", "structures", "batch", "rtstruct", "masks", "preview", "review"},
    "run": {"template", "model_card", "structures_path", "targets_path", "device", "max_iterations", "report"},
}
#: Per-job "warm-up" run once per worker process (e.g. load the model) before any case.
WARMUPS: Dict[str, Callable[[Dict[str, Any]], Any]] = {}


def register_job(name: str, warmup: Optional[Callable[[Dict[str, Any]], Any]] = None
                 ) -> Callable[[JobFunction], JobFunction]:
    """Decorator registering ``fn(case_id, input_path, case_out_dir, options) -> dict`` as a
    batch job. ``warmup(options)`` runs once per worker process before its first case. The
    job must write its outputs into ``case_out_dir`` (a fresh temporary directory that is
    renamed onto ``<out>/<case id>`` when the job returns)."""
    def deco(fn: JobFunction) -> JobFunction:
        JOBS[name] = fn
        if warmup is not None:
            WARMUPS[name] = warmup
        return fn
    return deco


# Per worker process: objects worth keeping between cases (models). A Dask worker is one
# process, so this module-level dict is "per worker".
_WORKER_CACHE: Dict[Any, Any] = {}
_WORKER_LOCK = threading.Lock()


def worker_cache() -> Dict[Any, Any]:
    """The calling process's cache (what jobs keep between cases: models, lookup tables)."""
    return _WORKER_CACHE


def _contourer(options: Dict[str, Any]):
    from .contouring import Contourer
    key = ("contourer", options.get("model_card") or "", options.get("device", "cpu"),
           tuple(options.get("structures", ())), int(options.get("batch", 16)))
    with _WORKER_LOCK:
        c = _WORKER_CACHE.get(key)
        if c is None:
            c = Contourer(options.get("model_card") or None, structures=options.get("structures", ()),
                          device=options.get("device", "cpu"), batch=int(options.get("batch", 16)))
            _WORKER_CACHE[key] = c
            _WORKER_CACHE["model_loads"] = _WORKER_CACHE.get("model_loads", 0) + 1
    return c


def load_ct(path: PathLike):
    """(CT image, CtSeries or None) of a case: an image file, a directory with ct.nii.gz,
    or DICOM (a directory, a ``dicom/`` sub-directory or one file of the series)."""
    from ._isoline.core import read_image
    from ._isoline.rtstruct import read_ct_series
    p = Path(path)
    if p.is_file() and p.name.lower().endswith((".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")):
        return read_image(str(p)), None
    if p.is_dir():
        for name in ("ct.nii.gz", "ct.nii", "ct.nrrd", "ct.mha"):
            if (p / name).is_file():
                return read_image(str(p / name)), None
        if (p / "dicom").is_dir():
            p = p / "dicom"
    elif p.is_file():
        p = p.parent
    elif not p.exists():
        raise IoError(f"load case: {p}: does not exist")
    try:
        s = read_ct_series(str(p))
    except InvalidInput as e:
        if p.is_dir() and "no DICOM files" in str(e):  # say what else was looked for
            raise InvalidInput(f"load case: {p}: no CT: neither ct.nii.gz (.nii, .nrrd, .mha) nor a DICOM "
                               "CT series (here or in dicom/)") from None
        raise
    return s.image, s


def contour_job(case_id: str, input_path: str, out: Path, options: Dict[str, Any]) -> Dict[str, Any]:
    """Contours one case: RS.dcm (DICOM input) or masks/*.nii.gz, plus quality.json; with
    options "preview" / "review" also preview.png / review.html (contouring.write_review)."""
    from ._isoline.core import write_mask_dir
    from ._isoline.pipeline import write_auto_rtstruct, write_quality_json
    ct, series = load_ct(input_path)
    res = _contourer(options)(ct)
    outputs = []
    if series is not None and options.get("rtstruct", True):
        # As isoline contour / run / the DICOM node write it (pipeline::auto_contour_options).
        write_auto_rtstruct(res, series, str(out / "RS.dcm"))
        outputs.append("RS.dcm")
    if series is None or options.get("masks", False):
        write_mask_dir(res.structures, str(out / "masks"))
        outputs.append("masks")
    write_quality_json(res, str(out / "quality.json"))
    outputs.append("quality.json")
    if options.get("preview") or options.get("review"):
        from .contouring import write_review
        png = out / "preview.png" if options.get("preview") else None
        html = out / "review.html" if options.get("review") else None
        write_review(ct, res, html=html, png=png, title=f"Auto-contours: {case_id}",
                     info={"Case": case_id, "Input": str(input_path)})
        outputs += [p.name for p in (png, html) if p is not None]
    return {"outputs": outputs, "structures": res.structures.names(), "warnings": list(res.warnings)}


register_job("contour", warmup=_contourer)(contour_job)


def run_job(case_id: str, input_path: str, out: Path, options: Dict[str, Any]) -> Dict[str, Any]:
    """The main job (``isoline run``): contours, plan, RS.dcm, RD.dcm, plan.json, report.
    options: template (default planning.DEFAULT_TEMPLATE, "hn"), model_card, structures_path, targets_path, device, max_iterations, report."""
    from ._isoline.pipeline import run_case
    from ._isoline.planning import DEFAULT_TEMPLATE
    p = Path(input_path)
    if p.is_dir():  # a case directory: its ct.nii.gz or its DICOM
        for name in ("ct.nii.gz", "ct.nii", "ct.nrrd", "ct.mha"):
            if (p / name).is_file():
                p = p / name
                break
        else:
            if (p / "dicom").is_dir():
                p = p / "dicom"
    r = run_case(str(p), str(out), template=options.get("template") or DEFAULT_TEMPLATE,
                 model_card=options.get("model_card") or "", structures_path=options.get("structures_path", ""),
                 targets_path=options.get("targets_path", ""),
                 device=options.get("device", "cpu"), max_iterations=int(options.get("max_iterations", 0)),
                 overwrite=True, report=bool(options.get("report", True)))
    return {"outputs": list(r.files), "warnings": list(r.warnings),
            "criteria": {c.criterion.description: {"value": c.value, "passed": c.passed}
                         for c in r.plan.criteria if c.evaluated},
            "contour_s": r.contour_s, "plan_s": r.plan_s}


register_job("run")(run_job)


def _check_run_options(options: Dict[str, Any]) -> None:
    """The ``run`` job's options that would fail every case alike, checked once before the batch
    starts: the template is loaded (an unknown name or a bad JSON file is its IoError /
    InvalidInput, "read plan template: nosuch: no such template (...)"), and max_iterations must
    be a whole number >= 0 (0: the template's)."""
    from ._isoline.planning import load_template
    template = options.get("template")
    if template:
        load_template(os.fspath(template))
    it = options.get("max_iterations", 0)
    try:
        ok = not isinstance(it, bool) and int(it) == it and int(it) >= 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InvalidInput(f"batch: options: max_iterations: {it!r}: must be a whole number >= 0 "
                           "(0 = the template's)")


def _umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def _share_like_umask(path: Path) -> None:
    """mkdtemp/mkstemp make owner-only folders and files; a batch's outputs get the modes any
    other file of the user would (group members reading a shared study folder)."""
    mask = _umask()
    for p in [path, *(path.rglob("*") if path.is_dir() else [])]:
        mode = 0o777 if p.is_dir() else 0o666 | (p.stat().st_mode & 0o111)
        p.chmod(mode & ~mask)


def _write_text_atomically(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` through a hidden temporary file in the same folder (flushed
    to disk, then renamed over ``path``): a reader sees the old file or the new one, never a
    part; the temporary is removed if anything fails. Modes as _share_like_umask gives.
    A failure (disk full, file size limit) is an IoError naming ``path`` and the reason."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise _io_error(path, e) from e
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        _share_like_umask(Path(tmp))
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, IoError):
            raise _io_error(path, e) from e
        raise


def _io_error(path: Path, e: OSError) -> IoError:
    """IoError "batch: PATH: cannot write: REASON" (as the C++ errors read), errno kept."""
    err = IoError(f"batch: {path}: cannot write: {e.strerror or e}")
    err.errno = e.errno
    return err


def _run_case(job: Union[str, JobFunction], case_id: str, input_path: str, out_dir: str, options: Dict[str, Any]) -> Dict[str, Any]:
    """Runs on a worker: the job into a temporary directory renamed onto <out>/<case id>.
    Exceptions become a 'failed' record (the batch goes on), with the warnings the job had
    gathered before it failed (an isoline.Error's ``warnings``, e.g. run_case's "contouring:
    anatomy outside the model's scope? ..."; [] when none)."""
    t0 = time.perf_counter()
    rec: Dict[str, Any] = {"input": input_path, "worker": f"{socket.gethostname()}:{os.getpid()}"}
    final = Path(out_dir) / case_id
    tmp = Path(tempfile.mkdtemp(prefix=f".{case_id}.", dir=out_dir))
    try:
        fn = job if callable(job) else JOBS.get(job)
        if fn is None:
            raise InvalidInput(f"batch: {job}: unknown job (known: {', '.join(sorted(JOBS))})")
        result = fn(case_id, input_path, tmp, dict(options))
        _share_like_umask(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        rec.update(status="done", result=result)
    except BaseException as e:  # noqa: BLE001 - one case's failure must not stop the batch
        shutil.rmtree(tmp, ignore_errors=True)
        rec.update(status="failed", error=f"{type(e).__name__}: {e}",
                   warnings=[str(w) for w in getattr(e, "warnings", ())],
                   traceback=traceback.format_exc(limit=8))
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
    rec["seconds"] = round(time.perf_counter() - t0, 3)
    rec["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rec["model_loads_in_worker"] = _WORKER_CACHE.get("model_loads", 0)
    return rec


try:  # the plugin class needs distributed; the rest of the module does not
    from distributed.diagnostics.plugin import WorkerPlugin as _WorkerPluginBase
except Exception:  # pragma: no cover
    _WorkerPluginBase = object  # type: ignore[misc,assignment]


class WarmupPlugin(_WorkerPluginBase):  # type: ignore[misc,valid-type]
    """Dask worker plugin: on every worker (also ones started or restarted later) runs the
    job's warm-up once, so the model is loaded before the first case and stays loaded."""

    def __init__(self, job: str, options: Dict[str, Any]) -> None:
        self.job = job
        self.options = dict(options)
        self.name = f"isoline-warmup-{job}"

    def setup(self, worker=None) -> None:  # noqa: D401
        """Runs the job's warm-up on the worker (Dask calls it when the worker starts); an error
        is ignored here and reported by each case instead."""
        w = WARMUPS.get(self.job)
        if w is not None:
            try:
                w(self.options)
            except Exception:  # a bad option is reported per case, with its message
                pass


# ------------------------------------------------------------------------------------------
# Manifest


def _canonical(options: Dict[str, Any]) -> str:
    return json.dumps(options, sort_keys=True, default=str)


class _OutputLock:
    """One run_batch per output folder at a time (<out>/.batch.lock, flock): a second run would
    take the first one's temporary case folders for stale ones and delete them.

    The file exists only while a run holds it: release() deletes it before unlocking. A run that
    opened the file just before it was deleted then locks a file no longer in the folder; it sees
    that (the path is gone or another file) and starts again with a new file, so two runs never
    both hold a lock on the path. A run killed with SIGKILL leaves the file unlocked; the next run
    takes it over."""

    def __init__(self, out: Path) -> None:
        self.path = out / ".batch.lock"
        while True:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                other = os.pread(self.fd, 64, 0).decode(errors="replace").strip()
                os.close(self.fd)
                raise InvalidInput(f"batch: {out}: another run_batch is writing there ({other or 'pid unknown'}); "
                                   "wait for it, or use another output directory") from None
            try:
                now = os.stat(self.path)
            except FileNotFoundError:
                now = None
            held = os.fstat(self.fd)
            if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
                break
            os.close(self.fd)  # the holder released and deleted it meanwhile: lock the new file
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)

    def release(self) -> None:
        if self.fd >= 0:
            try:
                os.unlink(self.path)  # while still locked (see the class docstring)
            except OSError:
                pass
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1


class Manifest:
    """JSON record of a batch: ``{"version", "job", "options", "cases": {id: record}}``.
    Every save writes a temporary file beside it, fsyncs and renames it (atomic)."""

    def __init__(self, path: PathLike, job: str, options: Dict[str, Any]) -> None:
        self.path = Path(path)
        self.data: Dict[str, Any] = {"version": MANIFEST_VERSION, "job": job, "options": options, "cases": {}}
        if self.path.exists():
            old = json.loads(self.path.read_text())
            if old.get("job") != job:
                raise InvalidInput(f"batch: {self.path}: manifest is for job {old.get('job')!r}, not {job!r} "
                                   "(use another output directory)")
            # Cases done with other options are not what this run asks for: skipping them as
            # done would record the new options for outputs made with the old ones.
            if "options" in old and _canonical(old["options"]) != _canonical(options):
                raise InvalidInput(f"batch: {self.path}: the cases there were made with options "
                                   f"{_canonical(old['options'])}, this run asks for {_canonical(options)} "
                                   "(use another output directory, or the same options to resume)")
            self.data["cases"] = old.get("cases", {})
        self._lock = threading.Lock()

    @property
    def cases(self) -> Dict[str, Dict[str, Any]]:
        return self.data["cases"]

    def is_done(self, case_id: str, out_dir: Path) -> bool:
        """True when the case is recorded ``done`` and its folder ``out_dir/case_id`` exists."""
        r = self.cases.get(case_id)
        return bool(r) and r.get("status") == "done" and (out_dir / case_id).is_dir()

    def record(self, case_id: str, rec: Dict[str, Any]) -> None:
        """Sets the case's record and saves the manifest (thread-safe)."""
        with self._lock:
            self.cases[case_id] = rec
            self.save()

    def save(self) -> None:
        """Writes the manifest atomically (temporary file, fsync, rename)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _write_text_atomically(self.path, json.dumps(self.data, indent=1, sort_keys=True))


def read_manifest(out_dir: PathLike) -> Dict[str, Any]:
    """The manifest of an output directory (``<out>/manifest.json``)."""
    return json.loads((Path(out_dir) / MANIFEST_NAME).read_text())


def _record_warnings(rec: Mapping[str, Any]) -> List[Any]:
    """A case record's warnings: its job's result's, or for a failed case those gathered before
    the failure (the record's own)."""
    res = rec.get("result") if isinstance(rec.get("result"), dict) else {}
    return list(res.get("warnings") or rec.get("warnings") or [])


#: Columns of summary.csv, one row per case of the manifest.
SUMMARY_COLUMNS = ["case", "status", "seconds", "warnings", "error", "input", "outputs", "finished"]


def write_summary(out_dir: PathLike) -> Path:
    """Writes ``<out>/summary.csv`` from the manifest (atomically): one row per case, sorted by
    case id, with status (done/failed), seconds, the job's whole-image warnings (joined by " | ";
    for a failed case those gathered before the failure), the error of a failed case (exception
    type and message: file and reason), input, outputs and
    when it finished. run_batch writes it at the end of every run, also an interrupted one.
    Returns its path."""
    out = Path(out_dir)
    cases = read_manifest(out).get("cases", {})
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SUMMARY_COLUMNS)
    for cid in sorted(cases):
        r = cases[cid]
        res = r.get("result") if isinstance(r.get("result"), dict) else {}
        w.writerow([cid, r.get("status", ""), r.get("seconds", ""),
                    " | ".join(str(x) for x in _record_warnings(r)), r.get("error", ""),
                    r.get("input", ""), " ".join(str(x) for x in res.get("outputs", []) or []),
                    r.get("finished", "")])
    _write_text_atomically(out / SUMMARY_NAME, buf.getvalue())
    return out / SUMMARY_NAME


# ------------------------------------------------------------------------------------------
# Running


@dataclass
class BatchReport:
    """What one run did. ``ran`` = cases submitted in this run; ``skipped`` = already done."""

    job: str
    out_dir: Path
    done: List[str] = field(default_factory=list)
    failed: Dict[str, str] = field(default_factory=dict)
    skipped: List[str] = field(default_factory=list)
    ran: List[str] = field(default_factory=list)
    seconds: float = 0.0
    scheduler: str = ""

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def cases_per_minute(self) -> float:
        return 60.0 * len(self.done) / self.seconds if self.seconds > 0 else 0.0


def discover_cases(cases: Union[PathLike, Iterable[PathLike], Mapping[str, PathLike]]) -> Dict[str, str]:
    """{case id: input path} from a directory of cases, a list of paths or a dict."""
    if isinstance(cases, Mapping):
        return {str(k): os.fspath(v) for k, v in cases.items()}
    if isinstance(cases, (str, os.PathLike)):
        root = Path(cases)
        if not root.is_dir():
            raise IoError(f"batch: {root}: not a directory of cases")
        entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    else:
        entries = [Path(p) for p in cases]
    out: Dict[str, str] = {}
    for p in entries:
        cid = p.name
        for s in (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd"):
            if cid.lower().endswith(s):
                cid = cid[: -len(s)]
                break
        if cid in out:
            raise InvalidInput(f"batch: {p}: duplicate case id {cid!r}")
        out[cid] = os.fspath(p)
    return out


def _worker_env(threads: int) -> Dict[str, str]:
    pkg_parent = str(Path(__file__).resolve().parent.parent)
    pp = os.environ.get("PYTHONPATH", "")
    env = {"PYTHONPATH": pkg_parent + (os.pathsep + pp if pp else "")}
    for var in ("OMP_NUM_THREADS", "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "MKL_NUM_THREADS"):
        env[var] = os.environ.get(var, str(threads))
    return env


def local_cluster(n_workers: Optional[int] = None, threads_per_worker: int = 1,
                  allowed_failures: Optional[int] = None, **kwargs: Any):
    """A LocalCluster of worker processes that can import this isoline package (PYTHONPATH
    and thread counts passed on). ``allowed_failures``: how often a task may be on a worker
    that dies before it is reported as failed (Dask's default 3; 0 = report at once)."""
    import dask
    from dask.distributed import LocalCluster
    if n_workers is None:
        n_workers = max(1, min(4, (os.cpu_count() or 2) // max(1, threads_per_worker)))
    cfg = {"distributed.scheduler.allowed-failures": allowed_failures} if allowed_failures is not None else {}
    with dask.config.set(cfg):
        return LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                            dashboard_address=None, env=_worker_env(threads_per_worker), **kwargs)


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """While run_batch runs in the main thread of a process whose SIGTERM does the default
    (exit at once: no cleanup), SIGTERM (kill, a cluster job's time limit) raises
    KeyboardInterrupt("SIGTERM") as Ctrl-C does, so the cluster is closed, the cases that
    finished are recorded and no temporary case folder is left. A second SIGTERM kills."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def handler(signum, frame):  # noqa: ARG001
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def run_batch(cases: Union[PathLike, Iterable[PathLike], Mapping[str, PathLike]], out_dir: PathLike,
              job: Union[str, JobFunction] = "contour", *, options: Optional[Dict[str, Any]] = None,
              scheduler: Optional[str] = None, client: Any = None, n_workers: Optional[int] = None,
              threads_per_worker: int = 1, allowed_failures: Optional[int] = None,
              on_result: Optional[Callable[[str, Dict[str, Any]], None]] = None,
              progress: Optional[Callable[[int, int, Optional[str], Optional[Dict[str, Any]]], None]] = None
              ) -> BatchReport:
    """Runs ``job`` (a registered name, or a function ``job(case_id, input_path, case_out_dir,
    options) -> dict`` that Dask can pickle) on every case not yet done in ``<out_dir>/manifest.json``.

    Cluster: ``client`` (a dask.distributed.Client), else ``scheduler`` (address of a running
    Dask scheduler, e.g. "tcp://10.0.0.5:8786"; its workers must be able to import isoline and
    read the input/output paths), else a local cluster of ``n_workers`` processes.
    Each finished case is written to the manifest at once (atomically), so an interrupted run
    loses nothing that finished; failed cases are recorded with their error and retried by the
    next run. ``on_result(case_id, record)`` is called in this process as cases finish;
    ``progress(finished, to_run, case_id, record)`` too, and first once as ``(0, to_run, None,
    None)`` when the cases to run are known (after skipping those already done).

    Ctrl-C (KeyboardInterrupt) and, from the main thread, SIGTERM stop the run: the cases that
    finished are recorded, a local cluster is closed and the temporary folders of unfinished
    cases are removed, then KeyboardInterrupt propagates (``str(e)`` is "SIGTERM" for SIGTERM).
    Every run ends by writing ``<out_dir>/summary.csv`` (:func:`write_summary`).
    """
    if not callable(job) and job not in JOBS:
        raise InvalidInput(f"batch: {job}: unknown job (known: {', '.join(sorted(JOBS))})")
    job_name = job if isinstance(job, str) else getattr(job, "__name__", "job")
    options = dict(options or {})
    if isinstance(options.get("structures"), str):  # "Body,Brainstem" or one name
        options["structures"] = [s for s in options["structures"].split(",") if s]
    if isinstance(job, str) and job in JOB_OPTIONS:  # a misspelt key would be ignored silently
        unknown = sorted(set(options) - JOB_OPTIONS[job])
        if unknown:
            raise InvalidInput(f"batch: options: {', '.join(unknown)}: unknown to job {job!r} "
                               f"(it reads: {', '.join(sorted(JOB_OPTIONS[job]))})")
    if job == "run":  # what would fail every case is refused once, before anything is written
        _check_run_options(options)
    out = Path(out_dir).resolve()
    all_cases = discover_cases(cases)
    all_cases = {cid: str(Path(p).resolve()) for cid, p in all_cases.items()}
    # Each case's output replaces <out_dir>/<case id>: never a case's input (e.g. out_dir = the
    # folder of cases), checked before anything is written.
    for cid, path in all_cases.items():
        dest, src = out / cid, Path(path)
        if dest == src or dest in src.parents or src in dest.parents:
            raise InvalidInput(f"batch: {out_dir}: the output of case {cid} would replace its input {path} "
                               f"(choose another output directory)")
    out.mkdir(parents=True, exist_ok=True)
    lock = _OutputLock(out)
    try:
        with _sigterm_as_interrupt():
            return _run_locked(job, job_name, options, out, all_cases, scheduler, client, n_workers,
                               threads_per_worker, allowed_failures, on_result, progress)
    finally:
        lock.release()


def _run_locked(job: Union[str, JobFunction], job_name: str, options: Dict[str, Any], out: Path,
                all_cases: Dict[str, str], scheduler: Optional[str], client: Any, n_workers: Optional[int],
                threads_per_worker: int, allowed_failures: Optional[int],
                on_result: Optional[Callable[[str, Dict[str, Any]], None]],
                progress: Optional[Callable[[int, int, Optional[str], Optional[Dict[str, Any]]], None]]
                ) -> BatchReport:
    from dask.distributed import Client, as_completed

    manifest = Manifest(out / MANIFEST_NAME, job_name, options)
    report = BatchReport(job=job_name, out_dir=out)
    todo: List[Tuple[str, str]] = []
    for cid, path in all_cases.items():
        if manifest.is_done(cid, out):
            report.skipped.append(cid)
        else:
            todo.append((cid, path))
    manifest.save()
    # Temporary outputs of cases interrupted earlier (a killed worker cannot clean up), of every
    # case: one may have been done meanwhile by another worker (Dask moves tasks between workers),
    # leaving the killed worker's folder beside a finished case. This run holds the lock and has
    # started nothing yet, so no one is writing them.
    for cid in all_cases:
        for stale in out.glob(f".{cid}.*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
    t0 = time.perf_counter()
    if progress is not None:
        progress(0, len(todo), None, None)
    if not todo:
        write_summary(out)
        return report

    own_cluster = None
    own_client = None
    if client is None:
        if scheduler:
            own_client = client = Client(scheduler)
        else:
            own_cluster = local_cluster(n_workers, threads_per_worker, allowed_failures)
            own_client = client = Client(own_cluster)
    try:
        report.scheduler = client.scheduler.address
        if isinstance(job, str):
            client.register_worker_plugin(WarmupPlugin(job, options), name=f"isoline-warmup-{job}")
        futures = {}
        for cid, path in todo:
            f = client.submit(_run_case, job, cid, path, str(out), options, key=f"isoline-{job_name}-{cid}-{time.time_ns()}",
                              pure=False)
            futures[f] = (cid, path)
            report.ran.append(cid)
        recorded = set()

        def take(f, rec=None) -> None:
            cid, path = futures[f]
            if rec is None:
                try:
                    rec = f.result()
                except Exception as e:  # KilledWorker, cancelled, lost connection, ...
                    rec = {"input": path, "status": "failed", "error": f"{type(e).__name__}: {e}",
                           "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            manifest.record(cid, rec)
            recorded.add(f)
            if rec["status"] == "done":
                report.done.append(cid)
            else:
                report.failed[cid] = rec["error"]
            if on_result is not None:
                on_result(cid, rec)
            if progress is not None:
                progress(len(recorded), len(todo), cid, rec)

        try:
            for f in as_completed(futures):
                take(f)
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM) or the client failed: keep what finished meanwhile
            # (its folder is in place; unrecorded, the next run would redo it), drop the rest.
            for f in futures:
                if f not in recorded and f.status == "finished":
                    try:
                        take(f, f.result(timeout=5))
                    except Exception:  # noqa: BLE001 - best effort; the next run redoes the case
                        pass
            with contextlib.suppress(Exception):
                client.cancel([f for f in futures if f not in recorded])
            raise
    finally:
        report.seconds = time.perf_counter() - t0
        if own_client is not None:
            own_client.close()
        if own_cluster is not None:
            own_cluster.close()
            # Its workers are gone, so no case is still writing: remove the temporary folders
            # of cases that did not finish (a killed run leaves them for the next run to remove).
            for cid in all_cases:
                for stale in out.glob(f".{cid}.*"):
                    if stale.is_dir():
                        shutil.rmtree(stale, ignore_errors=True)
        if sys.exc_info()[0] is None:
            write_summary(out)
        else:  # never hide why the run stopped
            with contextlib.suppress(Exception):
                write_summary(out)
    return report


def main(argv: Optional[List[str]] = None) -> int:
    """``python3 -m isoline.batch CASES OUT [--job contour] [--scheduler ADDR] [--workers N]``"""
    import argparse
    ap = argparse.ArgumentParser(prog="python3 -m isoline.batch", description=main.__doc__)
    ap.add_argument("cases", help="directory of cases (each entry one case)")
    ap.add_argument("out", help="output directory (manifest.json inside)")
    ap.add_argument("--job", default="contour", choices=sorted(JOBS))
    ap.add_argument("--scheduler", help="address of a running Dask scheduler (default: local cluster)")
    ap.add_argument("--workers", type=int, help="local worker processes")
    ap.add_argument("--structures", nargs="*", help="contour: structures (default all)")
    ap.add_argument("--preview", action="store_true", help="contour: also preview.png per case (views with outlines)")
    ap.add_argument("--review", action="store_true", help="contour: also review.html per case (views, structures, flags)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--template", help="run: plan template (default: hn, isoline.planning.DEFAULT_TEMPLATE)")
    ap.add_argument("--iterations", type=int, help="run: optimiser iterations (0 = template's)")
    a = ap.parse_args(argv)
    # An option of the other job would be ignored silently: refused (exit 2), naming its job.
    given = {"contour": [o for o, v in (("--structures", a.structures is not None), ("--preview", a.preview),
                                        ("--review", a.review)) if v],
             "run": [o for o, v in (("--template", a.template is not None),
                                    ("--iterations", a.iterations is not None)) if v]}
    for owner, opts in given.items():
        if opts and a.job != owner:
            ap.error(f"{' and '.join(opts)} {'is' if len(opts) == 1 else 'are'} for --job {owner}, "
                     f"not --job {a.job}")
    if a.iterations is not None and a.iterations < 0:
        ap.error("--iterations must be >= 0 (0 = the template's)")
    options: Dict[str, Any] = {"device": a.device}
    if a.job == "contour":
        options["structures"] = a.structures or []
        if a.preview:
            options["preview"] = True
        if a.review:
            options["review"] = True
    else:
        from ._isoline.planning import DEFAULT_TEMPLATE
        # The template by name, so that a resumed run made with another default is refused.
        options.update(template=a.template or DEFAULT_TEMPLATE, max_iterations=a.iterations or 0)
    from ._isoline import Error
    t0 = time.perf_counter()
    n_warned = [0]

    def show(k: int, n: int, cid: Optional[str], r: Optional[Dict[str, Any]]) -> None:
        if cid is None:
            print(f"{n} case{'s' if n != 1 else ''} to run", flush=True)
            return
        line = f"[{k}/{n}] {cid}: {r['status']}"
        if r.get("seconds") is not None:
            line += f" {r['seconds']:.1f} s"
        if r.get("error"):
            line += f" ({r['error']})"
        warnings = _record_warnings(r)  # a failed case's: those gathered before the failure
        if warnings:
            if r["status"] == "done":
                n_warned[0] += 1
            first = str(warnings[0])
            line += f", {len(warnings)} warning{'s' if len(warnings) != 1 else ''}: " + \
                (first if len(first) <= 100 else first[:97] + "...")
        if k < n:
            left = (time.perf_counter() - t0) / k * (n - k)
            line += f" (about {left / 60:.0f} min left)" if left >= 90 else f" (about {left:.0f} s left)"
        print(line, flush=True)

    try:
        rep = run_batch(a.cases, a.out, a.job, options=options,
                        scheduler=a.scheduler, n_workers=a.workers, progress=show)
    except Error as e:  # a refused run (other options, a locked folder, no case): one line, as the CLI
        print(f"{ap.prog}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM: what finished is recorded
        how = "SIGTERM" if str(e) == "SIGTERM" else "Ctrl-C"
        print(f"{ap.prog}: interrupted ({how}); finished cases are in {Path(a.out) / MANIFEST_NAME} and "
              f"{Path(a.out) / SUMMARY_NAME}; the same command resumes", file=sys.stderr)
        return 143 if how == "SIGTERM" else 130
    print(f"{len(rep.done)} done ({n_warned[0]} with warnings), {len(rep.failed)} failed, "
          f"{len(rep.skipped)} already done, {rep.seconds:.1f} s; per case: {rep.out_dir / SUMMARY_NAME}")
    return 0 if rep.ok else 1


if __name__ == "__main__":
    # Run the importable copy (isoline.batch), not __main__: Dask pickles the worker plugin and
    # jobs by reference to their module, which workers must be able to import.
    from isoline.batch import main as _main
    raise SystemExit(_main())


__all__ = [
    "BatchReport",
    "JOBS",
    "Manifest",
    "WarmupPlugin",
    "contour_job",
    "discover_cases",
    "load_ct",
    "local_cluster",
    "read_manifest",
    "run_job",
    "register_job",
    "run_batch",
    "worker_cache",
    "write_summary",
]
