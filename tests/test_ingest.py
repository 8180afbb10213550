"""`medvl ingest` on a generated PACS-like tree of more than 2,000 DICOM files with fake identities.

The tree is written once per module: phantom CT series and DX radiographs carrying fake patient
identities (names, IDs, birth dates, accession numbers, institutions, physicians, a private
tag, comments), nested in folders named after the patients, with non-DICOM files, a DICOM file
without image, a duplicate, a scout, a secondary capture, a too-short series, a burned-in
radiograph and a study without report. Every output file and every captured log line is then
searched for every injected identifier.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import shutil
import warnings
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medvl.data.ingest import (
    MANIFEST_NAME,
    STUDIES_FOLDER,
    SUMMARY_NAME,
    IngestConfig,
    IngestSummary,
    ingest,
    patient_split,
    read_reports,
)
from medvl.data.manifest import read_manifest
from medvl.data.phantom import (
    PatientIdentity,
    make_chest_ct,
    make_chest_radiograph,
    write_ct_dicom_series,
    write_radiograph_dicom,
)
from medvl.errors import ConfigError
from medvl.io import load_study
from medvl.privacy import hash_identifier

REPO_ROOT = Path(__file__).resolve().parents[1]
N_PATIENTS = 30
N_CT_STUDIES = 66
CT_SHAPE = (32, 32, 30)  # rows, columns, slices
N_DX_STUDIES = 6
N_SCOUTS = 10
FIRST_NAMES = ("Quintessa", "Zebedeo", "Ottoline", "Peregrin", "Saffira", "Thaddeo", "Ysolde", "Wendeline")
FAMILY_START = ("Bel", "Cor", "Dra", "Fen", "Gal", "Hol")
FAMILY_END = ("vantis", "quillon", "brecht", "wynne", "zarek")
INSTITUTIONS = (
    ("Saint Ardwyn Memorial Hospital", "12 Quarrydown Lane, Ardwyn", "ardwyn.example.org"),
    ("Belgrave Vantis Clinic", "7 Osterley Mews, Belgrave", "belgrave.example.org"),
)
PHYSICIANS = (("Odalric", "Halvorsgaard"), ("Lucanor", "Merrowquaile"), ("Perpetuina", "Strandeberg"))
CONFIG = IngestConfig(
    modalities=("CT", "DX"),
    view_positions=("PA", "LL"),
    exclude_descriptions=("scout", "localizer"),
    min_slices={"CT": 16},
    report_key="accession",
    report_key_column="accession_number",
    report_text_column="report_text",
    splits={"train": 0.6, "val": 0.2, "test": 0.2},
)


# --- the generated tree --------------------------------------------------------------------------
@dataclass(frozen=True)
class Patient:
    given: str
    family: str
    patient_id: str
    birth: date
    institution: int
    physician: int

    @property
    def dicom_name(self) -> str:
        return f"{self.family.upper()}^{self.given.upper()}"


@dataclass(frozen=True)
class PlannedStudy:
    patient: Patient
    accession: str
    study_date: date
    uid_seed: str

    @property
    def study_uid(self) -> str:
        return generate_uid(entropy_srcs=[self.uid_seed, "study"])  # as the phantom writers derive it


@dataclass
class Tree:
    root: Path
    reports: Path
    patients: list[Patient]
    studies: list[PlannedStudy]
    original_uids: set[str] = field(default_factory=set)
    ct_sources: dict[str, Path] = field(default_factory=dict)  # study_id -> an input series folder

    def identifiers(self, study_dates: bool = True) -> set[str]:
        """Every injected value that must never reach an output or a log, in every spelling used.

        ``study_dates=False`` leaves out the study dates: another patient's shifted dates may
        fall on them (birth dates are 811 days apart, more than the largest shift, so they stay).
        """
        values: set[str] = set(self.original_uids)
        for patient in self.patients:
            values |= {patient.given, patient.family, patient.patient_id, f"OLD{patient.patient_id}", _phone(patient)}
            values |= _date_spellings(patient.birth)
        for study in self.studies:
            values.add(study.accession)
            if study_dates:
                values |= _date_spellings(study.study_date) | _date_spellings(_prior(study))
        for name, address, domain in INSTITUTIONS:
            values |= {name, address, address.split()[1], domain}
        for given, family in PHYSICIANS:
            values |= {given, family}
        return values


def _date_spellings(day: date) -> set[str]:
    return {f"{day:%Y%m%d}", f"{day:%m/%d/%Y}", f"{day:%Y-%m-%d}", f"{day:%B} {day.day}, {day.year}", f"{day:%d.%m.%Y}"}


def _phone(patient: Patient) -> str:
    return f"555-01{len(patient.family):02d}"


def _prior(study: PlannedStudy) -> date:
    return study.study_date - timedelta(days=300)


def _patients() -> list[Patient]:
    patients = []
    for i in range(N_PATIENTS):
        family = FAMILY_START[i % len(FAMILY_START)] + FAMILY_END[i // len(FAMILY_START)]
        patients.append(
            Patient(
                given=FIRST_NAMES[i % len(FIRST_NAMES)],
                family=family,
                patient_id=f"K{4829173 + 7919 * i}",
                birth=date(1931, 1, 5) + timedelta(days=811 * i),  # far apart: a shifted one never meets another
                institution=i % len(INSTITUTIONS),
                physician=i % len(PHYSICIANS),
            )
        )
    return patients


def _identity(study: PlannedStudy) -> PatientIdentity:
    patient = study.patient
    return PatientIdentity(
        name=patient.dicom_name,
        patient_id=patient.patient_id,
        birth_date=f"{patient.birth:%Y%m%d}",
        sex="F" if patient.given in FIRST_NAMES[::2] else "M",
        accession_number=study.accession,
        study_date=f"{study.study_date:%Y%m%d}",
    )


def _add_site_identity(path: Path, study: PlannedStudy, **changes: str) -> pydicom.Dataset:
    """Write what the phantom writers leave out: institution, staff, other IDs, comments, private data."""
    patient = study.patient
    name, address, _ = INSTITUTIONS[patient.institution]
    physician = PHYSICIANS[patient.physician]
    ds = pydicom.dcmread(path)
    ds.InstitutionName = name
    ds.InstitutionAddress = address
    ds.ReferringPhysicianName = f"{physician[1].upper()}^{physician[0].upper()}"
    ds.NameOfPhysiciansReadingStudy = f"{PHYSICIANS[-1][1]}^{PHYSICIANS[-1][0]}"
    ds.OtherPatientIDs = f"OLD{patient.patient_id}"
    ds.ImageComments = f"{patient.given} {patient.family} scanned at {name}"
    block = ds.private_block(0x0029, "MEDVL TEST SITE", create=True)
    block.add_new(0x01, "LO", f"{patient.family}^{patient.given} {patient.patient_id}")
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)
    return ds


def _as_changes(identity: PatientIdentity) -> dict[str, str]:
    """The header attributes a :class:`PatientIdentity` fills, for a file written without it."""
    return {
        "PatientName": identity.name,
        "PatientID": identity.patient_id,
        "PatientBirthDate": identity.birth_date,
        "PatientSex": identity.sex,
        "AccessionNumber": identity.accession_number,
        "StudyDate": identity.study_date,
        "SeriesDate": identity.study_date,
        "ContentDate": identity.study_date,
    }


def _report(study: PlannedStudy) -> str:
    patient = study.patient
    physician = PHYSICIANS[patient.physician]
    reader = PHYSICIANS[-1]
    domain = INSTITUTIONS[patient.institution][2]
    day = study.study_date
    return (
        f"Patient name: {patient.given} {patient.family}   MRN: {patient.patient_id}   DOB: {patient.birth:%m/%d/%Y}\n"
        f"Accession: {study.accession}   Exam date: {day:%B} {day.day}, {day.year} 14:35\n"
        f"FINDINGS: Lungs are clear. No pleural effusion. Compared with {_prior(study):%Y-%m-%d}.\n"
        f"IMPRESSION: No acute disease. {patient.given} {patient.family} tolerated the exam well. "
        f"Discussed with Dr. {physician[0]} {physician[1]} at (617) {_phone(patient)}, "
        f"{physician[0].lower()}.{physician[1].lower()}@{domain}.\n"
        f"Electronically signed by: {reader[0]} {reader[1]}, MD on {day:%d.%m.%Y}"
    )


def _nest(root: Path, study: PlannedStudy, rng: np.random.Generator) -> Path:
    """A PACS-export-like folder: institution / patient name and ID / accession / random depth."""
    patient = study.patient
    folder = root / f"site{patient.institution}" / f"{patient.family}_{patient.given}_{patient.patient_id}"
    folder = folder / study.accession
    for _ in range(int(rng.integers(0, 3))):
        folder = folder / f"d{int(rng.integers(100))}"
    return folder


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    root = tmp_path_factory.mktemp("pacs") / "export"
    rng = np.random.default_rng(0)
    patients = _patients()
    volumes = [make_chest_ct(seed=seed, shape=CT_SHAPE).views[0] for seed in range(2)]
    short_volume = make_chest_ct(seed=5, shape=(32, 32, 8)).views[0]
    radiographs = make_chest_radiograph(seed=3, size=48).views
    studies: list[PlannedStudy] = []
    uids: set[str] = set()

    def plan(index: int, patient: Patient) -> PlannedStudy:
        study = PlannedStudy(
            patient=patient,
            accession=f"RZ{7000000 + 1237 * index}",
            study_date=date(2016, 2, 3) + timedelta(days=23 * index),
            uid_seed=f"ingest-test-{index}",
        )
        studies.append(study)
        return study

    def record(paths: list[Path], study: PlannedStudy, **changes: str) -> list[pydicom.Dataset]:
        written = [_add_site_identity(path, study, **changes) for path in paths]
        for ds in written:
            uids.update(
                {ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.get("FrameOfReferenceUID", "")}
            )
        return written

    ct_sources: dict[str, Path] = {}
    for index in range(N_CT_STUDIES):
        study = plan(index, patients[index % N_PATIENTS])
        folder = _nest(root, study, rng) / "CT"
        paths = write_ct_dicom_series(
            folder, volumes[index % 2], identity=_identity(study), uid_seed=study.uid_seed, shuffle_names=True
        )
        record(paths, study)
        ct_sources[hash_identifier(study.study_uid)] = folder
        if index < N_SCOUTS:  # a one-image scout series, excluded by its description
            scout = write_ct_dicom_series(folder.parent / "SCOUT", short_volume, uid_seed=f"{study.uid_seed}-scout")
            for extra in scout[1:]:
                extra.unlink()
            changes = {"StudyInstanceUID": study.study_uid, "SeriesDescription": "SCOUT 0.5"}
            record(scout[:1], study, **changes, **_as_changes(_identity(study)))
    scattered = studies[11]  # one series spread over two folders: grouping is by UID, not by folder
    source = ct_sources[hash_identifier(scattered.study_uid)]
    moved = root / "misc" / f"{scattered.patient.patient_id}"
    moved.mkdir(parents=True)
    for path in sorted(source.iterdir())[::2]:
        path.rename(moved / path.name)
    first_slice = min(source.iterdir())
    (root / "misc" / "duplicate.dcm").write_bytes(first_slice.read_bytes())  # the same SOPInstanceUID again
    secondary = first_slice.parent.parent / "SC" / "sc.dcm"  # modality OT: not selected
    secondary.parent.mkdir()
    shutil.copy(first_slice, secondary)
    record([secondary], scattered, Modality="OT", SeriesInstanceUID=generate_uid(), SOPInstanceUID=generate_uid())

    for offset in range(N_DX_STUDIES):
        index = N_CT_STUDIES + offset
        study = plan(index, patients[(7 * offset) % N_PATIENTS])
        folder = _nest(root, study, rng)
        for number, view in enumerate(radiographs, start=1):
            path = write_radiograph_dicom(
                folder / f"{view.name}.dcm",
                view,
                identity=_identity(study),
                uid_seed=study.uid_seed,
                series_number=number,
            )
            burned = "YES" if offset == 0 and view.name == "lateral" else "NO"
            record([path], study, BurnedInAnnotation=burned)

    short = plan(N_CT_STUDIES + N_DX_STUDIES, patients[3])  # 8 slices: fewer than min_slices
    record(
        write_ct_dicom_series(
            _nest(root, short, rng) / "CT", short_volume, identity=_identity(short), uid_seed=short.uid_seed
        ),
        short,
    )
    unreported = plan(N_CT_STUDIES + N_DX_STUDIES + 1, patients[4])  # no row in the reports file
    record(
        write_ct_dicom_series(
            _nest(root, unreported, rng) / "CT",
            volumes[0],
            identity=_identity(unreported),
            uid_seed=unreported.uid_seed,
        ),
        unreported,
    )

    _write_non_images(root, patients[0])
    reports = root.parent / "ris_reports.csv"
    with reports.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["accession_number", "report_text", "status"])
        for study in studies:
            if study is not unreported:
                writer.writerow([study.accession, _report(study), "final"])
    return Tree(root, reports, patients, studies, original_uids=uids - {""}, ct_sources=ct_sources)


def _write_non_images(root: Path, patient: Patient) -> None:
    """Three files that are not DICOM and one DICOM object without an image."""
    (root / "README.txt").write_text(f"Export for {patient.given} {patient.family} ({patient.patient_id})\n")
    (root / "site0" / "Thumbs.db").write_bytes(b"\x00\x01junk" * 40)
    (root / "site1" / "empty").write_bytes(b"")
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = pydicom.uid.BasicTextSRStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID = patient.dicom_name, patient.patient_id
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality = generate_uid(), generate_uid(), "SR"
    ds.save_as(root / "site0" / "report.dcm", enforce_file_format=True)


# --- running ingest with everything it says captured -------------------------------------------
@dataclass
class Run:
    summary: IngestSummary
    captured: str  # log records, stdout, stderr (the progress bars) and warnings


def _run_ingest(tree: Tree, out_dir: Path) -> Run:
    records = io.StringIO()
    handler = logging.StreamHandler(records)
    handler.setLevel(logging.DEBUG)
    root_logger = logging.getLogger()
    old_level = root_logger.level
    root_logger.addHandler(handler)
    root_logger.setLevel(logging.DEBUG)
    streams = io.StringIO()
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(streams):
            warnings.simplefilter("always")
            with contextlib.redirect_stdout(streams):
                summary = ingest(tree.root, tree.reports, out_dir, CONFIG)
    finally:
        root_logger.removeHandler(handler)
        root_logger.setLevel(old_level)
    captured = "\n".join([records.getvalue(), streams.getvalue(), *(str(w.message) for w in caught)])
    return Run(summary, captured + "\n" + summary.describe())


@pytest.fixture(scope="module")
def first_run(tree: Tree, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Run, bytes]:
    out_dir = tmp_path_factory.mktemp("ingested") / "site"
    run = _run_ingest(tree, out_dir)
    return out_dir, run, (out_dir / MANIFEST_NAME).read_bytes()


def _dicom_files(tree: Tree) -> int:
    count = 0
    for path in tree.root.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                handle.seek(128)
                count += handle.read(4) == b"DICM"
    return count


# --- tests ---------------------------------------------------------------------------------------
def test_tree_is_large_and_identified(tree: Tree) -> None:
    assert _dicom_files(tree) >= 2000
    header = pydicom.dcmread(next(tree.root.rglob("IM*.dcm")), stop_before_pixels=True)
    assert str(header.PatientName) and str(header.InstitutionName) and header.PatientBirthDate


def test_manifest_has_patient_level_splits(tree: Tree, first_run: tuple[Path, Run, bytes]) -> None:
    out_dir, run, _ = first_run
    rows = read_manifest(out_dir / MANIFEST_NAME)
    assert len(rows) == N_CT_STUDIES + N_DX_STUDIES
    split_of_patient: dict[str, set[str]] = {}
    for row in rows:
        split_of_patient.setdefault(row.meta["patient"], set()).add(row.split)
    assert all(len(splits) == 1 for splits in split_of_patient.values())
    assert {split for splits in split_of_patient.values() for split in splits} == {"train", "val", "test"}
    expected_patients = {hash_identifier(f"id:{study.patient.patient_id}") for study in tree.studies[:N_CT_STUDIES]}
    assert set(split_of_patient) == expected_patients | {
        hash_identifier(f"id:{study.patient.patient_id}")
        for study in tree.studies[N_CT_STUDIES : N_CT_STUDIES + N_DX_STUDIES]
    }
    for patient, splits in split_of_patient.items():
        assert splits == {patient_split(patient, CONFIG.splits)}
    assert run.summary.patients == len(split_of_patient)
    assert dict(run.summary.splits) == {
        split: sum(r.split == split for r in rows) for split in ("train", "val", "test")
    }


def test_skip_summary_counts_every_reason(first_run: tuple[Path, Run, bytes]) -> None:
    out_dir, run, _ = first_run
    summary = json.loads((out_dir / SUMMARY_NAME).read_text())
    assert summary == run.summary.to_dict()
    assert summary["files"] == {
        "DICOM image": N_CT_STUDIES * CT_SHAPE[2] + N_SCOUTS + 1 + 2 * N_DX_STUDIES + 8 + CT_SHAPE[2],
        "DICOM without image": 1,
        "duplicate SOPInstanceUID": 1,
        "not DICOM": 3,
    }
    assert summary["studies_found"] == N_CT_STUDIES + N_DX_STUDIES + 2
    assert summary["studies_written"] == N_CT_STUDIES + N_DX_STUDIES
    assert summary["studies_skipped"] == {"no report": 1, "no series passed the rules": 1}
    assert summary["series_excluded"] == {
        "burned-in annotation": 1,
        "description excluded": N_SCOUTS,
        "modality not selected": 1,
        "too few slices": 1,
    }


def test_chosen_series_and_images(tree: Tree, first_run: tuple[Path, Run, bytes]) -> None:
    out_dir, _, _ = first_run
    rows = {row.study_id: row for row in read_manifest(out_dir / MANIFEST_NAME)}
    dx = [rows[hash_identifier(study.study_uid)] for study in tree.studies[N_CT_STUDIES : N_CT_STUDIES + N_DX_STUDIES]]
    assert [len(row.images) for row in dx] == [1] + [2] * (N_DX_STUDIES - 1)  # the burned-in lateral is left out
    assert [series["view_position"] for series in dx[1].meta["series"]] == ["PA", "LL"]
    study_id = hash_identifier(tree.studies[0].study_uid)
    (image,) = rows[study_id].images
    assert image.parent.parent.name == STUDIES_FOLDER and image.parent.name == study_id
    original = load_study(tree.ct_sources[study_id]).views[0]
    copied = load_study(image).views[0]
    assert copied.image.shape == (1, *CT_SHAPE)
    np.testing.assert_array_equal(copied.image.numpy(), original.image.numpy())
    np.testing.assert_array_equal(copied.image.affine.numpy(), original.image.affine.numpy())
    report = rows[study_id].report
    assert "Lungs are clear. No pleural effusion." in report and "MRN: XXXX" in report


def test_no_identifier_in_any_output_or_log(tree: Tree, first_run: tuple[Path, Run, bytes]) -> None:
    out_dir, run, _ = first_run
    outputs = sorted(path for path in out_dir.rglob("*") if path.is_file())
    assert len(outputs) > 2000
    assert "reading headers" in run.captured  # the progress bars were captured too
    dicom = [path for path in outputs if path.suffix == ".dcm"]
    others = [path for path in outputs if path.suffix != ".dcm"]
    assert {path.name for path in others} >= {MANIFEST_NAME, SUMMARY_NAME, "done.json"}
    # every file's bytes, lower-cased, one blob per kind; the separator keeps matches within a file
    dicom_bytes = b"\0|\0".join(path.read_bytes().lower() for path in dicom)
    other_bytes = b"\0|\0".join([*(path.read_bytes().lower() for path in others), run.captured.lower().encode()])
    everything = tree.identifiers()
    assert len(everything) > 500
    leaks = sorted(value for value in everything if value.lower().encode() in other_bytes)
    leaks += sorted(value for value in tree.identifiers(study_dates=False) if value.lower().encode() in dicom_bytes)
    assert leaks == []


def test_no_study_keeps_its_own_dates(tree: Tree, first_run: tuple[Path, Run, bytes]) -> None:
    out_dir, _, _ = first_run
    checked = 0
    for study in tree.studies:
        for path in (out_dir / STUDIES_FOLDER / hash_identifier(study.study_uid)).rglob("*.dcm"):
            data = path.read_bytes()
            assert (
                f"{study.study_date:%Y%m%d}".encode() not in data
                and f"{study.patient.birth:%Y%m%d}".encode() not in data
            )
            checked += 1
    assert checked == N_CT_STUDIES * CT_SHAPE[2] + 2 * N_DX_STUDIES - 1  # less the burned-in lateral


def test_dicom_outputs_are_pseudonymised_consistently(tree: Tree, first_run: tuple[Path, Run, bytes]) -> None:
    out_dir, _, _ = first_run
    patient = tree.studies[0].patient
    pseudonym = hash_identifier(f"id:{patient.patient_id}")
    studies = [study for study in tree.studies[:N_CT_STUDIES] if study.patient == patient]
    shifts = set()
    for study in studies:
        files = sorted((out_dir / STUDIES_FOLDER / hash_identifier(study.study_uid)).rglob("*.dcm"))
        headers = [pydicom.dcmread(path, stop_before_pixels=True) for path in files]
        assert {(h.PatientID, str(h.PatientName)) for h in headers} == {(pseudonym, pseudonym)}
        assert len({h.StudyInstanceUID for h in headers}) == len({h.SeriesInstanceUID for h in headers}) == 1
        assert len({h.SOPInstanceUID for h in headers}) == len(headers) == CT_SHAPE[2]
        assert {h.StudyDate for h in headers} != {f"{study.study_date:%Y%m%d}"}
        shifts.add(
            date.fromisoformat(f"{headers[0].StudyDate[:4]}-{headers[0].StudyDate[4:6]}-{headers[0].StudyDate[6:]}")
            - study.study_date
        )
        assert not any(element.tag.is_private for h in headers for element in h)
    assert len(studies) >= 2 and len(shifts) == 1  # one date offset for all of a patient's studies


def test_rerun_resumes_and_gives_the_same_manifest(tree: Tree, first_run: tuple[Path, Run, bytes]) -> None:
    out_dir, first, manifest = first_run
    redo = out_dir / STUDIES_FOLDER / hash_identifier(tree.studies[5].study_uid)
    (redo / "done.json").unlink()  # as if the first run had stopped before finishing this study
    second = _run_ingest(tree, out_dir)
    assert second.summary.studies_written == 1
    assert second.summary.studies_resumed == first.summary.studies_written - 1
    assert second.summary.studies_skipped == first.summary.studies_skipped
    assert (out_dir / MANIFEST_NAME).read_bytes() == manifest
    assert (redo / "done.json").is_file()
    leaks = [value for value in tree.identifiers() if value.lower() in second.captured.lower()]
    assert leaks == []


# --- configuration and reports -------------------------------------------------------------------
def test_example_config_loads() -> None:
    config = IngestConfig.from_yaml(REPO_ROOT / "configs" / "ingest_example.yaml")
    assert config.modalities == ("CR", "DX") and config.report_key == "accession"
    assert sum(config.splits.values()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"modalitys": ["CT"]}, "did you mean 'modalities'"),
        ({"splits": {"train": 0.9, "val": 0.2}}, "add up to 1"),
        ({"splits": {"train": 0.5, "holdout": 0.5}}, "splits"),
        ({"report_key": "mrn"}, "report_key"),
        ({"exclude_descriptions": ["(unclosed"]}, "not a valid regular expression"),
        ({"min_slices": {"CT": 0}}, "min_slices"),
    ],
)
def test_config_errors_name_the_key(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        IngestConfig.from_dict(values)


def test_reports_join_addenda_and_name_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "reports.jsonl"
    rows = [{"acc": "A1", "text": "First."}, {"acc": "A1", "text": "Addendum."}, {"acc": "", "text": "orphan"}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert read_reports(path, "acc", "text") == {"A1": "First.\n\nAddendum."}
    with pytest.raises(ConfigError, match=r"reports.jsonl:1: no column 'report'; columns: acc, text"):
        read_reports(path, "acc", "report")
