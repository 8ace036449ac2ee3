"""isoline.contouring: auto-contouring, progress/cancel, GIL release, metrics."""
import json
import threading
import time

import numpy as np
import pytest

import isoline
from isoline import contouring, core


def test_contour_small_phantom(small_hn, tmp_path):
    seen = []
    res = contouring.contour(small_hn.ct, structures=["SpinalCord", "Mandible", "Body"],
                             progress=lambda stage, f, d: seen.append((stage, f)))
    assert sorted(res.structures.names()) == ["Body", "Mandible", "SpinalCord"]
    assert res.model_name
    for s in res.structures:
        assert s.mask.geometry.same_grid(small_hn.ct.geometry)
    assert {q.name for q in res.quality} == set(res.structures.names())
    body = contouring.compare_masks(res.structures["Body"].mask, small_hn.structures["Body"].mask)
    assert body.dice > 0.95
    assert seen[0][1] == 0.0 and seen[-1][1] == 1.0 and seen[0][0].startswith("contour")
    assert all(b >= a for (_, a), (_, b) in zip(seen, seen[1:]))

    # The first-look page and picture (isoline contour --report / --preview).
    contouring.write_review(small_hn.ct, res, html=tmp_path / "r.html", png=tmp_path / "r.png",
                            info={"Case": "small phantom"})
    html = (tmp_path / "r.html").read_text()
    for want in ("small phantom", "SpinalCord", "Mandible", res.model_name, "data:image/png;base64,"):
        assert want in html
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(isoline.InvalidInput, match="^write review: "):
        contouring.write_review(small_hn.ct, res)
    with pytest.raises(isoline.IoError):
        contouring.write_review(small_hn.ct, res, png=tmp_path / "no" / "such" / "dir" / "r.png")
    assert not (tmp_path / "no").exists()


def test_contour_releases_gil_and_can_cancel(small_hn):
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.005)

    t = threading.Thread(target=ticker)
    t.start()
    t0 = time.perf_counter()
    try:
        contouring.contour(small_hn.ct, structures=["SpinalCord"])
    finally:
        t1 = time.perf_counter()
        stop.set()
        t.join()
    during = [x for x in ticks if t0 < x < t1]
    # the Python thread kept running while C++ worked: ticks all along the call
    assert len(during) > 0.3 * (t1 - t0) / 0.005 * 0.2

    def cancel(stage, f, d):
        if f > 0.1:
            raise RuntimeError("stop")
    with pytest.raises(isoline.Cancelled):
        contouring.contour(small_hn.ct, structures=["SpinalCord"], progress=cancel)


def test_contourer_reuses_card_and_checks_names(small_hn):
    c = contouring.Contourer(structures=["Body", "Larynx"])
    assert "Larynx" in c.card.structures
    r1 = c(small_hn.ct)
    r2 = c(small_hn.ct)
    assert c.calls == 2
    np.testing.assert_array_equal(r1.structures["Larynx"].mask.array, r2.structures["Larynx"].mask.array)
    # the network is loaded once, in a C++ Model, and can be passed to contour() directly
    assert isinstance(c.model, contouring.Model) and c.model.device == "cpu"
    r3 = contouring.contour(small_hn.ct, structures=["Larynx"], model=c.model)
    np.testing.assert_array_equal(r1.structures["Larynx"].mask.array, r3.structures["Larynx"].mask.array)
    with pytest.raises(OSError):
        contouring.Model("/nonexistent/card.json")
    with pytest.raises(isoline.InvalidInput, match="^contour: Spleen: unknown structure"):
        contouring.Contourer(structures=["Spleen"])
    with pytest.raises(ValueError):
        contouring.contour(small_hn.ct, structures=["Spleen"])


def test_contour_errors(small_hn):
    with pytest.raises(ValueError):
        contouring.contour(small_hn.structures["Body"].mask)  # uint8 mask, not a CT
    with pytest.raises(ValueError):
        contouring.contour(small_hn.ct, device="tpu")
    if not core.built_with_cuda() or core.cuda_device_count() == 0:
        with pytest.raises(isoline.DeviceError, match='use device="cpu"'):
            contouring.contour(small_hn.ct, structures=["Body", "SpinalCord"], device="cuda")
    with pytest.raises(OSError):
        contouring.contour(small_hn.ct, model_card="/nonexistent/card.json")


def test_body_mask_and_metrics(small_hn):
    b = contouring.body_mask(small_hn.ct)
    a = contouring.compare_masks(b, small_hn.structures["Body"].mask)
    assert a.dice > 0.95 and a.hd95_mm < 10
    same = contouring.compare_masks(b, b)
    assert same.dice == 1.0 and same.hd95_mm == 0.0


def test_evaluate_dirs(tmp_path, small_hn):
    s = core.StructureSet(small_hn.ct.geometry)
    s.add("SpinalCord", small_hn.structures["SpinalCord"].mask)
    core.write_mask_dir(s, str(tmp_path / "ref"))
    s2 = core.StructureSet(small_hn.ct.geometry)
    s2.add("SpinalCord", core.expand(small_hn.structures["SpinalCord"].mask, 3.0))
    core.write_mask_dir(s2, str(tmp_path / "pred"))
    rows = contouring.evaluate_dirs(str(tmp_path / "pred"), str(tmp_path / "ref"))
    assert len(rows) == 1 and 0.2 < rows[0].agreement.dice < 1.0
    summ = contouring.summarize(rows)
    assert summ[0].structure == "SpinalCord" and summ[0].cases == 1 and summ[0].hd95_undefined == 0
    # reference plausibility against the shipped card's usual SpinalCord volume
    card = contouring.load_model_card(contouring.default_model_card_path())
    assert not card.volume
    lo, hi = card.expected["SpinalCord"].volume_cc_min, card.expected["SpinalCord"].volume_cc_max
    assert contouring.reference_flag("SpinalCord", 0.5 * (lo + hi), card) == ""
    assert "outside the usual" in contouring.reference_flag("SpinalCord", 10 * hi, card)
    flagged = contouring.flag_references(rows, card)
    want = rows[0].agreement.ref_cc < lo or rows[0].agreement.ref_cc > hi
    assert (flagged[0].ref_flag != "") == want
    assert contouring.summarize(flagged)[0].flagged == int(want)
    svg = contouring.dice_plot_svg(flagged, "phantom")
    assert svg.startswith("<svg") and svg.count("<circle") + svg.count('stroke="#d62728"') == len(flagged)
    # evaluate_contours: the same rows, and the warnings `isoline eval contours` prints
    s3 = core.StructureSet(small_hn.ct.geometry)
    s3.add("spinalcord", small_hn.structures["SpinalCord"].mask)
    core.write_mask_dir(s3, str(tmp_path / "pred2"))
    res = contouring.evaluate_contours(str(tmp_path / "pred2"), str(tmp_path / "ref"))
    assert isinstance(res, contouring.EvalResult)
    assert res.rows == []  # "spinalcord" matches no reference: nothing scored, and it is said
    assert any("spinalcord" in w and "SpinalCord" in w for w in res.warnings), res.warnings
    full = contouring.evaluate_contours(str(tmp_path / "pred"), str(tmp_path / "ref"))
    assert full.warnings == [] and full.rows[0].agreement.dice == rows[0].agreement.dice


def test_network_timing_builds_the_cpp_input_and_times_cpu(hn_case_dir, tmp_path):
    """contouring/train/network_timing.py (bench key contour_network_seconds_128_*): the CT on
    the model grid (3.906 x 3.906 x 2.5 mm, as contour.cpp resamples it), one stack per axial
    slice of the body, in-plane padded to a multiple of 16, the model's channels; the CPU is
    timed and CUDA reported as unavailable where torch has no GPU."""
    import subprocess
    import sys
    from pathlib import Path
    torch = pytest.importorskip("torch")
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "contouring" / "train"))
    import network_timing
    import nibabel as nib

    ct_path = str(hn_case_dir / "ct.nii.gz")
    img = nib.load(ct_path)
    hu = network_timing.load_hu(ct_path)
    assert hu.shape == tuple(round(n * s / m) for n, s, m in
                             zip(img.shape, img.header.get_zooms(), network_timing.SPACING))
    assert abs(float(hu.mean()) - float(np.asarray(img.dataobj).mean())) < 5  # same anatomy, resampled
    body_slices = int((hu > -500).any(axis=(0, 1)).sum())
    x = network_timing.model_input(ct_path)  # the training code's default: 2 slices each side
    assert x.shape[0] == body_slices and x.shape[1] == 5
    # wider context (train.py --context 4): the same stacks with two more slices each side
    x9 = network_timing.model_input(ct_path, 4)
    assert x9.shape[1] == 9
    np.testing.assert_array_equal(x9[:, 2:7], x)
    with open(Path(network_timing.DEFAULT_MODEL).with_suffix(".json")) as f:
        assert network_timing.card_context(network_timing.DEFAULT_MODEL) == \
            json.load(f)["input"]["context_slices_each_side"]
    assert x.shape[2] % 16 == 0 and x.shape[3] % 16 == 0
    assert x.min() >= -2.0 and x.max() <= 2.0  # HU clipped to [-1000, 1000] / 500
    res = network_timing.measure(ct_path, devices=("cpu", "cuda"), repeat=1)
    assert res["cpu"] > 0
    assert (res["cuda"] is None) == (not torch.cuda.is_available())
    # The int16 .npy a GPU host without nibabel reads (bench/gpu_session.sh) gives the same input.
    npy = tmp_path / "ct.npy"
    subprocess.run([sys.executable, network_timing.__file__, "--ct", ct_path, "--save-npy", str(npy)],
                   check=True)
    np.testing.assert_array_equal(network_timing.model_input(str(npy)), x)
