"""Compact 2.5D U-Net: 2*CONTEXT+1 adjacent axial slices in, one sigmoid logit per structure out."""
import json

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from common import CONTEXT


def read_checkpoint(path):
    """A train.py checkpoint as {"model": state dict, "feats", "val", "seed", "context"}: best.pt
    (torch.save) or best_state.npz (plain arrays, loadable by any torch version). Checkpoints
    from before train.py --context have 2 slices each side."""
    if path.endswith(".npz"):
        z = np.load(path)
        st = {"model": {k: torch.from_numpy(z[k]) for k in z.files if not k.startswith("__")},
              "feats": [int(f) for f in z["__feats__"]], "val": json.loads(str(z["__val__"])),
              "seed": int(z["__seed__"])}
        if "__context__" in z.files:
            st["context"] = int(z["__context__"])
    else:
        st = torch.load(path, map_location="cpu")
    st.setdefault("context", CONTEXT)
    return st


class Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)

    def forward(self, x):
        x = F.leaky_relu(self.b1(self.c1(x)), 0.01)
        return F.leaky_relu(self.b2(self.c2(x)), 0.01)


class UNet2D(nn.Module):
    def __init__(self, n_in=5, n_out=10, feats=(16, 32, 64, 128, 192)):
        super().__init__()
        self.enc = nn.ModuleList()
        c = n_in
        for f in feats:
            self.enc.append(Block(c, f))
            c = f
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for f in reversed(feats[:-1]):
            self.up.append(nn.ConvTranspose2d(c, f, 2, stride=2))
            self.dec.append(Block(2 * f, f))
            c = f
        self.head = nn.Conv2d(c, n_out, 1)

    def forward(self, x):
        skips = []
        n = len(self.enc)
        for i, blk in enumerate(self.enc):
            x = blk(x)
            if i < n - 1:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for i, (up, dec) in enumerate(zip(self.up, self.dec)):
            x = up(x)
            x = dec(torch.cat([x, skips[n - 2 - i]], 1))
        return self.head(x)
