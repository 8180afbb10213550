"""Geometry shared by every phantom view: the patient frame, pixel grids, and shapes.

Patient frame (millimetres), the DICOM LPS axes with a thorax-centred origin:

* ``x`` grows toward the patient's LEFT, ``y`` toward the patient's BACK (posterior),
  ``z`` toward the HEAD (superior);
* ``x = 0`` is the midline, ``y = 0`` the middle of the chest's depth, ``z = 0`` the top of the
  right hemidiaphragm.

Every anatomical structure and every finding is placed once in this frame; the frontal view
draws its ``(x, z)`` shadow, the lateral view its ``(y, z)`` shadow and the CT its voxels, so
the three always agree on where things are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FloatArray = np.ndarray


def soft_inside(sdf: FloatArray, width: float) -> FloatArray:
    """1 well inside a shape (``sdf < 0``), 0 outside, a linear ramp of ``width`` mm across the edge."""
    return np.clip(0.5 - sdf / width, 0.0, 1.0)


def smoothstep(t: FloatArray) -> FloatArray:
    """``3t^2 - 2t^3`` on ``[0, 1]``: a ramp without kinks."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], cells: int | tuple[int, ...]) -> FloatArray:
    """Smooth random texture in ``[0, 1]``: a coarse random lattice interpolated to ``shape``."""
    cells = (cells,) * len(shape) if isinstance(cells, int) else cells
    field = rng.random(tuple(c + 1 for c in cells))
    for axis, size in enumerate(shape):
        position = np.linspace(0.0, field.shape[axis] - 1.0, size)
        low = np.minimum(np.floor(position).astype(int), field.shape[axis] - 2)
        weight = smoothstep(position - low).reshape([-1 if a == axis else 1 for a in range(len(shape))])
        field = np.take(field, low, axis) * (1.0 - weight) + np.take(field, low + 1, axis) * weight
    return field.astype(np.float32)


def wrap(value: FloatArray, period: float) -> FloatArray:
    """``value`` modulo ``period`` in ``[0, period)`` (much faster than ``np.mod`` on floats)."""
    return value - period * np.floor(value / period)


@dataclass(frozen=True)
class PlaneGrid:
    """Patient coordinates (mm) of every pixel of a projection radiograph.

    ``u`` is the horizontal patient axis of the view (``x`` for a frontal view, ``y`` for a
    lateral one), ``z`` the vertical one. Pixel ``(row, col)`` sits at image-plane offset
    ``p = (col - (cols-1)/2) * spacing``, ``q = ((rows-1)/2 - row) * spacing`` from the image
    centre; the patient is rotated by ``angle`` and shifted so that the image centre is at
    ``center`` = ``(u, z)``.
    """

    shape: tuple[int, int]
    spacing: float
    center: tuple[float, float]
    angle: float
    u: FloatArray
    z: FloatArray

    @classmethod
    def build(cls, shape: tuple[int, int], spacing: float, center: tuple[float, float], angle: float) -> PlaneGrid:
        rows, cols = shape
        p = ((np.arange(cols, dtype=np.float32) - (cols - 1) / 2.0) * spacing)[None, :]
        q = (((rows - 1) / 2.0 - np.arange(rows, dtype=np.float32)) * spacing)[:, None]
        cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
        u = cos * p - sin * q + np.float32(center[0])
        z = sin * p + cos * q + np.float32(center[1])
        return cls(shape, spacing, center, angle, u.astype(np.float32), z.astype(np.float32))

    def to_pixel(self, u: float, z: float) -> tuple[float, float]:
        """``(row, col)`` (fractional) of the patient point ``(u, z)``."""
        du, dz = u - self.center[0], z - self.center[1]
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        p, q = cos * du + sin * dz, -sin * du + cos * dz
        rows, cols = self.shape
        return (rows - 1) / 2.0 - q / self.spacing, p / self.spacing + (cols - 1) / 2.0

    def window(self, u: np.ndarray, z: np.ndarray, margin: float) -> tuple[slice, slice]:
        """Rows and columns of the pixels within ``margin`` mm of the box around points ``(u, z)``."""
        corners_u = [np.min(u) - margin, np.max(u) + margin]
        corners_z = [np.min(z) - margin, np.max(z) + margin]
        rows, cols = zip(*(self.to_pixel(cu, cz) for cu in corners_u for cz in corners_z))
        r0, c0 = max(int(np.floor(min(rows))), 0), max(int(np.floor(min(cols))), 0)
        r1, c1 = min(int(np.ceil(max(rows))) + 1, self.shape[0]), min(int(np.ceil(max(cols))) + 1, self.shape[1])
        return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))

    def snap(self, u: float, z: float) -> tuple[float, float]:
        """The patient point of the pixel centre nearest to ``(u, z)``."""
        row, col = (round(v) for v in self.to_pixel(u, z))
        row = min(max(row, 0), self.shape[0] - 1)
        col = min(max(col, 0), self.shape[1] - 1)
        return float(self.u[row, col]), float(self.z[row, col])


@dataclass(frozen=True)
class VolumeGrid:
    """Patient coordinates (mm) of every voxel of a ``(rows, cols, slices)`` CT volume.

    Scanner geometry is a standard axial series: rows run anterior→posterior, columns the
    patient's right→left, slices inferior→superior, voxel ``(0, 0, 0)`` at ``origin`` (LPS).
    The patient lies rotated by ``angle`` about the scanner's z axis and shifted by ``shift``.
    ``x`` and ``y`` have shape ``(rows, cols, 1)``, ``z`` has shape ``(1, 1, slices)``.
    """

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    shift: tuple[float, float, float]
    angle: float
    x: FloatArray
    y: FloatArray
    z: FloatArray

    @classmethod
    def build(
        cls,
        shape: tuple[int, int, int],
        spacing: tuple[float, float, float],
        origin: tuple[float, float, float],
        shift: tuple[float, float, float],
        angle: float,
    ) -> VolumeGrid:
        rows, cols, slices = shape
        scan_y = (origin[1] + np.arange(rows, dtype=np.float32) * spacing[0])[:, None, None] - shift[1]
        scan_x = (origin[0] + np.arange(cols, dtype=np.float32) * spacing[1])[None, :, None] - shift[0]
        scan_z = (origin[2] + np.arange(slices, dtype=np.float32) * spacing[2])[None, None, :] - shift[2]
        cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
        x = cos * scan_x - sin * scan_y
        y = sin * scan_x + cos * scan_y
        return cls(
            shape, spacing, origin, shift, angle, x.astype(np.float32), y.astype(np.float32), scan_z.astype(np.float32)
        )

    def snap(self, x: float, y: float, z: float) -> tuple[float, float, float]:
        """The patient point of the voxel centre nearest to ``(x, y, z)``."""
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        scan_x = cos * x + sin * y + self.shift[0]
        scan_y = -sin * x + cos * y + self.shift[1]
        index = [
            round((scan_y - self.origin[1]) / self.spacing[0]),
            round((scan_x - self.origin[0]) / self.spacing[1]),
            round((z + self.shift[2] - self.origin[2]) / self.spacing[2]),
        ]
        i, j, k = (min(max(v, 0), n - 1) for v, n in zip(index, self.shape))
        return float(self.x[i, j, 0]), float(self.y[i, j, 0]), float(self.z[0, 0, k])


@dataclass(frozen=True)
class Ellipsoid:
    """An ellipsoid in the patient frame, tilted by ``tilt`` radians about the y axis.

    ``semi_axes`` are ``(a, b, c)`` along x, y, z before the tilt; a positive tilt turns the
    a-axis from +x toward +z. Because y stays a principal axis, the frontal shadow (along y)
    and the lateral shadow (along x) are ellipses, and chord lengths have closed forms.
    """

    center: tuple[float, float, float]
    semi_axes: tuple[float, float, float]
    tilt: float = 0.0

    def _frontal_uv(self, x: FloatArray, z: FloatArray) -> tuple[FloatArray, FloatArray]:
        a, _, c = self.semi_axes
        dx, dz = x - self.center[0], z - self.center[2]
        cos, sin = math.cos(self.tilt), math.sin(self.tilt)
        return (dx * cos + dz * sin) / a, (-dx * sin + dz * cos) / c

    def rho2(self, x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
        """Squared normalised radius: ``<= 1`` inside."""
        u, w = self._frontal_uv(x, z)
        v = (y - self.center[1]) / self.semi_axes[1]
        return u * u + v * v + w * w

    def frontal_rho2(self, x: FloatArray, z: FloatArray) -> FloatArray:
        """Squared normalised radius of the frontal (along-y) shadow: ``<= 1`` inside."""
        u, w = self._frontal_uv(x, z)
        return u * u + w * w

    def frontal_chord(self, x: FloatArray, z: FloatArray) -> FloatArray:
        """Length (mm) of the ray along y through the ellipsoid at ``(x, z)``."""
        return 2.0 * self.semi_axes[1] * np.sqrt(np.clip(1.0 - self.frontal_rho2(x, z), 0.0, None))

    @property
    def half_height(self) -> float:
        """Half of the ellipsoid's extent along z."""
        a, _, c = self.semi_axes
        return float(np.hypot(a * np.sin(self.tilt), c * np.cos(self.tilt)))

    @property
    def half_width(self) -> float:
        """Half of the ellipsoid's extent along x."""
        a, _, c = self.semi_axes
        return float(np.hypot(a * np.cos(self.tilt), c * np.sin(self.tilt)))

    def lateral_rho2(self, y: FloatArray, z: FloatArray) -> FloatArray:
        """Squared normalised radius of the lateral (along-x) shadow: ``<= 1`` inside."""
        v = (y - self.center[1]) / self.semi_axes[1]
        w = (z - self.center[2]) / self.half_height
        return v * v + w * w

    def lateral_chord(self, y: FloatArray, z: FloatArray) -> FloatArray:
        """Length (mm) of the ray along x through the ellipsoid at ``(y, z)``."""
        a, b, c = self.semi_axes
        cos, sin = math.cos(self.tilt), math.sin(self.tilt)
        xx = cos * cos / (a * a) + sin * sin / (c * c)  # quadratic-form coefficient of dx^2
        scale2 = 1.0 - ((y - self.center[1]) / b) ** 2  # the (x, z) section shrinks with |dy|
        dz = z - self.center[2]
        inside = xx * scale2 - dz * dz / (a * a * c * c)
        return 2.0 * np.sqrt(np.clip(inside, 0.0, None)) / xx

    def shadow_rho2(self, view: str, u: FloatArray, z: FloatArray) -> FloatArray:
        """:meth:`frontal_rho2` or :meth:`lateral_rho2`, by view name."""
        return self.frontal_rho2(u, z) if view == "frontal" else self.lateral_rho2(u, z)

    def chord(self, view: str, u: FloatArray, z: FloatArray) -> FloatArray:
        """:meth:`frontal_chord` or :meth:`lateral_chord`, by view name."""
        return self.frontal_chord(u, z) if view == "frontal" else self.lateral_chord(u, z)


def polyline_distance(points: np.ndarray, coords: tuple[FloatArray, ...]) -> FloatArray:
    """Distance (mm) from each position in ``coords`` to the polyline through ``points``.

    ``points`` has shape ``(n, d)``; ``coords`` holds ``d`` broadcastable coordinate arrays.
    """
    best = None
    for start, end in zip(points[:-1], points[1:]):
        segment = end - start
        length2 = float(segment @ segment) or 1e-9
        t = sum((c - s) * d for c, s, d in zip(coords, start, segment)) / length2
        t = np.clip(t, 0.0, 1.0)
        distance2 = sum((c - (s + t * d)) ** 2 for c, s, d in zip(coords, start, segment))
        best = distance2 if best is None else np.minimum(best, distance2)
    return np.sqrt(best)
