#!/usr/bin/python3
"""Recomputes the usual centroid positions (`expected.*.dx_mm/dy_mm`) of a model card from the
OpenKBP training split's reference masks on their own CT grids, with the body centre that the
C++ quality flags use (common.body_centre). The volume ranges and everything else in the card
stay as they are (`export.py` computes both from the training cache when a model is exported).

  /usr/bin/python3 contouring/train/refresh_expected.py --card contouring/models/hn_oar_ptv_2p5d.json \\
      --data ../shared/data/openkbp/train
"""
import argparse
import json
import os
import sys

import nibabel as nib
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import STRUCTURES, ranges_of  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--card", required=True)
    ap.add_argument("--data", required=True, help="OpenKBP split folder (pt_N/ct.nii.gz + <ROI>.nii.gz)")
    a = ap.parse_args()
    cases = []
    for n in sorted(os.listdir(a.data)):
        d = os.path.join(a.data, n)
        img = nib.load(os.path.join(d, "ct.nii.gz"))
        sp = tuple(float(x) for x in img.header.get_zooms()[:3])
        masks = {s: np.asarray(nib.load(os.path.join(d, s + ".nii.gz")).dataobj) > 0
                 for s in STRUCTURES if os.path.exists(os.path.join(d, s + ".nii.gz"))}
        cases.append((np.asarray(img.dataobj), masks, sp))
    r = ranges_of(cases)
    with open(a.card) as f:
        card = json.load(f)
    for s, e in card.get("expected", {}).items():
        if s in r:
            print(f"{s:13} dx {e['dx_mm']} -> {r[s]['dx_mm']}   dy {e['dy_mm']} -> {r[s]['dy_mm']}")
            e["dx_mm"], e["dy_mm"] = r[s]["dx_mm"], r[s]["dy_mm"]
    tmp = a.card + ".tmp"
    with open(tmp, "w") as f:
        json.dump(card, f, indent=2)
    os.replace(tmp, a.card)
    print(f"updated {a.card} ({len(cases)} training cases)")


if __name__ == "__main__":
    main()
