#!/usr/bin/env python3
"""What Dice a second careful observer would reach against the OpenKBP references, on the
references' own CT grid (3.9-5.4 mm in-plane, 2-3 mm slices) and on a 1 mm grid.

The second observer is simulated: each reference mask is smoothed onto a fine grid (the shape
the coarse mask stands for), its boundary is moved along the normal by a smooth random field
(standard deviation SIGMA mm, correlation length CORR mm: the boundary disagreement of two
experts; published expert-vs-expert HD95 for mandible, brainstem and parotids is 3.4-5.1 mm,
about 2 SIGMA for SIGMA = 2 mm), and the result is rasterised back onto the coarse grid by
area (a coarse voxel is inside when at least half of it is). Dice is then computed against the
reference itself, as `isoline eval contours` does. SIGMA = 0 measures the round trip alone
(how much the smoothing and re-rasterisation change a mask: should be near 1).

    /usr/bin/python3 contouring/train/grid_ceiling.py --data ../shared/data/openkbp/validation \
        --sigma 0 1 2 3 --seeds 3 --out /tmp/grid_ceiling.json

Prints a table (mean Dice per structure and noise level, coarse grid and 1 mm grid) and writes
the per-patient figures as JSON. Needs numpy, scipy, nibabel (Debian's python3 packages).
"""
import argparse
import json
import pathlib
import sys

import numpy as np
from scipy import ndimage

OARS = ["Brainstem", "SpinalCord", "RightParotid", "LeftParotid", "Esophagus", "Larynx", "Mandible"]
FINE = 1.0  # mm


def dice(a, b):
    s = int(a.sum()) + int(b.sum())
    return 2.0 * int(np.logical_and(a, b).sum()) / s if s else float("nan")


def surface(m):
    return m & ~ndimage.binary_erosion(m, border_value=0)


def hd95(a, b, spacing):
    """Symmetric 95th percentile surface distance (mm) between two masks on one grid."""
    sa, sb = surface(a), surface(b)
    if not sa.any() or not sb.any():
        return float("nan")
    da = ndimage.distance_transform_edt(~sb, sampling=spacing)[sa]
    db = ndimage.distance_transform_edt(~sa, sampling=spacing)[sb]
    return float(np.percentile(np.concatenate([da, db]), 95))


def fine_shape(mask, spacing, box, fine=FINE):
    """The coarse mask's box as a smooth signed distance (mm, negative inside) on a fine grid.
    Returns the fine SDF and, per coarse axis, the integer upsampling factor used."""
    (i0, i1), (j0, j1), (k0, k1) = box
    sub = mask[i0:i1, j0:j1, k0:k1].astype(np.float32)
    f = [max(1, int(round(s / fine))) for s in spacing]
    # Linear interpolation of the occupancy at fine-voxel centres (order 1 on the coarse
    # voxel-centre lattice), then the 0.5 level: a smooth shape through the coarse boundary.
    coords = [((np.arange(n * fa) + 0.5) / fa - 0.5) for n, fa in zip(sub.shape, f)]
    grid = np.meshgrid(*coords, indexing="ij")
    occ = ndimage.map_coordinates(sub, grid, order=1, mode="nearest")
    inside = occ >= 0.5
    fsp = [s / fa for s, fa in zip(spacing, f)]
    d_out = ndimage.distance_transform_edt(~inside, sampling=fsp)
    d_in = ndimage.distance_transform_edt(inside, sampling=fsp)
    sdf = np.where(inside, -d_in, d_out).astype(np.float32)
    return sdf, f, fsp


def random_field(shape, fsp, sigma, corr, rng):
    if sigma <= 0:
        return np.zeros(shape, np.float32)
    w = rng.standard_normal(shape).astype(np.float32)
    u = ndimage.gaussian_filter(w, [corr / s for s in fsp], mode="wrap")
    u *= sigma / max(float(u.std()), 1e-9)
    return u


def to_coarse(fine_mask, f):
    """Area rasterisation: a coarse voxel is inside when at least half its fine voxels are."""
    n = [fine_mask.shape[a] // f[a] for a in range(3)]
    v = fine_mask[: n[0] * f[0], : n[1] * f[1], : n[2] * f[2]].reshape(n[0], f[0], n[1], f[1], n[2], f[2])
    return v.mean(axis=(1, 3, 5)) >= 0.5


def one(mask, spacing, sigmas, seeds, corr, rng):
    idx = np.argwhere(mask)
    if len(idx) == 0:
        return None
    pad = 4
    box = [(max(int(idx[:, a].min()) - pad, 0), min(int(idx[:, a].max()) + pad + 1, mask.shape[a]))
           for a in range(3)]
    ref = mask[box[0][0]:box[0][1], box[1][0]:box[1][1], box[2][0]:box[2][1]]
    sdf, f, fsp = fine_shape(mask, spacing, box)
    fine_ref = sdf < 0
    out = {}
    for sigma in sigmas:
        dc, df, hc = [], [], []
        for _ in range(seeds if sigma > 0 else 1):
            u = random_field(sdf.shape, fsp, sigma, corr, rng)
            fine_obs = sdf < u
            obs = to_coarse(fine_obs, f)
            dc.append(dice(ref, obs))
            df.append(dice(fine_ref, fine_obs))
            hc.append(hd95(ref, obs, spacing))
        out[str(sigma)] = {"coarse": float(np.mean(dc)), "fine": float(np.mean(df)),
                           "hd95_coarse": float(np.nanmean(hc))}
    return out


def main(argv=None):
    import nibabel as nib
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="an OpenKBP split: folders pt_*/ with ct.nii.gz and masks")
    ap.add_argument("--sigma", type=float, nargs="+", default=[0, 1, 2, 3], help="boundary SD in mm")
    ap.add_argument("--corr", type=float, default=15.0, help="correlation length of the field, mm")
    ap.add_argument("--seeds", type=int, default=3, help="random fields per mask and SD")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--structures", nargs="+", default=OARS)
    ap.add_argument("--out", help="JSON with the per-patient figures")
    a = ap.parse_args(argv)
    rng = np.random.default_rng(a.seed)
    pts = sorted(p for p in pathlib.Path(a.data).glob("pt_*") if p.is_dir())
    if not pts:
        sys.exit(f"grid_ceiling: no pt_* folders in {a.data}")
    res = {}
    for p in pts:
        ct = nib.load(str(p / "ct.nii.gz"))
        spacing = [float(z) for z in ct.header.get_zooms()[:3]]
        for s in a.structures:
            f = p / f"{s}.nii.gz"
            if not f.exists():
                continue
            m = np.asanyarray(nib.load(str(f)).dataobj) > 0
            r = one(m, spacing, a.sigma, a.seeds, a.corr, rng)
            if r is not None:
                res.setdefault(s, {})[p.name] = r
        print(f"{p.name} done", file=sys.stderr, flush=True)
    head = "structure      n " + " ".join(f"  s={g:g} coarse   fine  HD95" for g in a.sigma)
    print(head)
    means = {}
    for s in a.structures:
        if s not in res:
            continue
        row = f"{s:<13}{len(res[s]):>3}"
        for g in a.sigma:
            c = np.mean([v[str(g)]["coarse"] for v in res[s].values()])
            fi = np.mean([v[str(g)]["fine"] for v in res[s].values()])
            h = np.nanmedian([v[str(g)]["hd95_coarse"] for v in res[s].values()])
            means.setdefault(str(g), {})[s] = {"coarse": float(c), "fine": float(fi), "hd95_median": float(h)}
            row += f"  {c:14.3f} {fi:6.3f} {h:5.1f}"
        print(row)
    row = f"{'mean 7 OARs':<16}"
    for g in a.sigma:
        vals = [means[str(g)][s] for s in OARS if s in means.get(str(g), {})]
        row += f"  {np.mean([v['coarse'] for v in vals]):14.3f} {np.mean([v['fine'] for v in vals]):6.3f}      "
    print(row)
    if a.out:
        pathlib.Path(a.out).write_text(json.dumps({"args": vars(a), "means": means, "per_patient": res}, indent=1))


if __name__ == "__main__":
    main()
