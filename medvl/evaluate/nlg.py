"""Word-overlap metrics as the report-generation papers compute them.

R2Gen (and R2GenCMN, and most IU X-ray / MIMIC-CXR papers after them) score with the
``pycocoevalcap`` scorers on their cleaned texts, one reference per study, no further
tokenisation (the scorers split on spaces): ``Bleu(4)`` (corpus-level BLEU-1..4 with the
"closest" reference length), ``Meteor()`` (METEOR 1.5, a Java subprocess), ``Rouge()``
(ROUGE-L, F-measure with beta 1.2, averaged over studies). :func:`nlg_metrics` does the same and
adds ``Cider()`` (CIDEr-D, document frequencies from the references given). The keys are
R2Gen's: ``BLEU_1`` ... ``BLEU_4``, ``METEOR``, ``ROUGE_L``, plus ``CIDEr``.

Pass ``cleaning=CleaningConfig(style="r2gen_iu")`` to clean raw texts as R2Gen does before
scoring; texts already cleaned (model outputs, cleaned references) are scored as given, only
their whitespace runs (line breaks included) collapsed to single spaces.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge

from medvl.errors import ConfigError, MedVLError
from medvl.text import CleaningConfig, clean_report

METRICS = ("bleu", "meteor", "rouge", "cider")

_Texts = Mapping[str, str] | Sequence[str]
_CocoTexts = dict[str, list[str]]


def nlg_metrics(
    references: _Texts,
    hypotheses: _Texts,
    metrics: Sequence[str] = METRICS,
    cleaning: CleaningConfig | None = None,
) -> dict[str, float]:
    """BLEU-1..4, METEOR, ROUGE-L and CIDEr of ``hypotheses`` against ``references``.

    Both are dicts keyed by study id (the same ids) or lists in the same order. ``metrics``
    picks among :data:`METRICS`; METEOR needs ``java`` on the PATH and raises a
    :class:`MedVLError` saying so when it is missing (leave "meteor" out to score without it).
    """
    unknown = [name for name in metrics if name not in _SCORERS]
    if isinstance(metrics, str) or unknown or not metrics:
        raise ConfigError(f"metrics: expected a non-empty list of {', '.join(METRICS)}, got {metrics!r}")
    gts, res = _coco_texts(references, hypotheses, cleaning)
    scores: dict[str, float] = {}
    for name in metrics:
        scores.update(_SCORERS[name](gts, res))
    return scores


def _coco_texts(
    references: _Texts, hypotheses: _Texts, cleaning: CleaningConfig | None
) -> tuple[_CocoTexts, _CocoTexts]:
    """``{id: [text]}`` for each side, as the pycocoevalcap scorers take them."""
    refs, hyps = paired_texts(references, hypotheses)

    def prepare(text: str) -> list[str]:
        return [" ".join((clean_report(text, cleaning) if cleaning else text).split())]

    return {key: prepare(text) for key, text in refs.items()}, {key: prepare(text) for key, text in hyps.items()}


def paired_texts(references: _Texts, hypotheses: _Texts) -> tuple[dict[str, str], dict[str, str]]:
    """References and hypotheses keyed by study, checked to cover the same, non-empty set."""
    refs, hyps = _keyed(references, "references"), _keyed(hypotheses, "hypotheses")
    if refs.keys() != hyps.keys():
        missing = sorted(set(refs) - set(hyps))[:3]
        extra = sorted(set(hyps) - set(refs))[:3]
        raise MedVLError(
            f"references and hypotheses must cover the same studies ({len(refs)} vs {len(hyps)} texts; "
            f"without hypothesis: {missing or 'none'}; without reference: {extra or 'none'})"
        )
    if not refs:
        raise MedVLError("no texts to score: references and hypotheses are empty")
    return refs, hyps


def _keyed(texts: _Texts, what: str) -> dict[str, str]:
    if isinstance(texts, str):
        raise MedVLError(f"{what}: expected a dict of texts by study id or a list of texts, got one string")
    keyed = dict(texts) if isinstance(texts, Mapping) else {str(number): text for number, text in enumerate(texts)}
    for key, text in keyed.items():
        if not isinstance(text, str):
            raise MedVLError(f"{what}[{key!r}]: expected a text, got {type(text).__name__}")
    return keyed


# --- the scorers ---------------------------------------------------------------------------------
def _bleu(gts: _CocoTexts, res: _CocoTexts) -> dict[str, float]:
    scores, _ = Bleu(4).compute_score(gts, res, verbose=0)
    return {f"BLEU_{n}": float(score) for n, score in enumerate(scores, start=1)}


def _meteor(gts: _CocoTexts, res: _CocoTexts) -> dict[str, float]:
    if shutil.which("java") is None:
        raise MedVLError(
            "METEOR needs Java (pycocoevalcap runs meteor-1.5.jar): install a Java runtime, "
            "or leave 'meteor' out of metrics"
        )
    try:
        scorer = Meteor()  # starts the Java process; it stops when the scorer is deleted
        score, _ = scorer.compute_score(gts, res)
        del scorer
    except (OSError, ValueError) as exc:
        raise MedVLError(f"METEOR (Java) failed: {exc}") from exc
    return {"METEOR": float(score)}


def _rouge(gts: _CocoTexts, res: _CocoTexts) -> dict[str, float]:
    score, _ = Rouge().compute_score(gts, res)
    return {"ROUGE_L": float(score)}


def _cider(gts: _CocoTexts, res: _CocoTexts) -> dict[str, float]:
    score, _ = Cider().compute_score(gts, res)
    return {"CIDEr": float(score)}


_SCORERS: dict[str, Callable[[_CocoTexts, _CocoTexts], dict[str, float]]] = {
    "bleu": _bleu,
    "meteor": _meteor,
    "rouge": _rouge,
    "cider": _cider,
}
