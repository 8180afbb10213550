"""Generating report text from image tensors with a loaded model."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerFast

from medvl.errors import ConfigError
from medvl.model.consensus import consensus_index
from medvl.model.decoding import DecodingConfig
from medvl.model.modeling import MedVLModel
from medvl.report.finding_check import (
    FindingWordBias,
    checked_indices,
    finding_words,
    seen_kinds,
    verifiable_observations,
)
from medvl.report.finding_sentences import stated_ids, untagged
from medvl.report.report_bank import ReportBank
from medvl.text import split_sentences

DECODER, REPORT_BANK, FINDING_SENTENCE = "decoder", "report bank", "finding sentence"  # who wrote a sentence


@dataclass(frozen=True)
class GeneratedReport:
    """One study's generated token ids (no EOS) and who wrote them."""

    ids: list[int]
    writer: str = DECODER  # REPORT_BANK where the report bank's consensus report was kept
    stated: frozenset[str] = frozenset()  # the sentences ``state_findings`` put in (cleaned text)

    def origin(self, sentence: str) -> str:
        """Who wrote ``sentence`` (cleaned text) of this report."""
        return FINDING_SENTENCE if sentence in self.stated else self.writer


def generate_ids(
    model: MedVLModel,
    images: torch.Tensor,
    view_mask: torch.Tensor,
    decoding: DecodingConfig | None = None,
    tokenizer: PreTrainedTokenizerFast | None = None,
    bank: ReportBank | None = None,
) -> list[list[int]]:
    """Per study, the generated token ids up to (not including) EOS (:func:`generate_reports`)."""
    return [report.ids for report in generate_reports(model, images, view_mask, decoding, tokenizer, bank)]


def generate_reports(
    model: MedVLModel,
    images: torch.Tensor,
    view_mask: torch.Tensor,
    decoding: DecodingConfig | None = None,
    tokenizer: PreTrainedTokenizerFast | None = None,
    bank: ReportBank | None = None,
) -> list[GeneratedReport]:
    """Per study, the generated token ids up to (not including) EOS, and who wrote them.

    With a finding head, ``decoding.finding_bias`` steers the search towards the findings the
    head sees, ``decoding.finding_check`` keeps the candidates that state them
    (:mod:`medvl.report.finding_check`), ``decoding.report_bank`` keeps the one closest to
    ``bank``'s training reports of those findings (:mod:`medvl.report.report_bank`) and
    ``decoding.state_findings`` edits it to state them (:mod:`medvl.report.finding_sentences`);
    all read words: ``tokenizer`` is needed.
    """
    decoding = decoding or model.config.decoding_config
    steered = decoding.finding_check or decoding.finding_bias or decoding.state_findings or decoding.report_bank != "off"
    if steered and model.finding_head is not None:
        if tokenizer is None:
            raise ConfigError(
                "decoding.finding_check, finding_bias, state_findings and report_bank read the drafts: "
                "pass the model's tokenizer"
            )
        return _steered_reports(model, tokenizer, images, view_mask, decoding, bank)
    return [GeneratedReport(_until_eos(model, row)) for row in model.generate(images, view_mask, decoding).tolist()]


def _steered_reports(
    model: MedVLModel,
    tokenizer: PreTrainedTokenizerFast,
    images: torch.Tensor,
    view_mask: torch.Tensor,
    decoding: DecodingConfig,
    bank: ReportBank | None,
) -> list[GeneratedReport]:
    """Each study's candidate from a search steered by ``finding_bias``: of those the finding
    check keeps, the closest to the report bank's group, or the likeliest (or the consensus);
    edited by ``state_findings``."""
    labels = model.config.finding_labels

    def guide(verdicts: torch.Tensor) -> FindingWordBias:
        seen = [seen_kinds(labels, shown) for shown in verdicts.tolist()]
        return FindingWordBias(tokenizer, finding_words(tokenizer), seen, decoding.beam_width, decoding.finding_bias)

    candidates, verdicts = model.generate_candidates(
        images, view_mask, decoding, guide=guide if decoding.finding_bias else None
    )
    rows = [_until_eos(model, row) for row in candidates.tolist()]
    verifiable = verifiable_observations(labels)
    n = decoding.n_candidates
    reports: list[GeneratedReport] = []
    for study, shown in enumerate(verdicts.tolist()):
        group, shown_labels = rows[study * n : (study + 1) * n], [label for label, seen in zip(labels, shown) if seen]
        texts = decode_targets(tokenizer, group)
        kept = checked_indices(texts, seen_kinds(labels, shown), verifiable) if decoding.finding_check else list(range(n))
        bank_group = bank.group(shown_labels) if bank is not None and decoding.report_bank != "off" else None
        if bank_group is not None:
            options = [(GeneratedReport(group[index]), texts[index]) for index in kept]
            if decoding.report_bank == "consensus":
                consensus_ids = tokenizer.encode(bank_group.consensus, add_special_tokens=False)
                options.append((GeneratedReport(consensus_ids, REPORT_BANK), bank_group.consensus))
            report = options[bank_group.closest([text for _, text in options])][0]
        elif decoding.consensus_candidates > 1:
            report = GeneratedReport(group[kept[consensus_index([group[index] for index in kept])]])
        else:
            report = GeneratedReport(group[kept[0]])
        if decoding.state_findings and model.config.finding_sentences:
            report = _stated(tokenizer, report, shown_labels, model.config.finding_sentences, verifiable)
        reports.append(report)
    return reports


def _stated(
    tokenizer: PreTrainedTokenizerFast,
    report: GeneratedReport,
    seen_labels: list[str],
    sentences: dict[str, str],
    verifiable: frozenset[str],
) -> GeneratedReport:
    """``report`` edited by the finding sentences, noting the sentences they put in."""
    ids = stated_ids(tokenizer, report.ids, seen_labels, sentences, verifiable)
    before, after = (set(split_sentences(untagged(text))) for text in decode_targets(tokenizer, [report.ids, ids]))
    return GeneratedReport(ids, report.writer, frozenset(after - before))


def _until_eos(model: MedVLModel, row: list[int]) -> list[int]:
    eos = model.config.text_config.eos_token_id
    return row[: row.index(eos)] if eos in row else row


def decode_targets(tokenizer: PreTrainedTokenizerFast, ids: list[list[int]]) -> list[str]:
    """Tagged, cleaned report text (``"[findings] ... [impression] ..."``) for each id list."""
    return [tokenizer.decode(row, skip_special_tokens=True) for row in ids]


def generate_targets(
    model: MedVLModel,
    tokenizer: PreTrainedTokenizerFast,
    images: torch.Tensor,
    view_mask: torch.Tensor,
    decoding: DecodingConfig | None = None,
) -> list[str]:
    """Generate and decode: one tagged, cleaned report text per study."""
    return decode_targets(tokenizer, generate_ids(model, images, view_mask, decoding, tokenizer))
