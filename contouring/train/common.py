"""Shared constants and helpers for the Isoline auto-contouring training code.

Everything that the C++ inference must reproduce (structure order, model spacing,
intensity window, body threshold) is defined here and copied into the model card.
"""
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
