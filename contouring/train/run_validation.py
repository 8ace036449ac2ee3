"""Contour every OpenKBP validation patient with the `isoline` binary and score the result
with `isoline eval contours` (the figures reported in docs/validation.md and the model card).

  /usr/bin/python3 contouring/train/run_validation.py --isoline build/bin/isoline \
      --data ../shared/data/openkbp/validation --out /tmp/val [--model card.json]

Writes OUT/pred/pt_N/<Structure>.nii.gz (replacing an earlier run's), OUT/metrics.json (eval's
JSON), OUT/dice.svg (eval's picture of every case's Dice) and prints eval's table. Returns the
summary dict.
"""
import argparse, json, os, subprocess, sys, time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import OARS, STRUCTURES  # noqa: E402


def run(isoline, data, out, model=None, log=print):
    data, out = Path(data), Path(out)
    pred = out / "pred"
    pred.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if model:
        env["ISOLINE_MODEL"] = str(model)
    cases = sorted((p for p in data.iterdir() if p.is_dir()), key=lambda p: int(p.name.split("_")[-1]))
    t0 = time.time()
    for c in cases:
        subprocess.run([str(isoline), "contour", str(c / "ct.nii.gz"), "--out", str(pred / c.name),
                        "--structures", ",".join(STRUCTURES), "--quiet", "--overwrite"], check=True, env=env)
    t_contour = time.time() - t0
    p = subprocess.run([str(isoline), "eval", "contours", "--pred", str(pred), "--ref", str(data),
                        "--structures", ",".join(STRUCTURES), "--json", str(out / "metrics.json"),
                        "--plot", str(out / "dice.svg")],
                       check=True, capture_output=True, text=True, env=env)
    log(p.stdout)
    m = json.loads((out / "metrics.json").read_text())
    s = m["structures"]
    oar = [s[o]["dice_mean"] for o in OARS if o in s]
    summary = {"cases": len(cases), "mean_oar_dice": sum(oar) / len(oar), "min_oar_dice": min(oar),
               "mandible_dice": s["Mandible"]["dice_mean"], "ptv70_dice": s["PTV70"]["dice_mean"],
               "contour_seconds_per_case": t_contour / len(cases)}
    unflagged = [s[o].get("dice_mean_unflagged") for o in OARS if o in s]
    if all(v is not None for v in unflagged):  # eval's reference check (the model card's usual volumes)
        summary["mean_oar_dice_unflagged_references"] = sum(unflagged) / len(unflagged)
        summary["flagged_references"] = [f"{c['case']} {c['structure']}: {c['ref_flag']}"
                                         for c in m["cases"] if c.get("ref_flag")]
    m["summary"] = summary
    (out / "metrics.json").write_text(json.dumps(m, indent=1))
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--isoline", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--model")
    a = ap.parse_args()
    m = run(a.isoline, a.data, a.out, a.model)
    print(json.dumps(m["summary"], indent=1))


if __name__ == "__main__":
    main()
