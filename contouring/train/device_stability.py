#!/usr/bin/env python3
"""How much devices next to the patient move the auto-contours (docs/contouring.md, "Devices").

OpenKBP's CTs hold air outside the patient; clinical planning CTs hold couch tops, head rests,
base plates and thermoplastic masks. For each patient this writes the CT with one device added
(on the CT's own grid), runs `isoline contour` on the clean and on each perturbed CT, and
prints the stability: the Dice of each perturbed CT's contours against the clean CT's, mean
over the patients, per structure, over the 7 OARs and over all 10.

Devices (HU written into air voxels only; the patient is never changed):
  gapplate       12 mm plate, 200 HU, 8 mm below the back (not touching)
  plate          12 mm plate, 200 HU, touching the back
  shell          two voxels, 200 HU, hugging the back of every column (a vacuum cushion)
  ring-450/-200/100   one voxel round the whole body at that HU
  maskgap        one voxel, +100 HU, one voxel off the skin over the anterior half (a mask)
  masktouch100/-200   the same touching the skin on about a third of its surface, 1-2 voxels
                 off elsewhere
  fmask100/-200  a mask drawn in millimetres for fine grids (use with --upsample): 2 mm thick
                 over the anterior half, touching the skin on about a third of it and up to
                 4 mm off elsewhere

--upsample F resamples each CT by F in-plane first (linear; F = 4 takes OpenKBP's 3.9-5.4 mm
pixels to 0.9-1.4 mm, a clinical CT's), and every device is drawn on that grid.

    /usr/bin/python3 contouring/train/device_stability.py --isoline build/bin/isoline \
        --data ../shared/data/openkbp/validation --patients pt_201 pt_210 pt_230 --out /tmp/dev
        [--model card.json] [--devices maskgap plate ...]
"""
import argparse
import pathlib
import subprocess
import sys

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import BODY_HU, OARS, STRUCTURES, largest_component  # noqa: E402

DEVICES = ["gapplate", "plate", "shell", "ring-450", "ring-200", "ring100", "maskgap", "masktouch100",
           "masktouch-200", "fmask100", "fmask-200"]


def perturbed(a, spacing):
    """{device name: CT array} for one CT (int16, axes x right->left, y anterior->posterior, z)."""
    body = largest_component(a > BODY_HU)
    nx, ny, nz = a.shape
    rows = lambda mm: int(np.ceil(mm / spacing[1]))
    out = {}
    back = int(np.argwhere(body)[:, 1].max())
    for name, gap in (("gapplate", rows(8.0)), ("plate", 0)):
        x = a.copy()
        x[:, back + 1 + gap: back + 1 + gap + rows(12.0), :] = 200
        out[name] = x
    x = a.copy()
    for k in range(nz):
        for i in range(nx):
            js = np.nonzero(body[i, :, k])[0]
            if len(js):
                x[i, js.max() + 1: js.max() + 3, k] = 200
    out["shell"] = x
    ring = ndimage.binary_dilation(body, structure=np.ones((3, 3, 1))) & ~body
    for hu in (-450, -200, 100):
        x = a.copy()
        x[ring] = hu
        out[f"ring{hu}"] = x
    # masks: chessboard distance from the body in each axial slice
    d = np.full(a.shape, 99, np.int32)
    for k in range(nz):
        if body[:, :, k].any():
            d[:, :, k] = ndimage.distance_transform_cdt(~body[:, :, k], metric="chessboard")
    ii, jj, kk = np.meshgrid(np.arange(nx), np.arange(ny), np.arange(nz), indexing="ij")
    anterior = jj < int(round(np.argwhere(body)[:, 1].mean()))
    x = a.copy()
    x[(d == 2) & anterior] = 100
    out["maskgap"] = x
    f = np.sin(ii / 6.0) * np.cos(kk / 8.0) + 0.3 * np.sin(kk / 5.0)
    g = np.where(f > 0.35, 0, np.where(f > -0.3, 1, 2))
    gmax, gmin = ndimage.maximum_filter(g, size=3), ndimage.minimum_filter(g, size=3)
    shell = ((d == g + 1) | ((gmax != gmin) & (d >= gmin + 1) & (d <= gmax + 1))) & anterior & (d >= 1)
    for hu in (100, -200):
        x = a.copy()
        x[shell] = hu
        out[f"masktouch{hu}"] = x
    # a mask in millimetres: 2 mm thick, a gap to the skin varying smoothly from 0 to 4 mm
    dmm = np.full(a.shape, 999.0, np.float32)
    for k in range(nz):
        if body[:, :, k].any():
            dmm[:, :, k] = ndimage.distance_transform_edt(~body[:, :, k], sampling=spacing[:2])
    fm = np.sin(ii * spacing[0] / 24.0) * np.cos(kk * spacing[2] / 20.0) + 0.3 * np.sin(kk * spacing[2] / 12.5)
    gap = np.clip(2.0 - 4.0 * fm, 0.0, 4.0)
    fshell = (dmm > gap) & (dmm <= gap + 2.0) & anterior
    for hu in (100, -200):
        x = a.copy()
        x[fshell] = hu
        out[f"fmask{hu}"] = x
    for x in out.values():
        x[body] = a[body]
    return out


def dice(a, b):
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * int((a & b).sum()) / s


def main(argv=None):
    import nibabel as nib
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--isoline", required=True)
    ap.add_argument("--data", required=True, help="an OpenKBP split (folders pt_*/ct.nii.gz)")
    ap.add_argument("--patients", nargs="+", default=["pt_201", "pt_210", "pt_230"])
    ap.add_argument("--devices", nargs="+", default=DEVICES, choices=DEVICES)
    ap.add_argument("--model", help="a model card (default: the shipped one)")
    ap.add_argument("--upsample", type=int, default=1, help="in-plane resampling factor before the devices")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    out = pathlib.Path(a.out)
    res = {}
    for pt in a.patients:
        src = pathlib.Path(a.data) / pt / "ct.nii.gz"
        im = nib.load(str(src))
        ct = np.asarray(im.dataobj).astype(np.int16)
        spacing = [float(z) for z in im.header.get_zooms()[:3]]
        affine, header = im.affine.copy(), im.header.copy()
        if a.upsample > 1:  # first and last voxel centres stay where they were
            n = ct.shape
            ct = np.round(ndimage.zoom(ct.astype(np.float32), (a.upsample, a.upsample, 1), order=1)).astype(np.int16)
            for ax in (0, 1):
                f = (n[ax] - 1) / (ct.shape[ax] - 1)
                affine[:3, ax] *= f
                spacing[ax] *= f
            header.set_data_dtype(np.int16)
        cases = {"clean": ct}
        cases.update({k: v for k, v in perturbed(ct, spacing).items() if k in a.devices})
        for name, arr in cases.items():
            d = out / pt / name
            d.mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(arr, affine, header), str(d / "ct.nii.gz"))
            cmd = [a.isoline, "contour", str(d / "ct.nii.gz"), "--out", str(d / "masks"), "--quiet", "--overwrite"]
            if a.model:
                cmd += ["--model", a.model]
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit(f"device_stability: isoline contour failed on {d / 'ct.nii.gz'}: {p.stderr.strip()[-500:]}")
        print(f"{pt} done", file=sys.stderr, flush=True)
        ld = lambda p: np.asarray(nib.load(str(p)).dataobj) > 0
        for name in cases:
            if name == "clean":
                continue
            for s in STRUCTURES:
                res.setdefault(name, {}).setdefault(s, []).append(
                    dice(ld(out / pt / name / "masks" / f"{s}.nii.gz"), ld(out / pt / "clean" / "masks" / f"{s}.nii.gz")))
    print("stability: Dice of each perturbed CT's contours against the clean CT's, mean over "
          + ", ".join(a.patients))
    print(f"{'device':<14}" + " ".join(f"{s[:6]:>6}" for s in STRUCTURES) + "  7 OARs    all")
    for name, per in res.items():
        v = [float(np.mean(per[s])) for s in STRUCTURES]
        print(f"{name:<14}" + " ".join(f"{x:6.3f}" for x in v) + f"  {np.mean(v[:7]):6.3f} {np.mean(v):6.3f}")


if __name__ == "__main__":
    main()
