#!/usr/bin/env python3
"""Checks an approved RT-STRUCT against the automatic one with pydicom (independent of the
C++ reader): the edited structure differs from the automatic one exactly in the painted
voxels; generation algorithms, approval status and reviewer are set.

    verify_approval.py APPROVED_DIR CASE_DIR PAINTED_JSON
PAINTED_JSON: {"structure": "PTV", "ras_indices": [...], "dims_ras": [nx, ny, nz],
               "reviewer": "...", "edited": ["PTV", "CTV"]}
"""
import json
import sys

import nibabel as nib
import numpy as np
import pydicom
from matplotlib.path import Path


def rasterize(ds, name, shape, affine_lps):
    """Voxel-centre even-odd rasterisation of one ROI onto the NIfTI grid (i, j, k)."""
    num = {r.ROINumber: r.ROIName for r in ds.StructureSetROISequence}
    out = np.zeros(shape, bool)
    inv = np.linalg.inv(affine_lps)
    ii, jj = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    centres = np.stack([ii.ravel(), jj.ravel()], axis=1) + 0.0
    for rc in ds.ROIContourSequence:
        if num[rc.ReferencedROINumber] != name:
            continue
        for c in getattr(rc, "ContourSequence", []):
            pts = np.array(c.ContourData, float).reshape(-1, 3)
            vox = (inv @ np.c_[pts, np.ones(len(pts))].T).T[:, :3]
            k = int(round(vox[0, 2]))
            assert np.allclose(vox[:, 2], k, atol=1e-3), "contour not on a slice plane"
            inside = Path(vox[:, :2]).contains_points(centres).reshape(shape[:2])
            out[:, :, k] ^= inside
    return out


def main():
    approved, case, painted_json = sys.argv[1:4]
    p = json.load(open(painted_json))
    name = p["structure"]
    ct = nib.load(f"{case}/ct.nii.gz")
    shape = ct.shape
    ras2lps = np.diag([-1.0, -1.0, 1.0, 1.0])
    affine_lps = ras2lps @ ct.affine
    auto = pydicom.dcmread(f"{approved}/RS_auto.dcm")
    appr = pydicom.dcmread(f"{approved}/RS_approved.dcm")
    a = rasterize(auto, name, shape, affine_lps)
    b = rasterize(appr, name, shape, affine_lps)
    ref = nib.load(f"{case}/masks/{name}.nii.gz").get_fdata() > 0
    assert (a == ref).all(), f"automatic RT-STRUCT {name} != automatic mask ({(a != ref).sum()} voxels)"
    diff = np.argwhere(a != b)
    # Painted voxels: NiiVue's RAS voxel order -> NIfTI (i, j, k) through the affine's axis flips.
    nx, ny, nz = p["dims_ras"]
    ras = np.array(p["ras_indices"], np.int64)
    rx, ry, rz = ras % nx, (ras // nx) % ny, ras // (nx * ny)
    flip = np.sign(np.diag(ct.affine)[:3])
    assert np.allclose(np.abs(ct.affine[:3, :3]), np.diag(np.abs(np.diag(ct.affine)[:3]))), "oblique test grid"
    i = np.where(flip[0] < 0, shape[0] - 1 - rx, rx)
    j = np.where(flip[1] < 0, shape[1] - 1 - ry, ry)
    k = np.where(flip[2] < 0, shape[2] - 1 - rz, rz)
    painted = {tuple(v) for v in np.stack([i, j, k], 1).tolist()}
    changed = {tuple(v) for v in diff.tolist()}
    assert len(painted) > 0, "nothing was painted"
    assert changed == painted, (f"{name}: approved differs from automatic in {len(changed)} voxels, painted "
                                f"{len(painted)}; only-changed {len(changed - painted)}, only-painted "
                                f"{len(painted - changed)}")
    assert all(b[v] and not a[v] for v in painted), "painted voxels must be added to the structure"
    alg = {r.ROIName: r.ROIGenerationAlgorithm for r in appr.StructureSetROISequence}
    for s, g in alg.items():
        want = "SEMIAUTOMATIC" if s in p["edited"] else "AUTOMATIC"
        assert g == want, f"{s}: ROIGenerationAlgorithm {g}, expected {want}"
    assert all(r.ROIGenerationAlgorithm == "AUTOMATIC" for r in auto.StructureSetROISequence)
    assert appr.ApprovalStatus == "APPROVED", appr.ApprovalStatus
    assert str(appr.ReviewerName) == p["reviewer"], appr.ReviewerName
    print(f"verify_approval: {name} differs from automatic in exactly the {len(painted)} painted voxels; "
          f"algorithms {alg}; {appr.ApprovalStatus} by {appr.ReviewerName}")


if __name__ == "__main__":
    main()
