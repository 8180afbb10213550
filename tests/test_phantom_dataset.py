"""The phantom dataset writer: a valid, reproducible manifest with masks matching the images."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from medvl.data.manifest import read_manifest
from medvl.data.phantom import write_phantom_dataset
from medvl.data.phantom.dataset import assign_splits, compatible, plan_findings
from medvl.errors import ConfigError
from medvl.findings import FINDING_KINDS, SAMPLED_KINDS, Finding

ROW_KEYS = ["study_id", "images", "report", "split", "findings", "masks"]


def _rows(manifest: Path) -> list[dict]:
    return [json.loads(line) for line in manifest.read_text().splitlines()]


def test_dataset_manifest_images_masks_and_splits(tmp_path: Path) -> None:
    manifest = write_phantom_dataset(tmp_path / "ds", 40, seed=3, image_size=64, splits=(0.5, 0.25, 0.25))
    assert manifest == tmp_path / "ds" / "manifest.jsonl"
    rows = _rows(manifest)
    assert len(rows) == 40 and [list(row) for row in rows] == [ROW_KEYS] * 40
    assert [row["study_id"] for row in rows] == [f"phantom-{i:06d}" for i in range(1, 41)]
    assert Counter(row["split"] for row in rows) == {"train": 20, "val": 10, "test": 10}
    assert sum(1 for row in rows if not row["findings"]) == 12  # round(0.3 * 40)
    for row in rows:
        assert row["images"] == [f"studies/{row['study_id']}/frontal.png", f"studies/{row['study_id']}/lateral.png"]
        assert len(row["findings"]) <= 1
        findings = [Finding.from_dict(f) for f in row["findings"]]
        images = [np.asarray(Image.open(manifest.parent / path)) for path in row["images"]]
        with np.load(manifest.parent / row["masks"]) as masks:
            expected = {f"view{v}_finding{f}" for v in range(len(images)) for f in range(len(findings))}
            assert set(masks.files) == expected
            for key in masks.files:
                view = int(key[4])
                assert masks[key].dtype == bool and masks[key].shape == images[view].shape == (64, 64)
                assert masks[key].any()
        assert row["report"].startswith("FINDINGS: ") and " IMPRESSION: " in row["report"]
    assert [row.study_id for row in read_manifest(manifest)] == [row["study_id"] for row in rows]  # the validator
    card = json.loads((tmp_path / "ds" / "dataset_card.json").read_text())
    assert card["arguments"]["n_studies"] == 40 and card["splits"] == {"train": 20, "val": 10, "test": 10}


def test_same_arguments_write_the_same_manifest(tmp_path: Path) -> None:
    first = write_phantom_dataset(tmp_path / "a", 12, seed=5, mode="mixed", image_size=48, views=("frontal",))
    second = write_phantom_dataset(tmp_path / "b", 12, seed=5, mode="mixed", image_size=48, views=("frontal",))
    other = write_phantom_dataset(tmp_path / "c", 12, seed=6, mode="mixed", image_size=48, views=("frontal",))
    assert first.read_bytes() == second.read_bytes() != other.read_bytes()
    for row in _rows(first):
        a, b = (np.asarray(Image.open(root / row["images"][0])) for root in (tmp_path / "a", tmp_path / "b"))
        assert np.array_equal(a, b)


def test_mixed_mode_plans_one_to_three_compatible_findings() -> None:
    plans = plan_findings(400, seed=2, mode="mixed", normal_fraction=0.25)
    abnormal = [findings for findings in plans if findings]
    assert len(abnormal) == 300
    assert {len(findings) for findings in abnormal} == {1, 2, 3}
    assert all(compatible(findings) for findings in abnormal)
    assert not compatible([Finding("pleural_effusion", "left"), Finding("pneumothorax", "left")])
    assert not compatible([Finding("nodule", "left", "lower", 9), Finding("pleural_effusion", "bilateral")])
    assert compatible(
        [Finding("pleural_effusion", "bilateral"), Finding("edema", "bilateral"), Finding("cardiomegaly")]
    )
    assert not compatible([Finding("edema", "bilateral"), Finding("opacity", "right", "upper")])


def test_single_mode_covers_every_sampled_kind_and_combination_evenly() -> None:
    plans = plan_findings(1000, seed=0, mode="single", normal_fraction=0.3)
    findings = [f[0] for f in plans if f]
    assert len(findings) == 700 and all(len(f) <= 1 for f in plans)
    per_kind = Counter(f.kind for f in findings)
    assert set(per_kind) == set(SAMPLED_KINDS) and max(per_kind.values()) - min(per_kind.values()) <= 1
    seen = {(f.kind, f.side, f.zone, f.device) for f in findings}
    every = {(name, *variant) for name in SAMPLED_KINDS for variant in FINDING_KINDS[name].variants()}
    assert seen == every
    sizes = [f.size_mm for f in findings if f.kind == "nodule"]
    assert min(sizes) >= 6 and max(sizes) <= 30 and len(set(sizes)) > 10


def test_split_counts_follow_the_fractions() -> None:
    for n in (1, 7, 10, 99):
        labels = assign_splits(n, (0.8, 0.1, 0.1), seed=1)
        counts = Counter(labels)
        assert len(labels) == n
        assert all(abs(counts[name] - n * share) < 1 for name, share in zip(("train", "val", "test"), (0.8, 0.1, 0.1)))


@pytest.mark.parametrize("image_format", ["nifti", "dicom"])
def test_ct_datasets(tmp_path: Path, image_format: str) -> None:
    manifest = write_phantom_dataset(
        tmp_path, 3, spatial_dims=3, image_format=image_format, image_size=(32, 32, 24), normal_fraction=0.0
    )
    for row in _rows(manifest):
        (image_path,) = row["images"]
        assert image_path.endswith("ct.nii.gz" if image_format == "nifti" else "/ct")
        target = manifest.parent / image_path
        if image_format == "nifti":
            shape = nib.load(target).shape
        else:
            shape = (32, 32, len(list(target.glob("*.dcm"))))
        with np.load(manifest.parent / row["masks"]) as masks:
            assert masks.files == ["view0_finding0"] and masks["view0_finding0"].shape == shape == (32, 32, 24)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"n_studies": 0}, "positive integer"),
        ({"spatial_dims": 3, "image_format": "png"}, "written as dicom or nifti"),
        ({"image_format": "nifti"}, "written as png or dicom"),
        ({"mode": "triple"}, "mode must be"),
        ({"splits": (0.5, 0.5, 0.5)}, "summing to 1"),
        ({"views": ("frontal", "frontal")}, "distinct"),
        ({"normal_fraction": 1.5}, "between 0 and 1"),
    ],
)
def test_bad_arguments_raise_config_errors(tmp_path: Path, arguments: dict, message: str) -> None:
    arguments = {"n_studies": 2, **arguments}
    with pytest.raises(ConfigError, match=message):
        write_phantom_dataset(tmp_path, **arguments)
    assert not (tmp_path / "manifest.jsonl").exists()
