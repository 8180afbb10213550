"""DICOM reading: every pydicom-data and deid-data file, pixel semantics, multi-frame, series folders."""

from __future__ import annotations

import functools
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from io_fixtures import (
    DEID_DATA,
    PYDICOM_DATA,
    ct_small,
    lps_position,
    modality_values,
    normal_of,
    pydicom_test_file,
    write_radiograph,
    write_series,
)
from pydicom.pixels import apply_color_lut, apply_modality_lut
from pydicom.uid import generate_uid

from medvl.errors import MedVLError, MixedSeriesError, ScanNotFoundError
from medvl.io import load_study
from medvl.privacy import hash_identifier

PYDICOM_DATA_FILES = sorted(PYDICOM_DATA.glob("*.dcm"))
DEID_DATA_FILES = sorted(DEID_DATA.rglob("*.dcm"))
LUMINANCE = np.array([0.299, 0.587, 0.114])


@functools.cache
def pydicom_decodes(path: Path) -> bool:
    """True if pydicom reads the file (without force) and decodes all its pixel data."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path)
            pydicom.pixels.pixel_array(ds, as_rgb=False)  # as ds.pixel_array, minus YBR->RGB
    except Exception:
        return False
    return True


def header_shape(ds: pydicom.Dataset) -> tuple[int, ...]:
    frames = int(ds.get("NumberOfFrames") or 1)
    return (ds.Rows, ds.Columns) + ((frames,) if frames > 1 else ())


def header_pixel_spacing(ds: pydicom.Dataset) -> tuple[float, float]:
    """PixelSpacing (top level or Enhanced shared group), else ImagerPixelSpacing, else 1 mm."""
    shared = ds.get("SharedFunctionalGroupsSequence")
    measures = shared[0].get("PixelMeasuresSequence") if shared else None
    candidates = [ds.get("PixelSpacing"), measures[0].get("PixelSpacing") if measures else None]
    for value in [*candidates, ds.get("ImagerPixelSpacing")]:
        if value and len(value) == 2 and all(float(v) > 0 for v in value):
            return float(value[0]), float(value[1])
    return 1.0, 1.0


def check_loads_like_pydicom(path: Path) -> None:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    study = load_study(path)
    (view,) = study.views
    assert tuple(view.image.shape) == (1, *header_shape(ds))
    assert view.image.dtype == np.float32 or str(view.image.dtype) == "torch.float32"
    assert view.info.size == header_shape(ds)
    assert view.info.spacing[:2] == pytest.approx(header_pixel_spacing(ds))
    assert view.info.source_format == ("dicom-multiframe" if len(header_shape(ds)) == 3 else "dicom")
    assert study.study_uid_hash == hash_identifier(str(ds.StudyInstanceUID))


@pytest.mark.parametrize("path", PYDICOM_DATA_FILES, ids=lambda p: p.name)
def test_pydicom_data_file_loads_if_pydicom_decodes_it(path: Path) -> None:
    if pydicom_decodes(path):
        check_loads_like_pydicom(path)
    else:
        with pytest.raises(MedVLError) as caught:
            load_study(path)
        assert str(path) in str(caught.value)


def test_pydicom_data_files_pydicom_cannot_decode_are_refused_for_a_reason() -> None:
    refused = {}
    for path in (path for path in PYDICOM_DATA_FILES if not pydicom_decodes(path)):
        with pytest.raises(MedVLError) as caught:
            load_study(path)
        refused[path.name] = type(caught.value).__name__
    print(f"\n{len(PYDICOM_DATA_FILES) - len(refused)} pydicom-data files load; refused: {refused}")
    assert refused == {
        "OT-PAL-8-face.dcm": "NotDicomError",  # no preamble/'DICM': pydicom reads it only with force=True
        "emri_small_jpeg_2k_lossless_too_short.dcm": "TruncatedFileError",  # pixel data cut off
    }


@pytest.mark.parametrize("path", DEID_DATA_FILES, ids=lambda p: str(p.relative_to(DEID_DATA)))
def test_deid_data_file_loads(path: Path) -> None:
    assert pydicom_decodes(path)
    check_loads_like_pydicom(path)


def test_deid_data_greyscale_cine_from_zip_keeps_frame_order(tmp_path: Path) -> None:
    with zipfile.ZipFile(DEID_DATA / "ultrasounds" / "GREYSCALE_CINE.zip") as archive:
        path = Path(archive.extract("GREYSCALE_CINE.dcm", tmp_path))
    ds = pydicom.dcmread(path)
    volume = load_study(path).views[0].image[0].numpy()
    frames = ds.pixel_array if ds.SamplesPerPixel == 1 else ds.pixel_array @ LUMINANCE
    assert volume.shape == (ds.Rows, ds.Columns, int(ds.NumberOfFrames))
    np.testing.assert_allclose(volume, np.moveaxis(frames, 0, -1), atol=1e-3)


# --- pixel semantics ---------------------------------------------------------------------------


def test_ct_values_are_hounsfield_units_and_affine_matches_header() -> None:
    path = pydicom_test_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    view = load_study(path).views[0]
    np.testing.assert_array_equal(view.image[0].numpy(), modality_values(path))
    assert view.info.modality == "CT"
    affine = view.image.affine.numpy()
    row_spacing, column_spacing = (float(v) for v in ds.PixelSpacing)
    iop = np.array(ds.ImageOrientationPatient, dtype=float)
    np.testing.assert_allclose(lps_position(affine, (0, 0, 0)), np.array(ds.ImagePositionPatient, dtype=float))
    # one row down moves along the column cosine, one column right along the row cosine
    np.testing.assert_allclose(lps_position(affine, (1, 0, 0)) - lps_position(affine, (0, 0, 0)), iop[3:] * row_spacing)
    np.testing.assert_allclose(
        lps_position(affine, (0, 1, 0)) - lps_position(affine, (0, 0, 0)), iop[:3] * column_spacing
    )


def test_monochrome1_is_mirrored_over_the_stored_range_with_its_window() -> None:
    path = PYDICOM_DATA / "RG3_UNCR.dcm"  # MONOCHROME1 CR, BitsStored 10, window 550/1024
    ds = pydicom.dcmread(path)
    view = load_study(path).views[0]
    highest = 2**ds.BitsStored - 1
    np.testing.assert_array_equal(view.image[0].numpy(), highest - ds.pixel_array.astype(np.float32))
    assert view.info.photometric == "MONOCHROME1"
    assert view.info.window == (highest - float(ds.WindowCenter), float(ds.WindowWidth))


def test_modality_lut_sequence_is_applied() -> None:
    path = PYDICOM_DATA / "mlut_18.dcm"
    ds = pydicom.dcmread(path)
    assert "ModalityLUTSequence" in ds
    np.testing.assert_array_equal(load_study(path).views[0].image[0].numpy(), apply_modality_lut(ds.pixel_array, ds))


def test_rgb_becomes_luminance() -> None:
    path = PYDICOM_DATA / "SC_rgb.dcm"
    ds = pydicom.dcmread(path)
    view = load_study(path).views[0]
    np.testing.assert_allclose(view.image[0].numpy(), ds.pixel_array @ LUMINANCE, atol=1e-3)


def test_ybr_luminance_matches_the_rgb_version_of_the_same_image() -> None:
    rgb = load_study(PYDICOM_DATA / "US1_UNCR.dcm").views[0].image[0].numpy()
    lossless = load_study(PYDICOM_DATA / "US1_J2KR.dcm").views[0].image[0].numpy()  # JPEG 2000, YBR_RCT
    np.testing.assert_allclose(lossless, rgb, atol=1e-3)
    lossy = load_study(PYDICOM_DATA / "US1_J2KI.dcm").views[0].image[0].numpy()  # JPEG 2000, YBR_ICT
    assert np.abs(lossy - rgb).mean() < 3.0
    ycbcr = pydicom.dcmread(PYDICOM_DATA / "SC_ybr_full_uncompressed.dcm")
    expected = ycbcr.pixel_array @ LUMINANCE  # pydicom converts YBR_FULL to RGB
    luma = load_study(PYDICOM_DATA / "SC_ybr_full_uncompressed.dcm").views[0].image[0].numpy()
    assert np.abs(luma - expected).max() <= 2.0  # Y is the luminance, up to 8-bit rounding


def test_palette_colour_becomes_luminance() -> None:
    path = PYDICOM_DATA / "OBXXXX1A.dcm"
    ds = pydicom.dcmread(path)
    expected = apply_color_lut(ds.pixel_array, ds) @ LUMINANCE
    np.testing.assert_allclose(load_study(path).views[0].image[0].numpy(), expected, rtol=1e-5)


def test_compressed_transfer_syntaxes_decode_to_the_uncompressed_pixels() -> None:
    reference = load_study(PYDICOM_DATA / "emri_small.dcm").views[0].image
    for name in (
        "emri_small_RLE.dcm",
        "emri_small_big_endian.dcm",
        "emri_small_jpeg_2k_lossless.dcm",
        "emri_small_jpeg_ls_lossless.dcm",
    ):
        assert bool((load_study(PYDICOM_DATA / name).views[0].image == reference).all()), name
    for compressed, uncompressed in (("693_J2KR.dcm", "693_UNCR.dcm"), ("MR2_J2KR.dcm", "MR2_UNCR.dcm")):
        reference = load_study(PYDICOM_DATA / uncompressed).views[0].image
        assert bool((load_study(PYDICOM_DATA / compressed).views[0].image == reference).all()), compressed


def test_deflated_transfer_syntax() -> None:
    path = pydicom_test_file("image_dfl.dcm")
    np.testing.assert_array_equal(load_study(path).views[0].image[0].numpy(), modality_values(path))


def test_window_is_the_first_of_several_header_values(tmp_path: Path) -> None:
    ds = ct_small()
    ds.WindowCenter = [40, 400]
    ds.WindowWidth = [350, 2000]
    ds.save_as(tmp_path / "ct.dcm")
    assert load_study(tmp_path / "ct.dcm").views[0].info.window == (40.0, 350.0)


def test_detected_by_content_whatever_the_name(tmp_path: Path) -> None:
    for name in ("scan", "scan.png", "scan.txt"):
        shutil.copy(pydicom_test_file("CT_small.dcm"), tmp_path / name)
        assert load_study(tmp_path / name).views[0].info.source_format == "dicom"


def test_view_metadata_is_technical_only(tmp_path: Path) -> None:
    ds = ct_small()
    ds.BodyPartExamined = "chest"
    ds.ViewPosition = "AP"
    ds.save_as(tmp_path / "ct.dcm")
    study = load_study(tmp_path / "ct.dcm")
    info = study.views[0].info
    assert (info.modality, info.body_part, info.view_position, info.role) == ("CT", "CHEST", "AP", "frontal")
    assert study.study_uid_hash == hash_identifier(ds.StudyInstanceUID)
    assert set(study.views[0].image.meta) == {
        "affine",
        "original_affine",
        "spatial_shape",
        "space",
        "original_channel_dim",
    }
    text = repr(study) + repr(study.summary()) + repr(study.views[0].image.meta)
    for identifier in (str(ds.PatientName), str(ds.PatientID), str(ds.StudyInstanceUID), str(ds.SOPInstanceUID)):
        assert identifier not in text


# --- multi-frame -----------------------------------------------------------------------------------


def test_enhanced_multiframe_sorted_along_normal_with_per_frame_geometry_and_rescale() -> None:
    path = PYDICOM_DATA / "eCT_Supplemental.dcm"  # 2 frames stored top (-149) after bottom (-159)
    ds = pydicom.dcmread(path)
    view = load_study(path).views[0]
    positions = [
        np.array(f.PlanePositionSequence[0].ImagePositionPatient, dtype=float)
        for f in ds.PerFrameFunctionalGroupsSequence
    ]
    iop = ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient
    normal = normal_of(tuple(float(v) for v in iop))
    order = np.argsort([p @ normal for p in positions])
    assert list(order) == [1, 0]
    transform = ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
    expected = np.moveaxis(
        ds.pixel_array[order] * float(transform.RescaleSlope) + float(transform.RescaleIntercept), 0, -1
    )
    np.testing.assert_array_equal(view.image[0].numpy(), expected)
    affine = view.image.affine.numpy()
    for k, frame in enumerate(order):
        np.testing.assert_allclose(lps_position(affine, (0, 0, k)), positions[frame], atol=1e-4)
    assert view.info.spacing == pytest.approx((0.388672, 0.388672, 10.0))
    assert view.info.window == (49.0, 102.0)  # from the shared FrameVOILUTSequence


def test_cine_multiframe_keeps_frame_order_and_header_spacing() -> None:
    path = PYDICOM_DATA / "emri_small.dcm"
    ds = pydicom.dcmread(path)
    view = load_study(path).views[0]
    np.testing.assert_array_equal(view.image[0].numpy(), np.moveaxis(ds.pixel_array, 0, -1))
    assert view.info.spacing[2] == pytest.approx(float(ds.get("SpacingBetweenSlices") or ds.SliceThickness))


# --- series folders ----------------------------------------------------------------------------------


def test_series_folder_is_ordered_along_the_oblique_normal_not_by_name(tmp_path: Path) -> None:
    ordered = write_series(tmp_path / "series", slices=6, spacing=2.5)
    view = load_study(tmp_path / "series").views[0]
    assert tuple(view.image.shape) == (1, 128, 128, 6)
    assert view.info.source_format == "dicom-series"
    assert view.info.spacing == pytest.approx((0.661468, 0.661468, 2.5), abs=1e-5)
    affine = view.image.affine.numpy()
    for k, path in enumerate(ordered):
        ds = pydicom.dcmread(path)
        np.testing.assert_allclose(
            lps_position(affine, (0, 0, k)), np.array(ds.ImagePositionPatient, dtype=float), atol=1e-4
        )
        np.testing.assert_array_equal(view.image[0, :, :, k].numpy(), modality_values(path))  # per-slice rescale


def test_series_folder_skips_files_that_are_not_images(tmp_path: Path) -> None:
    write_series(tmp_path, slices=3)
    shutil.copy(pydicom_test_file("DICOMDIR"), tmp_path / "DICOMDIR")
    shutil.copy(pydicom_test_file("test-SR.dcm"), tmp_path / "report.dcm")
    (tmp_path / "LICENSE").write_text("BSD\n")
    (tmp_path / "notes.txt").write_text("not an image\n")
    assert load_study(tmp_path).views[0].image.shape[-1] == 3


def test_two_volume_series_need_series_uid(tmp_path: Path) -> None:
    study_uid = generate_uid()
    first, second = generate_uid(), generate_uid()
    write_series(tmp_path, slices=4, series_uid=first, study_uid=study_uid, seed=1)
    write_series(tmp_path, slices=3, series_uid=second, study_uid=study_uid, seed=2)
    with pytest.raises(MixedSeriesError) as caught:
        load_study(tmp_path)
    message = str(caught.value)
    assert str(tmp_path) in message
    assert f"{first} (CT, 4 files, " in message and f"{second} (CT, 3 files, " in message
    assert str(ct_small().PatientName) not in message and str(ct_small().PatientID) not in message
    assert load_study(tmp_path, series_uid=second).views[0].image.shape[-1] == 3
    assert load_study(tmp_path, series_uid=first).views[0].image.shape[-1] == 4
    with pytest.raises(ScanNotFoundError, match=first):
        load_study(tmp_path, series_uid="1.2.3.999")


def test_frontal_and_lateral_radiographs_make_a_two_view_study(tmp_path: Path) -> None:
    study_uid = generate_uid()
    write_radiograph(tmp_path / "a_first_by_name.dcm", "LL", study_uid)
    write_radiograph(tmp_path / "b_second_by_name.dcm", "PA", study_uid)
    study = load_study(tmp_path)
    assert [view.info.view_position for view in study.views] == ["PA", "LL"]
    assert [view.info.role for view in study.views] == ["frontal", "lateral"]
    assert study.study_uid_hash == hash_identifier(study_uid)
    assert study.spatial_dims == 2 and study.modality == "DX"


def test_views_from_different_studies_are_refused(tmp_path: Path) -> None:
    write_radiograph(tmp_path / "pa.dcm", "PA", generate_uid())
    write_radiograph(tmp_path / "lat.dcm", "LL", generate_uid())
    with pytest.raises(MixedSeriesError, match="different studies"):
        load_study(tmp_path)


def test_study_folder_with_one_series_per_subfolder(tmp_path: Path) -> None:
    study_uid = generate_uid()
    write_series(tmp_path / "SE1", slices=3, study_uid=study_uid)
    write_radiograph(tmp_path / "SE2" / "scout.dcm", "AP", study_uid)
    (tmp_path / "empty").mkdir()
    study = load_study(tmp_path)
    assert [view.info.spatial_dims for view in study.views] == [2, 3]  # the AP (frontal) view first
    assert study.source == tmp_path
