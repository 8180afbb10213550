"""The report labeler: phantom reports read back exactly; negation, uncertainty and location on
real-style sentences; aggregation; real IU X-ray negative sentences read as negative."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from medvl.data.phantom.dataset import plan_findings
from medvl.data.phantom.reports import ABSENT_ITEMS, HEART_NORMAL, make_report
from medvl.evaluate.labeler import (
    NEGATIVE,
    POSITIVE,
    UNCERTAIN,
    FindingKey,
    Phrase,
    find_mentions,
    label_report,
    sentence_spans,
)
from medvl.findings import FINDING_KINDS, Finding
from medvl.text import CleaningConfig, clean_report

R2GEN_IU = CleaningConfig(style="r2gen_iu")
SEEDS_PER_VARIANT = 10


# --- phantom reports: the labeler recovers their findings exactly --------------------------------
def _variant_finding(kind: str, variant: tuple[str | None, str | None, str | None], seed: int) -> Finding:
    side, zone, device = variant
    size_range = FINDING_KINDS[kind].size_mm
    size = None if size_range is None else float(np.random.default_rng(seed).integers(size_range[0], size_range[1] + 1))
    return Finding(kind, side=side, zone=zone, size_mm=size, device=device)


def _phantom_cases() -> list[tuple[tuple[Finding, ...], int]]:
    """Every kind x (side, zone, device) variant alone under several phrasings, then mixed
    studies of one to three findings and normal studies."""
    cases = []
    for kind, spec in FINDING_KINDS.items():
        for variant in spec.variants():
            for seed in range(SEEDS_PER_VARIANT):
                cases.append(((_variant_finding(kind, variant, seed),), seed))
    plans = plan_findings(1600, seed=3, mode="mixed", normal_fraction=0.15)
    cases += [(findings, 1000 + number) for number, findings in enumerate(plans)]
    return cases


def _denied_kinds(findings: tuple[Finding, ...]) -> set[str]:
    """The kinds a phantom report states as absent: its "No ..." items and the normal heart."""
    present = {f.kind for f in findings}
    denied = {kind for _, kind in ABSENT_ITEMS} | (set(HEART_NORMAL.denies) & set(FINDING_KINDS))
    return denied - present


def _problems(findings: tuple[Finding, ...], text: str, check_sizes: bool) -> list[str]:
    labels = label_report(text)
    problems = []
    truth = {FindingKey(f.kind, f.side, f.device) for f in findings}
    if set(labels.positive) != truth:
        problems.append(f"positive {labels.positive} != true {sorted(truth, key=str)}")
    present = {f.kind for f in findings}
    for mention in labels.mentions:
        if mention.kind in present and mention.status != POSITIVE:
            problems.append(f"present {mention.kind} read as {mention.status} ('{mention.text}')")
    for kind in _denied_kinds(findings):
        if labels.status.get(kind) != NEGATIVE:
            problems.append(f"denied {kind} read as {labels.status.get(kind)}")
    for finding in findings:
        for mention in (m for m in labels.mentions if m.kind == finding.kind):
            if finding.zone is not None and mention.zone != finding.zone:
                problems.append(f"{finding} read in zone {mention.zone}")
            if check_sizes and mention.size_mm not in (None, finding.size_mm):
                problems.append(f"{finding} read with size {mention.size_mm}")
    return [f"{problem} in: {text}" for problem in problems]


def test_phantom_reports_are_read_back_exactly() -> None:
    cases = _phantom_cases()
    assert len(cases) >= 2000
    assert sum(1 for findings, _ in cases if not findings) >= 200
    assert sum(1 for findings, _ in cases if len(findings) == 3) >= 200
    problems = []
    for findings, seed in cases:
        report = make_report(findings, seed)
        problems += _problems(findings, report.text, check_sizes=True)
        # R2Gen's cleaning drops decimal points ("1.2 cm" -> "12 cm"): sizes are not comparable there
        problems += _problems(findings, clean_report(report.text, R2GEN_IU), check_sizes=False)
    assert not problems, f"{len(problems)} problems in {2 * len(cases)} reports, e.g.:\n" + "\n".join(problems[:10])


def test_phantom_sizes_are_read_in_millimetres() -> None:
    sized = [Finding("nodule", "left", "upper", size_mm=12.0), Finding("mass", "right", "lower", size_mm=45.0)]
    for finding in sized:
        sizes = {
            mention.size_mm
            for seed in range(20)
            for mention in label_report(make_report([finding], seed).text).mentions
            if mention.kind == finding.kind
        }
        assert sizes == {finding.size_mm}


# --- sentences ------------------------------------------------------------------------------------
SENTENCES = [
    ("No pleural effusion or pneumothorax.", {"pleural_effusion": (NEGATIVE, None), "pneumothorax": (NEGATIVE, None)}),
    ("no pleural effusion or pneumothorax .", {"pleural_effusion": (NEGATIVE, None), "pneumothorax": (NEGATIVE, None)}),
    (
        "No focal consolidation, pleural effusion or pneumothorax.",
        {"consolidation": (NEGATIVE, None), "pleural_effusion": (NEGATIVE, None), "pneumothorax": (NEGATIVE, None)},
    ),
    ("There is no focal airspace disease to suggest pneumonia.", {"consolidation": (NEGATIVE, None)}),
    ("The lungs are free of focal airspace disease.", {"consolidation": (NEGATIVE, None)}),
    ("Heart size is normal.", {"cardiomegaly": (NEGATIVE, None)}),
    ("Normal heart size and mediastinal contours.", {"cardiomegaly": (NEGATIVE, None)}),
    ("The cardiac silhouette and mediastinal contours are within normal limits.", {"cardiomegaly": (NEGATIVE, None)}),
    ("The heart is not significantly enlarged.", {"cardiomegaly": (NEGATIVE, None)}),
    ("Mild cardiomegaly.", {"cardiomegaly": (POSITIVE, None)}),
    ("The heart is enlarged and the lungs are normal.", {"cardiomegaly": (POSITIVE, None)}),
    ("The cardiac silhouette is borderline enlarged.", {"cardiomegaly": (UNCERTAIN, None)}),
    ("Possible small left pleural effusion.", {"pleural_effusion": (UNCERTAIN, "left")}),
    ("Pneumothorax cannot be excluded.", {"pneumothorax": (UNCERTAIN, None)}),
    ("Calcified granuloma in the right upper lobe.", {"calcified_granuloma": (POSITIVE, "right")}),
    ("The lungs are clear.", {}),
    ("Right IJ central venous catheter tip in the SVC.", {"support_device": (POSITIVE, "right")}),
    (
        "Left-sided central venous catheter with its tip at the cavoatrial junction.",
        {"support_device": (POSITIVE, "left")},
    ),
    ("A left chest wall pacemaker is present with leads in the right atrium.", {"support_device": (POSITIVE, None)}),
    ("There has been removal of the right-sided PICC line.", {"support_device": (NEGATIVE, "right")}),
    (
        "No pleural effusion, but there is a small right pneumothorax.",
        {"pleural_effusion": (NEGATIVE, None), "pneumothorax": (POSITIVE, "right")},
    ),
    (
        "No pneumothorax; possible small right effusion.",
        {"pneumothorax": (NEGATIVE, None), "pleural_effusion": (UNCERTAIN, "right")},
    ),
    # a side is read in the words around a mention, not handed on from the opacity it may explain
    (
        "Left lower lobe opacity may represent atelectasis.",
        {"opacity": (POSITIVE, "left"), "atelectasis": (UNCERTAIN, None)},
    ),
    (
        "Linear opacity at the right lung base is consistent with subsegmental atelectasis.",
        {"atelectasis": (POSITIVE, "right")},
    ),
    ("Left basilar atelectasis versus pneumonia.", {"atelectasis": (UNCERTAIN, "left")}),
    ("Previously seen left pleural effusion has resolved.", {"pleural_effusion": (NEGATIVE, "left")}),
    ("No change in the small left pleural effusion.", {"pleural_effusion": (POSITIVE, "left")}),
    ("Mild bibasilar atelectasis.", {"atelectasis": (POSITIVE, "bilateral")}),
    ("Small left and right pleural effusions.", {"pleural_effusion": (POSITIVE, "bilateral")}),
    ("Findings are consistent with pulmonary edema.", {"edema": (POSITIVE, "bilateral")}),
    ("Endotracheal tube in satisfactory position.", {"support_device": (POSITIVE, None)}),
    ("Thoracic spondylosis.", {"degenerative_spine": (POSITIVE, None)}),
    ("There are mild degenerative changes of the thoracic spine.", {"degenerative_spine": (POSITIVE, None)}),
    ("Degenerative changes are present in the spine.", {"degenerative_spine": (POSITIVE, None)}),
    ("There are T-spine osteophytes.", {"degenerative_spine": (POSITIVE, None)}),
    ("Mild thoracic spine degenerative change.", {"degenerative_spine": (POSITIVE, None)}),
    ("No degenerative changes of the spine.", {"degenerative_spine": (NEGATIVE, None)}),
    ("Degenerative changes are present in the right shoulder.", {}),
]


@pytest.mark.parametrize(("sentence", "expected"), SENTENCES, ids=[s for s, _ in SENTENCES])
def test_sentence_status_and_side(sentence: str, expected: dict[str, tuple[str, str | None]]) -> None:
    mentions = label_report(sentence).mentions
    assert {m.kind: (m.status, m.side) for m in mentions} == expected


def test_zone_size_device_and_span() -> None:
    text = "FINDINGS: Heart size normal. There is a 2.3 cm nodule in the left upper lobe. Right-sided central line."
    nodule, device = [m for m in find_mentions(text) if m.status == POSITIVE]
    assert (nodule.kind, nodule.side, nodule.zone, nodule.size_mm) == ("nodule", "left", "upper", 23.0)
    assert (device.device, device.side, device.zone, device.size_mm) == ("central_line", "right", None, None)
    assert [m.sentence_index for m in find_mentions(text)] == [0, 1, 2]
    for mention in find_mentions(text):
        assert text[mention.span[0] : mention.span[1]] == mention.text


def test_sentences_split_at_full_stops_not_decimal_points() -> None:
    text = "A 1.5 cm nodule.  No effusion!\n\nLine two"
    assert [text[s:e] for s, e in sentence_spans(text)] == ["A 1.5 cm nodule.", "No effusion!", "Line two"]
    cleaned = "no effusion . heart normal ."
    assert [cleaned[s:e] for s, e in sentence_spans(cleaned)] == ["no effusion .", "heart normal ."]


# --- aggregation ----------------------------------------------------------------------------------
def test_status_aggregates_positive_over_uncertain_over_negative() -> None:
    assert label_report("Possible pneumothorax. No pneumothorax. Right pneumothorax.").status == {
        "pneumothorax": POSITIVE
    }
    assert label_report("No pneumothorax. Possible pneumothorax.").status == {"pneumothorax": UNCERTAIN}
    assert label_report("No pneumothorax. No evidence of pneumothorax.").status == {"pneumothorax": NEGATIVE}


def test_positive_findings_merge_unspecified_and_fold_bilateral() -> None:
    merged = label_report("FINDINGS: Small left pleural effusion. IMPRESSION: Pleural effusion.")
    assert merged.positive == (FindingKey("pleural_effusion", "left"),)
    assert label_report("Left pleural effusion. Right pleural effusion.").positive == (
        FindingKey("pleural_effusion", "bilateral"),
    )
    two_nodules = label_report("Left upper lobe nodule. Right lower lobe nodule.").positive
    assert two_nodules == (FindingKey("nodule", "left"), FindingKey("nodule", "right"))
    devices = label_report("Right central venous catheter. Pacemaker in place. Catheter tip in the SVC.").positive
    assert devices == (
        FindingKey("support_device", "right", "central_line"),
        FindingKey("support_device", None, "pacemaker"),
    )


def test_another_phrase_table_uses_the_same_rules() -> None:
    chexpert_like = (Phrase("Pneumonia", r"pneumonia"), Phrase("Pleural Effusion", r"(?:pleural )?effusions?"))
    labels = label_report("Possible right lower lobe pneumonia. No effusion.", phrases=chexpert_like)
    assert labels.status == {"Pneumonia": UNCERTAIN, "Pleural Effusion": NEGATIVE}
    assert labels.mentions[0].side == "right" and labels.mentions[0].zone == "lower"


# --- real reports ---------------------------------------------------------------------------------
_PLAIN_DENIAL = re.compile(r"^(?:no|negative for|there (?:is|are) no) ", re.IGNORECASE)
_TURNS = re.compile(r"\b(?:but|however|although|though|which|except|with|change|there (?:is|are))\b", re.IGNORECASE)


def test_plain_denials_in_iu_reports_are_negative(shared_data: Path) -> None:
    """Every real IU X-ray sentence of the form "No A, B or C." denies all it mentions."""
    annotation = json.loads((shared_data / "iu_xray" / "annotation.json").read_text())
    reports = [entry["report"] for split in annotation.values() for entry in split]
    denials = [
        report[start:end]
        for report in reports
        for start, end in sentence_spans(report)
        if _PLAIN_DENIAL.match(report[start:end]) and not _TURNS.search(report[start + 3 : end])
    ]
    read = [(sentence, label_report(sentence).mentions) for sentence in denials]
    assert sum(1 for _, mentions in read if mentions) > 2000
    wrong = [
        (sentence, [(m.kind, m.status) for m in mentions])
        for sentence, mentions in read
        if any(m.status != NEGATIVE for m in mentions)
    ]
    assert not wrong, wrong[:5]
