"""Phantom chest CT: a seeded axial volume in Hounsfield units, patient supine.

Array order ``(rows, cols, slices)`` like a standard axial DICOM series: rows run anterior→
posterior, columns the patient's right→left (ImageOrientationPatient ``(1, 0, 0, 0, 1, 0)``),
and slices are stored INFERIOR→SUPERIOR (slice 0 is the lowest, positions grow along +z, the
slice normal). :attr:`PhantomView.affine_lps` / ``affine_ras`` give the geometry the writers use.
Values are whole HU between -1024 and 3071 (air -1000, lung about -850, fat -100, soft tissue
and blood 40, bone 250-700, metal 3071).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medvl.data.phantom.anatomy import LUNG_SIDES, Thorax, sample_thorax
from medvl.data.phantom.canvas import CTCanvas
from medvl.data.phantom.geometry import FloatArray, VolumeGrid, polyline_distance, smoothstep, soft_inside, wrap
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

DEFAULT_CT_SHAPE = (64, 64, 48)
CT_FIELD_OF_VIEW_MM = (384.0, 384.0, 336.0)  # rows, columns, slices: 6 x 6 x 7 mm at the default shape
HU_RANGE = (-1024.0, 3071.0)  # what a 12-bit CT stores with RescaleIntercept -1024
_CT_VIEW_INDEX = 3  # random-stream index of the CT view (0-2 are used by radiograph views)


def _body(t: Thorax, x: FloatArray, y: FloatArray, z: FloatArray) -> tuple[FloatArray, np.ndarray]:
    """Normalised radius of the body outline (narrowing to the neck at the top) and its mask."""
    neck = smoothstep((z - t.lung_height - 10.0) / 40.0)
    half_width = t.body_half_width - (t.body_half_width - t.neck_half_width) * neck
    half_depth = t.body_half_depth - 0.3 * t.body_half_depth * neck
    radius = np.sqrt((x / half_width) ** 2 + (y / half_depth) ** 2)
    return radius, radius < 1.0


def _cage(t: Thorax, x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
    """Normalised radius of the inner rib cage (1 on the ribs' inner surface)."""
    taper = np.maximum(t.taper(np.minimum(z, t.lung_height)), 0.35)
    return np.sqrt((x / (t.half_width * taper)) ** 2 + (y / (t.half_depth * taper)) ** 2)


def _ribs(t: Thorax, x: FloatArray, y: FloatArray, z: FloatArray, cage: FloatArray) -> tuple[np.ndarray, np.ndarray]:
    """Rib bone and costal cartilage: bands just outside the cage, descending toward the front."""
    wall = (cage > 1.0) & (cage < 1.0 + 11.0 / t.half_depth) & (z < t.lung_height + 5.0)
    around = np.arctan2(np.abs(x) / t.half_width, y / t.half_depth)  # 0 at the spine, pi at the sternum
    phase = wrap(z + t.rib_slope * around - t.rib_phase, t.rib_period)
    band = wall & (phase < t.rib_width)
    cartilage = around > 0.82 * np.pi
    return band & ~cartilage, band & cartilage


def _airway_path(t: Thorax, side: str | None) -> np.ndarray:
    """Trachea (``side`` None) or a main bronchus, as a polyline."""
    carina = (0.0, float(t.trachea_y_at(t.carina_z)), t.carina_z)
    if side is None:
        top = t.lung_height + 200.0
        return np.array([(0.0, float(t.trachea_y_at(top)), top), carina])
    return np.array([carina, t.hilum(side)])


def _paint_trunk(hu: FloatArray, t: Thorax, x: FloatArray, y: FloatArray, z: FloatArray) -> np.ndarray:
    """Body (muscle under a fat layer), upper abdomen under the domes, mediastinal fat; returns
    the body mask."""
    shape = hu.shape
    body_radius, body = _body(t, x, y, z)
    body = np.broadcast_to(body, shape)
    hu[body] = 40.0
    hu[np.broadcast_to(body_radius > 1.0 - 12.0 / t.body_half_depth, shape) & body] = -100.0
    inside = np.broadcast_to(_cage(t, x, y, z) < 1.0, shape)
    dome = np.where(x < 0, t.diaphragm_3d(-x, y, "right"), t.diaphragm_3d(x, y, "left"))
    abdomen = inside & (z < dome)
    hu[abdomen] = np.broadcast_to(np.where(x < 0, 58.0, 45.0), shape)[abdomen]  # liver, spleen
    hu[inside & ~abdomen] = -80.0  # mediastinal fat, until the organs are painted over it
    if t.gastric_bubble > 0.0:
        r = t.gastric_bubble
        bubble = (x - 0.42 * t.half_width) ** 2 + (y + 0.35 * t.half_depth) ** 2 + (z - dome + 8.0 + r) ** 2
        hu[np.broadcast_to(bubble < r * r, shape) & abdomen] = -1000.0
    return body


def _paint_lungs(
    hu: FloatArray, t: Thorax, grid: VolumeGrid, lung_sdf: dict[str, FloatArray], rng: np.random.Generator
) -> None:
    """Aerated lung (about -860 HU with texture) and vessel dots, denser near the hila."""
    x, y, z = grid.x, grid.y, grid.z
    texture = 25.0 * rng.standard_normal(hu.shape).astype(np.float32)
    hilum_distance = np.minimum.reduce(
        [np.sqrt((x - hx) ** 2 + (y - hy) ** 2 + (z - hz) ** 2) for hx, hy, hz in map(t.hilum, LUNG_SIDES)]
    )
    vessels = rng.random(hu.shape) < 0.03 * np.exp(-hilum_distance / 70.0) + 0.002
    lung_hu = np.where(vessels, -450.0, -860.0 + texture)
    for side in LUNG_SIDES:
        aerated = soft_inside(lung_sdf[side], min(grid.spacing))  # partial volume at the edge
        region = aerated > 0
        hu[region] = ((1.0 - aerated) * hu + aerated * lung_hu)[region]


def _paint_mediastinum(hu: FloatArray, t: Thorax, x: FloatArray, y: FloatArray, z: FloatArray) -> None:
    """Heart, aorta (ascending, arch, descending), trachea and main bronchi."""
    shape = hu.shape
    hu[t.heart_sdf_3d(x, y, z) < 0] = 40.0
    aorta_x, aorta_y, aorta_radius = t.descending_aorta
    arch_z, ascending_y = t.carina_z + 22.0, -0.35 * t.half_depth  # the aortic root hides in the heart
    aorta = [
        (-10.0, ascending_y, t.carina_z - 70.0),
        (-10.0, ascending_y, arch_z),
        (aorta_x, aorta_y, arch_z),
        (aorta_x, aorta_y, t.dome_z("left") - 80.0),
    ]
    hu[np.broadcast_to(polyline_distance(np.array(aorta), (x, y, z)) < aorta_radius, shape)] = 40.0
    for path, radius in [(_airway_path(t, None), 9.0)] + [(_airway_path(t, s), 6.0) for s in LUNG_SIDES]:
        distance = np.broadcast_to(polyline_distance(path, (x, y, z)), shape)
        hu[(distance < radius + 2.0) & (hu > -500.0)] = 40.0  # the airway wall
        hu[distance < radius] = -1000.0


def _paint_skeleton(hu: FloatArray, t: Thorax, x: FloatArray, y: FloatArray, z: FloatArray) -> None:
    """Vertebrae (cortex, marrow, discs, canal, spinous process), ribs and sternum."""
    shape = hu.shape
    spine_distance = np.broadcast_to(np.hypot(x, y - t.spine_y), shape)
    disc = np.broadcast_to(wrap(z - t.rib_phase, 27.0) < 5.0, shape)
    vertebra = spine_distance < t.spine_half_width
    bone = np.where(spine_distance > t.spine_half_width - 3.5, 700.0, 260.0)
    hu[vertebra] = np.where(disc, 80.0, bone)[vertebra]
    canal_y = t.spine_y + t.spine_half_width + 8.0
    hu[np.broadcast_to(np.hypot(x, y - canal_y) < 8.0, shape)] = 20.0
    spinous = (np.abs(x) < 5.0) & (y > canal_y + 8.0) & (y < t.body_half_depth - 18.0)
    hu[np.broadcast_to(spinous, shape) & ~disc] = 500.0
    ribs, cartilage = _ribs(t, x, y, z, _cage(t, x, y, z))
    hu[ribs] = 650.0
    hu[cartilage] = 150.0
    sternum = (np.abs(x) < 14.0) & (y > -t.half_depth - 16.0) & (y < -t.half_depth - 4.0)
    hu[np.broadcast_to(sternum & (z > t.carina_z - 110.0) & (z < t.lung_height - 10.0), shape)] = 400.0


def ct_anatomy(
    t: Thorax, grid: VolumeGrid, rng: np.random.Generator
) -> tuple[FloatArray, dict[str, FloatArray], dict[str, np.ndarray]]:
    """The normal chest in HU on ``grid``: ``(hu, lung signed distances, anatomy masks)``."""
    x, y, z = grid.x, grid.y, grid.z
    hu = np.full(grid.shape, -1000.0, dtype=np.float32)
    body = _paint_trunk(hu, t, x, y, z)
    lung_sdf = {side: np.broadcast_to(t.lung_sdf_3d(x, y, z, side), grid.shape) for side in LUNG_SIDES}
    _paint_lungs(hu, t, grid, lung_sdf, rng)
    _paint_mediastinum(hu, t, x, y, z)
    _paint_skeleton(hu, t, x, y, z)
    masks = {
        "body": body.copy(),
        "lungs": (lung_sdf["right"] < 0) | (lung_sdf["left"] < 0),
        "heart": np.broadcast_to(t.heart_sdf_3d(x, y, z) < 0, grid.shape).copy(),
    }
    return hu, lung_sdf, masks


def _ct_geometry(
    shape: Sequence[int], spacing: Sequence[float] | None
) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 8 or max(shape) > 1024:
        raise ConfigError(f"CT shape must be (rows, cols, slices) between 8 and 1024, got {shape!r}")
    if spacing is None:
        spacing = tuple(fov / n for fov, n in zip(CT_FIELD_OF_VIEW_MM, shape))
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != 3 or min(spacing) <= 0.0:
        raise ConfigError(f"CT spacing must be three positive millimetre values, got {spacing!r}")
    return shape, spacing  # type: ignore[return-value]


def make_chest_ct(
    findings: Sequence[Finding] = (),
    seed: int | np.random.Generator = 0,
    *,
    shape: Sequence[int] = DEFAULT_CT_SHAPE,
    spacing: Sequence[float] | None = None,
) -> PhantomStudy:
    """A seeded chest CT study with one view, ``"ct"``: whole HU in ``(rows, cols, slices)``.

    ``spacing`` is ``(row, column, slice)`` millimetres, by default the spacing that makes the
    volume cover :data:`CT_FIELD_OF_VIEW_MM` (6 x 6 x 7 mm at the default 64 x 64 x 48); the
    volume is centred on the chest.
    Each finding gets an exact 3D mask; the same findings and seed give the same volume, and
    adding a finding changes only the voxels it paints.
    """
    findings = tuple(findings)
    shape, spacing = _ct_geometry(shape, spacing)
    seed = resolve_seed(seed)
    anatomy_rng = stream(seed, ANATOMY_STREAM)
    thorax = sample_thorax(anatomy_rng, enlarged_heart=any(f.kind == "cardiomegaly" for f in findings))
    rows, cols, slices = shape
    origin = (-(cols - 1) / 2.0 * spacing[1], -(rows - 1) / 2.0 * spacing[0], -(slices - 1) / 2.0 * spacing[2])
    center_z = 0.45 * thorax.lung_height - 20.0  # the patient's height at the scanner's z = 0
    shift = (
        anatomy_rng.uniform(-8.0, 8.0),
        anatomy_rng.uniform(-6.0, 10.0),
        -center_z + anatomy_rng.uniform(-8.0, 8.0),
    )
    grid = VolumeGrid.build(shape, spacing, origin, shift, float(np.radians(anatomy_rng.uniform(-3.0, 3.0))))
    noise = anatomy_rng.uniform(6.0, 14.0)

    hu, lung_sdf, anatomy = ct_anatomy(thorax, grid, stream(seed, TEXTURE_STREAM, _CT_VIEW_INDEX))
    canvas = CTCanvas(grid, thorax, hu, lung_sdf)
    lesions = place_findings(findings, thorax, seed)
    masks = tuple(
        np.broadcast_to(lesion.draw_ct(canvas, stream(seed, FINDING_STREAM, i, 1 + _CT_VIEW_INDEX)), shape).copy()
        for i, lesion in enumerate(lesions)
    )
    hu = canvas.hu + noise * stream(seed, NOISE_STREAM, _CT_VIEW_INDEX).standard_normal(shape, dtype=np.float32)
    hu = np.clip(np.round(hu), *HU_RANGE).astype(np.float32)
    view = PhantomView("ct", hu, spacing, masks, anatomy, view_position=None, origin=origin)
    return PhantomStudy(findings, (view,), seed)
