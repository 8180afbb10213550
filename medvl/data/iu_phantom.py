"""IU-phantom: real IU X-ray reports, each with a phantom study that shows what its report finds.

For every study of the IU X-ray annotation (``annotation.json`` of R2Gen's split: train / val /
test, kept as given), the findings the labeler reads as **positive** in its real report are
drawn into a seeded phantom study (frontal and lateral radiographs, one exact mask per finding),
and the manifest row pairs those images with the real report text. A model trained on it must
write real report language from an image that shows the report's findings.

From report to findings (:func:`iu_findings`):

* The report is read with :func:`medvl.evaluate.labeler.label_report` and the phrase table
  :data:`DRAWN_PHRASES`: the finding vocabulary (:data:`~medvl.evaluate.labeler.FINDING_PHRASES`,
  whose kinds the phantom generator draws: cardiomegaly, pleural effusion, pneumothorax,
  consolidation, opacity, nodule, mass, atelectasis, edema, calcified granuloma, and three
  support devices: central line, endotracheal tube, pacemaker), plus the CheXpert phrases
  (:data:`~medvl.evaluate.chexpert.CHEXPERT_PHRASES`) of three observations, drawn as the kind
  that pictures them (:data:`DRAWN_AS`): pneumonia as consolidation, the further Lung Opacity
  phrases ("scarring", "interstitial changes") as opacity, the further Lung Lesion phrases
  ("cavity", "tumor") as a nodule.
* Only positive findings are drawn: negated ones are absent and uncertain ones ("possible left
  effusion") are not drawn either, since the report does not say they are there.
* Side, zone and size are the ones the report states for the finding. Where it states none,
  or one the kind cannot take, a seeded default: a side among the kind's allowed sides, a zone
  among its zones, a size in its size range (a stated size outside the range is clipped to it).
  A "bilateral" finding of a kind drawn on one side (nodules, opacities) becomes a left and a
  right one, in a seeded order; as the generator draws one finding of each kind, the second is
  not drawn (see below).
* Findings that would hide each other in the picture
  (:func:`medvl.data.phantom.dataset.compatible`) are drawn first come, first served; the
  others are listed in the row's ``meta["not_drawn"]``.
* Findings the generator has no picture for (sternotomy wires, chest and feeding tubes,
  fractures, pleural thickening, emphysema, degenerative changes...) are not drawn: the dataset
  card counts, per CheXpert observation, the reports that state one with nothing drawn for it
  (``unseen``).

Each study has its own seed, derived from ``seed`` and the study id, so a study's picture does
not depend on which other studies are written. Written like :func:`write_phantom_dataset`:
``studies/<id>/frontal.png, lateral.png``, ``masks/<id>.npz``, ``dataset_card.json`` and
``manifest.jsonl`` last.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from medvl.data.manifest import SPLITS
from medvl.data.phantom.dataset import compatible, write_card_and_manifest, write_masks
from medvl.data.phantom.radiograph import RADIOGRAPH_VIEWS, make_chest_radiograph
from medvl.data.phantom.study import REPORT_STREAM, stream
from medvl.data.phantom.writers import write_study_images
from medvl.errors import ConfigError, ManifestError
from medvl.evaluate.chexpert import (
    CHEXPERT_PHRASES,
    LUNG_LESION,
    LUNG_OPACITY,
    NO_FINDING,
    PNEUMONIA,
    label_chexpert,
)
from medvl.evaluate.labeler import FINDING_PHRASES, POSITIVE, FindingKey, Mention, Phrase, label_report
from medvl.findings import FINDING_KINDS, Finding

DEFAULT_IMAGE_SIZE = 192
# CheXpert observations the finding kinds lack a phrase for, and the kind that pictures them.
DRAWN_AS = {PNEUMONIA: "consolidation", LUNG_OPACITY: "opacity", LUNG_LESION: "nodule"}
DRAWN_PHRASES: tuple[Phrase, ...] = FINDING_PHRASES + tuple(
    Phrase(DRAWN_AS[phrase.kind], phrase.pattern) for phrase in CHEXPERT_PHRASES if phrase.kind in DRAWN_AS
)
# The CheXpert observations each drawn kind shows.
SHOWN_OBSERVATIONS: dict[str, frozenset[str]] = {
    kind: frozenset({spec.chexpert} - {None} | {observation for observation, by in DRAWN_AS.items() if by == kind})
    for kind, spec in FINDING_KINDS.items()
}


# --- the annotation ------------------------------------------------------------------------------
@dataclass(frozen=True)
class IUStudy:
    """One study of the IU X-ray annotation: its id, real report (findings text) and split."""

    study_id: str
    report: str
    split: str


def read_iu_annotation(path: str | Path) -> list[IUStudy]:
    """The studies of an R2Gen-style ``annotation.json``, in file order.

    The file maps each split to its studies: ``{"train": [{"id": ..., "report": ...}, ...], ...}``.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ManifestError("annotation file not found", path) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"cannot read the annotation as JSON: {exc}", path) from exc
    if not isinstance(data, dict) or not set(data) <= set(SPLITS):
        raise ManifestError(f"expected an object with the splits {', '.join(SPLITS)} as keys", path)
    studies: list[IUStudy] = []
    for split, entries in data.items():
        if not isinstance(entries, list):
            raise ManifestError(f"{split}: expected a list of studies", path)
        for number, entry in enumerate(entries):
            if not (isinstance(entry, dict) and all(isinstance(entry.get(key), str) for key in ("id", "report"))):
                raise ManifestError(f"{split}[{number}]: expected an object with an 'id' and a 'report' string", path)
            studies.append(IUStudy(entry["id"], entry["report"], split))
    duplicates = [study_id for study_id, count in Counter(s.study_id for s in studies).items() if count > 1]
    if duplicates:
        raise ManifestError(f"duplicate study id(s): {', '.join(duplicates[:3])}", path)
    return studies


# --- from report to findings ---------------------------------------------------------------------
def study_seed(seed: int, study_id: str) -> int:
    """The seed of one study: a hash of the dataset seed and the study id."""
    digest = hashlib.sha256(f"medvl-iu-phantom/{seed}/{study_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def iu_findings(report: str, rng: np.random.Generator) -> tuple[tuple[Finding, ...], tuple[Finding, ...]]:
    """The report's positive findings as phantom findings: ``(drawn, not_drawn)``.

    ``rng`` draws the side, zone and size the report leaves unstated; ``not_drawn`` holds the
    findings that would hide one drawn before them.
    """
    labels = label_report(report, DRAWN_PHRASES)
    drawn: list[Finding] = []
    not_drawn: list[Finding] = []
    for key in labels.positive:
        if FINDING_KINDS[key.kind].devices and key.device is None:
            continue  # a device the generator has no picture for (chest tube, feeding tube)
        mentions = [m for m in labels.mentions if (m.kind, m.device) == (key.kind, key.device) and m.status == POSITIVE]
        for finding in _findings(key, mentions, rng):
            (drawn if compatible([*drawn, finding]) else not_drawn).append(finding)
    return tuple(drawn), tuple(not_drawn)


def _findings(key: FindingKey, mentions: Sequence[Mention], rng: np.random.Generator) -> list[Finding]:
    """The finding(s) of one positive key: stated side, zone and size, else seeded defaults."""
    spec = FINDING_KINDS[key.kind]
    allowed = spec.device(key.device).sides if key.device else spec.sides
    if key.side in allowed:
        sides = [key.side]
    elif key.side == "bilateral":  # a kind drawn on one side: both, in a seeded order
        sides = [str(side) for side in rng.permutation([side for side in ("left", "right") if side in allowed])]
    else:
        sides = [allowed[int(rng.integers(len(allowed)))]]
    zone = _first(m.zone for m in mentions if m.zone in spec.zones)
    if spec.zoned and zone is None:
        zone = spec.zones[int(rng.integers(len(spec.zones)))]
    size = None
    if spec.size_mm is not None:
        low, high = spec.size_mm
        stated = _first(m.size_mm for m in mentions if m.size_mm is not None)
        size = float(np.clip(stated, low, high)) if stated is not None else float(rng.integers(int(low), int(high) + 1))
    return [Finding(key.kind, side=side, zone=zone, size_mm=size, device=key.device) for side in sides]


def _first(values: Iterable[Any]) -> Any:
    return next(iter(values), None)


# --- writing -------------------------------------------------------------------------------------
def write_iu_phantom(
    annotation_json: str | Path,
    out_dir: str | Path,
    seed: int = 0,
    image_size: int = DEFAULT_IMAGE_SIZE,
    views: Sequence[str] = RADIOGRAPH_VIEWS,
    limit: int | None = None,
    progress: bool = False,
) -> Path:
    """Write the IU-phantom dataset of ``annotation_json`` under ``out_dir``; returns the manifest path.

    ``image_size`` pixels per side (default 192), ``views`` among frontal and lateral, ``limit``
    at most that many studies per split (in file order; all by default). The same arguments
    always write the same manifest, images and masks.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    studies = read_iu_annotation(annotation_json)
    if limit is not None:
        studies = _first_per_split(studies, limit)
    out_dir = Path(out_dir)
    lines: list[str] = []
    drawn_kinds: Counter[str] = Counter()
    unseen: Counter[str] = Counter()
    normal = not_drawn_count = 0
    for study in tqdm(studies, desc="iu-phantom", disable=not progress):
        own_seed = study_seed(seed, study.study_id)
        drawn, not_drawn = iu_findings(study.report, stream(own_seed, REPORT_STREAM))
        phantom = make_chest_radiograph(drawn, own_seed, size=image_size, views=views)
        images = write_study_images(out_dir / "studies" / study.study_id, phantom, image_format="png")
        write_masks(out_dir / "masks" / f"{study.study_id}.npz", phantom)
        row: dict[str, Any] = {
            "study_id": study.study_id,
            "images": [path.relative_to(out_dir).as_posix() for path in images],
            "report": study.report,
            "split": study.split,
            "findings": [finding.to_dict() for finding in drawn],
            "masks": f"masks/{study.study_id}.npz",
        }
        if not_drawn:
            row["meta"] = {"not_drawn": [finding.to_dict() for finding in not_drawn]}
        lines.append(json.dumps(row))
        drawn_kinds.update(finding.kind for finding in drawn)
        unseen.update(_unseen_observations(study.report, drawn))
        not_drawn_count += len(not_drawn)
        normal += not drawn
    card = {
        "generator": "medvl.data.iu_phantom",
        "arguments": {
            "annotation": Path(annotation_json).name,
            "seed": seed,
            "image_size": image_size,
            "views": list(views),
            "limit": limit,
        },
        "splits": dict(Counter(study.split for study in studies)),
        "findings": dict(drawn_kinds),
        "normal_studies": normal,
        "not_drawn": not_drawn_count,
        "unseen": dict(unseen.most_common()),
        "conventions": {
            "frontal": "PA, radiological convention: the patient's right on the image's left",
            "lateral": "left lateral, anterior on the image's left",
            "masks": "view{v}_finding{f}: v indexes the study's images, f its findings",
            "unseen": "reports per CheXpert observation stated positive with nothing drawn for it",
        },
    }
    return write_card_and_manifest(out_dir, card, lines)


def _first_per_split(studies: list[IUStudy], limit: int) -> list[IUStudy]:
    """The first ``limit`` studies of each split, in file order."""
    taken: Counter[str] = Counter()
    kept = []
    for study in studies:
        if taken[study.split] < limit:
            taken[study.split] += 1
            kept.append(study)
    return kept


def _unseen_observations(report: str, drawn: Sequence[Finding]) -> set[str]:
    """The CheXpert observations ``report`` states as positive that no drawn finding shows."""
    shown = set().union(*(SHOWN_OBSERVATIONS[finding.kind] for finding in drawn))
    return set(label_chexpert(report).positive()) - shown - {NO_FINDING}
