#!/usr/bin/python3
"""Writes the tiny 3-D ("volume") contouring network used by tests/contouring/test_volume.cpp:
volume_fixture.pt (TorchScript) and its model card volume_fixture.json, both committed.

The network is one Conv3d (1 -> 3 channels, 3x3x3, zero padding) whose kernels each have a
single non-zero tap, so every output channel is the input moved by one voxel along one axis,
scaled and offset into a logit that is positive only where the input is bright
(x > 1.4, i.e. HU > 700 after the card's normalisation x = clip(HU, -1000, 1000) / 500):

  channel 0 "ZPlus": logit(i, j, k) = 10 * x(i, j, k - 1) - 14  (+1 voxel z, superior)
  channel 1 "XPlus": logit(i, j, k) = 10 * x(i - 1, j, k) - 14  (+1 voxel x, left)
  channel 2 "YMinus": logit(i, j, k) = 10 * x(i, j + 1, k) - 14  (-1 voxel y, anterior)

Input [1, 1, X, Y, Z] with z fastest; the axes are the model grid's x (right->left),
y (anterior->posterior), z (inferior->superior), so a transposed or reversed axis in the C++
moves the masks the wrong way. Run with /usr/bin/python3 (torch 1.13):
  /usr/bin/python3 tests/contouring/data/make_volume_fixture.py
"""
import json
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
GAIN, OFFSET = 10.0, 14.0


class Shift3d(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(1, 3, kernel_size=3, padding=1, bias=True)
        with torch.no_grad():
            self.conv.weight.zero_()
            # out[c, i, j, k] = sum_t w[c, 0, ti, tj, tk] * x[i + ti - 1, j + tj - 1, k + tk - 1]
            self.conv.weight[0, 0, 1, 1, 0] = GAIN  # x(i, j, k - 1)
            self.conv.weight[1, 0, 0, 1, 1] = GAIN  # x(i - 1, j, k)
            self.conv.weight[2, 0, 1, 2, 1] = GAIN  # x(i, j + 1, k)
            self.conv.bias.fill_(-OFFSET)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.size(1) != 1:
            raise ValueError("expected input [1, 1, X, Y, Z]")
        return self.conv(x)


def main():
    torch.manual_seed(0)
    module = torch.jit.script(Shift3d().eval())
    module.save(os.path.join(HERE, "volume_fixture.pt"))
    card = {
        "name": "isoline-test-volume-fixture",
        "version": "0.1",
        "file": "volume_fixture.pt",
        "architecture": "test fixture: one Conv3d, single-tap kernels (make_volume_fixture.py)",
        "structures": ["ZPlus", "XPlus", "YMinus"],
        "input": {
            "kind": "volume",
            "window_slices": 160,
            "spacing_mm": [3.906, 3.906, 2.5],
            "orientation": "LPS identity: i = patient right->left, j = anterior->posterior, "
                           "k = inferior->superior; tensor [1, 1, X, Y, Z], z fastest",
            "intensity": {"clip_hu": [-1000.0, 1000.0], "scale": 0.002, "outside_hu": -1000.0},
            "multiple_of": 16,
            "body_threshold_hu": -500.0,
        },
        "threshold": 0.5,
        "scope": "synthetic test volumes",
    }
    with open(os.path.join(HERE, "volume_fixture.json"), "w") as f:
        json.dump(card, f, indent=2)
        f.write("\n")
    # Self-check of the axis convention before anything is committed.
    x = torch.full((1, 1, 6, 6, 6), -2.0)
    x[0, 0, 2, 3, 4] = 1.8
    y = module(x)[0] > 0
    assert y[0, 2, 3, 5] and y[1, 3, 3, 4] and y[2, 2, 2, 4] and int(y.sum()) == 3


if __name__ == "__main__":
    main()
