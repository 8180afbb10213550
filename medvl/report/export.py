"""Standard exports of a `Draft`: a DICOM Comprehensive SR and a FHIR R4 DiagnosticReport.

    from medvl.report.export import write_exports
    write_exports(draft, "study/", "out/", ["sr", "fhir"])   # out/<study>.sr.dcm, out/<study>.fhir.json

Both are marked as what they are, a machine draft: the SR is PARTIAL, UNVERIFIED and
PRELIMINARY, the FHIR report ``preliminary``, and each carries the notice "DRAFT - not for
clinical use" with the model's name and version.

**DICOM SR** (:func:`draft_to_sr`, :func:`write_sr`). The SR joins the source study as a new
series. highdicom copies patient and study identity from its evidence, the headers of the
source images, which :func:`read_source_headers` reads at export time (``stop_before_pixels``);
they go only into the SR file the user asked for. highdicom's own log lines quote UIDs and
patient names while it copies them, so they are muted. The content tree follows DICOM PS3.16
TID 2000 "Basic Diagnostic Imaging Report", one TEXT item per sentence::

    Diagnostic Imaging Report (18748-4, LN)
      HAS CONCEPT MOD  Language of Content Item and Descendants = English (United States)
      HAS OBS CONTEXT  Observer Type = Device; Device Observer UID, Name, Manufacturer, Model Name
      CONTAINS         Comment (heading) > Comment = "DRAFT - not for clinical use: written by ..."
      CONTAINS         Findings (59776-5, LN) > Finding (121071, DCM) = "<sentence>", ...
      CONTAINS         Impressions (19005-8, LN) > Impression (121073, DCM) = "<sentence>", ...

The equipment that wrote the SR is Manufacturer "medvl", ManufacturerModelName the model's
name, SoftwareVersions its version (which names the exact weights).

**FHIR** (:func:`draft_to_fhir`, :func:`write_fhir`). A DiagnosticReport valid in FHIR R4 (and
R4B, whose DiagnosticReport is the same): ``conclusion`` is the impression, ``presentedForm``
the full draft text. R4 has no ``DiagnosticReport.note``, so the notice travels in R5's
``note`` through HL7's cross-version extension. No patient identifier: ``subject`` appears
only when the caller passes a reference.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

from medvl import DRAFT_NOTICE
from medvl.errors import ConfigError, MedVLError, NotDicomError, ScanNotFoundError
from medvl.files import atomic_path, atomic_write_text
from medvl.io.dicom import find_series, is_dicom_file
from medvl.io.loader import RASTER_SUFFIXES
from medvl.io.nifti import is_nifti_name
from medvl.privacy import hash_identifier
from medvl.report.draft import Draft
from medvl.samples import resolve_study_path

if TYPE_CHECKING:
    from medvl.report.drafting import StudyInput

EXPORT_SUFFIXES = {"sr": ".sr.dcm", "fhir": ".fhir.json"}  # format -> file name ending
MANUFACTURER = "medvl"
SR_NEEDS_DICOM = "a DICOM SR needs a DICOM source study"

# --- DICOM SR ------------------------------------------------------------------------------------

SR_SERIES_NUMBER = 9001  # a high number lists the machine draft after the acquired series
REPORT_TITLE = codes.cid7000.DiagnosticImagingReport  # (18748-4, LN)
ENGLISH = hd.sr.CodedConcept(value="en-US", scheme_designator="RFC5646", meaning="English (United States)")
NOTICE_CODE = codes.DCM.Comment  # (121106, DCM): the notice's heading and item
# Draft section (medvl.text.SECTION_NAMES) -> (heading, CID 7001; report element, CID 7002).
SECTION_CODES = {
    "findings": (codes.cid7001.Findings, codes.cid7002.Finding),
    "impression": (codes.cid7001.Impressions, codes.cid7002.Impression),
    "comparison": (codes.cid7001.PreviousFindings, codes.cid7002.PreviousFinding),
    "indication": (codes.cid7001.IndicationsForProcedure, codes.cid7002.Request),
    "history": (codes.cid7001.History, codes.cid7002.History),
    "technique": (codes.cid7001.CurrentProcedureDescriptions, codes.cid7002.ProcedureDescription),
}
REQUIRED_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
# Type 2 attributes highdicom copies from the first header; a header that omits them gets them empty.
COPIED_TYPE2 = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
)


def read_source_headers(study: StudyInput) -> list[Dataset]:
    """The headers (no pixel data) of a study's DICOM images: the evidence an SR references.

    ``study`` is what drafting took: a path (DICOM file or folder, ``sample:<name>``) or the
    paths of the study's views. Raises :class:`~medvl.errors.NotDicomError` naming the first
    image that is not DICOM (PNG, JPEG, NIfTI), or the path that holds no DICOM image.
    """
    paths = [study] if isinstance(study, (str, Path)) else list(study)
    headers: list[Dataset] = []
    for path in map(resolve_study_path, paths):
        series = find_series(_dicom_files(path))  # leaves out objects without an image
        if not series:
            raise NotDicomError(f"{SR_NEEDS_DICOM}: no DICOM image here", path)
        headers += [header for one in series for header in one.headers]
    return headers


def _dicom_files(path: Path) -> list[Path]:
    """The DICOM files of a study path; an image file that is not DICOM is an error."""
    if not path.exists():
        raise ScanNotFoundError("no such file or folder", path)
    files = [path] if path.is_file() else sorted(_visible_files(path))
    dicom_files = []
    for file in files:
        if is_dicom_file(file):
            dicom_files.append(file)
        elif file.suffix.lower() in RASTER_SUFFIXES or is_nifti_name(file):
            raise NotDicomError(f"{SR_NEEDS_DICOM}; this image is not DICOM", file)
    return dicom_files  # other files (notes, reports) are not images: skipped, as drafting skips them


def _visible_files(folder: Path) -> Iterator[Path]:
    """The files under ``folder``, at any depth, leaving out hidden files and folders."""
    for file in folder.rglob("*"):
        if file.is_file() and not any(part.startswith(".") for part in file.relative_to(folder).parts):
            yield file


def draft_to_sr(draft: Draft, source_datasets: Sequence[Dataset]) -> hd.sr.ComprehensiveSR:
    """A Comprehensive SR of ``draft``, in the source study, with ``source_datasets`` as evidence.

    ``source_datasets`` are the headers of the study's images (:func:`read_source_headers`);
    the first one's StudyInstanceUID must be the study the draft was written from.
    """
    _check_evidence(draft, source_datasets)
    first, content = source_datasets[0], _report_content(draft)
    try:
        with _highdicom_muted():
            sr = hd.sr.ComprehensiveSR(
                evidence=[_with_empty_type2(first), *source_datasets[1:]],
                content=content,
                series_instance_uid=generate_uid(),
                series_number=SR_SERIES_NUMBER,
                sop_instance_uid=generate_uid(),
                instance_number=1,
                manufacturer=MANUFACTURER,
                manufacturer_model_name=draft.model_name,
                software_versions=draft.model_version,
                series_description=DRAFT_NOTICE,
                is_complete=False,  # PARTIAL
                is_final=False,  # PRELIMINARY
                is_verified=False,  # UNVERIFIED: no physician has signed it
            )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        # Not shown: the message may quote the patient's name or birth date.
        raise MedVLError(
            f"cannot build a DICOM SR from this header ({type(exc).__name__} in highdicom)", _where(first)
        ) from exc
    sr.CompletionFlagDescription = DRAFT_NOTICE
    return sr


def write_sr(draft: Draft, study: StudyInput, out_path: str | Path) -> Path:
    """Read the source study's headers and write the draft's SR to ``out_path`` atomically."""
    sr = draft_to_sr(draft, read_source_headers(study))
    with atomic_path(out_path) as tmp:
        sr.save_as(tmp, enforce_file_format=True)
    return Path(out_path)


def _check_evidence(draft: Draft, source_datasets: Sequence[Dataset]) -> None:
    """Every header names its instance; the first is of the study the draft reports on."""
    if not source_datasets:
        raise MedVLError(f"{SR_NEEDS_DICOM}: no source headers were given for draft '{draft.study}'")
    for dataset in source_datasets:
        missing = [keyword for keyword in REQUIRED_UIDS if not dataset.get(keyword)]
        if missing:
            raise MedVLError(f"an SR cannot reference this image: it has no {', '.join(missing)}", _where(dataset))
    if draft.study_uid_hash != hash_identifier(str(source_datasets[0].StudyInstanceUID)):
        raise MedVLError(
            f"draft '{draft.study}' was not written from this study (the StudyInstanceUID hashes differ); "
            "an SR must reference the study it reports on",
            _where(source_datasets[0]),
        )


def _where(dataset: Dataset) -> str | None:
    filename = getattr(dataset, "filename", None)
    return str(filename) if filename else None


def _with_empty_type2(header: Dataset) -> Dataset:
    """A copy of ``header`` with the Type 2 attributes highdicom copies present (empty if absent)."""
    header = copy.deepcopy(header)
    for keyword in COPIED_TYPE2:
        header.setdefault(keyword, None)
    return header


@contextmanager
def _highdicom_muted() -> Iterator[None]:
    """No log line or warning from highdicom while it copies identity: they can quote it."""
    logger = logging.getLogger("highdicom")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _report_content(draft: Draft) -> hd.sr.ContainerContentItem:
    """The TID 2000 content tree: language, device observer, notice, then a heading per section."""
    root = hd.sr.ContainerContentItem(name=REPORT_TITLE, is_content_continuous=False, template_id="2000")
    sections = [_section(*SECTION_CODES[name], texts) for name, texts in _sentences_by_section(draft).items()]
    root.ContentSequence = hd.sr.ContentSequence(
        [
            *hd.sr.LanguageOfContentItemAndDescendants(ENGLISH),
            *hd.sr.ObservationContext(observer_device_context=_device_observer(draft)),
            _section(NOTICE_CODE, NOTICE_CODE, [provenance_note(draft)]),
            *sections,
        ]
    )
    return root


def _device_observer(draft: Draft) -> hd.sr.ObserverContext:
    """The model as the SR's observer; the same weights always get the same Device Observer UID."""
    return hd.sr.ObserverContext(
        observer_type=codes.cid270.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(entropy_srcs=[MANUFACTURER, draft.model_name, draft.model_version]),
            name=draft.model_name,
            manufacturer_name=MANUFACTURER,
            model_name=draft.model_name,
        ),
    )


def _section(heading: Code, element: Code, texts: Iterable[str]) -> hd.sr.ContainerContentItem:
    """A heading container holding one TEXT item per sentence (TID 2002 "Report Narrative")."""
    container = hd.sr.ContainerContentItem(name=heading, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)
    container.ContentSequence = hd.sr.ContentSequence(
        [
            hd.sr.TextContentItem(name=element, value=text, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)
            for text in texts
        ]
    )
    return container


def _sentences_by_section(draft: Draft) -> dict[str, list[str]]:
    """Sentence texts per section, in order of appearance (as :attr:`Draft.sections` joins them)."""
    sections: dict[str, list[str]] = {}
    for sentence in draft.sentences:
        sections.setdefault(sentence.section, []).append(sentence.text)
    return sections


def provenance_note(draft: Draft) -> str:
    """The notice with the model that wrote the draft, as both exports carry it."""
    return f"{DRAFT_NOTICE}: written by {draft.model_name} {draft.model_version}, not verified by a physician."


# --- FHIR R4 DiagnosticReport --------------------------------------------------------------------

FHIR_REPORT_CODE = {"system": "http://loinc.org", "code": "18748-4", "display": "Diagnostic imaging study"}
FHIR_RADIOLOGY = {"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD", "display": "Radiology"}
# R5's DiagnosticReport.note in R4 (HL7 "Extensions for Using Data Elements from FHIR R5 in FHIR R4").
FHIR_NOTE_EXTENSION = "http://hl7.org/fhir/5.0/StructureDefinition/extension-DiagnosticReport.note"
FHIR_TEXT_TYPE = "text/plain; charset=utf-8"


def draft_to_fhir(draft: Draft, subject: str | None = None) -> dict[str, Any]:
    """A FHIR R4 DiagnosticReport of ``draft`` as a JSON-ready dict, ``preliminary``.

    ``subject`` is a reference the caller may supply (``"Patient/123"``); the draft knows no
    patient, so without it the report has no subject.
    """
    report = {
        "resourceType": "DiagnosticReport",
        "text": _narrative(draft),
        "extension": [
            {
                "url": FHIR_NOTE_EXTENSION,
                "valueAnnotation": {
                    "authorString": f"{draft.model_name} {draft.model_version}",
                    "time": draft.created,
                    "text": provenance_note(draft),
                },
            }
        ],
        "status": "preliminary",
        "category": [{"coding": [FHIR_RADIOLOGY]}],
        "code": {"coding": [FHIR_REPORT_CODE], "text": "Diagnostic imaging report"},
        "subject": {"reference": subject} if subject else None,
        "issued": draft.created,
        "conclusion": draft.sections.get("impression"),
        "presentedForm": [
            {
                "contentType": FHIR_TEXT_TYPE,
                "language": "en",
                "data": base64.b64encode(draft.to_text().encode("utf-8")).decode("ascii"),
                "title": DRAFT_NOTICE,
                "creation": draft.created,
            }
        ],
    }
    return {key: value for key, value in report.items() if value is not None}


def write_fhir(draft: Draft, out_path: str | Path, subject: str | None = None) -> Path:
    """Write the draft's DiagnosticReport as JSON to ``out_path`` atomically."""
    atomic_write_text(out_path, json.dumps(draft_to_fhir(draft, subject), indent=2) + "\n")
    return Path(out_path)


def _narrative(draft: Draft) -> dict[str, str]:
    """Human-readable XHTML: the notice with the model first, then each section."""
    paragraphs = [f"<p><b>{escape(provenance_note(draft))}</b></p>"]
    paragraphs += [f"<p><b>{escape(name.upper())}:</b> {escape(text)}</p>" for name, text in draft.sections.items()]
    return {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">' + "".join(paragraphs) + "</div>"}


# --- writing -------------------------------------------------------------------------------------


def write_exports(draft: Draft, study: StudyInput, out_dir: str | Path, formats: Iterable[str]) -> list[Path]:
    """Write the draft in each of ``formats`` (``"sr"``, ``"fhir"``) into ``out_dir``.

    Files are named ``<draft.study>.sr.dcm`` and ``<draft.study>.fhir.json``; ``study`` is the
    input the draft was written from (the SR references it). Unknown formats raise
    :class:`~medvl.errors.ConfigError` before anything is written.
    """
    formats = list(formats)
    unknown = [name for name in formats if name not in EXPORT_SUFFIXES]
    if unknown:
        raise ConfigError(f"unknown export format '{unknown[0]}'; medvl exports {', '.join(EXPORT_SUFFIXES)}")
    out_dir = Path(out_dir)
    written = []
    for name in formats:
        path = out_dir / f"{draft.study}{EXPORT_SUFFIXES[name]}"
        written.append(write_sr(draft, study, path) if name == "sr" else write_fhir(draft, path))
    return written
