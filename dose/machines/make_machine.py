#!/usr/bin/python3
"""Writes generic_6mv.json, the beam model of a generic 6 MV linac, from its published sources.

Every number below is either computed here from a cited source or is a documented generic
value (see docs/dose.md, "Beam model"). Run: /usr/bin/python3 dose/machines/make_machine.py
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

# --- Spectrum: Ali & Rogers 2012 (Phys Med Biol 57:31) analytic model, parameters for a
# Varian Clinac 6 MV: psi_thin(E) = (1 + C3 E/Ee + (E/Ee)^2) (ln(Ee (Ee - E)/E + 1.65) - 0.5),
# filtered by exp(-mu_W C1^2 - mu_Al C2^2) (mass attenuation of W and Al, NIST XCOM).
# psi is taken as an energy-fluence spectrum (its fluence-weighted mean energy is 1.60 MeV).
C1, C2, C3, EE = 1.222, 5.147, -1.186, 5.76
# NIST XCOM total attenuation with coherent scattering, and energy absorption (cm^2/g).
E_TAB = [0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0]
MU_W = [4.438, 1.581, 0.7844, 0.3238, 0.1925, 0.1378, 0.1093, 0.08066, 0.06618, 0.05577, 0.05,
        0.04433, 0.04075, 0.04038, 0.04103, 0.04210]
MU_AL = [0.1704, 0.1378, 0.1223, 0.1042, 0.09276, 0.08445, 0.07802, 0.06841, 0.06146, 0.05496,
         0.05006, 0.04324, 0.03541, 0.03106, 0.02836, 0.02655]
MU_EN_WATER = [0.02546, 0.02764, 0.02967, 0.03192, 0.03279, 0.03299, 0.03284, 0.03206, 0.03103,
               0.02965, 0.02833, 0.02608, 0.02281, 0.02066, 0.01915, 0.01806]
MU_WATER = [0.1707, 0.1505, 0.1370, 0.1186, 0.1061, 0.09687, 0.08956, 0.07865, 0.07072, 0.06323,
            0.05754, 0.04942, 0.03969, 0.03403, 0.03031, 0.02770]


def loglog(tab, e):
    return float(np.exp(np.interp(np.log(e), np.log(E_TAB), np.log(tab))))


# Commissioning: energy-fluence weights w(E) = psi(E) * E^GAMMA. GAMMA tilts the published shape
# towards higher energies to reproduce the reference depth dose (docs/dose.md, "Commissioning").
GAMMA = float(sys.argv[sys.argv.index("--gamma") + 1]) if "--gamma" in sys.argv else 1.0


def spectrum(n_bins=12, e_max=6.0):
    edges = np.linspace(0.0, e_max, n_bins + 1)
    centres, weights, mus, mu_ens = [], [], [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        e = np.linspace(max(lo, 0.1), min(hi, EE - 1e-3), 200)
        thin = (1 + C3 * e / EE + (e / EE) ** 2) * (np.log(EE * (EE - e) / e + 1.65) - 0.5)
        filt = np.exp(-np.array([loglog(MU_W, x) for x in e]) * C1 ** 2
                      - np.array([loglog(MU_AL, x) for x in e]) * C2 ** 2)
        psi = np.clip(thin * filt, 0, None) * e ** GAMMA
        w = np.trapz(psi, e)
        if w <= 0:
            continue
        ec = float(np.trapz(psi * e, e) / w)
        centres.append(round(ec, 4))
        weights.append(w)
        mus.append(round(loglog(MU_WATER, ec), 5))
        mu_ens.append(round(loglog(MU_EN_WATER, ec), 5))
    weights = np.array(weights) / np.sum(weights)
    return centres, [round(float(w), 6) for w in weights], mus, mu_ens


def main():
    e, w, mu, mu_en = spectrum()
    fit = json.loads(subprocess.run([sys.executable, str(HERE / "fit_kernel.py")], check=True,
                                    capture_output=True, text=True).stdout)
    bins = [{k: b[k] for k in ("theta_deg", "A", "a", "B", "b")} for b in fit["bins"]]
    machine = {
        "name": "generic_6mv",
        "description": "Generic 6 MV flattened photon beam for collapsed-cone convolution/superposition.",
        "sources": {
            "spectrum": "E.S.M. Ali, D.W.O. Rogers, Phys Med Biol 57:31-50 (2012), analytic 6 MV (Varian Clinac) "
                        "spectrum model; NIST XCOM attenuation coefficients (water, W, Al).",
            "kernel": "Two-exponential form of A. Ahnesjo, Med Phys 16:577-592 (1989), fitted per 3.75 deg polar "
                      "bin (dose/machines/fit_kernel.py) to an EGSnrc EDKnrc polyenergetic 6 MV point kernel "
                      "(spectrum Mohan, Chui, Lidofsky, Med Phys 12:592 (1985)) published in the MIT-licensed "
                      "'conehead' project (dose/machines/reference/edk_varian6_egsnrc.csv).",
            "head_scatter": "Representative in-air output ratios Sc of a 6 MV linac, shape as reported in AAPM TG-74 "
                            "(T.C. Zhu et al., Med Phys 36:5261 (2009)); generic values, not one machine's measurement.",
            "fluence": "Generic flattened-beam horns (a few % rise off axis) and a Gaussian focal-spot blur; "
                       "sigma chosen for 80-20% penumbra of typical 6 MV linacs at 10 cm depth.",
            "calibration": "1 cGy/MU at d_max, 10x10 cm, SSD 100 cm, water (TG-51 style reference).",
        },
        "sad_mm": 1000.0,
        "spectrum": {"energy_mev": e, "energy_fluence_weight": w, "mu_rho_water_cm2_g": mu,
                     "mu_en_rho_water_cm2_g": mu_en},
        "kernel": {"form": "h r^2 dOmega = A exp(-a r) + B exp(-b r); r in cm water; A, a, B, b in 1/cm",
                   "bins": bins},
        "fluence": {
            "horn_radius_mm": [0, 50, 100, 150, 200, 283],
            "horn_factor": [1.0, 1.012, 1.03, 1.045, 1.05, 1.045],
            "source_sigma_mm": 2.2,
            "jaw_transmission": 0.005,
            "max_jaw_mm": 200.0,
        },
        "head_scatter": {
            "field_cm": [2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40],
            "sc": [0.915, 0.93, 0.945, 0.957, 0.967, 0.985, 1.0, 1.01, 1.022, 1.037, 1.048, 1.057, 1.066],
        },
        "calibration": {"gy_per_mu_at_dmax": 0.01, "field_cm": 10.0, "ssd_mm": 1000.0},
    }
    out = HERE / "generic_6mv.json"
    out.write_text(json.dumps(machine, indent=1) + "\n")
    print("wrote", out, "mean energy (fluence) %.3f MeV" % (
        np.sum(np.array(w)) / np.sum(np.array(w) / np.array(e))))


if __name__ == "__main__":
    main()
