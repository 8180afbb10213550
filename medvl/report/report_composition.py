"""Composed consensus reports: the sentences a group of reports shares, in the order it shares them.

The report bank (:mod:`medvl.report.report_bank`) keeps, per finding pattern, a consensus report
a draft may be. The single training report that agrees best with the others is one
radiologist's report: it says some things few others say ("pa and lateral views of the chest
were obtained") and leaves out some most say. :func:`compose_report` writes the group's consensus
from the sentences its reports share instead, by minimum Bayes risk over sentence sequences: it
starts from the :data:`STARTS` reports that agree best with the group (of those that keep the
rules below), and from each one
changes one sentence at a time (adds a common sentence at any place, drops one, swaps one for a
common sentence, moves one), keeping the change that raises the agreement most, until none
does. The agreement (:class:`ReportEvidence`) is what the draft would score if it were written
for every report of the group: corpus BLEU-4 plus twice the mean ROUGE-L, computed as the published
report-generation papers compute them (pycocoevalcap: closest reference length, ROUGE-L's
F-measure with beta 1.2).

What may be composed, so that the report still reads as one radiologist's:

* sentences added or swapped in are of at least :data:`MIN_SENTENCE_REPORTS` of the group's
  reports (the commonest :data:`POOL_SIZE`); the report it starts from may keep sentences fewer
  reports share;
* every sentence, the starting report's too, in words the model's vocabulary has, without the
  anonymiser's ``xxxx``, stating no finding outside the group's kinds and no CheXpert
  observation none of them shows, and naming no side unless it states a finding ("the right
  lung is clear" would contradict a left-sided finding the draft is later given);
* no finding or observation mentioned twice (present or absent: one "no pneumothorax");
* the composed report states exactly the group's finding kinds.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache

from rapidfuzz.distance import LCSseq

from medvl.evaluate.chexpert import NO_FINDING, label_chexpert
from medvl.evaluate.labeler import label_report
from medvl.model.consensus import BLEU_ORDER, ngram_counts
from medvl.report.finding_sentences import observation_of, stated_findings
from medvl.text import split_sentences

STARTS = 8
POOL_SIZE = 60
MIN_SENTENCE_REPORTS = 3
ROUGE_BETA = 1.2  # pycocoevalcap's Rouge
ROUGE_WEIGHT = 2.0  # chosen on the IU-phantom val split (1: ROUGE-L 0.399; 2 and 3: 0.410)
SIDE_WORDS = frozenset({"left", "right", "bilateral", "bilaterally"})
ANONYMISED = "xxxx"


class ReportEvidence:
    """How well one draft agrees with a group's reports, were it written for each of them."""

    def __init__(self, reports: Iterable[str]) -> None:
        self.references = [report.split() for report in reports]
        self.reference_words = sum(len(words) for words in self.references)
        self.counts: list[dict[tuple[str, ...], list[int]]] = [defaultdict(list) for _ in range(BLEU_ORDER)]
        for words in self.references:
            for order, grams in enumerate(ngram_counts(words)):
                for gram, count in grams.items():
                    self.counts[order][gram].append(count)

    def bleu(self, words: Sequence[str]) -> float:
        """Corpus BLEU-4 of ``words`` as the draft of every report (pycocoevalcap's, unsmoothed)."""
        if not words:
            return 0.0
        log_precision = 0.0
        for order, grams in enumerate(ngram_counts(words)):
            matched = sum(min(count, found) for gram, count in grams.items() for found in self.counts[order].get(gram, ()))
            total = len(self.references) * sum(grams.values())
            log_precision += math.log((matched + 1e-9) / (total + 1e-9)) / BLEU_ORDER
        brevity = min(0.0, 1.0 - self.reference_words / (len(self.references) * len(words)))
        return math.exp(log_precision + brevity)

    def rouge_l(self, words: Sequence[str]) -> float:
        """Mean ROUGE-L (F-measure, beta 1.2) of ``words`` against each report."""
        beta2 = ROUGE_BETA**2
        total = 0.0
        for reference in self.references:
            common = LCSseq.similarity(words, reference)
            if common:
                precision, recall = common / len(words), common / len(reference)
                total += (1 + beta2) * precision * recall / (recall + beta2 * precision)
        return total / len(self.references)

    def agreement(self, words: Sequence[str]) -> float:
        """BLEU-4 plus :data:`ROUGE_WEIGHT` times ROUGE-L: what :func:`compose_report` raises."""
        return self.bleu(words) + ROUGE_WEIGHT * self.rouge_l(words)


def compose_report(reports: Sequence[str], kinds: frozenset[str], vocabulary: set[str]) -> str | None:
    """The composed consensus of cleaned, untagged ``reports`` of studies showing the finding
    ``kinds``, or ``None`` where no report of the group can start it (none keeps the rules)."""
    evidence = ReportEvidence(reports)
    distinct = list(dict.fromkeys(tuple(split_sentences(report)) for report in reports))
    every_sentence = {sentence for sentences in distinct for sentence in sentences}
    usable = {sentence for sentence in every_sentence if _usable(sentence, kinds, vocabulary)}  # each judged once
    pool = _sentence_pool(reports, usable)
    starts = [sentences for sentences in distinct if usable.issuperset(sentences) and _keeps_rules(sentences, kinds)]
    if not starts:
        return None
    starts = sorted(starts, key=lambda sentences: -evidence.agreement(_words(sentences)))[:STARTS]
    climbed = [_climb(list(start), pool, kinds, evidence) for start in starts]
    return " ".join(max(climbed, key=lambda result: result[0])[1])


def _climb(sentences: list[str], pool: Sequence[str], kinds: frozenset[str], evidence: ReportEvidence) -> tuple[float, list[str]]:
    """Hill-climb from ``sentences`` by single-sentence changes; the best agreement and its sentences."""
    best = evidence.agreement(_words(sentences))
    while True:
        changes = [change for change in _changes(sentences, pool) if change and _keeps_rules(change, kinds)]
        scored = [(evidence.agreement(_words(change)), change) for change in changes]
        if not scored:
            return best, sentences
        score, change = max(scored, key=lambda item: item[0])
        if score <= best + 1e-9:
            return best, sentences
        best, sentences = score, change


def _changes(sentences: list[str], pool: Sequence[str]) -> Iterable[list[str]]:
    """Every report one change away: a pool sentence added anywhere, a sentence dropped, moved or
    swapped for a pool sentence."""
    for sentence in pool:
        if sentence not in sentences:
            for place in range(len(sentences) + 1):
                yield [*sentences[:place], sentence, *sentences[place:]]
    for index, sentence in enumerate(sentences):
        rest = [*sentences[:index], *sentences[index + 1 :]]
        yield rest
        for place in range(len(rest) + 1):
            if place != index:
                yield [*rest[:place], sentence, *rest[place:]]
        for other in pool:
            if other not in sentences:
                yield [*sentences[:index], other, *sentences[index + 1 :]]


def _sentence_pool(reports: Sequence[str], usable: set[str]) -> list[str]:
    """The commonest ``usable`` sentences of at least :data:`MIN_SENTENCE_REPORTS` reports, each
    counted once per report that has it."""
    counts = Counter(sentence for report in reports for sentence in set(split_sentences(report)))
    common = [sentence for sentence, count in counts.most_common() if count >= MIN_SENTENCE_REPORTS]
    return [sentence for sentence in common if sentence in usable][:POOL_SIZE]


def _usable(sentence: str, kinds: frozenset[str], vocabulary: set[str]) -> bool:
    """Whether a sentence may be in a composed report of a group with these finding kinds."""
    words = sentence.split()
    if ANONYMISED in words or not all(word in vocabulary for word in words):
        return False
    stated = stated_findings(sentence)
    if any(kind not in kinds for kind, _, _ in stated) or (not stated and SIDE_WORDS & set(words)):
        return False
    shown = {observation_of(kind) for kind in kinds} | {NO_FINDING}
    return not label_chexpert(sentence).positive() - shown


def _keeps_rules(sentences: Sequence[str], kinds: frozenset[str]) -> bool:
    """Nothing mentioned twice, and exactly the group's finding kinds stated."""
    seen: set[str] = set()
    for sentence in sentences:
        mentioned = _mentioned(sentence)
        if mentioned & seen:
            return False
        seen |= mentioned
    return {kind for sentence in sentences for kind, _, _ in stated_findings(sentence)} == kinds


@lru_cache(maxsize=16384)
def _mentioned(sentence: str) -> frozenset[str]:
    """The finding kinds and CheXpert observations a sentence mentions, present or absent."""
    return frozenset(set(label_report(sentence).status) | set(label_chexpert(sentence).status) - {NO_FINDING})


def _words(sentences: Sequence[str]) -> list[str]:
    return " ".join(sentences).split()

