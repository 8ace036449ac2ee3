#!/usr/bin/python3
"""Hot spots of `openkbp_plans.py` runs: per run directory (its --out), the mean and worst
maximum dose of the plans, PTV70 D2 (the plan's dose resampled linearly onto the CT grid, on
the reference PTV70 mask), how many plans have PTV70 D2 above 110 % of 70 Gy, and how many
carry a "hot spot" warning; the clinical reference dose the same way.

    /usr/bin/python3 planning/validation/openkbp_hot_spots.py /tmp/kbp_hn /tmp/kbp_tps
"""
import argparse
import json
import os

import nibabel as nib
import numpy as np

from openkbp_plans import ROOT, resample_to


def figures(doses):
    a = np.array([d[:2] for d in doses])
    return (f"mean maximum {a[:, 0].mean():.1f} Gy, worst {a[:, 0].max():.1f} Gy; PTV70 D2 mean {a[:, 1].mean():.1f} Gy, "
            f"worst {a[:, 1].max():.1f} Gy, above 77 Gy on {(a[:, 1] > 77.0).sum()} of {len(a)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="output directories of openkbp_plans.py")
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "openkbp", "validation"))
    a = ap.parse_args()
    patients = sorted((p for p in os.listdir(a.runs[0]) if p.startswith("pt_")), key=lambda s: int(s.split("_")[1]))
    ref, runs = [], {r: [] for r in a.runs}
    for p in patients:
        ct = nib.load(os.path.join(a.data, p, "ct.nii.gz"))
        ptv = np.asarray(nib.load(os.path.join(a.data, p, "PTV70.nii.gz")).dataobj) > 0
        r = np.asarray(nib.load(os.path.join(a.data, p, "dose.nii.gz")).dataobj)
        ref.append((float(r.max()), float(np.percentile(r[ptv], 98))))
        for run in a.runs:
            f = os.path.join(run, p, "plan", "dose.nii.gz")
            if not os.path.exists(f):
                continue
            img = nib.load(f)
            d = np.asarray(img.dataobj)
            on_ct = resample_to(img, ct)
            warnings = json.load(open(os.path.join(run, p, "plan", "metrics.json")))["warnings"]
            runs[run].append((float(d.max()), float(np.percentile(on_ct[ptv], 98)),
                              any("hot spot" in w for w in warnings)))
    print(f"clinical reference: {figures(ref)}")
    for run, doses in runs.items():
        if doses:
            print(f"{run}: {figures(doses)}; hot-spot warnings on {sum(d[2] for d in doses)}")


if __name__ == "__main__":
    main()
