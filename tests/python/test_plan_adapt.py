"""isoline.planning.make_plan (plan templates) and the adaptive replanning bindings."""
import numpy as np
import pytest

import isoline
from isoline import adaptive, core, dose, phantoms, planning


@pytest.fixture(scope="module")
def case():
    return phantoms.make_head_neck(11, size=(80, 80, 40), spacing=(4.0, 4.0, 5.0))


@pytest.fixture(scope="module")
def original(case):
    seen = []
    res = planning.make_plan(case.ct, case.structures, "hn", max_iterations=30,
                             progress=lambda s, f, d: seen.append(f))
    assert seen and seen[-1] == 1.0
    return res


def test_make_plan_and_plan_json(case, original, tmp_path):
    tpl = planning.load_template("hn")
    assert tpl.fractions == 35 and len(tpl.gantry_deg) == 9 and tpl.targets[0].structure == "PTV70"
    assert original.fractions == 35 and len(original.plan.beams) == 9
    assert original.dose.dtype == "float32"
    assert original.optimizer.iterations > 0 and original.optimizer.weights.size > 0
    assert "PTV70" in original.dvhs and original.criteria
    d95 = original.dvhs["PTV70"].metric("D95%")
    assert 55 < d95 < 85          # prescription scale (70 Gy); plan quality is tested in tests/planning
    planning.write_plan_json(original.plan, original.fractions, str(tmp_path / "plan.json"))
    back = dose.read_plan(str(tmp_path / "plan.json"))
    assert len(back.beams) == 9
    assert back.beams[0].mu == pytest.approx(original.plan.beams[0].mu, rel=1e-4)
    ev = planning.evaluate_dose(original.dose, case.structures,
                                planning.load_criteria(tpl.criteria_path))
    assert ev.dvhs["PTV70"].mean_gy == pytest.approx(original.dvhs["PTV70"].mean_gy, rel=1e-6)
    with pytest.raises(OSError):
        planning.load_template("no-such-template")
    s = core.StructureSet(case.ct.geometry)
    s.add("Brainstem", case.structures["Brainstem"].mask)
    with pytest.raises(ValueError):          # no target of the template present
        planning.make_plan(case.ct, s, tpl, max_iterations=5)


def test_propagation_accumulation_and_compare(case, original):
    g = case.ct.geometry
    field = adaptive.synthetic_field(g, max_mm=4.0, bumps=3, sigma_mm=25.0, seed=2)
    moved = adaptive.propagate_structures(case.structures, field)
    assert set(moved.names()) == set(case.structures.names())
    assert moved["PTV70"].description.startswith("propagated")
    zero = adaptive.propagate_structures(case.structures, adaptive.DisplacementField.zeros(g))
    assert adaptive.dice(zero["PTV70"].mask, case.structures["PTV70"].mask) == 1.0
    assert adaptive.is_target(case.structures["PTV70"]) and not adaptive.is_target(case.structures["Brainstem"])
    fused = adaptive.fuse_structures(moved, zero, dice_threshold=0.99)
    assert {a.name for a in fused.agreement} >= {"PTV70", "Brainstem"}

    inv, residual = adaptive.invert_field(field, original.dose.geometry)
    assert residual < 0.5
    acc = adaptive.DoseAccumulator(original.dose.geometry)
    acc.add(original.dose, 0.5)
    acc.add_warped(original.dose, adaptive.DisplacementField.zeros(original.dose.geometry), 0.5)
    assert acc.fractions == pytest.approx(1.0)
    np.testing.assert_allclose(acc.total.array, original.dose.array, rtol=1e-4, atol=1e-3)
    w = adaptive.warp_dose(original.dose, inv)
    assert w.geometry.same_grid(original.dose.geometry)

    crit = planning.load_criteria(planning.load_template("hn").criteria_path)
    e1 = adaptive.evaluate_dose("planned", original.dose, case.structures, crit)
    e2 = adaptive.evaluate_dose("warped", w, case.structures, crit)
    rows = adaptive.compare([e1, e2], crit)
    assert rows and all(len(r.values) == 2 for r in rows)
    assert any(r.criterion for r in rows)


def test_adapt_without_replan(case, original):
    field = adaptive.synthetic_field(case.ct.geometry, max_mm=3.0, bumps=2, sigma_mm=25.0, seed=4)
    new_ct = adaptive.warp(case.ct, field, default=-1000.0)
    inp = adaptive.AdaptInput(case.ct, case.structures, original.plan, original.fractions,
                              planning.load_template("hn"), new_ct, planned_dose=original.dose)
    seen = []
    r = adaptive.adapt(inp, replan=False, iterations=[20, 10], progress=lambda s, f, d: seen.append(s))
    assert "PTV70" in r.structures and r.unadapted_dose.dtype == "float32"
    assert r.columns and r.rows and r.timing.total_s > 0
    assert seen and adaptive.replan_available()


def test_adapt_new_ct_in_other_coordinates(case, original):
    """A new CT is another scan with its own coordinates. Same anatomy, origin moved: the
    original plan set up on it (isocentre through the rigid registration) gives the planned
    dose again, and the dose warped back to the planning grid is the planned dose too (before,
    the beams kept the planning coordinates, PTV70 D99 fell to ~0 Gy, and planning points
    outside the new CT's grid got 0 Gy in the accumulated dose)."""
    offset = np.array([30.0, -20.0, 120.0])
    g = case.ct.geometry
    g2 = core.Geometry(size=g.size, spacing=g.spacing, origin=tuple(np.array(g.origin) + offset))
    new_ct = core.Image(case.ct.array, g2, copy=True)
    inp = adaptive.AdaptInput(case.ct, case.structures, original.plan, original.fractions,
                              planning.load_template("hn"), new_ct, planned_dose=original.dose)
    r = adaptive.adapt(inp, replan=False, iterations=[20, 10])
    np.testing.assert_allclose(r.setup_shift_mm, offset, atol=1.0)
    iso = np.array(original.plan.beams[0].isocenter_mm)
    np.testing.assert_allclose(r.unadapted_plan.beams[0].isocenter_mm, iso + offset, atol=1.0)
    aligned = adaptive.align_plan(original.plan, r.registration.rigid)
    np.testing.assert_allclose(aligned.beams[0].isocenter_mm, r.unadapted_plan.beams[0].isocenter_mm)
    p = r.planned.dvhs["PTV70"].metric("D95%")
    assert r.unadapted.dvhs["PTV70"].metric("D95%") == pytest.approx(p, rel=0.03)
    assert r.accumulated_unadapted_eval.dvhs["PTV70"].metric("D95%") == pytest.approx(p, rel=0.03)
    assert r.accumulated_unadapted_eval.dvhs["Brainstem"].mean_gy == pytest.approx(
        r.planned.dvhs["Brainstem"].mean_gy, rel=0.05, abs=0.5)
    # The whole planning dose region is on the new CT: every structure has accumulated figures.
    assert r.dose_region_beyond_new_ct == 0.0 and r.beyond_new_ct == {}
    assert 0.0 <= r.inverse_fraction_over_1mm < 0.05 and r.inverse_residual_dose_region_mm >= 0.0
    # Without setup correction the beams keep the planning coordinates, here outside the new CT.
    with pytest.raises(ValueError, match="original plan on the new CT.*outside the CT.*without setup correction"):
        adaptive.adapt(inp, replan=False, iterations=[20, 10], setup_correction=False)


def test_adapt_refuses_a_planned_dose_in_cgy(case, original):
    """A planned dose in cGy would be summed with Gy doses in the accumulation: refused."""
    cgy = core.Image(original.dose.array * 100.0, original.dose.geometry, copy=True)
    inp = adaptive.AdaptInput(case.ct, case.structures, original.plan, original.fractions,
                              planning.load_template("hn"), case.ct, planned_dose=cgy)
    with pytest.raises(ValueError, match="adapt: planned dose: maximum .* not in Gy"):
        adaptive.adapt(inp, replan=False)
    inp.planned_dose_source = "plan/dose.nii.gz"  # as isoline adapt names the file it read
    with pytest.raises(ValueError, match=r"adapt: plan/dose\.nii\.gz: planned dose maximum .* not in Gy"):
        adaptive.adapt(inp, replan=False)
