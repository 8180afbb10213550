"""Text baselines on the IU X-ray test reports, scored exactly as models are.

None of them looks at an image; they show what word-overlap metrics give for free.

* **commonest report**: the training report written most often, for every study;
* **normal template**: the six most frequent training sentences, most frequent first, for every
  study;
* **label retrieval (oracle)**: for each test study, the commonest training report whose
  positive CheXpert observations (:func:`medvl.evaluate.chexpert.label_chexpert`) are exactly
  those of the test report; where no training report has them, the one whose observations
  overlap most (Jaccard), then the commonest. It sees the test labels: an upper reference for a
  model that gets every finding right but has no say in the wording;
* **label consensus (oracle)**: as label retrieval, but of the training reports with those
  observations the one that agrees most with the others (the highest mean BLEU-4 against them:
  minimum Bayes risk, :func:`medvl.report.report_bank.consensus_report` on words). It shows how far a
  model that reads every finding right can go on word overlap by choosing its wording well;
* **composed normal report**: the report :func:`medvl.report.report_composition.compose_report`
  writes from the training reports that state no finding (the sentences most of them share, in
  their order), for every study: the normal wording the report bank drafts, without an image;
* **finding composition (oracle)**: per test study, the composed report of the training reports
  that state exactly the finding kinds its report states (groups of at least
  :data:`COMPOSITION_MIN_REPORTS`), else its label consensus: the report bank with a finding head
  that is never wrong;
* **phantom reader (oracle)**: per test study, the phantom report template
  (:func:`medvl.data.phantom.reports.make_report`, findings section) of exactly the findings its
  IU-phantom (seed 0) draws, a normal report where it draws none: the clinical scores of a model
  that reads every phantom perfectly, the ceiling of the IU-phantom set (its wording is not IU's);
* **text-only language model**: a word trigram model of the training reports (backing off to
  bigrams and unigrams), decoded greedily from the report start, never repeating a trigram,
  until the end of the report. Without an image it writes one report, the same for every study.

Every text is cleaned with R2Gen's IU X-ray cleaning (``r2gen_iu``) and scored with
:func:`medvl.evaluate.nlg.nlg_metrics` (pycocoevalcap) and
:func:`medvl.evaluate.clinical.clinical_metrics` against the full cleaned reference, as
``medvl eval`` scores a model. With ``r2gen_references`` the references are the ones R2Gen's
test loop scores against instead (:func:`as_r2gen_references`): cut to 59 words, rare words
``<unk>``.

    python -m medvl.evaluate.baselines --annotation ../shared/data/iu_xray/annotation.json --out docs/baselines
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medvl.data.iu_phantom import iu_findings, read_iu_annotation, study_seed
from medvl.data.phantom.reports import make_report
from medvl.data.phantom.study import REPORT_STREAM, stream
from medvl.evaluate.chexpert import NO_FINDING, label_chexpert
from medvl.evaluate.clinical import UNCERTAIN_AS, clinical_metrics
from medvl.evaluate.nlg import METRICS, nlg_metrics
from medvl.evaluate.tables import scores_table
from medvl.files import atomic_write_text
from medvl.report.finding_sentences import stated_findings
from medvl.report.report_bank import consensus_report
from medvl.report.report_composition import compose_report
from medvl.text import CleaningConfig, clean_report, split_sentences

CLEANING = CleaningConfig(style="r2gen_iu")
TEMPLATE_SENTENCES = 6
BASELINES = (
    "commonest report",
    "normal template",
    "label retrieval (oracle)",
    "label consensus (oracle)",
    "composed normal report",
    "finding composition (oracle)",
    "phantom reader (oracle)",
    "text-only trigram LM",
)
COMPOSITION_MIN_REPORTS = 10  # the finding composition oracle composes groups of at least this many reports
CONSENSUS_SAMPLE = 150  # a label group's consensus is measured against at most this many of its reports (seeded)
R2GEN_MAX_WORDS = 59  # R2Gen's max_seq_length (60) counts the start token
R2GEN_MIN_COUNT = 3  # R2Gen's vocabulary threshold
_START, _END = "<s>", "</s>"


# --- the baselines -------------------------------------------------------------------------------
def commonest_report(train_reports: Sequence[str]) -> str:
    """The cleaned training report seen most often (the first seen among equals)."""
    return Counter(train_reports).most_common(1)[0][0]


def normal_template(train_reports: Sequence[str], n_sentences: int = TEMPLATE_SENTENCES) -> str:
    """The ``n_sentences`` most frequent cleaned training sentences, most frequent first."""
    counts = Counter(sentence for report in train_reports for sentence in split_sentences(report))
    return " ".join(sentence for sentence, _ in counts.most_common(n_sentences))


def label_retrieval(
    train_reports: Sequence[str], test_reports: Mapping[str, str], uncertain_as: str = "negative"
) -> dict[str, str]:
    """Per test study, a training report with the same positive CheXpert observations (an oracle)."""
    groups = _label_groups(train_reports, uncertain_as)
    retrieved = {}
    for study_id, report in test_reports.items():
        labels = _closest_labels(groups, label_chexpert(report).positive(uncertain_as))
        retrieved[study_id] = Counter(groups[labels]).most_common(1)[0][0]
    return retrieved


def label_consensus(
    train_reports: Sequence[str],
    test_reports: Mapping[str, str],
    uncertain_as: str = "negative",
    sample: int = CONSENSUS_SAMPLE,
) -> dict[str, str]:
    """Per test study, the training report of its label group that agrees most with the group (an oracle).

    The group is chosen as in :func:`label_retrieval`; each of its distinct reports is scored by
    its summed BLEU-4 against the group's reports (a seeded sample of ``sample`` where larger).
    """
    groups = _label_groups(train_reports, uncertain_as)
    chosen: dict[frozenset[str], str] = {}
    consensus = {}
    for study_id, report in test_reports.items():
        labels = _closest_labels(groups, label_chexpert(report).positive(uncertain_as))
        if labels not in chosen:
            chosen[labels] = _group_consensus(groups[labels], sample)
        consensus[study_id] = chosen[labels]
    return consensus


def _group_consensus(reports: Sequence[str], sample: int) -> str:
    """The distinct report with the highest summed BLEU-4 against (a sample of) ``reports``."""
    references = list(reports) if len(reports) <= sample else random.Random(0).sample(list(reports), sample)
    return consensus_report(reports, references)


def composed_normal_report(train_reports: Sequence[str]) -> str:
    """The composed report of the training reports that state no finding (no CheXpert observation
    but "No Finding", no finding kind), in the training reports' words; the normal template where
    none can be composed."""
    normal = [report for report in train_reports if label_chexpert(report).positive() == {NO_FINDING} and not _kinds(report)]
    return compose_report(normal, frozenset(), _vocabulary(train_reports)) or normal_template(train_reports)


def finding_composition(
    train_reports: Sequence[str], test_reports: Mapping[str, str], fallback: Mapping[str, str]
) -> dict[str, str]:
    """Per test study, the composed report of the training reports stating exactly the finding kinds
    its report states (an oracle), or its ``fallback`` report where they are fewer than
    :data:`COMPOSITION_MIN_REPORTS` or none can be composed."""
    groups: dict[frozenset[str], list[str]] = defaultdict(list)
    for report in train_reports:
        groups[_kinds(report)].append(report)
    vocabulary = _vocabulary(train_reports)
    composed: dict[frozenset[str], str | None] = {}
    written = {}
    for study_id, report in test_reports.items():
        kinds = _kinds(report)
        if kinds not in composed:
            enough = len(groups[kinds]) >= COMPOSITION_MIN_REPORTS
            composed[kinds] = compose_report(groups[kinds], kinds, vocabulary) if enough else None
        written[study_id] = composed[kinds] or fallback[study_id]
    return written


def _kinds(report: str) -> frozenset[str]:
    """The finding kinds a cleaned report states as present."""
    return frozenset(kind for kind, _, _ in stated_findings(report))


def _vocabulary(reports: Sequence[str]) -> set[str]:
    return {word for report in reports for word in report.split()}


def phantom_reader(test_reports: Mapping[str, str], seed: int = 0) -> dict[str, str]:
    """Per test study (raw report text by id), the cleaned phantom-template report of the findings its
    IU-phantom of ``seed`` draws (as :func:`medvl.data.iu_phantom.write_iu_phantom` draws them)."""
    written = {}
    for study_id, report in test_reports.items():
        own_seed = study_seed(seed, study_id)
        drawn, _ = iu_findings(report, stream(own_seed, REPORT_STREAM))
        written[study_id] = clean_report(make_report(drawn, own_seed).sections["findings"], CLEANING)
    return written


def _label_groups(train_reports: Sequence[str], uncertain_as: str) -> dict[frozenset[str], list[str]]:
    """The training reports grouped by their positive CheXpert observations."""
    groups: dict[frozenset[str], list[str]] = defaultdict(list)
    for report in train_reports:
        groups[label_chexpert(report).positive(uncertain_as)].append(report)
    return groups


def _closest_labels(groups: Mapping[frozenset[str], Sequence[str]], wanted: frozenset[str]) -> frozenset[str]:
    """``wanted`` where a group has it; else the group overlapping it most (Jaccard), then the largest."""
    return max(groups, key=lambda have: (_jaccard(have, wanted), len(groups[have])))


def _jaccard(first: frozenset[str], second: frozenset[str]) -> float:
    union = first | second
    return len(first & second) / len(union) if union else 1.0


class TrigramModel:
    """A word trigram model of cleaned reports, backing off to bigrams and unigrams."""

    def __init__(self, reports: Sequence[str]) -> None:
        self.counts: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
        for report in reports:
            words = [_START, _START, *report.split(), _END]
            for number in range(2, len(words)):
                for order in (0, 1, 2):  # unigram, bigram and trigram contexts
                    self.counts[tuple(words[number - order : number])][words[number]] += 1

    def generate(self, max_words: int = 100) -> str:
        """The greedy report: the likeliest next word, never repeating a trigram, until the end."""
        words = [_START, _START]
        seen: set[tuple[str, ...]] = set()
        while len(words) - 2 < max_words:
            word = self._next(words, seen)
            if word == _END:
                break
            seen.add((words[-2], words[-1], word))
            words.append(word)
        return " ".join(words[2:])

    def _next(self, words: list[str], seen: set[tuple[str, ...]]) -> str:
        """The likeliest next word not repeating a trigram (equal counts: the alphabetically first)."""
        for order in (2, 1, 0):
            following = self.counts.get(tuple(words[len(words) - order :]), Counter())
            allowed = sorted((-count, word) for word, count in following.items() if (*words[-2:], word) not in seen)
            if allowed:
                return allowed[0][1]
        return _END


# --- scoring -------------------------------------------------------------------------------------
def as_r2gen_references(references: Mapping[str, str], train_reports: Sequence[str]) -> dict[str, str]:
    """The cleaned references as R2Gen's test loop decodes them from token ids: their first 59
    words, each word seen fewer than 3 times in the training reports as ``<unk>``."""
    counts = Counter(word for report in train_reports for word in report.split())
    return {
        study_id: " ".join(w if counts[w] >= R2GEN_MIN_COUNT else "<unk>" for w in text.split()[:R2GEN_MAX_WORDS])
        for study_id, text in references.items()
    }


def baseline_reports(
    annotation_json: str | Path, split: str = "test", uncertain_as: str = "negative", r2gen_references: bool = False
) -> dict[str, Any]:
    """The cleaned ``split`` references and each baseline's reports: ``{"references", "baselines"}``."""
    studies = read_iu_annotation(annotation_json)
    train = [clean_report(s.report, CLEANING) for s in studies if s.split == "train"]
    raw_references = {s.study_id: s.report for s in studies if s.split == split}
    references = {study_id: clean_report(text, CLEANING) for study_id, text in raw_references.items()}
    if r2gen_references:
        references = as_r2gen_references(references, train)
    constant = {
        "commonest report": commonest_report(train),
        "normal template": normal_template(train),
        "text-only trigram LM": TrigramModel(train).generate(),
    }
    reports = {name: dict.fromkeys(references, text) for name, text in constant.items()}
    reports["label retrieval (oracle)"] = label_retrieval(train, references, uncertain_as)
    reports["label consensus (oracle)"] = label_consensus(train, references, uncertain_as)
    reports["composed normal report"] = dict.fromkeys(references, composed_normal_report(train))
    reports["finding composition (oracle)"] = finding_composition(train, references, reports["label consensus (oracle)"])
    reports["phantom reader (oracle)"] = phantom_reader(raw_references)
    return {"references": references, "baselines": {name: reports[name] for name in BASELINES}}


def baseline_table(
    annotation_json: str | Path,
    metrics: Sequence[str] = METRICS,
    split: str = "test",
    uncertain_as: str = "negative",
    r2gen_references: bool = False,
) -> dict[str, dict[str, Any]]:
    """Each baseline's scores on ``split``: ``{name: {"nlg": {...}, "clinical": {...}, "example": text}}``.

    ``metrics`` picks the NLG metrics (METEOR needs Java); ``uncertain_as`` how the clinical
    metrics count uncertain labels; ``r2gen_references`` scores against R2Gen's cut references.
    :func:`medvl.evaluate.tables.scores_table` makes it a table.
    """
    texts = baseline_reports(annotation_json, split, uncertain_as, r2gen_references)
    references = texts["references"]
    table = {}
    for name, reports in texts["baselines"].items():
        table[name] = {
            "nlg": nlg_metrics(references, reports, metrics=metrics),
            "clinical": clinical_metrics(references, reports, uncertain_as=uncertain_as),
            "example": next(iter(reports.values())),
        }
    return table


# --- command line --------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m medvl.evaluate.baselines``: write ``baselines.json`` and ``baselines.md`` to ``--out``."""
    parser = argparse.ArgumentParser(prog="python -m medvl.evaluate.baselines", description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotation", type=Path, required=True, help="IU X-ray annotation.json (R2Gen split)")
    parser.add_argument("--out", type=Path, required=True, help="folder for baselines.json and baselines.md")
    parser.add_argument("--split", default="test", help="split to score (default test)")
    parser.add_argument("--no-meteor", action="store_true", help="leave METEOR out (it needs Java)")
    parser.add_argument("--uncertain-as", choices=UNCERTAIN_AS, default="negative", help="uncertain labels count as")
    parser.add_argument(
        "--r2gen-references", action="store_true", help="score against R2Gen's references (59 words, rare words <unk>)"
    )
    args = parser.parse_args(argv)
    metrics = [name for name in METRICS if not (args.no_meteor and name == "meteor")]
    table = baseline_table(args.annotation, metrics, args.split, args.uncertain_as, args.r2gen_references)
    atomic_write_text(args.out / "baselines.json", json.dumps(table, indent=2) + "\n")
    references = "R2Gen's references (59 words, rare words <unk>)" if args.r2gen_references else "full references"
    note = (
        f"\nSplit {args.split}, {references}; clinical metrics count uncertain labels as {args.uncertain_as}.\n"
    )
    atomic_write_text(args.out / "baselines.md", scores_table(table) + note)
    print(scores_table(table), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
