"""Choose per-structure probability thresholds for the model card on the TRAINING split (never
on the validation split, which reports the result).

The network is trained with positives weighted x10 in the BCE, which shifts its sigmoid
outputs upwards; 0.5 is then not necessarily the best cut for every structure. This script runs
the exported TorchScript module (mirror averaging included, as `isoline contour` runs it) on the
model-grid cache of the training patients, counts for every candidate threshold the Dice of
each delineated structure, and keeps per structure the threshold with the best mean Dice when
it beats the card's global threshold by at least --min-gain. The same counts on the validation
split are printed for information only. export.py --threshold writes the choice into the card.

  /usr/bin/python3 contouring/train/choose_thresholds.py --model contouring/models/hn_oar_ptv_2p5d.pt

Prints a table and the --threshold argument for export.py.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import OARS, STRUCTURES, card_context  # noqa: E402
import train  # noqa: E402
from train import load_cache, predict_volume  # noqa: E402

CANDIDATES = np.round(np.arange(0.20, 0.851, 0.05), 2)


def counts(model, cases):
    """{structure: [(inter[t], pred[t], ref) per delineated case]} for t in CANDIDATES."""
    out = {s: [] for s in STRUCTURES}
    for n, c in enumerate(cases):
        prob = predict_volume(model, c["ct"])
        for k, s in enumerate(STRUCTURES):
            if c["present"][k] < 0.5:
                continue
            ref = ((c["bits"] >> k) & 1).astype(bool)
            p = prob[k]
            inter = np.array([(p[ref] >= t).sum() for t in CANDIDATES], float)
            pred = np.array([(p >= t).sum() for t in CANDIDATES], float)
            out[s].append((inter, pred, float(ref.sum())))
        print(f"  {n + 1}/{len(cases)} {c['name']}", file=sys.stderr, flush=True)
    return out


def mean_dice(rows):
    """Mean Dice over cases for every candidate threshold."""
    d = [2 * i / np.maximum(p + r, 1) for i, p, r in rows]
    return np.mean(d, axis=0) if d else np.full(len(CANDIDATES), np.nan)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(HERE, "..", "models", "hn_oar_ptv_2p5d.pt"))
    ap.add_argument("--cache", default="/work/cache/openkbp_model_grid.npz")
    ap.add_argument("--default", type=float, default=0.5, help="the card's global threshold")
    ap.add_argument("--min-gain", type=float, default=0.005)
    ap.add_argument("--json", help="write the per-threshold mean Dice tables here")
    a = ap.parse_args()
    model = torch.jit.load(a.model).eval()
    train.CONTEXT = card_context(a.model)  # input slices as the card says (train.py --context)
    train.N_IN = 2 * train.CONTEXT + 1
    cases = load_cache(a.cache)
    j0 = int(np.argmin(np.abs(CANDIDATES - a.default)))
    tables = {}
    for split in ("train", "validation"):
        print(f"{split}: {len(cases[split])} patients", file=sys.stderr)
        c = counts(model, cases[split])
        tables[split] = {s: mean_dice(c[s]).tolist() for s in STRUCTURES}
    chosen = {}
    print(f"{'structure':13} {'train @' + str(a.default):>10} {'best':>5} {'train':>6} | "
          f"{'val @' + str(a.default):>8} {'val @best':>9}")
    for s in STRUCTURES:
        tr, va = np.array(tables["train"][s]), np.array(tables["validation"][s])
        b = int(np.nanargmax(tr))
        keep = tr[b] - tr[j0] >= a.min_gain
        if keep:
            chosen[s] = float(CANDIDATES[b])
        print(f"{s:13} {tr[j0]:10.3f} {CANDIDATES[b]:5.2f} {tr[b]:6.3f} | {va[j0]:8.3f} {va[b]:9.3f}"
              f"{'  <- chosen' if keep else ''}")
    for split in ("train", "validation"):
        t = tables[split]
        base = np.mean([t[s][j0] for s in OARS])
        new = np.mean([t[s][CANDIDATES.tolist().index(chosen[s])] if s in chosen else t[s][j0] for s in OARS])
        print(f"{split}: mean OAR Dice (model grid) {base:.4f} -> {new:.4f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"candidates": CANDIDATES.tolist(), "tables": tables, "chosen": chosen}, f, indent=1)
    print("--threshold " + ",".join(f"{s}:{t:g}" for s, t in chosen.items()))


if __name__ == "__main__":
    main()
