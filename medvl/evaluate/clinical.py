"""Clinical efficacy: precision, recall and F1 of the CheXpert observations a report states.

Each reference and each generated report is labelled with :func:`medvl.evaluate.chexpert.label_chexpert`.
An observation counts as present in a report when its label is positive; an uncertain label
counts as absent by default (``uncertain_as="negative"``, the usual choice in report-generation
papers) or as present (``uncertain_as="positive"``). Negative and blank labels are absent.
"No Finding" is one of the 14 observations, as in those papers.

Per observation: ``tp`` (present in both), ``fp`` (only in the generated report), ``fn`` (only
in the reference); precision ``tp / (tp + fp)``, recall ``tp / (tp + fn)``, F1 their harmonic
mean, each 0 where its denominator is 0.

* **micro**: precision, recall and F1 of the counts summed over the 14 observations;
* **macro**: the mean over the observations present in at least one reference or generated
  report (an observation that appears nowhere has no F1 to average); ``n_observations`` says
  how many that is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from medvl.errors import ConfigError
from medvl.evaluate.chexpert import OBSERVATIONS, label_chexpert
from medvl.evaluate.labeler import NEGATIVE, POSITIVE
from medvl.evaluate.nlg import paired_texts  # the same reading and checks as the NLG metrics

UNCERTAIN_AS = (NEGATIVE, POSITIVE)

_Texts = Mapping[str, str] | Sequence[str]


def clinical_metrics(
    references: _Texts, hypotheses: _Texts, uncertain_as: str = NEGATIVE
) -> dict[str, Any]:
    """Micro and macro clinical precision / recall / F1 of ``hypotheses`` against ``references``.

    Both are dicts keyed by study id (the same ids) or lists in the same order, of raw or cleaned
    report text. Returns ``{"uncertain_as", "n_studies", "micro": {precision, recall, f1},
    "macro": {precision, recall, f1, n_observations}, "per_observation": {name: {tp, fp, fn,
    precision, recall, f1}}}``.
    """
    if uncertain_as not in UNCERTAIN_AS:
        raise ConfigError(f"uncertain_as: expected one of {', '.join(UNCERTAIN_AS)}, got {uncertain_as!r}")
    refs, hyps = paired_texts(references, hypotheses)
    counts = {observation: {"tp": 0, "fp": 0, "fn": 0} for observation in OBSERVATIONS}
    for key, reference in refs.items():
        truth = _present(reference, uncertain_as)
        predicted = _present(hyps[key], uncertain_as)
        for observation in OBSERVATIONS:
            if observation in truth and observation in predicted:
                counts[observation]["tp"] += 1
            elif observation in predicted:
                counts[observation]["fp"] += 1
            elif observation in truth:
                counts[observation]["fn"] += 1
    per_observation = {observation: {**c, **_scores(c["tp"], c["fp"], c["fn"])} for observation, c in counts.items()}
    occurring = [s for s in per_observation.values() if s["tp"] + s["fp"] + s["fn"] > 0]
    totals = {name: sum(c[name] for c in counts.values()) for name in ("tp", "fp", "fn")}
    macro = {
        name: sum(s[name] for s in occurring) / len(occurring) if occurring else 0.0
        for name in ("precision", "recall", "f1")
    }
    return {
        "uncertain_as": uncertain_as,
        "n_studies": len(refs),
        "micro": _scores(totals["tp"], totals["fp"], totals["fn"]),
        "macro": {**macro, "n_observations": len(occurring)},
        "per_observation": per_observation,
    }


@lru_cache(maxsize=8192)
def _present(text: str, uncertain_as: str) -> frozenset[str]:
    """The observations counted as present in ``text`` (cached: baselines repeat one text)."""
    return label_chexpert(text).positive(uncertain_as)


def _scores(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}

