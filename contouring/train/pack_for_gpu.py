"""Pack the training cache (preprocess.py) small enough to carry to a GPU host.

The device tool carries at most 64 MiB with the working tree; the int16 cache of the 203
OpenKBP patients is 67 MB. This keeps the labels as they are and stores the CT in 8-HU steps
(uint8, HU = 8 q - 1000 after clipping to the network's window [-1000, 1000] HU): a rounding
error of at most 4 HU, well below CT noise and the training's own noise augmentation (up to
30 HU). train.py reads either form.

  /usr/bin/python3 contouring/train/pack_for_gpu.py --cache /work/cache/openkbp_model_grid.npz \\
      --out bench/work/gpu_train/openkbp_u8.npz
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import HU_MAX, HU_MIN, U8_STEP_HU  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default="/work/cache/openkbp_model_grid.npz")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    z = np.load(a.cache)
    out = {}
    for k in z.files:
        if k.endswith("/ct"):
            hu = np.clip(z[k].astype(np.float32), HU_MIN, HU_MAX)
            out[k + "_u8"] = np.round((hu - HU_MIN) / U8_STEP_HU).astype(np.uint8)
        else:
            out[k] = z[k]
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    tmp = a.out + ".tmp.npz"
    np.savez_compressed(tmp, **out)
    os.replace(tmp, a.out)
    print(f"wrote {a.out} ({os.path.getsize(a.out) / 1e6:.1f} MB, {sum(k.endswith('/ct') for k in z.files)} cases)")


if __name__ == "__main__":
    main()
