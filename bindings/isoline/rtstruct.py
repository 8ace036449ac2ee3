"""DICOM RT: CT series, RT Structure Set and RT Dose, reading and writing.

Every writer is atomic (temporary name, then rename). Geometry is DICOM LPS in mm.

Example::

    from isoline import phantoms, rtstruct
    p = phantoms.make_head_neck(3, size=(96, 96, 40), spacing=(3, 3, 5))
    ct = rtstruct.write_ct_series(p.ct, "/tmp/case/ct")           # CtSeries with UIDs
    rtstruct.write_rtstruct(p.structures, ct, "/tmp/case/RS.dcm")
    rs = rtstruct.read_rtstruct("/tmp/case/RS.dcm")
    masks = rtstruct.rasterize(rs, ct.image.geometry)             # StructureSet on the CT grid
    back = rtstruct.read_ct_series("/tmp/case/ct")                # int16 HU Image in back.image
"""
from ._isoline.rtstruct import (  # noqa: F401
    Contour,
    CtSeries,
    PatientStudy,
    Roi,
    RtDose,
    RtDoseWriteResult,
    RtStructData,
    RtStructWriteResult,
    SeriesSummary,
    SliceRef,
    contour_grid,
    contour_volume_cc,
    dicom_modality,
    generate_uid,
    list_series,
    plan_reference_for,
    rasterize,
    read_ct_series,
    read_rtdose,
    read_rtstruct,
    read_sop_instance_uid,
    write_ct_series,
    write_rtdose,
    write_rtstruct,
)

__all__ = [
    "Contour",
    "CtSeries",
    "PatientStudy",
    "Roi",
    "RtDose",
    "RtDoseWriteResult",
    "RtStructData",
    "RtStructWriteResult",
    "SeriesSummary",
    "SliceRef",
    "contour_grid",
    "contour_volume_cc",
    "dicom_modality",
    "generate_uid",
    "list_series",
    "plan_reference_for",
    "rasterize",
    "read_ct_series",
    "read_rtdose",
    "read_rtstruct",
    "read_sop_instance_uid",
    "write_ct_series",
    "write_rtdose",
    "write_rtstruct",
]
