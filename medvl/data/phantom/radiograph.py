"""Phantom chest radiographs: a frontal (PA) and a lateral view of one seeded patient.

Display conventions are the radiologist's: on the frontal view the patient's right is on the
image's left (columns run toward the patient's left), on the lateral view the patient faces the
image's left (columns run front to back); rows run head to feet. Brightness is density:
bone and fluid bright, aerated lung dark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medvl.data.phantom.anatomy import LUNG_SIDES, Thorax, sample_thorax, side_sign
from medvl.data.phantom.canvas import AIR_DENSITY, RadiographCanvas
from medvl.data.phantom.geometry import (
    FloatArray,
    PlaneGrid,
    polyline_distance,
    smooth_noise,
    smoothstep,
    soft_inside,
    wrap,
)
from medvl.data.phantom.lesions import place_findings
from medvl.data.phantom.study import (
    ANATOMY_STREAM,
    FINDING_STREAM,
    NOISE_STREAM,
    TEXTURE_STREAM,
    PhantomStudy,
    PhantomView,
    resolve_seed,
    stream,
)
from medvl.errors import ConfigError
from medvl.findings import Finding

RADIOGRAPH_VIEWS = ("frontal", "lateral")
VIEW_POSITIONS = {"frontal": "PA", "lateral": "LL"}
DEFAULT_FOV_MM = 400.0


@dataclass(frozen=True)
class Pose:
    """Where the patient sits in one view, and how the film was exposed."""

    center: tuple[float, float]  # patient (u, z) at the image centre
    angle: float  # radians
    gain: float
    offset: float
    gamma: float
    noise: float


@dataclass(frozen=True)
class Anatomy2D:
    """The normal chest of one view, before findings."""

    base: FloatArray  # body, bones, heart and mediastinum
    lung_air: FloatArray  # 0..1, fraction of full lung depth crossed by the ray
    markings: FloatArray  # vessels and interstitium inside the lungs
    lung_sdf: dict[str, FloatArray]
    masks: dict[str, np.ndarray]


def _sample_pose(rng: np.random.Generator, thorax: Thorax) -> Pose:
    u = rng.uniform
    return Pose(
        center=(u(-12.0, 12.0), 0.42 * thorax.lung_height + u(-15.0, 15.0)),
        angle=float(np.radians(u(-3.0, 3.0))),
        gain=u(0.62, 0.74),
        offset=u(0.03, 0.08),
        gamma=u(0.85, 1.15),
        noise=u(0.006, 0.016),
    )


# --- shared drawing helpers ----------------------------------------------------------------------
def _dome(rho2: FloatArray) -> FloatArray:
    """Projected thickness profile of a round body: 1 at its centre, 0 at its rim."""
    return np.sqrt(np.clip(1.0 - rho2, 0.0, None))


def _rib_band(s: FloatArray, thorax: Thorax) -> FloatArray:
    """Rib density along the rib coordinate ``s`` (height plus slope x angle round the chest)."""
    phase = wrap(s - thorax.rib_phase, thorax.rib_period)
    inside = np.clip(np.minimum(phase, thorax.rib_width - phase), 0.0, 1.0)
    cortex = 0.6 + 0.4 * (2.0 * phase / thorax.rib_width - 1.0) ** 2
    in_range = (s < thorax.lung_height + 6.0) & (s > thorax.lung_height - 12.5 * thorax.rib_period)
    return inside * cortex * in_range


def vessel_tree(t: Thorax, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pulmonary vessels branching out of each hilum, in 3D: ``(segments (n, 2, 3), radii (n,))``.

    Drawn into both radiograph views, so the frontal and lateral markings are one tree.
    """
    segments, radii = [], []
    for side in LUNG_SIDES:
        sign = side_sign(side)
        stack = []
        for angle in np.linspace(-1.25, 1.35, 6) + rng.uniform(-0.15, 0.15, 6):
            direction = np.array([sign * np.cos(angle), rng.uniform(-0.5, 0.5), np.sin(angle)])
            stack.append((np.array(t.hilum(side)), direction, rng.uniform(30.0, 45.0), 2.4, 0))
        while stack:
            start, direction, length, radius, depth = stack.pop()
            direction = direction / np.linalg.norm(direction)
            end = start + direction * length
            segments.append((start, end))
            radii.append(radius)
            if depth < 3:
                for turn in (-1.0, 1.0):
                    angle = turn * rng.uniform(0.25, 0.6)
                    cos, sin = np.cos(angle), np.sin(angle)
                    child = np.array(
                        [cos * direction[0] - sin * direction[2], direction[1], sin * direction[0] + cos * direction[2]]
                    )
                    stack.append((end, child, length * rng.uniform(0.65, 0.85), radius * 0.7, depth + 1))
    return np.array(segments), np.array(radii)


def _draw_vessels(grid: PlaneGrid, axis: int, tree: tuple[np.ndarray, np.ndarray]) -> FloatArray:
    """The vessel tree seen along one axis: points every half pixel along each segment, kept
    at their vessel's radius (the widest wins), then softened to lines about two pixels wide."""
    segments, radii = tree
    starts, ends = segments[:, 0, :], segments[:, 1, :]
    counts = np.maximum(np.ceil(np.linalg.norm(ends - starts, axis=1) / (0.5 * grid.spacing)).astype(int), 2)
    owner = np.repeat(np.arange(len(segments)), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    fraction = ((np.arange(counts.sum()) - first) / (counts[owner] - 1))[:, None]
    points = starts[owner] + fraction * (ends[owner] - starts[owner])
    row, col = grid.to_pixel(points[:, axis], points[:, 2])
    row, col = np.round(row).astype(int), np.round(col).astype(int)
    keep = (row >= 0) & (row < grid.shape[0]) & (col >= 0) & (col < grid.shape[1])
    out = np.zeros(grid.shape, dtype=np.float32)
    np.maximum.at(out, (row[keep], col[keep]), radii[owner][keep].astype(np.float32))
    for axis_ in (0, 1):  # a [1, 2, 1] / 4 blur along rows, then columns
        out = 0.5 * out + 0.25 * (np.roll(out, 1, axis_) + np.roll(out, -1, axis_))
    return 2.0 * out


# --- frontal view --------------------------------------------------------------------------------
def _frontal_body(t: Thorax, x: FloatArray, z: FloatArray) -> FloatArray:
    """Soft tissue: the trunk with sloping shoulders, the neck, and the humeral heads."""
    bx, ax = t.body_half_width, np.abs(x)
    shoulder_line = t.lung_height + 30.0 - 45.0 * (ax / bx) ** 2
    trunk = _dome((x / (bx + 6.0)) ** 2) * soft_inside(z - shoulder_line, 10.0)
    neck = 0.8 * _dome((x / t.neck_half_width) ** 2) * soft_inside(t.lung_height - 10.0 - z, 10.0)
    humeri = 0.3 * _dome(((ax - bx - 4.0) ** 2 + (z - t.lung_height - 2.0) ** 2) / 26.0**2)
    body = np.maximum(trunk, neck)
    abdomen = sum(
        soft_inside(z - t.diaphragm_frontal(ax, side), 6.0) * (side_sign(side) * x >= 0) for side in LUNG_SIDES
    )
    return body + 0.12 * abdomen * trunk + humeri


def _frontal_bones(t: Thorax, x: FloatArray, z: FloatArray) -> FloatArray:
    """Ribs, clavicles and the spine (faint through the mediastinum)."""
    ax = np.abs(x)
    radius = t.half_width + 0.4 * t.wall
    in_cage = soft_inside(ax - radius, 3.0) * (ax > t.spine_half_width - 2.0)
    # Posterior ribs leave the spine sloping gently down and curve down at the lateral wall;
    # anterior ribs run from the wall steeply down toward the sternum. Both are one rib:
    # the rib coordinate is continuous where they meet at the lateral wall.
    bend = t.rib_slope * (ax / radius) ** 6
    posterior = _rib_band(z + 0.3 * ax + bend, t)
    anterior = _rib_band(z + 0.3 * radius + t.rib_slope + 0.75 * (radius - ax), t)
    anterior *= np.clip((ax - 35.0) / 20.0, 0.0, 1.0)
    ribs = in_cage * (0.1 * posterior + 0.06 * anterior) * (1.0 - 0.6 * soft_inside(z - _dome_line(t, x), 10.0))

    along = np.clip((ax - 12.0) / (t.body_half_width - 2.0), 0.0, 1.0)
    clavicle_z = t.clavicle_z + 28.0 * along**1.5 - 8.0 * np.sin(np.pi * along)
    half = 6.5 - 1.5 * along
    distance = np.abs(z - clavicle_z)
    clavicles = 0.16 * np.clip(half - distance, 0.0, 1.0) * (0.6 + 0.4 * (distance / half) ** 2)
    clavicles *= (ax > 12.0) & (ax < t.body_half_width + 8.0)

    vertebra = wrap(z - t.rib_phase, 27.0)
    discs = 1.0 - 0.35 * np.clip(np.minimum(vertebra, 5.0 - vertebra), 0.0, 1.0)
    spine = 0.12 * _dome((x / t.spine_half_width) ** 2) * discs
    return ribs + clavicles + spine


def _frontal_airway(t: Thorax, grid: PlaneGrid) -> FloatArray:
    """Negative density of the trachea and main bronchi."""
    x, z = grid.u, grid.z
    airway = -0.22 * _dome((x / 8.0) ** 2) * soft_inside(t.carina_z - z, 4.0)
    for side in LUNG_SIDES:
        hilum_x, _, hilum_z = t.hilum(side)
        bronchus = np.array([[0.0, t.carina_z], [hilum_x, hilum_z]])
        block = grid.window(bronchus[:, 0], bronchus[:, 1], margin=8.0)
        distance = polyline_distance(bronchus, (x[block], z[block]))
        airway[block] -= 0.12 * np.clip(1.0 - distance / 6.0, 0.0, 1.0)
    return airway


def _dome_line(t: Thorax, x: FloatArray) -> FloatArray:
    """Height of the hemidiaphragm under each point of a frontal view (right dome for x < 0)."""
    return np.where(x < 0, t.diaphragm_frontal(-x, "right"), t.diaphragm_frontal(x, "left"))


def _frontal_gastric_bubble(t: Thorax, x: FloatArray, z: FloatArray) -> FloatArray:
    if t.gastric_bubble <= 0.0:
        return np.zeros_like(x)
    r = t.gastric_bubble
    cx, cz = 0.42 * t.half_width, float(t.diaphragm_frontal(0.42 * t.half_width, "left")) - 0.8 * r - 8.0
    bubble = _dome(((x - cx) / (1.3 * r)) ** 2 + ((z - cz) / (0.8 * r)) ** 2) * (z > cz - 0.2 * r)
    return -0.25 * bubble


def frontal_anatomy(
    t: Thorax, grid: PlaneGrid, vessels: tuple[np.ndarray, np.ndarray], rng: np.random.Generator
) -> Anatomy2D:
    """The normal frontal (PA) chest on ``grid``."""
    x, z = grid.u, grid.z
    heart_sdf = t.heart_sdf_frontal(x, z)
    lung_sdf = {side: t.lung_sdf_frontal(x, z, side, heart_sdf=heart_sdf) for side in LUNG_SIDES}
    across = (x / (t.lateral_wall(z) + 1.0)) ** 2
    thickness = 0.5 + 0.5 * np.sqrt(np.clip(1.0 - across * across, 0.0, 1.0))  # thinner at the lateral wall
    lung_air = np.zeros_like(x)
    lung_soft = np.zeros_like(x)
    hila = np.zeros_like(x)
    for side in LUNG_SIDES:
        soft = soft_inside(lung_sdf[side], 2.0)
        lung_air += soft * thickness
        lung_soft += soft
        hx, _, hz = t.hilum(side)
        hila += soft * _dome(((x - hx) / 20.0) ** 2 + ((z - hz) / 32.0) ** 2)
    mottle = smooth_noise(rng, grid.shape, 24) - 0.5
    markings = lung_soft * (0.05 * _draw_vessels(grid, 0, vessels) + 0.03 * mottle)
    body = _frontal_body(t, x, z)
    base = (
        body
        + _frontal_bones(t, x, z)
        + _frontal_airway(t, grid)
        + _frontal_gastric_bubble(t, x, z)
        + 0.06 * soft_inside(heart_sdf, 3.0) * soft_inside(_dome_line(t, x) - z, 3.0)
        + 0.1 * hila
    )
    masks = {
        "body": body > 0.05,
        "lungs": (lung_sdf["right"] < 0) | (lung_sdf["left"] < 0),
        "heart": t.heart_shadow("frontal", x, z),
    }
    return Anatomy2D(base, lung_air, markings, lung_sdf, masks)


# --- lateral view --------------------------------------------------------------------------------
def lateral_anatomy(
    t: Thorax, grid: PlaneGrid, vessels: tuple[np.ndarray, np.ndarray], rng: np.random.Generator
) -> Anatomy2D:
    """The normal left lateral chest on ``grid`` (anterior to the image's left)."""
    y, z = grid.u, grid.z
    # Trunk outline: the front bulges a little low down and recedes toward the neck above.
    by, top = t.body_half_depth, t.lung_height
    front = by * (1.0 + 0.06 * np.clip(-z / 80.0, 0.0, 1.0)) - 0.55 * by * smoothstep((z - top + 50.0) / 70.0)
    back = by - 0.3 * by * smoothstep((z - top) / 40.0)
    trunk = _dome(((y - (back - front) / 2.0) / ((back + front) / 2.0)) ** 2)
    abdomen = soft_inside(z - t.diaphragm_lateral(y, "right"), 6.0) + soft_inside(
        z - t.diaphragm_lateral(y, "left"), 6.0
    )

    heart = _dome(t.heart.lateral_rho2(y, z)) * soft_inside(t.diaphragm_lateral(y, "left") - z, 3.0)
    lung_sdf = {side: t.lung_sdf_lateral(y, z, side) for side in LUNG_SIDES}
    depth = np.sqrt(np.clip(1.0 - (y / (t.half_depth * t.taper(z) + 1.0)) ** 2, 0.0, 1.0))
    lung_soft = sum(0.5 * soft_inside(lung_sdf[side], 2.0) for side in LUNG_SIDES)
    lung_air = lung_soft * (0.45 + 0.55 * depth) * (1.0 - 0.45 * heart)

    hy, hz = t.hilum("left")[1], t.hilum("left")[2]
    hila = _dome(((y - hy) / 22.0) ** 2 + ((z - hz) / 30.0) ** 2)
    markings = lung_soft * (0.04 * _draw_vessels(grid, 1, vessels) + 0.03 * (smooth_noise(rng, grid.shape, 24) - 0.5))

    spine_y = t.spine_y + 4.0
    vertebra = wrap(z - t.rib_phase, 27.0)
    bodies = np.clip(np.minimum(vertebra - 3.0, 24.0 - vertebra), 0.0, 1.0)
    spine = 0.16 * (0.7 + 0.3 * bodies) * np.clip(15.0 - np.abs(y - spine_y), 0.0, 1.0)
    spine += 0.06 * (0.6 + 0.4 * bodies) * np.clip(np.minimum(y - spine_y - 15.0, by - 8.0 - y), 0.0, 1.0)
    sternum = 0.12 * np.clip(5.0 - np.abs(y + front - 9.0), 0.0, 1.0) * (z < top - 15.0) * (z > t.carina_z - 80.0)
    angle = np.arccos(np.clip(y / (t.half_depth + 6.0), -1.0, 1.0))
    ribs = 0.05 * _rib_band(z + t.rib_slope * angle, t) * (np.abs(y) < t.half_depth + 6.0)
    trachea = _dome(((y - t.trachea_y_at(z)) / 8.0) ** 2) * soft_inside(t.carina_z - z, 4.0)

    bubble = np.zeros_like(y)
    if t.gastric_bubble > 0.0:
        r = t.gastric_bubble
        cy, cz = -0.35 * t.half_depth, float(t.diaphragm_lateral(-0.35 * t.half_depth, "left")) - 0.8 * r - 8.0
        bubble = _dome(((y - cy) / (1.2 * r)) ** 2 + ((z - cz) / (0.8 * r)) ** 2) * (z > cz - 0.2 * r)

    base = trunk + 0.12 * abdomen * trunk + 0.05 * heart + 0.1 * hila * lung_soft + spine + sternum + ribs
    base += -0.2 * trachea - 0.22 * bubble
    masks = {
        "body": trunk > 0.05,
        "lungs": (lung_sdf["right"] < 0) | (lung_sdf["left"] < 0),
        "heart": t.heart_shadow("lateral", y, z),
    }
    return Anatomy2D(base, lung_air, markings, lung_sdf, masks)


# --- composition ---------------------------------------------------------------------------------
def compose_density(anatomy: Anatomy2D, canvas: RadiographCanvas) -> FloatArray:
    """Total density: anatomy with the canvas's findings (see :mod:`medvl.data.phantom.canvas`)."""
    visible_markings = anatomy.markings * (1.0 - np.maximum(canvas.fill, canvas.clear))
    return anatomy.base - AIR_DENSITY * anatomy.lung_air * (1.0 - canvas.fill) + visible_markings + canvas.extra


def expose(density: FloatArray, pose: Pose, rng: np.random.Generator) -> FloatArray:
    """Film brightness in ``[0, 1]``: a fixed, monotonic response plus detector noise."""
    signal = np.clip(pose.offset + pose.gain * density, 0.0, 1.0) ** pose.gamma
    noisy = signal + pose.noise * rng.standard_normal(density.shape, dtype=np.float32)
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)


def _image_shape(size: int | Sequence[int]) -> tuple[int, int]:
    shape = (size, size) if isinstance(size, (int, np.integer)) else tuple(int(s) for s in size)
    if len(shape) != 2 or min(shape) < 32 or max(shape) > 4096:
        raise ConfigError(f"radiograph size must be an integer or (rows, cols) between 32 and 4096, got {size!r}")
    return shape  # type: ignore[return-value]


def make_chest_radiograph(
    findings: Sequence[Finding] = (),
    seed: int | np.random.Generator = 0,
    *,
    size: int | Sequence[int] = 256,
    fov_mm: float = DEFAULT_FOV_MM,
    views: Sequence[str] = RADIOGRAPH_VIEWS,
) -> PhantomStudy:
    """A seeded chest radiograph study: one :class:`PhantomView` per name in ``views``.

    ``size`` is pixels (``int`` or ``(rows, cols)``); the longer side spans ``fov_mm``, so a
    256-pixel image has 1.5625 mm pixels. Each view carries one exact boolean mask per finding.
    The same findings and seed always give the same arrays; the anatomy, pose, exposure and
    noise depend on the seed only, so adding a finding changes the image only where it is drawn.
    """
    findings = tuple(findings)
    unknown = [name for name in views if name not in RADIOGRAPH_VIEWS]
    if unknown or not views or len(set(views)) != len(views):
        raise ConfigError(f"radiograph views must be distinct names among {RADIOGRAPH_VIEWS}, got {tuple(views)!r}")
    shape = _image_shape(size)
    if not 100.0 <= fov_mm <= 1000.0:
        raise ConfigError(f"the field of view must be 100 to 1000 mm to hold a chest, got {fov_mm!r}")
    seed = resolve_seed(seed)
    spacing = float(fov_mm) / max(shape)

    anatomy_rng = stream(seed, ANATOMY_STREAM)
    enlarged = any(f.kind == "cardiomegaly" for f in findings)
    thorax = sample_thorax(anatomy_rng, enlarged_heart=enlarged)
    poses = {name: _sample_pose(anatomy_rng, thorax) for name in RADIOGRAPH_VIEWS}
    vessels = vessel_tree(thorax, stream(seed, TEXTURE_STREAM))
    lesions = place_findings(findings, thorax, seed)

    rendered = []
    for name in views:
        index = RADIOGRAPH_VIEWS.index(name)
        pose = poses[name]
        grid = PlaneGrid.build(shape, spacing, pose.center, pose.angle)
        draw_anatomy = frontal_anatomy if name == "frontal" else lateral_anatomy
        anatomy = draw_anatomy(thorax, grid, vessels, stream(seed, TEXTURE_STREAM, index))
        canvas = RadiographCanvas.empty(name, grid, thorax, anatomy.lung_sdf)
        masks = tuple(
            lesion.draw_projection(canvas, stream(seed, FINDING_STREAM, i, 1 + index))
            for i, lesion in enumerate(lesions)
        )
        image = expose(compose_density(anatomy, canvas), pose, stream(seed, NOISE_STREAM, index))
        rendered.append(
            PhantomView(name, image, (spacing, spacing), masks, anatomy.masks, view_position=VIEW_POSITIONS[name])
        )
    return PhantomStudy(findings, tuple(rendered), seed)
