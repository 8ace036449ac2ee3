"""Planning figures (issue 7). One function per key group; run() merges them.

DVH accuracy against a TPS: `isoline dvh` on the Eclipse prostate phantom (Eclipse's
RT-STRUCT and plan dose) against Eclipse's own DVH table: D95, D50, D2 and mean of every ROI
over 5 cc, largest error in % of the prescription (from the RT Plan).
"""
import csv
import json
import sys
from pathlib import Path

DVH_KEYS = ["dvh_max_error_percent_rx_eclipse"]
PLAN_KEYS = ["plan_fraction_meeting_reference_criteria", "plan_min_ptv70_d99_gy", "plan_dose_score_gy",
             "plan_fraction_meeting_reference_criteria_subvoxel", "plan_min_ptv70_d99_gy_subvoxel",
             "plan_mean_max_dose_gy", "plan_worst_max_dose_gy", "plan_seconds_per_patient_cpu", "plan_seconds_per_patient_cuda", "plan_peak_rss_mib"]
KEYS = DVH_KEYS + PLAN_KEYS


def _squash(s):
    return "".join(c for c in s.lower() if c not in " _-")


def read_eclipse_table(path):
    """{roi: (volume_cc, [dose Gy], [volume %])} from an Eclipse DVH table export."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    out = {}
    for c in range(0, len(header) - 1, 2):
        name = header[c].split("_DvhArray")[0]
        vol = float(header[c + 1].split("% of ")[1].split(" cc")[0])
        dose = [float(r[c]) for r in body if len(r) > c + 1 and r[c] != ""]
        pct = [float(r[c + 1]) for r in body if len(r) > c + 1 and r[c] != ""]
        out[name] = (vol, dose, pct)
    return out


def table_dose_at_percent(dose, pct, p):
    """Dose where the cumulative curve falls to p % (linear between table points)."""
    for i in range(1, len(dose)):
        if pct[i] < p:
            t = (pct[i - 1] - p) / (pct[i - 1] - pct[i])
            return dose[i - 1] + t * (dose[i] - dose[i - 1])
    return dose[-1]


def table_mean(dose, pct):
    """Mean dose = integral of the cumulative fraction over dose (trapezoids)."""
    return sum(0.5 * (pct[i] + pct[i - 1]) / 100.0 * (dose[i] - dose[i - 1]) for i in range(1, len(dose)))


def prescription_gy(rp_path):
    import pydicom  # /usr/bin/python3 has it

    d = pydicom.dcmread(str(rp_path))
    return max(float(r.TargetPrescriptionDose) for r in d.DoseReferenceSequence
               if "TargetPrescriptionDose" in r)


def eclipse_comparison(ctx, pixel_mm=1.0):
    """Per-ROI rows (isoline vs Eclipse) and the prescription; None when data are missing."""
    d = ctx.shared / "eclipse_phantoms"
    need = [d / "RS_EclipseProstate.dcm", d / "RP_EclipseProstate.dcm",
            d / "EclipseProstate_Dose.nrrd", d / "EclipseProstate_DvhTable_Eclipse.csv"]
    if not all(p.exists() for p in need):
        return None, None
    rx = prescription_gy(need[1])
    out = ctx.work / "dvh_eclipse.json"
    ctx.run(ctx.isoline, "dvh", "-q", "--dose", need[2], "--rtstruct", need[0],
            "--pixel", pixel_mm, "--json", out)
    ours = {_squash(s["name"]): s for s in json.loads(out.read_text())["structures"]}
    rows = []
    for name, (vol, dose, pct) in read_eclipse_table(need[3]).items():
        s = ours.get(_squash(name))
        if s is None:
            raise RuntimeError(f"isoline dvh gave no DVH for Eclipse ROI {name}")
        ecl = {"D95": table_dose_at_percent(dose, pct, 95), "D50": table_dose_at_percent(dose, pct, 50),
               "D2": table_dose_at_percent(dose, pct, 2), "Dmean": table_mean(dose, pct)}
        iso = {"D95": s["d95_gy"], "D50": s["d50_gy"], "D2": s["d2_gy"], "Dmean": s["mean_gy"]}
        rows.append({"roi": name, "volume_eclipse_cc": vol, "volume_isoline_cc": s["volume_cc"],
                     "eclipse": ecl, "isoline": iso})
    return rows, rx


def dvh_figures(ctx):
    rows, rx = eclipse_comparison(ctx)
    if rows is None:
        return {k: None for k in DVH_KEYS}
    worst = max(abs(r["isoline"][m] - r["eclipse"][m]) for r in rows if r["volume_eclipse_cc"] > 5.0
                for m in ("D95", "D50", "D2", "Dmean"))
    return {"dvh_max_error_percent_rx_eclipse": round(100.0 * worst / rx, 3)}


def plan_figures(ctx):
    """`isoline plan` (default template hn, reference masks) on the OpenKBP validation patients
    against the clinical reference dose, both judged by `isoline dvh --criteria`
    (planning/validation/openkbp_plans.py). ISOLINE_BENCH_PLAN_PATIENTS=pt_201,pt_202 limits
    the set (default: the whole validation split, about 33 patients x 1-2 min on 2 cores)."""
    import os
    import resource

    split = ctx.shared / "openkbp" / "validation"
    if not split.is_dir():
        return {k: None for k in PLAN_KEYS}
    sys.path.insert(0, str(ctx.root / "planning" / "validation"))
    import openkbp_plans

    names = os.environ.get("ISOLINE_BENCH_PLAN_PATIENTS")
    names = names.split(",") if names else sorted((p.name for p in split.iterdir()), key=lambda s: int(s.split("_")[1]))
    out = ctx.work / "plans"
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in names:
        r = openkbp_plans.run_patient(str(ctx.isoline), str(split / n), str(out), force=True)
        if "error" in r:
            raise RuntimeError(f"isoline plan failed on {n}: {r['error']}")
        rows.append(r)
    with open(out / "summary.json", "w") as f:
        json.dump(rows, f, indent=1)
    rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # The same plans with --device cuda (influence matrix and optimiser products on the GPU),
    # where this build and host have a usable CUDA device; None elsewhere.
    cuda_seconds = None
    try:
        cuda_rows = []
        for n in names:
            r = openkbp_plans.run_patient(str(ctx.isoline), str(split / n), str(ctx.work / "plans_cuda"), force=True,
                                          device="cuda")
            if "error" in r:
                raise RuntimeError(r["error"])
            cuda_rows.append(r)
        cuda_seconds = round(sum(r["timing_s"]["total"] for r in cuda_rows) / len(cuda_rows), 2)
    except RuntimeError as e:
        print(f"   plans on CUDA: not measured here ({str(e).splitlines()[-1][:120]})")
    return {
        "plan_fraction_meeting_reference_criteria": round(sum(r["plan_passed"] >= r["ref_passed"] for r in rows) / len(rows), 3),
        "plan_min_ptv70_d99_gy": round(min(r["plan_ptv70_d99_gy"] for r in rows if r["plan_ptv70_d99_gy"] is not None), 2),
        "plan_dose_score_gy": round(sum(r["dose_score_gy"] for r in rows) / len(rows), 3),
        # The same two figures on 4 x 4 x 4 sub-samples per voxel: the DVH a planning system
        # computes from RS.dcm + RD.dcm, which the default template's edge samples aim at.
        "plan_fraction_meeting_reference_criteria_subvoxel": round(
            sum(r["plan_passed_subvoxel"] >= r["ref_passed_subvoxel"] for r in rows) / len(rows), 3),
        "plan_min_ptv70_d99_gy_subvoxel": round(min(r["plan_ptv70_d99_gy_subvoxel"] for r in rows
                                                    if r["plan_ptv70_d99_gy_subvoxel"] is not None), 2),
        # Hot spots: the hottest voxel of each plan (the clinical references' are at most 78.3 Gy).
        "plan_mean_max_dose_gy": round(sum(r["plan_max_dose_gy"] for r in rows) / len(rows), 2),
        "plan_worst_max_dose_gy": max(r["plan_max_dose_gy"] for r in rows),
        # influence matrix + optimisation + final dose, as timed inside `isoline plan`
        "plan_seconds_per_patient_cpu": round(sum(r["timing_s"]["total"] for r in rows) / len(rows), 1),
        "plan_seconds_per_patient_cuda": cuda_seconds,
        "plan_peak_rss_mib": round(rss_kib / 1024.0, 0),
    }


def run(ctx):
    figures = {}
    figures.update(dvh_figures(ctx))
    figures.update(plan_figures(ctx))
    return figures


if __name__ == "__main__":
    # Prints the per-ROI table for docs/validation.md: bench/bench_planning.py [BUILD_DIR] [PIXEL_MM]
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import ROOT, Context

    ctx = Context((ROOT / (sys.argv[1] if len(sys.argv) > 1 else "build")).resolve())
    rows, rx = eclipse_comparison(ctx, float(sys.argv[2]) if len(sys.argv) > 2 else 1.0)
    print(f"prescription {rx:g} Gy; 1 % = {0.01 * rx:.2f} Gy\n")
    print("| ROI | volume Eclipse / isoline (cc) | D95 Eclipse / isoline (Gy) | D50 | D2 | mean | max error (% Rx) |")
    print("|---|---|---|---|---|---|---|")
    worst = 0.0
    for r in rows:
        cells = []
        err = 0.0
        for m in ("D95", "D50", "D2", "Dmean"):
            e, i = r["eclipse"][m], r["isoline"][m]
            err = max(err, abs(i - e))
            cells.append(f"{e:.2f} / {i:.2f} ({i - e:+.2f})")
        worst = max(worst, err)
        print(f"| {r['roi']} | {r['volume_eclipse_cc']:.1f} / {r['volume_isoline_cc']:.1f} | "
              + " | ".join(cells) + f" | {100 * err / rx:.2f} |")
    print(f"\nmax |error| {worst:.3f} Gy = {100 * worst / rx:.2f} % of Rx")
