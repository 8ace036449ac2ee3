"""contouring/train/train.py on a tiny synthetic cache: a --time-limit run is replayed by
--lr-trace (same learning rate per iteration, same length), and --init widens a first
convolution trained on fewer input slices (train.py --context) without changing the rest."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
TRAIN = Path(__file__).resolve().parents[2] / "contouring" / "train"
sys.path.insert(0, str(TRAIN))
FEATS = "4,8,8,8,8"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """Two training and one validation 'patient' of 32 x 32 x 12 voxels: a water cylinder with a
    bone square (structure 0, Brainstem) and a smaller square (structure 6, Mandible)."""
    out = {}
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32]
    for split, names in (("train", ("pt_1", "pt_2")), ("validation", ("pt_3",))):
        for n in names:
            ct = np.full((32, 32, 12), -1000, np.int16)
            ct[(xx - 16) ** 2 + (yy - 16) ** 2 < 13 ** 2] = 0
            ct += rng.integers(-20, 20, ct.shape).astype(np.int16)
            bits = np.zeros(ct.shape, np.uint16)
            ct[12:20, 12:20, 3:9] = 700
            bits[12:20, 12:20, 3:9] |= 1
            bits[8:11, 20:23, 4:8] |= 1 << 6
            present = np.zeros(10, np.float32)
            present[[0, 6]] = 1
            out[f"{split}/{n}/ct"], out[f"{split}/{n}/bits"], out[f"{split}/{n}/present"] = ct, bits, present
    path = tmp_path_factory.mktemp("cache") / "tiny.npz"
    np.savez(path, **out)
    return path


def train(cache, out, *args):
    p = subprocess.run([sys.executable, str(TRAIN / "train.py"), "--cache", str(cache), "--out", str(out),
                        "--feats", FEATS, "--batch", "2", "--threads", "1", "--seed", "5", *args],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


def logged_rates(log):
    return [(int(m.group(1)), m.group(2)) for m in re.finditer(r"^it (\d+) loss \S+ lr (\S+) ", log, re.M)]


@pytest.fixture(scope="module")
def timed_run(cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("timed")
    log = train(cache, out, "--time-limit", "6")
    (out / "train.log").write_text(log)
    return out, log


def test_lr_trace_replays_a_time_limited_run(cache, timed_run, tmp_path):
    out, log = timed_run
    n = int(re.search(r"time limit 6 s reached after (\d+) iterations", log).group(1))
    rates = logged_rates(log)
    assert len(rates) >= 2, log[-500:]
    assert all(float(b[1]) < float(a[1]) for a, b in zip(rates, rates[1:]))  # decaying with time
    replay = train(cache, tmp_path / "replay", "--lr-trace", str(out / "train.log"), "--val-every", "1000000")
    assert f"learning rate replayed from {out / 'train.log'}: {n} iterations" in replay
    assert logged_rates(replay) == rates
    assert re.findall(r'"iter": (\d+)', replay) == [str(n)]  # one validation, at the end


def test_init_widens_the_first_convolution_to_more_slices(timed_run):
    import train as tr
    from model import UNet
    state = np.load(timed_run[0] / "best_state.npz")
    assert int(state["__context__"]) == 2
    wide = UNet(9, 10, tuple(int(f) for f in FEATS.split(",")), 2)
    sd = tr.load_init(str(timed_run[0] / "best_state.npz"), wide)
    wide.load_state_dict(sd)  # every shape fits
    w = wide.state_dict()["enc.0.c1.weight"]
    np.testing.assert_array_equal(w[:, 2:7].numpy(), state["enc.0.c1.weight"])
    assert not w[:, :2].any() and not w[:, 7:].any()
    for k in state.files:
        if not k.startswith("__") and k != "enc.0.c1.weight":
            np.testing.assert_array_equal(wide.state_dict()[k].numpy(), state[k])


def load_tiny(cache):
    import train as tr
    return tr, tr.load_cache(str(cache))


def test_device_sampler_gathers_whole_slices_centred(cache):
    """--sampler device: a case's stack and labels, centred in the padded array, as the cache holds them."""
    tr, cases = load_tiny(cache)
    cases["train"][1] = dict(cases["train"][1])  # a smaller second case: padded around its centre
    for k in ("ct", "bits"):
        cases["train"][1][k] = cases["train"][1][k][2:28, 4:26]
    dd = tr.DeviceData(cases["train"], "cpu")
    assert tuple(dd.ct.shape) == (2, 32, 32, 12 + 2 * tr.CONTEXT)
    x, y, m = dd.gather([1, 0], [5, 7])
    assert tuple(x.shape) == (2, tr.N_IN, 32, 32) and tuple(y.shape) == (2, tr.NS, 32, 32)
    c = cases["train"][1]
    want = tr.norm(c["ct"][:, :, 5:5 + tr.N_IN]).transpose(2, 0, 1)
    np.testing.assert_array_equal(x[0, :, 3:29, 5:27].numpy(), want)
    assert (x[0, :, :3] == tr.HU_MIN / tr.HU_SCALE).all()
    np.testing.assert_array_equal(y[0, :, 3:29, 5:27].numpy(), tr.unpack(c["bits"][:, :, 5]))
    np.testing.assert_array_equal(y[1].numpy(), tr.unpack(cases["train"][0]["bits"][:, :, 7]))
    np.testing.assert_array_equal(m.numpy(), np.stack([c["present"], cases["train"][0]["present"]]))
    rng = np.random.default_rng(3)  # the same (case, slice) choices as the host sampler
    picks = [tr.pick(cases["train"], rng) for _ in range(50)]
    assert len(set(picks)) > 10 and all(0 <= z < 12 for _, z in picks)


def test_device_crop_moves_image_and_labels_together(cache):
    """augment(src=True) cuts CROP x CROP windows; the bone square and its label stay aligned."""
    tr, cases = load_tiny(cache)
    dd = tr.DeviceData(cases["train"], "cpu")
    x, y, m = dd.gather([0, 1, 0, 1], [5, 6, 4, 7])
    g = torch.Generator().manual_seed(1)
    xa, ya, ma = tr.augment(x.clone(), y.clone(), m.clone(), g, src=True)
    assert tuple(xa.shape) == (4, tr.N_IN, tr.CROP, tr.CROP) and tuple(ya.shape) == (4, tr.NS, tr.CROP, tr.CROP)
    bone = xa[:, tr.CONTEXT] > 0.8  # 700 HU in the stack's centre slice
    lab = ya[:, 0] > 0.5
    for b in range(4):
        inter = (bone[b] & lab[b]).sum().item()
        assert lab[b].sum() > 20 and inter / lab[b].sum().item() > 0.8, b
        cx, cy = (v.float().mean().item() for v in torch.nonzero(lab[b], as_tuple=True))
        assert abs(cx - tr.CROP / 2) < 16 and abs(cy - tr.CROP / 2) < 16  # the slice centre, shifted <= 12 px


def test_device_sampler_with_ema_trains(cache, tmp_path):
    log = train(cache, tmp_path, "--sampler", "device", "--ema", "0.9", "--weight-decay", "0.01", "--iters", "30",
                "--val-every", "15")
    assert "training cases on cpu" in log
    assert len(re.findall(r"^val ", log, re.M)) == 2
    assert (tmp_path / "best_state.npz").exists()


def test_volume_windows_keep_image_and_labels_aligned(cache, monkeypatch):
    """--dims 3: augment3d cuts PATCH windows (rotated, scaled, mirrored) from the cases held
    whole; the bone cube and its label stay together, and windows centred on a structure hold it."""
    import train as tr
    for name, value in (("CONTEXT", 0), ("FG_FRAC", 1.0), ("PATCH", (32, 32, 16))):
        monkeypatch.setattr(tr, name, value)
    cases = tr.load_cache(str(cache))
    vd = tr.VolumeData(cases["train"], "cpu")
    assert tuple(vd.ct.shape) == (2, 32, 32, 12)
    rng, g = np.random.default_rng(0), torch.Generator().manual_seed(0)
    for _ in range(3):
        x, y, m = tr.augment3d(vd, *vd.batch(rng, 4), g)
        assert tuple(x.shape) == (4, 1, 32, 32, 16) and tuple(y.shape) == (4, tr.NS, 32, 32, 16)
        bone, lab = x[:, 0] > 0.6, y[:, 0] > 0.5  # 700 HU, and Brainstem (the cube) in the tiny cache
        for b in range(4):
            dice = 2 * (bone[b] & lab[b]).sum().item() / (bone[b].sum() + lab[b].sum()).item()
            assert dice > 0.85, dice
            assert y[b, 6].sum() > 0  # the Mandible square too: every window centred on a structure
        np.testing.assert_array_equal(m.numpy(), np.stack([cases["train"][0]["present"]] * 4))


def test_3d_run_trains_and_exports_the_same_network(cache, tmp_path):
    """A --dims 3 run trains and validates; export.py writes a TorchScript module and a "volume"
    card, and the module gives the checkpoint's probabilities on a whole (padded) volume."""
    log = train(cache, tmp_path, "--dims", "3", "--patch", "32,32,16", "--time-limit", "4")
    assert re.search(r"^val ", log, re.M) and (tmp_path / "best_state.npz").exists()
    out = tmp_path / "m3d.pt"
    p = subprocess.run([sys.executable, str(TRAIN / "export.py"), "--ckpt", str(tmp_path / "best_state.npz"),
                        "--out", str(out), "--cache", "", "--no-mirror-tta"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    import json
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["input"]["kind"] == "volume" and card["input"]["context_slices_each_side"] == 0
    from common import card_context
    with pytest.raises(ValueError, match="volume network"):
        card_context(str(out))  # the slice-stack scripts refuse it instead of feeding it 1-slice stacks
    import train as tr
    from model import UNet, read_checkpoint
    st = read_checkpoint(str(tmp_path / "best_state.npz"))
    assert st["dims"] == 3
    net = UNet(1, tr.NS, tuple(st["feats"]), 3)
    net.load_state_dict(st["model"])
    net.eval()
    x = torch.randn(1, 1, 48, 32, 64)  # not the traced size
    with torch.no_grad():
        np.testing.assert_allclose(torch.jit.load(str(out))(x).numpy(), net(x).numpy(), atol=1e-4)
    # network_timing.py times a volume card on the C++ input: z windows of the body crop
    import nibabel as nib
    import network_timing as nt
    ct = np.full((40, 36, 90), -1000, np.int16)
    ct[5:35, 4:30, :] = 40  # the body: 30 x 26 voxels, 90 slices, on the model grid already
    ct_path = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(ct, np.diag([*nt.SPACING, 1.0])), str(ct_path))
    wins = nt.volume_windows(str(ct_path), window_slices=64)
    assert len(wins) == 2  # 90 slices: windows at 0 and 26, sharing 38 >= 32 slices
    for w in wins:
        assert w.shape[:2] == (1, 1) and all(n % 16 == 0 for n in w.shape[2:]) and w.shape[4] == 64
        assert w[0, 0, :30 + 8, :26 + 8, :].max() == pytest.approx(40 / 500)  # crop + 4-voxel margins
    np.testing.assert_array_equal(wins[0][..., 26:64], wins[1][..., 0:38])  # the shared slices
    assert len(nt.volume_windows(str(ct_path), window_slices=160)) == 1
    assert nt.measure(str(ct_path), devices=("cpu",), model_path=str(out), repeat=1)["cpu"] > 0
    # a second run continues from these weights (--init), as the session 9 run r3c did
    log2 = train(cache, tmp_path / "more", "--dims", "3", "--patch", "32,32,16", "--iters", "2", "--val-every", "1000",
                 "--init", str(tmp_path / "best_state.npz"))
    assert "initialised from" in log2


def test_devices_touch_the_body_from_outside():
    """--shells: add_devices draws shells (touching the skin or a few pixels off it) and plates in
    the air next to the body, never inside it,
    the same on every input slice of a sample, at a constant device density."""
    import train as tr
    xx, yy = np.mgrid[:64, :64]  # axis 0: X (right->left), axis 1: Y (anterior->posterior)
    body = (xx - 32) ** 2 / 20 ** 2 + (yy - 30) ** 2 / 14 ** 2 < 1
    hu = np.where(body, 40.0, -1000.0).astype(np.float32)
    x = torch.from_numpy(np.broadcast_to(hu / tr.HU_SCALE, (16, 3, 64, 64)).copy())
    out = tr.add_devices(x.clone(), torch.Generator().manual_seed(1), 1.0)
    changed = (out != x).numpy()
    assert changed.any(axis=(1, 2, 3)).all()  # probability 1: every sample has a device
    assert not changed[:, :, body].any()  # the patient is untouched
    np.testing.assert_array_equal(changed[:, 0], changed[:, 1])  # same device on every slice
    from scipy import ndimage
    touch = ndimage.binary_dilation(body, structure=np.ones((3, 3)))  # pixels touching the body
    near = ndimage.binary_dilation(body, structure=np.ones((11, 11)))  # a shell's farthest: gap 3 + 2
    below = yy > yy[body].max()  # posterior to the body: where a plate lies
    for b in range(16):
        c = changed[b, 0]
        vals = np.unique(out[b, 0].numpy()[c])
        assert not (c & ~near & ~below).any()  # a shell stays within 5 pixels; only a plate lies further
        assert len(vals) == 1 and -450 <= vals[0] * tr.HU_SCALE <= 300
    touching = (changed[:, 0] & touch[None]).any(axis=(1, 2))
    assert 4 <= touching.sum() <= 14  # devices touching the body, and devices with an air gap
    assert (~touching & (changed[:, 0] & ~below[None]).any(axis=(1, 2))).any()  # a shell off the skin
    x0 = x.clone()
    assert torch.equal(tr.add_devices(x0, torch.Generator().manual_seed(1), 0.0), x)  # p = 0: unchanged


def test_unfreeze_recovers_an_exported_network_for_fine_tuning(cache, timed_run, tmp_path):
    """export.py folds BatchNorm into the convolutions; unfreeze.py rebuilds a train.py checkpoint
    from the exported module alone that computes the same logits, and --freeze-bn fine-tunes it
    with its (folded) statistics kept."""
    run, _ = timed_run
    card_dir = tmp_path / "card"
    card_dir.mkdir()
    mod = card_dir / "m.pt"
    p = subprocess.run([sys.executable, str(TRAIN / "export.py"), "--ckpt", str(run / "best_state.npz"),
                        "--out", str(mod), "--cache", ""], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    rebuilt = tmp_path / "rebuilt" / "best_state.npz"
    p = subprocess.run([sys.executable, str(TRAIN / "unfreeze.py"), "--model", str(mod), "--out", str(rebuilt)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "with mirror averaging" in p.stdout
    import train as tr
    from model import UNet, read_checkpoint
    st = read_checkpoint(str(rebuilt))
    net = UNet(2 * st["context"] + 1, tr.NS, tuple(st["feats"]), 2)
    net.load_state_dict(st["model"])
    net.eval()
    orig = read_checkpoint(str(run / "best_state.npz"))
    ref = UNet(2 * orig["context"] + 1, tr.NS, tuple(orig["feats"]), 2)
    ref.load_state_dict(orig["model"])
    ref.eval()
    x = torch.randn(2, 2 * st["context"] + 1, 48, 32)
    with torch.no_grad():
        np.testing.assert_allclose(net(x).numpy(), ref(x).numpy(), atol=1e-4)
    # a module of another architecture is refused, naming the mismatch
    card = json.loads(mod.with_suffix(".json").read_text())
    card["architecture"] = card["architecture"].replace(f"[{FEATS.replace(',', ', ')}]", "[4, 8, 8, 8]")
    bad = card_dir / "bad.json"
    bad.write_text(json.dumps(card))
    p = subprocess.run([sys.executable, str(TRAIN / "unfreeze.py"), "--model", str(mod), "--card", str(bad),
                        "--out", str(tmp_path / "x.npz")], capture_output=True, text=True)
    assert p.returncode != 0 and "convolutions" in p.stderr
    # --freeze-bn: the batch-norm statistics of the rebuilt network survive fine-tuning
    ft = tmp_path / "ft"
    log = train(cache, ft, "--init", str(rebuilt), "--freeze-bn", "--shells", "0.5", "--iters", "6",
                "--val-every", "3", "--lr", "1e-3")
    assert "initialised from" in log
    last = torch.load(str(ft / "last.pt"), map_location="cpu")["model"]
    for k, v in st["model"].items():
        if k.endswith("running_mean") or k.endswith("running_var"):
            np.testing.assert_allclose(last[k].numpy(), v.numpy(), atol=0)


def test_grid_ceiling_round_trip_keeps_a_mask_and_noise_lowers_dice():
    """grid_ceiling.py: with no boundary noise the fine-grid round trip gives the reference back
    (Dice 1, HD95 0); more noise gives lower Dice and larger HD95."""
    import grid_ceiling as gc
    zz, yy, xx = np.mgrid[:24, :24, :24]
    sphere = ((xx - 12) * 4.0) ** 2 + ((yy - 12) * 4.0) ** 2 + ((zz - 12) * 2.5) ** 2 < 20.0 ** 2
    rng = np.random.default_rng(0)
    r = gc.one(sphere, [4.0, 4.0, 2.5], [0, 1.5, 4], 3, 15.0, rng)
    assert r["0"]["coarse"] == 1.0 and r["0"]["hd95_coarse"] == 0.0
    assert r["0"]["fine"] == 1.0
    assert 1.0 > r["1.5"]["coarse"] > r["4"]["coarse"] > 0.3
    assert r["4"]["hd95_coarse"] > r["1.5"]["hd95_coarse"] > 0
    assert gc.one(np.zeros((8, 8, 8), bool), [4.0, 4.0, 2.5], [0], 1, 15.0, rng) is None


def test_device_stability_draws_devices_in_the_air_only():
    """device_stability.py: every device changes air voxels only, never the patient; the mask
    shells lie in front of the patient, the plates behind, `maskgap` never next to the skin."""
    import device_stability as ds
    from scipy import ndimage
    xx, yy, zz = np.mgrid[:48, :48, :10]  # x right->left, y anterior->posterior
    body = (xx - 24) ** 2 / 16 ** 2 + (yy - 22) ** 2 / 12 ** 2 < 1
    ct = np.where(body, 30, -1000).astype(np.int16)
    out = ds.perturbed(ct, [4.0, 4.0, 2.5])
    assert set(out) == set(ds.DEVICES)
    touch = ndimage.binary_dilation(body, structure=np.ones((3, 3, 1)))
    for name, x in out.items():
        changed = x != ct
        assert changed.any(), name
        assert not changed[body].any(), name  # the patient is untouched
        if "mask" in name:
            assert not changed[yy > 22].any(), name  # anterior half only
        if name in ("plate", "gapplate", "shell"):
            assert not changed[yy <= 22].any(), name  # behind the patient
    assert not (out["maskgap"] != ct)[touch].any()  # off the skin everywhere
    assert ((out["masktouch100"] != ct) & touch).any()  # touching in places
    # the millimetre mask, on a 1 mm grid: 2 mm thick, touching in places, up to 4 mm off elsewhere
    xf, yf, zf = np.mgrid[:160, :160, :6]
    bf = (xf - 80) ** 2 / 60 ** 2 + (yf - 80) ** 2 / 45 ** 2 < 1
    cf = np.where(bf, 30, -1000).astype(np.int16)
    fm = ds.perturbed(cf, [1.0, 1.0, 2.5])["fmask100"] != cf
    d = np.stack([ndimage.distance_transform_edt(~bf[:, :, k]) for k in range(6)], axis=2)
    assert not fm[bf].any() and not fm[yf > 80].any()
    assert fm[d <= 1].any() and fm[d > 3].any() and not fm[d > 6.01].any()
    assert not ((out["gapplate"] != ct) & touch).any() and ((out["plate"] != ct) & touch).any()


def test_run_validation_runs_again_into_the_same_folder(tmp_path):
    """run_validation.py (make bench's contouring module) replaces the predictions of an earlier
    run in the same folder: a second `make bench` in one checkout failed on `isoline contour`'s
    refusal to write into a non-empty folder (session 17)."""
    import nibabel as nib
    import run_validation as rv
    exe = os.environ.get("ISOLINE_BIN")
    if not exe:
        pytest.skip("ISOLINE_BIN not set (CTest sets it)")
    case = tmp_path / "data" / "pt_1"
    case.mkdir(parents=True)
    x, y, _ = np.mgrid[:64, :64, :24]
    ct = np.where((x - 32) ** 2 + (y - 32) ** 2 < 26 ** 2, 40, -1000).astype(np.int16)
    aff = np.diag([-4.0, -4.0, 3.0, 1.0])
    nib.save(nib.Nifti1Image(ct, aff), str(case / "ct.nii.gz"))
    for k, s in enumerate(rv.STRUCTURES):
        m = np.zeros(ct.shape, np.uint8)
        m[20 + k:26 + k, 28:34, 8:14] = 1
        nib.save(nib.Nifti1Image(m, aff), str(case / f"{s}.nii.gz"))
    for _ in range(2):
        m = rv.run(exe, tmp_path / "data", tmp_path / "out", log=lambda *a: None)
        assert m["summary"]["cases"] == 1
        assert (tmp_path / "out" / "pred" / "pt_1" / "Brainstem.nii.gz").exists()
