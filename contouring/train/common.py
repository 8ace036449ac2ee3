"""Shared constants and helpers for the Isoline auto-contouring training code.

Everything that the C++ inference must reproduce (structure order, model spacing,
intensity window, body threshold) is defined here and copied into the model card.
"""
import json
import os

import numpy as np

STRUCTURES = ["Brainstem", "SpinalCord", "RightParotid", "LeftParotid", "Esophagus",
              "Larynx", "Mandible", "PTV70", "PTV63", "PTV56"]
OARS = STRUCTURES[:7]
# Left/right pairs swapped when the image is mirrored left-right.
LR_SWAP = {"RightParotid": "LeftParotid", "LeftParotid": "RightParotid"}
# Model grid (mm, LPS axes x, y, z) and intensity window (HU).
SPACING = (3.906, 3.906, 2.5)
HU_MIN, HU_MAX, HU_SCALE = -1000.0, 1000.0, 500.0
BODY_HU = -500.0
CONTEXT = 2  # slices each side -> 2*CONTEXT+1 input channels
N_IN = 2 * CONTEXT + 1


def normalise(hu):
    """HU (any dtype) -> float32 network input."""
    return (np.clip(hu.astype(np.float32), HU_MIN, HU_MAX) / HU_SCALE).astype(np.float32)

# pack_for_gpu.py stores the cache's CT as uint8 in steps of U8_STEP_HU from HU_MIN ("ct_u8").
U8_STEP_HU = 8


def largest_component(mask):
    """The largest 26-connected component of a boolean mask, as core::keep_largest_components
    keeps it (the mask itself when it has none)."""
    from scipy import ndimage
    lab, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    if n == 0:
        return mask
    return lab == (int(np.argmax(np.bincount(lab.ravel())[1:])) + 1)


def body_centre(ct, spacing):
    """The body centre (LPS x, y in mm from the first voxel centre) the quality flags measure
    positions from, as the C++ computes it (contour.cpp, body_centre): the largest region above
    BODY_HU, its centroid on each axial slice with at least 20 cm^2 of it, the median over those
    slices. A median of slices, not the 3-D box: a few slices reaching to the edge of the field
    (an arm, a mask) do not move it."""
    body = largest_component(ct > BODY_HU)
    if not body.any():
        return None
    area = body.sum(axis=(0, 1)) * spacing[0] * spacing[1]
    xs, ys = [], []
    ii = np.arange(body.shape[0])[:, None]
    jj = np.arange(body.shape[1])[None, :]
    for k in np.nonzero(area >= 2000.0)[0]:
        sl = body[:, :, k]
        c = sl.sum()
        xs.append((ii * sl).sum() / c)
        ys.append((jj * sl).sum() / c)
    if not xs:
        return None
    return float(np.median(xs)) * spacing[0], float(np.median(ys)) * spacing[1]


def cache_ct(z, name):
    """int16 HU of case `name` ("split/pt_N") of a training cache: "ct" as preprocess.py writes
    it, or "ct_u8" as pack_for_gpu.py packs it."""
    if name + "/ct" in z.files:
        return z[name + "/ct"]
    return z[name + "/ct_u8"].astype(np.int16) * U8_STEP_HU + np.int16(HU_MIN)


def card_context(model_path):
    """Slices each side of a 2.5D model's input, from its card (model.json beside model.pt);
    CONTEXT when there is no card. A 3D ("volume") card raises ValueError: the scripts that ask
    feed stacks of slices (choose_thresholds.py; network_timing.py reads a volume card's
    windows itself)."""
    card = os.path.splitext(model_path)[0] + ".json"
    if not os.path.exists(card):
        return CONTEXT
    with open(card) as f:
        inp = json.load(f)["input"]
    if inp.get("kind", "slices") != "slices":
        raise ValueError(f"{card}: a {inp['kind']} network; this script runs 2.5D (slices) networks only")
    return int(inp["context_slices_each_side"])


def ranges_of(cases):
    """expected_ranges from (ct, {structure: mask}, spacing) cases, arrays indexed x, y, z."""
    vals = {s: ([], [], []) for s in STRUCTURES}
    for ct, masks, sp in cases:
        centre = body_centre(ct, sp)
        if centre is None:
            continue
        for s, m in masks.items():
            idx = np.nonzero(m)
            if len(idx[0]) == 0:
                continue
            vals[s][0].append(m.sum() * sp[0] * sp[1] * sp[2] / 1000.0)
            vals[s][1].append(idx[0].mean() * sp[0] - centre[0])
            vals[s][2].append(idx[1].mean() * sp[1] - centre[1])
    out = {}
    for s, (v, dx, dy) in vals.items():
        p = lambda a, q: float(np.percentile(a, q))
        out[s] = {"volume_cc": [round(0.6 * p(v, 1), 2), round(1.6 * p(v, 99), 2)],
                  "dx_mm": [round(p(dx, 1) - 15, 1), round(p(dx, 99) + 15, 1)],
                  "dy_mm": [round(p(dy, 1) - 15, 1), round(p(dy, 99) + 15, 1)],
                  "training_cases": len(v)}
    return out


def air_outside_body(ct):
    """What the C++ inference feeds the network outside the patient (contour.cpp, step 2b):
    voxels farther than one voxel in-plane from the body region (the largest 26-connected
    component above BODY_HU) set to HU_MIN. ct: int16 HU on the model grid (x, y, z)."""
    from scipy import ndimage
    keep = largest_component(ct > BODY_HU)
    if not keep.any():
        return ct
    cross = np.zeros((3, 3, 3), bool)
    cross[:, 1, 1] = cross[1, :, 1] = True  # in-plane 4-neighbourhood, no z
    keep = ndimage.binary_dilation(keep, structure=cross)
    out = ct.copy()
    out[~keep] = np.int16(HU_MIN)
    return out
