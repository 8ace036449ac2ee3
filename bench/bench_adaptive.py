"""Registration figures: lung-pair TRE and time for Isoline, elastix and plastimatch (same
pair, same run), and the OpenKBP synthetic-deformation error and propagated OAR Dice.

Isoline's rigid step and elastix both sample their metric at random: each result is one draw.
Both run with their default seed and four more, and tre_mm_isoline / tre_mm_elastix are the
means over the five runs (per-seed values in *_seeds; the default seed's in *_default_seed).
plastimatch uses every voxel and runs once."""
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

KEYS = ["tre_mm_isoline", "tre_mm_elastix", "tre_mm_plastimatch", "register_seconds_isoline",
        "register_seconds_elastix", "register_seconds_plastimatch", "synthetic_dvf_error_mm",
        "propagated_oar_min_dice", "register_seconds_hn128_isoline",
        # CPU seconds (all threads; children for the peers): comparable on a loaded machine.
        "register_cpu_seconds_isoline", "register_cpu_seconds_elastix", "register_cpu_seconds_plastimatch",
        "register_cpu_seconds_hn128_isoline", "synthetic_dvf_error_max_case_mm", "synthetic_dvf_min_jacobian",
        "load_average_1min", "tre_mm_isoline_seeds", "tre_mm_elastix_seeds",
        "tre_mm_isoline_default_seed", "tre_mm_elastix_default_seed"]

ISOLINE_SEEDS = [20261125, 1, 2, 3, 4]  # the first is RigidOptions' default
ELASTIX_SEEDS = [121212, 1, 2, 3, 4]  # the first is elastix's default RandomSeed


def _child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _points(path):
    t = Path(path).read_text().split()
    n = int(t[1])
    return np.array(t[2:2 + 3 * n], float).reshape(n, 3)


def _inside(geom, pts):
    ok = []
    for p in pts:
        c = np.array(geom.world_to_index(tuple(p)))
        ok.append(bool(np.all(c >= 0) and np.all(c <= np.array(geom.size) - 1)))
    return np.array(ok)


def _record_seeds(out, tool, tres, secs, cpus):
    """Means over the seeds (TRE, wall and CPU seconds per run), the per-seed TREs and the
    default seed's (the first)."""
    out[f"tre_mm_{tool}"] = round(float(np.mean(tres)), 3)
    out[f"tre_mm_{tool}_seeds"] = tres
    out[f"tre_mm_{tool}_default_seed"] = tres[0]
    out[f"register_seconds_{tool}"] = round(float(np.mean(secs)), 2)
    out[f"register_cpu_seconds_{tool}"] = round(float(np.mean(cpus)), 2)


def run(ctx):
    sys.path.insert(0, str(ctx.build / "python"))
    from isoline import adaptive, core
    out = {k: None for k in KEYS}
    L = ctx.shared / "lung_pair"
    fixed_p, moving_p = L / "3DCT_lung_baseline.mha", L / "3DCT_lung_followup.mha"
    fixed, moving = core.read_image(str(fixed_p)), core.read_image(str(moving_p))
    pf, pm = _points(L / "3DCT_lung_baseline_landmarks.txt"), _points(L / "3DCT_lung_followup_landmarks.txt")
    sel = _inside(fixed.geometry, pf) & _inside(moving.geometry, pm)

    def tre_of_field(field):
        t = np.array([field.transform_point(tuple(p)) for p in pf[sel]])
        return float(np.linalg.norm(t - pm[sel], axis=1).mean())

    out["load_average_1min"] = round(os.getloadavg()[0], 2)
    tres, secs, cpus = [], [], []
    for seed in ISOLINE_SEEDS:
        t0, c0 = time.perf_counter(), time.process_time()
        reg = adaptive.register(fixed, moving, seed=seed)
        secs.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        tres.append(round(tre_of_field(reg.field), 3))
        print(f"   Isoline seed {seed}: TRE {tres[-1]:.3f} mm, {secs[-1]:.1f} s", file=sys.stderr)
    _record_seeds(out, "isoline", tres, secs, cpus)

    peers = ctx.root / "bench" / "peers"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        try:  # elastix: rigid + B-spline, standard parameter files, five seeds
            tres, secs, cpus = [], [], []
            for seed in ELASTIX_SEEDS:
                run_dir = tmp / f"elastix_{seed}"
                run_dir.mkdir()
                params = []
                for name in ("elastix_rigid.txt", "elastix_bspline.txt"):
                    text = (peers / name).read_text() + f"\n(RandomSeed {seed})\n"
                    (run_dir / name).write_text(text)
                    params += ["-p", run_dir / name]
                t0, c0 = time.perf_counter(), _child_cpu()
                subprocess.run(["elastix", "-f", fixed_p, "-m", moving_p, *params, "-out", run_dir,
                                "-threads", str(os.cpu_count())], check=True, capture_output=True)
                secs.append(time.perf_counter() - t0)
                cpus.append(_child_cpu() - c0)
                subprocess.run(["transformix", "-def", L / "3DCT_lung_baseline_landmarks.txt", "-tp",
                                run_dir / "TransformParameters.1.txt", "-out", run_dir], check=True,
                               capture_output=True)
                rows = [re.search(r"OutputPoint = \[ ([^\]]+) \]", l).group(1).split()
                        for l in (run_dir / "outputpoints.txt").read_text().splitlines()]
                t = np.array(rows, float)[sel]
                tres.append(round(float(np.linalg.norm(t - pm[sel], axis=1).mean()), 3))
                print(f"   elastix seed {seed}: TRE {tres[-1]:.3f} mm, {secs[-1]:.1f} s", file=sys.stderr)
            _record_seeds(out, "elastix", tres, secs, cpus)
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"   elastix failed: {e}", file=sys.stderr)
        try:  # plastimatch: rigid + multi-stage B-spline
            cmd = (peers / "plastimatch_register.txt").read_text()
            cmd = cmd.replace("FIXED", str(fixed_p)).replace("MOVING", str(moving_p)).replace("VF_OUT", str(tmp / "vf.nrrd"))
            (tmp / "plm.txt").write_text(cmd)
            t0, c0 = time.perf_counter(), _child_cpu()
            subprocess.run(["plastimatch", "register", tmp / "plm.txt"], check=True, capture_output=True)
            out["register_seconds_plastimatch"] = round(time.perf_counter() - t0, 2)
            out["register_cpu_seconds_plastimatch"] = round(_child_cpu() - c0, 2)
            out["tre_mm_plastimatch"] = round(tre_of_field(adaptive.read_field(str(tmp / "vf.nrrd"))), 3)
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"   plastimatch failed: {e}", file=sys.stderr)

    # Known synthetic deformations (10 mm, seeded) of OpenKBP validation patients.
    errs, dices, secs, cpus, jacs = [], [], [], [], []
    for i, pt in enumerate(["pt_201", "pt_202", "pt_203"]):
        d = ctx.shared / "openkbp" / "validation" / pt
        mov = core.read_image(str(d / "ct.nii.gz"))
        truth = adaptive.synthetic_field(mov.geometry, max_mm=10.0, seed=100 + i)
        fix = adaptive.warp(mov, truth, -1000.0)
        t0, c0 = time.perf_counter(), time.process_time()
        r = adaptive.register(fix, mov, rigid=False)
        secs.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        body = fix.array > -300
        errs.append(float(np.linalg.norm(r.field.array - truth.array, axis=-1)[body].mean()))
        jacs.append(r.min_jacobian)
        print(f"   {pt}: mean vector error {errs[-1]:.3f} mm, min Jacobian {r.min_jacobian:.3f}, "
              f"{secs[-1]:.1f} s", file=sys.stderr)
        for oar in ["Brainstem", "SpinalCord", "Mandible", "LeftParotid", "RightParotid", "Esophagus", "Larynx"]:
            if not (d / f"{oar}.nii.gz").exists():
                continue
            m = core.read_image(str(d / f"{oar}.nii.gz"))
            a, b = adaptive.warp(m, truth).array > 0, adaptive.warp(m, r.field).array > 0
            dices.append(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))
    out["synthetic_dvf_error_mm"] = round(float(np.mean(errs)), 3)
    out["propagated_oar_min_dice"] = round(float(np.min(dices)), 3)
    out["register_seconds_hn128_isoline"] = round(float(np.mean(secs)), 2)
    out["register_cpu_seconds_hn128_isoline"] = round(float(np.mean(cpus)), 2)
    out["synthetic_dvf_error_max_case_mm"] = round(float(np.max(errs)), 3)
    out["synthetic_dvf_min_jacobian"] = round(float(np.min(jacs)), 3)
    return out
