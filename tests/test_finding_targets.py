"""Targets of the auxiliary finding head: study labels, and per visual token from the lesion masks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medvl.data.manifest import ManifestRow
from medvl.errors import ConfigError
from medvl.model import MedVLConfig
from medvl.model.loading import build_model
from medvl.text import train_tokenizer
from medvl.train.batching import finding_targets, token_targets
from medvl.train.config import TrainConfig
from medvl.train.loop import new_model_config

# image rows and columns of a 16 x 16 frontal view, where the patient's right is on the image's left
RIGHT_BASE = (slice(12, 16), slice(0, 8))
LEFT_BASE = (slice(12, 16), slice(8, 16))
RIGHT_ATELECTASIS = {"kind": "atelectasis", "side": "right"}
LEFT_LINE = {"kind": "support_device", "side": "left", "device": "central_line"}
BILATERAL_ATELECTASIS = {"kind": "atelectasis", "side": "bilateral"}


RIGHT_BASAL_CELLS = [12, 13]  # of the 4 x 4 grid: bottom row, left half of the image
LEFT_BASAL_CELLS = [14, 15]


def two_studies(role: str = "frontal") -> dict:
    """A right-sided and a bilateral atelectasis, one view each, 16 x 16 px, 4 x 4 token grid."""
    masks = torch.zeros(2, 1, 1, 16, 16, dtype=torch.bool)
    masks[0, 0, 0][RIGHT_BASE] = True
    masks[1, 0, 0][RIGHT_BASE] = True
    masks[1, 0, 0][LEFT_BASE] = True
    return {
        "image": torch.zeros(2, 1, 1, 16, 16),
        "masks": masks,
        "n_findings": torch.tensor([1, 1]),
        "findings": [[RIGHT_ATELECTASIS], [BILATERAL_ATELECTASIS]],
        "view_roles": [[role], [role]],
    }


def a_left_central_line() -> dict:
    """A left central line down both halves of one frontal view (it crosses to the vena cava)."""
    masks = torch.zeros(1, 1, 1, 16, 16, dtype=torch.bool)
    masks[0, 0, 0, 0:2, 9] = True
    masks[0, 0, 0, 2, 6:10] = True
    masks[0, 0, 0, 2:8, 6] = True
    return {
        "image": torch.zeros(1, 1, 1, 16, 16),
        "masks": masks,
        "n_findings": torch.tensor([1]),
        "findings": [[LEFT_LINE]],
        "view_roles": [["frontal"]],
    }


def test_with_sides_the_same_right_basal_cells_get_different_labels_in_a_bilateral_study():
    labels = ["atelectasis:bilateral", "atelectasis:right"]
    targets, known = token_targets(two_studies(), labels, (4, 4))

    assert bool(known.all())
    assert targets[0, RIGHT_BASAL_CELLS].tolist() == [[0.0, 1.0]] * 2
    assert targets[1, RIGHT_BASAL_CELLS].tolist() == [[1.0, 0.0]] * 2  # same cells, contradicting label


def test_learning_sides_from_the_study_labels_a_token_by_what_its_cell_shows():
    labels = ["atelectasis", "atelectasis:left", "atelectasis:right"]
    targets, known = token_targets(two_studies(), labels, (4, 4), sides="study")

    right_only = [[0.0] * 4] * 3 + [[1.0, 1.0, 0.0, 0.0]]
    assert targets[0, :, 0].view(4, 4).tolist() == right_only
    assert targets[1, :, 0].view(4, 4).tolist() == [[0.0] * 4] * 3 + [[1.0] * 4]
    assert bool(known[..., 0].all()) and not bool(known[..., 1:].any())  # sided labels: no token is told a side
    study = finding_targets([[RIGHT_ATELECTASIS], [BILATERAL_ATELECTASIS], []], labels, sides="study")
    assert study.tolist() == [[1.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]  # bilateral: left and right


def test_a_new_model_learning_sides_from_the_study_has_unsided_and_one_sided_labels(tmp_path: Path):
    rows = [
        ManifestRow("a", (tmp_path / "a.png",), "", "train", (RIGHT_ATELECTASIS,)),
        ManifestRow("b", (tmp_path / "b.png",), "", "train", (BILATERAL_ATELECTASIS,)),
        ManifestRow("c", (tmp_path / "c.png",), "", "train", (LEFT_LINE,)),
        ManifestRow("d", (tmp_path / "d.png",), "", "train", ({"kind": "cardiomegaly"},)),
    ]
    model = {"finding_head": True, "encoder": {"name": "resnet10", "widen_factor": 0.25, "token_grid": [2, 2]}}
    values = {"output_dir": str(tmp_path / "run"), "data": {"manifest": str(tmp_path / "m.jsonl")}, "model": model}

    by_token = new_model_config(TrainConfig.from_dict(values), rows)
    values["model"]["finding_sides"] = "study"
    by_study = new_model_config(TrainConfig.from_dict(values), rows)

    assert by_token.finding_labels == [
        "atelectasis:bilateral",
        "atelectasis:right",
        "cardiomegaly",
        "support_device:left:central_line",
    ]
    assert by_study.finding_labels == [
        "atelectasis",
        "atelectasis:left",
        "atelectasis:right",
        "cardiomegaly",
        "support_device:central_line",
        "support_device:left:central_line",
    ]
    values["model"]["finding_sides"] = "tokens"
    with pytest.raises(ConfigError, match="finding_sides: expected one of token, study, cell"):
        new_model_config(TrainConfig.from_dict(values), rows)


def test_by_cell_a_frontal_token_shows_the_side_of_its_half_the_same_in_every_study():
    labels = ["atelectasis", "atelectasis:left", "atelectasis:right"]
    targets, known = token_targets(two_studies(), labels, (4, 4), sides="cell")

    assert bool(known.all())
    for study in (0, 1):  # right basal cells: "right" whether the other lung shows it too or not
        assert targets[study, RIGHT_BASAL_CELLS].tolist() == [[1.0, 0.0, 1.0]] * 2
    assert targets[0, LEFT_BASAL_CELLS].tolist() == [[0.0, 0.0, 0.0]] * 2
    assert targets[1, LEFT_BASAL_CELLS].tolist() == [[1.0, 1.0, 0.0]] * 2
    assert targets[:, :12].abs().sum() == 0


def test_by_cell_a_lateral_token_shows_no_side():
    labels = ["atelectasis", "atelectasis:left", "atelectasis:right"]
    targets, known = token_targets(two_studies(role="lateral"), labels, (4, 4), sides="cell")

    reached = RIGHT_BASAL_CELLS + LEFT_BASAL_CELLS
    assert bool(known.all())
    assert targets[1, reached].tolist() == [[1.0, 0.0, 0.0]] * 4  # both lungs overlap there


def test_by_cell_a_central_line_shows_its_side_only_where_it_enters_the_picture_on_that_side():
    labels = ["support_device:central_line", "support_device:left:central_line", "support_device:right:central_line"]
    targets, known = token_targets(a_left_central_line(), labels, (4, 4), sides="cell")

    reached = targets[0, :, 0] > 0
    assert reached.nonzero().flatten().tolist() == [1, 2, 5]  # cells in both halves of the image
    entry = 2  # top row, the patient's left: where a left line enters
    assert targets[0, entry].tolist() == [1.0, 1.0, 0.0]
    assert targets[0, [1, 5], 1:].abs().sum() == 0  # on its way to the vena cava: no side shown
    assert bool(known.all())
    assert finding_targets([[LEFT_LINE]], labels, sides="cell").tolist() == [[1.0, 1.0, 0.0]]


def test_the_token_loss_counts_only_the_labels_tokens_are_taught():
    reports = ["[findings] there is right basilar atelectasis . [impression] atelectasis ."] * 3
    tokenizer = train_tokenizer(reports, min_frequency=1)
    config = MedVLConfig(
        encoder={"name": "resnet10", "widen_factor": 0.25, "token_grid": [2, 2]},
        text_config={"model_type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2, "n_positions": 64},
        preprocessing={"image_size": 32, "max_views": 1},
        text={"max_length": 20},
        finding_labels=["atelectasis", "atelectasis:right"],
    )
    torch.manual_seed(0)
    model = build_model(config, tokenizer).eval()
    images, view_mask = torch.randn(1, 1, 1, 32, 32), torch.ones(1, 1, dtype=torch.bool)
    ids = torch.tensor([[tokenizer.bos_token_id, tokenizer.eos_token_id]])
    study = torch.tensor([[1.0, 1.0]])

    def finding_loss(right_cells: list[float], sided_taught: bool) -> float:
        tokens = torch.zeros(1, 4, 2)
        tokens[0, :, 0] = torch.tensor([0.0, 0.0, 1.0, 1.0])
        tokens[0, :, 1] = torch.tensor(right_cells)
        known = torch.ones(1, 4, 2, dtype=torch.bool)
        known[..., 1] = sided_taught
        with torch.no_grad():
            out = model(images, view_mask, ids, finding_targets=study, token_targets=tokens, token_known=known)
        return float(out.finding_loss)

    assert finding_loss([0.0, 0.0, 1.0, 0.0], True) != finding_loss([0.0, 0.0, 0.0, 0.0], True)
    assert finding_loss([0.0, 0.0, 1.0, 0.0], False) == finding_loss([0.0, 0.0, 0.0, 0.0], False)
