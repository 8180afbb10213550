"""Finding thresholds fitted on the validation split (the finding prompt's verdicts)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from train_fixtures import tiny_run

from medvl.errors import ConfigError
from medvl.model import MedVLConfig
from medvl.model.loading import load_model
from medvl.report.finding_sentences import label_key, states_exactly
from medvl.report.report_bank import ReportBank
from medvl.train.calibration import best_threshold, fit_finding_thresholds
from medvl.train.config import TrainConfig
from medvl.train.loop import train


def test_a_head_that_ranks_perfectly_gets_the_middle_of_its_gap():
    probabilities = torch.tensor([0.01, 0.02, 0.2, 0.3])  # every positive below 0.5
    threshold = best_threshold(probabilities, torch.tensor([0, 0, 1, 1]))
    gap_middle = 1 / (1 + math.exp(-(math.log(0.02 / 0.98) + math.log(0.2 / 0.8)) / 2))
    assert threshold == pytest.approx(gap_middle)
    assert ((probabilities > threshold) == torch.tensor([False, False, True, True])).all()


def test_a_head_already_right_at_one_half_keeps_one_half():
    assert best_threshold(torch.tensor([0.1, 0.3, 0.7, 0.9]), torch.tensor([0, 0, 1, 1])) == 0.5


def test_overlapping_classes_get_the_threshold_with_the_best_f1():
    # 0.4 calls 3 of 3 positives with one false (F1 6/7); 0.5 calls 2 (F1 4/5); 0.65 calls 1 (F1 1/2)
    probabilities = torch.tensor([0.1, 0.45, 0.42, 0.6, 0.7])
    targets = torch.tensor([0, 0, 1, 1, 1])
    threshold = best_threshold(probabilities, targets)
    assert 0.1 < threshold < 0.42


def test_labels_with_too_few_positives_keep_one_half():
    probabilities = torch.tensor([[0.1, 0.1], [0.2, 0.2], [0.3, 0.3], [0.35, 0.35], [0.05, 0.05]])
    targets = torch.tensor([[0, 0], [1, 1], [1, 0], [1, 0], [0, 0]])
    thresholds = fit_finding_thresholds(probabilities, targets, min_positives=3)
    assert thresholds[1] == 0.5 and 0.1 < thresholds[0] < 0.2


def test_thresholds_must_match_the_labels():
    with pytest.raises(ConfigError, match="finding_thresholds: expected one number between 0 and 1 per finding label"):
        MedVLConfig(finding_labels=["nodule:left"], finding_thresholds=[0.5, 0.5])
    with pytest.raises(ConfigError, match="finding_prompt needs finding_labels"):
        MedVLConfig(finding_prompt=True)


@pytest.mark.slow
def test_training_with_a_finding_prompt_fits_and_keeps_the_thresholds(tmp_path):
    values = tiny_run(tmp_path, epochs=2)
    values["model"].update(finding_head=True, finding_feedback=True, finding_prompt=True)
    values["data"]["max_val_studies"] = 12

    best = train(TrainConfig.from_dict(values))

    written = json.loads((best / "config.json").read_text())
    model, _ = load_model(best)
    assert written["finding_prompt"] is True
    assert len(written["finding_thresholds"]) == len(written["finding_labels"]) > 0
    assert model.config.finding_thresholds == written["finding_thresholds"]
    assert model.n_prefix_tokens == model.n_visual_tokens + len(written["finding_labels"])
    for label, sentence in written["finding_sentences"].items():  # mined from the training reports
        assert states_exactly(sentence, label_key(label))
    bank = ReportBank.load(best)  # written with them; 40 studies make few groups of 30
    assert bank is not None and all(group.n_reports >= 30 for group in bank.groups.values())
