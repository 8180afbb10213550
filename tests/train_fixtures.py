"""A tiny training run (40 phantom radiographs at 64 px, a one-layer decoder) for loop tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def tiny_run(tmp_path: Path, **loop: Any) -> dict[str, Any]:
    """The config mapping of a run that trains in seconds; ``loop`` changes the ``train`` section."""
    return {
        "output_dir": str(tmp_path / "run"),
        "data": {
            "manifest": str(tmp_path / "data" / "manifest.jsonl"),
            "synthesize": {"n_studies": 40, "seed": 5, "image_size": 96, "views": ["frontal"]},
            "max_val_studies": 4,
        },
        "model": {
            "encoder": {"name": "resnet10", "widen_factor": 0.25, "token_grid": [2, 2]},
            "text_config": {"model_type": "gpt2", "n_layer": 1, "n_embd": 48, "n_head": 2, "n_positions": 160},
            "preprocessing": {"image_size": 64, "max_views": 1, "augment": {"enabled": False}},
            "text": {"max_length": 120},
        },
        "tokenizer": {"min_frequency": 1},
        "train": {
            "epochs": 6,
            "batch_size": 4,
            "learning_rate": 3e-3,
            "warmup_steps": 2,
            "log_every_steps": 1,
            "select_by": "loss",
            "checkpoint_every_steps": 5,
            **loop,
        },
    }
