"""Helpers for the medvl.io tests: where the packaged DICOM files live, and DICOM files made from them."""

from __future__ import annotations

import random
from pathlib import Path

import data_store
import deid_data
import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

PYDICOM_DATA = Path(data_store.__file__).parent / "data"  # the pydicom-data package
DEID_DATA = Path(deid_data.__file__).parent / "data"  # the deid-data package

# An oblique plane: rows along (cos 30, sin 30, 0), columns tilted out of the axial plane.
OBLIQUE_ORIENTATION = (0.866025, 0.5, 0.0, -0.45, 0.779423, 0.43589)


def pydicom_test_file(name: str) -> Path:
    """A file from pydicom's own test data, e.g. ``CT_small.dcm`` (128x128 CT, int16)."""
    return Path(get_testdata_file(name))


def ct_small() -> Dataset:
    """A fresh copy of pydicom's CT_small.dcm."""
    return pydicom.dcmread(pydicom_test_file("CT_small.dcm"))


def normal_of(orientation: tuple[float, ...]) -> np.ndarray:
    """Unit slice normal (row cosine x column cosine) of an ImageOrientationPatient."""
    cosines = np.asarray(orientation, dtype=float)
    normal = np.cross(cosines[:3], cosines[3:])
    return normal / np.linalg.norm(normal)


def write_series(
    folder: Path,
    slices: int = 5,
    orientation: tuple[float, ...] = OBLIQUE_ORIENTATION,
    spacing: float = 2.5,
    series_uid: str | None = None,
    study_uid: str | None = None,
    seed: int = 0,
) -> list[Path]:
    """Write a CT series made from CT_small: one file per slice, under shuffled random names.

    Slice k sits at ``origin + k * spacing * normal`` and has its own rescale (slope 1 or 2,
    intercept -1024 + 10k), so each slice's values tell it apart. InstanceNumbers are
    shuffled too. Returns the paths in true slice order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    series_uid = series_uid or generate_uid()
    instance_numbers = rng.sample(range(1, slices + 1), slices)
    origin = np.array([-100.0, -80.0, 40.0])
    paths = []
    for k in range(slices):
        ds = ct_small()
        ds.SeriesInstanceUID = series_uid
        if study_uid:
            ds.StudyInstanceUID = study_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = instance_numbers[k]
        ds.ImageOrientationPatient = list(orientation)
        ds.ImagePositionPatient = [round(float(v), 6) for v in origin + k * spacing * normal_of(orientation)]
        ds.RescaleSlope = 1 + k % 2
        ds.RescaleIntercept = -1024 + 10 * k
        path = folder / f"{rng.getrandbits(40):010x}.dcm"
        ds.save_as(path)
        paths.append(path)
    return paths


def write_radiograph(path: Path, view_position: str, study_uid: str, series_uid: str | None = None) -> Path:
    """A single-image DX 'radiograph' (CT_small's pixels) with the given ViewPosition."""
    ds = ct_small()
    ds.Modality = "DX"
    ds.ViewPosition = view_position
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.SOPInstanceUID = generate_uid()
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient"):
        del ds[keyword]
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path)
    return path


def modality_values(path: Path) -> np.ndarray:
    """What pydicom makes of a file: its pixels through the modality LUT."""
    ds = pydicom.dcmread(path)
    return pydicom.pixels.apply_modality_lut(ds.pixel_array, ds)


def lps_position(affine: np.ndarray, index: tuple[int, int, int]) -> np.ndarray:
    """The LPS position of voxel ``index`` under a RAS affine."""
    ras = np.asarray(affine, dtype=float) @ np.array([*index, 1.0])
    return ras[:3] * np.array([-1.0, -1.0, 1.0])
