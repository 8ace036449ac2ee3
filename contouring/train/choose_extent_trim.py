"""Choose the cranio-caudal extent trims of the model card on the TRAINING split (never on the
validation split, which reports the result).

The 2.5D network sees five slices; where a structure's ends are set by contouring convention
rather than by a visible edge (Larynx, Esophagus, Brainstem) it runs on past the reference.
For each structure this script tries removing 0-30 mm (2.5 mm steps) from the inferior and
from the superior end of every prediction (whole slices, by centre, as contour.cpp does) and keeps the pair with the best mean Dice against the
reference masks, when it beats no trim by at least --min-gain; export.py --trim writes the
lengths (mm) into the model card and `isoline contour` applies them (contour.cpp, trim_extent).

  /usr/bin/python3 contouring/train/run_validation.py --isoline build/bin/isoline \\
      --data ../shared/data/openkbp/train --out /tmp/train_pred --model CARD_WITHOUT_TRIMS.json
  /usr/bin/python3 contouring/train/choose_extent_trim.py --data ../shared/data/openkbp/train \\
      --pred /tmp/train_pred/pred

The predictions must come from a card without trims. Prints a table and the --trim argument.
"""
import argparse
import os

import nibabel as nib
import numpy as np

OARS = ["Brainstem", "SpinalCord", "RightParotid", "LeftParotid", "Esophagus", "Larynx", "Mandible"]
TRIMS_MM = np.arange(0.0, 30.01, 2.5)


def slice_sums(ref, pred, superior_last):
    """Per axial slice, inferior first: |ref & pred|, |pred|; and |ref|."""
    inter = (ref & pred).sum(axis=(0, 1)).astype(float)
    pa = pred.sum(axis=(0, 1)).astype(float)
    if not superior_last:
        inter, pa = inter[::-1], pa[::-1]
    return inter, pa, float(ref.sum())


def dice_table(inter, pa, rtot, thickness):
    """Dice for every (inferior, superior) trim of TRIMS_MM: a slice is removed when its centre
    lies less than the trim from the end slice's centre (contour.cpp's trim_extent)."""
    z = np.nonzero(pa)[0]
    n = [int(np.ceil((t - 1e-3) / thickness)) if t > 0 else 0 for t in TRIMS_MM]
    out = np.zeros((len(TRIMS_MM), len(TRIMS_MM)))
    for a in range(len(TRIMS_MM)):
        for b in range(len(TRIMS_MM)):
            if len(z) == 0:
                lo, hi = 0, -1
            else:
                lo, hi = z[0] + n[a], z[-1] - n[b]
            keep = slice(lo, hi + 1) if hi >= lo else slice(None)  # never emptied (contour.cpp)
            num = 2 * inter[keep].sum()
            den = rtot + pa[keep].sum()
            out[a, b] = num / den if den > 0 else 1.0
    return out


def best_trim(tables, min_gain):
    """(inferior index, superior index, mean Dice table) of the best mean Dice; (0, 0) when the
    gain over no trim is below min_gain."""
    mean = np.mean(tables, axis=0)
    ia, ib = np.unravel_index(np.argmax(mean), mean.shape)
    if mean[ia, ib] - mean[0, 0] < min_gain:
        ia, ib = 0, 0
    return int(ia), int(ib), mean


def cross_validated(tables, k, min_gain):
    """Mean Dice when each of k folds (patient i in fold i % k) gets the trim chosen on the
    others: an unbiased estimate of what a trim chosen on these patients does on new ones."""
    dice = []
    for f in range(k):
        rest = [t for i, t in enumerate(tables) if i % k != f]
        ia, ib, _ = best_trim(rest, min_gain)
        dice += [t[ia, ib] for i, t in enumerate(tables) if i % k == f]
    return float(np.mean(dice))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="OpenKBP split with reference masks (training)")
    ap.add_argument("--pred", required=True, help="isoline contour --out folders, one per patient")
    ap.add_argument("--min-gain", type=float, default=0.005, help="mean Dice gain needed to trim")
    ap.add_argument("--cross-validate", type=int, default=0, metavar="K",
                    help="also print the K-fold cross-validated mean Dice of the choice")
    a = ap.parse_args()
    chosen = {}
    print(f"{'structure':13s} {'n':>4s} {'no trim':>8s} {'best':>6s} inferior / superior trim")
    for s in OARS:
        tables = []
        for pt in sorted(os.listdir(a.pred)):
            rf, pf = os.path.join(a.data, pt, f"{s}.nii.gz"), os.path.join(a.pred, pt, f"{s}.nii.gz")
            if not (os.path.exists(rf) and os.path.exists(pf)):
                continue
            rimg = nib.load(rf)
            ref = np.asarray(rimg.dataobj) > 0
            if not ref.any():
                continue
            pred = np.asarray(nib.load(pf).dataobj) > 0
            superior_last = rimg.affine[2, 2] > 0  # RAS: +z superior
            tables.append(dice_table(*slice_sums(ref, pred, superior_last), abs(rimg.affine[2, 2])))
        if not tables:
            continue
        mean = np.mean(tables, axis=0)
        ia, ib = np.unravel_index(np.argmax(mean), mean.shape)
        gain = mean[ia, ib] - mean[0, 0]
        use = gain >= a.min_gain
        cv = (f"  {a.cross_validate}-fold cross-validated {cross_validated(tables, a.cross_validate, a.min_gain):.3f}"
              if a.cross_validate > 1 else "")
        print(f"{s:13s} {len(tables):4d} {mean[0, 0]:8.3f} {mean[ia, ib]:6.3f} "
              f"{TRIMS_MM[ia]:4.1f} / {TRIMS_MM[ib]:4.1f} mm{'' if use else '  (not used: gain < min-gain)'}{cv}")
        if use:
            chosen[s] = (TRIMS_MM[ia], TRIMS_MM[ib])
    arg = ",".join(f"{s}:{i:g}:{j:g}" for s, (i, j) in chosen.items())
    print(f"\nexport.py --trim '{arg}'")


if __name__ == "__main__":
    main()
