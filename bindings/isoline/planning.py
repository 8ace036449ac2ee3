"""DVH, dose metrics, clinical criteria and fluence-map optimisation.

Example::

    from isoline import core, planning
    dose = core.read_image("dose.nii.gz", dtype="float32")
    ptv = core.read_image("PTV70.nii.gz")
    dvh = planning.compute_dvh(dose, ptv, "PTV70")
    dvh.dose_at_percent(95), dvh.metric("D0.1cc"), dvh.mean_gy
    crit = planning.load_criteria("planning/criteria/hn.json")
    for r in planning.evaluate_criteria(crit, {"PTV70": dvh}):
        print(r.criterion.description, r.evaluated, r.value, r.passed)

    # A whole plan from a template: influence matrix, optimisation, dose, DVHs, criteria.
    pt = isoline.load_patient("case/")
    res = planning.make_plan(pt.ct, pt.structures, progress=print)  # template hn
    res.dose, res.dvhs["PTV70"].metric("D95%"), [c.passed for c in res.criteria]
    planning.write_plan_json(res.plan, res.fractions, "plan.json")   # dose.read_plan reads it
"""
from ._isoline.planning import (  # noqa: F401
    DEFAULT_TEMPLATE,
    Criterion,
    CriterionResult,
    Dvh,
    DvhOptions,
    Objective,
    ObjectiveType,
    SparseMatrix,
    compute_dvh,
    conformity_index,
    evaluate_criteria,
    fraction_outside,
    homogeneity_index,
    load_criteria,
    optimize_fluence,
    DoseEvaluation,
    OptimizerResult,
    PlanResult,
    PlanTemplate,
    PlanTiming,
    TargetLevel,
    evaluate_dose,
    load_template,
    make_plan,
    write_plan_json,
)

__all__ = [
    "DEFAULT_TEMPLATE",
    "Criterion",
    "CriterionResult",
    "Dvh",
    "DvhOptions",
    "Objective",
    "ObjectiveType",
    "SparseMatrix",
    "compute_dvh",
    "conformity_index",
    "evaluate_criteria",
    "fraction_outside",
    "homogeneity_index",
    "load_criteria",
    "optimize_fluence",
    "DoseEvaluation",
    "OptimizerResult",
    "PlanResult",
    "PlanTemplate",
    "PlanTiming",
    "TargetLevel",
    "evaluate_dose",
    "load_template",
    "make_plan",
    "write_plan_json",
]
