"""Helpers for the explanation and grounding tests: a tiny untrained model and a hand-written draft."""

from __future__ import annotations

from pathlib import Path

import torch

from medvl.model import MedVLConfig
from medvl.model.loading import build_model, save_model
from medvl.report.draft import DraftSentence, split_draft_sentences
from medvl.report.drafting import Drafter
from medvl.text import train_tokenizer

TINY_TEXT = {"model_type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2, "n_positions": 128}
DRAFT_TEXT = (
    "[findings] there is a nodule in the left upper lobe . no pleural effusion . [impression] left upper lobe nodule ."
)


def save_tiny_model(directory: Path, spatial_dims: int = 2, seed: int = 0) -> Path:
    """An untrained small model in ``directory``: 64 px frontal + lateral radiographs, or 32-voxel volumes."""
    torch.manual_seed(seed)
    tokenizer = train_tokenizer([DRAFT_TEXT] * 3, min_frequency=1)
    size = 64 if spatial_dims == 2 else 32
    config = MedVLConfig(
        encoder={"name": "resnet10", "spatial_dims": spatial_dims, "widen_factor": 0.25},
        text_config=TINY_TEXT,
        preprocessing={"spatial_dims": spatial_dims, "image_size": size, "max_views": 2 if spatial_dims == 2 else 1},
        text={"max_length": 40},
    )
    return save_model(build_model(config, tokenizer), tokenizer, directory)


def hand_written_draft(drafter: Drafter, text: str = DRAFT_TEXT) -> tuple[list[int], list[DraftSentence]]:
    """The token ids and sentences of ``text`` as if ``drafter``'s model had written it."""
    tokenizer = drafter.tokenizer
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    return ids, split_draft_sentences(
        tokens, lambda start, end: tokenizer.decode(ids[start:end], skip_special_tokens=True)
    )
