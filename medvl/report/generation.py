"""Generating report text from image tensors with a loaded model."""

from __future__ import annotations

import torch
from transformers import PreTrainedTokenizerFast

from medvl.model.decoding import DecodingConfig
from medvl.model.modeling import MedVLModel


def generate_ids(
    model: MedVLModel, images: torch.Tensor, view_mask: torch.Tensor, decoding: DecodingConfig | None = None
) -> list[list[int]]:
    """Per study, the generated token ids up to (not including) EOS."""
    eos = model.config.text_config.eos_token_id
    rows = model.generate(images, view_mask, decoding).tolist()
    return [row[: row.index(eos)] if eos in row else row for row in rows]


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
    return decode_targets(tokenizer, generate_ids(model, images, view_mask, decoding))
