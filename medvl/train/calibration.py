"""Finding thresholds: where each finding head verdict flips, chosen on the validation split.

A model with a finding prompt (``config.finding_prompt``) tells its decoder which findings the
head sees. A head can rank studies perfectly (an AUC of 1.0 on the validation split) and still
put a rare label's positives below 0.5: the decoder is then told "not shown" and writes a normal
report. After training, each label's threshold is set where its F1 on the validation studies is
best (:func:`fit_finding_thresholds`) and stored in the model's ``config.json``
(``finding_thresholds``). A label with fewer than ``min_positives`` validation studies (a sided
atelectasis, an edema: two or three in IU-phantom's val split) is fitted on the validation and
training studies together, where the training split has positives the model ranks as it ranks
the held-out ones (its head does not memorise them: IU-phantom's rare labels score 0.02-0.8 on
their own training positives); with too few there either, it keeps 0.5.
Calibration also mines each label's finding sentence from the training split's reports
(:func:`medvl.report.finding_sentences.mine_finding_sentences`, ``finding_sentences``), which
``decoding.state_findings`` puts into drafts that do not state what the head sees, and writes its
report bank (:mod:`medvl.report.report_bank`, ``report_bank.json``): the training reports grouped
by their findings, which ``decoding.report_bank`` chooses drafts against.

    medvl calibrate --model runs/iu_phantom/best --data runs/data/iu_phantom   # the val split
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from medvl.data.dataset import StudyDataset
from medvl.data.manifest import ManifestRow, read_manifest
from medvl.errors import ConfigError, ManifestError
from medvl.evaluate.run import manifest_path
from medvl.files import atomic_write_text
from medvl.findings import label_kind
from medvl.model.loading import load_model, resolve_model_dir
from medvl.model.modeling import MedVLModel
from medvl.report.finding_sentences import mine_finding_sentences, untagged
from medvl.report.report_bank import ReportBank, build_report_bank
from medvl.train.batching import ReportCollator

DEFAULT_THRESHOLD = 0.5
MIN_POSITIVES = 3


@torch.no_grad()
def head_probabilities(model: MedVLModel, loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """The finding head's study probabilities and the true labels, both ``(studies, labels)``."""
    model.eval()
    probabilities, targets = [], []
    for batch in loader:
        _, token_logits = model.encode(batch["image"], batch["view_mask"])
        probabilities.append(model.study_probabilities(token_logits))
        targets.append(batch["finding_targets"])
    return torch.cat(probabilities), torch.cat(targets)


def best_threshold(probabilities: torch.Tensor, targets: torch.Tensor) -> float:
    """The threshold with the best F1 of ``probabilities > threshold`` against 0/1 ``targets``.

    Candidates lie halfway (in log-odds) between neighbouring distinct probabilities, so a head
    that separates the classes gets the middle of the gap; among equals, the one nearest 0.5.
    """
    values = torch.unique(probabilities.double().clamp(1e-6, 1 - 1e-6))
    logits = torch.logit(values)
    candidates = [DEFAULT_THRESHOLD] + torch.sigmoid((logits[:-1] + logits[1:]) / 2).tolist()
    positive = targets.bool()

    def f1(threshold: float) -> float:
        called = probabilities > threshold
        true_positives = int((called & positive).sum())
        return 2 * true_positives / max(1, int(called.sum()) + int(positive.sum()))

    return max(candidates, key=lambda t: (f1(t), -abs(math.log(t / (1 - t)))))


def fit_finding_thresholds(
    probabilities: torch.Tensor,
    targets: torch.Tensor,
    min_positives: int = MIN_POSITIVES,
    more: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> list[float]:
    """Per label (column), :func:`best_threshold`, or, where fewer than ``min_positives`` are
    true, the best threshold over these studies and ``more`` (probabilities and targets of other
    studies: the training split's) together, or 0.5 where those have too few positives too."""
    thresholds = []
    for label in range(targets.shape[1]):
        found, wanted = probabilities[:, label], targets[:, label]
        if int(wanted.sum()) < min_positives and more is not None:
            found, wanted = torch.cat([found, more[0][:, label]]), torch.cat([wanted, more[1][:, label]])
        enough = int(wanted.sum()) >= min_positives
        thresholds.append(round(best_threshold(found, wanted), 6) if enough else DEFAULT_THRESHOLD)
    return thresholds


def calibrate(
    model_dir: str | Path,
    data: str | Path,
    split: str = "val",
    max_studies: int | None = None,
    batch_size: int = 16,
    train_split: str = "train",
) -> dict[str, float]:
    """Fit the finding thresholds of the model in ``model_dir`` on ``split`` of the manifest in
    ``data`` (a manifest, or a folder holding one; labels rare there on ``train_split`` too), mine
    its finding sentences from the reports of ``train_split`` into its ``config.json`` (both
    atomically) and its report bank from them into ``report_bank.json``. Returns each finding
    label's threshold."""
    model_dir = resolve_model_dir(model_dir)
    model, tokenizer = load_model(model_dir)
    if not model.config.finding_labels:
        raise ConfigError(f"{model_dir}: the model has no finding head to calibrate")
    manifest = manifest_path(data)
    all_rows = read_manifest(manifest)
    rows = [row for row in all_rows if row.split == split][:max_studies]
    if not rows:
        raise ManifestError(f"no studies in split {split!r}", manifest)
    collator = ReportCollator(tokenizer, model.config, model.grid_shape)

    def probabilities_of(studies: list[ManifestRow]) -> tuple[torch.Tensor, torch.Tensor]:
        dataset = StudyDataset(studies, model.config.transform_config, None, train=False)
        return head_probabilities(model, DataLoader(dataset, batch_size=batch_size, collate_fn=collator))

    probabilities, targets = probabilities_of(rows)
    training_rows = [row for row in all_rows if row.split == train_split]
    rare = bool((targets.sum(dim=0) < MIN_POSITIVES).any())
    more = probabilities_of(training_rows) if rare and training_rows else None
    thresholds = fit_finding_thresholds(probabilities, targets, more=more)
    model.config.finding_thresholds = thresholds
    training_targets = [model.config.report_target(row.report) for row in training_rows]
    model.config.finding_sentences = mine_finding_sentences(
        (untagged(target) for target in training_targets), model.config.finding_labels, tokenizer
    )
    kinds = {label_kind(label) for label in model.config.finding_labels}
    targets_and_kinds = [
        (target, frozenset(finding["kind"] for finding in row.findings) & kinds)
        for target, row in zip(training_targets, training_rows)
    ]
    ReportBank(build_report_bank(targets_and_kinds, set(tokenizer.get_vocab()))).save(model_dir)
    atomic_write_text(model_dir / "config.json", model.config.to_json_string(use_diff=True))
    return dict(zip(model.config.finding_labels, thresholds))
