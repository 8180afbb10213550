"""Grounding on phantoms: does the map of a sentence point at the lesion the sentence names?

For each study with lesion masks, the model drafts a report with maps (attention, Grad-CAM, ...).
For each true finding, the draft's sentences that name its kind as present (by
:func:`medvl.evaluate.labeler.label_report`, sentence by sentence) are found and their maps
averaged, view by view. Maps and masks are compared on the views' original pixels, all the
views the model read together:

* **pointing game** (Zhang et al., 2016): a hit when the map's peak, its largest value over all
  views, lies inside the finding's mask on that view, or within ``tolerance`` pixels of it;
* **mass share**: the share of the map's mass (its sum over all views) inside the finding's masks.

A finding the draft does not name has no map to score: ``named`` counts the findings whose kind
the draft names, and the scores are over those (a finding whose mask is empty in every view the
model read is not scored either). Each finding's record keeps the peak's distance to its mask,
so another tolerance needs no new run. Results are given per finding kind and pooled over
:data:`TARGET_KINDS`, the localised kinds the grounding target is set on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from medvl.data.manifest import ManifestRow, read_manifest
from medvl.data.transforms import read_masks
from medvl.errors import ConfigError, ManifestError, MedVLError
from medvl.evaluate.labeler import POSITIVE, label_report
from medvl.evaluate.run import manifest_path
from medvl.findings import FINDING_KINDS
from medvl.io.study import Study
from medvl.model.decoding import DecodingConfig
from medvl.report.draft import Draft
from medvl.report.drafting import ATTENTION, SAMPLE_MAP_METHODS, Drafter

TARGET_KINDS = ("nodule", "mass", "pleural_effusion", "pneumothorax", "consolidation")
DEFAULT_METHODS = (ATTENTION, "gradcam")
SampleMaps = Callable[..., list[list[np.ndarray]]]  # (model, sample, draft_ids, sentences) -> [sentence][view]
SAMPLE_METHODS: dict[str, SampleMaps] = SAMPLE_MAP_METHODS
METHODS = (ATTENTION, *SAMPLE_METHODS)


# --- the two scores --------------------------------------------------------------------------------
def peak_distance(heats: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> float:
    """Pixels from the peak of ``heats`` (a map per view) to the nearest pixel of ``masks`` (a mask per view).

    The peak is the largest value over all views, and is compared with the mask of its view: 0
    when it lies inside. Infinite for a map without a positive value or an empty mask.
    """
    peaks = [float(np.max(heat)) for heat in heats]
    view = int(np.argmax(peaks))
    inside = np.argwhere(masks[view])
    if peaks[view] <= 0 or not len(inside):
        return float("inf")
    peak = np.array(np.unravel_index(int(np.argmax(heats[view])), heats[view].shape))
    return float(np.sqrt(((inside - peak) ** 2).sum(axis=1)).min())


def pointing_hit(heats: Sequence[np.ndarray], masks: Sequence[np.ndarray], tolerance: float = 0.0) -> bool:
    """The pointing game: whether the peak of ``heats`` is within ``tolerance`` pixels of ``masks``."""
    return peak_distance(heats, masks) <= tolerance


def mass_share(heats: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> float:
    """The share of the (non-negative) maps' total mass, over all views, that lies inside the masks."""
    total = sum(float(np.sum(heat)) for heat in heats)
    inside = sum(float(np.sum(heat[mask])) for heat, mask in zip(heats, masks))
    return inside / total if total > 0 else 0.0


# --- one study ---------------------------------------------------------------------------------------
def naming_sentences(draft: Draft, kind: str) -> list[int]:
    """Indexes of the draft's sentences that name ``kind`` as present."""
    return [
        index
        for index, sentence in enumerate(draft.sentences)
        if label_report(sentence.text).status.get(kind) == POSITIVE
    ]


def mean_map(maps: Sequence[Sequence[np.ndarray]], sentences: Sequence[int]) -> list[np.ndarray]:
    """Per view, the mean of the maps of ``sentences`` (``maps`` is ``[sentence][view]``)."""
    return [
        np.mean([maps[sentence][view] for sentence in sentences], axis=0) for view in range(len(maps[sentences[0]]))
    ]


def read_order(study: Study) -> list[int]:
    """For each view in the order the model reads them (frontal first), its index in ``study.views``."""
    index = {id(view): number for number, view in enumerate(study.views)}
    return [index[id(view)] for view in study.ordered_views()]


def score_study(
    draft: Draft, study: Study, row: ManifestRow, methods: Sequence[str], tolerance: float = 0.0
) -> list[dict[str, Any]]:
    """One record per true finding of ``row``: is it named, and each method's hit and mass share."""
    masks = read_masks(row.masks, [view.info.size for view in study.views], len(row.findings))
    read = read_order(study)[: len(draft.views)]
    records = []
    for number, finding in enumerate(row.findings):
        kind = finding["kind"]
        finding_masks = [masks[view][number] for view in read]
        named = naming_sentences(draft, kind)
        record: dict[str, Any] = {
            "study_id": row.study_id,
            "kind": kind,
            "side": finding.get("side"),
            "sentences": named,
            "masked": any(bool(mask.any()) for mask in finding_masks),
        }
        if named and record["masked"]:
            for method in methods:
                heats = mean_map(draft.maps[method], named)
                distance = peak_distance(heats, finding_masks)
                record[method] = {
                    "hit": distance <= tolerance,
                    "peak_distance": distance if math.isfinite(distance) else None,  # pixels; None: no peak
                    "mass_share": mass_share(heats, finding_masks),
                }
        records.append(record)
    return records


# --- a manifest --------------------------------------------------------------------------------------
def grounding_table(
    model_dir: str | Path | None = None,
    manifest: str | Path = ".",
    split: str = "test",
    limit: int | None = None,
    methods: Sequence[str] = DEFAULT_METHODS,
    tolerance: float = 0.0,
    kinds: Sequence[str] | None = None,
    decoding: DecodingConfig | Mapping[str, Any] | None = None,
    batch_size: int = 8,
    progress: bool = False,
) -> dict[str, Any]:
    """Draft the ``split`` studies of ``manifest`` that have masks and score their maps' grounding.

    ``manifest`` is a manifest file or a folder holding one; ``kinds`` keeps the studies with a
    finding of those kinds (``None``: all); ``limit`` caps the number of studies; ``methods``
    are among :data:`METHODS`. Returns ``per_kind`` and ``target`` (pooled over
    :data:`TARGET_KINDS`) summaries, one record per finding and the studies that failed.
    """
    unknown = [method for method in methods if method not in METHODS]
    if unknown:
        raise ConfigError(f"unknown map method(s) {', '.join(unknown)}; known: {', '.join(METHODS)}")
    path = manifest_path(manifest)
    rows = [
        row
        for row in read_manifest(path)
        if row.split == split
        and row.masks is not None
        and (kinds is None or any(f["kind"] in kinds for f in row.findings))
    ][:limit]
    if not rows:
        raise ManifestError(f"no studies with masks in split {split!r}", path)
    drafter = Drafter(model_dir, decoding=decoding)
    records: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    with tqdm(total=len(rows), desc="grounding", unit="study", disable=not progress) as bar:
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            prepared = _prepare(drafter, batch, failed)
            samples = [sample for _, sample in prepared]
            drafts = drafter.draft_samples(samples, explain=ATTENTION in methods) if samples else []
            for (row, sample), draft in zip(prepared, drafts):
                _add_sample_maps(drafter, sample, draft, methods)
                records += score_study(draft, sample["study"], row, methods, tolerance)
            bar.update(len(batch))
    return {
        "model": {"name": drafter.model.config.model_name, "version": drafter.version},
        "split": split,
        "n_studies": len(rows),
        "n_drafted": len(rows) - len(failed),
        "methods": list(methods),
        "tolerance": tolerance,
        "per_kind": {kind: _summary(records, methods, [kind]) for kind in FINDING_KINDS if _has(records, kind)},
        "target": _summary(records, methods, TARGET_KINDS),
        "records": records,
        "failed": failed,
    }


def _prepare(
    drafter: Drafter, rows: list[ManifestRow], failed: dict[str, str]
) -> list[tuple[ManifestRow, dict[str, Any]]]:
    """The rows whose studies could be prepared, with their samples; the others go to ``failed``."""
    prepared = []
    for row in rows:
        try:
            prepared.append((row, drafter.prepare(list(row.images))))
        except MedVLError as error:
            failed[row.study_id] = str(error)
    return prepared


def _add_sample_maps(drafter: Drafter, sample: dict[str, Any], draft: Draft, methods: Sequence[str]) -> None:
    ids = drafter.tokenizer.convert_tokens_to_ids(draft.tokens)
    for method in methods:
        if method in SAMPLE_METHODS:
            draft.maps[method] = SAMPLE_METHODS[method](drafter.model, sample, ids, draft.sentences)


def _has(records: list[dict[str, Any]], kind: str) -> bool:
    return any(record["kind"] == kind for record in records)


def _summary(records: list[dict[str, Any]], methods: Sequence[str], kinds: Sequence[str]) -> dict[str, Any]:
    """Counts and mean scores of the records of ``kinds``."""
    chosen = [record for record in records if record["kind"] in kinds]
    scored = [record for record in chosen if record["sentences"] and record["masked"]]
    summary: dict[str, Any] = {
        "findings": len(chosen),
        "named": sum(1 for record in chosen if record["sentences"]),
        "scored": len(scored),
        "localised": all(FINDING_KINDS[kind].localised for kind in kinds),
    }
    for method in methods:
        hits = sum(record[method]["hit"] for record in scored)
        summary[method] = {
            "hits": hits,
            "pointing_game": hits / len(scored) if scored else None,
            "mass_share": float(np.mean([record[method]["mass_share"] for record in scored])) if scored else None,
        }
    return summary


def grounding_lines(table: Mapping[str, Any]) -> list[str]:
    """A Markdown table of :func:`grounding_table`'s results: a row per kind, then the target kinds pooled."""
    methods = table["methods"]
    model = table["model"]
    lines = [
        f"model {model['name']} {model['version']}, split {table['split']}: {table['n_drafted']}/"
        + f"{table['n_studies']} studies drafted, pointing tolerance {table['tolerance']:g} px",
        "",
        "| kind | findings | named | " + " | ".join(f"{m} pointing | {m} mass" for m in methods) + " |",
        "|---|---:|---:|" + "---:|---:|" * len(methods),
    ]
    rows = [*table["per_kind"].items(), (f"**target** ({', '.join(TARGET_KINDS)})", table["target"])]
    for name, summary in rows:
        cells = [name, str(summary["findings"]), str(summary["named"])]
        for method in methods:
            scores = summary[method]
            if scores["pointing_game"] is None:
                cells += ["n/a", "n/a"]
            else:
                cells += [
                    f"{scores['pointing_game']:.3f} ({scores['hits']}/{summary['scored']})",
                    f"{scores['mass_share']:.3f}",
                ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines
