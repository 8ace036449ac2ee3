#!/usr/bin/python3
"""Contour a generated head-and-neck phantom and export the result as DICOM RT-STRUCT.

    /usr/bin/python3 examples/contour_phantom_rtstruct.py --out /tmp/contour_demo
    (PYTHONPATH=build/python when running from the build tree)

Writes <out>/ct/CT*.dcm (the phantom's CT series) and <out>/RS.dcm (auto-contours referencing
it), then reads RS.dcm back and compares each structure with the phantom's ground truth.
"""
import argparse
import tempfile
from pathlib import Path

from isoline import contouring, phantoms, pipeline, rtstruct


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="output folder (default: a new temporary folder)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--size", type=int, nargs=3, default=[256, 256, 80], help="voxels (nx ny nz)")
    ap.add_argument("--spacing", type=float, nargs=3, default=[2.0, 2.0, 5.0], help="mm")
    a = ap.parse_args()
    if a.out is None:  # made only when needed, so a run with --out leaves no empty temp folder
        a.out = Path(tempfile.mkdtemp(prefix="isoline-contour-"))

    p = phantoms.make_head_neck(a.seed, size=tuple(a.size), spacing=tuple(a.spacing))
    print(f"phantom: {p}")
    ct = rtstruct.write_ct_series(p.ct, str(a.out / "ct"), overwrite=True)  # CtSeries with its UIDs
    print(f"CT series: {len(ct.slices)} slices in {a.out / 'ct'}")

    res = contouring.contour(ct.image, progress=lambda stage, f, d: print(f"\r{stage} {f:4.0%} {d:40.40}", end=""))
    print()
    for w in res.warnings:
        print("warning:", w)
    # As isoline contour writes it: ApprovalStatus UNAPPROVED, the model's version and warnings
    # in StructureSetDescription, each structure's quality summary as its ROI description.
    out = pipeline.write_auto_rtstruct(res, ct, str(a.out / "RS.dcm"))
    print(f"RT-STRUCT: {out.num_rois} ROIs, {out.num_contours} contours -> {a.out / 'RS.dcm'}")

    back = rtstruct.rasterize(rtstruct.read_rtstruct(str(a.out / "RS.dcm")), ct.image.geometry)
    print(f"{'structure':14} {'auto cc':>8} {'truth cc':>8} {'Dice':>6}  quality")
    quality = {q.name: q for q in res.quality}
    for s in back:
        truth = p.structures[s.name] if s.name in p.structures else None
        dice = contouring.compare_masks(s.mask, truth.mask).dice if truth else float("nan")
        print(f"{s.name:14} {s.volume_cc:8.1f} {truth.volume_cc if truth else float('nan'):8.1f} {dice:6.3f}  "
              f"{quality[s.name].summary() if s.name in quality else ''}")
        assert s.volume_cc == res.structures[s.name].volume_cc  # RT-STRUCT round trip is exact


if __name__ == "__main__":
    main()
