"""contouring/train/train.py on a tiny synthetic cache: a --time-limit run is replayed by
--lr-trace (same learning rate per iteration, same length), and --init widens a first
convolution trained on fewer input slices (train.py --context) without changing the rest."""
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
    from model import UNet2D
    state = np.load(timed_run[0] / "best_state.npz")
    assert int(state["__context__"]) == 2
    wide = UNet2D(9, 10, tuple(int(f) for f in FEATS.split(",")))
    sd = tr.load_init(str(timed_run[0] / "best_state.npz"), wide)
    wide.load_state_dict(sd)  # every shape fits
    w = wide.state_dict()["enc.0.c1.weight"]
    np.testing.assert_array_equal(w[:, 2:7].numpy(), state["enc.0.c1.weight"])
    assert not w[:, :2].any() and not w[:, 7:].any()
    for k in state.files:
        if not k.startswith("__") and k != "enc.0.c1.weight":
            np.testing.assert_array_equal(wide.state_dict()[k].numpy(), state[k])
