"""Exports of a draft: a DICOM Comprehensive SR re-read with highdicom, a FHIR R4 DiagnosticReport
validated with fhir.resources, identity kept to the SR file, and clear errors for bad sources."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import warnings

import highdicom as hd
import pydicom
import pytest
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from pydicom.sr.codedict import codes
from pydicom.uid import ComprehensiveSRStorage

from medvl import DRAFT_NOTICE
from medvl.data.phantom import PatientIdentity, make_chest_radiograph, write_radiograph_dicom
from medvl.errors import ConfigError, MedVLError, NotDicomError
from medvl.model import MedVLConfig
from medvl.model.loading import build_model, save_model
from medvl.report.draft import Draft, DraftSentence
from medvl.report.drafting import Drafter
from medvl.report.export import (
    FHIR_NOTE_EXTENSION,
    SECTION_CODES,
    draft_to_fhir,
    read_source_headers,
    write_exports,
    write_sr,
)
from medvl.samples import sample_path
from medvl.text import SECTION_NAMES, train_tokenizer

MODEL_NAME = "medvl-export-test"
TINY_TEXT = {"model_type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2, "n_positions": 128}
# A fake identity; the name has no "^", which makes highdicom log it (it must not reach the log).
IDENTITY = PatientIdentity(
    name="DOE JOHN", patient_id="MRN-424242", birth_date="19611231", sex="M", accession_number="ACC-987654"
)
KNOWN_SENTENCES = [
    DraftSentence("findings", "The heart size is normal.", 0, 6),
    DraftSentence("findings", "Small right pleural effusion.", 6, 10),
    DraftSentence("impression", "Right pleural effusion.", 11, 14),
]


def _drafter(tmp_path_factory: pytest.TempPathFactory, spatial_dims: int) -> Drafter:
    """A tiny untrained model, saved and loaded as any model folder is."""
    reports = ["[findings] the heart is normal . no pleural effusion . [impression] normal chest ."] * 3
    tokenizer = train_tokenizer(reports, min_frequency=1)
    config = MedVLConfig(
        encoder={"name": "resnet10", "spatial_dims": spatial_dims, "widen_factor": 0.25},
        text_config=TINY_TEXT,
        preprocessing={"spatial_dims": spatial_dims, "image_size": 64 if spatial_dims == 2 else 32, "max_views": 1},
        text={"max_length": 40},
        model_name=MODEL_NAME,
    )
    folder = save_model(
        build_model(config, tokenizer), tokenizer, tmp_path_factory.mktemp(f"model{spatial_dims}d") / "m"
    )
    return Drafter(folder, decoding={"num_beams": 1, "max_new_tokens": 24}, device="cpu")


@pytest.fixture(scope="module")
def ct_model_draft(tmp_path_factory) -> Draft:
    """The tiny model's draft of the bundled CT series, as written (an untrained model may write nothing)."""
    run = _drafter(tmp_path_factory, 3).draft(["sample:chest-ct"])
    assert not run.failures
    return run.drafts[0]


@pytest.fixture(scope="module")
def ct_draft(ct_model_draft) -> Draft:
    return dataclasses.replace(ct_model_draft, sentences=KNOWN_SENTENCES)


@pytest.fixture(scope="module")
def dx_file(tmp_path_factory):
    view = make_chest_radiograph(seed=3, size=64, views=("frontal",)).views[0]
    return write_radiograph_dicom(tmp_path_factory.mktemp("dx") / "frontal.dcm", view, identity=IDENTITY)


@pytest.fixture(scope="module")
def dx_draft(tmp_path_factory, dx_file) -> Draft:
    """The tiny model's draft of the DX file, with known sentences in two sections."""
    run = _drafter(tmp_path_factory, 2).draft([dx_file])
    assert not run.failures
    return dataclasses.replace(run.drafts[0], sentences=KNOWN_SENTENCES)


def _texts_by_heading(sr: hd.sr.ComprehensiveSR) -> list[tuple[str, str, str]]:
    """(heading code, item code, text) for every TEXT item under the root's headings, in order."""
    return [
        (heading.ConceptNameCodeSequence[0].CodeValue, item.ConceptNameCodeSequence[0].CodeValue, item.TextValue)
        for heading in sr.ContentSequence
        if heading.ValueType == "CONTAINER"
        for item in heading.ContentSequence
    ]


def _text_value(sr: hd.sr.ComprehensiveSR, code) -> str:
    (item,) = hd.sr.utils.find_content_items(sr, name=code, value_type="TEXT", recursive=True)
    return item.TextValue


def test_sr_of_a_ct_series_references_every_slice_and_is_marked_a_draft(ct_draft, tmp_path):
    slices = sorted(sample_path("chest-ct").rglob("*.dcm"))
    sources = [pydicom.dcmread(path, stop_before_pixels=True) for path in slices]

    path = write_sr(ct_draft, "sample:chest-ct", tmp_path / "ct.sr.dcm")

    sr = hd.sr.srread(path)
    assert isinstance(sr, hd.sr.ComprehensiveSR) and sr.SOPClassUID == ComprehensiveSRStorage
    assert sr.StudyInstanceUID == sources[0].StudyInstanceUID
    assert sr.SeriesInstanceUID != sources[0].SeriesInstanceUID
    assert len(sources) > 1 and set(sr.get_evidence(current_procedure_only=True)) == {
        (s.StudyInstanceUID, s.SeriesInstanceUID, s.SOPInstanceUID, s.SOPClassUID) for s in sources
    }
    assert (sr.CompletionFlag, sr.VerificationFlag, sr.PreliminaryFlag) == ("PARTIAL", "UNVERIFIED", "PRELIMINARY")
    assert sr.CompletionFlagDescription == DRAFT_NOTICE and sr.SeriesDescription == DRAFT_NOTICE
    equipment = (sr.Manufacturer, sr.ManufacturerModelName, sr.SoftwareVersions)
    assert equipment == ("medvl", MODEL_NAME, ct_draft.model_version)
    assert _text_value(sr, codes.DCM.DeviceObserverName) == MODEL_NAME
    notice = _text_value(sr, codes.DCM.Comment)
    assert notice.startswith(DRAFT_NOTICE) and f"{MODEL_NAME} {ct_draft.model_version}" in notice
    sentences = [(SECTION_CODES[s.section][1].value, s.text) for s in ct_draft.sentences]
    assert [(item, text) for _, item, text in _texts_by_heading(sr)[1:]] == sentences  # after the notice


def test_sr_sentences_sit_under_coded_headings_of_tid_2000(dx_draft, dx_file, tmp_path):
    sr = hd.sr.srread(write_sr(dx_draft, dx_file, tmp_path / "dx.sr.dcm"))

    title = sr.ConceptNameCodeSequence[0]
    assert (title.CodeValue, title.CodingSchemeDesignator) == ("18748-4", "LN")
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "2000"
    assert _texts_by_heading(sr) == [
        ("121106", "121106", _text_value(sr, codes.DCM.Comment)),  # the notice comes first
        ("59776-5", "121071", "The heart size is normal."),  # Findings > Finding
        ("59776-5", "121071", "Small right pleural effusion."),
        ("19005-8", "121073", "Right pleural effusion."),  # Impressions > Impression
    ]
    language = hd.sr.utils.find_content_items(sr, name=codes.DCM.LanguageOfContentItemAndDescendants)
    assert language[0].ConceptCodeSequence[0].CodeValue == "en-US"
    observer = hd.sr.utils.find_content_items(sr, name=codes.DCM.ObserverType)
    assert observer[0].ConceptCodeSequence[0].CodeValue == codes.DCM.Device.value


def test_sr_copies_identity_into_its_file_only_and_logs_nothing(dx_draft, dx_file, tmp_path, caplog, capsys):
    header = pydicom.dcmread(dx_file, stop_before_pixels=True)
    secrets = [IDENTITY.name, IDENTITY.patient_id, IDENTITY.accession_number, IDENTITY.birth_date]
    secrets += [header.StudyInstanceUID, header.SOPInstanceUID]

    with caplog.at_level(logging.DEBUG), warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        path = write_sr(dx_draft, dx_file, tmp_path / "dx.sr.dcm")

    sr = pydicom.dcmread(path)
    copied = (str(sr.PatientName), sr.PatientID, sr.AccessionNumber)
    assert copied == (IDENTITY.name, IDENTITY.patient_id, IDENTITY.accession_number)  # into the SR file, as designed
    printed = caplog.text + "".join(capsys.readouterr()) + "".join(str(w.message) for w in warned)
    assert not [secret for secret in secrets if secret in printed]


def test_sr_of_a_header_without_type_2_patient_attributes_leaves_them_empty(dx_draft, dx_file, tmp_path):
    bare = pydicom.dcmread(dx_file)
    del bare.AccessionNumber, bare.PatientBirthDate, bare.PatientSex
    bare.save_as(tmp_path / "bare.dcm")

    sr = pydicom.dcmread(write_sr(dx_draft, tmp_path / "bare.dcm", tmp_path / "bare.sr.dcm"))

    assert [sr[keyword].value for keyword in ("AccessionNumber", "PatientBirthDate", "PatientSex")] == ["", "", ""]
    assert sr.PatientID == IDENTITY.patient_id


def test_sr_of_a_png_study_is_refused_naming_the_file(dx_draft, tmp_path):
    with pytest.raises(NotDicomError, match=r"frontal\.png: a DICOM SR needs a DICOM source study"):
        write_sr(dx_draft, "sample:chest-xray", tmp_path / "x.sr.dcm")
    assert list(tmp_path.iterdir()) == []


def test_sr_refuses_the_headers_of_another_study(ct_draft, dx_file, tmp_path):
    with pytest.raises(MedVLError, match=r"frontal\.dcm: draft '\w+' was not written from this study"):
        write_sr(ct_draft, dx_file, tmp_path / "x.sr.dcm")


def test_source_headers_skip_notes_and_carry_no_pixels(dx_file, tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    (study / "frontal.dcm").write_bytes(dx_file.read_bytes())
    (study / "notes.txt").write_text("not an image")

    (header,) = read_source_headers(study)

    assert header.SOPInstanceUID == pydicom.dcmread(dx_file).SOPInstanceUID and "PixelData" not in header


def test_fhir_report_is_valid_r4_with_the_draft_text_and_notice(dx_draft):
    report = draft_to_fhir(dx_draft, subject="Patient/example")

    parsed = DiagnosticReport.model_validate(report)
    assert parsed.status == "preliminary" and parsed.subject.reference == "Patient/example"
    assert (parsed.code.coding[0].system, parsed.code.coding[0].code) == ("http://loinc.org", "18748-4")
    assert parsed.conclusion == "Right pleural effusion."
    assert base64.b64decode(report["presentedForm"][0]["data"]).decode("utf-8") == dx_draft.to_text()
    (note,) = [extension for extension in parsed.extension if extension.url == FHIR_NOTE_EXTENSION]
    assert note.valueAnnotation.text.startswith(DRAFT_NOTICE)
    assert note.valueAnnotation.authorString == f"{MODEL_NAME} {dx_draft.model_version}"
    assert DRAFT_NOTICE in parsed.text.div


def test_fhir_report_names_no_patient_and_has_no_conclusion_without_an_impression(dx_draft):
    findings_only = dataclasses.replace(dx_draft, sentences=KNOWN_SENTENCES[:2])

    report = draft_to_fhir(findings_only)

    DiagnosticReport.model_validate(report)
    assert "subject" not in report and "conclusion" not in report
    assert dx_draft.study_uid_hash not in json.dumps(report)


def test_write_exports_writes_sr_and_fhir_named_by_study(ct_model_draft, tmp_path):
    written = write_exports(ct_model_draft, "sample:chest-ct", tmp_path, ["sr", "fhir"])

    assert [path.name for path in written] == [f"{ct_model_draft.study}.sr.dcm", f"{ct_model_draft.study}.fhir.json"]
    assert sorted(tmp_path.iterdir()) == sorted(written)  # no temporary file left behind
    report = json.loads(written[1].read_text())
    DiagnosticReport.model_validate(report)
    assert base64.b64decode(report["presentedForm"][0]["data"]).decode("utf-8") == ct_model_draft.to_text()
    assert hd.sr.srread(written[0]).VerificationFlag == "UNVERIFIED"


def test_an_unknown_export_format_is_refused_before_writing(ct_draft, tmp_path):
    with pytest.raises(ConfigError, match="unknown export format 'hl7v2'; medvl exports sr, fhir"):
        write_exports(ct_draft, "sample:chest-ct", tmp_path, ["fhir", "hl7v2"])
    assert list(tmp_path.iterdir()) == []


def test_every_section_medvl_writes_has_sr_codes():
    assert set(SECTION_CODES) == set(SECTION_NAMES)
