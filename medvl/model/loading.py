"""Building, saving and loading a model directory, offline.

A model directory is what ``save_pretrained`` writes (``config.json`` + ``model.safetensors``)
plus the tokenizer files: it loads with ``transformers`` and ``medvl`` alone, never from a hub.
Embedded models ship inside the package (``medvl/models/<name>``) and are named by that name:
``cxr`` (the default: chest radiographs, frontal + lateral) and ``ct`` (chest CT volumes).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import transformers
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerFast

from medvl.errors import MedVLError, ModelError
from medvl.files import atomic_directory
from medvl.model.adapters import ADAPTER_FOLDER, has_lora, merged_copy, save_adapter
from medvl.model.config import MedVLConfig
from medvl.model.modeling import MedVLModel
from medvl.text import load_pretrained_tokenizer, load_tokenizer

EMBEDDED_MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
DEFAULT_MODEL = "cxr"
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json")

transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bars in CLI output


def special_token_ids(tokenizer: PreTrainedTokenizerFast) -> dict[str, int]:
    """The ids the language model must know: vocabulary size, BOS, EOS and padding."""
    return {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


def build_model(config: MedVLConfig, tokenizer: PreTrainedTokenizerFast) -> MedVLModel:
    """A freshly initialised model whose language model speaks ``tokenizer``'s vocabulary."""
    for name, value in special_token_ids(tokenizer).items():
        setattr(config.text_config, name, value)
    return MedVLModel(config)


def build_model_with_language_model(
    config: MedVLConfig, language_model_dir: str | Path
) -> tuple[MedVLModel, PreTrainedTokenizerFast]:
    """A model whose decoder is a pretrained causal LM (and its tokenizer) from a local folder.

    The section tags are added to the tokenizer, and the embedding table grows to match.
    Attention is eager, so that drafts can be explained (sdpa returns no attention weights).
    """
    folder = Path(language_model_dir)
    if not (folder / "config.json").is_file():
        raise ModelError("not a Hugging Face model folder (no config.json)", folder)
    try:
        language_model = AutoModelForCausalLM.from_pretrained(
            folder, local_files_only=True, attn_implementation="eager"
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the language model: {exc}", folder) from exc
    tokenizer = load_pretrained_tokenizer(folder)
    if len(tokenizer) > language_model.get_input_embeddings().num_embeddings:
        language_model.resize_token_embeddings(len(tokenizer))
    config.text_config = language_model.config
    config.text = {**config.text, "tokenizer": "pretrained"}
    for name, value in special_token_ids(tokenizer).items():
        if name != "vocab_size":
            setattr(config.text_config, name, value)
    return MedVLModel(config, language_model=language_model), tokenizer


def save_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, directory: str | Path) -> Path:
    """Write the model and its tokenizer to ``directory`` atomically (replacing it whole).

    A model with LoRA adapters is written merged (a standalone model) with the adapter alone in
    ``adapter/`` (see :mod:`medvl.model.adapters`).
    """
    with atomic_directory(directory) as tmp:
        if has_lora(model):
            save_adapter(model, Path(tmp) / ADAPTER_FOLDER)
            model = merged_copy(model)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return Path(directory)


def embedded_model_names() -> list[str]:
    """Names of the models shipped inside the package."""
    return sorted(path.name for path in EMBEDDED_MODELS_DIR.iterdir() if (path / "config.json").is_file())


def resolve_model_dir(name_or_path: str | Path | None = None) -> Path:
    """The folder of an embedded model's name (``None``: the default), or the path given."""
    name = DEFAULT_MODEL if name_or_path is None else str(name_or_path)
    embedded = EMBEDDED_MODELS_DIR / name
    if "/" not in name and (embedded / "config.json").is_file():
        return embedded
    return Path(name_or_path if name_or_path is not None else embedded)


def load_model(directory: str | Path | None = None, **kwargs: Any) -> tuple[MedVLModel, PreTrainedTokenizerFast]:
    """Load a model folder or embedded model name (default: ``cxr``) in evaluation mode, offline."""
    folder = resolve_model_dir(directory)
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if not folder.is_dir() or missing:
        problem = (
            f"no such folder (embedded models: {', '.join(embedded_model_names()) or 'none'})"
            if not folder.is_dir()
            else f"not a medvl model folder: missing {', '.join(missing)}"
        )
        raise ModelError(problem, folder)
    try:
        model = MedVLModel.from_pretrained(folder, local_files_only=True, **kwargs)
    except MedVLError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"cannot load the model: {exc}", folder) from exc
    pretrained_tokenizer = model.config.text.get("tokenizer") == "pretrained"
    return model.eval(), (load_pretrained_tokenizer if pretrained_tokenizer else load_tokenizer)(folder)


def model_version(directory: str | Path | None = None) -> str:
    """``"<medvl version>+<first 12 hex of the weights' SHA-256>"``: names the exact weights."""
    from medvl import __version__

    folder = resolve_model_dir(directory)
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    return f"{__version__}+{digest[:12]}"
