"""The report bank: training reports grouped by their findings, the evidence a draft is chosen by.

A small decoder trained on a few thousand reports ranks one radiologist's wording first as often
as the wording most radiologists share. With ``decoding.report_bank`` the draft is chosen by
minimum Bayes risk against real reports of studies like this one: the training reports whose
drawn findings are of the finding kinds the head sees (their *group*: the same kinds, whatever
their sides; at least
:data:`MIN_GROUP_REPORTS` of them). Of the candidates the finding check keeps, the one with the
highest mean BLEU-4 against the group's reports (a seeded sample of at most
:data:`MAX_GROUP_REPORTS`) is kept:

* ``"choose"``: the candidates are the decoder's beams; it writes every word;
* ``"consensus"``: the group's *consensus report* competes too: composed from the sentences
  most of the group's reports share, in the order they share them
  (:mod:`medvl.report.report_composition`), or, where nothing can be composed (targets of several
  sections), the group's report (in the model's vocabulary) with the highest mean BLEU-4 against
  the others, as the ``label consensus`` baseline chooses with the test labels
  (:mod:`medvl.evaluate.baselines`). It is how a radiologist's normal template works: the
  commonest wording of a normal study.

Studies whose finding pattern has no group (a rare combination) keep the finding check's choice.
A group's reports state its findings on either side; with ``decoding.state_findings`` the kept
draft then loses a sentence that states a finding on a side the head does not see it on and
gains the seen side's finding sentence (:mod:`medvl.report.finding_sentences`), so decode with
both.
The bank is written at calibration (:func:`medvl.train.calibration.calibrate`) into the model
folder as ``report_bank.json``. It holds training report text: build it from de-identified
reports only (``medvl deid``), as IU X-ray's are.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from medvl.errors import ModelError
from medvl.files import atomic_write_text
from medvl.findings import label_kind
from medvl.model.consensus import counted_bleu, ngram_counts
from medvl.report.finding_sentences import is_section_tag, untagged
from medvl.report.report_composition import compose_report

BANK_FILE = "report_bank.json"
MIN_GROUP_REPORTS = 30
MAX_GROUP_REPORTS = 150
BANK_MODES = ("off", "choose", "consensus")


@dataclass(frozen=True)
class ReportGroup:
    """The training reports of one finding pattern: a sample of them and their consensus."""

    kinds: frozenset[str]  # finding kinds ("opacity"); empty for normal studies
    n_reports: int
    reports: tuple[str, ...]  # tagged report targets, as the decoder writes them
    consensus: str

    def support(self, text: str) -> float:
        """The mean BLEU-4 of ``text`` against the group's reports (words, section tags included)."""
        words = text.split()
        counts = ngram_counts(words)
        evidence = self.evidence
        return sum(counted_bleu(counts, len(words), grams, length) for grams, length in evidence) / len(evidence)

    @cached_property
    def evidence(self) -> list[tuple[list[Counter], int]]:
        """The reports' n-gram counts and lengths, counted once per group."""
        return [(ngram_counts(report.split()), len(report.split())) for report in self.reports]

    def closest(self, texts: Sequence[str]) -> int:
        """The index of the text with the highest support (the first among equals)."""
        supports = [self.support(text) for text in texts]
        return max(range(len(texts)), key=lambda index: (supports[index], -index))


def consensus_report(reports: Sequence[str], evidence: Sequence[str]) -> str:
    """Of the distinct ``reports``, the one with the highest summed BLEU-4 against ``evidence``."""
    evidence_counts = [(ngram_counts(text.split()), len(text.split())) for text in evidence]
    candidates = list(dict.fromkeys(reports))  # distinct, first seen first
    support = [
        sum(counted_bleu(ngram_counts(text.split()), len(text.split()), grams, length) for grams, length in evidence_counts)
        for text in candidates
    ]
    return candidates[max(range(len(candidates)), key=lambda index: (support[index], -index))]


def build_report_bank(
    reports: Iterable[tuple[str, frozenset[str]]],
    vocabulary: set[str],
    min_reports: int = MIN_GROUP_REPORTS,
    max_reports: int = MAX_GROUP_REPORTS,
    seed: int = 0,
    compose: bool = True,
) -> list[ReportGroup]:
    """Groups of (tagged report target, finding kinds) pairs with at least ``min_reports`` reports;
    each keeps a seeded sample of ``max_reports`` and its consensus: composed from its reports'
    sentences (``compose``, :func:`composed_consensus`), else (or where that cannot be) the one
    of its reports whose words are all in ``vocabulary`` (the model can write and read them)
    that agrees best with the sample."""
    by_kinds: dict[frozenset[str], list[str]] = defaultdict(list)
    for text, kinds in reports:
        by_kinds[frozenset(kinds)].append(text)
    groups = []
    for kinds, texts in sorted(by_kinds.items(), key=lambda item: (-len(item[1]), sorted(item[0]))):
        writable = [text for text in texts if all(word in vocabulary for word in text.split())]
        if len(texts) < min_reports or not writable:
            continue
        sample = texts if len(texts) <= max_reports else random.Random(seed).sample(texts, max_reports)
        consensus = (composed_consensus(texts, kinds, vocabulary) if compose else None) or consensus_report(writable, sample)
        groups.append(ReportGroup(kinds, len(texts), tuple(sample), consensus))
    return groups


def composed_consensus(texts: Sequence[str], kinds: frozenset[str], vocabulary: set[str]) -> str | None:
    """The consensus :func:`~medvl.report.report_composition.compose_report` writes from tagged
    one-section report targets, tagged as they are; ``None`` for targets of several sections or
    where nothing can be composed."""
    tags = {tuple(word for word in text.split() if is_section_tag(word)) for text in texts}
    if len(tags) != 1 or len(next(iter(tags))) > 1:
        return None
    (tag,) = tags
    composed = compose_report([untagged(text) for text in texts], kinds, vocabulary)
    return " ".join([*tag, composed]) if composed else None


class ReportBank:
    """The groups of a model's report bank, found by the finding labels the head sees."""

    def __init__(self, groups: Iterable[ReportGroup]) -> None:
        self.groups = {group.kinds: group for group in groups}

    def group(self, labels: Iterable[str]) -> ReportGroup | None:
        """The group of exactly the finding kinds of these finding-head labels, or ``None``."""
        return self.groups.get(frozenset(label_kind(label) for label in labels))

    def save(self, model_dir: str | Path) -> Path:
        """Write ``report_bank.json`` into ``model_dir`` (atomically)."""
        rows = [
            {"kinds": sorted(group.kinds), "n_reports": group.n_reports, "consensus": group.consensus,
             "reports": list(group.reports)}
            for group in self.groups.values()
        ]
        path = Path(model_dir) / BANK_FILE
        atomic_write_text(path, json.dumps({"groups": rows}, indent=1) + "\n")
        return path

    @classmethod
    def load(cls, model_dir: str | Path) -> ReportBank | None:
        """The bank in ``model_dir``, or ``None`` where it has none."""
        path = Path(model_dir) / BANK_FILE
        if not path.is_file():
            return None
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))["groups"]
            return cls(
                ReportGroup(frozenset(row["kinds"]), int(row["n_reports"]), tuple(row["reports"]), row["consensus"])
                for row in rows
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"unreadable report bank: {exc}", path) from exc
