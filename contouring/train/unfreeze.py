"""Recover trainable weights from an exported (frozen) 2.5D TorchScript model.

  /usr/bin/python3 contouring/train/unfreeze.py --model contouring/models/hn_oar_ptv_2p5d.pt \
      --out /work/cache/card/best_state.npz

export.py freezes the network (torch.jit.freeze), which folds each BatchNorm into the
convolution before it. This script reads the folded convolutions back in the order the
network applies them and writes a train.py checkpoint (best_state.npz) of a UNet whose
BatchNorms are identities (weight 1, bias = the folded bias, running mean 0, running
variance 1 - eps): in eval mode it computes exactly what the exported module computes. Train
from it with `train.py --init ... --freeze-bn` (BatchNorm kept in eval mode: the batch
statistics of a fine-tuning batch would replace the folded ones). Used when only the shipped
model remains (the GPU host's checkpoint of card 2.0 is gone). The script checks that the
rebuilt network (with mirror averaging when the module has it) reproduces the module.
"""
import argparse, json, os, re, sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import STRUCTURES  # noqa
from export import MirrorAverage  # noqa
from model import UNet, write_state_npz  # noqa


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="exported TorchScript (.pt) of a 2.5D network")
    ap.add_argument("--card", help="its model card (default: --model with .json)")
    ap.add_argument("--out", required=True, help="best_state.npz to write")
    a = ap.parse_args()
    card = json.load(open(a.card or os.path.splitext(a.model)[0] + ".json"))
    if card["input"].get("kind", "slices") != "slices":
        sys.exit("unfreeze.py: only 2.5D (slices) cards are supported")
    n_in = int(card["input"]["slices"])
    m = re.search(r"features \[([0-9, ]+)\]", str(card.get("architecture", "")))
    if not m:
        sys.exit(f"unfreeze.py: the card's architecture names no features: {card.get('architecture')!r}")
    feats = tuple(int(f) for f in m.group(1).split(","))
    ts = torch.jit.load(a.model, map_location="cpu")
    graph = ts.inlined_graph if hasattr(ts, "inlined_graph") else ts.graph
    # Constants used by the convolutions, in order of first use (the mirror pass reuses them).
    consts = {}
    for node in graph.nodes():
        if node.kind() == "prim::Constant" and node.output().type().kind() == "TensorType":
            consts[node.output().debugName()] = node.output().toIValue()
    convs, seen = [], set()
    for node in graph.nodes():
        if node.kind() != "aten::_convolution":
            continue
        ins = [i.debugName() for i in node.inputs()]
        if ins[1] in seen:  # the mirror pass's second use of a weight
            continue
        seen.add(ins[1])
        convs.append((consts.get(ins[1]), consts.get(ins[2]), bool(node.inputsAt(6).toIValue())))
    net = UNet(n_in, len(STRUCTURES), feats, 2)
    # Module order of application: enc blocks (c1, c2), then per level up, dec (c1, c2), head.
    order = []
    for blk in net.enc:
        order += [("conv", blk.c1, blk.b1), ("conv", blk.c2, blk.b2)]
    for up, dec in zip(net.up, net.dec):
        order += [("up", up, None), ("conv", dec.c1, dec.b1), ("conv", dec.c2, dec.b2)]
    order.append(("head", net.head, None))
    if len(order) != len(convs):
        sys.exit(f"unfreeze.py: {a.model}: {len(convs)} convolutions, the UNet {feats} has {len(order)}")
    with torch.no_grad():
        for (kind, mod, bn), (w, b, transposed) in zip(order, convs):
            if tuple(mod.weight.shape) != tuple(w.shape) or transposed != (kind == "up"):
                sys.exit(f"unfreeze.py: shape/kind mismatch at {kind} {tuple(mod.weight.shape)} vs {tuple(w.shape)}")
            mod.weight.copy_(w)
            if bn is None:
                mod.bias.copy_(b)
            else:
                bn.weight.fill_(1.0)
                bn.bias.copy_(b)
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
    net.eval()
    # Check: the rebuilt network (with the mirror average, as exported) against the module.
    x = torch.randn(2, n_in, 96, 80) * 0.5 - 0.5
    with torch.no_grad():
        ref = ts(x)
        mine = MirrorAverage(net).eval()(x)
        plain = net(x)
    err_mirror = float((ref - mine).abs().max())
    err_plain = float((ref - plain).abs().max())
    err = min(err_mirror, err_plain)
    if err > 1e-3:
        sys.exit(f"unfreeze.py: the rebuilt network differs from {a.model} by {err:.3g} (logits)")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    write_state_npz(a.out, net.state_dict(), feats,
                    {"unfrozen_from": os.path.basename(a.model), "version": card.get("version")},
                    int(card.get("training", {}).get("seed", 0)), (n_in - 1) // 2, 2)
    print(f"{a.out}: {len(convs)} convolutions, max logit difference {err:.2g} "
          f"({'with' if err_mirror <= err_plain else 'without'} mirror averaging)")


if __name__ == "__main__":
    main()
