#!/usr/bin/python3
"""Batch contouring with Dask: N generated phantoms contoured on a local cluster (or on an
existing scheduler with --scheduler tcp://host:8786), with a resumable manifest.

    /usr/bin/python3 examples/batch_contour.py --cases 8 --out /tmp/batch_demo
    # run it again: every case is already done and is skipped

Each worker process loads the contouring model once; a case that fails is reported in
<out>/manifest.json with its error and the others go on; a re-run does only what is missing.
"""
import argparse
import tempfile
from pathlib import Path

from isoline import batch, phantoms


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="output folder (default: a new temporary folder)")
    ap.add_argument("--cases", type=int, default=8)
    ap.add_argument("--size", type=int, nargs=3, default=[128, 128, 48])
    ap.add_argument("--spacing", type=float, nargs=3, default=[3.0, 3.0, 5.0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scheduler", help="address of a running Dask scheduler")
    a = ap.parse_args()
    if a.out is None:  # made only when needed, so a run with --out leaves no empty temp folder
        a.out = Path(tempfile.mkdtemp(prefix="isoline-batch-"))

    cases = a.out / "cases"
    for s in range(a.cases):
        d = cases / f"hn{s:03d}"
        if not (d / "ct.nii.gz").exists():
            phantoms.write_phantom(phantoms.make_head_neck(100 + s, size=tuple(a.size), spacing=tuple(a.spacing)),
                                   str(d), dicom=False)
    print(f"{a.cases} cases in {cases}")

    report = batch.run_batch(cases, a.out / "results", "contour",
                             options={"structures": ["Brainstem", "SpinalCord", "Mandible", "Body"]},
                             scheduler=a.scheduler, n_workers=a.workers,
                             on_result=lambda cid, r: print(f"  {cid}: {r['status']} {r.get('seconds', '')} s "
                                                            f"{r.get('error', '')}", flush=True))
    print(f"done {len(report.done)}, failed {len(report.failed)}, skipped (already done) {len(report.skipped)}, "
          f"{report.seconds:.1f} s, {report.cases_per_minute:.1f} cases/min")
    print(f"manifest: {a.out / 'results' / 'manifest.json'}; one row per case: {a.out / 'results' / 'summary.csv'}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
