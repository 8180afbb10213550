"""Training configuration: one YAML file describes data, model, tokenizer and the loop.

    medvl train --config configs/default_cxr.yaml

Relative paths in the file are relative to the directory ``medvl train`` runs in. Every key is
checked: a typo is an error naming the key, not a silently ignored setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from medvl.errors import ConfigError
from medvl.files import read_yaml_config

MIXED_PRECISION = ("auto", "no", "fp16", "bf16")
SELECT_BY = ("loss", "finding_accuracy")


def _from_mapping(cls: type, values: Mapping[str, Any] | None, section: str) -> Any:
    """Build dataclass ``cls`` from ``values``, refusing unknown keys with their section name."""
    values = dict(values or {})
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{section}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{section}: {exc}") from exc


@dataclass(frozen=True)
class SynthesisConfig:
    """A phantom dataset to write first, when the manifest does not exist yet."""

    n_studies: int = 2000
    spatial_dims: int = 2
    seed: int = 0
    mode: str = "single"
    normal_fraction: float = 0.3
    image_format: str = "png"
    image_size: int | None = None
    views: tuple[str, ...] = ("frontal", "lateral")


@dataclass(frozen=True)
class DataConfig:
    """Where the studies come from."""

    manifest: str
    synthesize: SynthesisConfig | None = None
    cache_dir: str | None = None  # on-disk cache of decoded studies (None: in memory)
    train_split: str = "train"
    val_split: str = "val"
    max_val_studies: int | None = 200  # studies drafted for model selection each epoch
    abnormal_weight: float = 1.0  # draw training studies with findings this many times as often as normal ones
    balance_findings: bool = False  # draw each finding (kind, side, device) as often: rare devices as often as nodules

    def __post_init__(self) -> None:
        if isinstance(self.synthesize, Mapping):
            object.__setattr__(
                self,
                "synthesize",
                _from_mapping(SynthesisConfig, self.synthesize, "data.synthesize"),
            )
        if not self.abnormal_weight > 0:
            raise ConfigError(f"data.abnormal_weight: expected a positive number, got {self.abnormal_weight!r}")


@dataclass(frozen=True)
class TokenizerConfig:
    """How the report vocabulary is learned from the training reports."""

    kind: str = "wordlevel"
    min_frequency: int = 3


@dataclass(frozen=True)
class LoopConfig:
    """The optimisation loop."""

    epochs: int = 10
    batch_size: int = 16
    learning_rate: float = 3e-4
    min_lr_ratio: float = 0.1  # cosine decay ends at learning_rate * min_lr_ratio
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    gradient_accumulation_steps: int = 1
    mixed_precision: str = "auto"  # auto: bf16 on a GPU that has it, else fp32
    num_workers: int = 0
    seed: int = 0
    checkpoint_every_steps: int = 200
    log_every_steps: int = 10
    select_by: str = "finding_accuracy"  # or "loss"
    eval_decoding: dict[str, Any] = field(default_factory=lambda: {"num_beams": 1})
    max_minutes: float | None = None  # stop early (after a checkpoint) once this much time has passed
    max_steps: int | None = None  # stop after this many optimiser steps (tests, smoke runs)
    patience: int | None = None  # stop after this many validations in a row without a better score

    def __post_init__(self) -> None:
        if self.mixed_precision not in MIXED_PRECISION:
            raise ConfigError(
                f"train.mixed_precision: expected one of {', '.join(MIXED_PRECISION)}, got {self.mixed_precision!r}"
            )
        if self.select_by not in SELECT_BY:
            raise ConfigError(f"train.select_by: expected one of {', '.join(SELECT_BY)}, got {self.select_by!r}")
        for name in (
            "epochs",
            "batch_size",
            "gradient_accumulation_steps",
            "checkpoint_every_steps",
            "log_every_steps",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"train.{name}: expected a positive integer, got {value!r}")
        if self.patience is not None and (not isinstance(self.patience, int) or isinstance(self.patience, bool)
                                          or self.patience < 1):
            raise ConfigError(f"train.patience: expected a positive integer, got {self.patience!r}")
        if not self.learning_rate > 0:
            raise ConfigError(f"train.learning_rate: expected a positive number, got {self.learning_rate!r}")


@dataclass(frozen=True)
class FinetuneConfig:
    """Start from a trained model and train only part of it.

    ``init_from``: a medvl model folder or embedded model name (``cxr``) to start from, instead
    of a model built from the ``model`` section (which may then only change ``model_name``,
    ``decoding`` and ``finding_loss_weight``). ``freeze``: parts kept as they are (``encoder``,
    ``projector``, ``language_model``). ``lora``: :class:`medvl.model.adapters.LoraSettings`
    fields, to train low-rank adapters on the language model instead of its weights.
    ``extend_vocabulary``: with ``init_from``, add the words of the new training reports seen at
    least ``tokenizer.min_frequency`` times that the model's vocabulary lacks (their embeddings
    start as the mean of the existing ones), so a site's terms are not all ``[UNK]``.
    """

    init_from: str | None = None
    extend_vocabulary: bool = False
    freeze: tuple[str, ...] = ()
    lora: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        from medvl.model.adapters import FREEZABLE_PARTS, LoraSettings

        object.__setattr__(self, "freeze", tuple(self.freeze))
        unknown = sorted(set(self.freeze) - set(FREEZABLE_PARTS))
        if unknown:
            raise ConfigError(
                f"finetune.freeze: unknown part(s) {', '.join(unknown)}; known: {', '.join(FREEZABLE_PARTS)}"
            )
        if self.lora is not None:
            _from_mapping(LoraSettings, self.lora, "finetune.lora")

    @property
    def lora_settings(self) -> Any:
        from medvl.model.adapters import LoraSettings

        return None if self.lora is None else _from_mapping(LoraSettings, self.lora, "finetune.lora")


INIT_FROM_OVERRIDES = ("model_name", "decoding", "finding_loss_weight")


@dataclass(frozen=True)
class TrainConfig:
    """The whole training run."""

    output_dir: str
    data: DataConfig
    model: dict[str, Any] = field(default_factory=dict)  # MedVLConfig arguments, plus language_model_dir
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    train: LoopConfig = field(default_factory=LoopConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)

    def __post_init__(self) -> None:
        if self.finetune.init_from is not None:
            refused = sorted(set(self.model) - set(INIT_FROM_OVERRIDES))
            if refused:
                raise ConfigError(
                    f"model: {', '.join(refused)} cannot change a model loaded with finetune.init_from; "
                    f"only {', '.join(INIT_FROM_OVERRIDES)} can"
                )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build from the YAML mapping, checking every section."""
        values = dict(values)
        sections = (
            ("data", DataConfig),
            ("tokenizer", TokenizerConfig),
            ("train", LoopConfig),
            ("finetune", FinetuneConfig),
        )
        for key, kind in sections:
            if key in values:
                values[key] = _from_mapping(kind, values[key], key)
        if "data" not in values or "output_dir" not in values:
            raise ConfigError("a training config needs 'output_dir' and 'data' (with 'manifest')")
        return _from_mapping(cls, values, "config")

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        """Read and check a YAML config file."""
        return read_yaml_config(path, cls.from_dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON/YAML-ready mapping (saved beside each run)."""
        return asdict(self)
