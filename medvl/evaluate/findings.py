"""Finding accuracy: does a drafted report name exactly the findings a (phantom) study has?

A study is correct when the draft names each true finding as positive with its kind and side
(and, for support devices, the device) and names no other finding as positive. A normal study
is correct when the draft names no finding as positive. The draft is read with
:func:`medvl.evaluate.labeler.label_report`.

Uncertain mentions ("possible left effusion") count as *not named*: they neither find a true
finding nor add an extra one. A hedged draft of a real finding is scored as a miss (reported
as error ``"uncertain"`` so it can be told apart), and hedging never costs a normal study.

Everything returned is plain dicts and lists, ready for ``json.dumps``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from medvl.errors import MedVLError
from medvl.evaluate.labeler import UNCERTAIN, FindingKey, label_report, sort_findings
from medvl.findings import FINDING_KINDS, Finding

ERROR_TYPES = ("missed", "uncertain", "wrong_side", "extra")


def finding_accuracy(
    truths: Mapping[str, Sequence[Finding | Mapping[str, Any]]], drafts: Mapping[str, str]
) -> dict[str, Any]:
    """Score ``drafts`` (study id -> report text) against ``truths`` (study id -> findings).

    Findings are :class:`~medvl.findings.Finding` objects or their dicts, as manifests hold
    them. Returns ``accuracy`` over all studies, ``abnormal`` and ``normal`` (``n``,
    ``correct``, ``accuracy``), ``per_kind`` (for each kind: ``n`` true findings, ``correct``,
    ``accuracy`` and the counts of each error in :data:`ERROR_TYPES`) and ``studies`` (one
    dict per study from :func:`score_study`). An accuracy over no studies is ``None``.
    """
    _check_same_studies(truths, drafts)
    studies = [score_study(study_id, truths[study_id], drafts[study_id]) for study_id in truths]
    abnormal = [study for study in studies if study["true"]]
    normal = [study for study in studies if not study["true"]]
    return {
        "n_studies": len(studies),
        "accuracy": _accuracy(studies)["accuracy"],
        "abnormal": _accuracy(abnormal),
        "normal": _accuracy(normal),
        "per_kind": _per_kind(studies),
        "studies": studies,
    }


def score_study(study_id: str, truth: Sequence[Finding | Mapping[str, Any]], draft: str) -> dict[str, Any]:
    """One study: its true and drafted positive findings, whether it is correct, and its errors.

    Each error is ``{"kind", "error", "device", "true_side", "predicted_side"}`` with ``error``
    one of :data:`ERROR_TYPES`.
    """
    true_keys = list(sort_findings({_key(finding) for finding in truth}))
    labels = label_report(draft)
    predicted = list(labels.positive)
    uncertain = set(labels.kinds(UNCERTAIN))
    errors = _errors(true_keys, predicted, uncertain)
    return {
        "study_id": study_id,
        "true": [key._asdict() for key in true_keys],
        "predicted": [key._asdict() for key in predicted],
        "uncertain": sorted(uncertain),
        "correct": not errors,
        "errors": errors,
    }


def _key(finding: Finding | Mapping[str, Any]) -> FindingKey:
    if not isinstance(finding, Finding):
        finding = Finding.from_dict(dict(finding))
    return FindingKey(finding.kind, finding.side, finding.device)


def _errors(true_keys: list[FindingKey], predicted: list[FindingKey], uncertain: set[str]) -> list[dict[str, Any]]:
    """Missed (or only uncertain) true findings, ones named on the wrong side, and extra ones."""
    unmatched = [key for key in predicted if key not in true_keys]
    errors = []
    for key in (key for key in true_keys if key not in predicted):
        same_kind = [p for p in unmatched if (p.kind, p.device) == (key.kind, key.device)]
        if same_kind:
            unmatched.remove(same_kind[0])
            errors.append(_error("wrong_side", key, true_side=key.side, predicted_side=same_kind[0].side))
        else:
            errors.append(_error("uncertain" if key.kind in uncertain else "missed", key, true_side=key.side))
    errors += [_error("extra", key, predicted_side=key.side) for key in unmatched]
    return errors


def _error(
    error: str, key: FindingKey, *, true_side: str | None = None, predicted_side: str | None = None
) -> dict[str, Any]:
    return {
        "kind": key.kind,
        "error": error,
        "device": key.device,
        "true_side": true_side,
        "predicted_side": predicted_side,
    }


def _accuracy(studies: list[dict[str, Any]]) -> dict[str, Any]:
    correct = sum(study["correct"] for study in studies)
    return {"n": len(studies), "correct": correct, "accuracy": correct / len(studies) if studies else None}


def _per_kind(studies: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per kind: how many true findings there were, how many were named right, and each error."""
    table = {kind: {"n": 0, "correct": 0, **dict.fromkeys(ERROR_TYPES, 0)} for kind in FINDING_KINDS}
    for study in studies:
        for finding in study["true"]:
            table[finding["kind"]]["n"] += 1
        for error in study["errors"]:
            table[error["kind"]][error["error"]] += 1
    for counts in table.values():
        counts["correct"] = counts["n"] - sum(counts[e] for e in ERROR_TYPES if e != "extra")
        counts["accuracy"] = counts["correct"] / counts["n"] if counts["n"] else None
    return table


def _check_same_studies(truths: Mapping[str, Any], drafts: Mapping[str, Any]) -> None:
    missing = [study_id for study_id in truths if study_id not in drafts]
    unknown = [study_id for study_id in drafts if study_id not in truths]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"no draft for {len(missing)} stud{'y' if len(missing) == 1 else 'ies'} ({_first(missing)})")
        if unknown:
            parts.append(f"{len(unknown)} draft(s) for studies without findings ({_first(unknown)})")
        raise MedVLError("finding accuracy: " + "; ".join(parts))


def _first(ids: list[str], shown: int = 3) -> str:
    return ", ".join(map(str, ids[:shown])) + (", ..." if len(ids) > shown else "")
