#!/usr/bin/env python3
"""Writes a small synthetic review case (NIfTI) for the browser tests and the benchmark.

    make_case.py OUT_DIR [--size NX NY NZ] [--spacing SX SY SZ] [--no-dose] [--body-frac F]

ct.nii.gz (body ellipse 40 HU, bone ring 700 HU, air -1000 HU), masks/{Body,PTV,CTV,Cord}.nii.gz,
dose.nii.gz (Gaussian, 70 Gy), structures.json with a quality flag. --body-frac scales the patient (body, structures, dose) down in the same field of view
(a small neck in a wide CT). The grid is LPS-identity
(what ITK writes for an axial HFS CT): NIfTI affine diag(-sx, -sy, sz).
"""
import argparse
import json
import os

import nibabel as nib
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--size", type=int, nargs=3, default=[48, 48, 32])
    ap.add_argument("--spacing", type=float, nargs=3, default=[2.0, 2.0, 2.5])
    ap.add_argument("--no-dose", action="store_true")
    ap.add_argument("--body-frac", type=float, default=1.0)
    a = ap.parse_args()
    nx, ny, nz = a.size
    sx, sy, sz = a.spacing
    origin_lps = np.array([-(nx - 1) * sx / 2, -(ny - 1) * sy / 2, -(nz - 1) * sz / 2])
    affine = np.diag([-sx, -sy, sz, 1.0])
    affine[:3, 3] = [-origin_lps[0], -origin_lps[1], origin_lps[2]]
    i, j, k = np.meshgrid(np.arange(nx), np.arange(ny), np.arange(nz), indexing="ij")
    x = origin_lps[0] + i * sx
    y = origin_lps[1] + j * sy
    z = origin_lps[2] + k * sz
    ext_x, ext_y = 0.42 * nx * sx * a.body_frac, 0.38 * ny * sy * a.body_frac
    r = np.sqrt((x / ext_x) ** 2 + (y / ext_y) ** 2)
    ct = np.full(x.shape, -1000, np.int16)
    inside = r < 1.0
    ct[inside] = (40 + 20 * np.sin(0.3 * x[inside])).astype(np.int16)
    ct[inside & (r > 0.85)] = 700
    scale = min(ext_x, ext_y) / 40.0
    os.makedirs(os.path.join(a.out, "masks"), exist_ok=True)

    def save(arr, name, dtype):
        img = nib.Nifti1Image(arr.astype(dtype), affine)
        img.set_qform(affine, 1)
        img.set_sform(affine, 1)
        nib.save(img, os.path.join(a.out, name))

    def sphere(cx, cy, cz, rad):
        return ((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) <= rad ** 2

    save(ct, "ct.nii.gz", np.int16)
    save(ct > -500, "masks/Body.nii.gz", np.uint8)
    save(sphere(0, 0, 0, 14 * scale), "masks/PTV.nii.gz", np.uint8)
    save(sphere(0, 0, 0, 8 * scale), "masks/CTV.nii.gz", np.uint8)
    save(sphere(0, 24 * scale, 0, 5 * scale), "masks/Cord.nii.gz", np.uint8)
    if not a.no_dose:
        q = (x ** 2 + y ** 2 + z ** 2) / (2 * (18 * scale) ** 2)
        save(70.0 * np.exp(-q), "dose.nii.gz", np.float32)
    with open(os.path.join(a.out, "structures.json"), "w") as f:
        json.dump({"CTV": {"type": "CTV", "flags": ["low confidence 0.61", "volume unusual"]},
                   "PTV": {"type": "PTV", "color": [255, 64, 64]},
                   "Cord": {"type": "ORGAN", "color": [0, 200, 255]},
                   "Body": {"type": "EXTERNAL", "color": [120, 200, 120]}}, f, indent=1)


if __name__ == "__main__":
    main()
