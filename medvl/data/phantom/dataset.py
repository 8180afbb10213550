"""Writing a whole phantom dataset: images, masks, reports and a manifest.

Layout under ``out_dir``::

    studies/<study_id>/frontal.png, lateral.png   (or .dcm; 3D: ct/ DICOM series or ct.nii.gz)
    masks/<study_id>.npz                           boolean arrays "view{v}_finding{f}"
    manifest.jsonl                                 one study per line, paths relative to it
    dataset_card.json                              the arguments and what came out

Findings are planned so that every kind appears about equally often and, within a kind, every
``(side, zone, device)`` combination in turn. The same arguments always write the same
manifest, byte for byte. Each file is written atomically and the manifest last, so a manifest
never names a file that is not there.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medvl.data.phantom.anatomy import sides_of
from medvl.data.phantom.ct import DEFAULT_CT_SHAPE, make_chest_ct
from medvl.data.phantom.radiograph import RADIOGRAPH_VIEWS, make_chest_radiograph
from medvl.data.phantom.reports import make_report
from medvl.data.phantom.study import REPORT_STREAM, PhantomStudy, stream
from medvl.data.phantom.writers import PatientIdentity, supported_formats, write_study_images
from medvl.errors import ConfigError
from medvl.files import atomic_path, atomic_write_text
from medvl.findings import FINDING_KINDS, SAMPLED_KINDS, Finding

SPLITS = ("train", "val", "test")
MODES = ("single", "mixed")
MANIFEST_NAME = "manifest.jsonl"
CARD_NAME = "dataset_card.json"
_PLAN_STREAM, _SPLIT_STREAM = 0, 1
_MAX_FINDINGS = 3


# --- which findings go together ------------------------------------------------------------------
def _occupies(finding: Finding) -> set[tuple[str, ...]]:
    """What a finding takes up in the picture; two findings that share anything conflict."""
    kind = finding.kind
    if kind == "support_device":
        return {("device", finding.device)}
    taken = {("kind", kind)}
    if finding.zone is not None:  # a focal lung lesion
        taken.add(("lung", finding.side, finding.zone))
    if kind in ("consolidation", "opacity", "edema"):
        taken.add(("airspace",))  # hazy airspace findings would blur into each other
    for side in sides_of(finding.side) if finding.side else ():
        if kind in ("pleural_effusion", "atelectasis"):
            taken.add(("lung", side, "lower"))
        if kind in ("pleural_effusion", "pneumothorax"):
            taken.add(("pleura", side))
        if kind == "pneumothorax":
            taken |= {("lung", side, "upper"), ("lung", side, "middle")}
    return taken


def compatible(findings: Sequence[Finding]) -> bool:
    """Whether these findings can be drawn together without hiding or blurring into each other."""
    taken: set[tuple[str, ...]] = set()
    for finding in findings:
        occupied = _occupies(finding)
        if occupied & taken:
            return False
        taken |= occupied
    return True


# --- planning ------------------------------------------------------------------------------------
def _finding(kind: str, variant: tuple[str | None, str | None, str | None], rng: np.random.Generator) -> Finding:
    side, zone, device = variant
    size_range = FINDING_KINDS[kind].size_mm
    size = None if size_range is None else float(rng.integers(int(size_range[0]), int(size_range[1]) + 1))
    return Finding(kind, side=side, zone=zone, size_mm=size, device=device)


def _balanced_findings(rng: np.random.Generator) -> Iterator[Finding]:
    """Endless findings: kinds in shuffled rounds, each kind cycling through all its variants."""
    kinds = list(SAMPLED_KINDS)
    pending: dict[str, list[tuple[str | None, str | None, str | None]]] = {kind: [] for kind in kinds}
    while True:
        for index in rng.permutation(len(kinds)):
            kind = kinds[index]
            if not pending[kind]:
                variants = FINDING_KINDS[kind].variants()
                pending[kind] = [variants[i] for i in rng.permutation(len(variants))]
            yield _finding(kind, pending[kind].pop(), rng)


def _random_finding(rng: np.random.Generator) -> Finding:
    kind = SAMPLED_KINDS[int(rng.integers(len(SAMPLED_KINDS)))]
    variants = FINDING_KINDS[kind].variants()
    return _finding(kind, variants[int(rng.integers(len(variants)))], rng)


def plan_findings(
    n_studies: int, seed: int, mode: str = "single", normal_fraction: float = 0.3
) -> list[tuple[Finding, ...]]:
    """The findings of each study: ``round(n * normal_fraction)`` normal ones, the rest with one
    finding ("single") or one to three compatible ones ("mixed")."""
    rng = stream(seed, _PLAN_STREAM)
    n_normal = round(n_studies * normal_fraction)
    abnormal = rng.permutation(np.arange(n_studies) >= n_normal)
    balanced = _balanced_findings(rng)
    plan = []
    for is_abnormal in abnormal:
        if not is_abnormal:
            plan.append(())
            continue
        findings = [next(balanced)]
        wanted = 1 if mode == "single" else int(rng.integers(1, _MAX_FINDINGS + 1))
        for _ in range(50 * wanted):
            if len(findings) >= wanted:
                break
            candidate = _random_finding(rng)
            if compatible(findings + [candidate]):
                findings.append(candidate)
        plan.append(tuple(findings))
    return plan


def assign_splits(n_studies: int, fractions: Sequence[float], seed: int) -> list[str]:
    """A split name per study: counts are the fractions rounded (largest remainders), order shuffled."""
    exact = np.asarray(fractions, dtype=float) * n_studies
    counts = np.floor(exact).astype(int)
    for index in np.argsort(-(exact - counts), kind="stable")[: n_studies - counts.sum()]:
        counts[index] += 1
    labels = np.repeat(np.array(SPLITS), counts)
    return [str(label) for label in stream(seed, _SPLIT_STREAM).permutation(labels)]


# --- writing -------------------------------------------------------------------------------------
def _check_arguments(
    n_studies: int,
    spatial_dims: int,
    mode: str,
    normal_fraction: float,
    views: Sequence[str],
    image_format: str,
    splits: Sequence[float],
) -> None:
    if not isinstance(n_studies, (int, np.integer)) or n_studies < 1:
        raise ConfigError(f"n_studies must be a positive integer, got {n_studies!r}")
    if spatial_dims not in (2, 3):
        raise ConfigError(f"spatial_dims must be 2 (radiographs) or 3 (CT), got {spatial_dims!r}")
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {MODES}, got {mode!r}")
    if not 0.0 <= normal_fraction <= 1.0:
        raise ConfigError(f"normal_fraction must be between 0 and 1, got {normal_fraction!r}")
    if spatial_dims == 2 and (
        not views or any(v not in RADIOGRAPH_VIEWS for v in views) or len(set(views)) != len(views)
    ):
        raise ConfigError(f"views must be distinct names among {RADIOGRAPH_VIEWS}, got {tuple(views)!r}")
    if image_format not in supported_formats(spatial_dims):
        allowed = " or ".join(supported_formats(spatial_dims))
        raise ConfigError(f"{spatial_dims}D phantom datasets are written as {allowed}, not {image_format!r}")
    if len(splits) != len(SPLITS) or min(splits) < 0.0 or abs(sum(splits) - 1.0) > 1e-6:
        raise ConfigError(
            f"splits must be three non-negative fractions (train, val, test) summing to 1, got {tuple(splits)!r}"
        )


def _make_study(
    findings: tuple[Finding, ...],
    study_seed: int,
    spatial_dims: int,
    views: Sequence[str],
    image_size: int | Sequence[int] | None,
) -> PhantomStudy:
    if spatial_dims == 2:
        return make_chest_radiograph(findings, study_seed, size=image_size or 256, views=views)
    return make_chest_ct(findings, study_seed, shape=image_size or DEFAULT_CT_SHAPE)


def write_masks(path: Path, study: PhantomStudy) -> None:
    """Save every view's finding masks of ``study`` to ``path`` (npz: ``view{v}_finding{f}``), atomically."""
    arrays = {
        f"view{v}_finding{f}": mask.astype(bool)
        for v, view in enumerate(study.views)
        for f, mask in enumerate(view.masks)
    }
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)


def _identity(index: int) -> PatientIdentity:
    """A distinct fake identity per study, so de-identification has something to remove."""
    return PatientIdentity(
        name=f"PHANTOM^PATIENT{index:06d}",
        patient_id=f"PH{index:08d}",
        birth_date=f"19{40 + index % 50:02d}0{1 + index % 9}1{index % 9}",
        sex=("F", "M", "O")[index % 3],
        accession_number=f"ACC{index:09d}",
        study_date=f"20{10 + index % 15:02d}0{1 + index % 9}2{index % 9}",
    )


def write_phantom_dataset(
    out_dir: str | Path,
    n_studies: int,
    *,
    spatial_dims: int = 2,
    seed: int = 0,
    mode: str = "single",
    normal_fraction: float = 0.3,
    views: Sequence[str] = RADIOGRAPH_VIEWS,
    image_format: str = "png",
    splits: Sequence[float] = (0.8, 0.1, 0.1),
    image_size: int | Sequence[int] | None = None,
    bit_depth: int = 8,
) -> Path:
    """Write ``n_studies`` seeded phantom studies under ``out_dir``; returns the manifest path.

    2D studies are radiographs (``views``, ``image_size`` pixels, default 256, written as "png"
    or "dicom"); 3D studies are CT volumes (``image_size`` = ``(rows, cols, slices)``, default
    64 x 64 x 48, written as "dicom" series or "nifti"). ``mode="single"`` gives each abnormal
    study one finding, ``"mixed"`` one to three compatible ones.
    """
    views = tuple(views)
    splits = tuple(float(s) for s in splits)
    _check_arguments(n_studies, spatial_dims, mode, normal_fraction, views, image_format, splits)
    out_dir = Path(out_dir)
    plan = plan_findings(n_studies, seed, mode, normal_fraction)
    split_names = assign_splits(n_studies, splits, seed)
    lines = []
    for index, (findings, split) in enumerate(zip(plan, split_names)):
        study_id = f"phantom-{index + 1:06d}"
        study_seed = int(np.random.SeedSequence([seed, index]).generate_state(1)[0])
        study = _make_study(findings, study_seed, spatial_dims, views, image_size)
        images = write_study_images(
            out_dir / "studies" / study_id,
            study,
            image_format=image_format,
            bit_depth=bit_depth,
            identity=_identity(index + 1),
            uid_seed=f"medvl-phantom/{seed}/{study_id}",
        )
        write_masks(out_dir / "masks" / f"{study_id}.npz", study)
        row = {
            "study_id": study_id,
            "images": [path.relative_to(out_dir).as_posix() for path in images],
            "report": make_report(findings, stream(study_seed, REPORT_STREAM)).text,
            "split": split,
            "findings": [finding.to_dict() for finding in findings],
            "masks": f"masks/{study_id}.npz",
        }
        lines.append(json.dumps(row))
    card = {
        "generator": "medvl.data.phantom",
        "arguments": {
            "n_studies": int(n_studies),
            "spatial_dims": spatial_dims,
            "seed": seed,
            "mode": mode,
            "normal_fraction": normal_fraction,
            "views": list(views) if spatial_dims == 2 else ["ct"],
            "image_format": image_format,
            "splits": list(splits),
            "image_size": image_size,
            "bit_depth": bit_depth,
        },
        "splits": dict(Counter(split_names)),
        "findings": dict(Counter(f.kind for findings in plan for f in findings)),
        "normal_studies": sum(1 for findings in plan if not findings),
        "conventions": {
            "frontal": "PA, radiological convention: the patient's right on the image's left",
            "lateral": "left lateral, anterior on the image's left",
            "ct": "(rows, cols, slices) = (anterior->posterior, right->left, inferior->superior), HU",
            "masks": "view{v}_finding{f}: v indexes the study's images, f its findings",
        },
    }
    return write_card_and_manifest(out_dir, card, lines)


def write_card_and_manifest(out_dir: Path, card: dict[str, Any], lines: list[str]) -> Path:
    """Write ``dataset_card.json``, then ``manifest.jsonl`` (last: it only names files already
    written); returns the manifest's path."""
    atomic_write_text(out_dir / CARD_NAME, json.dumps(card, indent=2) + "\n")
    manifest = out_dir / MANIFEST_NAME
    atomic_write_text(manifest, "\n".join(lines) + "\n")
    return manifest
