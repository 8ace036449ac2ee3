"""The main job (``isoline run``) on one CT: auto-contours -> achievable-dose plan -> RT-STRUCT,
RT-DOSE, plan JSON, dose, DVHs and an HTML report in one output directory (atomic).

Example::

    from isoline import contouring, pipeline, rtstruct
    r = pipeline.run_case("patient/CT", "out/patient", progress=print)  # template hn
    r.files                                  # ['RS.dcm', 'RD.dcm', 'plan.json', 'dose.nii.gz', ...]
    [c.passed for c in r.plan.criteria]      # the criteria table of the plan
    # many cases: isoline.batch.run_batch(cases, out, job="run")

    # auto-contours as the RT-STRUCT isoline contour writes (ApprovalStatus UNAPPROVED, the
    # model's version and the warnings in StructureSetDescription, quality in ROI descriptions)
    ct = rtstruct.read_ct_series("patient/CT")
    res = contouring.contour(ct.image)
    pipeline.write_auto_rtstruct(res, ct, "out/RS.dcm")
    pipeline.write_quality_json(res, "out/quality.json")
"""
from ._isoline.pipeline import RunResult, run_case, write_auto_rtstruct, write_quality_json  # noqa: F401

__all__ = ["RunResult", "run_case", "write_auto_rtstruct", "write_quality_json"]
