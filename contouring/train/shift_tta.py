#!/usr/bin/env python3
"""Does averaging the network over in-plane shifts (test-time augmentation beyond the card's
left-right mirror) raise Dice? Runs the exported TorchScript module (mirror averaging included)
on the validation patients of a model-grid cache with the stack moved by (dx, dy) model voxels
(air padded on the low side, so the 16-voxel pooling grid falls elsewhere on the anatomy),
shifts the probabilities back, and scores Dice on the model grid for single shifts and their
averages (the card's probability cuts; air outside the body region, as the C++ inference).

    /usr/bin/python3 contouring/train/preprocess.py --data DIR_WITH_validation --out /tmp/val.npz
    /usr/bin/python3 contouring/train/shift_tta.py --cache /tmp/val.npz

Session 20 (2 cores, 21 min): mean OAR Dice 0.6956 unshifted, 0.6958 with (8, 8), 0.6958 for
the average of the two, 0.6964 for six shifts (0-12 voxels): no gain worth the network time.
"""
import argparse
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import OARS, STRUCTURES, card_context  # noqa: E402
import train  # noqa: E402

SHIFTS = [(0, 0), (8, 8), (8, 0), (0, 8), (4, 4), (12, 12)]
COMBOS = {"unshifted": [0], "(8,8) only": [1], "average of 2": [0, 1], "average of 4": [0, 1, 2, 3],
          "average of 6": [0, 1, 2, 3, 4, 5]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(HERE, "..", "models", "hn_oar_ptv_2p5d.pt"))
    ap.add_argument("--cache", required=True)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = torch.jit.load(a.model).eval()
    card = os.path.splitext(a.model)[0] + ".json"
    train.CONTEXT = card_context(a.model)
    train.N_IN = 2 * train.CONTEXT + 1
    train.MASK_OUTSIDE = True
    import json
    post = json.load(open(card)).get("post_processing", {})
    cut = {s: v["threshold"] for s, v in post.items() if "threshold" in v}
    cases = train.load_cache(a.cache)["validation"]

    @torch.no_grad()
    def predict(ct, dx, dy):
        p = train.predict_volume(model, np.pad(ct, ((dx, 0), (dy, 0), (0, 0)), constant_values=-1000))
        return p[:, dx:, dy:, :]

    res = {k: {s: [] for s in STRUCTURES} for k in COMBOS}
    for n, c in enumerate(cases):
        probs = [predict(c["ct"], dx, dy) for dx, dy in SHIFTS]
        for name, idx in COMBOS.items():
            prob = np.mean([probs[i] for i in idx], axis=0)
            for k, s in enumerate(STRUCTURES):
                if c["present"][k] < 0.5:
                    continue
                ref = ((c["bits"] >> k) & 1).astype(bool)
                pred = prob[k] >= cut.get(s, 0.5)
                res[name][s].append(2.0 * (ref & pred).sum() / max(ref.sum() + pred.sum(), 1))
        print(f"  {n + 1}/{len(cases)} {c['name']}", file=sys.stderr, flush=True)
    for name, per in res.items():
        m = {s: float(np.mean(v)) for s, v in per.items() if v}
        print(f"{name:14} mean OAR {np.mean([m[s] for s in OARS]):.4f}  " +
              " ".join(f"{s} {m[s]:.3f}" for s in STRUCTURES if s in m))


if __name__ == "__main__":
    main()
