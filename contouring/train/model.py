"""Compact U-Nets: 2.5D (2*CONTEXT+1 adjacent axial slices in as channels) or 3D (the volume in,
dims=3), one sigmoid logit per structure out. Both share one class, so a checkpoint's parameter
names do not depend on the number of dimensions."""
import json
import os

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
        if "__dims__" in z.files:
            st["dims"] = int(z["__dims__"])
    else:
        st = torch.load(path, map_location="cpu")
    st.setdefault("context", CONTEXT)
    st.setdefault("dims", 2)
    return st


def write_state_npz(path, state, feats, val, seed, context, dims):
    """Writes best_state.npz, the form read_checkpoint reads without torch.load: the state
    dict's tensors (or arrays) as plain arrays plus __feats__, __val__ (JSON), __seed__,
    __context__ and __dims__; through a temporary file renamed onto `path`."""
    arrays = {k: (v.detach().cpu().numpy() if torch.is_tensor(v) else np.asarray(v)) for k, v in state.items()}
    tmp = path[:-len(".npz")] + ".tmp.npz" if path.endswith(".npz") else path + ".tmp.npz"
    np.savez(tmp, __feats__=np.array(feats), __val__=np.array(json.dumps(val)), __seed__=np.array(seed),
             __context__=np.array(context), __dims__=np.array(dims), **arrays)
    os.replace(tmp, path)


LAYERS = {2: (nn.Conv2d, nn.BatchNorm2d, nn.ConvTranspose2d, nn.MaxPool2d),
          3: (nn.Conv3d, nn.BatchNorm3d, nn.ConvTranspose3d, nn.MaxPool3d)}


class Block(nn.Module):
    def __init__(self, cin, cout, dims=2):
        super().__init__()
        conv, bn = LAYERS[dims][:2]
        self.c1 = conv(cin, cout, 3, padding=1, bias=False)
        self.b1 = bn(cout)
        self.c2 = conv(cout, cout, 3, padding=1, bias=False)
        self.b2 = bn(cout)

    def forward(self, x):
        x = F.leaky_relu(self.b1(self.c1(x)), 0.01)
        return F.leaky_relu(self.b2(self.c2(x)), 0.01)


class UNet(nn.Module):
    """dims=2: input (B, n_in slices, X, Y); dims=3: input (B, n_in, X, Y, Z). Sizes divisible by
    2**(len(feats)-1)."""

    def __init__(self, n_in=5, n_out=10, feats=(16, 32, 64, 128, 192), dims=2):
        super().__init__()
        conv, _, upconv, pool = LAYERS[dims]
        self.enc = nn.ModuleList()
        c = n_in
        for f in feats:
            self.enc.append(Block(c, f, dims))
            c = f
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for f in reversed(feats[:-1]):
            self.up.append(upconv(c, f, 2, stride=2))
            self.dec.append(Block(2 * f, f, dims))
            c = f
        self.head = conv(c, n_out, 1)
        self.pool = pool(2)

    def forward(self, x):
        skips = []
        n = len(self.enc)
        for i, blk in enumerate(self.enc):
            x = blk(x)
            if i < n - 1:
                skips.append(x)
                x = self.pool(x)
        for i, (up, dec) in enumerate(zip(self.up, self.dec)):
            x = up(x)
            x = dec(torch.cat([x, skips[n - 2 - i]], 1))
        return self.head(x)
