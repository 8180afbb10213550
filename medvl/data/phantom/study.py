"""What the phantom generators return: views with images and exact masks, and their seeds."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medvl.errors import ConfigError
from medvl.findings import Finding

# Independent random streams of one study: adding a finding never changes the anatomy or noise.
ANATOMY_STREAM, NOISE_STREAM, FINDING_STREAM, TEXTURE_STREAM, REPORT_STREAM = range(5)

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def resolve_seed(seed: int | np.random.Generator) -> int:
    """An integer seed; a ``Generator`` gives one draw."""
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**63 - 1))
    if isinstance(seed, (bool, float)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"a phantom seed must be a non-negative integer or a numpy Generator, got {seed!r}")
    return int(seed)


def stream(seed: int, *key: int) -> np.random.Generator:
    """The random stream ``key`` of study ``seed``; the same key always gives the same numbers."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


@dataclass(frozen=True)
class PhantomView:
    """One phantom image with a boolean mask per finding (in the study's finding order).

    ``image`` is float32: brightness in ``[0, 1]`` for radiographs (higher = denser), Hounsfield
    units for CT. Arrays are ``(rows, cols)`` or ``(rows, cols, slices)``, indexed like the
    written files. ``anatomy`` holds masks of normal structures ("body", "lungs", "heart").
    """

    name: str  # "frontal", "lateral" or "ct"
    image: np.ndarray
    spacing: tuple[float, ...]  # mm per pixel/voxel along each array axis
    masks: tuple[np.ndarray, ...]
    anatomy: dict[str, np.ndarray] = field(default_factory=dict)
    view_position: str | None = None  # DICOM ViewPosition: "PA", "LL"; None for CT
    origin: tuple[float, float, float] | None = None  # CT: LPS position of voxel (0, 0, 0)

    @property
    def spatial_dims(self) -> int:
        return self.image.ndim

    @property
    def affine_lps(self) -> np.ndarray:
        """Voxel index ``(row, col, slice)`` → LPS mm, as DICOM and MONAI's reader build it.

        Rows run posterior (+y), columns to the patient's left (+x), slices superior (+z):
        ImageOrientationPatient ``(1, 0, 0, 0, 1, 0)`` with slices stored inferior→superior.
        """
        if self.origin is None:
            raise ConfigError(f"the {self.name} view is a projection radiograph and has no 3D affine")
        row_spacing, col_spacing, slice_spacing = self.spacing
        affine = np.zeros((4, 4))
        affine[1, 0] = row_spacing
        affine[0, 1] = col_spacing
        affine[2, 2] = slice_spacing
        affine[:3, 3] = self.origin
        affine[3, 3] = 1.0
        return affine

    @property
    def affine_ras(self) -> np.ndarray:
        """:attr:`affine_lps` with its first two rows negated (what NIfTI and MONAI use)."""
        return LPS_TO_RAS @ self.affine_lps


@dataclass(frozen=True)
class PhantomStudy:
    """A seeded phantom study: its findings and one :class:`PhantomView` per image."""

    findings: tuple[Finding, ...]
    views: tuple[PhantomView, ...]
    seed: int

    @property
    def spatial_dims(self) -> int:
        return self.views[0].spatial_dims

    def view(self, name: str) -> PhantomView:
        """The view called ``name`` ("frontal", "lateral", "ct")."""
        for view in self.views:
            if view.name == name:
                return view
        raise ConfigError(f"this phantom study has no '{name}' view (views: {', '.join(v.name for v in self.views)})")
