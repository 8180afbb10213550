"""Finding accuracy: hand-made drafts that are right, on the wrong side, missing, hedged or
adding findings; the summary counts; phantom reports scored against their own findings."""

from __future__ import annotations

import json

import pytest

from medvl.data.phantom.dataset import plan_findings
from medvl.data.phantom.reports import make_report
from medvl.errors import ConfigError, MedVLError
from medvl.evaluate.findings import finding_accuracy, score_study
from medvl.findings import Finding

LEFT_EFFUSION = Finding("pleural_effusion", side="left")
LEFT_LINE = Finding("support_device", side="left", device="central_line")
NODULE = Finding("nodule", side="right", zone="upper", size_mm=12.0)


def _errors(truth: list[Finding], draft: str) -> list[tuple[str, str]]:
    return [(error["kind"], error["error"]) for error in score_study("s", truth, draft)["errors"]]


def test_a_draft_naming_exactly_the_findings_is_correct() -> None:
    study = score_study(
        "s1",
        [LEFT_EFFUSION, NODULE],
        "There is a 12 mm nodule in the right upper lobe. Small left pleural effusion. No pneumothorax.",
    )
    assert study["correct"] and study["errors"] == []
    assert (
        study["true"]
        == study["predicted"]
        == [
            {"kind": "pleural_effusion", "side": "left", "device": None},
            {"kind": "nodule", "side": "right", "device": None},
        ]
    )


def test_wrong_side_is_one_error_not_a_miss_and_an_extra() -> None:
    study = score_study("s", [LEFT_EFFUSION], "Right pleural effusion.")
    assert not study["correct"]
    assert study["errors"] == [
        {
            "kind": "pleural_effusion",
            "error": "wrong_side",
            "device": None,
            "true_side": "left",
            "predicted_side": "right",
        }
    ]
    assert _errors([LEFT_EFFUSION], "Pleural effusion.") == [("pleural_effusion", "wrong_side")]  # side not stated
    assert _errors([Finding("pleural_effusion", side="bilateral")], "Left pleural effusion.") == [
        ("pleural_effusion", "wrong_side")
    ]
    assert _errors([Finding("pleural_effusion", side="bilateral")], "Small left and right pleural effusions.") == []


def test_missed_uncertain_and_extra_findings() -> None:
    assert _errors([LEFT_EFFUSION], "No pleural effusion. Heart size is normal.") == [("pleural_effusion", "missed")]
    assert _errors([LEFT_EFFUSION], "Possible small left pleural effusion.") == [("pleural_effusion", "uncertain")]
    assert _errors([LEFT_EFFUSION], "Left pleural effusion. Mild cardiomegaly.") == [("cardiomegaly", "extra")]
    # the wrong device: the true one is missed and the named one is extra
    assert _errors([LEFT_LINE], "Pacemaker in place.") == [("support_device", "missed"), ("support_device", "extra")]


def test_normal_studies() -> None:
    assert score_study("n", [], "Heart size is normal. The lungs are clear. No pleural effusion or pneumothorax.")[
        "correct"
    ]
    assert score_study("n", [], "Possible small left pleural effusion.")["correct"]  # hedging is not naming
    assert _errors([], "Cardiomegaly.") == [("cardiomegaly", "extra")]


def test_summary_counts_per_group_and_kind() -> None:
    truths = {
        "right": [LEFT_EFFUSION],
        "wrong_side": [LEFT_EFFUSION],
        "missed": [LEFT_LINE.to_dict()],  # manifests hold findings as dicts
        "normal": [],
        "extra": [],
    }
    drafts = {
        "right": "Left pleural effusion.",
        "wrong_side": "Right pleural effusion.",
        "missed": "The lungs are clear.",
        "normal": "No acute cardiopulmonary abnormality.",
        "extra": "There is a left pneumothorax.",
    }
    result = finding_accuracy(truths, drafts)
    assert json.loads(json.dumps(result)) == result
    assert result["n_studies"] == 5 and result["accuracy"] == pytest.approx(2 / 5)
    assert result["abnormal"] == {"n": 3, "correct": 1, "accuracy": pytest.approx(1 / 3)}
    assert result["normal"] == {"n": 2, "correct": 1, "accuracy": 0.5}
    effusion, device, pneumothorax = (
        result["per_kind"][k] for k in ("pleural_effusion", "support_device", "pneumothorax")
    )
    assert effusion == {"n": 2, "correct": 1, "missed": 0, "uncertain": 0, "wrong_side": 1, "extra": 0, "accuracy": 0.5}
    assert device == {"n": 1, "correct": 0, "missed": 1, "uncertain": 0, "wrong_side": 0, "extra": 0, "accuracy": 0.0}
    assert pneumothorax == {
        "n": 0,
        "correct": 0,
        "missed": 0,
        "uncertain": 0,
        "wrong_side": 0,
        "extra": 1,
        "accuracy": None,
    }
    assert [s["study_id"] for s in result["studies"] if not s["correct"]] == ["wrong_side", "missed", "extra"]


def test_phantom_reports_score_perfectly_against_their_findings() -> None:
    plans = plan_findings(300, seed=11, mode="mixed", normal_fraction=0.2)
    truths = {f"p{n}": list(findings) for n, findings in enumerate(plans)}
    drafts = {f"p{n}": make_report(findings, n).text for n, findings in enumerate(plans)}
    result = finding_accuracy(truths, drafts)
    assert result["accuracy"] == 1.0 and result["abnormal"]["n"] == 240 and result["normal"]["n"] == 60
    # shifting every draft by one study breaks almost all of them
    shifted = {f"p{n}": drafts[f"p{(n + 1) % len(plans)}"] for n in range(len(plans))}
    assert finding_accuracy(truths, shifted)["accuracy"] < 0.3


def test_bad_inputs() -> None:
    with pytest.raises(MedVLError, match=r"no draft for 1 study \(b\)"):
        finding_accuracy({"a": [], "b": []}, {"a": "Normal."})
    with pytest.raises(MedVLError, match=r"1 draft\(s\) for studies without findings \(c\)"):
        finding_accuracy({"a": []}, {"a": "Normal.", "c": "Normal."})
    with pytest.raises(ConfigError, match="unknown finding kind 'fracture'"):
        finding_accuracy({"a": [{"kind": "fracture"}]}, {"a": "Normal."})
