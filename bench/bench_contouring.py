"""Auto-contouring figures: end-to-end time DICOM CT -> RT-STRUCT (all structures + Body)
for a 128^3 OpenKBP CT and a 512x512x160 CT, peak memory, and the validation-split
accuracy (33 OpenKBP patients, `isoline contour` + `isoline eval contours`)."""
import subprocess
import shutil
import sys

import numpy as np

KEYS = ["contour_seconds_128", "contour_seconds_512", "contour_peak_rss_mib",
        "val_mean_oar_dice", "val_min_oar_dice", "val_mandible_dice", "val_ptv70_dice",
        "contour_seconds_128_cuda", "contour_network_seconds_128_cpu", "contour_network_seconds_128_cuda"]

CASE = "validation/pt_201"


def _dicom_128(ctx):
    d = ctx.work / "contour_128"
    if not (d / "ct").exists():
        d.mkdir(parents=True, exist_ok=True)
        ctx.run(ctx.isoline, "convert", ctx.shared / "openkbp" / CASE / "ct.nii.gz", "--to", "ct",
                "--out", d / "ct", "--quiet")
    return d


def _dicom_512(ctx):
    """The same patient resampled to 512 x 512 x 160 (real anatomy at a fine CT grid)."""
    import nibabel as nib
    from scipy import ndimage
    d = ctx.work / "contour_512"
    if not (d / "ct").exists():
        d.mkdir(parents=True, exist_ok=True)
        img = nib.load(str(ctx.shared / "openkbp" / CASE / "ct.nii.gz"))
        ct = np.asanyarray(img.dataobj).astype(np.float32)
        zoom = (512 / ct.shape[0], 512 / ct.shape[1], 160 / ct.shape[2])
        big = ndimage.zoom(ct, zoom, order=1).astype(np.int16)
        aff = img.affine.copy()
        for a in range(3):
            aff[:3, a] = aff[:3, a] / zoom[a]
        nib.save(nib.Nifti1Image(big, aff), str(d / "ct.nii.gz"))
        ctx.run(ctx.isoline, "convert", d / "ct.nii.gz", "--to", "ct", "--out", d / "ct", "--quiet")
    return d


def _timed_contour(ctx, d, extra=()):
    """Best of 2 wall times and the peak RSS (MiB) of `isoline contour` via /usr/bin/time."""
    best, rss = float("inf"), 0.0
    for _ in range(2):
        p = subprocess.run(["/usr/bin/time", "-f", "%e %M", str(ctx.isoline), "contour", str(d / "ct"),
                            "--out", str(d / "rs.dcm"), "--quiet", *extra], capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(p.stderr[-500:])
        sec, kib = p.stderr.strip().splitlines()[-1].split()
        best = min(best, float(sec))
        rss = max(rss, float(kib) / 1024.0)
    return best, rss


def run(ctx):
    out = {k: None for k in KEYS}
    if not (ctx.shared / "openkbp").exists():
        return out
    t128, rss128 = _timed_contour(ctx, _dicom_128(ctx))
    t512, rss512 = _timed_contour(ctx, _dicom_512(ctx))
    out["contour_seconds_128"] = round(t128, 2)
    out["contour_seconds_512"] = round(t512, 2)
    out["contour_peak_rss_mib"] = round(max(rss128, rss512), 1)
    # GPU: only with a CUDA-enabled LibTorch (Debian's is CPU-only) -> None here.
    try:
        t, _ = _timed_contour(ctx, _dicom_128(ctx), ("--device", "cuda"))
        out["contour_seconds_128_cuda"] = round(t, 2)
    except RuntimeError:
        pass
    sys.path.insert(0, str(ctx.root / "contouring" / "train"))
    # The network alone through PyTorch, CPU and CUDA in the same run (on a GPU host whose
    # PyTorch has CUDA; cuda = None elsewhere): what a GPU changes in the 128^3 figure.
    try:
        import network_timing
        nt = network_timing.measure(str(ctx.shared / "openkbp" / CASE / "ct.nii.gz"))
        out["contour_network_seconds_128_cpu"] = round(nt["cpu"], 3)
        if nt["cuda"] is not None:
            out["contour_network_seconds_128_cuda"] = round(nt["cuda"], 4)
    except ImportError as e:  # no torch for this interpreter
        print(f"   network timing skipped: {e}", file=sys.stderr)
    import run_validation
    m = run_validation.run(ctx.isoline, ctx.shared / "openkbp" / "validation", ctx.work / "contour_val",
                           log=lambda s: None)
    # The picture in docs/validation.md: eval's own (isoline eval contours --plot).
    shutil.copyfile(ctx.work / "contour_val" / "dice.svg", ctx.root / "docs" / "images" / "contour_validation_dice.svg")
    s = m["summary"]
    out["val_mean_oar_dice"] = round(s["mean_oar_dice"], 4)
    out["val_min_oar_dice"] = round(s["min_oar_dice"], 4)
    out["val_mandible_dice"] = round(s["mandible_dice"], 4)
    out["val_ptv70_dice"] = round(s["ptv70_dice"], 4)
    return out
