"""Resample OpenKBP cases to the model grid and cache them in one compressed .npz.

Usage: /usr/bin/python3 contouring/train/preprocess.py --data ../shared/data/openkbp \
           --out /work/cache/openkbp_model_grid.npz

Arrays are kept in OpenKBP/ITK index order (x right->left, y anterior->posterior,
z inferior->superior; identity direction in LPS). Output voxel k sits at
origin + k * SPACING, i.e. the same grid ITK's ResampleImageFilter produces in the C++
inference (first voxel centre kept, extent covered).
"""
import argparse, glob, os, sys, time
import numpy as np
import nibabel as nib
from scipy import ndimage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import STRUCTURES, SPACING, BODY_HU


def resample(arr, sp_in, order, cval):
    sp_in = np.asarray(sp_in, float)
    sp_out = np.asarray(SPACING, float)
    shape = [int(np.floor((n - 1) * a / b + 1e-6)) + 1 for n, a, b in zip(arr.shape, sp_in, sp_out)]
    scale = sp_out / sp_in
    return ndimage.affine_transform(arr, scale, output_shape=shape, order=order, cval=cval, mode="constant")


def body_mask(ct):
    m = ct > BODY_HU
    lab, n = ndimage.label(m)
    if n == 0:
        return m
    sizes = ndimage.sum(m, lab, range(1, n + 1))
    return lab == (1 + int(np.argmax(sizes)))


def load_case(d):
    img = nib.load(os.path.join(d, "ct.nii.gz"))
    sp = [abs(float(v)) for v in img.header.get_zooms()[:3]]
    ct = np.asanyarray(img.dataobj).astype(np.float32)
    ctr = resample(ct, sp, 1, -1000.0)
    bits = np.zeros(ctr.shape, np.uint16)
    present = np.zeros(len(STRUCTURES), np.uint8)
    for k, s in enumerate(STRUCTURES):
        f = os.path.join(d, s + ".nii.gz")
        if not os.path.exists(f):
            continue
        m = np.asanyarray(nib.load(f).dataobj).astype(np.float32)
        mr = resample(m, sp, 1, 0.0) >= 0.5
        if mr.any():
            present[k] = 1
            bits |= (mr.astype(np.uint16) << k)
    body = body_mask(ctr)
    # crop: in-plane to body bbox (+4 voxels), z to labelled range (+8 slices) or all
    xs, ys, zs = np.nonzero(body)
    x0, x1 = max(xs.min() - 4, 0), min(xs.max() + 5, ctr.shape[0])
    y0, y1 = max(ys.min() - 4, 0), min(ys.max() + 5, ctr.shape[1])
    lz = np.nonzero(bits.any(axis=(0, 1)))[0]
    if lz.size:
        z0, z1 = max(lz.min() - 8, 0), min(lz.max() + 9, ctr.shape[2])
    else:
        z0, z1 = 0, ctr.shape[2]
    sl = (slice(x0, x1), slice(y0, y1), slice(z0, z1))
    return np.round(ctr[sl]).astype(np.int16), bits[sl], present, np.array(sp, np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    out = {}
    t0 = time.time()
    for split in ("train", "validation"):
        cases = sorted(glob.glob(os.path.join(a.data, split, "pt_*")), key=lambda p: int(p.split("_")[-1]))
        for d in cases:
            name = os.path.basename(d)
            ct, bits, present, sp = load_case(d)
            out[f"{split}/{name}/ct"] = ct
            out[f"{split}/{name}/bits"] = bits
            out[f"{split}/{name}/present"] = present
            out[f"{split}/{name}/spacing"] = sp
            print(split, name, ct.shape, present.tolist(), f"{time.time() - t0:.0f}s", flush=True)
    tmp = a.out + ".tmp.npz"
    np.savez_compressed(tmp, **out)
    os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
