"""De-identification: DICOM headers (PS3.15 Basic Profile through dicognito, medvl pseudonyms)
on real files (../shared/data, deid-data) and phantoms, and rule-based report scrubbing."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.datadict import keyword_dict

from medvl.data.phantom import PatientIdentity, make_chest_radiograph, write_radiograph_dicom
from medvl.deid import (
    PLACEHOLDER,
    BurnedInAnnotationError,
    KnownIdentifiers,
    deidentify_file,
    known_identifiers,
    patient_pseudonym,
    scrub_report,
)
from medvl.deid import dicom as deid_dicom
from medvl.errors import ScanError
from medvl.io import load_study

IDENTIFYING_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "OtherPatientIDs",
    "OtherPatientNames",
    "AccessionNumber",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "OperatorsName",
    "StationName",
)
UID_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID")
DATED = ("Study", "Series", "Acquisition", "Content", "InstanceCreation")  # <prefix>Date with <prefix>Time
GEOMETRY_KEYWORDS = (
    "Rows",
    "Columns",
    "NumberOfFrames",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "SliceThickness",
    "SpacingBetweenSlices",
    "PhotometricInterpretation",
    "BitsStored",
    "RescaleSlope",
    "RescaleIntercept",
    "Modality",
    "PatientSex",
)
MIN_SEARCHED = 4  # shorter values ("M", "1") occur by chance in any file


def deid_data_files() -> list[Path]:
    """The DICOM files of the deid-data package (none when it is not installed)."""
    try:
        import deid_data
    except ImportError:
        return []
    return sorted((Path(deid_data.__file__).parent / "data").rglob("*.dcm"))


# --- helpers -------------------------------------------------------------------------------------
def identifiers_of(dataset: pydicom.Dataset) -> set[str]:
    """Identifying values of a header: names (whole and by part), IDs, places, dates, UIDs."""
    values: set[str] = set()
    for keyword in IDENTIFYING_KEYWORDS + UID_KEYWORDS + tuple(f"{prefix}Date" for prefix in DATED):
        value = dataset.get(keyword)
        items = value if isinstance(value, pydicom.multival.MultiValue) else [value]
        for item in items:
            text = str(item or "").strip()
            values.add(text)
            if isinstance(item, pydicom.valuerep.PersonName):
                values.update(part.strip() for part in text.replace("^", " ").split())
    return {value for value in values if len(value) >= MIN_SEARCHED}


def assert_no_identifier(data: bytes, identifiers: set[str], where: str) -> None:
    """No identifier as a whole word ("MARY" of a name is no leak inside "PRIMARY")."""
    data = data.lower()
    found = sorted(value for value in identifiers if contains_word(data, value.lower().encode()))
    assert found == [], f"{where} still holds {found}"


def contains_word(data: bytes, word: bytes) -> bool:
    start = data.find(word)
    while start != -1:
        before, after = data[start - 1 : start], data[start + len(word) : start + len(word) + 1]
        if not before.isalnum() and not after.isalnum():
            return True
        start = data.find(word, start + 1)
    return False


def moment(dataset: pydicom.Dataset, prefix: str) -> datetime | None:
    """<prefix>Date + <prefix>Time as a datetime (whole seconds), or None when absent."""
    day, time = str(dataset.get(f"{prefix}Date", "")), str(dataset.get(f"{prefix}Time", "")).split(".")[0]
    if len(day) != 8 or len(time) < 2:
        return None
    return datetime.strptime(day + time.ljust(6, "0")[:6], "%Y%m%d%H%M%S")


def shifts(originals: list[pydicom.Dataset], copies: list[pydicom.Dataset]) -> set[timedelta]:
    found = set()
    for original, copy in zip(originals, copies, strict=True):
        for prefix in DATED:
            before, after = moment(original, prefix), moment(copy, prefix)
            if before is not None:
                found.add(after - before)
    return found


def assert_same_image(original: pydicom.Dataset, copy: pydicom.Dataset) -> None:
    for keyword in GEOMETRY_KEYWORDS:
        if keyword in original:
            assert copy.get(keyword) == original.get(keyword), keyword
    assert copy.PixelData == original.PixelData
    assert copy.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID


def assert_uids_remapped_consistently(originals: list[pydicom.Dataset], copies: list[pydicom.Dataset]) -> None:
    for keyword in UID_KEYWORDS:
        pairs = {
            (str(o.get(keyword)), str(c.get(keyword))) for o, c in zip(originals, copies, strict=True) if keyword in o
        }
        assert all(before != after for before, after in pairs), keyword
        assert len({before for before, _ in pairs}) == len(pairs) == len({after for _, after in pairs}), keyword
    for copy in copies:
        assert copy.file_meta.MediaStorageSOPInstanceUID == copy.SOPInstanceUID
        assert copy.SOPClassUID == copy.file_meta.MediaStorageSOPClassUID


def deidentify_all(sources: list[Path], folder: Path) -> list[Path]:
    return [deidentify_file(source, folder / f"{number:04d}.dcm") for number, source in enumerate(sources)]


# --- real DICOM ----------------------------------------------------------------------------------
def test_real_mr_series_keeps_no_identifier(
    shared_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    folder = shared_data / "dicom" / "mr_t1_sagittal_series"
    sources = sorted(folder.glob("*.dcm"))
    outputs = deidentify_all(sources, tmp_path / "mr")
    originals = [pydicom.dcmread(path) for path in sources]
    copies = [pydicom.dcmread(path) for path in outputs]

    identifiers = set().union(*(identifiers_of(ds) for ds in originals))
    assert {originals[0].PatientBirthDate, originals[0].PatientID, originals[0].InstitutionName} <= identifiers
    # its PatientName, "HFS", is too short to search for in bytes (it is also the PatientPosition code)
    assert {str(copy.PatientName) for copy in copies} == {patient_pseudonym(originals[0])}
    for path in outputs:
        assert_no_identifier(path.read_bytes(), identifiers, path.name)
    captured = capsys.readouterr()
    assert_no_identifier((caplog.text + captured.out + captured.err).encode(), identifiers, "the logs")

    for original, copy in zip(originals, copies, strict=True):
        assert_same_image(original, copy)
        assert copy.PatientID == str(copy.PatientName) == patient_pseudonym(original)
        assert copy.PatientBirthDate != original.PatientBirthDate
        assert copy.PatientIdentityRemoved == "YES"
        assert not any(element.tag.is_private for element in copy)
    assert_uids_remapped_consistently(originals, copies)
    (shift,) = shifts(originals, copies)  # one offset for every date and time of the patient
    assert timedelta(days=-731) < shift < timedelta(days=-61)

    before, after = load_study(folder).views[0], load_study(tmp_path / "mr").views[0]
    np.testing.assert_array_equal(after.image.numpy(), before.image.numpy())
    np.testing.assert_array_equal(after.image.affine.numpy(), before.image.affine.numpy())


@pytest.mark.parametrize("source", deid_data_files(), ids=lambda path: f"{path.parent.name}/{path.name}")
def test_deid_data_files_keep_no_identifier(source: Path, tmp_path: Path) -> None:
    original = pydicom.dcmread(source)
    destination = tmp_path / "copy.dcm"
    if str(original.get("BurnedInAnnotation", "")).upper() == "YES":
        with pytest.raises(BurnedInAnnotationError, match=f"{source}: BurnedInAnnotation is YES"):
            deidentify_file(source, destination)
        assert not destination.exists()
        return
    deidentify_file(source, destination)
    copy = pydicom.dcmread(destination)
    assert_no_identifier(destination.read_bytes(), identifiers_of(original), source.name)
    assert_same_image(original, copy)
    assert_uids_remapped_consistently([original], [copy])
    assert copy.PatientID == patient_pseudonym(original)
    assert not any(element.tag.is_private for element in copy)
    if moment(original, "Study") is not None:
        (shift,) = shifts([original], [copy])
        assert timedelta(days=-731) < shift < timedelta(days=-61)


# --- phantoms: consistency, removal, refusal -----------------------------------------------------
IDENTITY = PatientIdentity(
    name="QUILLON^HENNESSA",
    patient_id="K4829173",
    birth_date="19580317",
    accession_number="RZ700123",
    study_date="20190412",
)


@pytest.fixture(scope="module")
def radiograph():
    return make_chest_radiograph(seed=1, size=40).views[0]


def write_phantom(path: Path, view, identity: PatientIdentity = IDENTITY, uid_seed: str = "study-a", **changes) -> Path:
    write_radiograph_dicom(path, view, identity=identity, uid_seed=uid_seed)
    ds = pydicom.dcmread(path)
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_same_patient_same_pseudonym_and_offset_across_studies_and_runs(tmp_path: Path, radiograph) -> None:
    first = write_phantom(tmp_path / "a.dcm", radiograph, uid_seed="study-a")
    later = write_phantom(
        tmp_path / "b.dcm",
        radiograph,
        uid_seed="study-b",
        StudyDate="20210301",
        SeriesDate="20210301",
        ContentDate="20210301",
    )
    other = write_phantom(
        tmp_path / "c.dcm", radiograph, PatientIdentity(name="VANTIS^ODO", patient_id="K7001"), uid_seed="study-c"
    )
    outputs = deidentify_all([first, later, other], tmp_path / "out")
    deid_dicom._anonymizer.cache_clear()  # a new run: nothing remembered but the salt
    again = deidentify_file(first, tmp_path / "again.dcm")
    assert again.read_bytes() == outputs[0].read_bytes()

    originals = [pydicom.dcmread(path) for path in (first, later, other)]
    copies = [pydicom.dcmread(path) for path in outputs]
    assert copies[0].PatientID == copies[1].PatientID != copies[2].PatientID
    assert shifts(originals[:1], copies[:1]) == shifts(originals[1:2], copies[1:2]) != shifts(originals[2:], copies[2:])
    assert copies[0].StudyInstanceUID != copies[1].StudyInstanceUID


def test_private_free_text_and_overlays_removed(tmp_path: Path, radiograph) -> None:
    path = write_phantom(
        tmp_path / "in.dcm",
        radiograph,
        ImageComments="Hennessa Quillon, bed 4",
        StudyDescription="CHEST QUILLON",
        InstitutionName="Saint Ardwyn Hospital",
    )
    ds = pydicom.dcmread(path)
    ds.private_block(0x0029, "ACME 1.0", create=True).add_new(0x01, "LO", "QUILLON HENNESSA")
    ds.add_new(0x60003000, "OW", b"\x00\x01" * 8)  # overlay data
    ds.save_as(path, enforce_file_format=True)
    copy = pydicom.dcmread(deidentify_file(path, tmp_path / "out.dcm"))
    for keyword in ("ImageComments", "StudyDescription", "SeriesDescription"):
        assert keyword not in copy
    assert 0x60003000 not in copy and not any(element.tag.is_private for element in copy)
    assert copy.InstitutionName != "Saint Ardwyn Hospital"
    assert copy.PatientSex == IDENTITY.sex and copy.ViewPosition == "PA"
    assert [item.CodeValue for item in copy.DeidentificationMethodCodeSequence] == ["113100", "113107", "113108"]
    assert_no_identifier(
        (tmp_path / "out.dcm").read_bytes(),
        {"QUILLON", "HENNESSA", "K4829173", "RZ700123", "19580317", "20190412", "Ardwyn"},
        "out.dcm",
    )


def test_burned_in_annotation_is_refused(tmp_path: Path, radiograph) -> None:
    path = write_phantom(tmp_path / "burned.dcm", radiograph, BurnedInAnnotation="YES")
    with pytest.raises(BurnedInAnnotationError, match="burned.dcm: BurnedInAnnotation is YES"):
        deidentify_file(path, tmp_path / "out.dcm")
    assert not (tmp_path / "out.dcm").exists()


def test_truncated_file_is_refused_by_name(tmp_path: Path, radiograph) -> None:
    path = write_phantom(tmp_path / "cut.dcm", radiograph)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ScanError, match="cut.dcm: the file is truncated"):
        deidentify_file(path, tmp_path / "out.dcm")
    assert not (tmp_path / "out.dcm").exists()


def test_removed_keywords_are_dicom_keywords() -> None:
    assert [keyword for keyword in deid_dicom.REMOVED_KEYWORDS if keyword not in keyword_dict] == []


def test_known_identifiers_from_headers(tmp_path: Path, radiograph) -> None:
    path = write_phantom(
        tmp_path / "in.dcm",
        radiograph,
        ReferringPhysicianName="HALVORSGAARD^ODALRIC",
        InstitutionName="Saint Ardwyn Hospital",
    )
    known = known_identifiers([pydicom.dcmread(path, stop_before_pixels=True)])
    assert known.people == ("HALVORSGAARD^ODALRIC", "QUILLON^HENNESSA")
    assert "K4829173" in known.ids and known.accessions == ("RZ700123",) and known.places == ("Saint Ardwyn Hospital",)


# --- report text ---------------------------------------------------------------------------------
REPORT = """EXAM: CT CHEST WITH CONTRAST
Patient name: SMITH, JOHN A    MRN: 00482913    DOB: 03/17/1958
Accession: A19-553201
Date of exam: April 12, 2019 14:35
CLINICAL HISTORY: 61M with cough.
COMPARISON: CT chest 2018-03-02.
FINDINGS: 6 mm nodule in the right upper lobe (series 3, image 45), unchanged since 3 Mar 2018.
IMPRESSION: Stable nodule. Findings discussed with Dr. Emily Carter by telephone at (617) 555-0142 on 04/12/19.
Electronically signed by: Robert K. Jones, MD on 12.04.2019"""


def test_report_scrubbed_of_every_identifier() -> None:
    scrubbed = scrub_report(REPORT)
    for identifier in (
        "SMITH",
        "JOHN",
        "00482913",
        "03/17/1958",
        "A19-553201",
        "April 12",
        "2019",
        "2018",
        "Emily",
        "Carter",
        "555-0142",
        "04/12/19",
        "Robert",
        "Jones",
    ):
        assert identifier not in scrubbed
    for clinical in (
        "EXAM: CT CHEST WITH CONTRAST",
        "61M with cough",
        "COMPARISON: CT chest XXXX.",
        "6 mm nodule in the right upper lobe (series 3, image 45)",
        "IMPRESSION: Stable nodule.",
        "14:35",
        "MRN: XXXX",
        "Accession: XXXX",
        "Dr. XXXX",
        "signed by: XXXX, MD",
    ):
        assert clinical in scrubbed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Seen by Dr. Smith and Dr J. O'Neil-Brown.", "Seen by Dr. XXXX and Dr XXXX."),
        ("Mrs. Patel and MR. LEE were informed.", "Mrs. XXXX and MR. XXXX were informed."),
        (
            "Patient: Jane Q. Public\nReferring physician: Dr. Alan Grant\ncc: M. Sattler",
            "Patient: XXXX\nReferring physician: Dr. XXXX\ncc: XXXX",
        ),
        ("Name: DOE^JANE\nDictated by: SMITH^JOHN", "Name: XXXX\nDictated by: XXXX"),
        ("Reviewed and approved. John A. Smith, M.D.", "Reviewed and approved. XXXX, M.D."),
        (
            "Call 617-555-0142 or pager 4-1234 (ext. 2231); email jane.doe@hospital.org.",
            "Call XXXX or pager XXXX (ext. XXXX); email XXXX.",
        ),
        ("Tel: +44 20 7946 0958.", "Tel: XXXX."),
        (
            "Compared with 03/02/2018, 2018-03-02, 20180302, March 2, 2018, 2 March 2018, 2nd of March, Mar. 2 and March 2018.",
            "Compared with XXXX, XXXX, XXXX, XXXX, XXXX, XXXX, XXXX and XXXX.",
        ),
        (
            "MRN: 00482913; MR# 55123; Patient ID K4829173; Acc #: A19-553201; accession number 7781234",
            "MRN: XXXX; MR# XXXX; Patient ID XXXX; Acc #: XXXX; accession number XXXX",
        ),
        ("SSN 123-45-6789, record 1234567.", "SSN XXXX, record XXXX."),
    ],
)
def test_scrubbing_rules(text: str, expected: str) -> None:
    assert scrub_report(text) == expected


def test_clinical_text_is_left_alone() -> None:
    text = (
        "MR brain without contrast. T2/FLAIR hyperintensity at C5-6 and L4-L5. Nodule 3.2 x 1.5 cm "
        "(series 3, image 45), may be related to prior infection. May represent scarring. BI-RADS 4. "
        "EF 55%. The patient is a 65-year-old man. Decreased effusion since March. Dose 120 kVp, 1.5 mSv."
    )
    assert scrub_report(text) == text


def test_known_identifiers_catch_unlabelled_names_and_ids() -> None:
    text = "Hennessa Quillon was imaged at Saint Quillon Memorial Hospital (K4829173, ACC583920X)."
    known = KnownIdentifiers(
        people=("QUILLON^HENNESSA",),
        ids=("K4829173",),
        accessions=("ACC583920X",),
        places=("Saint Quillon Memorial Hospital",),
    )
    assert scrub_report(text) == text  # without them, rules alone cannot tell these are identifiers
    assert scrub_report(text, known) == "XXXX XXXX was imaged at XXXX (XXXX, XXXX)."
    assert PLACEHOLDER == "XXXX"
