"""NIfTI and PNG/JPEG reading, and folders holding several views."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from io_fixtures import lps_position, write_radiograph
from PIL import Image
from pydicom.uid import generate_uid

from medvl.io import load_study
from medvl.io.raster import position_from_name

NIBABEL_DATA = Path(nib.__file__).parent / "tests" / "data"
LUMINANCE = np.array([0.299, 0.587, 0.114])
TECHNICAL_META = {"affine", "original_affine", "spatial_shape", "space", "original_channel_dim"}


# --- NIfTI ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["anatomical.nii", "standard.nii.gz", "reoriented_anat_moved.nii"])
def test_nifti_keeps_nibabel_order_affine_and_zooms(name: str) -> None:
    path = NIBABEL_DATA / name
    image = nib.load(path)
    study = load_study(str(path))
    (view,) = study.views
    assert tuple(view.image.shape) == (1, *image.shape)
    np.testing.assert_array_equal(view.image[0].numpy(), image.get_fdata(dtype=np.float32))
    np.testing.assert_allclose(view.image.affine.numpy(), image.affine)
    assert view.info.spacing == pytest.approx(image.header.get_zooms())
    assert view.info.source_format == "nifti" and view.info.spatial_dims == 3
    assert study.study_uid_hash is None
    assert set(view.image.meta) == TECHNICAL_META


def test_nifti_scaling_is_applied(tmp_path: Path) -> None:
    raw = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    image = nib.Nifti1Image(raw, np.diag([2.0, 3.0, 4.0, 1.0]))
    image.header.set_slope_inter(0.5, 10.0)
    nib.save(image, tmp_path / "scaled.nii.gz")
    view = load_study(tmp_path / "scaled.nii.gz").views[0]
    np.testing.assert_array_equal(view.image[0].numpy(), raw * 0.5 + 10.0)
    assert view.info.spacing == (2.0, 3.0, 4.0)


@pytest.mark.parametrize(
    ("shape", "view_shape"),
    [((5, 6), (5, 6)), ((5, 6, 1), (5, 6, 1)), ((5, 6, 7, 1), (5, 6, 7))],
)
def test_nifti_dimensions(tmp_path: Path, shape: tuple[int, ...], view_shape: tuple[int, ...]) -> None:
    data = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "image.nii")
    view = load_study(tmp_path / "image.nii").views[0]
    assert tuple(view.image.shape) == (1, *view_shape)
    assert view.info.spatial_dims == len(view_shape)
    np.testing.assert_array_equal(view.image[0].numpy(), data.reshape(view_shape))


# --- PNG / JPEG ---------------------------------------------------------------------------------


def test_png_8_and_16_bit_round_trip_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for name, pixels in (
        ("eight.png", rng.integers(0, 256, (30, 40), dtype=np.uint8)),
        ("sixteen.png", rng.integers(0, 65536, (30, 40), dtype=np.uint16)),
    ):
        Image.fromarray(pixels).save(tmp_path / name)
        view = load_study(tmp_path / name).views[0]
        assert tuple(view.image.shape) == (1, 30, 40)
        np.testing.assert_array_equal(view.image[0].numpy(), pixels.astype(np.float32))
        assert (view.info.source_format, view.info.spacing, view.info.size) == ("png", (1.0, 1.0), (30, 40))
        assert set(view.image.meta) == TECHNICAL_META


def test_colour_png_and_jpeg_become_luminance(tmp_path: Path) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "colour.png")
    np.testing.assert_allclose(
        load_study(tmp_path / "colour.png").views[0].image[0].numpy(), rgb @ LUMINANCE, atol=1e-3
    )
    Image.fromarray(np.dstack([rgb, np.full((20, 24), 7, np.uint8)])).save(tmp_path / "alpha.png")
    np.testing.assert_allclose(load_study(tmp_path / "alpha.png").views[0].image[0].numpy(), rgb @ LUMINANCE, atol=1e-3)

    Image.fromarray(rgb).save(tmp_path / "colour.jpg", quality=95)
    decoded = np.asarray(Image.open(tmp_path / "colour.jpg").convert("RGB"))
    view = load_study(tmp_path / "colour.jpg").views[0]
    assert view.info.source_format == "jpeg"
    np.testing.assert_allclose(view.image[0].numpy(), decoded @ LUMINANCE, atol=1e-3)


def test_grey_jpeg_matches_pil(tmp_path: Path) -> None:
    pixels = np.random.default_rng(2).integers(0, 256, (16, 16), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "grey.jpeg")
    expected = np.asarray(Image.open(tmp_path / "grey.jpeg"), dtype=np.float32)
    np.testing.assert_array_equal(load_study(tmp_path / "grey.jpeg").views[0].image[0].numpy(), expected)


def test_png_affine_is_that_of_a_dicom_radiograph_without_geometry(tmp_path: Path) -> None:
    Image.new("L", (8, 6)).save(tmp_path / "image.png")
    png_affine = load_study(tmp_path / "image.png").views[0].image.affine.numpy()
    ds = pydicom.dcmread(write_radiograph(tmp_path / "dx.dcm", "PA", generate_uid()))
    ds.PixelSpacing = [1, 1]
    ds.save_as(tmp_path / "dx.dcm")
    np.testing.assert_array_equal(png_affine, load_study(tmp_path / "dx.dcm").views[0].image.affine.numpy())
    # rows run along patient +Y (posterior), columns along +X (left): LPS (0, 1, 0) and (1, 0, 0)
    np.testing.assert_array_equal(lps_position(png_affine, (1, 0, 0)), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(lps_position(png_affine, (0, 1, 0)), [1.0, 0.0, 0.0])


@pytest.mark.parametrize(
    ("name", "position"),
    [
        ("cxr_PA.png", "PA"),
        ("0001-ap.jpg", "AP"),
        ("frontal.png", "FRONTAL"),
        ("study1_lat.png", "LATERAL"),
        ("Lateral view 2.jpeg", "LATERAL"),
        ("palace.png", None),
        ("apical.png", None),
        ("000001-12.png", None),
    ],
)
def test_view_position_from_file_name(name: str, position: str | None) -> None:
    assert position_from_name(Path(name)) == position


# --- folders of views -----------------------------------------------------------------------------


def test_folder_of_image_files_is_one_study_frontal_first(tmp_path: Path) -> None:
    Image.new("L", (10, 12), 1).save(tmp_path / "a_lateral.png")
    Image.new("L", (10, 12), 2).save(tmp_path / "b_scout.png")
    Image.new("L", (10, 12), 3).save(tmp_path / "c_pa.png")
    Image.new("L", (10, 12), 4).save(tmp_path / "d_ap.jpg")
    (tmp_path / "report.txt").write_text("findings: none\n")
    study = load_study(tmp_path)
    assert [view.info.view_position for view in study.views] == ["PA", "AP", "LATERAL", None]
    assert [float(view.image.max()) for view in study.views] == [3.0, 4.0, 1.0, 2.0]
    assert study.source == tmp_path and study.study_uid_hash is None


def test_folder_mixing_a_dicom_radiograph_and_a_png(tmp_path: Path) -> None:
    write_radiograph(tmp_path / "view.dcm", "LL", generate_uid())
    Image.new("L", (10, 12)).save(tmp_path / "frontal.png")
    study = load_study(tmp_path)
    assert [view.info.source_format for view in study.views] == ["png", "dicom"]
    assert study.study_uid_hash is not None
