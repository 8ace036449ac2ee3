"""Time the contouring network alone (the part a GPU speeds up), on the CPU and on CUDA.

Debian's LibTorch is CPU-only, so `isoline contour --device cuda` cannot run here; on a GPU
host with PyTorch (any version that loads TorchScript saved by torch 1.13) this script runs
the shipped TorchScript module on the same input the C++ inference builds for a CT: the CT
resampled to the model grid (3.906 x 3.906 x 2.5 mm; OpenKBP CTs come at 2.5-5.4 mm), cropped
to the body and padded to a multiple of 16, in batches of axial stacks of the card's slices
(a "volume" card: the whole crop, in z windows of the card's window_slices overlapping by 32
slices, as contour.cpp cuts them).
The CPU runs with as many threads as `isoline contour` uses (every CPU the process may use,
unless OMP_NUM_THREADS says otherwise).

  /usr/bin/python3 contouring/train/network_timing.py --ct ../shared/data/openkbp/validation/pt_201/ct.nii.gz
  python3 contouring/train/network_timing.py --ct .../ct.nii.gz --device cpu cuda --json out.json

A GPU host without nibabel reads the CT as an int16 .npy already on the model grid, written
here with `--save-npy ct.npy` (bench/gpu_session.sh does both).

Prints one line per device: seconds for all slices (best of --repeat, after one warm-up
run; CUDA timings synchronised). `make bench` (bench/bench_contouring.py) calls `measure`
and records `contour_network_seconds_128_cpu` / `_cuda` (None where there is no GPU).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import BODY_HU, CONTEXT, HU_MIN, SPACING, card_context, normalise  # noqa: E402

DEFAULT_MODEL = os.path.join(HERE, "..", "models", "hn_oar_ptv_2p5d.pt")


def load_hu(ct_path):
    """HU volume (x, y, z) on the model grid: a NIfTI CT resampled (trilinear, the extent kept,
    as contour.cpp's model grid), or an .npy written by --save-npy (already resampled)."""
    if str(ct_path).endswith(".npy"):
        return np.load(ct_path).astype(np.float32)
    import nibabel as nib
    import torch
    img = nib.load(ct_path)
    hu = np.asarray(img.dataobj).astype(np.float32)
    size = [max(1, int(round(n * s / m))) for n, s, m in zip(hu.shape, img.header.get_zooms()[:3], SPACING)]
    t = torch.nn.functional.interpolate(torch.from_numpy(hu)[None, None], size=size, mode="trilinear",
                                        align_corners=False)
    return np.round(t[0, 0].numpy())  # contour.cpp resamples into int16


def available_cpus():
    """Threads `isoline contour` gives LibTorch: OMP_NUM_THREADS, else every CPU this process may use."""
    if os.environ.get("OMP_NUM_THREADS"):
        return int(os.environ["OMP_NUM_THREADS"])
    return len(os.sched_getaffinity(0))


def body_crop(ct_path):
    """The normalised CT on the model grid cropped in-plane to the body (4 voxels of margin),
    all slices, and the body's axial slice range [k0, k1), as contour.cpp crops it."""
    hu = load_hu(ct_path)
    body = hu > BODY_HU
    if not body.any():
        raise ValueError(f"{ct_path}: no voxel above {BODY_HU} HU (not a CT in HU?)")
    idx = [np.nonzero(body.any(axis=tuple(a for a in range(3) if a != ax)))[0] for ax in range(3)]
    (i0, i1), (j0, j1) = [(max(int(v[0]) - 4, 0), int(v[-1]) + 5) for v in idx[:2]]
    return normalise(hu[i0:i1, j0:j1, :]), (int(idx[2][0]), int(idx[2][-1]) + 1)


def model_input(ct_path, context=CONTEXT):
    """(nz, 2 context + 1, px, py) float32 stacks of the body-cropped CT on the model grid, as
    contour.cpp builds them."""
    crop, (k0, k1) = body_crop(ct_path)
    px, py = -(-crop.shape[0] // 16) * 16, -(-crop.shape[1] // 16) * 16
    pad = np.full((px, py, crop.shape[2] + 2 * context), normalise(np.array(HU_MIN)), np.float32)
    pad[:crop.shape[0], :crop.shape[1], context:context + crop.shape[2]] = crop
    n_in = 2 * context + 1
    ks = range(k0, k1)  # pad slice k + context holds CT slice k: stack k..k+n_in is centred on it
    return np.stack([pad[:, :, k:k + n_in].transpose(2, 0, 1) for k in ks])


WINDOW_OVERLAP = 32  # ModelCard::kWindowOverlap


def card_input(model_path):
    """The card's "input" object (model.json beside model.pt); {} when there is no card."""
    card = os.path.splitext(model_path)[0] + ".json"
    if not os.path.exists(card):
        return {}
    with open(card) as f:
        return json.load(f)["input"]


def volume_windows(ct_path, window_slices=160, multiple_of=16):
    """[(1, 1, px, py, pz)] float32 windows of the body-cropped CT on the model grid, as
    contour.cpp cuts them for a 3-D ("volume") card: windows of min(body slices, window_slices)
    slices spaced evenly so that neighbours share at least 32 slices, each padded to a
    multiple of `multiple_of` in every direction."""
    crop, (k0, k1) = body_crop(ct_path)
    crop = crop[:, :, k0:k1]
    up = lambda n: -(-n // multiple_of) * multiple_of  # noqa: E731
    L = k1 - k0
    wl = min(L, window_slices)
    nw = 1 if L <= wl else (L - wl + (wl - WINDOW_OVERLAP) - 1) // (wl - WINDOW_OVERLAP) + 1
    out = []
    for w in range(nw):
        ka = 0 if nw == 1 else (L - wl) * w // (nw - 1)
        win = np.full((up(crop.shape[0]), up(crop.shape[1]), up(wl)), normalise(np.array(HU_MIN)), np.float32)
        win[:crop.shape[0], :crop.shape[1], :wl] = crop[:, :, ka:ka + wl]
        out.append(win[None, None])
    return out


def measure(ct_path, devices=("cpu", "cuda"), model_path=DEFAULT_MODEL, batch=16, repeat=3):
    """{device: seconds or None (device unavailable)} for the network over all slices (all z
    windows for a volume card)."""
    import torch
    torch.set_num_threads(available_cpus())
    inp = card_input(model_path)
    if inp.get("kind", "slices") == "volume":
        xs = [torch.from_numpy(w) for w in
              volume_windows(ct_path, int(inp.get("window_slices", 160)), int(inp.get("multiple_of", 16)))]
    else:
        x = torch.from_numpy(model_input(ct_path, card_context(model_path)))
        xs = [x[b:b + batch] for b in range(0, x.shape[0], batch)]
    out = {}
    for dev in devices:
        if dev == "cuda" and not torch.cuda.is_available():
            out[dev] = None
            continue
        net = torch.jit.load(model_path, map_location=dev).eval()
        xd = [x.to(dev) for x in xs]
        sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
        best = float("inf")
        with torch.inference_mode():
            for r in range(repeat + 1):
                sync()
                t0 = time.perf_counter()
                for xb in xd:
                    torch.sigmoid(net(xb))
                sync()
                if r:  # run 0 is the warm-up
                    best = min(best, time.perf_counter() - t0)
        out[dev] = best
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ct", required=True, help="OpenKBP-style ct.nii.gz (already on the model grid) or .npy")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--device", nargs="+", default=["cpu", "cuda"], choices=["cpu", "cuda"])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--save-npy", help="only write the CT as int16 .npy (for a host without nibabel)")
    a = ap.parse_args()
    if a.save_npy:
        np.save(a.save_npy, np.round(load_hu(a.ct)).astype(np.int16))
        return
    import torch
    res = measure(a.ct, a.device, a.model, a.batch, a.repeat)
    for dev, s in res.items():
        print(f"{dev}: " + (f"{s:.3f} s" if s is not None else "not available (torch.cuda.is_available() is False)"))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(), "seconds": res}, f, indent=1)


if __name__ == "__main__":
    main()
