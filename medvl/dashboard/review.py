"""The reader's side of a draft: scored against a reference report, edited, exported.

Scores follow ``medvl eval``: the draft and the reference are cleaned the way the model's
training targets were, BLEU and ROUGE-L come from :func:`medvl.evaluate.nlg_metrics`, and the
findings from the clinical labeler. Where the true findings are known (samples) the draft is
scored against them (:func:`medvl.evaluate.score_study`); otherwise against the findings the
labeler reads in the reference.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medvl import DRAFT_NOTICE
from medvl.evaluate import label_report, nlg_metrics, score_study
from medvl.evaluate.run import reference_target
from medvl.findings import FINDING_KINDS
from medvl.report.draft import Draft
from medvl.report.drafting import Drafter
from medvl.text import clean_report

SCORED_METRICS = ("bleu", "rouge")  # CIDEr needs a corpus; METEOR needs Java


def score_draft(
    drafter: Drafter, draft: Draft, reference: str, truth: Sequence[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """``{"nlg": {BLEU_1..4, ROUGE_L}, "findings": {"true", "predicted", "correct"}}`` of one draft."""
    drafted = clean_report(" ".join(draft.sections.values()), drafter.model.config.cleaning)
    target = reference_target(drafter, reference)
    if truth is not None:
        verdict = score_study(draft.study, truth, drafted)
    else:
        expected = label_report(reference).positive
        predicted = label_report(drafted).positive
        verdict = {
            "true": [key._asdict() for key in expected],
            "predicted": [key._asdict() for key in predicted],
            "correct": set(expected) == set(predicted),
        }
    return {
        "nlg": nlg_metrics([target], [drafted], metrics=SCORED_METRICS),
        "findings": {name: verdict[name] for name in ("true", "predicted", "correct")},
    }


def finding_names(findings: Sequence[Mapping[str, Any]]) -> str:
    """``"right pleural effusion, left nodule"``, or ``"none"``."""
    names = []
    for finding in findings:
        label = FINDING_KINDS[finding["kind"]].label
        device = f" ({finding['device']})" if finding.get("device") else ""
        names.append(" ".join(filter(None, (finding.get("side"), label))) + device)
    return ", ".join(names) or "none"


def export_text(edited: str) -> str:
    """The reader's edit of ``Draft.to_text()`` as downloaded: always headed by the DRAFT notice."""
    text = edited.strip()
    return f"{text}\n" if text.startswith(DRAFT_NOTICE) else f"{DRAFT_NOTICE}\n\n{text}\n"


def export_json(draft: Draft, edited: str) -> str:
    """The draft's JSON; a reader's edit is kept beside the machine's sections as ``edited_text``."""
    exported = draft.to_dict()
    if edited.strip() != draft.to_text().strip():
        exported["edited_text"] = export_text(edited)
    return json.dumps(exported, indent=2) + "\n"


def sr_bytes(draft: Draft, study: str | Path) -> bytes:
    """The draft as a DICOM SR file (preliminary, unverified) in the DICOM study at ``study``."""
    from medvl.report.export import draft_to_sr, read_source_headers  # highdicom: loaded on first use

    buffer = io.BytesIO()
    draft_to_sr(draft, read_source_headers(study)).save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
