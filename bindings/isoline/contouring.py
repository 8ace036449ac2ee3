"""Automatic contouring of head-and-neck organs at risk and targets, the Body contour, and
contour agreement metrics (Dice, HD95, surface Dice).

Example::

    from isoline import contouring, phantoms, rtstruct
    p = phantoms.make_head_neck(3, size=(96, 96, 40), spacing=(3, 3, 5))
    res = contouring.contour(p.ct, structures=["Brainstem", "SpinalCord", "Body"],
                             progress=lambda stage, f, detail: print(f"{f:.0%} {detail}"))
    res.structures["Brainstem"].volume_cc
    for q in res.quality:
        print(q.name, q.confidence, q.flags)
    contouring.compare_masks(res.structures["SpinalCord"].mask, p.structures["SpinalCord"].mask).dice
    contouring.write_review(p.ct, res, html="review.html", png="review.png", info={"Case": "phantom 3"})

    # Many CTs with one model: load the network and check the card once, then call.
    contour = contouring.Contourer(structures=["Brainstem", "Body"])
    for ct in cts:
        contour(ct)
"""
from __future__ import annotations

import os
from typing import Callable, List, Optional, Sequence

from ._isoline import InvalidInput
from ._isoline.contouring import (  # noqa: F401
    ContourResult,
    EvalRow,
    EvalResult,
    EvalSummary,
    ExpectedRange,
    MaskAgreement,
    Model,
    ModelCard,
    StructureQuality,
    body_mask,
    compare_masks,
    contour,
    default_model_card_path,
    dice_plot_svg,
    evaluate_contours,
    evaluate_dirs,
    flag_references,
    load_model_card,
    reference_flag,
    summarize,
)
from ._isoline.contouring import _write_review
from ._isoline.core import Image

ProgressCallback = Callable[[str, float, str], None]


class Contourer:
    """A contouring model bound to its options, for contouring many CTs.

    The model card is read and checked and the TorchScript network is loaded once, into a
    C++ :class:`Model` (unknown structure names fail here, not on the first case); calling
    the object contours one CT with that loaded network. ``isoline.batch`` keeps one
    Contourer per Dask worker process, so the extension, LibTorch, the card and the network
    stay loaded between cases.
    """

    model_card_path: str
    model: Model
    card: ModelCard
    structures: List[str]
    device: str
    batch: int
    calls: int

    def __init__(self, model_card: Optional[str] = None, *, structures: Sequence[str] = (),
                 device: str = "cpu", batch: int = 16) -> None:
        self.model_card_path = os.fspath(model_card) if model_card else default_model_card_path()
        self.model = Model(self.model_card_path, device)
        self.card: ModelCard = self.model.card
        known = set(self.card.structures) | {"Body", "External", "BODY"}
        unknown = [s for s in structures if s not in known]
        if unknown:
            raise InvalidInput(f"contour: {', '.join(unknown)}: unknown structure; the model provides: "
                               f"{' '.join(self.card.structures)} Body")
        self.structures = list(structures)
        self.device = device
        self.batch = batch
        self.calls = 0

    def __call__(self, ct: Image, progress: Optional[ProgressCallback] = None) -> ContourResult:
        self.calls += 1
        return contour(ct, structures=self.structures, batch=self.batch, model=self.model, progress=progress)

    def __repr__(self) -> str:
        return (f"Contourer(model={self.card.name!r} {self.card.version!r}, device={self.device!r}, "
                f"structures={self.structures or 'all'})")


def write_review(ct: Image, result: ContourResult, html: Optional[os.PathLike | str] = None,
                 png: Optional[os.PathLike | str] = None, title: str = "Auto-contours",
                 info: Optional[dict | Sequence[tuple]] = None) -> None:
    """A first look at auto-contours, as ``isoline contour --report/--preview``: ``html`` a
    self-contained page (axial, coronal and sagittal views through the highest target with
    every outline, the structures with their quality flags, the warnings), ``png`` the same
    views with the legend as one picture (a thumbnail per case in a batch). ``info``: extra
    rows (dict or pairs) shown at the top. Each file is written atomically; at least one is
    required."""
    if html is None and png is None:
        raise InvalidInput("write review: no output: give html=, png= or both")
    rows = list(info.items()) if isinstance(info, dict) else list(info or [])
    _write_review(ct, result, os.fspath(html) if html is not None else "",
                  os.fspath(png) if png is not None else "", title, [(str(k), str(v)) for k, v in rows])


__all__ = [
    "ContourResult",
    "Contourer",
    "EvalRow",
    "EvalResult",
    "EvalSummary",
    "ExpectedRange",
    "MaskAgreement",
    "Model",
    "ModelCard",
    "StructureQuality",
    "body_mask",
    "compare_masks",
    "contour",
    "default_model_card_path",
    "dice_plot_svg",
    "evaluate_contours",
    "evaluate_dirs",
    "flag_references",
    "load_model_card",
    "reference_flag",
    "summarize",
    "write_review",
]
