"""Phantom reports: every present finding named with its side, none denied, normal ones clean.

The checks use their own simple string rules (not the generator's tables), so they can catch a
template that slips.
"""

from __future__ import annotations

import re

import pytest

from medvl.data.phantom.dataset import plan_findings
from medvl.data.phantom.reports import make_report
from medvl.errors import ConfigError
from medvl.findings import Finding

KEYWORDS = {
    "cardiomegaly": ("cardiomegaly", "enlarged", "enlargement"),
    "pleural_effusion": ("effusion",),
    "pneumothorax": ("pneumothorax",),
    "consolidation": ("consolidation",),
    "opacity": ("opacity",),
    "nodule": ("nodule",),
    "mass": ("mass",),
    "atelectasis": ("atelectasis",),
    "edema": ("edema",),
    "calcified_granuloma": ("granuloma",),
    "support_device": ("catheter", "central line", "endotracheal", "pacemaker"),
}
SIDE_WORDS = {"left": ("left",), "right": ("right",), "bilateral": ("bilateral", "both", "bibasilar")}
ZONE_WORDS = {"upper": ("upper",), "middle": ("middle", "mid"), "lower": ("lower", "base")}
NEGATION = re.compile(r"\b(no|not|without|negative|free of|clear|normal|unremarkable)\b", re.IGNORECASE)
PARENCHYMAL = {"consolidation", "opacity", "nodule", "mass", "atelectasis", "edema", "calcified_granuloma"}


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=\.)\s+", text) if s.strip()]


def _mentions(sentence: str, kind: str) -> bool:
    lowered = sentence.lower()
    return any(word in lowered for word in KEYWORDS[kind])


def _check_report(findings: tuple[Finding, ...], seed: int) -> None:
    report = make_report(findings, seed)
    findings_text, impression = report.sections["findings"], report.sections["impression"]
    assert report.text == f"FINDINGS: {findings_text} IMPRESSION: {impression}"
    sentences = _sentences(findings_text)
    assert 3 <= len(sentences) <= 6, sentences
    present = {f.kind for f in findings}
    for finding in findings:
        naming = [s for s in sentences if _mentions(s, finding.kind) and not NEGATION.search(s)]
        assert naming, f"{finding} is not named in: {findings_text}"
        lowered = " ".join(naming).lower()
        if finding.side is not None:
            assert any(word in lowered for word in SIDE_WORDS[finding.side]), (finding, naming)
        if finding.zone is not None:
            assert any(word in lowered for word in ZONE_WORDS[finding.zone]), (finding, naming)
        if finding.kind in ("nodule", "mass"):
            size = finding.size_mm
            assert f"{size:g} mm" in lowered or f"{size / 10:g} cm" in lowered, (finding, naming)
    for sentence in sentences:
        if NEGATION.search(sentence):
            denied = [kind for kind in present if _mentions(sentence, kind)]
            assert not denied, f"'{sentence}' denies present {denied}"
    if present & PARENCHYMAL:
        assert "lungs are clear" not in findings_text.lower() and "clear bilaterally" not in findings_text.lower()
    if not findings:
        for sentence in sentences:
            if any(_mentions(sentence, kind) for kind in KEYWORDS):
                assert NEGATION.search(sentence), f"normal report asserts a finding: '{sentence}'"


def test_reports_name_every_finding_and_deny_none_of_them() -> None:
    plans = plan_findings(300, seed=1, mode="mixed", normal_fraction=0.2)
    assert any(len(f) == 3 for f in plans) and any(not f for f in plans)
    for seed, findings in enumerate(plans):
        _check_report(findings, seed)


@pytest.mark.parametrize("side", ["left", "right", "bilateral"])
def test_effusion_reports_on_each_side(side: str) -> None:
    for seed in range(20):
        _check_report((Finding("pleural_effusion", side),), seed)


def test_normal_reports_vary_and_stay_normal() -> None:
    texts = {make_report((), seed).text for seed in range(30)}
    assert len(texts) > 10
    for seed in range(30):
        _check_report((), seed)
    assert make_report((), 4) == make_report((), 4)


def test_impression_names_the_findings_and_structured_list_is_kept() -> None:
    findings = (Finding("nodule", "left", "upper", 18), Finding("cardiomegaly"))
    report = make_report(findings, 0)
    assert report.findings == findings
    impression = report.sections["impression"].lower()
    assert "cardiomegaly" in impression and "nodule" in impression and "left" in impression
    assert "no acute" not in impression


def test_kinds_without_templates_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from medvl.data.phantom import reports

    monkeypatch.delitem(reports._PRESENT, "edema")
    with pytest.raises(ConfigError, match="no template for finding kind 'edema'"):
        make_report((Finding("edema", "bilateral"),), 0)
