"""Report sections: header splitting, the tagged model target and its inverse."""

from __future__ import annotations

import pytest

from medvl.data.phantom.dataset import plan_findings
from medvl.data.phantom.reports import make_report
from medvl.errors import ConfigError
from medvl.text import (
    CleaningConfig,
    clean_report,
    clean_sections,
    sections_to_target,
    split_sections,
    target_to_sections,
)

MIMIC_STYLE_REPORT = """FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)

 INDICATION:  ___F with cough.

 TECHNIQUE:  Chest PA and lateral.

 COMPARISON:  None.

 FINDINGS:

 The lungs are clear.  No pleural effusion or pneumothorax.
 Clinical history: none given.

 IMPRESSION:

 No acute cardiopulmonary process.
"""


def test_split_sections_of_a_report_with_headers() -> None:
    assert split_sections(MIMIC_STYLE_REPORT) == {
        "preamble": "FINAL REPORT EXAMINATION: CHEST (PA AND LAT)",  # not a known header
        "indication": "___F with cough.",
        "technique": "Chest PA and lateral.",
        "comparison": "None.",
        "findings": "The lungs are clear. No pleural effusion or pneumothorax.",
        "history": "none given.",
        "impression": "No acute cardiopulmonary process.",
    }


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        ("Findings: Heart normal. impression : Normal chest.", {"findings": "Heart normal.", "impression": "Normal chest."}),
        ("FINDINGS: Heart normal. CONCLUSION: No acute disease.", {"findings": "Heart normal.", "impression": "No acute disease."}),
        ("Findings are consistent with edema.", {"findings": "Findings are consistent with edema."}),  # no colon
        ("Past medical history: diabetes. CT findings: consolidation.", {"findings": "Past medical history: diabetes. CT findings: consolidation."}),
        ("FINDINGS: Heart normal. IMPRESSION: Normal. FINDINGS: Lungs clear.", {"findings": "Heart normal. Lungs clear.", "impression": "Normal."}),
        ("FINDINGS:  IMPRESSION: Normal chest.", {"impression": "Normal chest."}),  # empty section left out
        ("", {}),
    ],
)
def test_split_sections_rules(report: str, expected: dict[str, str]) -> None:
    assert split_sections(report) == expected


def test_sections_to_target() -> None:
    sections = {"findings": "Heart size is normal. No effusion.", "impression": "No acute disease.", "comparison": "None."}
    target = "[findings] heart size is normal . no effusion . [impression] no acute disease ."
    assert sections_to_target(sections) == target
    assert sections_to_target({"findings": "The lungs are clear."}) == "[findings] the lungs are clear ."  # IU
    assert sections_to_target(sections, order=("impression",)) == "[impression] no acute disease ."
    assert sections_to_target({"findings": "XXXX.", "comparison": "None."}) == ""
    iu_style = sections_to_target({"findings": "A 1.5 cm nodule."}, config=CleaningConfig(style="r2gen_iu"))
    assert iu_style == "[findings] a 15 cm nodule ."
    with pytest.raises(ConfigError, match="conclusion"):
        sections_to_target(sections, order=("findings", "conclusion"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("heart is normal .", {"findings": "heart is normal ."}),  # no tags
        ("[findings] a . [findings] b .", {"findings": "a . b ."}),  # repeated tag
        ("[findings] [impression] normal chest .", {"impression": "normal chest ."}),  # empty section
        ("[impression] normal . [findings] .", {"impression": "normal ."}),
        ("lungs clear . [impression] normal", {"findings": "lungs clear .", "impression": "normal"}),
        ("", {}),
    ],
)
def test_target_to_sections_is_robust(text: str, expected: dict[str, str]) -> None:
    assert target_to_sections(text) == expected


@pytest.mark.parametrize("config", [CleaningConfig(), CleaningConfig(style="r2gen_iu")], ids=["basic", "r2gen_iu"])
def test_phantom_reports_round_trip(config: CleaningConfig) -> None:
    plans = plan_findings(150, seed=7, mode="mixed", normal_fraction=0.2)
    for index, findings in enumerate(plans):
        report = make_report(findings, seed=index)
        assert split_sections(report.text) == report.sections
        target = sections_to_target(report.sections, config=config)
        assert target_to_sections(target) == clean_sections(report.sections, config=config)
        assert target_to_sections(target) == {name: clean_report(text, config) for name, text in report.sections.items()}
