"""Manifests: JSONL and CSV round trips, and one-line errors naming file, line and problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medvl.data.manifest import ManifestRow, read_manifest, write_manifest
from medvl.errors import ManifestError

EFFUSION = {"kind": "pleural_effusion", "side": "left", "zone": None, "size_mm": None, "device": None}
NODULE = {"kind": "nodule", "side": "right", "zone": "upper", "size_mm": 12.0, "device": None}


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A folder with two studies' image files (contents are not read by the manifest)."""
    for study in ("p1", "p2"):
        (tmp_path / "studies" / study).mkdir(parents=True)
        for view in ("frontal.png", "lateral.png"):
            (tmp_path / "studies" / study / view).write_bytes(b"png")
    (tmp_path / "studies" / "p1" / "masks.npz").write_bytes(b"npz")
    return tmp_path


def record(study_id: str = "p1", **fields) -> dict:
    base = {
        "study_id": study_id,
        "images": [f"studies/{study_id}/frontal.png", f"studies/{study_id}/lateral.png"],
        "report": "Small left pleural effusion.",
        "split": "train",
    }
    return {**base, **fields}


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def error_of(path: Path, **options) -> str:
    with pytest.raises(ManifestError) as caught:
        read_manifest(path, **options)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- reading and writing


def test_jsonl_rows_have_absolute_paths_and_validated_findings(dataset):
    manifest = write_jsonl(
        dataset / "manifest.jsonl",
        [
            record("p1", findings=[{"kind": "pleural_effusion", "side": "left"}], masks="studies/p1/masks.npz"),
            record("p2"),
        ],
    )
    rows = read_manifest(manifest)

    assert [row.study_id for row in rows] == ["p1", "p2"]
    assert rows[0].images == (dataset / "studies/p1/frontal.png", dataset / "studies/p1/lateral.png")
    assert rows[0].findings == (EFFUSION,)  # completed to the full Finding record
    assert rows[0].masks == dataset / "studies/p1/masks.npz"
    assert rows[1].findings == () and rows[1].masks is None and rows[1].meta == {}


@pytest.mark.parametrize("name", ["out.jsonl", "out.csv"])
def test_write_then_read_round_trips(dataset, name):
    rows = [
        ManifestRow(
            "p1",
            (dataset / "studies/p1/frontal.png", dataset / "studies/p1/lateral.png"),
            'Effusion; "small", left.\nSecond line.',
            "train",
            findings=(EFFUSION, NODULE),
            masks=dataset / "studies/p1/masks.npz",
            meta={"source": "phantom", "seed": 3},
        ),
        ManifestRow("p2", (dataset / "studies/p2/frontal.png",), "", "test"),
    ]
    write_manifest(rows, dataset / name)

    assert read_manifest(dataset / name, require_reports=False) == rows
    assert "studies/p1/frontal.png" in (dataset / name).read_text()  # written relative to the manifest
    assert str(dataset) not in (dataset / name).read_text()
    assert sorted(p.name for p in dataset.iterdir()) == sorted(["studies", name])  # no temporary file left


def test_paths_outside_the_manifest_folder_stay_absolute(dataset, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "scan.png"
    elsewhere.write_bytes(b"png")
    write_manifest([ManifestRow("x", (elsewhere,), "Normal.", "val")], dataset / "m.jsonl")
    assert json.loads((dataset / "m.jsonl").read_text())["images"] == [elsewhere.as_posix()]
    assert read_manifest(dataset / "m.jsonl")[0].images == (elsewhere,)


def test_csv_separates_images_with_semicolons_and_holds_findings_as_json(dataset):
    manifest = dataset / "manifest.csv"
    manifest.write_text(
        "study_id,images,report,split,findings\n"
        "p1,studies/p1/frontal.png;studies/p1/lateral.png,Normal.,val,"
        '"[{""kind"": ""pleural_effusion"", ""side"": ""left""}]"\n'
        "p2,studies/p2/frontal.png,Normal.,test,\n"
    )
    rows = read_manifest(manifest)
    assert len(rows[0].images) == 2 and rows[0].findings == (EFFUSION,)
    assert rows[1].images == (dataset / "studies/p2/frontal.png",) and rows[1].findings == ()


def test_inference_manifests_may_omit_reports(dataset):
    manifest = write_jsonl(dataset / "m.jsonl", [{k: v for k, v in record().items() if k != "report"}])
    assert error_of(manifest) == f"{manifest}:1: report is empty (only inference manifests may omit reports)"
    assert read_manifest(manifest, require_reports=False)[0].report == ""


def test_missing_files_are_checked_only_when_asked(dataset):
    manifest = write_jsonl(dataset / "m.jsonl", [record("p1"), record("p3")])
    assert error_of(manifest) == f"{manifest}:2: image not found: studies/p3/frontal.png"
    assert [row.study_id for row in read_manifest(manifest, check_files_exist=False)] == ["p1", "p3"]


def test_missing_mask_file_is_an_error(dataset):
    manifest = write_jsonl(dataset / "m.jsonl", [record("p2", masks="studies/p2/masks.npz")])
    assert error_of(manifest) == f"{manifest}:1: masks file not found: studies/p2/masks.npz"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ({"split": "dev"}, "split must be one of train/val/test, got 'dev'"),
        ({"reprot": "Normal."}, "unknown column 'reprot' (did you mean 'report'?)"),
        ({"images": []}, "missing images"),
        ({"images": "p1.png"}, "images must be a non-empty list of paths, got 'p1.png'"),
        ({"study_id": 7}, "study_id must be a string, got 7"),
        ({"report": ["Normal."]}, "report must be a string, got list"),
        ({"findings": [{"kind": "pleural_effusion", "side": "middle"}]}, "findings[0]: unknown side 'middle'"),
        ({"findings": [{"kind": "tumour"}]}, "findings[0]: unknown finding kind 'tumour'"),
        ({"findings": {"kind": "nodule"}}, "findings must be a list, got dict"),
        ({"meta": "phantom"}, "meta must be an object, got str"),
    ],
)
def test_row_errors_name_the_file_line_and_problem(dataset, bad, problem):
    manifest = write_jsonl(dataset / "manifest.jsonl", [record("p1"), {**record("p2"), **bad}])
    assert error_of(manifest).startswith(f"{manifest}:2: {problem}")


def test_duplicate_study_ids(dataset):
    manifest = write_jsonl(dataset / "m.jsonl", [record("p1"), record("p2"), record("p1")])
    assert error_of(manifest) == f"{manifest}:3: duplicate study_id 'p1' (first on line 1)"


def test_malformed_json_line(dataset):
    manifest = dataset / "m.jsonl"
    manifest.write_text(json.dumps(record("p1")) + "\n\n" + '{"study_id": "p2", "images": [}\n')
    assert error_of(manifest).startswith(f"{manifest}:3: malformed JSON: Expecting value")


def test_a_line_that_is_not_an_object(dataset):
    manifest = dataset / "m.jsonl"
    manifest.write_text('["p1"]\n')
    assert error_of(manifest) == f"{manifest}:1: expected a JSON object, got list"


def test_csv_errors_name_the_line(dataset):
    manifest = dataset / "m.csv"
    manifest.write_text("study_id,images,reprot,split\np1,studies/p1/frontal.png,Normal.,train\n")
    assert error_of(manifest) == f"{manifest}:1: unknown column 'reprot' (did you mean 'report'?)"
    manifest.write_text('study_id,images,report,split,findings\np1,studies/p1/frontal.png,Normal.,train,"[{"\n')
    assert error_of(manifest).startswith(f"{manifest}:2: findings: malformed JSON")
    manifest.write_text("study_id,images,report,split\np1,studies/p1/frontal.png,Normal.,train,extra\n")
    assert error_of(manifest) == f"{manifest}:2: 1 more cell(s) than the header has columns"


def test_file_level_errors(dataset):
    assert error_of(dataset / "absent.jsonl") == f"{dataset / 'absent.jsonl'}: manifest file not found"
    (dataset / "m.txt").write_text("")
    assert error_of(dataset / "m.txt") == f"{dataset / 'm.txt'}: manifest must end in .jsonl or .csv, got '.txt'"
    (dataset / "empty.jsonl").write_text("\n")
    assert error_of(dataset / "empty.jsonl") == f"{dataset / 'empty.jsonl'}: manifest holds no studies"
    with pytest.raises(ManifestError, match="must end in .jsonl or .csv"):
        write_manifest([], dataset / "m.json")
