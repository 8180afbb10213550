"""Generating report text from image tensors with a loaded model."""

from __future__ import annotations

import torch
from transformers import PreTrainedTokenizerFast

from medvl.errors import ConfigError
from medvl.model.consensus import consensus_index
from medvl.model.decoding import DecodingConfig
from medvl.model.modeling import MedVLModel
from medvl.report.finding_check import (
    FindingWordBias,
    checked_index,
    finding_words,
    seen_kinds,
    verifiable_observations,
)
from medvl.report.finding_sentences import stated_ids


def generate_ids(
    model: MedVLModel,
    images: torch.Tensor,
    view_mask: torch.Tensor,
    decoding: DecodingConfig | None = None,
    tokenizer: PreTrainedTokenizerFast | None = None,
) -> list[list[int]]:
    """Per study, the generated token ids up to (not including) EOS.

    With a finding head, ``decoding.finding_bias`` steers the search towards the findings the
    head sees, ``decoding.finding_check`` keeps the candidate that states them
    (:mod:`medvl.report.finding_check`) and ``decoding.state_findings`` edits it to state them
    (:mod:`medvl.report.finding_sentences`); all read words: ``tokenizer`` is needed.
    """
    decoding = decoding or model.config.decoding_config
    steered = decoding.finding_check or decoding.finding_bias or decoding.state_findings
    if steered and model.finding_head is not None:
        if tokenizer is None:
            raise ConfigError(
                "decoding.finding_check, finding_bias and state_findings read the drafts: pass the model's tokenizer"
            )
        return _checked_ids(model, tokenizer, images, view_mask, decoding)
    return [_until_eos(model, row) for row in model.generate(images, view_mask, decoding).tolist()]


def _checked_ids(
    model: MedVLModel,
    tokenizer: PreTrainedTokenizerFast,
    images: torch.Tensor,
    view_mask: torch.Tensor,
    decoding: DecodingConfig,
) -> list[list[int]]:
    """Each study's candidate from a search steered by ``finding_bias``, kept by the finding check
    (or, without it, the likeliest or the consensus), edited by ``state_findings``."""
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
    chosen = []
    for study, shown in enumerate(verdicts.tolist()):
        group = rows[study * n : (study + 1) * n]
        if decoding.finding_check:
            index = checked_index(
                decode_targets(tokenizer, group),
                seen_kinds(labels, shown),
                verifiable,
                candidate_ids=group if decoding.consensus_candidates > 1 else None,
            )
        else:
            index = consensus_index(group) if decoding.consensus_candidates > 1 else 0
        chosen.append(group[index])
    if decoding.state_findings and model.config.finding_sentences:
        for study, shown in enumerate(verdicts.tolist()):
            seen_labels = [label for label, seen in zip(labels, shown) if seen]
            chosen[study] = stated_ids(tokenizer, chosen[study], seen_labels, model.config.finding_sentences, verifiable)
    return chosen


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
