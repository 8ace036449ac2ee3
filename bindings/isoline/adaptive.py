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
]
