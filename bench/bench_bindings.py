"""Python API figures: batch contouring throughput on a local Dask cluster.

batch_cases_per_minute_local: 20 generated head-and-neck phantoms (256 x 256 x 96 voxels of
2 x 2 x 4 mm), contouring only (all model structures + Body, NIfTI masks written), through
isoline.batch.run_batch on a local cluster with the default worker count (one single-threaded
worker process per core, at most 4). Timed from run_batch's start (cluster start included) to
the last case in the manifest; phantom generation is not timed.
"""
import json
import os
import shutil
import subprocess

KEYS = ["batch_cases_per_minute_local"]

SCRIPT = r"""
import json, sys, time
from pathlib import Path
from isoline import batch, phantoms
work = Path(sys.argv[1]); n = int(sys.argv[2])
cases = work / "cases"
for s in range(n):
    d = cases / f"hn{s:02d}"
    if not (d / "ct.nii.gz").exists():
        phantoms.write_phantom(phantoms.make_head_neck(200 + s, size=(256, 256, 96), spacing=(2.0, 2.0, 4.0)),
                               str(d), dicom=False)
out = work / "out"
t0 = time.perf_counter()
rep = batch.run_batch(cases, out, "contour")
dt = time.perf_counter() - t0
print(json.dumps({"done": len(rep.done), "failed": rep.failed, "seconds": dt, "ran": len(rep.ran)}))
"""


def run(ctx):
    pydir = ctx.build / "python"
    if not (pydir / "isoline").is_dir():
        return {k: None for k in KEYS}
    work = ctx.work / "bindings_batch"
    shutil.rmtree(work / "out", ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(pydir))
    p = subprocess.run(["/usr/bin/python3", "-c", SCRIPT, str(work), "20"], env=env, capture_output=True,
                       text=True, timeout=3600)
    if p.returncode != 0:
        raise RuntimeError(f"batch bench failed: {p.stderr.strip()[-800:]}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    if r["done"] != 20:
        raise RuntimeError(f"batch bench: only {r['done']} of 20 cases done: {r['failed']}")
    return {"batch_cases_per_minute_local": round(20 * 60.0 / r["seconds"], 2)}
