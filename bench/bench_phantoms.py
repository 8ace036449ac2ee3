"""Phantom figures: time to generate the default 512 x 512 x 160 head-and-neck case.

phantom_hn_seconds_512: generation time (anatomy, tissue painting, 13 ground-truth masks,
CT synthesis with blur and noise) as reported by `isoline phantom hn`, best of 3, with all
cores of the machine (the CI/dev machine has 2).
phantom_hn_total_seconds_512: the whole command's wall time including writing ct.nii.gz,
labels.nii.gz, 13 NIfTI masks, the DICOM CT series and RS.dcm (dominated by gzip).
"""
import re
import shutil

KEYS = ["phantom_hn_seconds_512", "phantom_hn_total_seconds_512"]


def run(ctx):
    out = ctx.work / "phantom_hn"
    gen = []
    total = []
    for _ in range(3):
        if out.exists():
            shutil.rmtree(out)
        dt, p = ctx.run(ctx.isoline, "phantom", "hn", "--seed", "7", "--out", out)
        m = re.search(r"generated in ([0-9.]+) s", p.stdout)
        if not m:
            raise RuntimeError("no 'generated in' line in: " + p.stdout[-300:])
        gen.append(float(m.group(1)))
        total.append(dt)
    shutil.rmtree(out, ignore_errors=True)
    return {"phantom_hn_seconds_512": round(min(gen), 3),
            "phantom_hn_total_seconds_512": round(min(total), 3)}
