"""Choose the model card's quality-flag cuts (`quality_flags`) from contours scored against
references: how well "low confidence" (mean network probability inside the contour below a cut)
and "in pieces" (the kept part holds less than a share of the network's voxels) pick out the
contours that failed.

Input: the output folder of contouring/train/run_validation.py (OUT/metrics.json from `isoline
eval contours`, OUT/pred/<case>/quality.json from `isoline contour`), by default on the
validation split, which issue 5 allows for model selection.

  /usr/bin/python3 contouring/train/choose_quality_flags.py /tmp/val [/tmp/train ...] [--fail 0.5]

For every candidate cut it prints, over the OARs and over the targets, how many contours the
flag marks, their mean Dice against the others', and how many of them failed (Dice < --fail).
The chosen cut is the highest at which at least two thirds of the OARs it marks on the FIRST
folder failed (a flag right twice as often as it is wrong); further folders (e.g. training
patients, on which the network does better than on new ones) are printed for information.
Prints the --quality-flags argument for export.py.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

OARS = ["Brainstem", "SpinalCord", "RightParotid", "LeftParotid", "Esophagus", "Larynx", "Mandible"]
CONFIDENCE_CUTS = [0.75, 0.80, 0.85, 0.88, 0.90, 0.92]
KEPT_CUTS = [0.5, 0.7, 0.8, 0.85, 0.9, 0.95]


def load(out):
    """[(structure, dice, confidence, kept_fraction, case)] for every scored contour."""
    out = Path(out)
    m = json.loads((out / "metrics.json").read_text())
    rows = []
    for c in m["cases"]:
        if c.get("dice") is None:
            continue
        qf = out / "pred" / c["case"] / "quality.json"
        if not qf.exists():
            sys.exit(f"{qf}: missing (run_validation.py writes it with the masks)")
        q = json.loads(qf.read_text())["structures"].get(c["structure"])
        if q is None:
            continue
        if "kept_fraction" not in q:
            sys.exit(f"{qf}: no kept_fraction (written by isoline contour from session 14 on)")
        rows.append((c["structure"], float(c["dice"]), float(q["confidence"]), float(q["kept_fraction"]), c["case"]))
    return rows


def table(rows, value, cuts, fail, label):
    """Rows of (cut, n marked, failed among them, mean Dice marked, mean Dice rest) per group."""
    chosen = None
    print(f"\n{label}: flag when the value is below the cut; failed = Dice < {fail}")
    print(f"{'cut':>6} | {'OARs marked':>11} {'failed':>6} {'Dice':>6} {'rest':>6} | "
          f"{'targets marked':>14} {'failed':>6} {'Dice':>6} {'rest':>6}")
    for cut in cuts:
        cells = []
        for group in (True, False):
            sel = [r for r in rows if (r[0] in OARS) == group]
            d = np.array([r[1] for r in sel])
            v = np.array([value(r) for r in sel])
            lo = v < cut
            failed = int((d[lo] < fail).sum())
            cells.append((int(lo.sum()), failed, d[lo].mean() if lo.any() else float("nan"),
                          d[~lo].mean() if (~lo).any() else float("nan")))
            if group and lo.any() and 3 * failed >= 2 * lo.sum():
                chosen = cut
        (n1, f1, a1, b1), (n2, f2, a2, b2) = cells
        print(f"{cut:6.2f} | {n1:11d} {f1:6d} {a1:6.3f} {b1:6.3f} | {n2:14d} {f2:6d} {a2:6.3f} {b2:6.3f}")
    return chosen


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="+", help="run_validation.py's output folders; the first one decides")
    ap.add_argument("--fail", type=float, default=0.5, help="a contour with a lower Dice counts as failed")
    a = ap.parse_args()
    choice = None
    for out in a.out:
        rows = load(out)
        oar = [r for r in rows if r[0] in OARS]
        print(f"\n== {out}: {len(rows)} scored contours ({len(oar)} OARs), "
              f"{sum(r[1] < a.fail for r in oar)} OARs and "
              f"{sum(r[1] < a.fail for r in rows if r[0] not in OARS)} targets with Dice < {a.fail}")
        conf = table(rows, lambda r: r[2], CONFIDENCE_CUTS, a.fail, "low confidence (mean network probability)")
        kept = table(rows, lambda r: r[3], KEPT_CUTS, a.fail, "in pieces (share of the network's voxels kept)")
        if choice is None:
            choice = (conf if conf else 0.75, kept if kept else 0)
    print(f"\nchosen on {a.out[0]}: --quality-flags {choice[0]}:{choice[1]}")


if __name__ == "__main__":
    main()
