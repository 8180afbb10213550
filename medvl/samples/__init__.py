"""Sample studies shipped with medvl (synthetic phantoms: no patient data), for demos and tests.

On the command line a sample is named ``sample:<name>`` wherever a study path is expected,
e.g. ``medvl info sample:chest-xray``. ``scripts/make_samples.py`` regenerates them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medvl.errors import ScanNotFoundError

SAMPLES_DIR = Path(__file__).resolve().parent
SAMPLE_PREFIX = "sample:"


def sample_names() -> list[str]:
    """Names of the bundled samples."""
    return sorted(path.name for path in SAMPLES_DIR.iterdir() if (path / "sample.json").is_file())


def sample_path(name: str) -> Path:
    """The study folder of sample ``name`` (its images; ``sample.json`` holds the ground truth)."""
    folder = SAMPLES_DIR / name
    if not (folder / "sample.json").is_file():
        raise ScanNotFoundError(f"no bundled sample '{name}'; samples: {', '.join(sample_names())}", SAMPLE_PREFIX + name)
    return folder / "study"


def sample_card(name: str) -> dict[str, Any]:
    """The sample's ground truth: its findings and reference report."""
    sample_path(name)
    return json.loads((SAMPLES_DIR / name / "sample.json").read_text(encoding="utf-8"))


def resolve_study_path(text: str | Path) -> Path:
    """``sample:<name>`` becomes the sample's folder; anything else is a path."""
    text = str(text)
    return sample_path(text[len(SAMPLE_PREFIX) :]) if text.startswith(SAMPLE_PREFIX) else Path(text)
