"""From dataset samples to model batches: which samples (sampling), report targets, token ids and labels."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Sampler
from transformers import PreTrainedTokenizerFast

from medvl.data.dataset import collate
from medvl.findings import finding_label, label_has_side, reached_token_labels, study_labels
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


def study_sampler(
    findings: Sequence[Sequence[dict[str, Any]]], abnormal_weight: float, balance_findings: bool, seed: int
) -> WeightedEpochSampler | None:
    """A sampler drawing studies with findings ``abnormal_weight`` times as often as normal ones
    and, with ``balance_findings``, each finding (kind, side and device: its
    :func:`~medvl.findings.finding_label`) as often as any other, its studies sharing its draws;
    the abnormal studies keep their share. ``None`` when neither applies: a plain shuffle."""
    if abnormal_weight == 1.0 and not balance_findings:
        return None
    keys = [tuple(sorted(finding_label(finding) for finding in study)) for study in findings]
    weights = [abnormal_weight if key else 1.0 for key in keys]
    counts = Counter(key for key in keys if key)
    if balance_findings and counts:
        mean = sum(counts.values()) / len(counts)
        weights = [weight * mean / counts[key] if key else weight for weight, key in zip(weights, keys)]
    return WeightedEpochSampler(weights, seed)


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
    """Per visual token, the labels (:func:`medvl.findings.reached_token_labels`) of the findings
    whose mask reaches its grid cell, and which labels each token is taught.

    Returns ``(batch, views * cells, n_labels)`` targets and ``known``, of the same shape: a
    study's tokens are taught when it has no finding (all zero) or a mask for every finding;
    with ``sides="study"`` no token is taught a sided label.
    """
    findings = batch["findings"]
    views = batch["image"].shape[1]
    cells = math.prod(grid)
    targets = torch.zeros(len(findings), views, cells, len(labels))
    counts = batch.get("n_findings", torch.zeros(len(findings), dtype=torch.long))
    studies_known = torch.tensor([not study or int(count) == len(study) for study, count in zip(findings, counts)])
    known = studies_known[:, None, None, None].expand_as(targets).clone()
    if sides == "study":
        known[..., [label_has_side(label) for label in labels]] = False
    if "masks" in batch:
        pool = F.adaptive_max_pool2d if len(grid) == 2 else F.adaptive_max_pool3d
        index = {label: column for column, label in enumerate(labels)}
        roles = batch.get("view_roles") or [[None] * views] * len(findings)
        for row, study in enumerate(findings):
            if not studies_known[row]:
                continue
            for number, finding in enumerate(study[: int(counts[row])]):
                reached = pool(batch["masks"][row, :, number].float()[:, None], tuple(grid)).flatten(1) > 0
                for view in range(views):
                    frontal = sides == "cell" and roles[row][view] == "frontal" and len(grid) == 2
                    for cell_side, cells_reached in _sided_parts(reached[view], frontal, finding, grid):
                        for label in reached_token_labels(finding, sides, cell_side):
                            if label in index:
                                targets[row, view, cells_reached, index[label]] = 1.0
    return targets.flatten(1, 2), known.flatten(1, 2)


def _sided_parts(
    reached: torch.Tensor, frontal: bool, finding: dict[str, Any], grid: Sequence[int]
) -> list[tuple[str | None, torch.Tensor]]:
    """The cells ``reached`` (flattened grid order) by the patient's side they show (``frontal``:
    a frontal view, where sides are learnt by cell): on a frontal view the patient's right is the image's left half (radiological convention); a device shows
    its side only in the top row of cells it reaches, where it enters the picture; ``None``: the
    cells that show no side."""
    if not frontal:
        return [(None, reached)]
    rows = torch.arange(grid[0])[:, None].expand(*grid).flatten()
    columns = torch.arange(grid[1]).expand(*grid).flatten()
    on_right = columns < grid[1] / 2
    showing = reached
    if finding.get("device") and bool(reached.any()):
        showing = reached & (rows == rows[reached].min())
    return [("right", showing & on_right), ("left", showing & ~on_right), (None, reached & ~showing)]
