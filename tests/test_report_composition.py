"""Composed consensus reports: the sentences a group of reports shares, as pycocoevalcap scores them."""

from __future__ import annotations

import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.rouge.rouge import Rouge

from medvl.report.report_bank import build_report_bank, composed_consensus
from medvl.report.report_composition import ReportEvidence, compose_report
from medvl.text import split_sentences

HEART = "the heart is normal in size ."
LUNGS = "the lungs are clear ."
NO_PNEUMOTHORAX = "there is no pneumothorax ."
NO_PNEUMOTHORAX_SHORT = "no pneumothorax ."
SIDED = "the right lung is clear ."  # no finding, but a side a finding sentence may contradict
ANONYMISED = "xxxx are normal ."
RARE = "pa and lateral views were obtained ."
NODULE = "there is a left upper lobe nodule ."
ENLARGED = "the heart is enlarged ."
NONE, NODULES = frozenset(), frozenset({"nodule"})


def normal_reports() -> list[str]:
    """Each report holds two of the three common sentences and one of its own; one adds a rare
    sentence, some a sentence the rules forbid."""
    own = [f"comparison {word} ." for word in ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota")]
    pairs = [f"{HEART} {LUNGS}", f"{LUNGS} {NO_PNEUMOTHORAX}", f"{HEART} {NO_PNEUMOTHORAX}"] * 3
    forbidden = [f"{SIDED} {HEART} {LUNGS}", f"{LUNGS} {ANONYMISED} {NO_PNEUMOTHORAX}"] * 2
    return [f"{pair} {sentence}" for pair, sentence in zip(pairs, own)] + forbidden + [f"{RARE} {HEART} {LUNGS}"]


def vocabulary_of(reports: list[str]) -> set[str]:
    return {word for report in reports for word in report.split()}


def test_the_evidence_scores_a_draft_as_pycocoevalcap_does():
    references = normal_reports()
    evidence = ReportEvidence(references)
    for draft in (f"{HEART} {LUNGS}", f"{RARE} {HEART} {LUNGS} {NO_PNEUMOTHORAX}", LUNGS):
        gts = {index: [reference] for index, reference in enumerate(references)}
        res = {index: [draft] for index in gts}
        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        rouge, _ = Rouge().compute_score(gts, res)
        assert evidence.bleu(draft.split()) == pytest.approx(bleu[3], abs=1e-6)
        assert evidence.rouge_l(draft.split()) == pytest.approx(rouge, abs=1e-9)


def test_a_composed_report_says_what_most_reports_say_better_than_any_one_of_them():
    reports = normal_reports()
    composed = compose_report(reports, NONE, vocabulary_of(reports))
    assert composed == f"{HEART} {LUNGS} {NO_PNEUMOTHORAX}"
    assert composed not in reports
    evidence = ReportEvidence(reports)
    assert evidence.agreement(composed.split()) > max(evidence.agreement(report.split()) for report in reports)


def test_composition_keeps_its_rules():
    reports = normal_reports() + [f"{HEART} {SIDED} {LUNGS} {ANONYMISED} {NO_PNEUMOTHORAX} {NO_PNEUMOTHORAX_SHORT}"] * 10
    composed = compose_report(reports, NONE, vocabulary_of(reports))
    assert composed is not None
    sentences = split_sentences(composed)
    assert SIDED not in sentences and ANONYMISED not in sentences and RARE not in sentences
    assert not {NO_PNEUMOTHORAX, NO_PNEUMOTHORAX_SHORT} <= set(sentences)  # one "no pneumothorax"
    unwritable = compose_report(reports, NONE, vocabulary_of(reports) - {"heart"})
    assert unwritable is not None and HEART not in split_sentences(unwritable)  # words the model can write
    assert {LUNGS, NO_PNEUMOTHORAX} <= set(split_sentences(unwritable))
    assert compose_report([f"{SIDED} {ANONYMISED}"] * 5, NONE, vocabulary_of(reports)) is None  # nothing to start from


def test_a_finding_groups_report_states_exactly_its_findings():
    reports = [f"{HEART} {NODULE}"] * 3 + [f"{NODULE} {LUNGS}"] * 3 + [f"{NODULE} {ENLARGED}"] * 4 + [LUNGS] * 6
    composed = compose_report(reports, NODULES, vocabulary_of(reports))
    assert composed is not None and NODULE in composed  # however many reports only say the lungs are clear
    assert ENLARGED not in composed  # a finding outside the group
    assert compose_report([LUNGS] * 5, NODULES, vocabulary_of(reports)) is None  # none states the nodule


def test_the_bank_composes_one_section_targets_and_keeps_the_tag():
    tagged = [f"[findings] {report}" for report in normal_reports()]
    vocabulary = vocabulary_of(tagged)
    assert composed_consensus(tagged, NONE, vocabulary) == f"[findings] {HEART} {LUNGS} {NO_PNEUMOTHORAX}"
    (group,) = build_report_bank([(report, NONE) for report in tagged], vocabulary, min_reports=10)
    assert group.consensus == f"[findings] {HEART} {LUNGS} {NO_PNEUMOTHORAX}"
    sectioned = [f"{report} [impression] normal ." for report in tagged]
    assert composed_consensus(sectioned, NONE, vocabulary | {"[impression]", "normal"}) is None
    (chosen,) = build_report_bank([(report, NONE) for report in sectioned], vocabulary | {"[impression]", "normal"}, min_reports=10)
    assert chosen.consensus in sectioned  # several sections: the best whole report
