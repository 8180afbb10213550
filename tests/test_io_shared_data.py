"""Real DICOM series and radiographs from ../shared/data (skipped where that folder is absent)."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from io_fixtures import lps_position, modality_values, normal_of
from PIL import Image

from medvl.io import load_study

pytestmark = pytest.mark.shared_data

SERIES = {"mr_t1_sagittal_series": 35, "ct_3slice_series": 3, "mr_adc_20slice_series": 20}


def shuffled_copy(folder: Path, target: Path, seed: int = 0) -> Path:
    """Copy a series under random names, so that name order says nothing about slice order."""
    target.mkdir()
    rng = random.Random(seed)
    for path in sorted(folder.glob("*.dcm")):
        shutil.copy(path, target / f"{rng.getrandbits(48):012x}.dcm")
    return target


def sorted_along_normal(folder: Path) -> list[tuple[Path, pydicom.Dataset]]:
    headers = [(path, pydicom.dcmread(path, stop_before_pixels=True)) for path in folder.glob("*.dcm")]
    normal = normal_of(tuple(float(v) for v in headers[0][1].ImageOrientationPatient))
    return sorted(headers, key=lambda item: np.array(item[1].ImagePositionPatient, dtype=float) @ normal)


@pytest.mark.parametrize("name", list(SERIES))
def test_series_geometry_order_and_values(shared_data: Path, tmp_path: Path, name: str) -> None:
    folder = shuffled_copy(shared_data / "dicom" / name, tmp_path / name)
    slices = sorted_along_normal(folder)
    first = slices[0][1]
    view = load_study(folder).views[0]

    assert len(slices) == SERIES[name]
    assert tuple(view.image.shape) == (1, first.Rows, first.Columns, SERIES[name])
    positions = np.array([header.ImagePositionPatient for _, header in slices], dtype=float)
    gaps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
    assert view.info.spacing[:2] == pytest.approx([float(v) for v in first.PixelSpacing])
    assert view.info.spacing[2] == pytest.approx(np.median(gaps), rel=1e-4)

    affine = view.image.affine.numpy()
    for k, (path, _) in enumerate(slices):
        np.testing.assert_allclose(lps_position(affine, (0, 0, k)), positions[k], atol=0.01)  # DS precision
        np.testing.assert_array_equal(view.image[0, :, :, k].numpy(), modality_values(path))
    step = lps_position(affine, (0, 0, 1)) - lps_position(affine, (0, 0, 0))
    assert step @ normal_of(tuple(float(v) for v in first.ImageOrientationPatient)) > 0


def test_series_keeps_patient_identity_out(shared_data: Path) -> None:
    folder = shared_data / "dicom" / "mr_t1_sagittal_series"
    header = pydicom.dcmread(next(folder.glob("*.dcm")), stop_before_pixels=True)
    identifiers = [str(header.get(keyword) or "") for keyword in ("PatientName", "PatientBirthDate", "PatientID")]
    identifiers = [value for value in identifiers if len(value) > 3]
    assert len(identifiers) >= 2  # the header does carry a name and a birth date
    study = load_study(folder)
    text = repr(study) + json.dumps(study.summary()) + repr(study.views[0].image.meta)
    for value in [*identifiers, str(header.StudyInstanceUID)]:
        assert value not in text


def test_segmentation_shares_the_geometry_of_its_ct(shared_data: Path) -> None:
    ct = load_study(shared_data / "dicom" / "ct_3slice_series").views[0]
    seg = load_study(shared_data / "dicom" / "ct_3slice_liver_seg.dcm").views[0]
    assert seg.info.source_format == "dicom-multiframe"
    assert seg.info.size == ct.info.size
    np.testing.assert_allclose(seg.image.affine.numpy(), ct.image.affine.numpy(), atol=1e-3)
    assert set(np.unique(seg.image.numpy())) <= {0.0, 1.0}


def test_real_radiograph_png(shared_data: Path) -> None:
    path = sorted((shared_data / "covid_cxr" / "images").glob("*.png"))[0]
    pixels = np.asarray(Image.open(path), dtype=np.float32)
    view = load_study(path).views[0]
    assert tuple(view.image.shape) == (1, *pixels.shape)
    np.testing.assert_array_equal(view.image[0].numpy(), pixels)
    assert view.info.source_format == "png"
