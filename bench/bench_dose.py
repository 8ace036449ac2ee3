"""Dose engine figures: water beam data, slab heterogeneity, 9-beam head-and-neck speed.

Runs the engine's standalone driver (build/bin/isoline-dose-engine) on plain cases written
here: density volumes are built directly with numpy (no phantoms module). Also writes the PDD,
profile and slab plots to docs/images/ and prints how time grows with grid size and with the
number of beamlets.
"""
import json
import os
import subprocess
from pathlib import Path

import numpy as np

KEYS = ["pdd_dmax_cm", "pdd10_percent", "pdd20_percent", "penumbra_80_20_mm",
        "output_factor_3x3", "output_factor_30x30", "lung_slab_max_dev_percent",
        "dose_seconds_hn9_cpu", "influence_seconds_hn9_cpu", "dose_seconds_hn9_cuda",
        "influence_seconds_hn9_cuda", "cpu_cuda_max_diff_percent", "influence_peak_rss_mib",
        # CPU time (user + system) of the same runs: on a shared machine the wall time above
        # includes waiting for other processes; CPU time / 2 bounds the 2-core wall time.
        "dose_cpu_time_hn9_s", "influence_cpu_time_hn9_s",
        # slabs along the whole central axis vs the modified Batho power law (TG-65), and the
        # bone slab vs the equivalent path (lung_slab_max_dev_percent: lung vs equivalent path)
        "lung_slab_batho_max_dev_percent", "bone_slab_batho_max_dev_percent",
        "bone_slab_max_dev_percent",
        # CPU vs CUDA influence matrices: max difference of the all-beamlets dose, % of its max
        "influence_cpu_cuda_max_diff_percent"]

SURFACE = -150.0


class Engine:
    def __init__(self, ctx):
        self.bin = ctx.build / "bin" / "isoline-dose-engine"
        if not self.bin.exists():
            raise RuntimeError(f"{self.bin} not built")
        self.work = ctx.work / "dose"
        self.work.mkdir(parents=True, exist_ok=True)
        # relative to the case files, so bench/work/dose/*.json also run in a copy of the tree
        # (e.g. on a GPU host: isoline-dose-engine bench/work/dose/hn9.json --device cuda --compare)
        self.machine = os.path.relpath(ctx.root / "dose" / "machines" / "generic_6mv.json", self.work)
        self.env = dict(os.environ, OMP_NUM_THREADS="2")

    def run(self, name, rho, spacing, origin, beams, extra=(), target=None, options=None, timed=False):
        rho = np.ascontiguousarray(rho, dtype=np.float32)  # [k][j][i]
        (self.work / f"{name}.f32").write_bytes(rho.tobytes())
        case = {"density": f"{name}.f32", "size": [rho.shape[2], rho.shape[1], rho.shape[0]],
                "spacing": list(spacing), "origin": list(origin), "machine": self.machine,
                "options": options or {"n_zenith": 6, "n_azimuth": 8}, "beams": beams}
        if target is not None:
            (self.work / f"{name}.u8").write_bytes(np.ascontiguousarray(target, dtype=np.uint8).tobytes())
            case["target"] = f"{name}.u8"
        path = self.work / f"{name}.json"
        path.write_text(json.dumps(case))
        cmd = [str(self.bin), str(path), "--out", str(self.work / f"{name}_dose.f32"), *extra]
        if timed and Path("/usr/bin/time").exists():
            cmd = ["/usr/bin/time", "-f", "RSS_KB %M"] + cmd
        p = subprocess.run(cmd, capture_output=True, text=True, env=self.env)
        if p.returncode != 0:
            raise RuntimeError(p.stderr.strip()[-400:])
        info = json.loads(p.stdout.strip().splitlines()[-1])
        for line in p.stderr.splitlines():
            if line.startswith("RSS_KB"):
                info["rss_mib"] = int(line.split()[1]) / 1024.0
        dose = np.fromfile(self.work / f"{name}_dose.f32", dtype=np.float32).reshape(rho.shape)
        return dose, info


def water(h, lateral, depth, rho_of_depth=lambda z: 1.0):
    n = int(round(lateral / h)) | 1
    ny = int(round(depth / h))
    z = (np.arange(ny) + 0.5) * h
    prof = np.array([rho_of_depth(v) for v in z], dtype=np.float32)
    rho = np.broadcast_to(prof[None, :, None], (n, ny, n)).copy()
    origin = (-(n // 2) * h, SURFACE + 0.5 * h, -(n // 2) * h)
    return rho, origin, z


def beam(field_mm, gantry=0, iso=(0, SURFACE, 0), mu=100):
    f = field_mm / 2
    return {"gantry": gantry, "isocenter": list(iso), "jaws": [-f, f, -f, f], "mu": mu}


def axis(d):
    n = d.shape[0]
    return d[n // 2, :, n // 2]


def profile_at(d, j):
    n = d.shape[0]
    return d[n // 2, j, :]


def penumbra(x, p):
    r = x >= 0
    xs, ps = x[r], p[r] / p[r][0]
    x80 = np.interp(-0.8, -ps, xs)
    x20 = np.interp(-0.2, -ps, xs)
    return x20 - x80


def run(ctx):
    out = {k: None for k in KEYS}
    eng = Engine(ctx)
    images = ctx.root / "docs" / "images"
    images.mkdir(parents=True, exist_ok=True)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # --- water, 10x10, SSD 100, 2.5 mm grid
    h = 2.5
    rho, org, z = water(h, 300, 300)
    d10, info = eng.run("water10", rho, (h, h, h), org, [beam(100)])
    ax = axis(d10)
    dm = ax.max()
    out["pdd_dmax_cm"] = round(float(z[np.argmax(ax)] / 10), 3)
    out["pdd10_percent"] = round(float(np.interp(100, z, ax) / dm * 100), 2)
    out["pdd20_percent"] = round(float(np.interp(200, z, ax) / dm * 100), 2)
    n = rho.shape[0]
    x = (np.arange(n) - n // 2) * h
    j10 = int(100 / h)
    out["penumbra_80_20_mm"] = round(float(penumbra(x, profile_at(d10, j10))), 2)
    print(f"   water 10x10 (2.5 mm, {info['dose_seconds']:.2f} s): d_max {out['pdd_dmax_cm']} cm, "
          f"PDD10 {out['pdd10_percent']}, PDD20 {out['pdd20_percent']}, penumbra {out['penumbra_80_20_mm']} mm")

    # --- output factors at d_max (1.5 cm), SSD 100, 5 mm grid, 50 cm wide phantom
    h5 = 5.0
    rho5, org5, z5 = water(h5, 500, 200)
    curves = {}
    for f in (30, 50, 100, 200, 300):
        d, _ = eng.run(f"of{f}", rho5, (h5,) * 3, org5, [beam(f)])
        curves[f] = axis(d)
    ref = np.interp(15, z5, curves[100])
    out["output_factor_3x3"] = round(float(np.interp(15, z5, curves[30]) / ref), 4)
    out["output_factor_30x30"] = round(float(np.interp(15, z5, curves[300]) / ref), 4)
    print("   output factors at 1.5 cm: " + ", ".join(
        f"{f // 10}x{f // 10} {np.interp(15, z5, c) / ref:.3f}" for f, c in curves.items()))

    # PDD plot (several fields) and profiles of the 10x10
    fig, axs = plt.subplots(1, 2, figsize=(10, 4), dpi=80)
    for f, c in curves.items():
        axs[0].plot(z5 / 10, c / c.max() * 100, label=f"{f // 10}x{f // 10} (5 mm grid)")
    axs[0].plot(z / 10, ax / dm * 100, "k", lw=2, label="10x10 (2.5 mm grid)")
    axs[0].plot([10, 20], [66.5, 38.5], "rs", ms=7, mfc="none", label="reference PDD(10), PDD(20)")
    axs[0].set_xlabel("depth (cm)")
    axs[0].set_ylabel("PDD (%)")
    axs[0].set_title("6 MV depth dose, SSD 100 cm")
    axs[0].legend(fontsize=7)
    axs[0].grid(alpha=0.3)
    for dep in (15, 50, 100, 200):
        j = int(dep / h)
        axs[1].plot(x / 10, profile_at(d10, j) / dm * 100, label=f"{(j + 0.5) * h / 10:.1f} cm")
    axs[1].set_xlabel("off-axis distance (cm)")
    axs[1].set_ylabel("dose (% of d_max)")
    axs[1].set_title("10x10 cm profiles")
    axs[1].set_xlim(-10, 10)
    axs[1].legend(fontsize=7)
    axs[1].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(images / "dose_pdd_profiles.png")
    plt.close(fig)

    # --- slabs vs equivalent path (radiological depth) water depth dose
    h3 = 3.0
    rw, ow, zw = water(h3, 240, 300)
    dw, _ = eng.run("slab_w", rw, (h3,) * 3, ow, [beam(100)])
    aw = axis(dw)
    norm = aw.max()
    # geometries of `isoline phantom lung-slab|bone-slab`: lung -740 HU (0.26), bone 1350 HU (1.69)
    slabs = {"lung": (0.25, 50, 150, 180, 250), "bone": (1.7, 50, 80, 110, 250)}
    dmz = zw[np.argmax(aw)]
    tmr = aw * ((1000 + zw) / (1000 + dmz)) ** 2 / norm  # pseudo-TMR: inverse square removed

    def batho(zs, r, z0, z1):
        """Modified Batho power law (Sontag & Cunningham 1977; TMR with d_max shift, AAPM Report 85)."""
        out_ = []
        for d in zs:
            layers = [(0.0, 1.0)] + ([(z0, r)] if d >= z0 else []) + ([(z1, 1.0)] if d >= z1 else [])
            cf, prev = 1.0, 0.0
            for top, rho_m in layers:
                cf *= np.interp(d - top + dmz, zw, tmr) ** (rho_m - prev)
                prev = rho_m
            out_.append(cf / np.interp(d + dmz, zw, tmr) * np.interp(d, zw, aw))
        return np.array(out_)

    fig, axp = plt.subplots(1, 2, figsize=(10, 4), dpi=80)
    for i, (name, (r, z0, z1, c0, c1)) in enumerate(slabs.items()):
        rh, oh, zh = water(h3, 240, 300, lambda v: r if z0 <= v < z1 else 1.0)
        dh, _ = eng.run(f"slab_{name}", rh, (h3,) * 3, oh, [beam(100)])
        ah = axis(dh)
        zr = np.where(zh < z0, zh, np.where(zh < z1, z0 + (zh - z0) * r, zh - (z1 - z0) * (1 - r)))
        epl = np.interp(zr, zw, aw) * ((1000 + zr) / (1000 + zh)) ** 2
        sel = (zh >= c0) & (zh <= c1)
        dev = float(np.max(np.abs(ah[sel] - epl[sel])) / norm * 100)
        print(f"   {name} slab (rho {r}, {z0 / 10:.0f}-{z1 / 10:.0f} cm): max deviation from the "
              f"equivalent-path reference at {c0 / 10:.0f}-{c1 / 10:.0f} cm: {dev:.2f} % of d_max")
        out[f"{name}_slab_max_dev_percent"] = round(dev, 2)
        bat = batho(zh, r, z0, z1)
        full = zh <= 280
        devb = float(np.max(np.abs(ah[full] - bat[full])) / norm * 100)
        out[f"{name}_slab_batho_max_dev_percent"] = round(devb, 2)
        print(f"   {name} slab: max deviation from the modified Batho power law along the central "
              f"axis (0-28 cm): {devb:.2f} % of d_max")
        axp[i].plot(zh / 10, ah / norm * 100, "b", label=f"CCCS, {name} slab")
        axp[i].plot(zh / 10, epl / norm * 100, "r--", label="equivalent path (water PDD at radiological depth)")
        axp[i].plot(zh / 10, bat / norm * 100, "g-.", label="modified Batho power law (TG-65)")
        axp[i].plot(zw / 10, aw / norm * 100, "k:", label="homogeneous water")
        axp[i].axvspan(z0 / 10, z1 / 10, color="grey", alpha=0.2)
        axp[i].set_xlabel("depth (cm)")
        axp[i].set_ylabel("dose (% of water d_max)")
        axp[i].set_title(f"10x10 cm, {name} slab, density {r}")
        axp[i].legend(fontsize=7)
        axp[i].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(images / "dose_slabs.png")
    plt.close(fig)

    # --- 9-beam head and neck (OpenKBP pt_1, 128^3)
    hn = hn_case(ctx)
    if hn is not None:
        rho_hn, sp, org_hn, target, iso, half = hn
        beams = [dict(beam(2 * half, g, iso), mu=100) for g in range(0, 360, 40)]
        # final dose for given fluence maps: 5 mm bixels over the jaws, random weights 0..1
        rng = np.random.default_rng(6)
        nbx = int(np.ceil(2 * half / 5))
        fbeams = [dict(b, fluence={"x0": -half, "y0": -half, "dx": 2 * half / nbx, "dy": 2 * half / nbx,
                                   "nx": nbx, "ny": nbx,
                                   "weights": [round(float(w), 3) for w in rng.uniform(0, 1, nbx * nbx)]})
                  for b in beams]
        _, info = eng.run("hn9", rho_hn, sp, org_hn, fbeams, extra=["--repeat", "2"])
        out["dose_seconds_hn9_cpu"] = round(info["dose_seconds"], 3)
        out["dose_cpu_time_hn9_s"] = round(info["dose_cpu_seconds"], 3)
        _, info = eng.run("hn9i", rho_hn, sp, org_hn, beams, extra=["--influence"], target=target, timed=True)
        out["influence_seconds_hn9_cpu"] = round(info["influence_seconds"], 2)
        out["influence_cpu_time_hn9_s"] = round(info["influence_cpu_seconds"], 2)
        if "rss_mib" in info:
            out["influence_peak_rss_mib"] = round(info["rss_mib"], 1)
        print(f"   H&N 9 beams (2 threads): dose {out['dose_seconds_hn9_cpu']} s wall "
              f"({out['dose_cpu_time_hn9_s']} s CPU); influence {out['influence_seconds_hn9_cpu']} s wall "
              f"({out['influence_cpu_time_hn9_s']} s CPU) for {info['beamlets']} beamlets, {info['nnz']} "
              f"non-zeros, peak RSS {out['influence_peak_rss_mib']} MiB; load average {os.getloadavg()[0]:.1f}")
        # GPU figures, only where a CUDA device is usable
        try:
            _, g = eng.run("hn9g", rho_hn, sp, org_hn, fbeams, extra=["--device", "cuda", "--compare", "--repeat", "3"])
            out["dose_seconds_hn9_cuda"] = round(g["dose_seconds"], 4)
            out["cpu_cuda_max_diff_percent"] = round(g["max_diff_percent_of_max"], 4)
            # influence matrix on the GPU (beamlets batched), compared with the CPU matrix
            _, gi = eng.run("hn9ig", rho_hn, sp, org_hn, beams, extra=["--influence", "--device", "cuda", "--compare"],
                            target=target)
            out["influence_seconds_hn9_cuda"] = round(gi["influence_seconds"], 3)
            out["influence_cpu_cuda_max_diff_percent"] = round(gi["influence_max_diff_percent_of_max"], 4)
        except RuntimeError as e:
            print(f"   CUDA: not measured here ({str(e).splitlines()[-1][:120]})")
        # scaling: time vs number of beamlets (beams) and vs grid size
        print("   scaling with beamlets (influence matrix, 5 mm bixels):")
        for nb in (1, 3, 9):
            _, info = eng.run("hn_scale", rho_hn, sp, org_hn, beams[:nb], extra=["--influence"], target=target)
            print(f"     {nb} beams: {info['beamlets']:5d} beamlets, {info['influence_seconds']:7.2f} s wall, "
                  f"{info['influence_cpu_seconds']:7.2f} s CPU, "
                  f"{info['influence_cpu_seconds'] / max(info['beamlets'], 1) * 1000:.2f} CPU-ms/beamlet")
    print("   scaling with grid size (water, one 10x10 beam, 48 directions):")
    for hh in (5.0, 4.0, 3.0, 2.5, 2.0):
        r, o, _ = water(hh, 240, 240)
        _, info = eng.run("scale", r, (hh,) * 3, o, [beam(100)])
        print(f"     {hh} mm: {r.size:9d} voxels, {info['dose_seconds']:6.2f} s wall, "
              f"{info['dose_cpu_seconds']:6.2f} s CPU, {info['dose_cpu_seconds'] / r.size * 1e9:.0f} CPU-ns/voxel")
    return out


def hn_case(ctx):
    base = ctx.shared / "openkbp" / "train" / "pt_1"
    if not (base / "ct.nii.gz").exists():
        return None
    import nibabel as nib
    img = nib.load(str(base / "ct.nii.gz"))
    hu = np.asarray(img.dataobj).astype(np.float32)  # [x][y][z], identity direction in LPS
    A = img.affine
    sp = tuple(float(abs(A[i, i])) for i in range(3))
    org = (-float(A[0, 3]), -float(A[1, 3]), float(A[2, 3]))  # RAS -> LPS
    hu_t = [-1024, -1000, -800, -100, 0, 100, 1000, 3000]  # HuCalibration::generic()
    red_t = [0.001, 0.001, 0.20, 0.94, 1.00, 1.06, 1.51, 2.55]
    rho = np.interp(hu, hu_t, red_t).astype(np.float32)
    ptv = np.zeros(hu.shape, bool)
    for name in ("PTV70", "PTV63", "PTV56"):
        p = base / f"{name}.nii.gz"
        if p.exists():
            ptv |= np.asarray(nib.load(str(p)).dataobj) > 0
    idx = np.argwhere(ptv)
    c = idx.mean(0)
    iso = [org[a] + c[a] * sp[a] for a in range(3)]
    half = float(max((idx.max(0) - idx.min(0)) * np.array(sp)) / 2 + 10)
    return rho.transpose(2, 1, 0), sp, org, ptv.transpose(2, 1, 0), iso, half
