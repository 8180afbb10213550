"""The report bank: drafts chosen against the training reports of the findings the head sees."""

from __future__ import annotations

import json

import pytest
import torch

from medvl.errors import ConfigError, ModelError
from medvl.model.decoding import DecodingConfig
from medvl.model.loading import build_model, resolve_model_dir
from medvl.report.finding_sentences import untagged
from medvl.report.generation import DECODER, REPORT_BANK, decode_targets, generate_ids, generate_reports
from medvl.report.report_bank import ReportBank, ReportGroup, build_report_bank, consensus_report
from medvl.report.report_composition import ReportEvidence
from medvl.text import train_tokenizer
from tests.test_model import tiny_config

LABELS = ["cardiomegaly", "nodule:left", "nodule:right"]
NORMAL = "[findings] the heart is normal in size . the lungs are clear ."
NORMAL_SHORT = "[findings] the lungs are clear ."
NORMAL_ODD = "[findings] pa and lateral views . heart normal ."
NODULE = "[findings] the heart is normal in size . there is a left upper lobe nodule ."
NODULE_ODD = "[findings] nodule left apex ."
NONE, NODULES = frozenset(), frozenset({"nodule"})


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer([NORMAL, NORMAL_SHORT, NORMAL_ODD, NODULE, NODULE_ODD] * 3, min_frequency=1)


def training_reports() -> list[tuple[str, frozenset[str]]]:
    return (
        [(NORMAL, NONE)] * 5 + [(NORMAL_SHORT, NONE)] * 2 + [(NORMAL_ODD, NONE)]
        + [(NODULE, NODULES)] * 3 + [(NODULE_ODD, NODULES)]
        + [("[findings] the heart is enlarged .", frozenset({"cardiomegaly"}))]  # too few for a group
    )


def test_the_consensus_is_the_report_that_agrees_most_with_the_others():
    reports = [NORMAL, NORMAL_ODD, NORMAL_SHORT, NORMAL]
    assert consensus_report(reports, reports) == NORMAL
    assert consensus_report([NORMAL_ODD, NORMAL_SHORT], reports) == NORMAL_SHORT  # only the candidates given


def test_groups_need_enough_reports_and_a_consensus_the_model_can_write(tokenizer):
    vocabulary = set(tokenizer.get_vocab())
    groups = {group.kinds: group for group in build_report_bank(training_reports(), vocabulary, min_reports=4, compose=False)}
    assert set(groups) == {NONE, NODULES}  # one cardiomegaly report is no group
    assert groups[NONE].n_reports == 8 and groups[NONE].consensus == NORMAL
    assert groups[NODULES].consensus == NODULE
    capped = build_report_bank(training_reports(), vocabulary, min_reports=4, max_reports=3, compose=False)
    assert all(len(group.reports) == 3 for group in capped)
    unwritable = build_report_bank(training_reports(), vocabulary - {"lungs"}, min_reports=4, compose=False)
    assert {group.kinds: group.consensus for group in unwritable}[NONE] == NORMAL_ODD  # every other normal says "lungs"
    composed = build_report_bank(training_reports(), vocabulary - {"lungs"}, min_reports=4)
    # composed from the sentences of >= 3 reports the model can write: the heart sentence alone
    assert {group.kinds: group.consensus for group in composed}[NONE] == "[findings] the heart is normal in size ."


def test_a_bank_round_trips_through_its_file_and_a_broken_file_is_named(tmp_path, tokenizer):
    bank = ReportBank(build_report_bank(training_reports(), set(tokenizer.get_vocab()), min_reports=4))
    path = bank.save(tmp_path)
    loaded = ReportBank.load(tmp_path)
    assert loaded is not None and loaded.groups == bank.groups
    assert loaded.group(["nodule:left"]).consensus == NODULE and loaded.group(["cardiomegaly"]) is None
    assert loaded.group(["nodule:right"]) is loaded.group(["nodule:left"])  # a group holds both sides
    assert ReportBank.load(tmp_path / "nowhere") is None
    path.write_text(json.dumps({"groups": [{"kinds": []}]}))
    with pytest.raises(ModelError, match="unreadable report bank") as raised:
        ReportBank.load(tmp_path)
    assert "report_bank.json" in str(raised.value)


def test_the_closest_candidate_is_the_one_most_like_the_groups_reports():
    group = ReportGroup(NONE, 3, (NORMAL, NORMAL, NORMAL_SHORT), NORMAL)
    assert group.closest([NORMAL_ODD, NORMAL_SHORT, NORMAL]) == 2
    assert group.closest([NORMAL_ODD, NORMAL_SHORT]) == 1
    assert group.support(NORMAL) > group.support(NORMAL_SHORT) > group.support(NODULE_ODD)


def test_an_untrained_model_writes_the_groups_consensus_only_when_asked(tokenizer):
    torch.manual_seed(0)
    config = tiny_config()
    config.finding_labels = LABELS
    config.finding_thresholds = [1.0, 0.0, 1.0]  # the head sees a left nodule in every study
    model = build_model(config, tokenizer).eval()
    bank = ReportBank(build_report_bank(training_reports(), set(tokenizer.get_vocab()), min_reports=4))
    images, view_mask = torch.randn(3, 2, 1, 64, 64), torch.ones(3, 2, dtype=torch.bool)
    plain = DecodingConfig(num_beams=3, max_new_tokens=10)

    def drafts(decoding: DecodingConfig, with_bank: ReportBank | None = bank) -> list[str]:
        return decode_targets(tokenizer, generate_ids(model, images, view_mask, decoding, tokenizer, with_bank))

    beams = decode_targets(tokenizer, model.generate_candidates(images, view_mask, plain.updated(report_bank="choose"))[0].tolist())
    chosen = drafts(plain.updated(report_bank="choose"))
    group = bank.group(NODULES)
    for study, draft in enumerate(chosen):  # the decoder's own beam, the one nearest the nodule reports
        own = [text.split(" [EOS]")[0] for text in beams[study * 3 : (study + 1) * 3]]
        assert draft in own and group.support(draft) == max(group.support(text) for text in own)
    assert drafts(plain.updated(report_bank="consensus")) == [NODULE] * 3  # beats untrained babble
    written = generate_reports(model, images, view_mask, plain.updated(report_bank="consensus"), tokenizer, bank)
    assert all(report.writer == REPORT_BANK and report.origin("the lungs are clear .") == REPORT_BANK for report in written)
    own = generate_reports(model, images, view_mask, plain.updated(report_bank="choose"), tokenizer, bank)
    assert all(report.writer == DECODER and not report.stated for report in own)
    assert drafts(plain.updated(report_bank="consensus"), with_bank=None) == drafts(plain)  # no bank: no change
    config.finding_thresholds = [0.0, 1.0, 1.0]  # cardiomegaly alone: no group in the bank
    assert drafts(plain.updated(report_bank="consensus")) == drafts(plain)


def test_decoding_refuses_an_unknown_bank_mode():
    with pytest.raises(ConfigError, match="report_bank"):
        DecodingConfig(report_bank="always")
    assert DecodingConfig(num_beams=4, report_bank="choose").generate_kwargs()["num_return_sequences"] == 4


def test_the_shipped_iu_model_has_a_bank_of_its_commonest_finding_patterns():
    bank = ReportBank.load(resolve_model_dir("iu"))
    assert bank is not None
    normal = bank.group(frozenset())
    assert normal is not None and normal.n_reports > 1000
    assert all(group.n_reports >= 30 and group.consensus.startswith("[findings] ") for group in bank.groups.values())
    # the normal consensus is composed: it agrees with the group's reports better than any one of them
    evidence = ReportEvidence(untagged(report) for report in normal.reports)
    composed = untagged(normal.consensus).split()
    assert all(evidence.agreement(composed) > evidence.agreement(untagged(report).split()) for report in normal.reports)
