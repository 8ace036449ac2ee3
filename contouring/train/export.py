"""Export a training checkpoint to TorchScript (torch 1.13) plus its JSON model card.

  /usr/bin/python3 contouring/train/export.py --ckpt /work/cache/run0/best.pt \
      --out contouring/models/hn_oar_ptv_2p5d.pt [--metrics validation_metrics.json]

The card lists everything the C++ inference needs (structures and their output channel,
model spacing, intensity window, input slices) and the validation metrics measured by
`isoline eval contours` when --metrics is given (else those of model selection).
"""
import argparse, json, os, sys
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import STRUCTURES, OARS, LR_SWAP, SPACING, HU_MIN, HU_MAX, HU_SCALE, BODY_HU, cache_ct, ranges_of  # noqa
from model import UNet, read_checkpoint  # noqa


class MirrorAverage(torch.nn.Module):
    """Test-time augmentation inside the exported module: the network runs on the input (a stack
    of slices or a volume) and on its left-right mirror (axis 2 = patient right->left), the mirrored prediction is
    mirrored back with the Right/Left channels swapped, and the two probabilities are
    averaged. Output: logits of the average, so the C++ side is unchanged."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.register_buffer("swap", torch.tensor([STRUCTURES.index(LR_SWAP.get(s, s)) for s in STRUCTURES]))

    def forward(self, x):
        a = torch.sigmoid(self.net(x))
        b = torch.sigmoid(self.net(x.flip(2))).flip(2).index_select(1, self.swap)
        p = (0.5 * (a + b)).clamp(1e-6, 1 - 1e-6)
        return torch.log(p) - torch.log1p(-p)


def expected_ranges(cache):
    """Usual volume (cc) and centroid offset from the body centre (common.body_centre: median
    of per-slice centroids; LPS x, y in mm) per structure over the training split: 1st-99th
    percentile, widened (volume x0.6 / x1.6, position +-15 mm). Used for the quality flags."""
    z = np.load(cache)
    names = sorted({k.rsplit("/", 1)[0] for k in z.files if k.startswith("train/")})
    cases = []
    for n in names:
        bits = z[n + "/bits"]
        pres = z[n + "/present"]
        cases.append((cache_ct(z, n), {s: (bits >> k) & 1 for k, s in enumerate(STRUCTURES) if pres[k]}, SPACING))
    return ranges_of(cases)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--metrics", help="JSON from `isoline eval contours --json` on the validation split")
    ap.add_argument("--version", default="1.0.0")
    ap.add_argument("--no-mirror-tta", action="store_true",
                    help="export the bare network (default: average with the left-right mirrored prediction)")
    ap.add_argument("--bone-refine", default="Mandible:100:3",
                    help="STRUCTURE:MIN_HU:MARGIN_MM[,...]: the C++ post-processing re-draws these structures "
                         "on the CT's bone (prediction grown by MARGIN_MM, HU > MIN_HU, cavities filled); "
                         "'' for none. The default threshold was chosen on the training split "
                         "(contouring/train/choose_bone_threshold.py)")
    ap.add_argument("--trim", default="",
                    help="STRUCTURE:INFERIOR_MM:SUPERIOR_MM[,...]: the C++ post-processing removes these "
                         "lengths from the structure's cranio-caudal ends; chosen on the training split "
                         "(contouring/train/choose_extent_trim.py)")
    ap.add_argument("--threshold", default="",
                    help="STRUCTURE:CUT[,...]: per-structure probability cuts instead of the global 0.5; "
                         "chosen on the training split (contouring/train/choose_thresholds.py)")
    ap.add_argument("--quality-flags", default="",
                    help="LOW_CONFIDENCE:MIN_KEPT: the C++ flags a contour 'low confidence' when its mean "
                         "network probability is below LOW_CONFIDENCE and 'in pieces' when its kept part "
                         "holds less than MIN_KEPT of the network's voxels; chosen on the validation split "
                         "(contouring/train/choose_quality_flags.py). Default: the C++ defaults (0.75, off)")
    ap.add_argument("--window-slices", type=int, default=160,
                    help="3D networks: longest cranio-caudal window (model-grid slices) the C++ inference "
                         "runs at once; longer scans go in overlapping windows")
    ap.add_argument("--recipe", default="contouring/train/recipe.sh (four stages of train.py, see docs/contouring.md); "
                                        "checkpoint = best by validation",
                    help="how the checkpoint was trained, for the model card")
    ap.add_argument("--cache", default="/work/cache/openkbp_model_grid.npz",
                    help="training cache (preprocess.py) for the usual volume/position ranges")
    a = ap.parse_args()
    st = read_checkpoint(a.ckpt)  # best.pt or best_state.npz
    context = int(st["context"])  # slices each side (2.5D)
    dims = int(st["dims"])
    n_in = 2 * context + 1
    model = UNet(n_in, len(STRUCTURES), tuple(st["feats"]), dims)
    model.load_state_dict(st["model"])
    model.eval()
    if not a.no_mirror_tta:
        model = MirrorAverage(model).eval()
    ts = torch.jit.trace(model, torch.zeros(1, n_in, *([96, 96] if dims == 2 else [32, 32, 32])))
    ts = torch.jit.freeze(ts)
    tmp = a.out + ".tmp"
    ts.save(tmp)
    os.replace(tmp, a.out)
    card = {
        "name": "isoline-hn-2p5d" if dims == 2 else "isoline-hn-3d",
        "version": a.version,
        "file": os.path.basename(a.out),
        "framework": f"TorchScript (torch {torch.__version__})",
        "architecture": f"{'2.5D' if dims == 2 else '3D'} U-Net, features {list(st['feats'])}, BatchNorm, LeakyReLU",
        "structures": STRUCTURES,
        "output": "one logit per structure (sigmoid, independent: overlaps allowed), channel order = structures",
        "test_time_augmentation": "none" if a.no_mirror_tta else
            "left-right mirror: probabilities of the stack and of its mirror (RightParotid/LeftParotid "
            "swapped back) averaged inside the TorchScript module",
        "input": {
            **({"slices": n_in} if dims == 2 else {"kind": "volume", "window_slices": a.window_slices}),
            "context_slices_each_side": context,
            "spacing_mm": list(SPACING),
            "orientation": "LPS identity: i = patient right->left, j = anterior->posterior, k = inferior->superior",
            "intensity": {"clip_hu": [HU_MIN, HU_MAX], "scale": 1.0 / HU_SCALE, "outside_hu": HU_MIN},
            "multiple_of": 16,
            "body_threshold_hu": BODY_HU,
        },
        "threshold": 0.5,
        "training_data": "OpenKBP (AAPM 2020, MIT licence) train split, 170 head-and-neck patients; "
                         "model selection on the validation split (33); loss masked where a structure is not delineated",
        "training": {"seed": st.get("seed", 0),
                     "recipe": a.recipe,
                     "selection_metric_model_grid": st.get("val")},
        "scope": "head-and-neck planning CT (skull base to upper thorax)",
    }
    post = {}
    for item in filter(None, a.bone_refine.split(",")):
        name, hu, margin = item.split(":")
        if name not in STRUCTURES:
            sys.exit(f"--bone-refine: {name} is not one of the structures {STRUCTURES}")
        post[name] = {"bone_min_hu": float(hu), "bone_margin_mm": float(margin)}
    for item in filter(None, a.trim.split(",")):
        name, inferior, superior = item.split(":")
        if name not in STRUCTURES:
            sys.exit(f"--trim: {name} is not one of the structures {STRUCTURES}")
        post.setdefault(name, {}).update(trim_inferior_mm=float(inferior), trim_superior_mm=float(superior))
    for item in filter(None, a.threshold.split(",")):
        name, cut = item.split(":")
        if name not in STRUCTURES or not 0 < float(cut) < 1:
            sys.exit(f"--threshold: {item}: a structure of {STRUCTURES} and a cut between 0 and 1")
        post.setdefault(name, {})["threshold"] = float(cut)
    if post:
        card["post_processing"] = post
    if a.quality_flags:
        low, kept = (float(v) for v in a.quality_flags.split(":"))
        if not (0 <= low <= 1 and 0 <= kept <= 1):
            sys.exit(f"--quality-flags: {a.quality_flags}: two values between 0 and 1")
        card["quality_flags"] = {"low_confidence_below": low, "min_kept_fraction": kept,
                                 "source": "contouring/train/choose_quality_flags.py on the validation split"}
    if a.cache and os.path.exists(a.cache):
        card["expected"] = expected_ranges(a.cache)
    if a.metrics:
        with open(a.metrics) as f:
            card["validation_metrics"] = json.load(f)
    with open(os.path.splitext(a.out)[0] + ".json", "w") as f:
        json.dump(card, f, indent=2)
    print(f"wrote {a.out} ({os.path.getsize(a.out) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
