"""The finding vocabulary: validation, round trips and the registry's facts."""

from __future__ import annotations

import json

import pytest

from medvl.errors import ConfigError, MedVLError
from medvl.findings import FINDING_KINDS, SAMPLED_KINDS, SIDES, ZONES, Finding, finding_kind

CHEXPERT_OBSERVATIONS = {
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
}


def _all_findings() -> list[Finding]:
    findings = []
    for kind in FINDING_KINDS.values():
        size = None if kind.size_mm is None else sum(kind.size_mm) / 2
        findings += [Finding(kind.name, side, zone, size, device) for side, zone, device in kind.variants()]
    return findings


def test_every_variant_round_trips_through_json() -> None:
    findings = _all_findings()
    assert len(findings) == 45
    for finding in findings:
        assert Finding.from_dict(json.loads(json.dumps(finding.to_dict()))) == finding
        assert set(finding.to_dict()) == {"kind", "side", "zone", "size_mm", "device"}


def test_registry_facts() -> None:
    assert set(FINDING_KINDS) == {
        "cardiomegaly",
        "pleural_effusion",
        "pneumothorax",
        "consolidation",
        "opacity",
        "nodule",
        "mass",
        "atelectasis",
        "edema",
        "calcified_granuloma",
        "support_device",
        "degenerative_spine",
    }
    assert SAMPLED_KINDS == tuple(kind for kind in FINDING_KINDS if kind != "degenerative_spine")
    for kind in FINDING_KINDS.values():
        assert kind.chexpert is None or kind.chexpert in CHEXPERT_OBSERVATIONS
    assert FINDING_KINDS["nodule"].chexpert == FINDING_KINDS["mass"].chexpert == "Lung Lesion"
    assert FINDING_KINDS["calcified_granuloma"].chexpert is None  # CheXpert does not count calcified nodules
    assert FINDING_KINDS["nodule"].size_mm == (6.0, 30.0) and FINDING_KINDS["mass"].size_mm == (31.0, 70.0)
    assert not FINDING_KINDS["edema"].localised and FINDING_KINDS["nodule"].localised
    assert all(zone in ZONES for kind in FINDING_KINDS.values() for zone in kind.zones)
    assert all(side in SIDES + (None,) for kind in FINDING_KINDS.values() for side in kind.sides)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "fracture"}, "unknown finding kind 'fracture'"),
        ({"kind": "cardiomegaly", "side": "left"}, "cannot have side 'left'"),
        ({"kind": "pleural_effusion", "side": "top"}, "unknown side 'top'"),
        ({"kind": "pneumothorax", "side": "bilateral"}, "cannot have side 'bilateral'"),
        ({"kind": "nodule", "side": "left", "size_mm": 10}, "needs a zone"),
        ({"kind": "nodule", "side": "left", "zone": "apex", "size_mm": 10}, "unknown zone 'apex'"),
        ({"kind": "nodule", "side": "left", "zone": "upper", "size_mm": 45}, "between 6 and 30"),
        ({"kind": "nodule", "side": "left", "zone": "upper"}, "between 6 and 30"),
        ({"kind": "nodule", "side": "left", "zone": "upper", "size_mm": "12"}, "numeric size_mm"),
        ({"kind": "edema", "side": "bilateral", "zone": "lower"}, "takes no zone"),
        ({"kind": "support_device"}, "needs a device"),
        ({"kind": "support_device", "device": "chest_tube"}, "no device 'chest_tube'"),
        ({"kind": "support_device", "device": "central_line"}, "cannot have side None"),
        ({"kind": "support_device", "device": "pacemaker", "side": "left"}, "cannot have side 'left'"),
        ({"kind": "opacity", "side": "left", "zone": "upper", "device": "pacemaker"}, "takes no device"),
    ],
)
def test_invalid_findings_raise_config_error(fields: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        Finding(**fields)
    assert isinstance(caught.value, MedVLError) and "\n" not in str(caught.value)


def test_from_dict_rejects_unknown_fields_and_non_mappings() -> None:
    with pytest.raises(ConfigError, match="unknown finding field"):
        Finding.from_dict({"kind": "cardiomegaly", "severity": "mild"})
    with pytest.raises(ConfigError, match="mapping with a 'kind'"):
        Finding.from_dict(["cardiomegaly"])  # type: ignore[arg-type]


def test_sizes_are_stored_as_floats_and_kinds_are_looked_up() -> None:
    assert Finding("mass", "right", "lower", 40).size_mm == 40.0
    assert finding_kind("edema").label == "pulmonary edema"
    with pytest.raises(ConfigError, match="known kinds"):
        finding_kind("pneumonia")
