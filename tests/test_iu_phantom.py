"""IU-phantom: real-style reports paired with phantoms that draw their positive findings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medvl.data.iu_phantom import iu_findings, read_iu_annotation, write_iu_phantom
from medvl.data.manifest import read_manifest
from medvl.data.phantom.dataset import compatible
from medvl.errors import ManifestError
from medvl.findings import Finding

# Invented reports in IU X-ray style (not the shared data), one per split case.
ANNOTATION = {
    "train": [
        {"id": "T1", "report": "Heart size normal. Lungs are clear. No pneumothorax or pleural effusion.", "split": "train"},
        {"id": "T2", "report": "Small left pleural effusion. Mild cardiomegaly. Sternotomy XXXX are intact.", "split": "train"},
    ],
    "val": [
        {"id": "V1", "report": "There is a 2.5 cm nodule in the right upper lobe. No pneumothorax.", "split": "val"},
    ],
    "test": [
        {"id": "S1", "report": "Possible right lower lobe pneumonia. No pneumothorax.", "split": "test"},
        {"id": "S2", "report": "Right upper lobe pneumonia. Bilateral pleural effusions.", "split": "test"},
        {"id": "S3", "report": "Left IJ central venous catheter. Bibasilar opacities.", "split": "test"},
    ],
}


@pytest.fixture(scope="module")
def annotation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("iu") / "annotation.json"
    path.write_text(json.dumps(ANNOTATION))
    return path


@pytest.fixture(scope="module")
def written(annotation: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_iu_phantom(annotation, tmp_path_factory.mktemp("iu_phantom"), seed=3, image_size=64)


def _findings(report: str) -> tuple[tuple[Finding, ...], tuple[Finding, ...]]:
    return iu_findings(report, np.random.default_rng(0))


def test_stated_findings_are_drawn_with_their_side_zone_and_size() -> None:
    drawn, _ = _findings("There is a 2.5 cm nodule in the right upper lobe. Calcified granuloma in the left base.")
    nodule, granuloma = drawn
    assert (nodule.kind, nodule.side, nodule.zone, nodule.size_mm) == ("nodule", "right", "upper", 25.0)
    assert (granuloma.kind, granuloma.side, granuloma.zone) == ("calcified_granuloma", "left", "lower")
    assert 3.0 <= granuloma.size_mm <= 8.0  # unstated: drawn in the kind's size range


def test_degenerative_changes_of_the_spine_are_drawn_and_take_no_seeded_default() -> None:
    drawn, _ = _findings("Heart size normal. Thoracic spondylosis. Calcified granuloma in the left base.")
    assert [finding.kind for finding in drawn] == ["calcified_granuloma", "degenerative_spine"]
    without, _ = _findings("Heart size normal. Calcified granuloma in the left base.")
    assert drawn[0] == without[0]  # drawn last, from no random draw: the other findings are unchanged
    assert _findings("No degenerative changes of the spine.") == ((), ())


def test_negated_and_uncertain_findings_are_not_drawn() -> None:
    assert _findings("No pleural effusion. Possible right lower lobe pneumonia. Heart size normal.") == ((), ())


def test_pneumonia_is_drawn_as_consolidation_and_a_bilateral_one_sided_kind_on_one_side() -> None:
    drawn, not_drawn = _findings("Right upper lobe pneumonia. Bilateral lower lobe nodules.")
    (consolidation, nodule), (other_nodule,) = drawn, not_drawn
    assert (consolidation.kind, consolidation.side, consolidation.zone) == ("consolidation", "right", "upper")
    assert (nodule.kind, nodule.zone, other_nodule.zone) == ("nodule", "lower", "lower")
    assert {nodule.side, other_nodule.side} == {"left", "right"}


def test_unstated_sides_are_seeded_and_findings_that_would_hide_each_other_are_set_aside() -> None:
    drawn, not_drawn = _findings("Left IJ central venous catheter. Bibasilar opacities.")
    assert compatible(drawn)
    assert ("support_device", "left", "central_line") in [(f.kind, f.side, f.device) for f in drawn]
    (opacity,), (other_opacity,) = [f for f in drawn if f.kind == "opacity"], not_drawn  # two would blur into one
    assert {opacity.side, other_opacity.side} == {"left", "right"} and opacity.zone == other_opacity.zone == "lower"
    (effusion,), _ = _findings("Pleural effusion.")
    assert effusion.side in ("left", "right", "bilateral") and _findings("Pleural effusion.") == ((effusion,), ())


def test_manifest_keeps_splits_and_real_reports_and_masks_show_each_finding(written: Path) -> None:
    rows = {row.study_id: row for row in read_manifest(written)}
    assert {row.study_id: row.split for row in rows.values()} == {
        entry["id"]: split for split, entries in ANNOTATION.items() for entry in entries
    }
    assert rows["T2"].report == ANNOTATION["train"][1]["report"]
    assert [f["kind"] for f in rows["T2"].findings] == ["cardiomegaly", "pleural_effusion"]
    assert rows["T1"].findings == () and rows["S1"].findings == ()
    drawn_side = next(f["side"] for f in rows["S3"].findings if f["kind"] == "opacity")
    assert rows["S3"].meta == {"not_drawn": [{"kind": "opacity", "side": {"left": "right", "right": "left"}[drawn_side],
                                              "zone": "lower", "size_mm": None, "device": None}]}
    for row in rows.values():
        assert [Image.open(path).size for path in row.images] == [(64, 64), (64, 64)]
        masks = np.load(row.masks)
        for f in range(len(row.findings)):
            assert any(masks[f"view{v}_finding{f}"].any() for v in range(2)), (row.study_id, f)
    card = json.loads((written.parent / "dataset_card.json").read_text())
    assert card["splits"] == {"train": 2, "val": 1, "test": 3} and card["normal_studies"] == 2
    assert card["unseen"] == {"Support Devices": 1}  # the sternotomy wires have no picture


def test_same_arguments_write_the_same_dataset_and_a_study_does_not_depend_on_the_others(
    annotation: Path, written: Path, tmp_path: Path
) -> None:
    again = write_iu_phantom(annotation, tmp_path / "again", seed=3, image_size=64)
    assert again.read_bytes() == written.read_bytes()
    first_only = write_iu_phantom(annotation, tmp_path / "one", seed=3, image_size=64, limit=1)
    assert [row.study_id for row in read_manifest(first_only)] == ["T1", "V1", "S1"]
    for name in ("frontal.png", "lateral.png"):
        same = [(folder / "studies" / "V1" / name).read_bytes() for folder in (written.parent, tmp_path / "one")]
        assert same[0] == same[1]
    other_seed = write_iu_phantom(annotation, tmp_path / "seed4", seed=4, image_size=64, limit=1)
    assert (other_seed.parent / "studies/T1/frontal.png").read_bytes() != (written.parent / "studies/T1/frontal.png").read_bytes()


def test_a_bad_annotation_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "annotation.json"
    path.write_text(json.dumps({"train": [{"id": "X"}]}))
    with pytest.raises(ManifestError, match="annotation.json.*train\\[0\\].*'report'"):
        read_iu_annotation(path)
    with pytest.raises(ManifestError, match="not found"):
        read_iu_annotation(tmp_path / "missing.json")


@pytest.mark.shared_data
def test_real_iu_reports_give_valid_drawable_findings(shared_data: Path) -> None:
    studies = read_iu_annotation(shared_data / "iu_xray" / "annotation.json")
    assert {split: sum(s.split == split for s in studies) for split in ("train", "val", "test")} == {
        "train": 2069, "val": 296, "test": 590
    }
    drawn = [iu_findings(study.report, np.random.default_rng(number))[0] for number, study in enumerate(studies)]
    abnormal = sum(bool(findings) for findings in drawn) / len(drawn)
    kinds = {finding.kind for findings in drawn for finding in findings}
    print(f"\nIU reports with a drawn finding: {abnormal:.3f}; kinds drawn: {sorted(kinds)}")
    assert 0.2 < abnormal < 0.7
    assert {"cardiomegaly", "pleural_effusion", "opacity", "atelectasis", "calcified_granuloma", "nodule"} <= kinds
    assert all(compatible(findings) for findings in drawn)


def test_medvl_eval_scores_the_iu_phantom_test_split_with_clinical_metrics(written: Path, tmp_path: Path) -> None:
    """An (untrained) model with R2Gen's cleaning drafts the test split; eval.json and eval.md hold the scores."""
    from medvl.evaluate.run import evaluate
    from medvl.model import MedVLConfig
    from medvl.model.loading import build_model, save_model
    from medvl.text import train_tokenizer

    config = MedVLConfig(
        encoder={"name": "resnet10", "widen_factor": 0.25},
        text_config={"model_type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2, "n_positions": 128},
        preprocessing={"image_size": 64, "max_views": 2, "augment": {"enabled": False}},
        text={"cleaning": {"style": "r2gen_iu"}, "sections": ["findings"], "max_length": 40},
    )
    reports = [row.report for row in read_manifest(written)]
    tokenizer = train_tokenizer([config.report_target(report) for report in reports], min_frequency=1)
    model_dir = save_model(build_model(config, tokenizer), tokenizer, tmp_path / "model")

    scores = evaluate(written, tmp_path / "eval", model=model_dir, metrics=("bleu", "rouge"),
                      decoding={"num_beams": 1, "max_new_tokens": 6})

    saved = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert saved["n_drafted"] == 3 and saved["clinical"]["n_studies"] == 3
    assert set(saved["clinical"]) >= {"micro", "macro", "per_observation", "uncertain_as"}
    assert {"BLEU_4", "ROUGE_L"} <= set(saved["nlg"]) and "findings" in saved  # phantom truth: finding accuracy too
    table = (tmp_path / "eval" / "eval.md").read_text()
    assert "| Clinical F1 (micro) |" in table.splitlines()[2] and f"{scores['clinical']['micro']['f1']:.3f}" in table
