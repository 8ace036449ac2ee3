"""Loading a patient: a DICOM directory (CT series, RT-STRUCT, RT-DOSE) or NIfTI/NRRD files
(a CT image plus a directory of masks) -> one CT image and one StructureSet on its grid.

Example::

    import isoline
    pt = isoline.load_patient("../shared/data/openkbp/train/pt_1")   # ct.nii.gz + masks beside it
    pt.ct, pt.structures.names(), pt.dose
    pt = isoline.load_patient("case/dicom")                           # CT series + RS.dcm (+ RD.dcm)
    pt.series.series_instance_uid                                     # for writing RT-STRUCT/RT-DOSE
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Union

from ._isoline import InvalidInput, IoError
from ._isoline.core import Image, StructureSet, not_mask_names, read_image, read_mask_dir
from ._isoline.rtstruct import (CtSeries, dicom_modality, rasterize, read_ct_series, read_rtdose,
                                read_rtstruct)

PathLike = Union[str, "os.PathLike[str]"]

_IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
#: File stems beside a NIfTI CT that are not structure masks.
NOT_MASKS = frozenset(not_mask_names())  # the C++ read_mask_dir's list


@dataclass
class Patient:
    """A loaded case. ``series`` is set for DICOM input (what RT-STRUCT/RT-DOSE writing needs);
    ``dose`` (float32 Gy, its own grid) when an RT-DOSE or dose.nii.gz was found."""

    ct: Image
    structures: StructureSet
    source: str
    series: Optional[CtSeries] = None
    dose: Optional[Image] = None
    files: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)


def _stem(p: Path) -> str:
    name = p.name
    for s in _IMAGE_SUFFIXES:
        if name.lower().endswith(s):
            return name[: -len(s)]
    return p.stem


def _is_image(p: Path) -> bool:
    return p.is_file() and p.name.lower().endswith(_IMAGE_SUFFIXES)


def _warn_missing(pt: Patient, requested: Sequence[str], available: Sequence[str], where: str,
                  why_not_loaded: str = "") -> None:
    """One warning per requested structure name that was not loaded, with the likely intended
    name when one differs only in case or surrounding spaces, or is close."""
    loaded = set(pt.structures.names())
    for name in requested:
        if name in loaded:
            continue
        if name in available:  # present but not loaded (e.g. an RT-STRUCT ROI without contours)
            pt.warnings.append(f"structure {name!r}: requested, in {where} but not loaded{why_not_loaded}")
            continue
        key = name.strip().casefold()
        near = [a for a in available if a.strip().casefold() == key] or \
            difflib.get_close_matches(name, list(available), n=1, cutoff=0.8)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        pt.warnings.append(f"structure {name!r}: requested but not found in {where}{hint}")


def _from_image(ct_file: Path, masks: Optional[PathLike], names: Sequence[str]) -> Patient:
    ct = read_image(str(ct_file))
    if ct.dtype == "uint8":
        raise InvalidInput(f"load patient: {ct_file}: uint8 image (a mask?), expected a CT in HU")
    mask_dir = Path(masks) if masks is not None else (
        ct_file.parent / "masks" if (ct_file.parent / "masks").is_dir() else ct_file.parent)
    if not mask_dir.is_dir():
        raise IoError(f"load patient: {mask_dir}: mask directory does not exist")
    wanted = list(names) or sorted(_stem(p) for p in mask_dir.iterdir()
                                   if _is_image(p) and p != ct_file and _stem(p).lower() not in NOT_MASKS)
    structures = read_mask_dir(str(mask_dir), wanted) if wanted else StructureSet(ct.geometry)
    pt = Patient(ct=ct, structures=structures, source=str(ct_file), files=[str(ct_file)])
    for d in (ct_file.parent / "dose.nii.gz", ct_file.parent / "dose.nrrd"):
        if d.is_file():
            pt.dose = read_image(str(d), "float32")
            pt.files.append(str(d))
            break
    for s in structures:
        if not s.mask.geometry.same_grid(ct.geometry):
            pt.warnings.append(f"{s.name}: mask is not on the CT grid")
    if names:
        available = sorted(_stem(p) for p in mask_dir.iterdir() if _is_image(p) and p != ct_file)
        _warn_missing(pt, names, available, str(mask_dir), " (read_mask_dir reads .nii.gz, .nii, .nrrd, .mha)")
    return pt


def _from_dicom(root: Path, names: Sequence[str], series_uid: str,
                progress: Optional[Callable[[str, float, str], None]]) -> Patient:
    series = read_ct_series(str(root), series_instance_uid=series_uid, progress=progress)
    rtstructs, rtdoses = [], []
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    ct_files = {s.file for s in series.slices}
    for f in files:
        if str(f) in ct_files:
            continue
        mod = dicom_modality(str(f))
        if mod == "RTSTRUCT":
            rtstructs.append(f)
        elif mod == "RTDOSE":
            rtdoses.append(f)
    pt = Patient(ct=series.image, structures=StructureSet(series.image.geometry), source=str(root),
                 series=series, warnings=[])
    # The structure set that references this CT series (else the only one).
    chosen, chosen_file = None, ""
    ct_frame = series.frame_of_reference_uid

    def other_frame(obj) -> bool:  # another scan's (or patient's) coordinates
        return bool(obj.frame_of_reference_uid and ct_frame and obj.frame_of_reference_uid != ct_frame)

    for f in rtstructs:
        rs = read_rtstruct(str(f))
        if rs.referenced_series_instance_uid == series.series_instance_uid or len(rtstructs) == 1:
            if other_frame(rs):
                pt.warnings.append(f"{f}: frame of reference differs from the CT's (another scan or patient): "
                                   f"structures not loaded")
                continue
            chosen, chosen_file = rs, str(f)
            pt.files.append(str(f))
            break
    if rtstructs and chosen is None and not any("frame of reference differs" in w for w in pt.warnings):
        pt.warnings.append(f"{len(rtstructs)} RT-STRUCT file(s) found but none references the CT series")
    if chosen is not None:
        pt.warnings.extend(chosen.warnings)
        pt.structures = rasterize(chosen, series.image.geometry, names=list(names))
    if names:
        where = chosen_file if chosen is not None else "the DICOM folder (no RT-STRUCT loaded)"
        _warn_missing(pt, names, [r.name for r in chosen.rois] if chosen is not None else [], where,
                      " (no closed contours)")
    if rtdoses:
        rd = read_rtdose(str(rtdoses[0]))
        if other_frame(rd):
            pt.warnings.append(f"{rtdoses[0]}: frame of reference differs from the CT's (another scan or patient): "
                               f"dose not loaded")
        else:
            pt.dose = rd.dose
            pt.files.append(str(rtdoses[0]))
        if len(rtdoses) > 1:
            pt.warnings.append(f"{len(rtdoses)} RT-DOSE files found; loaded {rtdoses[0]}")
    # The RT-STRUCT and RT-DOSE loaded here are not "skipped" objects of the CT folder.
    for f in pt.files:
        series.mark_used(f)
    pt.warnings[:0] = list(series.warnings)
    return pt


def load_patient(path: PathLike, *, masks: Optional[PathLike] = None, structures: Sequence[str] = (),
                 series_instance_uid: str = "",
                 progress: Optional[Callable[[str, float, str], None]] = None) -> Patient:
    """Loads a CT and its structures.

    ``path`` is one of
      - a NIfTI/NRRD/MetaImage CT file: masks are the image files in ``masks`` (default: a
        ``masks/`` directory beside the CT, else the CT's own directory, e.g. OpenKBP);
      - a directory holding ``ct.nii.gz`` (likewise; e.g. a phantom written by
        ``phantoms.write_phantom``);
      - a DICOM directory (or one DICOM file of the series): the CT series, the RT-STRUCT
        that references it (rasterized onto the CT grid) and an RT-DOSE if present.

    ``structures`` restricts the structures loaded (names match exactly, case and spaces
    included); each requested name that is not found is skipped and named in
    ``Patient.warnings`` (with the likely intended name when one is close). Raises
    isoline.IoError (an OSError) for missing or unreadable files and isoline.InvalidInput (a
    ValueError) for unusable input.
    """
    if isinstance(structures, (str, os.PathLike)):  # one name, not its letters
        structures = [os.fspath(structures)]
    p = Path(path)
    if not p.exists():
        raise IoError(f"load patient: {p}: does not exist")
    if p.is_file():
        if p.name.lower().endswith(_IMAGE_SUFFIXES):
            return _from_image(p, masks, structures)
        if dicom_modality(str(p)):
            return _from_dicom(p.parent, structures, series_instance_uid, progress)
        raise InvalidInput(f"load patient: {p}: neither an image file (NIfTI, NRRD, MetaImage) nor DICOM")
    for name in ("ct.nii.gz", "ct.nii", "ct.nrrd", "ct.mha"):
        if (p / name).is_file():
            return _from_image(p / name, masks, structures)
    if (p / "dicom").is_dir() and not any(dicom_modality(str(f)) for f in p.iterdir() if f.is_file()):
        return _from_dicom(p / "dicom", structures, series_instance_uid, progress)
    return _from_dicom(p, structures, series_instance_uid, progress)


__all__ = ["Patient", "load_patient", "NOT_MASKS"]
