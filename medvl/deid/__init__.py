"""De-identification before anything is written or logged.

* :mod:`medvl.deid.dicom` - DICOM headers through the PS3.15 Basic Profile (``dicognito``), with
  salted per-patient pseudonyms, per-patient date shifts and consistent UIDs;
  :func:`deidentify_file`, :func:`deidentify_dataset`, :func:`patient_pseudonym`;
* :mod:`medvl.deid.text` - rule-based scrubbing of report text (:func:`scrub_report`).
"""

from medvl.deid.dicom import (
    BurnedInAnnotationError,
    deidentify_dataset,
    deidentify_file,
    known_identifiers,
    patient_pseudonym,
)
from medvl.deid.text import PLACEHOLDER, KnownIdentifiers, scrub_report

__all__ = [
    "PLACEHOLDER",
    "BurnedInAnnotationError",
    "KnownIdentifiers",
    "deidentify_dataset",
    "deidentify_file",
    "known_identifiers",
    "patient_pseudonym",
    "scrub_report",
]
