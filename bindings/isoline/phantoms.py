"""Generated CT cases with exact ground truth (head-and-neck patient, dose phantoms).

Example::

    from isoline import phantoms
    p = phantoms.make_head_neck(seed=3, size=(96, 96, 40), spacing=(3.0, 3.0, 5.0))
    p.ct.array.shape                    # (40, 96, 96) int16 HU
    p.structures["PTV70"].volume_cc
    phantoms.write_phantom(p, "/tmp/hn3")   # ct.nii.gz, masks/, dicom/, ground_truth.json
    water = phantoms.make_dose_phantom("water", size=(60, 60, 60), spacing=(5, 5, 5))
"""
from ._isoline.phantoms import (  # noqa: F401
    PatientPosition,
    Phantom,
    dicom_output_available,
    head_neck_sites,
    make_dose_phantom,
    make_grid,
    make_head_neck,
    tissue_hu,
    tissue_name,
    write_phantom,
    write_preview_png,
)

__all__ = [
    "PatientPosition",
    "Phantom",
    "dicom_output_available",
    "head_neck_sites",
    "make_dose_phantom",
    "make_grid",
    "make_head_neck",
    "tissue_hu",
    "tissue_name",
    "write_phantom",
    "write_preview_png",
]
