"""Train the Isoline head-and-neck auto-contouring model (2.5D U-Net, CPU friendly; or, with
--dims 3, a 3D U-Net on windows of the volume, a GPU recipe: see docs/contouring.md).

One command, fixed seed:
  /usr/bin/python3 contouring/train/train.py --seed 0 --out /work/cache/run0
On a GPU host (PyTorch 2.x, CUDA; contouring/train/gpu_train.sh runs this in one call):
  python3 contouring/train/train.py --device cuda --workers 8 --amp --feats 24,48,96,192,256 \
      --batch 48 --time-limit 480 --cache data_u8.npz --out run
Resume an interrupted run (same schedule):
  /usr/bin/python3 contouring/train/train.py --seed 0 --out /work/cache/run0 --resume
A 3D network on a GPU host (contouring/train/gpu_train.sh RUNS line, session 9):
  python3 contouring/train/train.py --device cuda --amp --dims 3 --feats 16,32,64,128,256 \
      --patch 96,96,64 --batch 4 --fg-frac 0.5 --time-limit 470 --cudnn-benchmark --cache data_u8.npz --out run
Continue from an earlier run's weights with a new schedule:
  /usr/bin/python3 contouring/train/train.py --seed 1 --out /work/cache/run2 --init /work/cache/run1/best.pt --lr 1e-3 --iters 6000

Data: the OpenKBP train split (170 patients) for training, the validation split (33) for
model selection only. Cases are resampled once to the model grid by preprocess.py and
cached (--cache, built automatically when missing). Labels missing for a patient are
masked out of the loss per structure (missing = not delineated, not "absent").
"""
import argparse, copy, json, math, os, re, sys, time
import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import STRUCTURES, OARS, LR_SWAP, CONTEXT, N_IN, HU_MIN, HU_MAX, HU_SCALE, BODY_HU, cache_ct, air_outside_body  # noqa: E402
from common import normalise as norm  # noqa: E402
from model import UNet, read_checkpoint, write_state_npz  # noqa: E402

FEATS = (12, 24, 48, 96, 128)
CROP = 96
NS = len(STRUCTURES)
SWAP_IDX = [STRUCTURES.index(LR_SWAP.get(s, s)) for s in STRUCTURES]


def load_cache(path):
    z = np.load(path)
    cases = {"train": [], "validation": []}
    names = sorted({k.rsplit("/", 1)[0] for k in z.files})
    for n in names:
        split, pt = n.split("/")
        ct = cache_ct(z, n)
        if MASK_OUTSIDE:
            ct = air_outside_body(ct)
        pad = np.full(ct.shape[:2] + (CONTEXT,), -1000, np.int16)
        ctp = np.concatenate([pad, ct, pad], axis=2)
        bits = z[n + "/bits"]
        # axial slices holding each structure (for foreground-biased sampling)
        zlist = [np.nonzero(((bits >> k) & 1).any((0, 1)))[0] for k in range(NS)]
        cases[split].append({"name": pt, "ct": ctp, "bits": bits, "zlist": zlist,
                             "present": z[n + "/present"].astype(np.float32)})
    for s in cases:
        cases[s].sort(key=lambda c: int(c["name"].split("_")[1]))
    return cases


def unpack(bits):
    return ((bits[None].astype(np.int32) >> np.arange(NS)[:, None, None]) & 1).astype(np.float32)


FG_FRAC = 0.0  # --fg-frac
ELASTIC = 0.0  # --elastic
SHELLS = 0.0  # --shells
MASK_OUTSIDE = False  # --air-outside
FREEZE_BN = False  # --freeze-bn


def pick(cases, rng):
    """(case index, axial slice) of one training stack (see sample_batch)."""
    i = int(rng.integers(len(cases)))
    c = cases[i]
    nz = c["bits"].shape[2]
    if FG_FRAC > 0 and rng.random() < FG_FRAC:
        ks = [k for k in range(NS) if len(c["zlist"][k])]
        zl = c["zlist"][ks[rng.integers(len(ks))]] if ks else np.arange(nz)
        return i, int(zl[rng.integers(len(zl))])
    return i, int(rng.integers(nz))


def sample_batch(cases, rng, bs):
    """bs random 5-slice stacks. With probability FG_FRAC a stack is centred on a slice that
    holds a structure chosen uniformly among those delineated for the patient (so short,
    rarely delineated organs such as Larynx and Esophagus are seen as often as the others);
    otherwise the slice is uniform over the labelled slab."""
    xs, ys, ms = [], [], []
    for _ in range(bs):
        i, z = pick(cases, rng)
        c = cases[i]
        nx, ny, nz = c["bits"].shape
        img = norm(c["ct"][:, :, z:z + N_IN]).transpose(2, 0, 1)  # (C, X, Y)
        lab = unpack(c["bits"][:, :, z])
        # crop/pad to CROP x CROP around the (body-cropped) array centre with a random shift
        out_i = np.full((N_IN, CROP, CROP), HU_MIN / HU_SCALE, np.float32)
        out_l = np.zeros((NS, CROP, CROP), np.float32)
        ox = nx // 2 - CROP // 2 + rng.integers(-12, 13)
        oy = ny // 2 - CROP // 2 + rng.integers(-12, 13)
        sx0, sy0 = max(ox, 0), max(oy, 0)
        sx1, sy1 = min(ox + CROP, nx), min(oy + CROP, ny)
        if sx1 > sx0 and sy1 > sy0:
            out_i[:, sx0 - ox:sx1 - ox, sy0 - oy:sy1 - oy] = img[:, sx0:sx1, sy0:sy1]
            out_l[:, sx0 - ox:sx1 - ox, sy0 - oy:sy1 - oy] = lab[:, sx0:sx1, sy0:sy1]
        xs.append(out_i); ys.append(out_l); ms.append(c["present"])
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys)), torch.from_numpy(np.stack(ms))


class BatchStream(torch.utils.data.IterableDataset):
    """sample_batch in DataLoader worker processes (--workers N): worker w draws from its own
    generator seeded (seed, start iteration, w); the DataLoader takes their batches in turn, so
    a run is reproducible for a given N (N = 0 samples in the main process, as before)."""

    def __init__(self, cases, seed, start, bs):
        self.cases, self.seed, self.start, self.bs = cases, seed, start, bs

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, self.start, info.id if info else 0])
        while True:
            yield sample_batch(self.cases, rng, self.bs)


def norm_t(hu):
    """norm() on the device: int16 HU tensor -> float network input."""
    return hu.float().clamp_(HU_MIN, HU_MAX) / HU_SCALE


def stack_cases(cases):
    """CT (int16 HU, with its CONTEXT padding slices each side) and label bits of every case,
    each centred in x, y of one padded array (z from 0; HU_MIN and 0 around), and each case's
    (x, y) offset in it."""
    X = max(c["bits"].shape[0] for c in cases)
    Y = max(c["bits"].shape[1] for c in cases)
    Z = max(c["bits"].shape[2] for c in cases)
    ct = torch.full((len(cases), X, Y, Z + 2 * CONTEXT), int(HU_MIN), dtype=torch.int16)
    bits = torch.zeros((len(cases), X, Y, Z), dtype=torch.int16)
    offsets = []
    for i, c in enumerate(cases):
        nx, ny, nz = c["bits"].shape
        ox, oy = (X - nx) // 2, (Y - ny) // 2
        ct[i, ox:ox + nx, oy:oy + ny, :nz + 2 * CONTEXT] = torch.from_numpy(c["ct"].astype(np.int16))
        bits[i, ox:ox + nx, oy:oy + ny, :nz] = torch.from_numpy(c["bits"].astype(np.int16))
        offsets.append((ox, oy))
    return ct, bits, offsets


class DeviceData:
    """The training cases held on the training device (--sampler device): CT (int16 HU) and
    label bits of every case centred in one padded array, so that a batch is one gather on the
    device instead of stacks assembled by sampling processes and copied over. The (case, slice)
    choice is sample_batch's; the CROP x CROP window (with its random shift) is cut by the
    augmentation's resampling (augment(..., src=True)), from the whole slice."""

    def __init__(self, cases, device):
        self.cases = cases
        ct, bits, _ = stack_cases(cases)
        self.ct, self.bits = ct.to(device), bits.to(device)
        self.present = torch.from_numpy(np.stack([c["present"] for c in cases])).to(device)
        self.dz = torch.arange(N_IN, device=device)
        self.shift = torch.arange(NS, device=device, dtype=torch.int16)[None, :, None, None]

    def batch(self, rng, bs):
        """bs whole padded slices (x, y, m) as sample_batch chooses them (pick)."""
        ci, zi = zip(*(pick(self.cases, rng) for _ in range(bs)))
        return self.gather(ci, zi)

    def gather(self, ci, zi):
        dev = self.ct.device
        ci = torch.tensor(ci, device=dev)
        zi = torch.tensor(zi, device=dev)
        x = norm_t(self.ct[ci[:, None], :, :, zi[:, None] + self.dz[None]])  # (B, N_IN, X, Y)
        y = ((self.bits[ci, :, :, zi][:, None] >> self.shift) & 1).float()  # (B, S, X, Y)
        return x, y, self.present[ci].clone()


def augment(x, y, m, g, src=False):
    """Batch augmentation in torch: LR flip with label swap, rotation/scale, resolution,
    intensity, noise. x (B,C,X,Y) normalised HU; y (B,S,X,Y); m (B,S) presence; all on the
    device of generator g. src: x and y are whole (padded) slices, cut here to CROP x CROP
    around their centre shifted by up to +-12 pixels (sample_batch cuts them otherwise)."""
    B = x.shape[0]
    dev = x.device
    r = lambda *s: torch.rand(*s, generator=g, device=dev)
    # left-right mirror: X axis is patient right->left
    flip = r(B) < 0.5
    if flip.any():
        x[flip] = x[flip].flip(2)
        y[flip] = y[flip].flip(2)[:, SWAP_IDX]
        m[flip] = m[flip][:, SWAP_IDX]
    # rotation +-12 deg, scale 0.85..1.15 (covers the spread of scanner pixel sizes)
    ang = (r(B) * 2 - 1) * math.radians(12)
    sc = 0.85 + 0.3 * r(B)
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack([torch.stack([cos, -sin, torch.zeros(B, device=dev)], 1),
                         torch.stack([sin, cos, torch.zeros(B, device=dev)], 1)], 1)
    size = [B, x.shape[1], CROP, CROP] if src else list(x.shape)
    grid = F.affine_grid(theta, size, align_corners=False)
    if ELASTIC > 0:  # smooth random displacements: a 6 x 6 lattice of N(0, ELASTIC) offsets, bicubic
        d = torch.randn(B, 2, 6, 6, generator=g, device=dev) * ELASTIC
        grid = grid + F.interpolate(d, size=list(grid.shape[1:3]), mode="bicubic",
                                    align_corners=False).permute(0, 2, 3, 1)
    if src:  # crop-normalised -> whole-slice-normalised coordinates (grid[..., 0] is along Y)
        shift = (r(B, 1, 1, 2) * 2 - 1) * (2 * 12 / CROP)
        scale = torch.tensor([CROP / x.shape[3], CROP / x.shape[2]], device=dev)
        grid = (grid + shift) * scale
    bg = HU_MIN / HU_SCALE
    x = F.grid_sample(x - bg, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + bg
    y = (F.grid_sample(y, grid, mode="bilinear", padding_mode="zeros", align_corners=False) > 0.5).float()
    if SHELLS > 0:
        x = add_devices(x, g, SHELLS)
    return blur_and_intensity(x, g), y, m


def add_devices(x, g, p):
    """--shells P: with probability P per sample, immobilisation devices next to the patient,
    as on clinical planning CTs (OpenKBP's CTs hold air outside the body, so the network never
    saw any): a shell 1-2 pixels thick over a random sector of 90-360 degrees around the body
    centre (a thermoplastic mask, a head rest) at -450..300 HU, hugging the skin or, half of
    the time, 1-3 pixels off it (a mask standing off the face: the inference's air outside
    the body keeps what lies within a pixel of it, and a shell joined to the body anywhere in
    3-D is part of it; docs/contouring.md, "Devices"), and/or (each
    half of the time) a flat plate 1-4 pixels thick below the patient's back, touching it or
    one pixel off, at -300..300 HU (a couch top or base plate). The same device on every input
    slice of a sample; labels unchanged. x (B, C, X, Y) normalised HU; X right->left, Y
    anterior->posterior."""
    B, C, X, Y = x.shape
    dev = x.device
    # All samples at once, with one value read back to the host per batch (which samples get a
    # shell): on a GPU a per-sample loop with Python decisions waits for the device at every step.
    r = lambda *s: torch.rand(*s, generator=g, device=dev)
    body = x > BODY_HU / HU_SCALE  # (B, C, X, Y)
    rows_any = body.any(1).any(1)  # (B, Y)
    use = (r(B) < p) & rows_any.any(1)
    kind = r(B)
    shell_on, plate_on = use & (kind < 0.75), use & (kind >= 0.5)
    # shell: a ring from chessboard distance gap+1 to gap+t around each slice's body
    t = 1 + (r(B) < 0.4).long()
    gap = torch.where(r(B) < 0.5, torch.zeros(B, dtype=torch.long, device=dev), 1 + (3 * r(B)).long().clamp(max=2))
    start, width = r(B) * 2 * math.pi, (90 + 270 * r(B)) * (math.pi / 180)  # the shell's sector
    dev_mask = torch.zeros_like(body)
    idx = shell_on.nonzero().squeeze(1)  # one read-back per batch: only these samples are grown
    if idx.numel():
        sb = body[idx]
        k = idx.numel()
        grown, gw = [sb], sb.reshape(k * C, 1, X, Y).float()
        for _ in range(5):  # square growth by one pixel at a time: chessboard distance 1..5
            gw = F.max_pool2d(gw, 3, stride=1, padding=1)
            grown.append(gw.reshape(k, C, X, Y) > 0)
        grown = torch.stack(grown)  # (6, k, C, X, Y)
        ki = torch.arange(k, device=dev)
        ring = grown[gap[idx] + t[idx], ki] & ~grown[gap[idx], ki]
        c = sb[:, C // 2]
        c = torch.where(c.flatten(1).any(1)[:, None, None], c, sb.any(1)).float()  # (k, X, Y)
        xi = torch.arange(X, device=dev, dtype=torch.float32)[:, None].expand(X, Y)
        yi = torch.arange(Y, device=dev, dtype=torch.float32)[None, :].expand(X, Y)
        n = c.sum((1, 2)).clamp(min=1)
        cx, cy = (c * xi).sum((1, 2)) / n, (c * yi).sum((1, 2)) / n
        ang = torch.atan2(yi[None] - cy[:, None, None], xi[None] - cx[:, None, None])
        sector = torch.remainder(ang - start[idx, None, None], 2 * math.pi) < width[idx, None, None]
        dev_mask[idx] = ring & sector[:, None]
    # plate: below the lowest (most posterior) body row, touching or one pixel off
    jj = torch.arange(Y, device=dev)
    jmax = torch.where(rows_any, jj[None], torch.full_like(jj[None], -1)).max(1).values
    j0 = jmax + 1 + (r(B) < 0.3).long()
    thick = 1 + (4 * r(B)).long().clamp(max=3)
    plate = (jj[None] >= j0[:, None]) & (jj[None] < (j0 + thick)[:, None])  # (B, Y)
    dev_mask |= plate[:, None, None, :] & plate_on[:, None, None, None]
    dev_mask &= ~body
    val = torch.where(kind >= 0.75, -300 + 600 * r(B), -450 + 750 * r(B))  # a plate alone, else the shell's
    return torch.where(dev_mask, (val / HU_SCALE)[:, None, None, None].to(x.dtype), x)


def blur_and_intensity(x, g):
    """The image-only augmentations of augment() and augment3d(), for (B, C, spatial...) on the
    device of generator g: a quarter of the batch blurred by down/up sampling (resolution),
    then gain 0.9..1.1, offset +-60 HU and gaussian noise up to 30 HU."""
    B, dev = x.shape[0], x.device
    r = lambda *s: torch.rand(*s, generator=g, device=dev)
    one = (B,) + (1,) * (x.dim() - 1)
    mode = "bilinear" if x.dim() == 4 else "trilinear"
    low = r(B) < 0.25
    if low.any():
        f = float(1.3 + 0.7 * r(1))
        xl = x[low]
        size = [max(8, int(round(n / f))) for n in xl.shape[2:]]
        x[low] = F.interpolate(F.interpolate(xl, size=size, mode=mode, align_corners=False),
                               size=xl.shape[2:], mode=mode, align_corners=False)
    gain = 0.9 + 0.2 * r(*one)
    off = (r(*one) * 2 - 1) * (60 / HU_SCALE)
    x = x * gain + off
    sig = r(*one) * (30 / HU_SCALE)
    return x + torch.randn(x.shape, generator=g, device=dev) * sig


PATCH = (96, 96, 64)  # --patch: 3D training window (x, y, z voxels), --dims 3


class VolumeData:
    """--dims 3: the training cases on the device (CT int16 HU and label bits, each centred in
    x, y of one padded array, z from 0) and PATCH-sized windows cut from them by one resampling
    per batch (augment3d). A window is centred, with probability FG_FRAC, on a uniform point of
    the bounding box of a structure chosen uniformly among those delineated for the patient
    (so short, rarely delineated organs are seen as often as the others), else on a uniform
    point of the case's array."""

    def __init__(self, cases, device):
        assert CONTEXT == 0, "--dims 3 reads the cases without padding slices"
        self.cases = cases
        ct, bits, offsets = stack_cases(cases)
        self.extent, self.boxes = [], []
        for c, (ox, oy) in zip(cases, offsets):
            nx, ny, nz = c["bits"].shape
            lo = np.array([ox, oy, 0])
            self.extent.append((lo, lo + [nx, ny, nz]))
            box = []
            for k in range(NS):
                idx = np.nonzero((c["bits"] >> k) & 1)
                box.append((lo + [v.min() for v in idx], lo + [v.max() + 1 for v in idx]) if len(idx[0]) else None)
            self.boxes.append(box)
        self.ct, self.bits = ct.to(device), bits.to(device)
        self.present = torch.from_numpy(np.stack([c["present"] for c in cases])).to(device)
        self.shift = torch.arange(NS, device=device, dtype=torch.int16)[None, :, None, None, None]

    def pick(self, rng):
        """(case index, window centre in voxels of the padded array)."""
        i = int(rng.integers(len(self.cases)))
        lo, hi = self.extent[i]
        if FG_FRAC > 0 and rng.random() < FG_FRAC:
            boxes = [b for b in self.boxes[i] if b is not None]
            if boxes:
                lo, hi = boxes[rng.integers(len(boxes))]
        return i, lo + rng.random(3) * (hi - lo) - 0.5

    def batch(self, rng, bs):
        ci, centre = zip(*(self.pick(rng) for _ in range(bs)))
        return list(ci), np.stack(centre)


def augment3d(data, ci, centre, g):
    """Batch of PATCH windows of the cases ci around the voxel positions centre (B, 3), with
    the augmentations of augment() in 3D: left-right mirror with label swap, rotation about
    the cranio-caudal axis +-12 deg, scale 0.85..1.15 in-plane and 0.9..1.1 along z, blur,
    intensity and noise; image and labels cut by the same resampling. Returns x (B, 1, PATCH),
    y (B, S, PATCH), m (B, S)."""
    dev = data.ct.device
    B = len(ci)
    r = lambda *s: torch.rand(*s, generator=g, device=dev)
    cit = torch.tensor(ci, device=dev)
    X, Y, Z = data.ct.shape[1:]
    flip = r(B) < 0.5
    ang = (r(B) * 2 - 1) * math.radians(12)
    sxy = 0.85 + 0.3 * r(B)
    sz = 0.9 + 0.2 * r(B)
    mx = (1 - 2 * flip.float()) * sxy  # mirror: the window is read right-left reversed
    cos, sin = torch.cos(ang), torch.sin(ang)
    P = [torch.arange(n, device=dev, dtype=torch.float32) - (n - 1) / 2 for n in PATCH]
    dx, dy, dz = torch.meshgrid(*P, indexing="ij")  # offsets in voxels from the window centre
    c = torch.tensor(centre, device=dev, dtype=torch.float32)
    v = lambda t: t.view(B, 1, 1, 1)
    vx = v(c[:, 0]) + v(cos * mx) * dx - v(sin * sxy) * dy
    vy = v(c[:, 1]) + v(sin * mx) * dx + v(cos * sxy) * dy
    vz = v(c[:, 2]) + v(sz) * dz
    # grid_sample's last coordinate indexes the input's last axis (z); align_corners=False
    grid = torch.stack([(2 * vz + 1) / Z - 1, (2 * vy + 1) / Y - 1, (2 * vx + 1) / X - 1], -1)
    bg = HU_MIN / HU_SCALE
    img = norm_t(data.ct[cit][:, None])
    x = F.grid_sample(img - bg, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + bg
    lab = F.grid_sample(data.bits[cit][:, None].float(), grid, mode="nearest", padding_mode="zeros",
                        align_corners=False).to(torch.int16)
    y = ((lab >> data.shift) & 1).float()
    m = data.present[cit].clone()
    if flip.any():
        y[flip] = y[flip][:, SWAP_IDX]
        m[flip] = m[flip][:, SWAP_IDX]
    return blur_and_intensity(x, g), y, m


POS_WEIGHT = torch.full((NS,), 10.0)
RARE = ("Esophagus", "Larynx")  # delineated in under half of the patients


DICE_ON_ABSENT = False  # --dice-on-absent: the first-stage behaviour (see below)


def per_voxel(m, y):
    """Presence m (B, S) shaped to broadcast over y (B, S, spatial...)."""
    return m.view(*m.shape, *([1] * (y.dim() - 2)))


def spatial_sum(t):
    """Sum over the batch and the spatial axes of (B, S, spatial...): one figure per structure."""
    return t.sum([0] + list(range(2, t.dim())))


def loss_fn(logits, y, m):
    """BCE (positives weighted POS_WEIGHT) + batch soft Dice, each masked per structure per
    patient (m: 1 = delineated). The positive weight keeps the small organs' sigmoids out of
    saturation early in training (with plain BCE their logits collapse to < -10 within a few
    hundred iterations and the Dice gradient vanishes)."""
    mm = per_voxel(m, y).expand_as(y)
    pw = per_voxel(POS_WEIGHT[None].to(logits.device), y)
    bce = F.binary_cross_entropy_with_logits(logits, y, reduction="none", pos_weight=pw)
    bce = (bce * mm).sum() / mm.sum().clamp(min=1)
    p = torch.sigmoid(logits) * mm
    yy = y * mm
    inter = spatial_sum(p * yy)
    den = spatial_sum(p) + spatial_sum(yy)
    # Dice only where the batch holds positives: for a structure delineated but absent from
    # every sampled slice, soft Dice only says "predict nothing" and drives the sigmoid into
    # saturation (BCE already handles true negatives).
    valid = (m.sum(0) > 0) if DICE_ON_ABSENT else (spatial_sum(yy) > 0)
    dice = (2 * inter + 1) / (den + 1)
    dl = (1 - dice[valid]).mean() if valid.any() else logits.sum() * 0
    return bce + dl


@torch.no_grad()
def predict_volume(model, ct_padded, bs=16, device="cpu"):
    """ct_padded: int16 (X, Y, Z + 2*CONTEXT). Returns float32 probabilities (S, X, Y, Z)."""
    nx, ny, nzp = ct_padded.shape
    nz = nzp - 2 * CONTEXT
    px, py = (-nx) % 16, (-ny) % 16
    img = norm(ct_padded)
    img = np.pad(img, ((0, px), (0, py), (0, 0)), constant_values=HU_MIN / HU_SCALE)
    out = np.zeros((NS, nx, ny, nz), np.float32)
    for z0 in range(0, nz, bs):
        zs = range(z0, min(z0 + bs, nz))
        xb = np.stack([img[:, :, z:z + N_IN].transpose(2, 0, 1) for z in zs])
        pr = torch.sigmoid(model(torch.from_numpy(xb).to(device)).float()).cpu().numpy()
        for k, z in enumerate(zs):
            out[:, :, :, z] = pr[k, :, :nx, :ny]
    return out


@torch.no_grad()
def predict_volume3d(model, ct, device="cpu"):
    """ct: int16 (X, Y, Z) (a case's "ct" with CONTEXT = 0). The whole volume in one pass, each
    axis padded to a multiple of 16 (as the C++ inference does). Returns (S, X, Y, Z)."""
    pad = [(0, (-n) % 16) for n in ct.shape]
    img = np.pad(norm(ct), pad, constant_values=HU_MIN / HU_SCALE)
    x = torch.from_numpy(img)[None, None].to(device)
    with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=AMP):
        logits = model(x)
    pr = torch.sigmoid(logits.float())[0].cpu().numpy()
    return pr[:, :ct.shape[0], :ct.shape[1], :ct.shape[2]]


AMP = False  # --amp (also for the 3D validation pass)


def validate(model, cases, device="cpu", dims=2):
    model.eval()
    per = {s: [] for s in STRUCTURES}
    for c in cases:
        prob = predict_volume3d(model, c["ct"], device) if dims == 3 else predict_volume(model, c["ct"], device=device)
        for k, s in enumerate(STRUCTURES):
            if c["present"][k] < 0.5:
                continue
            ref = ((c["bits"] >> k) & 1).astype(bool)
            pred = prob[k] >= 0.5
            d = 2 * (ref & pred).sum() / max(ref.sum() + pred.sum(), 1)
            per[s].append(float(d))
    set_train(model)
    res = {s: (float(np.mean(v)) if v else None) for s, v in per.items()}
    oar = [res[s] for s in OARS if res[s] is not None]
    res["mean_oar"] = float(np.mean(oar))
    res["min_oar"] = float(np.min(oar))
    return res


def set_train(model):
    """model.train(), with BatchNorm left in eval mode under --freeze-bn (fine-tuning from a
    checkpoint whose statistics must stay: e.g. one rebuilt by unfreeze.py)."""
    model.train()
    if FREEZE_BN:
        for mod in model.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.eval()


def load_init(path, model):
    """State dict of an earlier checkpoint (best.pt or best_state.npz) for `model`. A first
    convolution trained on fewer input slices is centred in the wider one (zeros elsewhere)."""
    sd = read_checkpoint(path)["model"]
    own = model.state_dict()
    for k, w in sd.items():
        if k in own and w.dim() == 4 and own[k].shape != w.shape and own[k].shape[0] == w.shape[0] \
                and own[k].shape[2:] == w.shape[2:] and (own[k].shape[1] - w.shape[1]) % 2 == 0:
            wide = torch.zeros(own[k].shape, dtype=w.dtype)
            o = (own[k].shape[1] - w.shape[1]) // 2
            wide[:, o:o + w.shape[1]] = w
            sd[k] = wide
    return sd


def main():
    global DICE_ON_ABSENT, FG_FRAC, ELASTIC, SHELLS, FREEZE_BN, MASK_OUTSIDE, CONTEXT, N_IN, PATCH, AMP
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "..", "shared", "data", "openkbp"))
    ap.add_argument("--cache", default="/work/cache/openkbp_model_grid.npz")
    ap.add_argument("--iters", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--val-every", type=int, default=300)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    ap.add_argument("--pos-weight-rare", type=float, default=10.0,
                    help="BCE positive weight of Esophagus and Larynx (others: 10)")
    ap.add_argument("--reinit-head", help="comma-separated structures whose output channel is re-initialised (with --init)")
    ap.add_argument("--dice-on-absent", action="store_true",
                    help="also apply soft Dice to delineated structures with no positive voxel in the batch "
                         "(how the shipped model's first stage was trained; slows down small organs)")
    ap.add_argument("--fg-frac", type=float, default=0.0,
                    help="fraction of stacks centred on a slice of a randomly chosen delineated structure "
                         "(0 = uniform slices, the first two stages of the shipped model)")
    ap.add_argument("--stop-after", type=int, default=0,
                    help="stop after this many iterations while keeping the --iters learning-rate schedule "
                         "(how the shipped model's second stage ended)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--feats", default=",".join(map(str, FEATS)),
                    help="U-Net features per level (default: the shipped model's)")
    ap.add_argument("--workers", type=int, default=0,
                    help="DataLoader processes sampling the batches (0: the main process, as the CPU recipe)")
    ap.add_argument("--amp", action="store_true", help="bfloat16 autocast on CUDA")
    ap.add_argument("--time-limit", type=float, default=0,
                    help="seconds of training (validation excluded): the learning rate decays with the "
                         "training time spent instead of the iteration count, and the run stops when the "
                         "time is up; validation every --time-limit/8 s. The log's 'it N ... lr X' lines "
                         "replay the run's schedule with --lr-trace")
    ap.add_argument("--lr-trace", help="a train.py log: replay its learning rate per iteration (interpolated "
                                       "between the logged points) and its length, e.g. to repeat a "
                                       "--time-limit run with the same schedule")
    ap.add_argument("--context", type=int, default=CONTEXT,
                    help="adjacent slices each side of the predicted one (input: 2*K+1 slices; stored in the "
                         "checkpoint and the model card, which the C++ inference follows)")
    ap.add_argument("--elastic", type=float, default=0.0,
                    help="elastic deformation augmentation: standard deviation of the displacements of a 6 x 6 "
                         "control lattice, in units of the half crop width (0.03 = about 1.4 pixels; 0 = off, "
                         "as the shipped networks were trained)")
    ap.add_argument("--shells", type=float, default=0.0,
                    help="probability per sample of an immobilisation device next to the patient: a shell "
                         "touching the skin or 1-3 pixels off it, or a plate below the back (add_devices; --dims 2)")
    ap.add_argument("--air-outside", action="store_true",
                    help="train and validate on CTs with air outside the body region, as the C++ inference "
                         "feeds them (common.air_outside_body): devices not touching the patient removed")
    ap.add_argument("--freeze-bn", action="store_true",
                    help="keep BatchNorm statistics fixed (eval mode) while training: for fine-tuning, e.g. from "
                         "unfreeze.py's checkpoint")
    ap.add_argument("--sampler", choices=("host", "device"), default="host",
                    help="host: batches assembled on the CPU (by --workers processes), as the shipped networks "
                         "were trained; device: all training cases held on --device and batches gathered there "
                         "(no copies per batch; the crop is cut by the augmentation's resampling)")
    ap.add_argument("--ema", type=float, default=0.0,
                    help="validate and keep an exponential moving average of the weights with this decay per "
                         "iteration (e.g. 0.999; 0 = the weights themselves, as the shipped networks)")
    ap.add_argument("--weight-decay", type=float, default=1e-4, help="AdamW weight decay")
    ap.add_argument("--dims", type=int, choices=(2, 3), default=2,
                    help="2: the 2.5D network (--context slices each side as channels); 3: a 3D U-Net on "
                         "--patch windows of the volume (always with --sampler device; the C++ inference runs "
                         "it on the whole cropped volume)")
    ap.add_argument("--patch", default=",".join(map(str, PATCH)),
                    help="--dims 3 training window, voxels x,y,z (multiples of 16)")
    ap.add_argument("--cudnn-benchmark", action="store_true",
                    help="CUDA: let cuDNN pick its fastest (not bit-reproducible) convolution kernels; the "
                         "sampling and augmentation still follow --seed (default: deterministic kernels)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", help="start from the weights of this checkpoint (an earlier run's best.pt or "
                                   "best_state.npz); with a wider --context the first convolution's weights are "
                                   "placed on the centre slices and the new slices start at zero")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    feats = tuple(int(f) for f in a.feats.split(","))
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("train.py: --device cuda: no CUDA device is available")
    if device.type == "cuda":  # same kernels from run to run (a --time-limit run is replayed with --lr-trace)
        torch.backends.cudnn.benchmark = a.cudnn_benchmark
        torch.backends.cudnn.deterministic = not a.cudnn_benchmark
    if a.dims == 3:
        a.context, a.sampler = 0, "device"
        PATCH = tuple(int(v) for v in a.patch.split(","))
        if len(PATCH) != 3 or any(v % 16 for v in PATCH):
            sys.exit(f"train.py: --patch {a.patch}: three multiples of 16 expected")
        if a.reinit_head or a.elastic or a.shells:
            sys.exit("train.py: --reinit-head, --elastic and --shells are for --dims 2")
    AMP = a.amp
    CONTEXT, N_IN = a.context, 2 * a.context + 1
    DICE_ON_ABSENT = a.dice_on_absent
    FG_FRAC = a.fg_frac
    ELASTIC = a.elastic
    SHELLS, FREEZE_BN, MASK_OUTSIDE = a.shells, a.freeze_bn, a.air_outside
    for r in RARE:
        POS_WEIGHT[STRUCTURES.index(r)] = a.pos_weight_rare
    os.makedirs(a.out, exist_ok=True)
    if not os.path.exists(a.cache):
        import subprocess
        subprocess.check_call([sys.executable, os.path.join(HERE, "preprocess.py"), "--data", a.data, "--out", a.cache])
    cases = load_cache(a.cache)
    print(f"train {len(cases['train'])} validation {len(cases['validation'])}", flush=True)

    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    g = torch.Generator(device=device).manual_seed(a.seed)
    model = UNet(N_IN, NS, feats, a.dims)
    with torch.no_grad():
        model.head.bias.fill_(-2.0)
    if a.init:
        model.load_state_dict(load_init(a.init, model))
        print(f"initialised from {a.init}", flush=True)
    if a.reinit_head:
        # Output channels whose logits collapsed (sigmoid saturated, no gradient left):
        # re-initialise them as at the start; the shared decoder features are kept.
        with torch.no_grad():
            fresh = torch.nn.Conv2d(model.head.in_channels, NS, 1)  # (--dims 2 only)
            for name in a.reinit_head.split(","):
                k = STRUCTURES.index(name)
                model.head.weight[k] = fresh.weight[k]
                model.head.bias[k] = -2.0
        print(f"re-initialised output channels {a.reinit_head}", flush=True)
    model.to(device)
    print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, features {list(feats)}, "
          f"device {device}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    ema = None
    if a.ema > 0:
        ema = copy.deepcopy(model)
        for p in ema.parameters():
            p.requires_grad_(False)
        ema_p, live_p = list(ema.parameters()), list(model.parameters())
    start, best, history = 0, -1.0, []
    ck = os.path.join(a.out, "last.pt")
    if a.resume and os.path.exists(ck):
        st = torch.load(ck, map_location=device)
        model.load_state_dict(st["model"]); opt.load_state_dict(st["opt"])
        if ema is not None:
            ema.load_state_dict(st.get("ema", st["model"]))
        start, best, history = st["iter"], st["best"], st["history"]
        rng = np.random.default_rng([a.seed, start]); g.manual_seed(a.seed * 100003 + start)
        print(f"resumed at iteration {start}, best {best:.4f}", flush=True)
    set_train(model)
    t0, run_loss = time.time(), 0.0
    run_i, run_d = torch.zeros(NS, device=device), torch.zeros(NS, device=device)
    trace = None
    if a.lr_trace:
        # "it N ... lr X": X was the rate of iteration N - 1 (0-based), the last of the 25 logged
        pts = [(int(m.group(1)) - 1, float(m.group(2))) for m in
               (re.match(r"it (\d+) loss \S+ lr (\S+) ", ln) for ln in open(a.lr_trace)) if m]
        if not pts:
            sys.exit(f"train.py: --lr-trace {a.lr_trace}: no 'it N loss L lr X' lines")
        trace = (np.array([start] + [p[0] for p in pts], float), np.array([a.lr] + [p[1] for p in pts]))
        ends = [int(m.group(1)) for m in (re.search(r"reached after (\d+) iterations", ln)
                                           for ln in open(a.lr_trace)) if m]
        a.iters = ends[-1] if ends else pts[-1][0] + 1  # a --time-limit run's length, else the last point
        print(f"learning rate replayed from {a.lr_trace}: {a.iters} iterations", flush=True)
    end = min(a.iters, a.stop_after) if a.stop_after > 0 else a.iters
    if a.time_limit > 0:
        end = a.iters = start + 10**9  # until the time is up
        next_val = a.time_limit / 8
    stream, ddata = None, None
    vdata = None
    if a.dims == 3:
        vdata = VolumeData(cases["train"], device)
        print(f"training cases on {device}: CT {tuple(vdata.ct.shape)}, windows {PATCH}", flush=True)
    elif a.sampler == "device":
        ddata = DeviceData(cases["train"], device)
        print(f"training cases on {device}: CT {tuple(ddata.ct.shape)}", flush=True)
    elif a.workers > 0:
        stream = iter(torch.utils.data.DataLoader(BatchStream(cases["train"], a.seed, start, a.batch), batch_size=None,
                                                  num_workers=a.workers, prefetch_factor=4, persistent_workers=True))
    t_val = 0.0
    for it in range(start, end):
        if a.time_limit > 0:
            spent = time.time() - t0 - t_val  # training time so far
            if spent >= a.time_limit:
                end = it
                print(f"time limit {a.time_limit:.0f} s reached after {it} iterations", flush=True)
                break
            lr = a.lr * (1 - spent / a.time_limit) ** 0.9
        elif trace is not None:
            lr = float(np.interp(it, *trace))
        else:
            lr = a.lr * (1 - it / a.iters) ** 0.9
        for pg in opt.param_groups:
            pg["lr"] = lr
        if vdata is not None:
            x, y, m = augment3d(vdata, *vdata.batch(rng, a.batch), g)
        elif ddata is not None:
            x, y, m = augment(*ddata.batch(rng, a.batch), g, src=True)
        else:
            x, y, m = next(stream) if stream is not None else sample_batch(cases["train"], rng, a.batch)
            x, y, m = (v.to(device, non_blocking=True) for v in (x, y, m))
            x, y, m = augment(x, y, m, g)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=a.amp):
            logits = model(x)
        logits = logits.float()
        loss = loss_fn(logits, y, m)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if ema is not None:
            with torch.no_grad():
                torch._foreach_mul_(ema_p, a.ema)
                torch._foreach_add_(ema_p, live_p, alpha=1 - a.ema)
        run_loss += loss.detach()  # stays on the device: no synchronisation per iteration
        with torch.no_grad():
            pb = (logits > 0).float() * per_voxel(m, y)
            yb = y * per_voxel(m, y)
            run_i += spatial_sum(pb * yb)
            run_d += spatial_sum(pb) + spatial_sum(yb)
        if (it + 1) % 25 == 0:
            td = " ".join(f"{v:.2f}" for v in (2 * run_i / run_d.clamp(min=1)).tolist())
            print(f"it {it + 1} loss {float(run_loss) / 25:.4f} lr {lr:.6g} {time.time() - t0:.0f}s train-dice {td}", flush=True)
            run_loss = 0.0
            run_i, run_d = torch.zeros(NS, device=device), torch.zeros(NS, device=device)
        due = (it + 1) % a.val_every == 0 or it + 1 == end
        if a.time_limit > 0:
            due = time.time() - t0 - t_val >= min(next_val, a.time_limit)
            if due:
                next_val += a.time_limit / 8
        if due:
            tv = time.time()
            vm = model
            if ema is not None:  # the averaged weights with the live batch-norm statistics
                with torch.no_grad():
                    for be, b in zip(ema.buffers(), model.buffers()):
                        be.copy_(b)
                vm = ema
            res = validate(vm, cases["validation"], device, a.dims)
            t_val += time.time() - tv
            res["iter"] = it + 1
            res["seconds"] = time.time() - t0
            res["validation_seconds"] = t_val
            history.append(res)
            score = res["mean_oar"] + 0.5 * (res["PTV70"] or 0)
            print("val " + json.dumps(res), flush=True)
            if score > best:
                best = score
                sd = {k: v.detach().cpu() for k, v in vm.state_dict().items()}
                torch.save({"model": sd, "feats": feats, "val": res, "seed": a.seed, "iters": a.iters,
                            "context": CONTEXT, "dims": a.dims, "torch": torch.__version__}, os.path.join(a.out, "best.tmp"))
                os.replace(os.path.join(a.out, "best.tmp"), os.path.join(a.out, "best.pt"))
                # the same weights as plain arrays, loadable by any torch (export.py --ckpt best_state.npz)
                write_state_npz(os.path.join(a.out, "best_state.npz"), sd, feats, res, a.seed, CONTEXT, a.dims)
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "iter": it + 1,
                        "best": best, "history": history,
                        **({"ema": ema.state_dict()} if ema is not None else {})}, ck + ".tmp")
            os.replace(ck + ".tmp", ck)
            with open(os.path.join(a.out, "history.json"), "w") as f:
                json.dump(history, f, indent=1)


if __name__ == "__main__":
    main()
