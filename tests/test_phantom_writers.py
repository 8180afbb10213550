"""Phantom writers: DICOM, NIfTI and PNG files that read back exactly, with matching geometry."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.pixels import apply_modality_lut

from medvl.data.phantom import (
    PatientIdentity,
    make_chest_ct,
    make_chest_radiograph,
    write_ct_dicom_series,
    write_nifti,
    write_png,
    write_radiograph_dicom,
    write_study_images,
)
from medvl.errors import ConfigError
from medvl.findings import Finding
from medvl.io import load_study

CT_SHAPE = (40, 36, 24)


@pytest.fixture(scope="module")
def ct_study():
    return make_chest_ct([Finding("nodule", "left", "upper", 20)], seed=9, shape=CT_SHAPE, spacing=(5.0, 6.0, 7.5))


@pytest.fixture(scope="module")
def radiograph_study():
    return make_chest_radiograph([Finding("pleural_effusion", "right")], seed=9, size=(120, 100))


def _dicom_ras_affine(datasets: list[pydicom.Dataset]) -> np.ndarray:
    """The RAS affine of a series, built from its headers as CONTEXT.md describes."""
    datasets = sorted(datasets, key=lambda ds: int(ds.InstanceNumber))
    orientation = np.array(datasets[0].ImageOrientationPatient, dtype=float)
    row_cosine, column_cosine = orientation[:3], orientation[3:]
    normal = np.cross(row_cosine, column_cosine)
    positions = np.array([ds.ImagePositionPatient for ds in datasets], dtype=float)
    slice_spacing = float(np.mean(np.diff(positions @ normal)))
    row_spacing, column_spacing = (float(v) for v in datasets[0].PixelSpacing)
    lps = np.eye(4)
    lps[:3, 0] = column_cosine * row_spacing
    lps[:3, 1] = row_cosine * column_spacing
    lps[:3, 2] = normal * slice_spacing
    lps[:3, 3] = positions[0]
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def test_ct_series_reads_back_exact_hu_and_geometry(tmp_path: Path, ct_study) -> None:
    view = ct_study.views[0]
    paths = write_ct_dicom_series(tmp_path / "ct", view, uid_seed="test-series", shuffle_names=True)
    assert sorted(p.name for p in (tmp_path / "ct").iterdir()) == sorted(p.name for p in paths)
    assert [p.name for p in paths] != sorted(p.name for p in paths)  # names do not follow slice order
    datasets = [pydicom.dcmread(p) for p in paths]
    assert [int(ds.InstanceNumber) for ds in datasets] == list(range(1, CT_SHAPE[2] + 1))
    volume = np.stack([apply_modality_lut(ds.pixel_array, ds) for ds in datasets], axis=-1)
    assert np.array_equal(volume, view.image)
    positions = np.array([ds.ImagePositionPatient for ds in datasets], dtype=float)
    assert np.allclose(np.diff(positions, axis=0), [0.0, 0.0, 7.5])  # inferior -> superior
    assert np.allclose(positions[0], view.origin)
    for ds in datasets:
        assert ds.SOPClassUID == pydicom.uid.CTImageStorage and ds.Modality == "CT"
        assert list(ds.ImageOrientationPatient) == [1, 0, 0, 0, 1, 0]
        assert [float(v) for v in ds.PixelSpacing] == [5.0, 6.0] and float(ds.SliceThickness) == 7.5
        assert float(ds.SpacingBetweenSlices) == 7.5 and int(ds.BitsStored) == 12
        assert ds.StudyInstanceUID == datasets[0].StudyInstanceUID
        assert ds.SeriesInstanceUID == datasets[0].SeriesInstanceUID
        assert ds.FrameOfReferenceUID == datasets[0].FrameOfReferenceUID
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert len({ds.SOPInstanceUID for ds in datasets}) == CT_SHAPE[2]
    assert np.allclose(_dicom_ras_affine(datasets), view.affine_ras)


def test_nifti_matches_the_dicom_geometry(tmp_path: Path, ct_study) -> None:
    view = ct_study.views[0]
    series = write_ct_dicom_series(tmp_path / "ct", view)
    write_nifti(tmp_path / "ct.nii.gz", view)
    image = nib.load(tmp_path / "ct.nii.gz")
    assert np.array_equal(np.asarray(image.dataobj), view.image)
    dicom_affine = _dicom_ras_affine([pydicom.dcmread(p, stop_before_pixels=True) for p in series])
    assert np.allclose(image.affine, dicom_affine)
    assert np.allclose(image.header.get_zooms(), (5.0, 6.0, 7.5))


def test_load_study_reads_dicom_series_and_nifti_identically(tmp_path: Path, ct_study) -> None:
    view = ct_study.views[0]
    write_ct_dicom_series(tmp_path / "ct", view, shuffle_names=True)
    write_nifti(tmp_path / "ct.nii.gz", view)
    from_dicom, from_nifti = load_study(tmp_path / "ct"), load_study(tmp_path / "ct.nii.gz")
    for study in (from_dicom, from_nifti):
        image = study.views[0].image
        assert np.array_equal(np.asarray(image[0]), view.image)
        assert np.allclose(np.asarray(image.affine), view.affine_ras)
    assert from_dicom.views[0].info.modality == "CT"


def test_radiograph_dicom_is_a_dx_image(tmp_path: Path, radiograph_study) -> None:
    identity = PatientIdentity(
        name="DOE^JANE",
        patient_id="P123",
        birth_date="19800229",
        sex="F",
        accession_number="A42",
        study_date="20240102",
    )
    frontal, lateral = radiograph_study.views
    write_radiograph_dicom(tmp_path / "f.dcm", frontal, identity=identity, uid_seed="s")
    write_radiograph_dicom(tmp_path / "l.dcm", lateral, identity=identity, uid_seed="s")
    f, lat = pydicom.dcmread(tmp_path / "f.dcm"), pydicom.dcmread(tmp_path / "l.dcm")
    assert f.SOPClassUID == pydicom.uid.DigitalXRayImageStorageForPresentation and f.Modality == "DX"
    assert (f.ViewPosition, lat.ViewPosition) == ("PA", "LL")
    assert list(f.PatientOrientation) == ["L", "F"] and list(lat.PatientOrientation) == ["P", "F"]
    assert f.PhotometricInterpretation == "MONOCHROME2" and f.BitsStored == 12 and f.BitsAllocated == 16
    spacing = [400.0 / 120] * 2  # the longer side spans 400 mm
    assert [float(v) for v in f.PixelSpacing] == [float(v) for v in f.ImagerPixelSpacing] == pytest.approx(spacing)
    assert np.array_equal(f.pixel_array, np.round(frontal.image * 4095).astype(np.uint16))
    assert (str(f.PatientName), f.PatientID, f.PatientBirthDate, f.PatientSex) == ("DOE^JANE", "P123", "19800229", "F")
    assert (f.AccessionNumber, f.StudyDate) == ("A42", "20240102")
    assert f.StudyInstanceUID == lat.StudyInstanceUID and f.SeriesInstanceUID != lat.SeriesInstanceUID
    again = tmp_path / "again.dcm"
    write_radiograph_dicom(again, frontal, identity=identity, uid_seed="s")
    assert again.read_bytes() == (tmp_path / "f.dcm").read_bytes()  # seeded UIDs: reproducible files
    default = tmp_path / "default.dcm"
    write_radiograph_dicom(default, frontal)
    assert str(pydicom.dcmread(default).PatientName) == "PHANTOM^ANONYMOUS"


def test_png_round_trips_at_8_and_16_bits(tmp_path: Path, radiograph_study) -> None:
    image = radiograph_study.views[0].image
    for bits, maximum in ((8, 255), (16, 65535)):
        path = write_png(tmp_path / f"frontal{bits}.png", image, bit_depth=bits)
        pixels = np.asarray(Image.open(path))
        assert pixels.shape == image.shape
        assert np.array_equal(pixels, np.round(image * maximum).astype(pixels.dtype))
    with pytest.raises(ConfigError, match="bit depth"):
        write_png(tmp_path / "x.png", image, bit_depth=12)


def test_load_study_reads_written_radiographs(tmp_path: Path, radiograph_study) -> None:
    for image_format, maximum in (("png", 255.0), ("dicom", 4095.0)):
        folder = tmp_path / image_format
        write_study_images(folder, radiograph_study, image_format=image_format)
        study = load_study(folder)
        assert [v.info.role for v in study.views] == ["frontal", "lateral"]
        for loaded, original in zip(study.views, radiograph_study.views):
            pixels = np.asarray(loaded.image[0]) / maximum
            assert pixels.shape == original.image.shape
            assert np.abs(pixels - original.image).max() <= 0.5 / maximum + 1e-6
    dicom_frontal = load_study(tmp_path / "dicom" / "frontal.dcm").views[0]
    assert dicom_frontal.info.spacing == pytest.approx(radiograph_study.views[0].spacing)
    assert dicom_frontal.info.view_position == "PA"


def test_writers_refuse_the_wrong_kind_of_view(tmp_path: Path, ct_study, radiograph_study) -> None:
    with pytest.raises(ConfigError, match="needs a CT view"):
        write_nifti(tmp_path / "x.nii.gz", radiograph_study.views[0])
    with pytest.raises(ConfigError, match="frontal or lateral"):
        write_radiograph_dicom(tmp_path / "x.dcm", ct_study.views[0])
    with pytest.raises(ConfigError, match="written as dicom or nifti"):
        write_study_images(tmp_path / "s", ct_study, image_format="png")
    with pytest.raises(ConfigError, match="unknown CT window"):
        write_ct_dicom_series(tmp_path / "ct", ct_study.views[0], window="bone")
