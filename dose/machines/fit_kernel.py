#!/usr/bin/python3
"""Fits the Ahnesjo (1989) two-exponential form to a Monte Carlo point kernel.

For every polar-angle bin j of reference/edk_varian6_egsnrc.csv (48 bins of 3.75 deg) the
energy fraction deposited in the radial shell [r0, r1] is modelled as
    F_j(r0, r1) = A_j/a_j (e^{-a_j r0} - e^{-a_j r1}) + B_j/b_j (e^{-b_j r0} - e^{-b_j r1}),
i.e. the kernel integrated over the bin's solid angle, h r^2 dOmega = A e^{-ar} + B e^{-br}
(r in cm of water).  Fitted by least squares on the cumulative curve with relative weights.
Prints the JSON block stored in generic_6mv.json ("kernel" -> "bins").
Usage: /usr/bin/python3 dose/machines/fit_kernel.py [--plot out.png]
"""
import json
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

HERE = Path(__file__).resolve().parent
radii = None
rows = []
for line in open(HERE / "reference" / "edk_varian6_egsnrc.csv"):
    if line.startswith("# radii,"):
        radii = np.array([float(v) for v in line.split(",")[1:]])
    if line.startswith("#") or not line.strip():
        continue
    v = [float(x) for x in line.split(",")]
    rows.append(v)
rows = np.array(rows)
theta_hi = rows[:, 0]
frac = rows[:, 1:]
r_in = np.concatenate([[0.0], radii[:-1]])


def model_cum(p, r):
    A, a, B, b = np.exp(p)
    return A / a * (1 - np.exp(-a * r)) + B / b * (1 - np.exp(-b * r))


bins = []
total = frac.sum()
for j in range(len(theta_hi)):
    cum = np.cumsum(frac[j])
    def res(p):
        m = model_cum(p, radii)
        return (m - cum) / (0.02 * cum[-1] + 0.05 * cum)
    best = None
    for a0 in (2.0, 5.0, 15.0):
        for b0 in (0.03, 0.08, 0.2):
            p0 = np.log([frac[j, :6].sum() * a0, a0, cum[-1] * b0, b0])
            r = least_squares(res, p0, method="lm", max_nfev=4000)
            if best is None or r.cost < best.cost:
                best = r
    A, a, B, b = np.exp(best.x)
    if a < b:
        A, a, B, b = B, b, A, a
    if a > 50.0:
        # Backward bins: no short-range component; fit a single exponential (A = 0).
        def res1(p):
            m = np.exp(p[0]) / np.exp(p[1]) * (1 - np.exp(-np.exp(p[1]) * radii))
            return (m - cum) / (0.02 * cum[-1] + 0.05 * cum)
        r1 = least_squares(res1, np.log([cum[-1] * 0.03, 0.03]), method="lm", max_nfev=4000)
        A, a = 0.0, 1.0
        B, b = np.exp(r1.x)
    m = model_cum(np.log([max(A, 1e-30), a, B, b]), radii)
    err = np.max(np.abs(m - cum)) / cum[-1]
    bins.append({"theta_deg": [float(theta_hi[j] - 3.75), float(theta_hi[j])],
                 "A": float(f"{A:.6g}"), "a": float(f"{a:.6g}"),
                 "B": float(f"{B:.6g}"), "b": float(f"{b:.6g}"),
                 "max_cum_err": float(f"{err:.3g}")})
    if "--verbose" in sys.argv:
        print(j, theta_hi[j], A, a, B, b, err, file=sys.stderr)
print(json.dumps({"source_total_fraction": float(f"{total:.5g}"), "bins": bins}, indent=1))
if "--plot" in sys.argv:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out = sys.argv[sys.argv.index("--plot") + 1]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=90)
    for j in (0, 5, 11, 23, 35, 47):
        cum = np.cumsum(frac[j])
        b = bins[j]
        p = np.log([max(b["A"], 1e-30), b["a"], b["B"], b["b"]])
        rr = np.linspace(0.01, 60, 400)
        ax.semilogx(radii, cum, "o", ms=3)
        ax.semilogx(rr, model_cum(p, rr), "-", color=ax.lines[-1].get_color(),
                    label=f"{b['theta_deg'][0]:.1f}-{b['theta_deg'][1]:.1f} deg")
    ax.set_xlabel("radius (cm water)")
    ax.set_ylabel("cumulative energy fraction in cone")
    ax.set_title("EDKnrc 6 MV kernel (dots) vs Ahnesjo fit (lines)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out)
