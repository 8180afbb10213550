"""The `Study`: what every reader returns, and what the rest of medvl consumes.

A study is one or more *views* (a radiograph's frontal and lateral projections, or one CT/MR
volume). Each view's pixels are a MONAI ``MetaTensor``:

* channel first, float32, intensities after the modality LUT (HU for CT);
* 2D: ``(1, rows, columns)``; 3D: ``(1, rows, columns, slices)``: the array is indexed as the
  scanner stored it, row 0 at the top of the displayed image, never transposed;
* ``affine`` (4x4, RAS as MONAI expects) maps voxel indices to patient millimetres.

Metadata is technical only (modality, body part, view position, sizes, spacing) plus a salted
hash of the StudyInstanceUID. A `Study` never carries a patient identifier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monai.data import MetaTensor

FRONTAL_POSITIONS = ("PA", "AP", "AP SUPINE", "FRONTAL")
LATERAL_POSITIONS = ("LL", "RL", "LAT", "LATERAL", "RLD", "LLD")
ROLE_ORDER = ("frontal", "lateral", "other")  # the order in which a model reads a study's views


def view_role(view_position: str | None) -> str:
    """``"frontal"``, ``"lateral"`` or ``"other"`` from a DICOM ViewPosition-like string."""
    position = (view_position or "").strip().upper()
    if position in FRONTAL_POSITIONS:
        return "frontal"
    if position in LATERAL_POSITIONS:
        return "lateral"
    return "other"


def role_rank(role: str) -> int:
    """Position of a view role in :data:`ROLE_ORDER` (frontal first)."""
    return ROLE_ORDER.index(role)


@dataclass(frozen=True)
class ViewInfo:
    """Technical, non-identifying facts about one view."""

    source_format: str  # "dicom", "dicom-series", "dicom-multiframe", "nifti", "png", "jpeg"
    spatial_dims: int  # 2 or 3
    size: tuple[int, ...]  # spatial shape, same order as the array
    spacing: tuple[float, ...]  # millimetres per voxel along each array axis
    modality: str | None = None  # DICOM Modality: "CR", "DX", "CT", "MR", ...
    body_part: str | None = None  # DICOM BodyPartExamined, upper case
    view_position: str | None = None  # DICOM ViewPosition: "PA", "AP", "LL", ...
    photometric: str | None = None  # DICOM PhotometricInterpretation after decoding
    window: tuple[float, float] | None = None  # (center, width) from the header, if any

    @property
    def role(self) -> str:
        """``"frontal"``, ``"lateral"`` or ``"other"``."""
        return view_role(self.view_position)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary of the fields above."""
        return {
            "source_format": self.source_format,
            "spatial_dims": self.spatial_dims,
            "size": list(self.size),
            "spacing": [round(float(s), 6) for s in self.spacing],
            "modality": self.modality,
            "body_part": self.body_part,
            "view_position": self.view_position,
            "role": self.role,
            "photometric": self.photometric,
            "window": None if self.window is None else list(self.window),
        }


@dataclass(frozen=True)
class View:
    """One image of a study: its pixels and technical facts."""

    image: MetaTensor
    info: ViewInfo


@dataclass(frozen=True)
class Study:
    """One or more views of one examination; no patient identifiers.

    ``source`` is the path the study was read from. It stays in this process (an export that
    must reference the original DICOM study re-reads its headers from there) and is never
    written to drafts, manifests of de-identified data, or logs.
    """

    views: tuple[View, ...]
    source: Path
    study_uid_hash: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def spatial_dims(self) -> int:
        """2 for radiographs and single slices, 3 for volumes."""
        return self.views[0].info.spatial_dims

    def ordered_views(self) -> list[View]:
        """The views in the order a model reads them: frontal, lateral, other (stable)."""
        return sorted(self.views, key=lambda view: role_rank(view.info.role))

    @property
    def modality(self) -> str | None:
        """The first view's modality, if known."""
        return self.views[0].info.modality

    def summary(self) -> dict[str, Any]:
        """A JSON-ready, identifier-free description (what ``medvl info`` prints)."""
        return {
            "study_uid_hash": self.study_uid_hash,
            "spatial_dims": self.spatial_dims,
            "views": [view.info.to_dict() for view in self.views],
        }
