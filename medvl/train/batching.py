"""From dataset samples to model batches: which samples (sampling), report targets, token ids and labels."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Sampler
from transformers import PreTrainedTokenizerFast

from medvl.data.dataset import collate
from medvl.findings import study_labels, token_label
from medvl.model.config import MedVLConfig
from medvl.model.modeling import IGNORE_INDEX


class WeightedEpochSampler(Sampler[int]):
    """An epoch of ``len(weights)`` sample indices drawn with replacement in proportion to
    ``weights`` (oversampling the rarer studies), the same draw on every process for one
    ``(seed, epoch)``, as accelerate's sharding of the batches across processes requires."""

    def __init__(self, weights: Sequence[float], seed: int) -> None:
        self.weights = torch.as_tensor(weights, dtype=torch.double)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Draw epoch ``epoch``'s indices from now on (accelerate's loaders call it)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.weights)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)  # as accelerate's seedable sampler
        return iter(torch.multinomial(self.weights, len(self.weights), replacement=True, generator=generator).tolist())


def abnormal_sampler(abnormal: Sequence[bool], abnormal_weight: float, seed: int) -> WeightedEpochSampler | None:
    """A sampler drawing studies with findings ``abnormal_weight`` times as often as normal ones
    (``None`` for 1: a plain shuffle)."""
    if abnormal_weight == 1.0:
        return None
    return WeightedEpochSampler([abnormal_weight if flag else 1.0 for flag in abnormal], seed)


def encode_targets(
    targets: Sequence[str], tokenizer: PreTrainedTokenizerFast, max_length: int
) -> dict[str, torch.Tensor]:
    """``input_ids`` ``[BOS] t1..tn [EOS] [PAD]...``, its ``attention_mask``, and ``labels``.

    Targets longer than ``max_length`` tokens are cut (their EOS is kept, so the model still
    learns to stop). Labels ignore BOS and padding.
    """
    encoded = tokenizer(list(targets), add_special_tokens=False, truncation=True, max_length=max_length)["input_ids"]
    sequences = [[tokenizer.bos_token_id, *ids, tokenizer.eos_token_id] for ids in encoded]
    length = max(len(sequence) for sequence in sequences)
    input_ids = torch.full((len(sequences), length), tokenizer.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        input_ids[row, : len(sequence)] = torch.tensor(sequence)
        attention_mask[row, : len(sequence)] = 1
    labels = input_ids.masked_fill(attention_mask == 0, IGNORE_INDEX)
    labels[:, 0] = IGNORE_INDEX
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


class ReportCollator:
    """Batch dataset samples (:func:`medvl.data.dataset.collate`) and add the training targets:
    the encoded report, and for a model with a finding head the study-level finding labels and,
    where lesion masks are known, the labels of each visual token (``grid``: the token grid)."""

    def __init__(self, tokenizer: PreTrainedTokenizerFast, config: MedVLConfig, grid: Sequence[int]) -> None:
        self.tokenizer = tokenizer
        self.config = config
        self.grid = tuple(grid)

    def __call__(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        batch = collate(samples)
        targets = [self.config.report_target(report) for report in batch["report"]]
        batch.update(encode_targets(targets, self.tokenizer, int(self.config.text["max_length"])))
        if self.config.finding_labels:
            labels = self.config.finding_labels
            sides = self.config.finding_sides
            batch["finding_targets"] = finding_targets(batch["findings"], labels, sides)
            batch["token_targets"], batch["token_known"] = token_targets(batch, labels, self.grid, sides)
        return batch


def finding_targets(
    findings: Sequence[Sequence[dict[str, Any]]], labels: Sequence[str], sides: str = "token"
) -> torch.Tensor:
    """``(batch, n_labels)`` multi-hot targets of the auxiliary finding head
    (:func:`medvl.findings.study_labels`)."""
    index = {label: column for column, label in enumerate(labels)}
    targets = torch.zeros(len(findings), len(labels))
    for row, study in enumerate(findings):
        for finding in study:
            for label in study_labels(finding, sides):
                if label in index:
                    targets[row, index[label]] = 1.0
    return targets


def token_targets(
    batch: dict[str, Any], labels: Sequence[str], grid: Sequence[int], sides: str = "token"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per visual token, the labels (:func:`medvl.findings.token_label`) of the findings whose
    mask reaches its grid cell.

    Returns ``(batch, views * cells, n_labels)`` targets and ``known`` ``(batch,)``: a study's
    token labels are known when it has no finding (all zero) or a mask for every finding.
    """
    findings = batch["findings"]
    views = batch["image"].shape[1]
    cells = math.prod(grid)
    targets = torch.zeros(len(findings), views, cells, len(labels))
    counts = batch.get("n_findings", torch.zeros(len(findings), dtype=torch.long))
    known = torch.tensor([not study or int(count) == len(study) for study, count in zip(findings, counts)])
    if "masks" in batch:
        pool = F.adaptive_max_pool2d if len(grid) == 2 else F.adaptive_max_pool3d
        index = {label: column for column, label in enumerate(labels)}
        for row, study in enumerate(findings):
            for number, finding in enumerate(study[: int(counts[row])]):
                column = index.get(token_label(finding, sides))
                if column is not None:
                    reached = pool(batch["masks"][row, :, number].float()[:, None], tuple(grid)).flatten(1)
                    targets[row, :, :, column] = torch.maximum(targets[row, :, :, column], reached)
    return targets.flatten(1, 2), known
