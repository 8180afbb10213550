"""The surfaces findings draw on: one for a projection radiograph, one for a CT volume.

A radiograph is composed from densities (water-equivalent thickness, about 1 for the trunk):

``density = base - AIR_DENSITY * lung_air * (1 - fill) + markings * (1 - max(fill, clear)) + extra``

so a finding can *fill* lung air (effusion, consolidation: 0..1, combined by maximum), *clear*
lung markings (pneumothorax), or add *extra* density (nodules, devices; negative for air).
Each of these changes the image only where the finding put it, which is what makes masks exact.
A CT canvas is simply the Hounsfield-unit volume, painted in place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medvl.data.phantom.anatomy import LUNG_SIDES, Thorax
from medvl.data.phantom.geometry import FloatArray, PlaneGrid, VolumeGrid

AIR_DENSITY = 0.7  # density a ray loses crossing the full depth of aerated lung


@dataclass
class RadiographCanvas:
    """Layers of one projection view (``view`` is "frontal" or "lateral")."""

    view: str
    grid: PlaneGrid
    thorax: Thorax
    lung_sdf: dict[str, FloatArray]
    fill: FloatArray
    clear: FloatArray
    extra: FloatArray

    @classmethod
    def empty(cls, view: str, grid: PlaneGrid, thorax: Thorax, lung_sdf: dict[str, FloatArray]) -> RadiographCanvas:
        zeros = lambda: np.zeros(grid.shape, dtype=np.float32)
        return cls(view, grid, thorax, lung_sdf, zeros(), zeros(), zeros())

    @property
    def u(self) -> FloatArray:
        """Horizontal patient coordinate: x (frontal) or y (lateral)."""
        return self.grid.u

    @property
    def z(self) -> FloatArray:
        return self.grid.z

    def lung_mask(self, sides: tuple[str, ...] = LUNG_SIDES) -> np.ndarray:
        return np.logical_or.reduce([self.lung_sdf[side] < 0 for side in sides])

    def add_fill(self, amount: FloatArray) -> None:
        np.maximum(self.fill, amount, out=self.fill)

    def add_clear(self, amount: FloatArray) -> None:
        np.maximum(self.clear, amount, out=self.clear)

    def add_extra(self, amount: FloatArray) -> None:
        self.extra += amount


@dataclass
class CTCanvas:
    """A CT volume in HU with its patient-frame grid and 3D lung distances."""

    grid: VolumeGrid
    thorax: Thorax
    hu: FloatArray
    lung_sdf: dict[str, FloatArray]

    @property
    def x(self) -> FloatArray:
        return self.grid.x

    @property
    def y(self) -> FloatArray:
        return self.grid.y

    @property
    def z(self) -> FloatArray:
        return self.grid.z

    def lung_mask(self, sides: tuple[str, ...] = LUNG_SIDES) -> np.ndarray:
        return np.logical_or.reduce([self.lung_sdf[side] < 0 for side in sides])

    def paint(self, mask: np.ndarray, hu: float | FloatArray, weight: float | FloatArray = 1.0) -> None:
        """Blend ``hu`` into the voxels of ``mask`` (``weight`` 1 replaces them)."""
        target = np.broadcast_to(hu, self.hu.shape)[mask] if np.ndim(hu) else hu
        w = np.broadcast_to(weight, self.hu.shape)[mask] if np.ndim(weight) else weight
        self.hu[mask] = (1.0 - w) * self.hu[mask] + w * target
