#!/usr/bin/python3
"""Achievable dose on OpenKBP patients: `isoline plan` (reference masks, default template) vs
the reference clinical dose, both evaluated with the same code (`isoline dvh --criteria`).

  /usr/bin/python3 planning/validation/openkbp_plans.py --split validation --out /tmp/kbp
  /usr/bin/python3 planning/validation/openkbp_plans.py --markdown /tmp/kbp/summary.json

Per patient: criteria passed by the plan and by the reference, PTV70 D99 of the plan, the
OpenKBP dose score (mean |plan - reference| over possible_dose_mask, on the CT grid), time.
Writes <out>/summary.json and prints a table. Re-runs reuse finished patients unless --force.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
from scipy import ndimage

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CRITERIA = os.path.join(ROOT, "planning", "criteria", "hn.json")
SKIP = {"ct.nii.gz", "dose.nii.gz", "possible_dose_mask.nii.gz"}


def criteria_table(isoline, dose, masks, supersample=0):
    """Criteria at voxel centres (supersample 0: the masks share the dose's CT grid), or on
    supersample^3 trilinear sub-samples per voxel (4: as a planning system computes them)."""
    cmd = [isoline, "dvh", "--quiet", "--dose", dose, "--masks", masks, "--criteria", CRITERIA]
    if supersample:
        cmd += ["--supersample", str(supersample)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"isoline dvh failed for {dose}: {out.stderr.strip()}")
    rows = {}
    for line in out.stdout.splitlines():
        m = re.match(r"^(\S+ \S+ [<>]= [\d.]+ Gy)\s+([-\d.]+)\s+(PASS|FAIL)", line)
        if m:
            rows[m.group(1)] = (float(m.group(2)), m.group(3) == "PASS")
    return rows


def resample_to(src, ref_img):
    """Linear resampling of a NIfTI image (a path or a loaded image) onto the grid of ref_img
    (world coordinates)."""
    if not hasattr(src, "affine"):
        src = nib.load(src)
    data = np.asarray(src.get_fdata(dtype=np.float32))
    vox2vox = np.linalg.inv(src.affine) @ ref_img.affine
    return ndimage.affine_transform(data, vox2vox[:3, :3], vox2vox[:3, 3], output_shape=ref_img.shape,
                                    order=1, mode="constant", cval=0.0)


def run_patient(isoline, pdir, out, force, template=None, device="cpu"):
    name = os.path.basename(pdir)
    work = os.path.join(out, name)
    masks = os.path.join(work, "masks")
    os.makedirs(masks, exist_ok=True)
    for f in os.listdir(pdir):
        if f.endswith(".nii.gz") and f not in SKIP and not os.path.exists(os.path.join(masks, f)):
            os.symlink(os.path.join(pdir, f), os.path.join(masks, f))
    plan_dir = os.path.join(work, "plan")
    metrics = os.path.join(plan_dir, "metrics.json")
    if force or not os.path.exists(metrics):
        t0 = time.time()
        r = subprocess.run([isoline, "plan", "--quiet", "--ct", os.path.join(pdir, "ct.nii.gz"), "--structures", masks,
                            "--out", plan_dir, "--device", device, "--overwrite"] + (["--template", template] if template else []),
                           capture_output=True, text=True)
        if r.returncode != 0:
            return {"patient": name, "error": r.stderr.strip()}
        wall = time.time() - t0
        with open(os.path.join(work, "wall.txt"), "w") as f:
            f.write(f"{wall}\n")
    wall = float(open(os.path.join(work, "wall.txt")).read()) if os.path.exists(os.path.join(work, "wall.txt")) else None
    m = json.load(open(metrics))
    # Both doses judged by the same code on the same masks.
    ref_dose = os.path.join(pdir, "dose.nii.gz")
    plan_crit = criteria_table(isoline, os.path.join(plan_dir, "dose.nii.gz"), masks)
    ref_crit = criteria_table(isoline, ref_dose, masks)
    plan_sub = criteria_table(isoline, os.path.join(plan_dir, "dose.nii.gz"), masks, 4)
    ref_sub = criteria_table(isoline, ref_dose, masks, 4)
    ref = nib.load(ref_dose)
    plan_img = nib.load(os.path.join(plan_dir, "dose.nii.gz"))
    ours = resample_to(plan_img, ref)
    pdm = np.asarray(nib.load(os.path.join(pdir, "possible_dose_mask.nii.gz")).dataobj) > 0
    score = float(np.mean(np.abs(ours[pdm] - np.asarray(ref.get_fdata(dtype=np.float32))[pdm])))
    ptv70 = [v for k, v in plan_crit.items() if k.startswith("PTV70 D99")]
    return {
        "patient": name,
        "plan_passed": sum(p for _, p in plan_crit.values()),
        "ref_passed": sum(p for _, p in ref_crit.values()),
        "evaluated": len(plan_crit),
        "plan_ptv70_d99_gy": ptv70[0][0] if ptv70 else None,
        "dose_score_gy": score,
        # The hottest voxel of each dose on its own grid (hot spots; openkbp_hot_spots.py has D2).
        "plan_max_dose_gy": round(float(np.asarray(plan_img.dataobj).max()), 2),
        "ref_max_dose_gy": round(float(np.asarray(ref.dataobj).max()), 2),
        "seconds": wall,
        "timing_s": m["timing_s"],
        "plan_criteria": {k: v[0] for k, v in plan_crit.items()},
        "ref_criteria": {k: v[0] for k, v in ref_crit.items()},
        "failed_plan": [k for k, v in plan_crit.items() if not v[1]],
        # The same criteria on 4 x 4 x 4 sub-samples per voxel (as a planning system computes them).
        "plan_passed_subvoxel": sum(p for _, p in plan_sub.values()),
        "ref_passed_subvoxel": sum(p for _, p in ref_sub.values()),
        "plan_ptv70_d99_gy_subvoxel": next((v[0] for k, v in plan_sub.items() if k.startswith("PTV70 D99")), None),
        "failed_plan_subvoxel": [k for k, v in plan_sub.items() if not v[1]],
    }


def markdown(summary_path):
    """The per-patient table of docs/validation.md from a summary.json."""
    s = json.load(open(summary_path))
    ok = [r for r in s["rows"] if "error" not in r]
    # Summaries written before the sub-voxel scores (session 22) have no sub-voxel columns.
    sub = all("plan_passed_subvoxel" in r for r in ok)
    sub_head = " sub-voxel: plan / reference | sub-voxel PTV70 D99 (Gy) |" if sub else ""
    print("| patient | criteria met: plan / reference (evaluated) | PTV70 D99 (Gy) |" + sub_head +
          " dose score (Gy) | plan time (s) | criteria the plan misses |")
    print("|---|---|---|" + ("---|---|" if sub else "") + "---|---|---|")
    for r in s["rows"]:
        if "error" in r:
            print(f"| {r['patient']} | error: {r['error']} |" + " |" * (6 if sub else 4))
            continue
        cells = ""
        if sub:
            d99 = r["plan_ptv70_d99_gy_subvoxel"]
            cells = f" {r['plan_passed_subvoxel']} / {r['ref_passed_subvoxel']} | {'-' if d99 is None else f'{d99:.2f}'} |"
        print(f"| {r['patient']} | {r['plan_passed']} / {r['ref_passed']} ({r['evaluated']}) | {r['plan_ptv70_d99_gy']:.2f} |"
              + cells + f" {r['dose_score_gy']:.2f} | {r['timing_s']['total']:.0f} | {', '.join(r['failed_plan']) or '-'} |")
    t = [r["timing_s"]["total"] for r in ok]
    print(f"\n{len(s['rows'])} patients: plan meets at least as many criteria as the reference on "
          f"{sum(r['plan_passed'] >= r['ref_passed'] for r in ok)} ({100 * s['fraction_meeting_reference']:.1f} %); "
          f"min PTV70 D99 {s['min_ptv70_d99_gy']:.2f} Gy; mean dose score {s['mean_dose_score_gy']:.2f} Gy; "
          f"plan time (influence + optimisation + final dose) mean {np.mean(t):.1f} s, median {np.median(t):.1f} s, max {np.max(t):.1f} s; "
          f"criteria met in total: plan {sum(r['plan_passed'] for r in ok)}, reference {sum(r['ref_passed'] for r in ok)} "
          f"of {sum(r['evaluated'] for r in ok)}" +
          (f"; sub-voxel (4 x 4 x 4 samples per voxel, as a planning system computes them): plan "
           f"{sum(r['plan_passed_subvoxel'] for r in ok)}, reference {sum(r['ref_passed_subvoxel'] for r in ok)}, "
           f"min PTV70 D99 {min(r['plan_ptv70_d99_gy_subvoxel'] for r in ok if r['plan_ptv70_d99_gy_subvoxel'] is not None):.2f} Gy"
           if sub else ""))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--markdown":
        return markdown(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "openkbp"))
    ap.add_argument("--split", default="validation")
    ap.add_argument("--patients", nargs="*", help="pt_N names (default: the whole split)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--isoline", default=os.path.join(ROOT, "build", "bin", "isoline"))
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--template", help="plan template (default: isoline plan's, hn)")
    a = ap.parse_args()
    split = os.path.join(a.data, a.split)
    if not os.path.isdir(split):
        sys.exit(f"error: {split}: no such directory (OpenKBP data missing)")
    names = a.patients or sorted(os.listdir(split), key=lambda s: int(s.split("_")[1]))
    rows = []
    print(f"{'patient':9} {'plan':>5} {'ref':>4} {'PTV70 D99':>9} {'score Gy':>8} {'time s':>7}  failed (plan)")
    for n in names:
        r = run_patient(a.isoline, os.path.join(split, n), a.out, a.force, a.template)
        rows.append(r)
        if "error" in r:
            print(f"{n:9} error: {r['error']}")
            continue
        print(f"{n:9} {r['plan_passed']:>3}/{r['evaluated']:<2}{r['ref_passed']:>3} {r['plan_ptv70_d99_gy'] or float('nan'):9.2f} "
              f"{r['dose_score_gy']:8.2f} {r['seconds'] or float('nan'):7.1f}  {', '.join(r['failed_plan'])}", flush=True)
    ok = [r for r in rows if "error" not in r]
    summary = {
        "patients": len(rows),
        "errors": len(rows) - len(ok),
        "fraction_meeting_reference": sum(r["plan_passed"] >= r["ref_passed"] for r in ok) / max(1, len(rows)),
        "fraction_meeting_reference_subvoxel":
            sum(r["plan_passed_subvoxel"] >= r["ref_passed_subvoxel"] for r in ok) / max(1, len(rows)),
        "criteria_met": {"plan": sum(r["plan_passed"] for r in ok), "reference": sum(r["ref_passed"] for r in ok),
                         "plan_subvoxel": sum(r["plan_passed_subvoxel"] for r in ok),
                         "reference_subvoxel": sum(r["ref_passed_subvoxel"] for r in ok),
                         "evaluated": sum(r["evaluated"] for r in ok)},
        "min_ptv70_d99_gy": min((r["plan_ptv70_d99_gy"] for r in ok if r["plan_ptv70_d99_gy"] is not None), default=None),
        "mean_dose_score_gy": float(np.mean([r["dose_score_gy"] for r in ok])) if ok else None,
        "mean_max_dose_gy": float(np.mean([r["plan_max_dose_gy"] for r in ok])) if ok else None,
        "worst_max_dose_gy": max((r["plan_max_dose_gy"] for r in ok), default=None),
        "mean_seconds": float(np.mean([r["seconds"] for r in ok if r["seconds"]])) if ok else None,
        "max_seconds": float(np.max([r["seconds"] for r in ok if r["seconds"]])) if ok else None,
        "rows": rows,
    }
    tmp = os.path.join(a.out, "summary.json.tmp")
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=1)
    os.replace(tmp, os.path.join(a.out, "summary.json"))
    print(f"plan meets >= reference criteria on {summary['fraction_meeting_reference']*100:.1f} % of {len(rows)} patients; "
          f"min PTV70 D99 {summary['min_ptv70_d99_gy']}; mean dose score {summary['mean_dose_score_gy']}; "
          f"maximum dose mean {summary['mean_max_dose_gy']}, worst {summary['worst_max_dose_gy']} Gy; "
          f"mean time {summary['mean_seconds']}")
    c = summary["criteria_met"]
    print(f"criteria met of {c['evaluated']}: at voxel centres plan {c['plan']}, reference {c['reference']}; "
          f"on 4 x 4 x 4 sub-samples (as a planning system computes them) plan {c['plan_subvoxel']}, "
          f"reference {c['reference_subvoxel']} (plan >= reference on "
          f"{summary['fraction_meeting_reference_subvoxel']*100:.1f} % of patients)")


if __name__ == "__main__":
    main()
