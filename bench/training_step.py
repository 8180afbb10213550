"""Benchmark: the cost of one training step of a config's model, and what each saving buys.

Writes a few phantom studies (the config's image size), builds the config's model, and times in
the same run, on the same batches: loading and batching (augmentation, targets), then forward +
backward + AdamW step for

* ``baseline``: the language model head over every position (visual prefix included) and
  GPT-2's default dropout of 0.1, as medvl trained before;
* ``report logits``: the head over the report's positions only (``logits_to_keep``);
* ``report logits, no dropout``: the same with the decoder's dropout off (the shipped configs).

It prints each step time, the ratio to the baseline, and steps per minute of training.

    python bench/training_step.py                                # configs/default_cxr.yaml
    python bench/training_step.py --config configs/iu_phantom.yaml --steps 20
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from medvl.data.dataset import StudyDataset
from medvl.data.manifest import read_manifest
from medvl.data.phantom import write_phantom_dataset
from medvl.model.loading import build_model
from medvl.text import train_tokenizer
from medvl.train.batching import ReportCollator
from medvl.train.config import TrainConfig
from medvl.train.loop import batch_loss, new_model_config

DROPOUT_KEYS = ("resid_pdrop", "embd_pdrop", "attn_pdrop")


def step_seconds(model: torch.nn.Module, batches: list[dict], warmup: int = 2) -> float:
    """Median seconds of forward + backward + AdamW step over ``batches`` (after ``warmup``)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    times = []
    for index, batch in enumerate(batches):
        started = time.perf_counter()
        loss = batch_loss(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if index >= warmup:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/default_cxr.yaml")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per variant (after 2 warm-up steps)")
    args = parser.parse_args()
    config = TrainConfig.from_yaml(args.config)
    batch_size = config.train.batch_size
    image_size = config.model["preprocessing"]["image_size"]
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        manifest = write_phantom_dataset(Path(folder), batch_size * 4, seed=1, normal_fraction=0.25, image_size=image_size)
        rows = read_manifest(manifest)
        reference = new_model_config(config, rows)
        tokenizer = train_tokenizer([reference.report_target(row.report) for row in rows], min_frequency=1)
        dataset = StudyDataset(rows, reference.transform_config, None, train=True)
        grid = build_model(reference, tokenizer).grid_shape
        loader = DataLoader(
            dataset, batch_size=batch_size, shuffle=True, drop_last=True,
            collate_fn=ReportCollator(tokenizer, reference, grid),
        )
        started = time.perf_counter()
        batches = [batch for _ in range(-(-(args.steps + 2) // len(loader))) for batch in loader][: args.steps + 2]
        loading = (time.perf_counter() - started) / len(batches)

        variants = {
            "baseline (all-position logits, dropout 0.1)": (0.1, False),
            "report logits only, dropout 0.1": (0.1, True),
            "report logits only, no dropout": (0.0, True),
        }
        print(f"config {args.config}: batch {batch_size}, {image_size} px, {torch.get_num_threads()} threads")
        print(f"loading + augmentation + batching: {loading * 1000:.0f} ms per batch (single process)")
        baseline = None
        for name, (dropout, report_only) in variants.items():
            torch.manual_seed(0)
            model_config = new_model_config(config, rows)
            for key in DROPOUT_KEYS:
                setattr(model_config.text_config, key, dropout)
            model = build_model(model_config, tokenizer)
            if model.encoder.config.spatial_dims == 2:
                model.encoder.to(memory_format=torch.channels_last)  # as medvl.train does
            model._text_logits_only = report_only
            seconds = step_seconds(model, batches)
            baseline = baseline or seconds
            per_minute = 60 / (seconds + loading)
            print(
                f"{name:45s} {seconds * 1000:6.0f} ms/step  x{baseline / seconds:.2f} vs baseline  "
                f"{per_minute:5.0f} steps/min with loading"
            )


if __name__ == "__main__":
    main()
