"""Findings as shapes: placed once in the patient frame, drawn into every view with exact masks.

:func:`place_findings` turns each :class:`~medvl.findings.Finding` into a *lesion* (its shapes in
millimetres, chosen from the finding's own random stream). A lesion draws itself into a
radiograph canvas (frontal or lateral) or a CT canvas and returns the boolean mask of exactly
what it drew there. Four shapes cover every kind:

* :class:`Blobs` - ellipsoids; *solid* ones add density along their chord (nodule, mass,
  calcified granuloma), *filling* ones replace lung air inside the lung (consolidation, opacity,
  plate atelectasis, the perihilar haze of edema);
* :class:`Effusion`, :class:`Pneumothorax` - pleural spaces that follow the lung outline;
* :class:`Device` - tubes along polylines, and a pacemaker generator box;
* :class:`Cardiomegaly` - the (already enlarged) heart itself.

Degenerative changes of the spine are solid :class:`Blobs` too: osteophytes at several disc levels.

Thin shapes are drawn at least about one pixel/voxel thick so that no mask is ever empty.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import reduce
from typing import Protocol

import numpy as np

from medvl.data.phantom.anatomy import LUNG_SIDES, Thorax, side_sign, sides_of
from medvl.data.phantom.canvas import CTCanvas, RadiographCanvas
from medvl.data.phantom.geometry import Ellipsoid, FloatArray, polyline_distance, smooth_noise, soft_inside, wrap
from medvl.data.phantom.study import FINDING_STREAM, stream
from medvl.errors import ConfigError
from medvl.findings import Finding

_HORIZONTAL_AXIS = {"frontal": 0, "lateral": 1}  # which patient axis a view shows across


class Lesion(Protocol):
    """A placed finding: draws itself and returns the mask of what it drew."""

    def draw_projection(self, canvas: RadiographCanvas, rng: np.random.Generator) -> np.ndarray: ...

    def draw_ct(self, canvas: CTCanvas, rng: np.random.Generator) -> np.ndarray: ...


# --- shapes --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Blobs:
    """A union of ellipsoids, solid (adds density) or filling lung air (clipped to ``sides``)."""

    parts: tuple[Ellipsoid, ...]
    sides: tuple[str, ...]
    solid: bool
    strength: float  # solid: the most density added; filling: fraction of air replaced
    ct_hu: float  # solid: HU painted; filling: HU the lung tends to
    attenuation_mm: float = 25.0  # solid: chord length giving 63% of ``strength``
    softness: float = 0.3  # filling: how far inside the edge the fill ramps up to full (0..1]
    patchiness: float = 0.0  # filling: 0 uniform .. 1 very patchy
    snap: bool = False  # solid and small: centre on a pixel/voxel so the mask is never empty

    def _thick_enough(self, minimum: tuple[float, float, float]) -> tuple[Ellipsoid, ...]:
        return tuple(replace(p, semi_axes=tuple(max(s, m) for s, m in zip(p.semi_axes, minimum))) for p in self.parts)

    def _snapped_projection(self, canvas: RadiographCanvas, parts: tuple[Ellipsoid, ...]) -> tuple[Ellipsoid, ...]:
        if not self.snap:
            return parts
        axis = _HORIZONTAL_AXIS[canvas.view]
        moved = []
        for part in parts:
            center = list(part.center)
            center[axis], center[2] = canvas.grid.snap(center[axis], center[2])
            moved.append(replace(part, center=tuple(center)))
        return tuple(moved)

    def draw_projection(self, canvas: RadiographCanvas, rng: np.random.Generator) -> np.ndarray:
        spacing = canvas.grid.spacing
        parts = self._snapped_projection(canvas, self._thick_enough((0.6 * spacing,) * 3))
        u, z = canvas.u, canvas.z
        if self.solid:
            mask = np.logical_or.reduce([p.shadow_rho2(canvas.view, u, z) <= 1.0 for p in parts])
            chord = np.maximum.reduce([p.chord(canvas.view, u, z) for p in parts])
            canvas.add_extra(self.strength * (1.0 - np.exp(-chord / self.attenuation_mm)) * mask)
            return mask
        field = self._field([p.shadow_rho2(canvas.view, u, z) for p in parts])
        mask = (field > 0.0) & canvas.lung_mask(self.sides)
        canvas.add_fill(self._fill_amount(field, rng) * mask)
        return mask

    @staticmethod
    def _field(rho2: list[FloatArray]) -> FloatArray:
        """Blended strength of overlapping parts: positive exactly inside their union, fading
        smoothly to 0 at its edge (so a patch has no seams between its parts)."""
        return sum(np.clip(1.0 - r, 0.0, None) ** 2 for r in rho2)

    def _fill_amount(self, field: FloatArray, rng: np.random.Generator) -> FloatArray:
        edge = np.clip(field / self.softness, 0.0, 1.0)
        patch = 1.0 - self.patchiness * smooth_noise(rng, field.shape, tuple(max(2, n // 8) for n in field.shape))
        return self.strength * edge * patch

    def draw_ct(self, canvas: CTCanvas, rng: np.random.Generator) -> np.ndarray:
        dy, dx, dz = canvas.grid.spacing
        parts = self._thick_enough((0.6 * dx, 0.6 * dy, 0.6 * dz))
        if self.snap:
            parts = tuple(replace(p, center=canvas.grid.snap(*p.center)) for p in parts)
        rho2 = [p.rho2(canvas.x, canvas.y, canvas.z) for p in parts]
        if self.solid:
            mask = np.logical_or.reduce([r <= 1.0 for r in rho2])
            canvas.paint(mask, self.ct_hu)
            return mask
        field = self._field(rho2)
        mask = (field > 0.0) & canvas.lung_mask(self.sides)
        weight = 0.35 + 0.65 * self._fill_amount(field, rng) / self.strength
        canvas.paint(mask, self.ct_hu, weight)
        return mask


@dataclass(frozen=True)
class Edema:
    """Bilateral perihilar haze plus fine interstitial (Kerley B) lines at the lateral bases."""

    haze: Blobs
    line_period: float
    line_phase: float

    def _lines(self, canvas: RadiographCanvas) -> np.ndarray:
        t, x, z = canvas.thorax, canvas.u, canvas.z
        lines = np.zeros(canvas.grid.shape, dtype=bool)
        width = max(1.2, 0.7 * canvas.grid.spacing)
        for side in LUNG_SIDES:
            peripheral = side_sign(side) * x > t.lateral_wall(z) - 16.0
            low = z < t.zone_range(side, "lower")[1]
            lines |= peripheral & low & (canvas.lung_sdf[side] < 0)
        return lines & (wrap(z - self.line_phase, self.line_period) < width)

    def draw_projection(self, canvas: RadiographCanvas, rng: np.random.Generator) -> np.ndarray:
        mask = self.haze.draw_projection(canvas, rng)
        if canvas.view != "frontal":
            return mask
        lines = self._lines(canvas)
        canvas.add_extra(0.1 * lines)
        return mask | lines

    def draw_ct(self, canvas: CTCanvas, rng: np.random.Generator) -> np.ndarray:
        return self.haze.draw_ct(canvas, rng)


@dataclass(frozen=True)
class Effusion:
    """Pleural fluid at a lung base: a meniscus on erect radiographs, a dependent layer on CT."""

    sides: tuple[str, ...]
    height: float  # fluid level above the lowest recess, mm
    meniscus: float  # how much higher it climbs along the wall

    def draw_projection(self, canvas: RadiographCanvas, rng: np.random.Generator) -> np.ndarray:
        t, u, z = canvas.thorax, canvas.u, canvas.z
        mask = np.zeros(canvas.grid.shape, dtype=bool)
        for side in self.sides:
            if canvas.view == "frontal":  # the meniscus climbs the lateral chest wall
                toward_wall = np.clip((side_sign(side) * u / t.half_width - 0.3) / 0.7, 0.0, 1.0)
                level = t.dome_z(side) - t.lateral_sulcus + self.height + self.meniscus * toward_wall**3
            else:
                toward_back = np.clip((u + t.half_depth) / (2.0 * t.half_depth), 0.0, 1.0)
                lowest = t.dome_z(side) - t.posterior_sulcus
                level = lowest + self.height * (0.4 + 0.6 * toward_back) + self.meniscus * toward_back**2
            region = (z < level) & (canvas.lung_sdf[side] < 0)
            fluid = np.clip((level - z) / 6.0, 0.0, 1.0) * region
            canvas.add_fill(fluid)
            canvas.add_extra(0.12 * fluid)  # as dense as the abdomen below it: the dome's outline is lost
            mask |= region
        return mask

    def draw_ct(self, canvas: CTCanvas, rng: np.random.Generator) -> np.ndarray:
        """Supine: fluid layers behind the lung below a flat level, deepest at the base."""
        t, y, z = canvas.thorax, canvas.y, canvas.z
        mask = np.zeros(canvas.hu.shape, dtype=bool)
        for side in self.sides:
            lowest = t.dome_z(side) - t.posterior_sulcus
            depth = (0.35 * self.height + 15.0) * np.clip(1.0 - (z - lowest) / (2.5 * self.height + 50.0), 0.0, 1.0)
            mask |= (canvas.lung_sdf[side] < 0) & (y > t.half_depth * t.taper(z) - depth)
        canvas.paint(mask, 12.0)
        return mask


@dataclass(frozen=True)
class Pneumothorax:
    """Pleural air: the lung edge pulls away from the apex and lateral wall (erect), or lies
    anteriorly (supine CT); a thin pleural line marks the collapsed lung's edge."""

    side: str
    gap: float  # mm between the chest wall and the lung edge where the collapse is widest

    def _collapse(self, canvas: RadiographCanvas) -> FloatArray:
        """How far (x ``gap``) the lung edge has pulled away at each pixel: 1 apically, 0 low."""
        t, u, z = canvas.thorax, canvas.u, canvas.z
        low = t.dome_z(self.side) + 0.3 * (t.lung_height - t.dome_z(self.side))
        height = np.clip((z - low) / (t.lung_height - low), 0.0, 1.0)
        if canvas.view == "lateral":
            return np.clip((z - (t.lung_height - 2.5 * self.gap - 30.0)) / 40.0, 0.0, 1.0)
        xs, medial = side_sign(self.side) * u, t.medial_wall(z, self.side)
        lateral = np.clip((xs - medial) / np.maximum(t.lateral_wall(z) - medial, 1.0) * 1.6 - 0.3, 0.0, 1.0)
        apex = np.clip((z - (t.lung_height - 45.0)) / 25.0, 0.0, 1.0)
        return np.sqrt(height) * np.maximum(lateral, apex)

    def draw_projection(self, canvas: RadiographCanvas, rng: np.random.Generator) -> np.ndarray:
        sdf = canvas.lung_sdf[self.side]
        collapsed = sdf + self.gap * self._collapse(canvas)
        mask = (sdf < 0) & (collapsed >= 0)
        line_width = max(0.9, 0.6 * canvas.grid.spacing)
        pleural_line = (collapsed < 0) & (collapsed > -line_width) & (sdf < -line_width)
        canvas.add_clear(mask.astype(np.float32))
        canvas.add_extra(-0.08 * mask + 0.12 * pleural_line)
        return mask

    def draw_ct(self, canvas: CTCanvas, rng: np.random.Generator) -> np.ndarray:
        t, x, y, z = canvas.thorax, canvas.x, canvas.y, canvas.z
        taper = np.maximum(t.taper(z), 1e-3)
        front_wall = -t.half_depth * taper * np.sqrt(np.clip(1.0 - (x / (t.half_width * taper)) ** 2, 0.0, 1.0))
        lung = canvas.lung_sdf[self.side] < 0
        mask = lung & (y < front_wall + self.gap)
        pleural_line = lung & ~mask & (y < front_wall + self.gap + canvas.grid.spacing[0])
        canvas.paint(mask, -1000.0)
        canvas.paint(pleural_line, -350.0)
        return mask


@dataclass(frozen=True)
class Cardiomegaly:
    """The heart, already drawn enlarged by the anatomy (see ``sample_thorax``); its mask."""

    def draw_projection(self, canvas: RadiographCanvas, rng: np.random.Generator) -> np.ndarray:
        return canvas.thorax.heart_shadow(canvas.view, canvas.u, canvas.z)

    def draw_ct(self, canvas: CTCanvas, rng: np.random.Generator) -> np.ndarray:
        return canvas.thorax.heart_sdf_3d(canvas.x, canvas.y, canvas.z) < 0


@dataclass(frozen=True)
class Device:
    """Radiopaque tubes along 3D polylines, with an optional generator box (pacemaker)."""

    paths: tuple[np.ndarray, ...]  # each (n, 3) points in the patient frame
    radius: float
    density: float
    ct_hu: float
    box_center: tuple[float, float, float] | None = None
    box_half: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def _box_sdf(self, coords: Sequence[FloatArray], axes: Sequence[int]) -> FloatArray:
        corner = 4.0
        q = [np.abs(c - self.box_center[a]) - (self.box_half[a] - corner) for c, a in zip(coords, axes)]
        outside = np.sqrt(sum(np.maximum(v, 0.0) ** 2 for v in q))
        return outside + np.minimum(reduce(np.maximum, q), 0.0) - corner

    def draw_projection(self, canvas: RadiographCanvas, rng: np.random.Generator) -> np.ndarray:
        axes = (_HORIZONTAL_AXIS[canvas.view], 2)
        radius = max(self.radius, 0.6 * canvas.grid.spacing)
        mask = np.zeros(canvas.grid.shape, dtype=bool)
        for path in self.paths:
            points = path[:, axes]
            block = canvas.grid.window(points[:, 0], points[:, 1], margin=radius + canvas.grid.spacing)
            distance = polyline_distance(points, (canvas.u[block], canvas.z[block]))
            canvas.extra[block] += self.density * np.clip(1.0 - (distance / radius) ** 2, 0.0, None)
            mask[block] |= distance < radius
        if self.box_center is not None:
            sdf = self._box_sdf((canvas.u, canvas.z), axes)
            canvas.add_extra(1.6 * soft_inside(sdf, 1.5))
            mask |= sdf < 0.75
        return mask

    def draw_ct(self, canvas: CTCanvas, rng: np.random.Generator) -> np.ndarray:
        radius = max(self.radius, 0.6 * max(canvas.grid.spacing))
        coords = (canvas.x, canvas.y, canvas.z)
        mask = np.zeros(canvas.hu.shape, dtype=bool)
        for path in self.paths:
            mask |= polyline_distance(path, coords) < radius
        canvas.paint(mask, self.ct_hu)
        if self.box_center is not None:
            box = self._box_sdf(coords, (0, 1, 2)) < 0.5 * max(canvas.grid.spacing)
            canvas.paint(box, 3071.0)
            mask |= box
        return mask


# --- placement -----------------------------------------------------------------------------------
def _point_in_zone(
    thorax: Thorax, side: str, zone: str, radius: float, rng: np.random.Generator
) -> tuple[float, float, float]:
    """A lesion centre in a lung zone whose shadow of ``radius`` stays inside the frontal lung."""
    low, high = thorax.zone_range(side, zone)
    low, high = low + 0.15 * (high - low), high - 0.15 * (high - low)  # well inside the zone
    sign = side_sign(side)
    best, best_score = None, np.inf
    for _ in range(300):
        z = rng.uniform(low, high)
        medial, lateral = float(thorax.medial_wall(z, side)), float(thorax.lateral_wall(z))
        if lateral - medial < 8.0:
            continue
        xs = rng.uniform(medial + 4.0, lateral - 4.0)
        t = max(float(thorax.taper(z)), 1e-3)
        depth = thorax.half_depth * t * np.sqrt(max(1.0 - (xs / (thorax.half_width * t)) ** 2, 0.0))
        y = rng.uniform(-depth, depth)
        frontal = float(thorax.lung_sdf_frontal(sign * xs, z, side))
        inside_3d = float(thorax.lung_sdf_3d(sign * xs, y, z, side))
        score = max(frontal + 0.9 * radius + 3.0, inside_3d + 0.5 * radius)
        if score < best_score:
            best, best_score = (sign * xs, y, z), score
        if score <= 0.0:
            break
    return best


def _random_offsets(rng: np.random.Generator, count: int, length: float) -> np.ndarray:
    directions = rng.normal(size=(count, 3))
    return directions / np.linalg.norm(directions, axis=1, keepdims=True) * length


def _sphere(f: Finding, t: Thorax, rng: np.random.Generator, **style: float) -> Blobs:
    """A round lesion of diameter ``f.size_mm`` in its zone, centred on a pixel/voxel in each view."""
    radius = f.size_mm / 2.0
    center = _point_in_zone(t, f.side, f.zone, radius, rng)
    return Blobs((Ellipsoid(center, (radius,) * 3),), (f.side,), solid=True, snap=True, **style)


def _place_nodule(f: Finding, t: Thorax, rng: np.random.Generator) -> Blobs:
    return _sphere(f, t, rng, strength=0.5, ct_hu=35.0)


def _place_granuloma(f: Finding, t: Thorax, rng: np.random.Generator) -> Blobs:
    return _sphere(f, t, rng, strength=1.0, ct_hu=900.0, attenuation_mm=4.0)  # calcified: very dense


def _place_mass(f: Finding, t: Thorax, rng: np.random.Generator) -> Blobs:
    """A lobulated mass: a sphere of the stated diameter with a few bulging lobules."""
    radius = f.size_mm / 2.0
    center = np.array(_point_in_zone(t, f.side, f.zone, radius, rng))
    parts = [Ellipsoid(tuple(center), (radius,) * 3)]
    count = int(rng.integers(2, 5))
    lobule_radii = rng.uniform(0.4, 0.6, size=count) * radius
    for offset, lobule in zip(_random_offsets(rng, count, 1.0), lobule_radii):
        parts.append(Ellipsoid(tuple(center + offset * (1.04 * radius - lobule)), (float(lobule),) * 3))
    return Blobs(tuple(parts), (f.side,), solid=True, strength=0.55, ct_hu=40.0, attenuation_mm=30.0)


def _patch(f: Finding, t: Thorax, rng: np.random.Generator, lobe: float, spread: float, **style: float) -> Blobs:
    """A patchy airspace region in a zone: overlapping ellipsoids of up to ``lobe`` mm, scattered
    ``spread`` mm around a centre, clipped to the lung."""
    center = np.array(_point_in_zone(t, f.side, f.zone, 12.0, rng))
    count = int(rng.integers(5, 10))
    parts = tuple(
        Ellipsoid(tuple(center + rng.normal(0.0, spread, size=3)), tuple(rng.uniform(0.45 * lobe, lobe, size=3)))
        for _ in range(count)
    )
    return Blobs(parts, (f.side,), solid=False, **style)


def _place_consolidation(f: Finding, t: Thorax, rng: np.random.Generator) -> Blobs:
    return _patch(f, t, rng, lobe=26.0, spread=16.0, strength=0.85, ct_hu=25.0, softness=0.5, patchiness=0.55)


def _place_opacity(f: Finding, t: Thorax, rng: np.random.Generator) -> Blobs:
    return _patch(f, t, rng, lobe=26.0, spread=16.0, strength=0.4, ct_hu=-450.0, softness=0.9, patchiness=0.4)


def _place_atelectasis(f: Finding, t: Thorax, rng: np.random.Generator) -> Blobs:
    """Plate-like (discoid) atelectasis: a thin, nearly horizontal disc above each dome."""
    parts = []
    for side in sides_of(f.side):
        medial = t.mediastinum + 10.0
        xs = medial + rng.uniform(0.3, 0.6) * (t.half_width - medial)
        z = float(t.diaphragm_frontal(xs, side)) + rng.uniform(14.0, 28.0)
        semi_axes = (rng.uniform(18.0, 32.0), rng.uniform(12.0, 22.0), rng.uniform(2.5, 4.5))
        center = (side_sign(side) * xs, rng.uniform(-0.1, 0.4) * t.half_depth, z)
        parts.append(Ellipsoid(center, semi_axes, tilt=rng.uniform(-0.2, 0.2)))
    return Blobs(tuple(parts), sides_of(f.side), solid=False, strength=0.8, ct_hu=20.0, softness=0.5, patchiness=0.1)


VERTEBRA_MM = 27.0  # the phantom's vertebral height (disc to disc), as the radiograph draws it


def _place_degenerative_spine(f: Finding, t: Thorax, rng: np.random.Generator) -> Blobs:
    """Osteophytes at 3-5 consecutive disc levels between the carina and the right dome: a beak at
    each level's anterior margin (seen on the lateral view) and at one side of it (seen on the frontal)."""
    levels = np.arange(t.rib_phase - 1.5 - 10 * VERTEBRA_MM, t.carina_z, VERTEBRA_MM)
    levels = levels[(levels > t.dome_z("right") + 15.0) & (levels < t.carina_z - 10.0)]
    count = min(len(levels), int(rng.integers(3, 6)))
    first = int(rng.integers(0, len(levels) - count + 1))
    anterior_y = t.spine_y + 4.0 - 15.0  # the vertebral bodies' front edge, as the lateral view draws it
    parts = []
    for z in levels[first : first + count]:
        length = float(rng.uniform(3.0, 5.0))
        parts.append(Ellipsoid((0.0, anterior_y - 0.6 * length, float(z)), (0.5 * t.spine_half_width, length, 2.5)))
        side = float(rng.choice([-1.0, 1.0]))
        parts.append(Ellipsoid((side * (t.spine_half_width + 0.6 * length), t.spine_y, float(z)), (length, 7.0, 2.5)))
    return Blobs(tuple(parts), ("left", "right"), solid=True, strength=0.35, ct_hu=700.0, attenuation_mm=5.0)


def _place_edema(f: Finding, t: Thorax, rng: np.random.Generator) -> Edema:
    parts = []
    for side in LUNG_SIDES:
        x, y, z = t.hilum(side)
        semi_axes = (rng.uniform(48.0, 62.0), 0.65 * t.half_depth, rng.uniform(60.0, 80.0))
        parts.append(Ellipsoid((x + side_sign(side) * 12.0, y, z - 10.0), semi_axes))
    haze = Blobs(tuple(parts), LUNG_SIDES, solid=False, strength=0.35, ct_hu=-550.0, softness=1.0, patchiness=0.25)
    return Edema(haze, line_period=rng.uniform(7.0, 10.0), line_phase=rng.uniform(0.0, 10.0))


def _place_effusion(f: Finding, t: Thorax, rng: np.random.Generator) -> Effusion:
    return Effusion(sides_of(f.side), height=rng.uniform(30.0, 80.0), meniscus=rng.uniform(15.0, 30.0))


def _place_pneumothorax(f: Finding, t: Thorax, rng: np.random.Generator) -> Pneumothorax:
    return Pneumothorax(f.side, gap=rng.uniform(14.0, 30.0))


def _place_cardiomegaly(f: Finding, t: Thorax, rng: np.random.Generator) -> Cardiomegaly:
    return Cardiomegaly()


def _superior_vena_cava(t: Thorax) -> tuple[float, float, float]:
    """``(x, y, z)`` of the cavoatrial junction; the SVC runs straight up from it."""
    return -(t.mediastinum - 3.0), -0.3 * t.half_depth, t.heart.center[2] + 0.45 * t.heart.half_height


def _venous_path(t: Thorax, side: str, start: tuple[float, float, float]) -> list[tuple[float, float, float]]:
    """From a point in the neck or chest wall down the veins to the cavoatrial junction."""
    x_svc, y_svc, z_tip = _superior_vena_cava(t)
    top = t.lung_height
    path = [start, (side_sign(side) * 28.0, y_svc, top - 10.0)]
    if side == "left":  # the left brachiocephalic vein crosses the midline
        path.append((6.0, y_svc, top - 35.0))
    path += [(x_svc, y_svc, top - 50.0), (x_svc, y_svc, z_tip)]
    return path


def _place_support_device(f: Finding, t: Thorax, rng: np.random.Generator) -> Device:
    top = t.lung_height
    if f.device == "endotracheal_tube":
        tip = t.carina_z + rng.uniform(35.0, 60.0)
        path = np.array([(0.0, float(t.trachea_y_at(z)), z) for z in (top + 160.0, tip)])
        return Device((path,), radius=1.6, density=0.5, ct_hu=300.0)
    if f.device == "central_line":
        start = (side_sign(f.side) * rng.uniform(28.0, 36.0), -0.3 * t.half_depth, top + 140.0)
        return Device((np.array(_venous_path(t, f.side, start)),), radius=1.3, density=0.45, ct_hu=700.0)
    # pacemaker: a generator below the left clavicle, leads to the right atrium and ventricle
    box_x = rng.uniform(55.0, 75.0)
    box_edge = box_x + 24.0  # keep the whole generator under the skin of the elliptic chest wall
    skin = -t.body_half_depth * np.sqrt(1.0 - (box_edge / t.body_half_width) ** 2)
    box_center = (box_x, float(skin) + 14.0, t.clavicle_z - rng.uniform(28.0, 42.0))
    start = (box_center[0] - 20.0, box_center[1] + 10.0, box_center[2] + 6.0)
    venous = _venous_path(t, "left", start)
    hx, hy, hz = t.heart.center
    right_atrium = (hx - 0.65 * t.heart.half_width, -0.35 * t.half_depth, hz + 0.15 * t.heart.half_height)
    right_ventricle = (hx + 0.45 * t.heart.half_width, hy - 0.5 * t.heart.semi_axes[1], hz - 0.4 * t.heart.half_height)
    leads = (np.array(venous + [right_atrium]), np.array(venous + [right_ventricle]))
    return Device(leads, radius=1.2, density=0.5, ct_hu=1500.0, box_center=box_center, box_half=(24.0, 5.0, 20.0))


PLACERS: dict[str, Callable[[Finding, Thorax, np.random.Generator], Lesion]] = {
    "cardiomegaly": _place_cardiomegaly,
    "pleural_effusion": _place_effusion,
    "pneumothorax": _place_pneumothorax,
    "consolidation": _place_consolidation,
    "opacity": _place_opacity,
    "nodule": _place_nodule,
    "mass": _place_mass,
    "atelectasis": _place_atelectasis,
    "edema": _place_edema,
    "calcified_granuloma": _place_granuloma,
    "support_device": _place_support_device,
    "degenerative_spine": _place_degenerative_spine,
}


def place_findings(findings: Sequence[Finding], thorax: Thorax, seed: int) -> tuple[Lesion, ...]:
    """One lesion per finding, each from its own random stream (finding ``i`` of study ``seed``)."""
    lesions = []
    for index, finding in enumerate(findings):
        placer = PLACERS.get(finding.kind)
        if placer is None:
            raise ConfigError(f"the phantom generator cannot draw finding kind '{finding.kind}' yet")
        lesions.append(placer(finding, thorax, stream(seed, FINDING_STREAM, index, 0)))
    return tuple(lesions)
