#!/usr/bin/python3
"""Dose and DVH: a 7-beam conformal plan on a generated head-and-neck phantom, dose with the
collapsed-cone engine, DVH metrics and the clinical criteria, RT-DOSE export.

    /usr/bin/python3 examples/dose_dvh.py --out /tmp/dose_demo [--device cuda]
"""
import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from isoline import core, dose, phantoms, planning, rtstruct

ROOT = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="output folder (default: a new temporary folder)")
    ap.add_argument("--size", type=int, nargs=3, default=[128, 128, 64])
    ap.add_argument("--spacing", type=float, nargs=3, default=[3.0, 3.0, 4.0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    a = ap.parse_args()
    if a.out is None:  # made only when needed, so a run with --out leaves no empty temp folder
        a.out = Path(tempfile.mkdtemp(prefix="isoline-dose-"))

    p = phantoms.make_head_neck(5, size=tuple(a.size), spacing=tuple(a.spacing))
    ptv = p.structures["PTV70"].mask
    # Isocentre at the PTV's centre of mass; jaws fitted to its extent (+7 mm), 7 equispaced beams.
    g = ptv.geometry
    k, j, i = np.nonzero(ptv.array)
    iso = g.index_to_world((i.mean(), j.mean(), k.mean()))
    pts = np.array([g.index_to_world((x, y, z)) for x, y, z in zip(i[::50], j[::50], k[::50])])
    half = np.abs(pts - iso).max(axis=0) + 7.0
    r_xy = float(np.hypot(half[0], half[1]))
    beams = [{"name": f"G{ga:03d}", "gantry_deg": ga, "mu": 100,
              "jaws_mm": [-r_xy, r_xy, -half[2], half[2]]} for ga in range(0, 360, 360 // 7)][:7]
    plan = dose.parse_plan(json.dumps({"name": "conformal7", "machine": "generic_6mv",
                                       "isocenter_mm": list(iso), "beams": beams}))
    print(plan, "devices here:", dose.devices())

    d = dose.compute_dose(p.ct, plan, device=a.device,
                          progress=lambda s, f, x: print(f"\r{s} {f:4.0%} {x:30.30}", end=""))
    print()
    # Scale the MU so that the PTV70 median dose is 70 Gy (normalisation, as a planner would).
    d70 = planning.compute_dvh(d, ptv, "PTV70").dose_at_percent(50)
    arr = d.array
    arr *= 70.0 / d70            # in place: the numpy view is the C++ image
    for b in plan.beams:
        b.mu *= 70.0 / d70

    dvhs = {s.name: planning.compute_dvh(d, s.mask, s.name) for s in p.structures}
    print(f"{'structure':14} {'mean':>6} {'D95%':>6} {'D2%':>6} {'max':>6}  (Gy)")
    for name, h in dvhs.items():
        print(f"{name:14} {h.mean_gy:6.1f} {h.dose_at_percent(95):6.1f} {h.dose_at_percent(2):6.1f} {h.max_gy:6.1f}")
    crit = planning.load_criteria(str(ROOT / "planning" / "criteria" / "hn.json"))
    print("\ncriteria:")
    for r in planning.evaluate_criteria(crit, dvhs):
        if r.evaluated:
            print(f"  {'PASS' if r.passed else 'FAIL'}  {r.criterion.description:40} {r.value:6.1f}")
    x, y = dvhs["PTV70"].cumulative(0.5)
    assert y[0] == 1.0 and abs(dvhs["PTV70"].dose_at_percent(50) - 70) < 0.5

    ct = rtstruct.write_ct_series(p.ct, str(a.out / "ct"), overwrite=True)
    rtstruct.write_rtstruct(p.structures, ct, str(a.out / "RS.dcm"))
    rd = rtstruct.write_rtdose(d, ct, str(a.out / "RD.dcm"), dose_comment="conformal7, scaled to PTV70 median 70 Gy")
    core.write_image(d, str(a.out / "dose.nii.gz"))
    print(f"\nwrote {a.out}/ct, RS.dcm, RD.dcm (quantisation error {rd.max_quantization_error_gy:.2g} Gy), dose.nii.gz")


if __name__ == "__main__":
    main()
