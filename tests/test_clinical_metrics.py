"""Clinical precision / recall / F1 over the CheXpert observations, and the Markdown score table."""

from __future__ import annotations

import pytest

from medvl.errors import ConfigError, MedVLError
from medvl.evaluate.chexpert import CARDIOMEGALY, NO_FINDING, OBSERVATIONS, PLEURAL_EFFUSION, PNEUMONIA
from medvl.evaluate.clinical import clinical_metrics
from medvl.evaluate.tables import scores_table

REFERENCES = {
    "a": "Small left pleural effusion.",
    "b": "Mild cardiomegaly. No pleural effusion.",
    "c": "Normal chest. No acute abnormality.",
}
HYPOTHESES = {
    "a": "No pleural effusion.",  # misses the effusion, and says No Finding
    "b": "Mild cardiomegaly.",  # right
    "c": "Possible pneumonia.",  # a hedge: not No Finding, pneumonia only if uncertain counts
}


def test_counts_and_scores_with_uncertain_as_negative() -> None:
    scores = clinical_metrics(REFERENCES, HYPOTHESES)
    per = scores["per_observation"]
    assert {name: (c["tp"], c["fp"], c["fn"]) for name, c in per.items() if c["tp"] + c["fp"] + c["fn"]} == {
        NO_FINDING: (0, 1, 1),
        CARDIOMEGALY: (1, 0, 0),
        PLEURAL_EFFUSION: (0, 0, 1),
    }
    assert scores["micro"] == pytest.approx({"precision": 1 / 2, "recall": 1 / 3, "f1": 0.4})
    assert scores["macro"] == pytest.approx({"precision": 1 / 3, "recall": 1 / 3, "f1": 1 / 3, "n_observations": 3})
    assert scores["n_studies"] == 3 and scores["uncertain_as"] == "negative"
    assert list(per) == list(OBSERVATIONS)


def test_uncertain_as_positive_counts_the_hedge() -> None:
    scores = clinical_metrics(REFERENCES, HYPOTHESES, uncertain_as="positive")
    assert (scores["per_observation"][PNEUMONIA]["fp"], scores["macro"]["n_observations"]) == (1, 4)
    assert scores["micro"] == pytest.approx({"precision": 1 / 3, "recall": 1 / 3, "f1": 1 / 3})


def test_identical_reports_score_one_and_lists_pair_by_order() -> None:
    texts = list(REFERENCES.values())
    scores = clinical_metrics(texts, texts)
    assert scores["micro"]["f1"] == scores["macro"]["f1"] == 1.0


def test_mismatched_studies_and_bad_settings_are_errors() -> None:
    with pytest.raises(MedVLError, match="same studies"):
        clinical_metrics(REFERENCES, {"a": "No effusion."})
    with pytest.raises(ConfigError, match="uncertain_as"):
        clinical_metrics(REFERENCES, HYPOTHESES, uncertain_as="ignore")


def test_scores_table_has_one_row_per_model_and_only_columns_some_row_has() -> None:
    rows = {
        "model": {"nlg": {"BLEU_4": 0.1834, "ROUGE_L": 0.41}, "clinical": clinical_metrics(REFERENCES, REFERENCES)},
        "baseline": {"nlg": {"BLEU_4": 0.081}},
    }
    lines = scores_table(rows).splitlines()
    assert lines[0] == (
        "|  | BLEU-4 | ROUGE-L | Clinical P (micro) | Clinical R (micro) | Clinical F1 (micro) | Clinical F1 (macro) |"
    )
    assert lines[1] == "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    assert lines[2] == "| model | 0.183 | 0.410 | 1.000 | 1.000 | 1.000 | 1.000 |"
    assert lines[3] == "| baseline | 0.081 | - | - | - | - | - |"
