"""`medvl eval`: draft a manifest's studies and score the drafts.

Scores written to ``<out>/eval.json`` (and printed):

* ``findings``: the finding accuracy of :func:`medvl.evaluate.findings.finding_accuracy` when the
  manifest lists findings (phantoms): overall, abnormal, normal and per kind;
* ``nlg``: BLEU-1..4, ROUGE-L and CIDEr (METEOR on request) of the drafts against the reference
  reports, both cleaned by the model's own cleaning, over the sections the model writes;
* ``clinical``: clinical precision / recall / F1 (micro and macro over the 14 CheXpert
  observations) of the same texts, from :func:`medvl.evaluate.clinical.clinical_metrics`.

``<out>/eval.md`` holds the same scores as a Markdown table (:mod:`medvl.evaluate.tables`).

``<out>/drafts.jsonl`` holds one line per study (id, draft, reference, finding verdict) for error
analysis; studies that could not be drafted are listed in ``eval.json`` under ``failed``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from medvl.data.manifest import read_manifest
from medvl.errors import ManifestError, MedVLError
from medvl.evaluate.clinical import clinical_metrics
from medvl.evaluate.findings import finding_accuracy
from medvl.evaluate.nlg import nlg_metrics
from medvl.evaluate.tables import scores_table
from medvl.files import atomic_write_text
from medvl.model.decoding import DecodingConfig
from medvl.report.drafting import Drafter
from medvl.text import clean_report

DEFAULT_METRICS = ("bleu", "rouge", "cider")


def manifest_path(data: str | Path) -> Path:
    """``data`` itself if it is a manifest file, else ``data/manifest.jsonl`` (or ``.csv``)."""
    data = Path(data)
    if data.is_file():
        return data
    for name in ("manifest.jsonl", "manifest.csv"):
        if (data / name).is_file():
            return data / name
    raise ManifestError("no manifest.jsonl or manifest.csv here", data)


def evaluate(
    data: str | Path,
    out: str | Path,
    model: str | Path | None = None,
    split: str = "test",
    decoding: DecodingConfig | Mapping[str, Any] | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    batch_size: int = 16,
    limit: int | None = None,
    progress: bool = False,
    uncertain_as: str = "negative",
) -> dict[str, Any]:
    """Draft the ``split`` studies of the manifest in ``data`` and write the scores to ``out``.

    ``uncertain_as`` ("negative" or "positive"): how the clinical metrics count uncertain labels.
    """
    rows = [row for row in read_manifest(manifest_path(data)) if row.split == split][:limit]
    if not rows:
        raise ManifestError(f"no studies in split {split!r}", manifest_path(data))
    drafter = Drafter(model, decoding=decoding)
    cleaning = drafter.model.config.cleaning
    drafts: dict[str, str] = {}
    failed: dict[str, str] = {}
    results = drafter.iter_drafts([row.images for row in rows], batch_size=batch_size)
    for row, (_, result, _) in zip(rows, tqdm(results, total=len(rows), desc="eval", disable=not progress)):
        if isinstance(result, MedVLError):
            failed[row.study_id] = str(result)
        else:
            drafts[row.study_id] = clean_report(" ".join(result.sections.values()), cleaning)
    scored = [row for row in rows if row.study_id in drafts]
    references = {row.study_id: reference_target(drafter, row.report) for row in scored}

    scores: dict[str, Any] = {
        "model": {"name": drafter.model.config.model_name, "version": drafter.version},
        "split": split,
        "n_studies": len(rows),
        "n_drafted": len(drafts),
        "decoding": drafter.decoding.to_dict(),
        "nlg": nlg_metrics(references, drafts, metrics=metrics) if drafts else {},
        "clinical": clinical_metrics(references, drafts, uncertain_as=uncertain_as) if drafts else {},
        "failed": failed,
    }
    verdicts: dict[str, Any] = {}
    if any(row.findings for row in rows):
        accuracy = finding_accuracy({row.study_id: row.findings for row in scored}, drafts)
        verdicts = {study["study_id"]: study for study in accuracy.pop("studies")}
        scores["findings"] = accuracy
    _write(Path(out), scores, scored, drafts, references, verdicts)
    return scores


def reference_target(drafter: Drafter, report: str) -> str:
    """The reference text scored against: the report's sections the model writes, cleaned alike."""
    target = drafter.model.config.report_target(report)
    return " ".join(token for token in target.split() if not (token.startswith("[") and token.endswith("]")))


def _write(
    out: Path,
    scores: dict[str, Any],
    rows: list[Any],
    drafts: dict[str, str],
    references: dict[str, str],
    verdicts: dict[str, Any],
) -> None:
    lines = [
        json.dumps({"study_id": row.study_id, "draft": drafts[row.study_id], "reference": references[row.study_id],
                    **({"findings": verdicts[row.study_id]} if row.study_id in verdicts else {})})
        for row in rows
    ]
    atomic_write_text(out / "drafts.jsonl", "\n".join(lines) + "\n")
    atomic_write_text(out / "eval.json", json.dumps(scores, indent=2) + "\n")
    atomic_write_text(out / "eval.md", _markdown(scores))


def _markdown(scores: dict[str, Any]) -> str:
    """``eval.md``: what was scored, and the scores as one row of a Markdown table."""
    model = f"{scores['model']['name']} {scores['model']['version']}"
    note = ""
    if scores.get("clinical"):
        counted = scores["clinical"]["uncertain_as"]
        note = f"\nClinical metrics: the 14 CheXpert observations, uncertain labels counted as {counted}.\n"
    return f"# {_what(scores)}\n\n" + scores_table({model: scores}) + note


def _what(scores: dict[str, Any]) -> str:
    return (
        f"model {scores['model']['name']} {scores['model']['version']}, split {scores['split']}: "
        f"{scores['n_drafted']}/{scores['n_studies']} studies drafted"
    )


def summary_lines(scores: dict[str, Any]) -> list[str]:
    """A short human-readable summary of :func:`evaluate`'s scores."""
    lines = [_what(scores)]
    findings = scores.get("findings")
    if findings:
        lines.append(
            f"finding accuracy {findings['accuracy']:.3f} (abnormal {_fraction(findings['abnormal'])}, "
            f"normal {_fraction(findings['normal'])})"
        )
        for kind, values in findings["per_kind"].items():
            lines.append(f"  {kind:<22} {_fraction(values)}")
    if scores["nlg"]:
        lines.append("  ".join(f"{name} {value:.4f}" for name, value in scores["nlg"].items()))
    if scores.get("clinical"):
        micro, macro = scores["clinical"]["micro"], scores["clinical"]["macro"]
        lines.append(
            f"clinical F1 micro {micro['f1']:.4f} (P {micro['precision']:.4f}, R {micro['recall']:.4f}), "
            f"macro {macro['f1']:.4f} over {macro['n_observations']} observations"
        )
    return lines


def _fraction(values: dict[str, Any]) -> str:
    if not values.get("n"):
        return "n/a"
    return f"{values['correct']}/{values['n']} = {values['accuracy']:.3f}"
