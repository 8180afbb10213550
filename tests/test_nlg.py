"""Word-overlap metrics: identical and disjoint texts, a case worked by hand, agreement with the
pycocoevalcap scorers called directly (R2Gen's way), input checks, and METEOR (Java, slow)."""

from __future__ import annotations

import math
import shutil

import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

from medvl.errors import ConfigError, MedVLError
from medvl.evaluate.nlg import nlg_metrics
from medvl.text import CleaningConfig, clean_report

WITHOUT_METEOR = ("bleu", "rouge", "cider")
BLEU_KEYS = ("BLEU_1", "BLEU_2", "BLEU_3", "BLEU_4")
REFERENCES = [
    "the heart size is normal . the lungs are clear . no pleural effusion or pneumothorax .",
    "there is a small left pleural effusion . no pneumothorax .",
    "mild cardiomegaly . no focal consolidation .",
]
HYPOTHESES = [
    "the heart is normal . the lungs are clear . no effusion or pneumothorax .",
    "small right pleural effusion . no pneumothorax .",
    "the heart is enlarged . no consolidation .",
]


def test_identical_texts_score_one_and_print_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    scores = nlg_metrics(REFERENCES, REFERENCES, metrics=WITHOUT_METEOR)
    assert list(scores) == [*BLEU_KEYS, "ROUGE_L", "CIDEr"]
    for key in BLEU_KEYS:
        assert scores[key] == pytest.approx(1.0, abs=1e-6)
    assert scores["ROUGE_L"] == 1.0
    assert scores["CIDEr"] > 5.0  # CIDEr-D of a perfect match is about 10 (it is scaled by 10)
    assert capsys.readouterr().out == ""


def test_disjoint_texts_score_zero() -> None:
    scores = nlg_metrics(["the heart is normal ."], ["big cat sat here"], metrics=WITHOUT_METEOR)
    assert all(scores[key] < 1e-9 for key in BLEU_KEYS)
    assert scores["ROUGE_L"] == 0.0 and scores["CIDEr"] == 0.0


def test_a_case_worked_by_hand() -> None:
    """Every n-gram of the 5-token hypothesis is in the 8-token reference: each BLEU-n is the
    brevity penalty exp(1 - 8/5); ROUGE-L has LCS 5, so P = 1, R = 5/8, F(beta=1.2)."""
    scores = nlg_metrics(
        {"a": "the heart is normal . no effusion ."}, {"a": "the heart is normal ."}, metrics=WITHOUT_METEOR
    )
    for key in BLEU_KEYS:
        assert scores[key] == pytest.approx(math.exp(1 - 8 / 5), rel=1e-6)
    precision, recall, beta = 1.0, 5 / 8, 1.2
    assert scores["ROUGE_L"] == pytest.approx((1 + beta**2) * precision * recall / (recall + beta**2 * precision))


def test_scores_equal_pycocoevalcap_called_as_r2gen_calls_it() -> None:
    gts = {i: [text] for i, text in enumerate(REFERENCES)}
    res = {i: [text] for i, text in enumerate(HYPOTHESES)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    expected = {**dict(zip(BLEU_KEYS, bleu, strict=True)), "ROUGE_L": rouge, "CIDEr": cider}
    assert nlg_metrics(REFERENCES, HYPOTHESES, metrics=WITHOUT_METEOR) == pytest.approx(expected)
    keyed = nlg_metrics(
        dict(zip("abc", REFERENCES, strict=True)), dict(zip("abc", HYPOTHESES, strict=True)), metrics=WITHOUT_METEOR
    )
    assert keyed == pytest.approx(expected)
    assert 0.3 < expected["BLEU_1"] < 1.0 and 0.0 < expected["BLEU_4"] < expected["BLEU_1"]


def test_cleaning_raw_texts_the_r2gen_way() -> None:
    raw_references = ["The heart size is normal.  The lungs are clear.\nNo pleural effusion or pneumothorax."]
    raw_hypotheses = ["The heart is normal. The lungs are clear."]
    r2gen = CleaningConfig(style="r2gen_iu")
    cleaned = nlg_metrics(
        [clean_report(t, r2gen) for t in raw_references],
        [clean_report(t, r2gen) for t in raw_hypotheses],
        metrics=("bleu",),
    )
    assert nlg_metrics(raw_references, raw_hypotheses, metrics=("bleu",), cleaning=r2gen) == cleaned
    assert nlg_metrics(raw_references, raw_hypotheses, metrics=("bleu",)) != cleaned


def test_bad_inputs() -> None:
    with pytest.raises(MedVLError, match="same studies"):
        nlg_metrics({"a": "x .", "b": "y ."}, {"a": "x ."}, metrics=("bleu",))
    with pytest.raises(MedVLError, match="same studies"):
        nlg_metrics(["x ."], ["x .", "y ."], metrics=("bleu",))
    with pytest.raises(MedVLError, match="empty"):
        nlg_metrics([], [], metrics=("bleu",))
    with pytest.raises(MedVLError, match="one string"):
        nlg_metrics("x .", "x .", metrics=("bleu",))
    with pytest.raises(ConfigError, match="metrics"):
        nlg_metrics(["x ."], ["x ."], metrics=("bleu", "spice"))


def test_meteor_without_java_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(MedVLError, match="METEOR needs Java"):
        nlg_metrics(["x ."], ["x ."], metrics=("meteor",))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("java") is None, reason="METEOR needs a Java runtime (java not on PATH)")
def test_meteor_runs_java_quietly(capsys: pytest.CaptureFixture[str]) -> None:
    scores = nlg_metrics(REFERENCES, REFERENCES)  # the default: all four metrics
    assert list(scores) == [*BLEU_KEYS, "METEOR", "ROUGE_L", "CIDEr"]
    assert scores["METEOR"] == pytest.approx(1.0)
    assert capsys.readouterr().out == ""
