"""Pixel rasters: what every reader shares (checks, geometry, the view tensor), and PNG/JPEG files.

Readers hand decoded pixels to :func:`make_view`, which refuses empty or non-finite images and
wraps them as a channel-first float32 ``MetaTensor`` whose ``meta`` holds geometry only.
Geometry follows DICOM: :func:`patient_affine` builds the RAS affine from an
ImageOrientationPatient, a spacing and an ImagePositionPatient (all in LPS). A PNG or JPEG has
no patient geometry, so it gets the affine of a DICOM image with the default orientation
(rows along patient +Y, columns along +X), spacing 1 mm and its first pixel at the origin,
the same affine a radiograph without ImageOrientationPatient gets.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.utils import MetaKeys, SpaceKeys
from PIL import Image, UnidentifiedImageError

from medvl.errors import InvalidImageError, TruncatedFileError
from medvl.io.study import Study, View, ViewInfo

MAX_VOXELS = 2**31  # a larger image is refused before its pixels are allocated
DEFAULT_ORIENTATION = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)  # DICOM ImageOrientationPatient
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
LUMINANCE_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, as Y of YBR_FULL

# Words of a file name that say which projection a radiograph shows ("chest_pa.png", "lat-1.jpg").
NAME_POSITIONS = {"frontal": "FRONTAL", "pa": "PA", "ap": "AP", "lat": "LATERAL", "lateral": "LATERAL"}
RASTER_FORMATS = {"PNG": "png", "JPEG": "jpeg", "MPO": "jpeg"}  # PIL format -> source_format (MPO: camera JPEG)
GREY_MODES = {"1", "L", "I", "I;16", "I;16B", "I;16L", "F"}


def check_dimensions(shape: Sequence[int], path: Path) -> None:
    """Refuse an empty image, or one too large to allocate, from its header's dimensions."""
    size = " x ".join(str(int(n)) for n in shape)
    if any(int(n) <= 0 for n in shape):
        raise InvalidImageError(f"empty image (size {size})", path)
    voxels = int(np.prod([int(n) for n in shape], dtype=object))
    if voxels > MAX_VOXELS:
        raise InvalidImageError(
            f"image size {size} ({voxels:,} voxels) exceeds the limit of {MAX_VOXELS:,} voxels; "
            "the header is probably corrupt",
            path,
        )


def slice_normal(orientation: Sequence[float]) -> np.ndarray:
    """Unit normal of the image plane: row direction cosine x column direction cosine (LPS)."""
    cosines = np.asarray(orientation, dtype=np.float64)
    normal = np.cross(cosines[:3], cosines[3:])
    return normal / np.linalg.norm(normal)


def patient_affine(orientation: Sequence[float], spacing: Sequence[float], origin: Sequence[float]) -> np.ndarray:
    """The 4x4 RAS affine of an image plane or stack, from DICOM-style LPS geometry.

    ``orientation`` is ImageOrientationPatient (row direction, then column direction),
    ``spacing`` is (between rows, between columns[, between slices]) in mm, and ``origin`` is
    ImagePositionPatient of the first voxel. Array axis 0 (rows) runs along the column
    direction, axis 1 along the row direction, axis 2 along the slice normal.
    """
    cosines = np.asarray(orientation, dtype=np.float64)
    slice_spacing = float(spacing[2]) if len(spacing) > 2 else 1.0
    lps = np.eye(4)
    lps[:3, 0] = cosines[3:] * float(spacing[0])
    lps[:3, 1] = cosines[:3] * float(spacing[1])
    lps[:3, 2] = slice_normal(orientation) * slice_spacing
    lps[:3, 3] = np.asarray(origin, dtype=np.float64)
    return LPS_TO_RAS @ lps


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Single-channel luminance of an array whose last axis holds R, G, B (and maybe alpha)."""
    return rgb[..., :3].astype(np.float32) @ LUMINANCE_WEIGHTS


def position_from_name(path: Path) -> str | None:
    """A ViewPosition-like value from the words of a file name, e.g. ``"PA"`` for ``cxr_pa.png``."""
    for word in re.split(r"[^a-z]+", path.name.lower()):
        if word in NAME_POSITIONS:
            return NAME_POSITIONS[word]
    return None


def make_view(pixels: np.ndarray, affine: np.ndarray, path: Path, **facts: Any) -> View:
    """Check decoded pixels and wrap them as a view; ``facts`` are the remaining ViewInfo fields.

    Raises InvalidImageError for an empty image or one with NaN or infinite values.
    """
    check_dimensions(pixels.shape, path)
    values = np.asarray(pixels, dtype=np.float32)  # no copy when already float32 (strides kept)
    not_finite = int(values.size - np.count_nonzero(np.isfinite(values)))
    if not_finite:
        raise InvalidImageError(f"{not_finite:,} of {values.size:,} pixel values are NaN or infinite", path)
    affine = np.asarray(affine, dtype=np.float64)
    meta = {
        MetaKeys.ORIGINAL_AFFINE: affine.copy(),
        MetaKeys.SPATIAL_SHAPE: np.asarray(values.shape),
        MetaKeys.SPACE: SpaceKeys.RAS,
        MetaKeys.ORIGINAL_CHANNEL_DIM: 0,
    }
    image = MetaTensor(torch.from_numpy(values)[None], affine=torch.from_numpy(affine), meta=meta)
    info = ViewInfo(spatial_dims=values.ndim, size=tuple(values.shape), **facts)
    return View(image=image, info=info)


def read_raster(path: Path) -> Study:
    """Read a PNG or JPEG file (8-bit, 16-bit or colour) as a one-view 2D study."""
    try:
        with Image.open(path, formats=["PNG", "JPEG"]) as image:
            check_dimensions((image.height, image.width), path)
            pixels = _grey_pixels(image)
            source_format = RASTER_FORMATS[image.format]
    except UnidentifiedImageError as exc:
        raise InvalidImageError("not a readable PNG or JPEG image", path) from exc
    except Image.DecompressionBombError as exc:
        raise InvalidImageError(f"image too large: {exc}", path) from exc
    except OSError as exc:  # PIL reports a cut-off file and a corrupt stream alike as OSError
        error = TruncatedFileError if "truncated" in str(exc).lower() else InvalidImageError
        raise error(f"cannot decode the image: {exc}", path) from exc
    affine = patient_affine(DEFAULT_ORIENTATION, (1.0, 1.0), (0.0, 0.0, 0.0))
    view = make_view(
        pixels,
        affine,
        path,
        source_format=source_format,
        spacing=(1.0, 1.0),
        view_position=position_from_name(path),
    )
    return Study(views=(view,), source=path)


def _grey_pixels(image: Image.Image) -> np.ndarray:
    """The image as one grey channel: grey modes as stored, colour as luminance."""
    if image.mode in GREY_MODES:
        return np.asarray(image)
    if image.mode == "LA":
        return np.asarray(image.getchannel("L"))
    return luminance(np.asarray(image.convert("RGB")))
