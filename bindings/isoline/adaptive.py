"""Registration, warping and displacement fields for adaptive replanning.

Convention (ITK/elastix): a registration maps FIXED points to MOVING points,
T(x) = x + u(x); a moving image is warped onto the fixed grid as moving(T(x)).

Example::

    from isoline import core, adaptive
    plan_ct = core.read_image("plan_ct.nii.gz")
    new_ct = core.read_image("fraction5_ct.nii.gz")
    reg = adaptive.register(new_ct, plan_ct)          # fixed = new CT, moving = planning CT
    ptv_today = adaptive.warp(core.read_image("PTV70.nii.gz"), reg.field)
    reg.field.array.shape                              # (nz, ny, nx, 3), mm

Replanning (see examples/adaptive_replan.py)::

    today = adaptive.propagate_structures(plan_structures, reg.field)   # onto the new CT
    inv, residual = adaptive.invert_field(reg.field, plan_ct.geometry)  # planning -> new
    acc = adaptive.DoseAccumulator(plan_ct.geometry)         # the inverse field's grid
    acc.add_warped(dose_today, inv, weight=1)
    r = adaptive.adapt(adaptive.AdaptInput(plan_ct, plan_structures, plan, 35, tpl, new_ct))
    r.rows, r.adapted.dose, r.accumulated_adapted
"""
from ._isoline.adaptive import (  # noqa: F401
    DisplacementField,
    RegistrationResult,
    RigidTransform,
    jacobian_determinant,
    read_field,
    read_points,
    register,
    synthetic_field,
    target_registration_errors,
    warp,
    write_field,
    AdaptInput,
    AdaptResult,
    AdaptTiming,
    ComparisonRow,
    DoseAccumulator,
    DoseEvaluation,
    FuseResult,
    StructureAgreement,
    adapt,
    align_plan,
    compare,
    dice,
    evaluate_dose,
    fuse_structures,
    invert_field,
    is_target,
    propagate_structures,
    recompute_dose,
    replan_available,
    warp_dose,
    write_adapt_report_html,
)

__all__ = [
    "DisplacementField",
    "RegistrationResult",
    "RigidTransform",
    "jacobian_determinant",
    "read_field",
    "read_points",
    "register",
    "synthetic_field",
    "target_registration_errors",
    "warp",
    "write_field",
    "AdaptInput",
    "AdaptResult",
    "AdaptTiming",
    "ComparisonRow",
    "DoseAccumulator",
    "DoseEvaluation",
    "FuseResult",
    "StructureAgreement",
    "adapt",
    "align_plan",
    "compare",
    "dice",
    "evaluate_dose",
    "fuse_structures",
    "invert_field",
    "is_target",
    "propagate_structures",
    "recompute_dose",
    "replan_available",
    "warp_dose",
    "write_adapt_report_html",
]
