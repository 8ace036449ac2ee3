"""Dose calculation: plans (JSON), CT calibration, collapsed-cone dose on CPU or CUDA, and the
beamlet influence matrix for fluence optimisation.

Example::

    from isoline import core, dose, phantoms
    p = phantoms.make_dose_phantom("water", size=(60, 60, 60), spacing=(5, 5, 5))
    plan = dose.parse_plan('{"machine": "generic_6mv", "beams": [{"gantry_deg": 0, "mu": 100,'
                           ' "isocenter_mm": [0, 0, 0], "jaws_mm": [-50, 50, -50, 50]}]}')
    d = dose.compute_dose(p.ct, plan, device="cpu", progress=print)   # float32 Gy on the CT grid
    "cuda" in dose.devices()                                            # GPU usable here?
    A = dose.compute_influence(p.ct, target_mask, plan).to_sparse_matrix()  # for planning.optimize_fluence
"""
from ._isoline.dose import (  # noqa: F401
    Beam,
    BeamletInfo,
    CalcOptions,
    FluenceMap,
    HuCalibration,
    InfluenceMatrix,
    Machine,
    Plan,
    compute_dose,
    compute_influence,
    devices,
    electron_density_from_ct,
    engine_cuda_available,
    find_machine,
    load_machine,
    mass_density_from_ct,
    parse_plan,
    read_plan,
)

__all__ = [
    "Beam",
    "BeamletInfo",
    "CalcOptions",
    "FluenceMap",
    "HuCalibration",
    "InfluenceMatrix",
    "Machine",
    "Plan",
    "compute_dose",
    "compute_influence",
    "devices",
    "electron_density_from_ct",
    "engine_cuda_available",
    "find_machine",
    "load_machine",
    "mass_density_from_ct",
    "parse_plan",
    "read_plan",
]
