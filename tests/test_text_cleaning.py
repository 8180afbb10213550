"""Report cleaning: R2Gen's recipes reproduced token for token, the basic cleaner, display text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from medvl.data.phantom.dataset import plan_findings
from medvl.data.phantom.reports import make_report
from medvl.errors import ConfigError
from medvl.text import CleaningConfig, clean_report, split_sentences, to_display

R2GEN_IU = CleaningConfig(style="r2gen_iu")
R2GEN_MIMIC = CleaningConfig(style="r2gen_mimic")
KEEP_CASE = CleaningConfig(lowercase=False)


# --- the oracle: R2Gen's modules/tokenizers.py, verbatim but for `self` and an r-prefix on the
# --- regular expression (same pattern, without Python's invalid-escape warning) ---------------
# fmt: off
def r2gen_clean_report_iu_xray(report):
    report_cleaner = lambda t: t.replace('..', '.').replace('..', '.').replace('..', '.').replace('1. ', '') \
        .replace('. 2. ', '. ').replace('. 3. ', '. ').replace('. 4. ', '. ').replace('. 5. ', '. ') \
        .replace(' 2. ', '. ').replace(' 3. ', '. ').replace(' 4. ', '. ').replace(' 5. ', '. ') \
        .strip().lower().split('. ')
    sent_cleaner = lambda t: re.sub(r'[.,?;*!%^&_+():-\[\]{}]', '', t.replace('"', '').replace('/', '').
                                    replace('\\', '').replace("'", '').strip().lower())
    tokens = [sent_cleaner(sent) for sent in report_cleaner(report) if sent_cleaner(sent) != []]
    report = ' . '.join(tokens) + ' .'
    return report


def r2gen_clean_report_mimic_cxr(report):
    report_cleaner = lambda t: t.replace('\n', ' ').replace('__', '_').replace('__', '_').replace('__', '_') \
        .replace('__', '_').replace('__', '_').replace('__', '_').replace('__', '_').replace('  ', ' ') \
        .replace('  ', ' ').replace('  ', ' ').replace('  ', ' ').replace('  ', ' ').replace('  ', ' ') \
        .replace('..', '.').replace('..', '.').replace('..', '.').replace('..', '.').replace('..', '.') \
        .replace('..', '.').replace('..', '.').replace('..', '.').replace('1. ', '').replace('. 2. ', '. ') \
        .replace('. 3. ', '. ').replace('. 4. ', '. ').replace('. 5. ', '. ').replace(' 2. ', '. ') \
        .replace(' 3. ', '. ').replace(' 4. ', '. ').replace(' 5. ', '. ') \
        .strip().lower().split('. ')
    sent_cleaner = lambda t: re.sub(r'[.,?;*!%^&_+():-\[\]{}]', '', t.replace('"', '').replace('/', '')
                                    .replace('\\', '').replace("'", '').strip().lower())
    tokens = [sent_cleaner(sent) for sent in report_cleaner(report) if sent_cleaner(sent) != []]
    report = ' . '.join(tokens) + ' .'
    return report
# fmt: on


# Real-looking reports that hit every rule and quirk: "..", numbered lists, decimals, "T11. ",
# quotes and slashes, the ':-[' range (<, =, >, @), brackets, empty sentences, stray spaces.
IU_LIKE_REPORTS = [
    ("The heart size and pulmonary vascularity appear within normal limits. A large hiatal hernia is noted. "
     "The lungs are free of focal airspace disease. No pneumothorax or pleural effusion is seen."),
    ("The lungs are clear bilaterally. Specifically, no evidence of focal consolidation, pneumothorax, or pleural "
     "effusion.. Cardio mediastinal silhouette is unremarkable."),
    ("1. Cardiomegaly and/or pericardial effusion. 2. Right base opacity XXXX combined with elevation right "
     "hemidiaphragm. 3. Left lung relatively clear. 4. Limited exam. 5. No evidence of pneumothorax."),
    ("In the right lung, there is a 1.9 x 2.1 cm nodule overlying the posterior 7th rib. Degenerative changes of T11. "
     "The patient's chin obscures the apices. There's no effusion."),
    "Heart size is upper limits of normal, pulmonary vascularity within normal limits. .",
    'No pneumothorax, pleural effusion , or focal airspace disease. "Stable" <5 mm nodule = unchanged [prior] {ok} @ apex!',
    ("Chest: The heart is normal size with normal mediastinal contours (unchanged). Left knee: no fracture-dislocation;"
     " mild effusion? Pression: Low lung volumes without acute findings. ."),
    "   These XXXX't contours are within normal limits \\ stable.  ",
    "",
]
MIMIC_LIKE_REPORTS = [
    ("FINAL REPORT\n EXAMINATION:  CHEST (PA AND LAT)\n \n INDICATION:  ___F with cough\n \n FINDINGS: \n \n"
     " The lungs are clear.  No pleural effusion or pneumothorax.. Heart size is normal.\n \n IMPRESSION: \n \n"
     " 1. No acute process. 2. Stable 1.2 cm nodule."),
    "Compared to ____ prior, there is no change.\nTubes and lines in standard position..\n",
]


@pytest.mark.parametrize("report", IU_LIKE_REPORTS)
def test_r2gen_iu_matches_r2gen_token_for_token(report: str) -> None:
    expected = r2gen_clean_report_iu_xray(report)
    cleaned = clean_report(report, R2GEN_IU)
    assert cleaned.split() == expected.split()
    assert cleaned == " ".join(expected.split())  # R2Gen's text with whitespace runs collapsed


@pytest.mark.parametrize("report", MIMIC_LIKE_REPORTS + IU_LIKE_REPORTS)
def test_r2gen_mimic_matches_r2gen_token_for_token(report: str) -> None:
    expected = r2gen_clean_report_mimic_cxr(report)
    assert clean_report(report, R2GEN_MIMIC) == " ".join(expected.split())


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        ("A 1.5 cm nodule. 1. Stable.", "a 15 cm nodule . stable ."),  # decimals lose their point
        ("Degenerative changes of T11. The lungs are clear.", "degenerative changes of t1the lungs are clear ."),
        ("Cardiomegaly and/or effusion. Well-defined 'nodule'.", "cardiomegaly andor effusion . well-defined nodule ."),
        ("Nodule <5 mm = stable @ apex.", "nodule 5 mm stable apex ."),  # ':-[' is a range
        ("No effusion. .", "no effusion . ."),  # the empty sentence is kept
        ("There is XXXX scarring.", "there is xxxx scarring ."),
    ],
)
def test_r2gen_iu_quirks_are_kept(report: str, expected: str) -> None:
    assert clean_report(report, R2GEN_IU) == expected


def test_r2gen_iu_matches_r2gen_on_every_iu_report(shared_data: Path) -> None:
    annotation = json.loads((shared_data / "iu_xray" / "annotation.json").read_text())
    reports = [entry["report"] for split in annotation.values() for entry in split]
    assert len(reports) == 2955
    mismatches = [r for r in reports if clean_report(r, R2GEN_IU) != " ".join(r2gen_clean_report_iu_xray(r).split())]
    assert mismatches == []


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        ("The heart size is normal.  No effusion.", "the heart size is normal . no effusion ."),
        ("A 1.5 cm nodule in the right upper lobe, 12 mm.", "a 1.5 cm nodule in the right upper lobe , 12 mm ."),
        ("There is an 8mm calcified granuloma", "there is an 8 mm calcified granuloma ."),
        ("There is XXXX biapical scarring. These XXXX't contours are normal.", "there is biapical scarring . these contours are normal ."),
        ("1. No acute disease. 2) Stable cardiomegaly.", "no acute disease . stable cardiomegaly ."),
        ("Findings: 1. Clear lungs.", "findings : clear lungs ."),
        ("No pneumothorax, pleural effusion , or focal airspace disease..", "no pneumothorax , pleural effusion , or focal airspace disease ."),
        ("There's a well-defined opacity (stable) and/or 50% collapse; see below!", "there's a well-defined opacity stable and or 50 % collapse ; see below ."),
        ("Is there an effusion? No. , Lungs clear", "is there an effusion . no . lungs clear ."),
        ("Degenerative changes of T11. The lungs are clear.", "degenerative changes of t11 . the lungs are clear ."),
        ("  \n . . ", ""),
    ],
)
def test_basic_cleaning(report: str, expected: str) -> None:
    assert clean_report(report) == expected


def test_basic_options_keep_case_and_placeholders() -> None:
    report = "Right-sided XXXX catheter. Kerley B lines."
    assert clean_report(report, KEEP_CASE) == "Right-sided catheter . Kerley B lines ."
    assert clean_report(report, CleaningConfig(drop_placeholders=False)) == "right-sided xxxx catheter . kerley b lines ."


def test_split_sentences() -> None:
    assert split_sentences("heart is normal . no effusion .") == ["heart is normal .", "no effusion ."]
    assert split_sentences("no effusion . . lungs clear .") == ["no effusion .", "lungs clear ."]
    assert split_sentences("no effusion . lungs are") == ["no effusion .", "lungs are"]  # a cut-short generation
    assert split_sentences("") == []


@pytest.mark.parametrize(
    ("cleaned", "expected"),
    [
        ("heart size is normal . no effusion .", "Heart size is normal. No effusion."),
        ("a 1.5 cm nodule , 12 mm . 50 % collapse ; stable .", "A 1.5 cm nodule, 12 mm. 50% collapse; stable."),
        ("no effusion .  . lungs", "No effusion. Lungs"),
        ("", ""),
    ],
)
def test_to_display(cleaned: str, expected: str) -> None:
    assert to_display(cleaned) == expected


def test_phantom_sections_survive_cleaning_and_display() -> None:
    plans = plan_findings(120, seed=5, mode="mixed", normal_fraction=0.2)
    sections = [text for i, findings in enumerate(plans) for text in make_report(findings, seed=i).sections.values()]
    assert any(re.search(r"\d\.\d cm", text) for text in sections)  # decimals are exercised
    assert [to_display(clean_report(text, KEEP_CASE)) for text in sections] == sections


def test_cleaning_config_from_dict() -> None:
    config = CleaningConfig.from_dict({"style": "r2gen_iu"})
    assert config == R2GEN_IU
    assert CleaningConfig.from_dict(config.to_dict()) == config
    assert CleaningConfig.from_dict(None) == CleaningConfig()
    with pytest.raises(ConfigError, match="lowercse"):
        CleaningConfig.from_dict({"lowercse": False})
    with pytest.raises(ConfigError, match="r2gen_iu"):
        CleaningConfig.from_dict({"style": "r2gen"})
    with pytest.raises(ConfigError, match="drop_placeholders"):
        CleaningConfig.from_dict({"drop_placeholders": "yes"})
