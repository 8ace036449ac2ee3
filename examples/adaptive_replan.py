#!/usr/bin/python3
"""Adaptive replanning on phantoms: register a new CT to the planning CT, propagate the
structures, recompute the original plan on the new anatomy, re-optimise, warp the doses back
and accumulate over the course, compare, and export DICOM RT.

    /usr/bin/python3 examples/adaptive_replan.py --out /tmp/adapt_demo

The "new CT" is the planning phantom deformed by a smooth synthetic field (known truth), so the
propagated structures can be checked. adaptive.adapt() runs the same steps in one call.
"""
import argparse
import tempfile
from pathlib import Path

from isoline import adaptive, core, phantoms, planning, rtstruct


def show(rows, columns):
    print(f"{'structure':12} {'metric':8} " + " ".join(f"{c:>12}" for c in columns))
    for r in rows:
        vals = " ".join(f"{v:12.2f}" for v in r.values)
        print(f"{r.structure:12} {r.metric:8} {vals}  {r.criterion}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="output folder (default: a new temporary folder)")
    ap.add_argument("--size", type=int, nargs=3, default=[160, 160, 64])
    ap.add_argument("--spacing", type=float, nargs=3, default=[2.5, 2.5, 4.0])
    ap.add_argument("--iterations", type=int, default=0, help="optimiser iterations (0 = the template's)")
    ap.add_argument("--fractions-delivered", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    if a.out is None:  # made only when needed, so a run with --out leaves no empty temp folder
        a.out = Path(tempfile.mkdtemp(prefix="isoline-adapt-"))
    prog = lambda stage, f, d: print(f"\r  {stage:28.28} {f:4.0%} {d:30.30}", end="", flush=True)  # noqa: E731

    # Planning CT and its structures; the "new CT": the same patient, deformed.
    p = phantoms.make_head_neck(11, size=tuple(a.size), spacing=tuple(a.spacing))
    plan_ct, plan_structures = p.ct, p.structures
    truth_field = adaptive.synthetic_field(plan_ct.geometry, max_mm=6.0, bumps=4, sigma_mm=30.0, seed=3)
    new_ct = adaptive.warp(plan_ct, truth_field, default=-1000.0)

    # 1. Original plan on the planning CT (the default template "hn": 9 beams, 70/63/56 Gy in
    #    35 fractions).
    tpl = planning.load_template(planning.DEFAULT_TEMPLATE)
    print(f"plan on the planning CT: {tpl}")
    original = planning.make_plan(plan_ct, plan_structures, tpl, max_iterations=a.iterations,
                                  device=a.device, progress=prog)
    print()

    # 2. Register: fixed = new CT, moving = planning CT; the field lives on the new CT.
    print("register")
    reg = adaptive.register(new_ct, plan_ct, progress=prog)
    print(f"\n  min Jacobian {reg.min_jacobian:.2f}, {reg.seconds:.1f} s")

    # 3. Propagate the planning structures onto the new CT (check against the known truth).
    today = adaptive.propagate_structures(plan_structures, reg.field)
    for name in ("PTV70", "SpinalCord", "Brainstem"):
        truth = adaptive.warp(plan_structures[name].mask, truth_field)
        print(f"  {name}: propagated vs true Dice {adaptive.dice(today[name].mask, truth):.3f}")

    # 4. Recompute the original plan (fluence and MU unchanged) on the new anatomy, set up on it:
    #    the isocentres moved through the rigid registration (a new CT has its own coordinates).
    set_up = adaptive.align_plan(original.plan, reg.rigid)
    unadapted = adaptive.recompute_dose(new_ct, set_up, original.fractions, tpl.dose_grid_mm,
                                        device=a.device, progress=prog)
    print()

    # 5. Re-optimise with the same template on the new CT and the propagated structures.
    adapted = planning.make_plan(new_ct, today, tpl, max_iterations=a.iterations, device=a.device, progress=prog)
    print()

    # 6. Accumulate on the planning grid: delivered fractions as planned, the rest adapted
    #    (warped back through the inverse of the registration).
    inv, residual = adaptive.invert_field(reg.field, original.dose.geometry)
    k, n = a.fractions_delivered, original.fractions
    acc = adaptive.DoseAccumulator(original.dose.geometry)
    acc.add(original.dose, k / n)
    acc.add_warped(adapted.dose, inv, (n - k) / n)
    print(f"accumulated {acc.fractions:.2f} courses (inverse residual {residual:.2f} mm)")

    # 7. Compare planned | unadapted | adapted | accumulated (criteria and DVH metrics).
    crit = planning.load_criteria(tpl.criteria_path) if tpl.criteria_path else []
    evals = [adaptive.evaluate_dose("planned", original.dose, plan_structures, crit),
             adaptive.evaluate_dose("unadapted", unadapted, today, crit),
             adaptive.evaluate_dose("adapted", adapted.dose, today, crit),
             adaptive.evaluate_dose("accumulated", acc.total, plan_structures, crit)]
    show(adaptive.compare(evals, crit), [e.label for e in evals])

    # 8. Export: new CT series, propagated RT-STRUCT, adapted RT-DOSE and plan JSON, NIfTI doses.
    a.out.mkdir(parents=True, exist_ok=True)
    ct = rtstruct.write_ct_series(new_ct, str(a.out / "new_ct"), overwrite=True)
    rtstruct.write_rtstruct(today, ct, str(a.out / "RS_propagated.dcm"), series_description="Propagated")
    rtstruct.write_rtdose(adapted.dose, ct, str(a.out / "RD_adapted.dcm"), dose_comment="adapted plan")
    planning.write_plan_json(adapted.plan, adapted.fractions, str(a.out / "plan_adapted.json"))
    core.write_image(acc.total, str(a.out / "dose_accumulated.nii.gz"))
    adaptive.write_field(reg.field, str(a.out / "dvf.nii.gz"))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
