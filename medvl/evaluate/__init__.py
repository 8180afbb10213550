"""Evaluation of drafted reports.

* :func:`label_report` - a rule-based clinical labeler (CheXpert/NegBio style): each finding kind
  a report names, as positive, uncertain or negative, with side, zone and size;
* :func:`finding_accuracy` - does each draft name exactly its study's true findings (phantoms,
  or any manifest with findings)? Overall, abnormal, normal and per-kind, with per-study errors;
* :func:`nlg_metrics` - BLEU-1..4, METEOR, ROUGE-L and CIDEr as R2Gen computes them (pycocoevalcap).
"""

from medvl.evaluate.findings import finding_accuracy, score_study
from medvl.evaluate.labeler import (
    CUES,
    FINDING_PHRASES,
    Cue,
    FindingKey,
    Mention,
    Phrase,
    ReportLabels,
    find_mentions,
    label_report,
)
from medvl.evaluate.nlg import METRICS, nlg_metrics

__all__ = [
    "CUES",
    "FINDING_PHRASES",
    "METRICS",
    "Cue",
    "FindingKey",
    "Mention",
    "Phrase",
    "ReportLabels",
    "find_mentions",
    "finding_accuracy",
    "label_report",
    "nlg_metrics",
    "score_study",
]
