"""Every bad input raises one medvl error: the right class, one line, naming the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from io_fixtures import PYDICOM_DATA, ct_small, pydicom_test_file, write_series
from PIL import Image

from medvl.errors import (
    InvalidImageError,
    MedVLError,
    MixedSeriesError,
    NoPixelDataError,
    NotDicomError,
    ScanError,
    ScanNotFoundError,
    TruncatedFileError,
    UnsupportedFormatError,
    UnsupportedTransferSyntaxError,
)
from medvl.io import load_study
from medvl.io.loader import load_studies


def raises(error: type[MedVLError], path: Path, match: str = "", **options: object) -> str:
    """Load ``path``, check the error class and that its one-line message names the file."""
    with pytest.raises(error, match=match) as caught:
        load_study(path, **options)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def cut(source: Path, target: Path, size: int) -> Path:
    target.write_bytes(source.read_bytes()[:size])
    return target


def test_missing_path(tmp_path: Path) -> None:
    raises(ScanNotFoundError, tmp_path / "nowhere.dcm", "no such file")


def test_text_file_named_dcm_is_not_dicom(tmp_path: Path) -> None:
    path = tmp_path / "scan.dcm"
    path.write_text("patient scan, honest\n" * 20)
    raises(NotDicomError, path, "DICM")


def test_dicom_without_preamble_is_not_read_without_force() -> None:
    raises(NotDicomError, PYDICOM_DATA / "OT-PAL-8-face.dcm")


def test_truncated_pixel_data(tmp_path: Path) -> None:
    source = pydicom_test_file("CT_small.dcm")
    raises(TruncatedFileError, cut(source, tmp_path / "half.dcm", source.stat().st_size // 2), "pixel data")
    raises(TruncatedFileError, pydicom_test_file("MR_truncated.dcm"), "truncated")


def test_truncated_compressed_pixel_data(tmp_path: Path) -> None:
    source = pydicom_test_file("MR_small_jp2klossless.dcm")
    raises(TruncatedFileError, cut(source, tmp_path / "half.dcm", source.stat().st_size // 2), "pixel data")
    raises(TruncatedFileError, PYDICOM_DATA / "emri_small_jpeg_2k_lossless_too_short.dcm")


def test_truncated_header(tmp_path: Path) -> None:
    source = pydicom_test_file("CT_small.dcm")
    uid_offset = pydicom.dcmread(source).get_item("StudyInstanceUID").value_tell
    raises(TruncatedFileError, cut(source, tmp_path / "head.dcm", uid_offset + 5), "header")
    raises(TruncatedFileError, cut(source, tmp_path / "meta.dcm", 200))


def test_no_pixel_data(tmp_path: Path) -> None:
    raises(NoPixelDataError, pydicom_test_file("test-SR.dcm"), "SR")
    ds = ct_small()
    del ds.PixelData
    ds.save_as(tmp_path / "no_pixels.dcm")
    raises(NoPixelDataError, tmp_path / "no_pixels.dcm", "CT Image Storage")
    raises(NoPixelDataError, pydicom_test_file("DICOMDIR"), "Directory")


@pytest.mark.parametrize(
    ("uid", "named"),
    [
        ("1.2.3.4", "1.2.3.4"),  # a made-up syntax
        ("1.2.840.10008.1.2.4.100", "MPEG2"),  # a real syntax no installed plugin decodes
    ],
)
def test_undecodable_transfer_syntax(tmp_path: Path, uid: str, named: str) -> None:
    ds = ct_small()
    ds.file_meta.TransferSyntaxUID = uid
    ds.PixelData = pydicom.encaps.encapsulate([ds.PixelData])
    ds.save_as(tmp_path / "odd.dcm", implicit_vr=False, little_endian=True)
    raises(UnsupportedTransferSyntaxError, tmp_path / "odd.dcm", named)


def test_corrupt_compressed_pixel_data(tmp_path: Path) -> None:
    ds = pydicom.dcmread(pydicom_test_file("MR_small_jp2klossless.dcm"))
    ds.PixelData = pydicom.encaps.encapsulate([b"\xff\x4f\xff\x51" + b"\x00" * 64])
    ds.save_as(tmp_path / "corrupt.dcm")
    raises(InvalidImageError, tmp_path / "corrupt.dcm", "cannot decode")


def test_mixed_series_uneven_spacing(tmp_path: Path) -> None:
    paths = write_series(tmp_path, slices=5)
    paths[2].unlink()  # a missing slice
    raises(MixedSeriesError, tmp_path, "uneven spacing")


def test_mixed_series_duplicate_positions(tmp_path: Path) -> None:
    paths = write_series(tmp_path, slices=3)
    shutil.copy(paths[1], tmp_path / "copy.dcm")
    raises(MixedSeriesError, tmp_path, "share a position")


def test_mixed_series_orientation_and_size(tmp_path: Path) -> None:
    paths = write_series(tmp_path / "tilted", slices=3)
    ds = pydicom.dcmread(paths[1])
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.save_as(paths[1])
    raises(MixedSeriesError, tmp_path / "tilted", "ImageOrientationPatient differs")

    paths = write_series(tmp_path / "resized", slices=3)
    ds = pydicom.dcmread(paths[2])
    ds.PixelData = ds.pixel_array[:64].tobytes()
    ds.Rows = 64
    ds.save_as(paths[2])
    raises(MixedSeriesError, tmp_path / "resized", "size")


def test_empty_images(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    raises(InvalidImageError, tmp_path / "empty.png", "empty")
    ds = ct_small()
    ds.Rows = 0
    ds.save_as(tmp_path / "no_rows.dcm")
    raises(InvalidImageError, tmp_path / "no_rows.dcm", "empty image")


def test_nan_and_infinite_pixels(tmp_path: Path) -> None:
    data = np.zeros((4, 5, 6), dtype=np.float32)
    data[0, 0, :2] = np.nan
    data[1, 1, 1] = np.inf
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "nan.nii.gz")
    raises(InvalidImageError, tmp_path / "nan.nii.gz", "3 of 120 pixel values are NaN or infinite")


def test_absurd_dimensions_refused_before_allocating(tmp_path: Path) -> None:
    ds = ct_small()
    ds.Rows, ds.Columns = 65535, 65535
    ds.save_as(tmp_path / "huge.dcm")
    raises(InvalidImageError, tmp_path / "huge.dcm", "exceeds the limit")

    ds = pydicom.dcmread(pydicom_test_file("emri_small.dcm"))
    ds.NumberOfFrames = 2**20
    ds.save_as(tmp_path / "frames.dcm")
    raises(InvalidImageError, tmp_path / "frames.dcm", "exceeds the limit")

    header = nib.Nifti1Header()  # a header promising 4096^3 voxels, and no data
    header.set_data_shape((4096, 4096, 4096))
    with (tmp_path / "huge.nii").open("wb") as file:
        header.write_to(file)
        file.write(b"\0" * 4)  # no extensions
    raises(InvalidImageError, tmp_path / "huge.nii", "exceeds the limit")


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "scan.bmp"
    Image.new("L", (4, 4)).save(path)
    raises(UnsupportedFormatError, path, "unsupported file type")


def test_broken_png_jpeg_and_nifti(tmp_path: Path) -> None:
    (tmp_path / "text.png").write_text("not a picture")
    raises(InvalidImageError, tmp_path / "text.png", "PNG or JPEG")
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "full.png")
    cut(tmp_path / "full.png", tmp_path / "cut.png", (tmp_path / "full.png").stat().st_size // 2)
    raises(TruncatedFileError, tmp_path / "cut.png", "truncated")
    (tmp_path / "text.nii").write_text("not a volume" * 40)
    raises(InvalidImageError, tmp_path / "text.nii", "NIfTI")
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), dtype=np.int16), np.eye(4)), tmp_path / "full.nii")
    cut(tmp_path / "full.nii", tmp_path / "cut.nii", 400)
    raises(TruncatedFileError, tmp_path / "cut.nii", "incomplete")


def test_unusable_nifti_shapes(tmp_path: Path) -> None:
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 3, 2), dtype=np.int16), np.eye(4)), tmp_path / "two.nii.gz")
    raises(UnsupportedFormatError, tmp_path / "two.nii.gz", "2 volumes")
    nib.save(nib.Nifti1Image(np.zeros(7, dtype=np.int16), np.eye(4)), tmp_path / "line.nii")
    raises(UnsupportedFormatError, tmp_path / "line.nii", "not an image")
    cifti = Path(nib.__file__).parent / "tests" / "data" / "row_major.dconn.nii"
    raises(UnsupportedFormatError, cifti, "Cifti2Image")


def test_folders_without_images(tmp_path: Path) -> None:
    raises(ScanNotFoundError, tmp_path, "no DICOM")
    (tmp_path / "README.txt").write_text("nothing here\n")
    shutil.copy(pydicom_test_file("DICOMDIR"), tmp_path / "DICOMDIR")
    raises(ScanNotFoundError, tmp_path, "no DICOM")


def test_series_uid_misuse(tmp_path: Path) -> None:
    write_series(tmp_path / "series", slices=3)
    raises(ScanNotFoundError, tmp_path / "series", "1.2.3.4.5 is not in this folder", series_uid="1.2.3.4.5")
    raises(ScanError, pydicom_test_file("CT_small.dcm"), "single file", series_uid="1.2.3")


def test_batch_goes_on_past_bad_studies(tmp_path: Path) -> None:
    (tmp_path / "bad.dcm").write_text("not DICOM")
    good = pydicom_test_file("CT_small.dcm")
    studies, failures = load_studies([good, tmp_path / "bad.dcm", tmp_path / "missing", good])
    assert [study.source for study in studies] == [good, good]
    assert [(path, type(error)) for path, error in failures] == [
        (tmp_path / "bad.dcm", NotDicomError),
        (tmp_path / "missing", ScanNotFoundError),
    ]
