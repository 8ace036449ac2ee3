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
