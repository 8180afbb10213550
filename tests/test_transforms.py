"""MONAI transforms: intensity scaling, shapes in 2D and 3D, masks through augmentation, geometry."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import (
    Flip,
    Flipd,
    RandAxisFlipd,
    RandFlipd,
    RandRotate90d,
    Rotate90d,
    ScaleIntensityRange,
    ScaleIntensityRangePercentiles,
)
from PIL import Image

import medvl.data.transforms as transforms
from medvl.data.transforms import (
    WINDOW_PRESETS,
    TransformConfig,
    build_transforms,
    intensity_scaler,
    restore_original_grid,
    study_error,
    to_original_index,
)
from medvl.errors import ConfigError, InvalidImageError, ManifestError
from medvl.io.study import Study, View, ViewInfo

STRONG_AUGMENT = {"prob": 1.0, "rotate_degrees": 15.0, "scale": 0.15, "translate": 0.1}


def make_view(array, modality="DX", position="PA", window=None, spacing=None, affine=None) -> View:
    """A view as medvl.io returns it: channel-first float32 MetaTensor with a 4x4 affine."""
    array = np.asarray(array, dtype=np.float32)
    spacing = spacing or (1.0,) * array.ndim
    if affine is None:
        affine = np.eye(4)
        affine[: array.ndim, : array.ndim] = np.diag(spacing)
    image = MetaTensor(torch.from_numpy(array)[None], affine=torch.as_tensor(affine, dtype=torch.float64))
    info = ViewInfo(
        "dicom", array.ndim, array.shape, tuple(spacing), modality=modality, view_position=position, window=window
    )
    return View(image, info)


@pytest.fixture
def studies(monkeypatch: pytest.MonkeyPatch) -> dict[str, Study]:
    """Paths -> hand-made studies, served by the name LoadStudyd calls."""
    known: dict[str, Study] = {}
    monkeypatch.setattr(transforms, "load_study", lambda path: known[str(path)])
    return known


def run(config: TransformConfig, images: list[str], train: bool = False, seed: int = 0, **item) -> dict:
    pipeline = build_transforms(config, train=train)
    pipeline.set_random_state(seed)
    return pipeline({"study_id": "s1", "images": images, **item})


def centroid(array) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    return (np.argwhere(array > 0) * array[array > 0][:, None]).sum(0) / array[array > 0].sum()


# --------------------------------------------------------------------------- intensity


def test_lung_window_maps_minus_600_hu_to_one_half(studies):
    volume = np.full((24, 24, 8), -600.0)
    volume[0, 0, 0], volume[0, 1, 0] = -3000.0, 3000.0  # clipped to 0 and 1
    studies["ct"] = Study((make_view(volume, modality="CT", position=None),), "ct")
    config = TransformConfig(spatial_dims=3, image_size=(24, 24, 8), max_views=1, window="lung")

    image = run(config, ["ct"])["image"][0, 0]

    assert image[12, 12, 4].item() == pytest.approx(0.5, abs=1e-6)
    assert image.min().item() == 0.0 and image.max().item() == 1.0


def test_window_presets_are_center_and_width_in_hu():
    assert WINDOW_PRESETS["lung"] == (-600.0, 1500.0)
    assert WINDOW_PRESETS["mediastinum"] == (40.0, 400.0)
    scaler = intensity_scaler("window", "mediastinum", (0.5, 99.5), {"modality": "CT"})
    values = scaler(torch.tensor([[-160.0, 40.0, 240.0, 1000.0]]))
    assert values[0].tolist() == pytest.approx([0.0, 0.5, 1.0, 1.0])


def test_percentile_scaling_puts_the_upper_percentile_at_one(studies):
    rng = np.random.default_rng(0)
    radiograph = rng.gamma(2.0, 500.0, size=(32, 32))
    studies["cr"] = Study((make_view(radiograph, modality="CR"),), "cr")
    config = TransformConfig(image_size=32, max_views=1, percentiles=(0.5, 99.5))

    image = run(config, ["cr"])["image"][0, 0].numpy()

    low, high = np.percentile(radiograph, [0.5, 99.5])
    assert np.allclose(image, np.clip((radiograph - low) / (high - low), 0, 1), atol=1e-5)
    assert image[radiograph >= high].min() == 1.0
    assert image[radiograph <= low].max() == 0.0


@pytest.mark.parametrize(
    ("modality", "window", "header", "expected"),
    [
        ("CT", "lung", None, "window"),  # auto: CT is windowed
        ("MR", "lung", None, "percentile"),  # auto: MR is scaled by percentiles
        (None, "lung", None, "percentile"),  # PNG: modality unknown
        ("CT", "header", (40.0, 400.0), "window"),
        ("CT", "header", None, "percentile"),  # no header window to use
    ],
)
def test_auto_intensity_chooses_by_modality(modality, window, header, expected):
    scaler = intensity_scaler("auto", window, (1.0, 99.0), {"modality": modality, "window": header})
    expected_class = {"window": ScaleIntensityRange, "percentile": ScaleIntensityRangePercentiles}[expected]
    assert type(scaler) is expected_class


def test_header_window_is_the_views_own(studies):
    studies["ct"] = Study((make_view(np.full((16, 16), 40.0), modality="CT", window=(40.0, 400.0)),), "ct")
    image = run(TransformConfig(image_size=16, max_views=1, window="header"), ["ct"])["image"]
    assert torch.allclose(image, torch.full_like(image, 0.5))


# --------------------------------------------------------------------------- shapes and views


def test_two_view_radiograph_sample(studies):
    rng = np.random.default_rng(0)
    studies["a/lateral"] = Study((make_view(rng.random((90, 120)), position="LL"),), "a/lateral")
    studies["a/frontal"] = Study((make_view(rng.random((100, 80)), position="PA"),), "a/frontal")
    config = TransformConfig(image_size=64, max_views=2)

    sample = run(config, ["a/lateral", "a/frontal"])  # listed lateral first

    assert sample["image"].shape == (2, 1, 64, 64) and sample["image"].dtype == torch.float32
    assert sample["view_roles"] == ["frontal", "lateral"]
    assert sample["view_mask"].tolist() == [True, True]
    assert sample["original_size"].tolist() == [[100, 80], [90, 120]]
    assert [info["view_position"] for info in sample["view_info"]] == ["PA", "LL"]
    assert set(sample) >= {"study_id", "images", "geometry"}
    assert not any(key.startswith("view0") for key in sample)


def test_missing_view_is_zero_and_masked(studies):
    studies["only"] = Study((make_view(np.random.default_rng(0).random((50, 50)), position="AP"),), "only")
    sample = run(TransformConfig(image_size=32, max_views=2), ["only"])
    assert sample["view_mask"].tolist() == [True, False]
    assert sample["view_roles"] == ["frontal", "missing"]
    assert sample["view_info"][1] is None
    assert not sample["image"][1].any() and sample["image"][0].any()


def test_extra_views_beyond_max_views_are_dropped_after_ordering(studies):
    rng = np.random.default_rng(0)
    views = (make_view(rng.random((8, 8)), position=None), make_view(rng.random((8, 8)), position="PA"))
    studies["two"] = Study(views, "two")
    sample = run(TransformConfig(image_size=8, max_views=1), ["two"])
    assert sample["view_roles"] == ["frontal"]


def test_volume_sample(studies):
    studies["ct"] = Study((make_view(np.zeros((40, 30, 20)), modality="CT", position=None),), "ct")
    sample = run(TransformConfig(spatial_dims=3, image_size=(32, 32, 16), max_views=1), ["ct"])
    assert sample["image"].shape == (1, 1, 32, 32, 16)
    assert sample["geometry"].shape == (1, 4, 4)
    assert sample["view_mask"].tolist() == [True]


def test_volume_resampled_to_target_spacing_keeps_physical_proportions(studies):
    volume = np.zeros((40, 40, 10))  # 40 x 40 x 30 mm: a flat slab
    studies["ct"] = Study((make_view(volume, modality="CT", position=None, spacing=(1.0, 1.0, 3.0)),), "ct")
    config = TransformConfig(spatial_dims=3, image_size=32, max_views=1, target_spacing=2.0)

    geometry = run(config, ["ct"])["geometry"][0].numpy()

    # one output voxel spans the same number of millimetres along every axis
    voxel_mm = np.abs(np.diag(geometry)[:3]) * np.array([1.0, 1.0, 3.0])
    assert voxel_mm == pytest.approx([voxel_mm[0]] * 3, rel=0.1)


def test_wrong_dimensionality_is_an_error_naming_the_file(studies):
    studies["scan.png"] = Study((make_view(np.ones((8, 8))),), "scan.png")
    with pytest.raises(Exception) as caught:
        run(TransformConfig(spatial_dims=3, image_size=8, max_views=1), ["scan.png"])
    error = study_error(caught.value)
    assert isinstance(error, InvalidImageError)
    assert str(error).startswith("scan.png: expected 3D images")


# --------------------------------------------------------------------------- masks and augmentation


def blob_study(tmp_path, shape=(64, 80), box=(slice(20, 30), slice(12, 22))):
    """A frontal view with one bright box on the image's left, and its mask file."""
    array = np.zeros(shape)
    array[box] = 1000.0
    array[0, -1] = 1.0  # percentiles must not all be the box's value
    mask = np.zeros(shape, dtype=bool)
    mask[box] = True
    masks_path = tmp_path / "masks.npz"
    np.savez(masks_path, view0_finding0=mask)
    return Study((make_view(array, modality="DX", position="PA"),), "blob"), masks_path


def test_masks_follow_the_view_through_resize_and_random_affine(studies, tmp_path):
    studies["blob"], masks_path = blob_study(tmp_path)
    config = TransformConfig(image_size=48, max_views=1, augment={**STRONG_AUGMENT, "noise_std": 0.0})
    still = run(config, ["blob"], masks=str(masks_path), findings=[{"kind": "nodule"}])

    moved = 0
    for seed in range(5):
        sample = run(config, ["blob"], train=True, seed=seed, masks=str(masks_path), findings=[{"kind": "nodule"}])
        image, mask = sample["image"][0, 0], sample["masks"][0, 0]
        assert sample["masks"].shape == (1, 1, 48, 48) and sample["masks"].dtype == torch.bool
        assert np.allclose(centroid(mask), centroid(image > 0.5), atol=0.75)
        assert image[mask].mean() > 0.5 > image[~mask].mean()
        moved += not np.allclose(centroid(mask), centroid(still["masks"][0, 0]), atol=0.5)
    assert moved >= 4  # the affine really moved the image (and the mask with it)


def test_mask_file_must_match_the_view(studies, tmp_path):
    studies["blob"], _ = blob_study(tmp_path)
    bad = tmp_path / "bad.npz"
    np.savez(bad, view0_finding0=np.zeros((10, 10), dtype=bool))
    with pytest.raises(Exception) as caught:
        run(TransformConfig(image_size=32, max_views=1), ["blob"], masks=str(bad))
    error = study_error(caught.value)
    assert isinstance(error, ManifestError) and str(bad) in str(error) and "shape" in str(error)


def test_an_empty_mask_file_gives_zero_mask_channels(studies, tmp_path):
    studies["normal"] = Study((make_view(np.random.default_rng(0).random((20, 20))),), "normal")
    np.savez(tmp_path / "none.npz")  # a normal study: no findings, nothing drawn
    sample = run(TransformConfig(image_size=16, max_views=2), ["normal"], masks=str(tmp_path / "none.npz"))
    assert sample["masks"].shape == (2, 0, 16, 16)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_no_transform_ever_flips_left_right(studies, spatial_dims):
    shape = (40, 40) if spatial_dims == 2 else (32, 32, 12)
    array = np.zeros(shape)
    array[(slice(14, 26), slice(4, 12))] = 1000.0  # left of the image (low column index) only
    array[0, -1] = 1.0
    studies["asym"] = Study((make_view(array, modality="DX", position="PA"),), "asym")
    config = TransformConfig(spatial_dims=spatial_dims, image_size=shape, max_views=1, augment=STRONG_AUGMENT)
    pipeline = build_transforms(config, train=True)
    flips = (Flip, Flipd, RandFlipd, RandAxisFlipd, RandRotate90d, Rotate90d)
    assert not any(isinstance(t, flips) for t in pipeline.flatten().transforms)

    for seed in range(40 if spatial_dims == 2 else 10):
        pipeline.set_random_state(seed)
        image = pipeline({"study_id": "s", "images": ["asym"]})["image"][0, 0]
        assert centroid(image > 0.5)[1] < shape[1] / 2, f"seed {seed} moved the left-sided box to the right"


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"imgae_size": 224}, "imgae_size"),
        ({"spatial_dims": 4}, "spatial_dims"),
        ({"image_size": [224, 224, 64]}, "image_size"),
        ({"image_size": 0}, "image_size"),
        ({"max_views": 0}, "max_views"),
        ({"intensity": "zscore"}, "intensity"),
        ({"window": "lungs"}, "window"),
        ({"window": [40, -400]}, "window"),
        ({"percentiles": [99.5, 0.5]}, "percentiles"),
        ({"target_spacing": 1.0}, "target_spacing"),  # 2D
        ({"spatial_dims": 3, "target_spacing": [1, 1]}, "target_spacing"),
        ({"augment": {"rotate_degrees": 90}}, "augment.rotate_degrees"),
        ({"augment": {"gamma": [1.5, 0.5]}}, "augment.gamma"),
        ({"augment": {"prob": "often"}}, "augment.prob"),
        ({"augment": {"flip": True}}, "augment.flip"),
    ],
)
def test_config_errors_name_the_bad_key(values, named):
    with pytest.raises(ConfigError) as caught:
        TransformConfig.from_dict(values)
    assert str(caught.value).startswith(f"{named}:")


def test_config_suggests_the_key_meant():
    with pytest.raises(ConfigError, match="did you mean 'image_size'"):
        TransformConfig.from_dict({"imgae_size": 224})


def test_config_round_trips_through_a_plain_mapping():
    config = TransformConfig.from_dict(
        {"spatial_dims": 3, "image_size": [96, 96, 64], "max_views": 1, "window": [40, 400], "target_spacing": 1.5}
    )
    assert config.image_size == (96, 96, 64) and config.target_spacing == (1.5, 1.5, 1.5)
    assert TransformConfig.from_dict(config.to_dict()) == config


# --------------------------------------------------------------------------- geometry


SINGULAR_LATERAL_AFFINE = np.array(  # rows run inferior, columns posterior, no slice axis
    [[0.0, 0.0, 0.0, 5.0], [0.0, -0.2, 0.0, 3.0], [-0.2, 0.0, 0.0, 7.0], [0.0, 0.0, 0.0, 1.0]]
)


@pytest.mark.parametrize("affine", [None, SINGULAR_LATERAL_AFFINE], ids=["identity", "lateral"])
def test_geometry_maps_resized_pixels_back_to_original_pixels(studies, affine):
    array = np.zeros((100, 60))
    array[40:44, 30:34] = 1.0  # centre (41.5, 31.5)
    studies["v"] = Study((make_view(array, affine=affine),), "v")
    sample = run(TransformConfig(image_size=50, max_views=1, intensity="window", window=[0.5, 1.0]), ["v"])
    geometry = sample["geometry"][0]

    # fitted to 50 x 30 (scale 1/2), padded by 10 columns on each side
    assert to_original_index([[0, 10], [49, 39]], geometry) == pytest.approx(np.array([[0.5, 0.5], [98.5, 58.5]]))
    assert to_original_index(centroid(sample["image"][0, 0]), geometry) == pytest.approx([41.5, 31.5], abs=0.05)


def test_restore_original_grid_inverts_fit_and_pad(studies):
    rows, columns = np.mgrid[0:90, 0:60]
    smooth = np.sin(rows / 15.0) + np.cos(columns / 10.0)
    studies["v"] = Study((make_view(smooth),), "v")
    sample = run(TransformConfig(image_size=64, max_views=1, percentiles=(0.0, 100.0)), ["v"])

    restored = restore_original_grid(sample["image"][0], sample["geometry"][0], sample["original_size"][0])

    expected = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    assert restored.shape == (1, 90, 60)
    assert np.abs(restored[0].numpy() - expected)[2:-2, 2:-2].max() < 0.03


# --------------------------------------------------------------------------- real files through medvl.io


def test_png_and_nifti_files_through_the_real_loader(tmp_path):
    for name, shape in (("frontal.png", (70, 50)), ("lateral.png", (60, 64))):
        Image.fromarray(np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)).save(tmp_path / name)
    paths = [str(tmp_path / "frontal.png"), str(tmp_path / "lateral.png")]
    sample = run(TransformConfig(image_size=32, max_views=2), paths)
    assert sample["image"].shape == (2, 1, 32, 32) and sample["view_mask"].all()
    assert sorted(sample["original_size"].tolist()) == [[60, 64], [70, 50]]

    volume = np.random.default_rng(0).normal(0, 300, (20, 18, 6)).astype(np.float32)
    nib.save(nib.Nifti1Image(volume, np.diag([0.8, 0.8, 2.5, 1.0])), tmp_path / "ct.nii.gz")
    config = TransformConfig(
        spatial_dims=3, image_size=(16, 16, 8), max_views=1, intensity="window", target_spacing=1.6
    )
    sample = run(config, [str(tmp_path / "ct.nii.gz")])
    assert sample["image"].shape == (1, 1, 16, 16, 8)
    assert 0.0 <= sample["image"].min() and sample["image"].max() <= 1.0
