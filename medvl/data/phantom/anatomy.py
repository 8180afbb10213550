"""The chest of one phantom patient: sampled sizes and the shapes built from them.

:class:`Thorax` holds a handful of measurements in millimetres (drawn per study by
:func:`sample_thorax`) and answers geometric questions in the patient frame of
:mod:`medvl.data.phantom.geometry`: where each lung is in the frontal shadow, the lateral shadow
and in 3D (as signed distances, negative inside), where the diaphragm, the heart and the hila
are, and which heights make up each lung zone. The renderers and the findings ask it; none of
them invents anatomy of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, reduce

import numpy as np

from medvl.data.phantom.geometry import Ellipsoid, FloatArray

LUNG_SIDES = ("right", "left")
ZONE_ORDER = ("lower", "middle", "upper")  # bottom to top

NORMAL_CTR = (0.40, 0.48)  # cardiothoracic ratio range of a normal heart
ENLARGED_CTR = (0.58, 0.68)  # ... and of cardiomegaly

_DOME_PEAK = 0.45  # hemidiaphragm peaks at this fraction of the half-width from the midline
_DOME_PEAK_AP = -0.1  # ... and slightly anterior of the chest's middle
_TAPER_START = 0.3  # the rib cage narrows toward the apex above this fraction of the lung height
_TAPER_END = 15.0  # ... and would close this far above the apex
_APEX_PEAK = 0.5  # each lung's apex peaks at this fraction of the half-width from the midline
_APEX_CURVE = 140.0  # mm the apex drops from its peak to the lateral wall, over a half-width


def side_sign(side: str) -> float:
    """+1 for the patient's left (positive x), -1 for the right."""
    return 1.0 if side == "left" else -1.0


def sides_of(side: str) -> tuple[str, ...]:
    """The lungs a finding's side covers: ``"bilateral"`` is both."""
    return LUNG_SIDES if side == "bilateral" else (side,)


@dataclass(frozen=True)
class Thorax:
    """One patient's chest, in millimetres (see the module docstring for the frame)."""

    half_width: float  # inner rib cage at its widest
    half_depth: float  # inner rib cage, front to back
    wall: float  # chest wall soft tissue
    lung_height: float  # apex above the right dome (z of the apex)
    left_dome_drop: float  # left hemidiaphragm below the right
    lateral_sulcus: float  # lateral costophrenic angle below its dome
    posterior_sulcus: float  # posterior costophrenic sulcus below its dome
    mediastinum: float  # half-width of the mediastinum above the heart
    aortic_knob: float  # bulge of the aortic arch into the left lung
    carina_z: float
    heart_ctr: float  # cardiothoracic ratio: heart width over inner thoracic width
    heart_right_fraction: float  # share of the heart's width right of the midline
    heart_tilt: float  # radians; its long axis descends toward the patient's left
    heart_aspect: float  # short over long axis in the frontal plane
    heart_depth: float  # front-to-back semi-axis, as a fraction of the chest's half-depth
    rib_period: float  # vertical spacing of posterior ribs
    rib_phase: float
    rib_slope: float  # mm a rib descends per radian around the chest
    rib_width: float
    clavicle_z: float
    spine_half_width: float
    neck_half_width: float
    gastric_bubble: float  # radius, 0 when absent

    # --- sizes derived from the measurements ------------------------------------------------
    @property
    def body_half_width(self) -> float:
        return self.half_width + self.wall

    @property
    def body_half_depth(self) -> float:
        return self.half_depth + 0.8 * self.wall

    @property
    def spine_y(self) -> float:
        """Centre of the vertebral bodies (posterior)."""
        return 0.78 * self.half_depth

    @property
    def trachea_y(self) -> float:
        return -0.08 * self.half_depth

    @cached_property
    def heart(self) -> Ellipsoid:
        """The heart: an ellipsoid whose frontal shadow is ``heart_ctr`` of the thoracic width,
        sitting on the left hemidiaphragm with its widest point above the dome."""
        half_width = self.heart_ctr * self.half_width
        tilt, aspect = self.heart_tilt, self.heart_aspect
        a = half_width / np.hypot(np.cos(tilt), aspect * np.sin(tilt))
        c = aspect * a
        b = min(self.heart_depth * self.half_depth * self.heart_ctr / 0.44, 0.72 * self.half_depth)
        x = half_width * (1.0 - 2.0 * self.heart_right_fraction)
        y = -self.half_depth + b + 0.06 * self.half_depth  # just behind the sternum
        half_height = float(np.hypot(a * np.sin(tilt), c * np.cos(tilt)))
        drop_of_widest = -(a * a - c * c) * np.sin(tilt) * np.cos(tilt) / half_width
        dome_there = float(self.diaphragm_frontal(x + half_width, "left"))
        z = max(self.dome_z("left") + 0.3 * half_height, dome_there + 6.0 + drop_of_widest)
        return Ellipsoid((float(x), float(y), float(z)), (float(a), float(b), float(c)), float(tilt))

    @property
    def cardiothoracic_ratio(self) -> float:
        """Heart width over inner thoracic width, as a radiologist measures it."""
        return self.heart.half_width / self.half_width

    def dome_z(self, side: str) -> float:
        """Height of the top of a hemidiaphragm (the right one is higher)."""
        return 0.0 if side == "right" else -self.left_dome_drop

    def hilum(self, side: str) -> tuple[float, float, float]:
        return side_sign(side) * (self.mediastinum + 24.0), 0.05 * self.half_depth, self.carina_z - 25.0

    def zone_range(self, side: str, zone: str) -> tuple[float, float]:
        """``(low, high)`` heights of a lung zone: thirds between the dome and the apex."""
        low = self.dome_z(side)
        third = (self.lung_height - low) / 3.0
        index = ZONE_ORDER.index(zone)
        return low + index * third, low + (index + 1) * third

    # --- lung outline pieces -----------------------------------------------------------------
    def taper(self, z: FloatArray) -> FloatArray:
        """Lung width at height ``z`` as a fraction of the widest: 1 below, 0 at the apex."""
        start = _TAPER_START * self.lung_height
        t = (np.asarray(z) - start) / (self.lung_height + _TAPER_END - start)
        return np.sqrt(np.clip(1.0 - np.clip(t, 0.0, None) ** 2, 0.0, 1.0))

    def lateral_wall(self, z: FloatArray) -> FloatArray:
        """Distance from the midline to the inner chest wall at height ``z``."""
        return self.half_width * self.taper(z)

    def apex_z(self, xs: FloatArray) -> FloatArray:
        """Top of a lung ``xs`` mm from the midline: a dome peaking midway across the lung."""
        return self.lung_height - _APEX_CURVE * (np.asarray(xs) / self.half_width - _APEX_PEAK) ** 2

    def medial_wall(self, z: FloatArray, side: str) -> FloatArray:
        """Distance from the midline to a lung's mediastinal border (aortic knob on the left)."""
        if side == "right":
            return np.full_like(np.asarray(z, dtype=np.float32), self.mediastinum)
        offset = (np.asarray(z) - (self.carina_z + 22.0)) / 30.0
        knob = self.aortic_knob * np.clip(1.0 - offset * offset, 0.0, None) ** 2
        return self.mediastinum + knob

    def _dome_drop_lr(self, xs: FloatArray) -> FloatArray:
        return self.lateral_sulcus / (1.0 - _DOME_PEAK) ** 2 * (np.asarray(xs) / self.half_width - _DOME_PEAK) ** 2

    def _dome_drop_ap(self, y: FloatArray) -> FloatArray:
        return (
            self.posterior_sulcus / (1.0 - _DOME_PEAK_AP) ** 2 * (np.asarray(y) / self.half_depth - _DOME_PEAK_AP) ** 2
        )

    def diaphragm_frontal(self, xs: FloatArray, side: str) -> FloatArray:
        """Top of a hemidiaphragm seen on a frontal view, ``xs`` mm from the midline."""
        return self.dome_z(side) - self._dome_drop_lr(xs)

    def diaphragm_lateral(self, y: FloatArray, side: str) -> FloatArray:
        """Top of a hemidiaphragm seen on a lateral view: deepest in the posterior sulcus."""
        return self.dome_z(side) - self._dome_drop_ap(y)

    def diaphragm_3d(self, xs: FloatArray, y: FloatArray, side: str) -> FloatArray:
        """Surface of a hemidiaphragm (its frontal and lateral views are the two above)."""
        return self.dome_z(side) - self._dome_drop_lr(xs) - self._dome_drop_ap(y)

    # --- signed distances (mm, negative inside) ---------------------------------------------
    def heart_sdf_frontal(self, x: FloatArray, z: FloatArray) -> FloatArray:
        return (np.sqrt(self.heart.frontal_rho2(x, z)) - 1.0) * self.heart.semi_axes[2]

    def heart_sdf_3d(self, x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
        return (np.sqrt(self.heart.rho2(x, y, z)) - 1.0) * self.heart.semi_axes[2]

    def heart_shadow(self, view: str, u: FloatArray, z: FloatArray) -> np.ndarray:
        """The visible heart on a frontal or lateral view: above the diaphragm, below it hides."""
        if view == "frontal":
            dome = np.where(u < 0, self.diaphragm_frontal(-u, "right"), self.diaphragm_frontal(u, "left"))
            return (self.heart_sdf_frontal(u, z) < 0) & (z > dome)
        return (self.heart.lateral_rho2(u, z) <= 1.0) & (z > self.diaphragm_lateral(u, "left"))

    def trachea_y_at(self, z: FloatArray) -> FloatArray:
        """Front-back position of the trachea: it runs slightly backward as it descends."""
        return self.trachea_y - 0.12 * (np.asarray(z) - self.carina_z)

    def lung_sdf_frontal(
        self, x: FloatArray, z: FloatArray, side: str, heart_sdf: FloatArray | None = None
    ) -> FloatArray:
        """A lung as seen on a frontal view: inside the ribs, off the mediastinum and heart, above
        the dome. ``heart_sdf``, if given, is :meth:`heart_sdf_frontal` already computed."""
        xs = side_sign(side) * x
        heart_sdf = self.heart_sdf_frontal(x, z) if heart_sdf is None else heart_sdf
        return reduce(
            np.maximum,
            [
                xs - self.lateral_wall(z),
                self.medial_wall(z, side) - xs,
                self.diaphragm_frontal(xs, side) - z,
                z - self.apex_z(xs),
                -heart_sdf,
            ],
        )

    def lung_sdf_lateral(self, y: FloatArray, z: FloatArray, side: str) -> FloatArray:
        """A lung as seen on a lateral view (both lungs superimpose; each has its own dome)."""
        pieces = [
            np.abs(y) - self.half_depth * self.taper(z),
            self.diaphragm_lateral(y, side) - z,
            z - self.lung_height,
        ]
        return reduce(np.maximum, pieces)

    def lung_sdf_3d(self, x: FloatArray, y: FloatArray, z: FloatArray, side: str) -> FloatArray:
        """A lung in 3D: inside the elliptic rib cage, off the mediastinum, heart, spine and aorta."""
        xs = side_sign(side) * x
        t = np.maximum(self.taper(z), 1e-3)
        q = np.sqrt((x / (self.half_width * t)) ** 2 + (y / (self.half_depth * t)) ** 2)
        pieces = [
            (q - 1.0) * self.half_depth * t,
            self.medial_wall(z, side) - xs,
            self.diaphragm_3d(xs, y, side) - z,
            z - self.apex_z(xs),
            -self.heart_sdf_3d(x, y, z),
            self.spine_half_width + 8.0 - np.hypot(x, y - self.spine_y),
        ]
        if side == "left":
            aorta_x, aorta_y, radius = self.descending_aorta
            pieces.append(radius + 3.0 - np.hypot(x - aorta_x, y - aorta_y))
        return reduce(np.maximum, pieces)

    @property
    def descending_aorta(self) -> tuple[float, float, float]:
        """``(x, y, radius)`` of the descending aorta, left of the spine."""
        return self.spine_half_width + 12.0, self.spine_y - 22.0, 12.0


def sample_thorax(rng: np.random.Generator, *, enlarged_heart: bool = False) -> Thorax:
    """A random, plausible adult chest. Both heart sizes are always drawn, so a study with and
    without cardiomegaly differs only in the heart."""
    u = rng.uniform
    lung_height = u(205.0, 240.0)
    normal_ctr, enlarged_ctr = u(*NORMAL_CTR), u(*ENLARGED_CTR)
    return Thorax(
        half_width=u(122.0, 145.0),
        half_depth=u(80.0, 98.0),
        wall=u(16.0, 28.0),
        lung_height=lung_height,
        left_dome_drop=u(8.0, 20.0),
        lateral_sulcus=u(30.0, 42.0),
        posterior_sulcus=u(45.0, 60.0),
        mediastinum=u(23.0, 31.0),
        aortic_knob=u(8.0, 16.0),
        carina_z=lung_height - u(100.0, 118.0),
        heart_ctr=enlarged_ctr if enlarged_heart else normal_ctr,
        heart_right_fraction=u(0.27, 0.34),
        heart_tilt=-np.radians(u(32.0, 45.0)),
        heart_aspect=u(0.6, 0.72),
        heart_depth=u(0.48, 0.56),
        rib_period=u(21.0, 26.0),
        rib_phase=u(0.0, 26.0),
        rib_slope=u(24.0, 34.0),
        rib_width=u(8.0, 11.0),
        clavicle_z=lung_height - u(2.0, 22.0),
        spine_half_width=u(17.0, 21.0),
        neck_half_width=u(48.0, 58.0),
        gastric_bubble=u(14.0, 24.0) if u() < 0.7 else 0.0,
    )
