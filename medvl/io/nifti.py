"""Reading NIfTI-1/NIfTI-2 files (.nii, .nii.gz) with nibabel.

The array keeps nibabel's index order ``(i, j, k)`` and the view's affine is the header's
(nibabel already gives it in RAS); scaling (``scl_slope``/``scl_inter``) is applied.
A 2D image becomes a 2D view, a 3D one a 3D view; a 4D image is accepted only when it holds a
single volume.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError

from medvl.errors import InvalidImageError, TruncatedFileError, UnsupportedFormatError
from medvl.io.raster import check_dimensions, make_view, position_from_name
from medvl.io.study import Study

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti_name(path: Path) -> bool:
    """True if the file name ends in .nii or .nii.gz."""
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def read_nifti(path: Path) -> Study:
    """Read a NIfTI file as a one-view study (2D or 3D)."""
    image = _load_header(path)
    shape = _spatial_shape(image.shape, path)
    check_dimensions(shape, path)
    try:
        pixels = np.asarray(image.get_fdata(dtype=np.float32)).reshape(shape)
    except (OSError, EOFError, zlib.error) as exc:
        raise TruncatedFileError(f"the image data is incomplete: {exc}", path) from exc
    except ValueError as exc:
        raise InvalidImageError(f"cannot read the image data: {exc}", path) from exc
    view = make_view(
        pixels,
        image.affine,
        path,
        source_format="nifti",
        spacing=tuple(float(z) for z in image.header.get_zooms()[: len(shape)]),
        view_position=position_from_name(path),
    )
    return Study(views=(view,), source=path)


def _load_header(path: Path) -> nib.Nifti1Image:
    try:
        image = nib.load(path)
    except (ImageFileError, OSError, EOFError, zlib.error, ValueError) as exc:
        raise InvalidImageError(f"not a readable NIfTI file: {exc}", path) from exc
    if not isinstance(image, nib.Nifti1Image | nib.Nifti2Image):  # e.g. a CIFTI-2 matrix
        raise UnsupportedFormatError(f"{type(image).__name__} files are not images medvl reads", path)
    return image


def _spatial_shape(shape: tuple[int, ...], path: Path) -> tuple[int, ...]:
    """The 2D or 3D shape of the view; trailing axes of length 1 beyond the third are dropped."""
    if len(shape) < 2:
        raise UnsupportedFormatError(f"a {len(shape)}D NIfTI array is not an image", path)
    if len(shape) > 3:
        extra = shape[3:]
        if any(n != 1 for n in extra):
            size = "x".join(str(n) for n in shape)
            raise UnsupportedFormatError(
                f"4D NIfTI with {int(np.prod(extra))} volumes (shape {size}); medvl reads one 3D "
                "volume per view: save the volume you want as its own file",
                path,
            )
        return tuple(shape[:3])
    return tuple(shape)
