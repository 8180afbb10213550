"""De-identification of DICOM headers: the DICOM PS3.15 Basic Application Level Confidentiality
Profile, carried out by ``dicognito``, with medvl's salted pseudonyms.

Why dicognito. It is maintained (regular releases, pydicom its only dependency) and it
*pseudonymises* rather than blanks: every person name, ID, UID, address, institution, station
and date/time is replaced by a value derived from a seed and the original value. Given one seed,
one input always gives one output, so the series of a study stay one study, the studies of a
patient stay one patient, and every date and time moves by one offset (intervals are kept).
The alternatives need more code of our own: ``deid`` is a recipe engine whose shipped recipe is
site-specific (it removes every UID and adds a Stanford issuer), and consistent per-patient
UIDs and dates would be custom functions; pydicom and highdicom ship no profile table at all.

What :func:`deidentify_dataset` does, in order:

1. refuses an image whose BurnedInAnnotation is YES (:class:`BurnedInAnnotationError`): the
   header can be cleaned, text written into the pixels cannot. Pixel data is never changed;
2. removes, at every depth: private attributes (the profile keeps none without its Retain
   Safe Private option); every free-text attribute (VR LT, ST, UT: comments, histories,
   addresses); overlays and curves (groups 60xx, 50xx); and the attributes of the profile's
   table E.1-1 that dicognito leaves or fills with a fixed value (:data:`REMOVED_KEYWORDS`:
   descriptions, reasons, patient details, equipment IDs);
3. runs dicognito seeded with a salted hash of the patient's identity
   (:func:`medvl.privacy.hash_identifier`): a secret, since the salt is, and different for every
   patient, so each patient's dates move by an offset of their own (62 to 730 days back) that
   is the same in every study and every run with the same salt. UIDs are remapped (class UIDs
   and transfer syntaxes kept), names, IDs, addresses, institutions and stations replaced;
4. sets PatientID and PatientName to the patient pseudonym (:func:`patient_pseudonym`, the
   ``patient`` of medvl manifests), PatientIdentityRemoved to YES, and records the method:
   Basic Profile, Retain Longitudinal Temporal Information with Modified Dates, Retain Patient
   Characteristics (PatientSex, PatientAge, PatientSize and PatientWeight are kept).

Patients are told apart by PatientID; without one, by PatientName and PatientBirthDate; without
those, every study counts as its own patient.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import pydicom
from dicognito.anonymizer import Anonymizer
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sr.codedict import codes

from medvl.deid.text import KnownIdentifiers
from medvl.errors import ScanError
from medvl.files import atomic_path
from medvl.io.dicom import pydicom_errors, read_complete, read_header
from medvl.privacy import hash_identifier

SEED_LENGTH = 64  # hex characters of the per-patient dicognito seed
MIN_KNOWN_LENGTH = 3  # shorter header values ("1", "A") are not searched for in report text

# PS3.15 table E.1-1 attributes (action X, Z or D) that dicognito leaves or fills with a fixed
# value: free text (names, places and dates in free form), patient details, equipment IDs.
REMOVED_KEYWORDS = (
    "AcquisitionComments",
    "AdditionalPatientHistory",
    "AdmittingDiagnosesDescription",
    "Allergies",
    "CassetteID",
    "CommentsOnThePerformedProcedureStep",
    "ContrastBolusAgent",
    "DerivationDescription",
    "DetectorID",
    "DeviceSerialNumber",
    "DischargeDiagnosisDescription",
    "EthnicGroup",
    "FrameComments",
    "GantryID",
    "GeneratorID",
    "IdentifyingComments",
    "ImageComments",
    "InstitutionAddress",  # dicognito writes a fake one only where it replaces InstitutionName
    "InstitutionalDepartmentName",  # dicognito writes "RADIOLOGY"
    "LastMenstrualDate",
    "MedicalAlerts",
    "OtherPatientIDsSequence",
    "PatientBirthTime",
    "PatientComments",
    "PatientSexNeutered",
    "PatientState",
    "PerformedProcedureStepDescription",
    "PlateID",
    "PersonAddress",
    "PersonTelephoneNumbers",
    "PregnancyStatus",
    "ProtocolName",
    "ReasonForStudy",
    "ReasonForTheRequestedProcedure",
    "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers",
    "RequestAttributesSequence",
    "RequestedProcedureDescription",
    "ScheduledProcedureStepDescription",
    "SeriesDescription",
    "ServiceEpisodeDescription",
    "SmokingStatus",
    "SpecialNeeds",
    "StudyComments",
    "StudyDescription",
    "TextComments",
    "TextString",
    "VisitComments",
)
REMOVED_VRS = ("LT", "ST", "UT")  # free text wherever it is: comments, histories, addresses
REMOVED_GROUPS = (range(0x5000, 0x5020, 2), range(0x6000, 0x6020, 2))  # curves, overlays
METHOD_CODES = (
    codes.DCM.BasicApplicationConfidentialityProfile,
    codes.DCM.RetainLongitudinalTemporalInformationModifiedDatesOption,
    codes.DCM.RetainPatientCharacteristicsOption,
)
KNOWN_PEOPLE = (
    "PatientName",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "PhysiciansOfRecord",
    "RequestingPhysician",
    "OperatorsName",
)
KNOWN_IDS = ("PatientID", "OtherPatientIDs", "StudyID", "StudyInstanceUID")
KNOWN_ACCESSIONS = ("AccessionNumber",)
KNOWN_PLACES = ("InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "PatientAddress")


class BurnedInAnnotationError(ScanError):
    """An image says text is burned into its pixels (BurnedInAnnotation YES)."""


def patient_pseudonym(header: Dataset) -> str:
    """The patient's salted-hash pseudonym: the same patient gives the same value under one salt."""
    return hash_identifier(_patient_identity(header))


def deidentify_dataset(dataset: Dataset, path: str | Path | None = None) -> Dataset:
    """De-identify ``dataset`` in place (see the module documentation) and return it.

    Raises :class:`BurnedInAnnotationError` (naming ``path``) for BurnedInAnnotation YES.
    """
    if str(dataset.get("BurnedInAnnotation", "")).strip().upper() == "YES":
        raise BurnedInAnnotationError("BurnedInAnnotation is YES: text in the pixels cannot be de-identified", path)
    identity = _patient_identity(dataset)
    dataset.walk(_remove_unwanted)
    _anonymizer(hash_identifier(f"dicognito-seed:{identity}", length=SEED_LENGTH)).anonymize(dataset)
    pseudonym = hash_identifier(identity)
    dataset.PatientID = pseudonym
    dataset.PatientName = pseudonym
    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethodCodeSequence = [_code_item(code) for code in METHOD_CODES]
    if hasattr(dataset, "file_meta"):  # read from a file (a data set built in memory has none)
        dataset.file_meta = _fresh_file_meta(dataset)
    return dataset


def deidentify_file(source: str | Path, destination: str | Path) -> Path:
    """Write a de-identified copy of the DICOM image file ``source`` to ``destination`` (atomically).

    Raises a :class:`~medvl.errors.ScanError` naming ``source`` for a file that is not DICOM,
    is truncated or holds no image, and :class:`BurnedInAnnotationError`.
    """
    source, destination = Path(source), Path(destination)
    header = read_header(source)
    with pydicom_errors(source):
        dataset = read_complete(source, header)
    deidentify_dataset(dataset, source)
    with atomic_path(destination) as tmp:
        dataset.save_as(tmp, enforce_file_format=True)
    return destination


def known_identifiers(headers: Iterable[Dataset]) -> KnownIdentifiers:
    """The names, IDs, accession numbers and places in ``headers``, to scrub from report text."""
    headers = list(headers)

    def values(keywords: tuple[str, ...]) -> tuple[str, ...]:
        found = {value for header in headers for keyword in keywords for value in _strings(header, keyword)}
        return tuple(sorted(value for value in found if len(value) >= MIN_KNOWN_LENGTH))

    return KnownIdentifiers(
        people=values(KNOWN_PEOPLE),
        ids=values(KNOWN_IDS),
        accessions=values(KNOWN_ACCESSIONS),
        places=values(KNOWN_PLACES),
    )


def _patient_identity(header: Dataset) -> str:
    """What tells the patient apart: PatientID, else name and birth date, else the study."""
    patient_id = str(header.get("PatientID", "")).strip()
    if patient_id:
        return f"id:{patient_id}"
    name = str(header.get("PatientName", "")).strip()
    if name:
        return f"name:{name}/{str(header.get('PatientBirthDate', '')).strip()}"
    return f"study:{str(header.get('StudyInstanceUID', '')).strip()}"


@lru_cache(maxsize=256)
def _anonymizer(seed: str) -> Anonymizer:
    """One dicognito anonymizer per patient seed (its values depend only on the seed)."""
    return Anonymizer(seed=seed)


def _remove_unwanted(dataset: Dataset, element: DataElement) -> None:
    """``Dataset.walk`` callback deleting private attributes, free text, :data:`REMOVED_KEYWORDS`
    and overlays and curves."""
    if (
        element.tag.is_private
        or element.VR in REMOVED_VRS
        or element.keyword in REMOVED_KEYWORDS
        or any(element.tag.group in groups for groups in REMOVED_GROUPS)
    ):
        del dataset[element.tag]


def _fresh_file_meta(dataset: Dataset) -> FileMetaDataset:
    """File meta information of the copy: its SOP class and instance and its transfer syntax.

    The source's meta group names the sending station (Source Application Entity Title) and
    may hold private information; pydicom adds its own implementation UID when saving.
    """
    source = dataset.file_meta
    meta = FileMetaDataset()
    for keyword, fallback in (
        ("SOPClassUID", "MediaStorageSOPClassUID"),
        ("SOPInstanceUID", "MediaStorageSOPInstanceUID"),
    ):
        value = dataset.get(keyword) or source.get(fallback)
        if value:
            setattr(meta, fallback, value)
    if "TransferSyntaxUID" in source:
        meta.TransferSyntaxUID = source.TransferSyntaxUID
    return meta


def _code_item(code: pydicom.sr.coding.Code) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code.value, code.scheme_designator, code.meaning
    return item


def _strings(header: Dataset, keyword: str) -> list[str]:
    """The non-empty values of one attribute as strings (multi-valued attributes split)."""
    value = header.get(keyword)
    if value is None:
        return []
    items = value if isinstance(value, pydicom.multival.MultiValue | list | tuple) else [value]
    return [str(item).strip() for item in items if str(item).strip()]
