"""`medvl train`: one readable training loop on accelerate (CPU, one GPU, many GPUs).

The same code runs under ``python -m medvl train``, ``accelerate launch`` and ``torchrun``:
accelerate places the model, shards the batches and averages the gradients. Per epoch: train,
then validate (loss, and the finding accuracy of greedy drafts on up to ``max_val_studies``
validation studies); the best model by ``train.select_by`` is saved as a model directory.
Checkpoints (model, optimiser, scheduler, RNG and loop state) are written atomically every
``checkpoint_every_steps`` and at the end of each epoch; ``--resume`` continues from the last one,
mid-epoch included.

Output directory::

    <output_dir>/config.yaml        the config of this run
    <output_dir>/tokenizer/         the vocabulary learned from the training reports
    <output_dir>/checkpoints/last/  the latest training state (for --resume)
    <output_dir>/best/              the best model so far: load it with medvl.model.load_model
    <output_dir>/metrics.jsonl      one line per validation
    <output_dir>/summary.json       steps, time, processes and the weights' checksum on each
    <output_dir>/logs/              TensorBoard logs

Several processes (``accelerate launch --num_processes N -m medvl train ...`` or
``torchrun --nproc_per_node N -m medvl train ...``) train one model with data parallelism; at
the end every process's weights are checksummed and compared, and a disagreement is an error.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import math
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate import Accelerator
from accelerate.utils import (
    DataLoaderConfiguration,
    ProjectConfiguration,
    gather_object,
    set_seed,
)
from tokenizers import AddedToken
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerFast

from medvl.data.dataset import StudyDataset
from medvl.data.manifest import ManifestRow, read_manifest
from medvl.errors import ConfigError
from medvl.files import atomic_directory, atomic_write_text
from medvl.findings import study_labels
from medvl.model.adapters import add_lora, freeze
from medvl.model.config import MedVLConfig
from medvl.model.decoding import DecodingConfig
from medvl.model.loading import (
    build_model,
    build_model_with_language_model,
    load_model,
    save_model,
)
from medvl.model.modeling import MedVLModel
from medvl.report.generation import generate_targets
from medvl.text import load_tokenizer, target_to_sections, train_tokenizer
from medvl.train.batching import ReportCollator, study_sampler
from medvl.train.config import TrainConfig

logger = logging.getLogger(__name__)


@dataclass
class LoopState:
    """Where the loop is; saved with every checkpoint so ``--resume`` continues exactly."""

    step: int = 0  # optimiser steps taken
    epoch: int = 0  # current epoch
    batches_done: int = 0  # batches of the current epoch already trained on
    best_score: float = -math.inf  # higher is better (the negative loss when selecting by loss)
    since_best: int = 0  # validations since the best score (early stopping)
    seconds: float = 0.0  # training time spent in earlier runs of this training

    def state_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def learning_rate_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Linear warm-up to 1, then cosine decay to ``min_ratio`` at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def train(config: TrainConfig, resume: bool = False) -> Path:
    """Run the training described by ``config``; returns the best model's directory."""
    accelerator = _accelerator(config)
    process_group = torch.distributed.group.WORLD  # None in a single process
    best = _train(accelerator, config, resume)
    # the main process alone (the process group has ended with the training)
    if accelerator.is_main_process and MedVLConfig.from_pretrained(best).finding_prompt:
        from medvl.train.calibration import calibrate

        thresholds = calibrate(
            best, config.data.manifest, config.data.val_split, config.data.max_val_studies,
            train_split=config.data.train_split,
        )
        logger.info("finding thresholds fitted on %s: %s", config.data.val_split, thresholds)
    # Free the DDP model before the process group, then the group from Python. Freed by the DDP
    # model, the gloo group is destroyed holding the GIL while its worker thread waits for the GIL
    # to free the last gathered tensors: a deadlock at exit in about 1 two-process run in 12
    # (pytorch#56297). The group's own Python handle releases the GIL as it destroys it.
    accelerator.free_memory()
    del accelerator
    gc.collect()
    del process_group
    return best


def _accelerator(config: TrainConfig) -> Accelerator:
    """The accelerate engine for this run: devices, processes, precision, logging."""
    output = Path(config.output_dir)
    return Accelerator(
        cpu=not torch.cuda.is_available(),  # without a GPU, several processes train on CPU (gloo)
        mixed_precision=_mixed_precision(config.train.mixed_precision),
        gradient_accumulation_steps=config.train.gradient_accumulation_steps,
        log_with="tensorboard",
        project_config=ProjectConfiguration(project_dir=str(output), logging_dir=str(output / "logs")),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )


def _train(accelerator: Accelerator, config: TrainConfig, resume: bool) -> Path:
    """The training loop (see the module docstring); returns the best model's directory."""
    loop = config.train
    output = Path(config.output_dir)
    checkpoint = output / "checkpoints" / "last"
    if resume and not checkpoint.is_dir():
        raise ConfigError(f"--resume: no checkpoint to resume from in {checkpoint}")
    set_seed(loop.seed)

    with accelerator.main_process_first():
        rows = _training_rows(config)
    training_rows = [row for row in rows if row.split == config.data.train_split]
    model, tokenizer = _model_and_tokenizer(config, training_rows, output, accelerator, resume)
    _use_channels_last(model)
    collator = ReportCollator(tokenizer, model.config, model.grid_shape)
    transforms = model.config.transform_config
    with accelerator.main_process_first():
        cache = config.data.cache_dir
        train_set = StudyDataset(
            rows, transforms, config.data.train_split, train=True, cache_dir=cache, seed=loop.seed
        )
        val_rows = [row for row in rows if row.split == config.data.val_split][: config.data.max_val_studies]
        val_set = StudyDataset(val_rows, transforms, None, train=False, cache_dir=cache)
    sampler = study_sampler(
        train_set.findings, config.data.abnormal_weight, config.data.balance_findings, loop.seed
    )
    train_loader = DataLoader(
        train_set,
        batch_size=loop.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        collate_fn=collator,
        num_workers=loop.num_workers,
        drop_last=True,
    )
    val_loader = DataLoader(
        val_set,
        batch_size=loop.batch_size,
        collate_fn=collator,
        num_workers=loop.num_workers,
    )

    optimizer = torch.optim.AdamW(_parameter_groups(model, loop.weight_decay), lr=loop.learning_rate)
    steps_per_epoch = math.ceil(len(train_loader) / loop.gradient_accumulation_steps)
    total_steps = loop.max_steps or loop.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: learning_rate_factor(step, loop.warmup_steps, total_steps, loop.min_lr_ratio),
    )
    model, optimizer, train_loader, val_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, val_loader, scheduler
    )
    state = LoopState()
    accelerator.register_for_checkpointing(state)
    if resume:
        accelerator.load_state(str(checkpoint))
        logger.info(
            "resumed from %s at step %d (epoch %d, batch %d)",
            checkpoint,
            state.step,
            state.epoch,
            state.batches_done,
        )
    elif accelerator.is_main_process:
        output.mkdir(parents=True, exist_ok=True)
        atomic_write_text(output / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
        (output / "metrics.jsonl").unlink(missing_ok=True)  # a fresh run does not append to an old run's log
    accelerator.init_trackers("medvl", config=_flat(config.to_dict()))

    started = time.monotonic() - state.seconds
    eval_decoding = DecodingConfig.from_dict(loop.eval_decoding)
    progress = tqdm(
        total=total_steps,
        initial=state.step,
        disable=not accelerator.is_local_main_process,
        desc="train",
    )
    stop = False
    while state.epoch < loop.epochs and not stop:
        train_loader.set_epoch(state.epoch)
        train_set.set_epoch(state.epoch)
        batches = (
            accelerator.skip_first_batches(train_loader, state.batches_done) if state.batches_done else train_loader
        )
        model.train()
        for batch in batches:
            with accelerator.accumulate(model):
                loss = batch_loss(model, batch)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), loop.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            state.batches_done += 1
            if not accelerator.sync_gradients:
                continue
            state.step += 1
            progress.update(1)
            if state.step % loop.log_every_steps == 0:
                values = {
                    "train/loss": loss.item(),
                    "train/lr": scheduler.get_last_lr()[0],
                }
                accelerator.log(values, step=state.step)
                progress.set_postfix(loss=f"{values['train/loss']:.3f}", epoch=state.epoch)
            out_of_time = loop.max_minutes is not None and time.monotonic() - started > 60 * loop.max_minutes
            stop = out_of_time or (loop.max_steps is not None and state.step >= loop.max_steps)
            if state.step % loop.checkpoint_every_steps == 0 or stop:
                _checkpoint(accelerator, state, started, checkpoint)
            if stop:
                break
        if not stop:
            state.epoch += 1
            state.batches_done = 0
        metrics = _validate(model, tokenizer, val_loader, accelerator, eval_decoding, config)
        metrics.update(
            step=state.step,
            epoch=state.epoch,
            minutes=round((time.monotonic() - started) / 60, 2),
        )
        accelerator.log(
            {f"val/{key}": value for key, value in metrics.items() if isinstance(value, float)},
            step=state.step,
        )
        score = metrics["finding_accuracy"] if loop.select_by == "finding_accuracy" else -metrics["loss"]
        if accelerator.is_main_process:
            _append_metrics(output / "metrics.jsonl", metrics)
            if score > state.best_score:
                save_model(accelerator.unwrap_model(model), tokenizer, output / "best")
        state.since_best = 0 if score > state.best_score else state.since_best + 1
        state.best_score = max(state.best_score, score)
        if loop.patience is not None and state.since_best >= loop.patience:
            logger.info("no better validation score for %d epochs: stopping early", state.since_best)
            stop = True
        _checkpoint(accelerator, state, started, checkpoint)
        progress.write(
            f"epoch {state.epoch}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float))
        )
    progress.close()
    checksums = _weight_checksums(accelerator, model)
    if accelerator.is_main_process:
        summary = {
            "steps": state.step,
            "epochs": state.epoch,
            "minutes": round((time.monotonic() - started) / 60, 2),
            "processes": accelerator.num_processes,
            "best_score": state.best_score,
            "weight_checksums": checksums,
        }
        atomic_write_text(output / "summary.json", json.dumps(summary, indent=2) + "\n")
    accelerator.end_training()
    if len(set(checksums)) > 1:
        raise RuntimeError(f"the {len(checksums)} training processes ended with different weights: {checksums}")
    return output / "best"


def _use_channels_last(model: MedVLModel) -> None:
    """Keep a 2D encoder's weights channels-last while training: about 15% cheaper steps on CPU
    (oneDNN convolutions), same results up to float rounding; saved weights load in either layout."""
    if model.encoder.config.spatial_dims == 2:
        model.encoder.to(memory_format=torch.channels_last)


def _mixed_precision(setting: str) -> str:
    if setting != "auto":
        return setting
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


def _training_rows(config: TrainConfig) -> list[ManifestRow]:
    """The manifest's rows, writing the configured phantom dataset first if it is missing."""
    manifest = Path(config.data.manifest)
    synthesis = config.data.synthesize
    if not manifest.exists() and synthesis is not None:
        from medvl.data.phantom import write_phantom_dataset

        logger.info("writing %d phantom studies to %s", synthesis.n_studies, manifest.parent)
        values = {key: value for key, value in vars(synthesis).items() if key != "n_studies" and value is not None}
        values["views"] = tuple(values["views"])
        written = write_phantom_dataset(manifest.parent, synthesis.n_studies, **values)
        if written != manifest:
            raise ConfigError(f"data.manifest should be {written} for the synthesized dataset")
    return read_manifest(manifest)


def _model_and_tokenizer(
    config: TrainConfig,
    training: list[ManifestRow],
    output: Path,
    accelerator: Accelerator,
    resume: bool,
) -> tuple[MedVLModel, PreTrainedTokenizerFast]:
    """The model to train and its tokenizer (a trained model to fine-tune, or a new one), with
    the configured parts frozen and LoRA adapters added. ``training``: the training split's rows."""
    finetune = config.finetune
    if finetune.init_from is not None:
        model, tokenizer = _trained_model(finetune.init_from, config.model)
        if finetune.extend_vocabulary:
            targets = [model.config.report_target(row.report) for row in training]
            added = extend_vocabulary(model, tokenizer, targets, config.tokenizer.min_frequency)
            logger.info("added %d words to the vocabulary", added)
    else:
        model, tokenizer = _new_model(config, training, output, accelerator, resume)
    freeze(model, finetune.freeze)
    if finetune.lora is not None:
        add_lora(model, finetune.lora_settings)
    return model, tokenizer


def _trained_model(init_from: str, changes: dict[str, Any]) -> tuple[MedVLModel, PreTrainedTokenizerFast]:
    """A saved model to fine-tune, with the few config values a fine-tuning may change."""
    model, tokenizer = load_model(init_from)
    for key, value in changes.items():
        if key == "decoding":
            value = DecodingConfig.from_dict({**model.config.decoding, **value}).to_dict()
        setattr(model.config, key, value)
    return model.train(), tokenizer


def extend_vocabulary(
    model: MedVLModel, tokenizer: PreTrainedTokenizerFast, targets: list[str], min_frequency: int
) -> int:
    """Add the words of ``targets`` seen ``min_frequency`` times that ``tokenizer`` lacks; new
    embedding rows start at the mean of the old ones. Returns how many words were added."""
    counts = Counter(word for target in targets for word in target.split())
    vocabulary = tokenizer.get_vocab()
    new_words = sorted(word for word, count in counts.items() if count >= min_frequency and word not in vocabulary)
    if new_words:
        tokenizer.add_tokens([AddedToken(word, single_word=True, normalized=False) for word in new_words])
        model.language_model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
        model.config.text_config.vocab_size = len(tokenizer)
    return len(new_words)


def new_model_config(config: TrainConfig, training: list[ManifestRow]) -> MedVLConfig:
    """The config of a new model from the training config's ``model`` section; with a finding head,
    its labels are every finding seen in ``training`` (the training split's rows)."""
    arguments = {key: value for key, value in config.model.items() if key != "language_model_dir"}
    if arguments.pop("finding_head", False):
        sides = arguments.get("finding_sides", "token")
        findings = [finding for row in training for finding in row.findings]
        arguments["finding_labels"] = sorted({label for finding in findings for label in study_labels(finding, sides)})
    return MedVLConfig(**arguments)


def _new_model(
    config: TrainConfig,
    training: list[ManifestRow],
    output: Path,
    accelerator: Accelerator,
    resume: bool,
) -> tuple[MedVLModel, PreTrainedTokenizerFast]:
    """A fresh model and its tokenizer: a pretrained local language model with its own
    tokenizer, or a language model built from config with a vocabulary learned here."""
    model_config = new_model_config(config, training)
    if config.model.get("language_model_dir"):
        return build_model_with_language_model(model_config, config.model["language_model_dir"])
    folder = output / "tokenizer"
    if accelerator.is_main_process and not (resume and folder.is_dir()):
        tokenizer = train_tokenizer(
            [model_config.report_target(row.report) for row in training],
            kind=config.tokenizer.kind,
            min_frequency=config.tokenizer.min_frequency,
            model_max_length=int(model_config.text["max_length"]) + 2,
        )
        with atomic_directory(folder) as tmp:
            tokenizer.save_pretrained(tmp)
    accelerator.wait_for_everyone()
    tokenizer = load_tokenizer(folder)
    return build_model(model_config, tokenizer), tokenizer


def _parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay for matrices and convolution kernels, none for biases, norms, embeddings' rows."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    return [
        {
            "params": [p for p in parameters if p.dim() >= 2],
            "weight_decay": weight_decay,
        },
        {"params": [p for p in parameters if p.dim() < 2], "weight_decay": 0.0},
    ]


def batch_loss(model: MedVLModel, batch: dict[str, Any]) -> torch.Tensor:
    """The training loss of one batch made by :class:`~medvl.train.batching.ReportCollator`."""
    return model(
        images=batch["image"],
        view_mask=batch["view_mask"],
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        labels=batch["labels"],
        finding_targets=batch.get("finding_targets"),
        token_targets=batch.get("token_targets"),
        token_known=batch.get("token_known"),
    ).loss


@torch.no_grad()
def _validate(
    model: MedVLModel,
    tokenizer: PreTrainedTokenizerFast,
    loader: DataLoader,
    accelerator: Accelerator,
    decoding: DecodingConfig,
    config: TrainConfig,
) -> dict[str, Any]:
    """Mean validation loss and the finding accuracy of greedy drafts (all ranks together)."""
    from medvl.evaluate.findings import finding_accuracy

    model.eval()
    losses, ids, truths, drafts = [], [], [], []
    unwrapped = accelerator.unwrap_model(model)
    for batch in loader:
        losses.append(accelerator.gather_for_metrics(batch_loss(model, batch).detach()[None]))
        if config.train.select_by == "finding_accuracy":
            targets = generate_targets(unwrapped, tokenizer, batch["image"], batch["view_mask"], decoding)
            texts = [" ".join(target_to_sections(target).values()) for target in targets]
            drafts.extend(accelerator.gather_for_metrics(texts, use_gather_object=True))
            truths.extend(accelerator.gather_for_metrics(batch["findings"], use_gather_object=True))
            ids.extend(accelerator.gather_for_metrics(batch["study_id"], use_gather_object=True))
    model.train()
    metrics: dict[str, Any] = {"loss": float(torch.cat(losses).mean())}
    if drafts:
        scores = finding_accuracy(dict(zip(ids, truths)), dict(zip(ids, drafts)))
        metrics["finding_accuracy"] = float(scores["accuracy"])
    return metrics


def _checkpoint(accelerator: Accelerator, state: LoopState, started: float, folder: Path) -> None:
    """Save the whole training state to ``folder`` atomically (a temporary folder, renamed)."""
    state.seconds = time.monotonic() - started
    tmp = folder.with_name(folder.name + ".tmp")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        old = folder.with_name(folder.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def _weight_checksums(accelerator: Accelerator, model: torch.nn.Module) -> list[str]:
    """The SHA-256 of every process's trained weights (one entry per process, same order)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(accelerator.unwrap_model(model).state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return list(gather_object([digest.hexdigest()[:16]]))


def _append_metrics(path: Path, metrics: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(metrics) + "\n")


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config as ``{"a/b": value}`` scalars (what TensorBoard's hparams accept)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat(value, name + "/"))
        else:
            flat[name] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return flat
