"""StudyDataset: cached loading, bad studies left out and reported, batching."""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

import medvl.data.transforms as transforms
from medvl.data.dataset import StudyDataset, collate
from medvl.data.manifest import ManifestRow
from medvl.data.transforms import TransformConfig
from medvl.errors import ManifestError, ScanError
from medvl.findings import Finding

CONFIG = TransformConfig(image_size=32, max_views=2, augment={"prob": 1.0})
SHAPES = {"frontal": (48, 40), "lateral": (44, 48)}
EFFUSION = Finding("pleural_effusion", side="left")


def make_row(
    folder: Path, study_id: str, n_findings: int = 1, split: str = "train", corrupt: bool = False
) -> ManifestRow:
    """Two PNG views with a bright box, a report, findings and (for n_findings > 0) masks."""
    rng = np.random.default_rng(zlib.crc32(study_id.encode()))
    study = folder / study_id
    study.mkdir(parents=True)
    images = []
    for role, shape in SHAPES.items():
        pixels = rng.integers(0, 60, shape, dtype=np.uint8)
        pixels[10:20, 8:18] = 250
        Image.fromarray(pixels).save(study / f"{role}.png")
        images.append(study / f"{role}.png")
    if corrupt:
        images[0].write_bytes(b"\x89PNG\r\n\x1a\n but the rest is missing")
    masks = None
    if n_findings:
        masks = study / "masks.npz"
        arrays = {f"view0_finding{f}": np.zeros(SHAPES["frontal"], dtype=bool) for f in range(n_findings)}
        arrays["view0_finding0"][10:20, 8:18] = True
        np.savez(masks, **arrays)
    findings = tuple(EFFUSION.to_dict() for _ in range(n_findings))
    return ManifestRow(study_id, tuple(images), f"Report of {study_id}.", split, findings, masks)


@pytest.fixture
def load_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path medvl.io.load_study is asked to read, through the name the transforms call."""
    calls: list[str] = []
    real_load_study = transforms.load_study

    def counting_load_study(path, *args, **kwargs):
        calls.append(str(path))
        return real_load_study(path, *args, **kwargs)

    monkeypatch.setattr(transforms, "load_study", counting_load_study)
    return calls


def epoch(dataset: StudyDataset) -> list[dict]:
    return list(DataLoader(dataset, batch_size=2, collate_fn=collate))


def test_second_epoch_decodes_no_file(tmp_path, load_calls):
    rows = [make_row(tmp_path, f"s{i}") for i in range(3)]
    dataset = StudyDataset(rows, CONFIG, "train", train=True)
    assert len(load_calls) == 6  # 3 studies x 2 views, read once while caching

    first = epoch(dataset)
    dataset.set_epoch(1)
    second = epoch(dataset)

    assert len(load_calls) == 6
    assert not torch.equal(first[0]["image"], second[0]["image"])  # augmentation drawn per epoch
    assert first[0]["image"].shape == (2, 2, 1, 32, 32)


def test_augmentation_depends_on_seed_epoch_and_sample_only(tmp_path):
    rows = [make_row(tmp_path, f"s{i}") for i in range(3)]
    run, rerun, other_seed = (StudyDataset(rows, CONFIG, "train", train=True, seed=seed) for seed in (7, 7, 8))
    for dataset in (run, rerun, other_seed):
        dataset.set_epoch(2)
    reference = run[1]["image"]
    for index in (2, 0, 1):  # a different access order (another worker, a resumed epoch)...
        rerun[index]
    assert torch.equal(rerun[1]["image"], reference)  # ...draws the same augmentation
    assert not torch.equal(other_seed[1]["image"], reference)
    run.set_epoch(3)
    assert not torch.equal(run[1]["image"], reference)


def test_disk_cache_is_reused_by_a_later_run_with_the_same_settings(tmp_path, load_calls):
    rows = [make_row(tmp_path / "data", f"s{i}") for i in range(2)]
    first_run = StudyDataset(rows, CONFIG, "train", cache_dir=tmp_path / "cache")
    second_run = StudyDataset(rows, CONFIG, "train", cache_dir=tmp_path / "cache")
    assert len(load_calls) == 4
    assert torch.equal(first_run[1]["image"], second_run[1]["image"])
    assert first_run[1]["study_id"] == "s1"

    StudyDataset(rows, TransformConfig(image_size=24), "train", cache_dir=tmp_path / "cache")
    assert len(load_calls) == 8  # other settings, other cache


def test_corrupt_study_is_left_out_and_reported(tmp_path, load_calls, caplog):
    rows = [make_row(tmp_path, "good-1"), make_row(tmp_path, "broken", corrupt=True), make_row(tmp_path, "good-2")]
    with caplog.at_level(logging.WARNING, logger="medvl.data.dataset"):
        dataset = StudyDataset(rows, CONFIG, "train", train=True)

    assert dataset.study_ids == ["good-1", "good-2"]
    assert list(dataset.failures) == ["broken"]
    assert str(rows[1].images[0]) in dataset.failures["broken"]
    reports = [record.getMessage() for record in caplog.records if record.getMessage().startswith("broken: ")]
    assert len(reports) == 1 and "\n" not in reports[0]
    assert [batch["study_id"] for batch in epoch(dataset)] == [["good-1", "good-2"]]


def test_skip_bad_false_stops_at_the_bad_study(tmp_path):
    rows = [make_row(tmp_path, "good"), make_row(tmp_path, "broken", corrupt=True)]
    with pytest.raises(ScanError) as caught:
        StudyDataset(rows, CONFIG, "train", skip_bad=False)
    assert str(rows[1].images[0]) in str(caught.value)


def test_a_split_where_nothing_loads_is_an_error(tmp_path):
    rows = [make_row(tmp_path, "broken", corrupt=True)]
    with pytest.raises(ManifestError, match="none of the 1 studies could be loaded"):
        StudyDataset(rows, CONFIG, "train")


def test_only_the_requested_split(tmp_path):
    rows = [make_row(tmp_path, "t", split="train"), make_row(tmp_path, "v", split="val")]
    assert StudyDataset(rows, CONFIG, "val").study_ids == ["v"]
    with pytest.raises(ManifestError, match="no test studies"):
        StudyDataset(rows, CONFIG, "test")
    with pytest.raises(ManifestError, match="split must be one of"):
        StudyDataset(rows, CONFIG, "dev")


def test_samples_carry_the_rows_text_and_findings(tmp_path):
    row = make_row(tmp_path, "s1", n_findings=2)
    sample = StudyDataset([row], CONFIG, "train")[0]
    assert sample["study_id"] == "s1"
    assert sample["report"] == "Report of s1."
    assert sample["findings"] == [EFFUSION.to_dict()] * 2
    assert sample["masks"].shape == (2, 2, 32, 32)
    assert sample["masks"][0, 0].any() and not sample["masks"][1].any()  # drawn on the frontal view only


def test_collate_pads_masks_to_the_most_findings(tmp_path):
    rows = [make_row(tmp_path, "one", 1), make_row(tmp_path, "three", 3), make_row(tmp_path, "none", 0)]
    dataset = StudyDataset(rows, CONFIG, "train")
    samples = [dataset[i] for i in range(3)]

    batch = collate(samples)

    assert batch["image"].shape == (3, 2, 1, 32, 32)
    assert batch["view_mask"].shape == (3, 2) and batch["geometry"].shape == (3, 2, 3, 3)
    assert batch["masks"].shape == (3, 2, 3, 32, 32) and batch["masks"].dtype == torch.bool
    assert batch["n_findings"].tolist() == [1, 3, 0]
    assert torch.equal(batch["masks"][1], samples[1]["masks"])
    assert torch.equal(batch["masks"][0, :, :1], samples[0]["masks"]) and not batch["masks"][0, :, 1:].any()
    assert not batch["masks"][2].any()
    assert batch["study_id"] == ["one", "three", "none"]
    assert batch["report"] == ["Report of one.", "Report of three.", "Report of none."]
    assert batch["view_roles"][0] == samples[0]["view_roles"]
