"""Phantom radiographs and CT volumes: seeded, and every finding exactly where its mask says."""

from __future__ import annotations

import numpy as np
import pytest

from medvl.data.phantom import make_chest_ct, make_chest_radiograph
from medvl.errors import ConfigError
from medvl.findings import Finding

SIZE = 128  # pixels; fast, and 3.1 mm pixels still resolve every finding

ONE_OF_EACH = [
    Finding("cardiomegaly"),
    Finding("pleural_effusion", "left"),
    Finding("pleural_effusion", "bilateral"),
    Finding("pneumothorax", "right"),
    Finding("consolidation", "left", "lower"),
    Finding("opacity", "right", "middle"),
    Finding("nodule", "left", "upper", 14),
    Finding("mass", "right", "middle", 50),
    Finding("atelectasis", "right"),
    Finding("edema", "bilateral"),
    Finding("calcified_granuloma", "left", "middle", 5),
    Finding("support_device", "right", device="central_line"),
    Finding("support_device", device="endotracheal_tube"),
    Finding("support_device", device="pacemaker"),
    Finding("degenerative_spine"),
]
SIDED = [f for f in ONE_OF_EACH if f.side in ("left", "right") and f.kind != "support_device"]


def _dilate(mask: np.ndarray, steps: int) -> np.ndarray:
    grown = mask.copy()
    for _ in range(steps):
        for axis in range(mask.ndim):
            grown = grown | np.roll(grown, 1, axis) | np.roll(grown, -1, axis)
    return grown


def _width(mask: np.ndarray) -> int:
    columns = np.flatnonzero(mask.any(axis=0))
    return int(columns[-1] - columns[0] + 1)


def test_same_seed_same_study_and_other_seed_another() -> None:
    findings = [Finding("nodule", "right", "lower", 12), Finding("pleural_effusion", "left")]
    first = make_chest_radiograph(findings, seed=7, size=SIZE)
    again = make_chest_radiograph(findings, seed=7, size=SIZE)
    other = make_chest_radiograph(findings, seed=8, size=SIZE)
    for a, b, c in zip(first.views, again.views, other.views):
        assert np.array_equal(a.image, b.image)
        assert all(np.array_equal(m, n) for m, n in zip(a.masks, b.masks))
        assert not np.array_equal(a.image, c.image)
    from_generator = [make_chest_radiograph([], np.random.default_rng(3), size=SIZE) for _ in range(2)]
    assert np.array_equal(from_generator[0].views[0].image, from_generator[1].views[0].image)
    ct = [make_chest_ct(findings, seed=7, shape=(32, 32, 24)) for _ in range(2)]
    assert np.array_equal(ct[0].views[0].image, ct[1].views[0].image)


def test_radiograph_views_shapes_and_ranges() -> None:
    study = make_chest_radiograph([Finding("cardiomegaly")], seed=1, size=(96, 128))
    assert [v.name for v in study.views] == ["frontal", "lateral"]
    assert [v.view_position for v in study.views] == ["PA", "LL"]
    for view in study.views:
        assert view.image.shape == (96, 128) and view.image.dtype == np.float32
        assert 0.0 <= view.image.min() and view.image.max() <= 1.0
        assert view.spacing == (400.0 / 128, 400.0 / 128)
        assert view.masks[0].shape == view.image.shape and view.masks[0].dtype == bool
    frontal_only = make_chest_radiograph([], seed=1, size=(96, 128), views=("frontal",))
    assert np.array_equal(frontal_only.views[0].image, make_chest_radiograph([], seed=1, size=(96, 128)).views[0].image)


@pytest.mark.parametrize("finding", ONE_OF_EACH, ids=lambda f: f"{f.kind}-{f.side}-{f.device}")
def test_each_finding_changes_only_its_mask(finding: Finding) -> None:
    base = make_chest_radiograph([], seed=11, size=SIZE)
    with_finding = make_chest_radiograph([finding], seed=11, size=SIZE)
    for before, after in zip(base.views, with_finding.views):
        mask = after.masks[0]
        assert mask.any(), f"{finding} has an empty {after.name} mask"
        changed = np.abs(after.image - before.image) > 1e-6
        assert changed.any(), f"{finding} is invisible on the {after.name} view"
        outside = changed & ~_dilate(mask, 2)
        assert not outside.any(), f"{finding} changed {outside.sum()} {after.name} pixels away from its mask"
        assert changed[mask].mean() > 0.3, f"{finding} barely shows inside its {after.name} mask"
        assert not (mask & ~after.anatomy["body"]).any(), f"{finding} is drawn outside the body"


@pytest.mark.parametrize("finding", ONE_OF_EACH, ids=lambda f: f"{f.kind}-{f.side}-{f.device}")
def test_each_finding_changes_only_its_mask_in_ct(finding: Finding) -> None:
    base = make_chest_ct([], seed=5, shape=(40, 40, 32))
    with_finding = make_chest_ct([finding], seed=5, shape=(40, 40, 32))
    mask = with_finding.views[0].masks[0]
    changed = base.views[0].image != with_finding.views[0].image
    assert mask.any() and changed.any()
    assert not (changed & ~_dilate(mask, 1)).any()
    assert not (mask & ~with_finding.views[0].anatomy["body"]).any()


@pytest.mark.parametrize("finding", SIDED, ids=lambda f: f"{f.kind}-{f.side}")
def test_findings_are_on_the_patients_side(finding: Finding) -> None:
    """Radiological convention: the patient's left is on the image's right (frontal) and, in
    CT, at the high column indices."""
    for seed in (0, 1, 2):
        frontal = make_chest_radiograph([finding], seed=seed, size=SIZE, views=("frontal",)).views[0]
        columns = np.nonzero(frontal.masks[0])[1]
        ct = make_chest_ct([finding], seed=seed, shape=(40, 40, 32)).views[0]
        ct_columns = np.nonzero(ct.masks[0])[1]
        if finding.side == "left":
            assert columns.mean() > SIZE / 2 and ct_columns.mean() > 20
        else:
            assert columns.mean() < SIZE / 2 and ct_columns.mean() < 20


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_degenerative_spine_draws_osteophytes_at_three_to_five_disc_levels_of_the_spine(seed: int) -> None:
    study = make_chest_radiograph([Finding("degenerative_spine")], seed=seed, size=192)
    frontal, lateral = study.views
    lungs = np.flatnonzero(frontal.anatomy["lungs"].any(axis=0))
    columns = np.flatnonzero(frontal.masks[0].any(axis=0))
    midline = (lungs[0] + lungs[-1]) / 2
    assert abs(columns.mean() - midline) < 0.1 * (lungs[-1] - lungs[0])  # on the spine, between the lungs
    for view in study.views:
        rows = np.flatnonzero(view.masks[0].any(axis=1))
        levels = 1 + int((np.diff(rows) > 1).sum())  # separate bands of rows: one per disc level
        assert 3 <= levels <= 5, f"{view.name}: {levels} levels"
    body = np.flatnonzero(lateral.anatomy["body"].any(axis=0))
    assert np.flatnonzero(lateral.masks[0].any(axis=0)).mean() > (body[0] + body[-1]) / 2  # posterior half


def test_zones_are_stacked_from_apex_to_base() -> None:
    for kind, size in (("nodule", 10), ("consolidation", None), ("calcified_granuloma", 6)):
        rows = []
        for zone in ("upper", "middle", "lower"):
            study = make_chest_radiograph([Finding(kind, "right", zone, size)], seed=4, size=SIZE)
            frontal, lateral = study.views
            rows.append(np.nonzero(frontal.masks[0])[0].mean())
            assert abs(np.nonzero(lateral.masks[0])[0].mean() - rows[-1]) < 0.15 * SIZE  # same height on both views
        assert rows[0] < rows[1] < rows[2], f"{kind}: zone centroids {rows} are not top to bottom"


def test_cardiothoracic_ratio_normal_and_enlarged() -> None:
    for seed in range(8):
        normal = make_chest_radiograph([], seed=seed, size=256, views=("frontal",)).views[0]
        enlarged = make_chest_radiograph([Finding("cardiomegaly")], seed=seed, size=256, views=("frontal",)).views[0]
        normal_ratio = _width(normal.anatomy["heart"]) / _width(normal.anatomy["lungs"])
        enlarged_ratio = _width(enlarged.anatomy["heart"]) / _width(enlarged.anatomy["lungs"])
        assert normal_ratio < 0.5 < 0.55 < enlarged_ratio, (seed, normal_ratio, enlarged_ratio)
        assert np.array_equal(enlarged.masks[0], enlarged.anatomy["heart"])


def test_nodule_masks_have_the_stated_diameter() -> None:
    for size_mm in (8, 20, 30):
        study = make_chest_radiograph([Finding("nodule", "left", "middle", size_mm)], seed=size_mm, size=256)
        for view in study.views:
            spacing = view.spacing[0]
            equivalent_diameter = 2.0 * np.sqrt(view.masks[0].sum() / np.pi) * spacing
            assert abs(equivalent_diameter - size_mm) < 1.2 * spacing, (view.name, size_mm, equivalent_diameter)
            assert abs(_width(view.masks[0]) * spacing - size_mm) <= 2.0 * spacing
    ct = make_chest_ct([Finding("nodule", "right", "lower", 24)], seed=2, shape=(128, 128, 96)).views[0]
    voxel_volume = float(np.prod(ct.spacing))
    diameter = (6.0 * ct.masks[0].sum() * voxel_volume / np.pi) ** (1.0 / 3.0)
    assert abs(diameter - 24) < 3.0
    assert np.median(ct.image[ct.masks[0]]) > -100  # a soft-tissue nodule in aerated lung


def test_ct_values_and_geometry() -> None:
    study = make_chest_ct([Finding("calcified_granuloma", "left", "upper", 6)], seed=3)
    ct = study.views[0]
    assert ct.image.shape == (64, 64, 48) and ct.spacing == (6.0, 6.0, 7.0)
    assert np.array_equal(ct.image, np.round(ct.image)) and -1024 <= ct.image.min() and ct.image.max() <= 3071
    lungs = ct.image[ct.anatomy["lungs"]]
    assert -950 < np.median(lungs) < -750
    assert np.median(ct.image[ct.anatomy["heart"]]) == pytest.approx(40, abs=25)
    assert ct.image[ct.masks[0]].max() > 500  # calcified
    corner = ct.affine_lps @ np.array([63, 63, 47, 1.0])
    assert np.allclose(corner[:3], -np.asarray(ct.origin))  # the volume is centred on the scanner axis
    assert ct.affine_lps[2, 2] == 7.0 and ct.affine_ras[0, 1] == -6.0 and ct.affine_ras[1, 0] == -6.0


def test_bad_arguments_raise_config_errors() -> None:
    with pytest.raises(ConfigError, match="views"):
        make_chest_radiograph([], 0, views=("axial",))
    with pytest.raises(ConfigError, match="size"):
        make_chest_radiograph([], 0, size=8)
    with pytest.raises(ConfigError, match="seed"):
        make_chest_radiograph([], -1)
    with pytest.raises(ConfigError, match="CT shape"):
        make_chest_ct([], 0, shape=(64, 64))
    with pytest.raises(ConfigError, match="no 3D affine"):
        _ = make_chest_radiograph([], 0, size=64).views[0].affine_lps
