"""Fine-tuning only part of a model: frozen parts and LoRA adapters on the language model.

    freeze(model, ["encoder"])                    # keep the image encoder as it is
    add_lora(model, LoraSettings(r=8))            # low-rank adapters on the decoder (peft)
    save_model(model, tokenizer, "runs/x/best")   # merged weights + the adapter on its own
    load_adapter(base_model, "runs/x/best/adapter")

A model with adapters is saved twice over by :func:`medvl.model.loading.save_model`: a merged,
standalone model directory (loads with ``transformers`` + ``medvl``, no ``peft`` needed) and,
in its ``adapter/`` sub-folder, the adapter alone (``adapter_config.json`` +
``adapter_model.safetensors``, a few MB) to share and to apply to the same base model again.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torch import nn

from medvl.errors import ConfigError, ModelError

FREEZABLE_PARTS = ("encoder", "projector", "language_model")
# The projector's part also holds the embeddings added to its output (where and in which view a
# token lies): frozen with it, an adapter applied to the same base reproduces the tuned model.
PROJECTOR_EMBEDDINGS = ("cell_embedding", "view_embedding", "missing_view_embedding")
ADAPTER_FOLDER = "adapter"


@dataclass(frozen=True)
class LoraSettings:
    """peft ``LoraConfig`` settings for the language model (``target_modules=None``: peft's
    default for the model type, e.g. ``c_attn`` for GPT-2, ``q_proj``/``v_proj`` for Llama)."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] | None = None

    def to_peft(self) -> Any:
        from peft import LoraConfig, TaskType

        targets = list(self.target_modules) if self.target_modules else None
        return LoraConfig(
            task_type=TaskType.CAUSAL_LM,
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=targets,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def freeze(model: nn.Module, parts: Sequence[str]) -> None:
    """Stop training ``parts`` of a MedVLModel (names from :data:`FREEZABLE_PARTS`): no gradients,
    and evaluation mode for good, so batch-norm statistics do not drift either."""
    unknown = sorted(set(parts) - set(FREEZABLE_PARTS))
    if unknown:
        raise ConfigError(f"freeze: unknown part(s) {', '.join(unknown)}; known: {', '.join(FREEZABLE_PARTS)}")
    for part in parts:
        getattr(model, part).requires_grad_(False)
        if part == "projector":
            for name in PROJECTOR_EMBEDDINGS:
                getattr(model, name).requires_grad_(False)
        if part not in model.frozen_parts:
            model.frozen_parts.append(part)
    model.train(model.training)


def add_lora(model: nn.Module, settings: LoraSettings) -> nn.Module:
    """Wrap the model's language model with trainable LoRA adapters (its own weights frozen)."""
    from peft import get_peft_model

    if has_lora(model):
        raise ConfigError("the language model already has LoRA adapters")
    model.language_model = get_peft_model(model.language_model, settings.to_peft())
    return model


def has_lora(model: nn.Module) -> bool:
    """Whether the model's language model is wrapped by peft."""
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model.language_model, PeftModel)


def merged_copy(model: nn.Module) -> nn.Module:
    """A copy of the model with the adapters folded into the language model's weights."""
    merged = copy.deepcopy(model)
    merged.language_model = merged.language_model.merge_and_unload()
    return merged


def save_adapter(model: nn.Module, directory: str | Path) -> None:
    """Write the language model's adapter alone (peft format, safetensors)."""
    model.language_model.save_pretrained(str(directory))


def load_adapter(model: nn.Module, directory: str | Path) -> nn.Module:
    """Apply a saved adapter to ``model``'s language model (the base it was trained on)."""
    from peft import PeftModel

    folder = Path(directory)
    if not (folder / "adapter_config.json").is_file():
        raise ModelError("not an adapter folder (no adapter_config.json)", folder)
    model.language_model = PeftModel.from_pretrained(model.language_model, str(folder))
    return model.eval()
