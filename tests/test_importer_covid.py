"""The covid_cxr importer: the findings-sentence filter, patient-level splits, the real collection."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medvl.data.importers.covid_cxr import (
    SKIPPED_NO_FINDINGS,
    SKIPPED_REPEATED,
    covid_cxr_manifest,
    findings_sentences,
    main,
    split_of,
)
from medvl.data.manifest import SPLITS, read_manifest
from medvl.errors import ConfigError, ManifestError

COLUMNS = ("patientid", "offset", "sex", "age", "finding", "view", "modality", "clinical_notes", "image", "license")
FINDINGS_NOTE = "Chest radiograph shows patchy opacities in the right lower zone."
STORY_NOTE = "A 48-year-old man presented with fever and cough after travel. He was admitted on March 3, 2020."

# What the importer makes of the collection in ../shared/data/covid_cxr (638 metadata rows).
EXPECTED_STUDIES = 373
EXPECTED_WITH_LATERAL = 32
EXPECTED_SKIPPED = {
    SKIPPED_NO_FINDINGS: 154,
    "modality CT": 63,
    "view L (not frontal)": 43,
    SKIPPED_REPEATED: 5,  # five images listed under two patient ids
}


# --------------------------------------------------------------------------- the sentence filter
@pytest.mark.parametrize(
    ("notes", "kept"),
    [
        (  # a findings sentence is kept as it is
            "Chest radiographs obtained on admission showed an infiltrate in the upper lobe of the left lung",
            "Chest radiographs obtained on admission showed an infiltrate in the upper lobe of the left lung.",
        ),
        (  # a normal study is a finding too
            "No thoracic abnormalities were noted.",
            "No thoracic abnormalities were noted.",
        ),
        (  # history, symptoms, laboratory values and examination are dropped
            (
                "He had a medical history of well controlled hypertension. Laboratory investigations showed mild "
                "thrombocytopenia (113 x 109 per L, normal 150-400). Bilateral coarse breath sounds with wet rales "
                "at the bases of both lungs were heard on auscultation."
            ),
            "",
        ),
        (  # a sentence mixing a lab value with a finding keeps the finding clause
            (
                "The partial pressure of oxygen was 57.2 mm Hg while he was breathing ambient air, and a "
                "progressive infiltrate and consolidation were observed on chest radiographs"
            ),
            "A progressive infiltrate and consolidation were observed on chest radiographs.",
        ),
        (
            "Patient on mechanical ventilation with bilateral consolidations on the chest film",
            "Bilateral consolidations on the chest film.",
        ),
        (  # an aside about laboratory values goes, the sentence around it stays whole
            (
                "The initial chest radiograph was normal without active lesions (normal white blood cell (WBC) "
                "counts without lymphocytopenia)."
            ),
            "The initial chest radiograph was normal without active lesions.",
        ),
        (  # dates and ages go, the finding stays
            "On March 3, 2020, the chest radiograph of a 65-year-old man showed bilateral ground-glass opacities.",
            "The chest radiograph of a man showed bilateral ground-glass opacities.",
        ),
        (  # figure panels and arrows go; the story sentences around the findings go
            (
                "SARS in a 73-year-old woman who presented 17 days after exposure. (a) Anteroposterior radiograph "
                "obtained 2 days after admission shows focal consolidation in the right lung (arrows). "
                "The patient died 36 days after exposure to SARS."
            ),
            "Anteroposterior radiograph obtained 2 days after admission shows focal consolidation in the right lung.",
        ),
        (  # a sentence glued to the one before, and a panel label opening a sentence
            (
                "A 35-year-old man had a 4-day history of cough.Increasing left basilar opacity was visible. "
                "B, Chest CT on 2020-02-01 shows pleural effusion."
            ),
            "Increasing left basilar opacity was visible. Chest CT shows pleural effusion.",
        ),
        (  # describing the figure is not a finding
            "These are 3 chest radiographs selected out of the daily chest radiographs acquired in this patient.",
            "",
        ),
        (  # a state word next to a chest structure is a finding; relative days are no dates
            "The lungs are clear. This midzone change improves on the day 7 film.",
            "The lungs are clear. This midzone change improves on the day 7 film.",
        ),
    ],
)
def test_findings_sentences_keeps_imaging_findings_only(notes, kept):
    assert findings_sentences(notes) == kept


def test_findings_sentences_removes_every_date_and_age_spelling():
    notes = (
        "On January 22, 2020, a 65 years old patient (aged 65) had a radiograph showing opacities; "
        "on 3 March the 48 yo patient's CT showed consolidation in 2004, and on 22/01/2020 effusion was seen."
    )

    kept = findings_sentences(notes)

    assert kept  # the findings are still there
    for gone in ("January", "2020", "March", "2004", "22/01", "65", "48", "aged", "old", "yo"):
        assert not re.search(rf"\b{re.escape(gone)}\b", kept), (gone, kept)


# --------------------------------------------------------------------------- a small fake collection
def write_collection(folder: Path, records: list[dict[str, str]]) -> Path:
    """metadata.csv with ``records`` and an 8x8 PNG for each image named (unless 'missing' in it)."""
    (folder / "images").mkdir(parents=True)
    for number, record in enumerate(records):
        if "missing" not in record["image"]:
            Image.fromarray(np.full((8, 8), number * 7 % 256, dtype=np.uint8)).save(folder / record["image"])
    with (folder / "metadata.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({"sex": "F", "age": "48", "finding": "COVID-19", "license": "CC BY", **r} for r in records)
    return folder


def record(patient: str, offset: str, view: str, image: str, notes: str = FINDINGS_NOTE, modality: str = "X-ray"):
    return {"patientid": patient, "offset": offset, "view": view, "modality": modality,
            "clinical_notes": notes, "image": f"images/{image}"}


@pytest.fixture
def collection(tmp_path: Path) -> Path:
    """30 patients with two frontal radiographs each (days 0 and 4) and a lateral on day 0,
    plus one row of each kind the importer skips."""
    records = []
    for number in range(30):
        patient = f"zq{number:03d}"
        records += [
            record(patient, "0", "PA", f"{patient}-day0.png", STORY_NOTE + " " + FINDINGS_NOTE),
            record(patient, "0", "L", f"{patient}-day0-side.png"),
            record(patient, "4", "AP Supine", f"{patient}-day4.png"),
        ]
    records += [
        record("zq900", "1", "Axial", "zq900-ct.png", modality="CT"),
        record("zq901", "1", "PA", "zq901-story.png", notes=STORY_NOTE),
        record("zq902", "1", "AP", "zq902-missing.png"),
        record("zq903", "", "PA", "zq903-noday.png"),
        record("zq903", "", "L", "zq903-noday-side.png"),
    ]
    return write_collection(tmp_path / "covid", records)


def test_the_manifest_holds_one_study_per_frontal_radiograph_with_its_same_day_lateral(collection, tmp_path):
    summary = covid_cxr_manifest(collection, tmp_path / "out" / "manifest.jsonl")

    rows = read_manifest(tmp_path / "out" / "manifest.jsonl")
    assert len(rows) == sum(summary.studies.values()) == 61  # 30 patients x 2 frontals + zq903
    assert summary.with_lateral == 30  # day 0 only: zq903's lateral has no offset to match it by
    assert dict(summary.skipped) == {
        "modality CT": 1,
        "view L (not frontal)": 31,
        SKIPPED_NO_FINDINGS: 1,
        "image file missing": 1,
    }
    by_image = {row.images[0].name: row for row in rows}
    assert [path.name for path in by_image["zq007-day0.png"].images] == ["zq007-day0.png", "zq007-day0-side.png"]
    assert [path.name for path in by_image["zq007-day4.png"].images] == ["zq007-day4.png"]
    assert all(path.is_absolute() and path.is_relative_to(collection) for row in rows for path in row.images)
    assert by_image["zq007-day0.png"].report == FINDINGS_NOTE  # the story sentences are gone
    assert by_image["zq007-day0.png"].meta["view"] == "PA"
    assert by_image["zq007-day4.png"].meta["view"] == "AP Supine"


def test_each_patient_lands_in_one_split_and_no_identifier_reaches_the_manifest(collection, tmp_path):
    out = tmp_path / "manifest.jsonl"
    summary = covid_cxr_manifest(collection, out)

    splits_of_patient = defaultdict(set)
    for row in read_manifest(out):
        splits_of_patient[row.images[0].name.split("-")[0]].add(row.split)
    assert all(len(splits) == 1 for splits in splits_of_patient.values())
    assert {split for splits in splits_of_patient.values() for split in splits} == set(SPLITS)
    assert sum(len(patients) for patients in summary.patients.values()) == len(splits_of_patient) == 31

    records = [json.loads(line) for line in out.read_text().splitlines()]
    for entry in records:  # the patient id is only in the image file names
        entry.pop("images")
        assert "zq" not in json.dumps(entry)
        assert re.fullmatch(r"covid_cxr-[0-9a-f]{16}", entry["study_id"])
        assert "48" not in entry["report"]


def test_the_split_is_deterministic_and_follows_the_seed(collection, tmp_path):
    first, again, other_seed = (tmp_path / f"{name}.jsonl" for name in ("first", "again", "other"))
    covid_cxr_manifest(collection, first)
    covid_cxr_manifest(collection, again)
    covid_cxr_manifest(collection, other_seed, seed=1)

    assert first.read_bytes() == again.read_bytes()
    assert [row.split for row in read_manifest(first)] != [row.split for row in read_manifest(other_seed)]


def test_split_of_follows_the_fractions():
    splits = [split_of(f"patient-{number}", (0.6, 0.3, 0.1)) for number in range(3000)]

    shares = [splits.count(split) / len(splits) for split in SPLITS]
    assert shares == pytest.approx([0.6, 0.3, 0.1], abs=0.03)
    assert split_of("patient-7", (0.0, 0.0, 1.0)) == "test"


def test_patient_ids_that_share_an_image_are_one_patient(tmp_path):
    folder = write_collection(
        tmp_path / "covid",
        [
            record("zq1", "0", "PA", "shared.png"),
            record("zq2", "0", "PA", "shared.png"),  # the same image under a second id
            record("zq2", "3", "PA", "zq2-later.png"),
        ],
    )

    summary = covid_cxr_manifest(folder, tmp_path / "manifest.jsonl")

    first, later = read_manifest(tmp_path / "manifest.jsonl")
    assert summary.skipped == {SKIPPED_REPEATED: 1}
    assert first.meta["patient_hash"] == later.meta["patient_hash"]
    assert first.split == later.split


def test_a_lateral_named_like_a_frontal_is_left_out_so_the_frontal_keeps_the_first_slot(tmp_path):
    folder = write_collection(
        tmp_path / "covid",
        [record("zq1", "0", "PA", "zq1-a.png"), record("zq1", "0", "L", "zq1-ap-copy.png")],
    )

    covid_cxr_manifest(folder, tmp_path / "manifest.jsonl")

    assert [path.name for path in read_manifest(tmp_path / "manifest.jsonl")[0].images] == ["zq1-a.png"]


def test_bad_inputs_raise_errors_naming_the_problem(tmp_path, collection):
    with pytest.raises(ManifestError, match="no metadata.csv here") as caught:
        covid_cxr_manifest(tmp_path, tmp_path / "m.jsonl")
    assert str(tmp_path) in str(caught.value)
    with pytest.raises(ConfigError, match="fractions"):
        covid_cxr_manifest(collection, tmp_path / "m.jsonl", fractions=(0.7, 0.2, 0.2))
    (collection / "metadata.csv").write_text("patientid,view\n1,PA\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="missing column.*clinical_notes"):
        covid_cxr_manifest(collection, tmp_path / "m.jsonl")


def test_main_writes_the_manifest_and_prints_the_summary(collection, tmp_path, capsys):
    out = tmp_path / "runs" / "manifest.jsonl"

    assert main(["--data", str(collection), "--out", str(out)]) == 0

    printed = capsys.readouterr().out
    assert f"wrote 61 studies (30 with a lateral view) to {out}" in printed
    assert len(read_manifest(out)) == 61
    assert main(["--data", str(tmp_path / "nowhere"), "--out", str(out)]) == 2


# --------------------------------------------------------------------------- the real collection
def test_the_real_collection_imports_by_patient_with_findings_reports(shared_data, tmp_path):
    folder = shared_data / "covid_cxr"
    if not (folder / "metadata.csv").is_file():
        pytest.skip(f"covid_cxr not found at {folder}")
    summary = covid_cxr_manifest(folder, tmp_path / "manifest.jsonl")

    rows = read_manifest(tmp_path / "manifest.jsonl")
    with (folder / "metadata.csv").open(encoding="utf-8", newline="") as handle:
        patient_of_image = {folder.resolve() / r["image"]: r["patientid"] for r in csv.DictReader(handle)}
    splits_of_patient = defaultdict(set)
    for row in rows:
        splits_of_patient[patient_of_image[row.images[0]]].add(row.split)
    assert len(rows) == sum(summary.studies.values()) == EXPECTED_STUDIES
    assert summary.with_lateral == EXPECTED_WITH_LATERAL
    assert dict(summary.skipped) == EXPECTED_SKIPPED
    assert all(len(splits) == 1 for splits in splits_of_patient.values())
    assert all(summary.studies[split] > 0 for split in SPLITS)
    assert all(row.report.strip() and row.report.endswith(".") for row in rows)
    assert not any(re.search(r"year-old|years old|\b20[12]\d\b(?!-nCoV)", row.report) for row in rows)
