"""Choose the bone threshold of the Mandible re-drawing on the TRAINING split (never on the
validation split, which reports the result).

  /usr/bin/python3 contouring/train/run_validation.py --isoline build/bin/isoline \
      --data ../shared/data/openkbp/train --out /tmp/train_pred --model CARD_WITHOUT_POST.json
  /usr/bin/python3 contouring/train/choose_bone_threshold.py --data ../shared/data/openkbp/train \
      --pred /tmp/train_pred/pred [--limit N]

The predictions must come from the network without the re-drawing (export.py --bone-refine '').
For each margin and threshold it applies what contour.cpp does on the CT grid (the prediction
grown by the margin in mm, an ellipsoid on the voxel grid as core::expand; kept where HU > T;
the largest 26-connected component; 3-D cavities filled) and prints the mean Dice against the
reference Mandible; the best pair goes into export.py --bone-refine.
"""
import argparse
import glob
import os
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import largest_component  # noqa: E402

THRESHOLDS = (0, 50, 100, 150, 200, 250)
MARGINS_MM = (2.0, 3.0, 4.0, 5.5)


def ball(spacing, r):
    """Voxel offsets whose centre lies within r mm (core::expand's uniform margin)."""
    n = [int(np.floor(r / s)) for s in spacing]
    g = np.meshgrid(*[np.arange(-k, k + 1) * s for k, s in zip(n, spacing)], indexing="ij")
    return sum(x * x for x in g) <= r * r + 1e-6


def redraw(pred, ct, t, se):
    return ndi.binary_fill_holes(largest_component(ndi.binary_dilation(pred, structure=se) & (ct > t)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="OpenKBP split with ct.nii.gz and Mandible.nii.gz per patient")
    ap.add_argument("--pred", required=True, help="run_validation.py's pred/ folder for that split")
    ap.add_argument("--structure", default="Mandible")
    ap.add_argument("--limit", type=int, default=0, help="only the first N patients (by number) with a reference")
    a = ap.parse_args()
    pts = sorted((os.path.basename(p) for p in glob.glob(os.path.join(a.pred, "pt_*"))),
                 key=lambda n: int(n.split("_")[1]))
    scores = {"network": []}
    used = []
    for pt in pts:
        ref_p = os.path.join(a.data, pt, a.structure + ".nii.gz")
        pred_p = os.path.join(a.pred, pt, a.structure + ".nii.gz")
        if not (os.path.exists(ref_p) and os.path.exists(pred_p)):
            continue
        if a.limit and len(used) >= a.limit:
            break
        used.append(pt)
        ref = np.asarray(nib.load(ref_p).dataobj) > 0
        pred = np.asarray(nib.load(pred_p).dataobj) > 0
        img = nib.load(os.path.join(a.data, pt, "ct.nii.gz"))
        ct = np.asarray(img.dataobj).astype(np.float32)
        spacing = [float(v) for v in img.header.get_zooms()[:3]]
        dice = lambda m: 2 * (m & ref).sum() / max(int(m.sum() + ref.sum()), 1)  # noqa: E731
        scores["network"].append(dice(pred))
        for r in MARGINS_MM:
            se = ball(spacing, r)
            for t in THRESHOLDS:
                scores.setdefault((r, t), []).append(dice(redraw(pred, ct, t, se)))
    if not used:
        raise SystemExit(f"no patient in {a.pred} has both a prediction and a reference {a.structure}")
    print(f"{len(used)} patients ({used[0]} .. {used[-1]}), mean {a.structure} Dice:")
    for k, v in scores.items():
        label = "network alone" if k == "network" else f"{k[0]} mm, HU > {k[1]}"
        print(f"  {label:>20}: {np.mean(v):.4f}")
    best = max((k for k in scores if k != "network"), key=lambda k: np.mean(scores[k]))
    print(f"best: margin {best[0]} mm, threshold {best[1]} HU (export.py --bone-refine Mandible:{best[1]}:{best[0]})")


if __name__ == "__main__":
    main()
