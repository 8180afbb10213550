"""Regenerate the bundled sample studies in medvl/samples/ (deterministic)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from medvl.data.phantom import make_chest_ct, make_chest_radiograph, make_report, write_study_images
from medvl.files import atomic_write_text
from medvl.findings import Finding
from medvl.samples import SAMPLES_DIR

SAMPLES = {
    "chest-xray": dict(dims=2, image_format="png", findings=[Finding("pleural_effusion", side="right")], seed=7),
    "chest-ct": dict(dims=3, image_format="dicom", findings=[Finding("nodule", side="left", zone="upper", size_mm=24.0)], seed=11),
}


def write_sample(name: str, dims: int, image_format: str, findings: list[Finding], seed: int) -> None:
    folder = SAMPLES_DIR / name
    shutil.rmtree(folder, ignore_errors=True)
    study = make_chest_radiograph(findings, seed) if dims == 2 else make_chest_ct(findings, seed)
    write_study_images(folder / "study", study, image_format=image_format, uid_seed=f"medvl-sample-{name}")
    report = make_report(findings, seed)
    card = {
        "name": name,
        "description": "synthetic phantom (no patient data), written by scripts/make_samples.py",
        "findings": [finding.to_dict() for finding in findings],
        "report": report.text,
    }
    atomic_write_text(folder / "sample.json", json.dumps(card, indent=2) + "\n")


def main() -> None:
    for name, spec in SAMPLES.items():
        write_sample(name, **spec)
        print(f"wrote {SAMPLES_DIR / name}")


if __name__ == "__main__":
    main()
