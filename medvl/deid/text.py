"""Rule-based scrubbing of report text: identifiers become ``XXXX``.

``XXXX`` is the placeholder of the IU X-ray reports, so :func:`medvl.text.clean_report` already
knows it (the ``basic`` style drops it). :func:`scrub_report` replaces, in this order:

1. e-mail addresses;
2. *known* identifiers of the study, when given (:class:`KnownIdentifiers`, filled from the DICOM
   header by :func:`medvl.deid.dicom.known_identifiers`): each part of the patient's and staff
   names (``DOE^JOHN`` -> ``Doe``, ``John``; parts of two letters or more), patient IDs,
   accession numbers and institution names, case-insensitively, as whole words;
3. labelled numbers: accession numbers ("Accession: A123", "Acc #: 55-1"), record numbers
   ("MRN: 123456", "MR#", "Medical record number", "Patient ID", "PID", "NHS number", "SSN",
   "ID: K4829173"); the value must hold a digit, the label stays;
4. phone numbers: labelled ("Tel: 555 0142", "pager 4-1234", "ext. 2231", "fax ...") and
   North-American ten-digit or ``+``-international numbers anywhere;
5. dates: numeric with one separator throughout (``03/17/1958``, ``17.3.58``, ``2019-04-12``,
   ``2019/4/12``), compact DICOM ``20190412``, and with month names (``March 17, 1958``,
   ``17 Mar 1958``, ``17th of March``, ``Mar. 17``, ``March 2019``; names in Title or UPPER case);
6. person names after a label with a colon ("Patient name:", "Patient:", "Attending:",
   "Radiologist:", "Referring physician:", "Technologist:", "cc:"; "Name:" at the start of a
   line), after "signed by", "dictated by", "read by", "reviewed by", "discussed with", ...
   (colon optional), after a title ("Dr.", "Mr", "Mrs", "Ms", "Miss", "Prof.", "Doctor";
   upper-case "MR."/"MS." only with their full stop, so "MR brain" stays), or before a degree
   ("John Smith, MD", "J. Smith M.D.", "PhD", "FRCR", "MBBS"). A name is one to four words one
   space apart: capitalised words, initials or ``^``-joined DICOM names, a word followed by a
   colon excepted ("John Smith MRN: 12" stops before "MRN"); the label, title or degree stays;
7. US social security numbers (``123-45-6789``) and any other run of six or more digits.

What it does not cover (known limits of rules): names with neither label, title nor degree
that are not in :class:`KnownIdentifiers` ("John Smith was seen"); ages (even over 89); times
of day; years on their own ("in 2019"); seven-digit local phone numbers without a label;
street addresses, cities and postcodes; URLs; identifiers of fewer than six digits without a
label; names misspelt in the text. Known-name matching can also remove ordinary words when a
name is one ("White", "Rose"). Review a sample of scrubbed reports before sharing them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

PLACEHOLDER = "XXXX"
MIN_NAME_PART = 2  # shorter name parts (initials) are not matched on their own

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")  # fmt: skip


def _month_pattern() -> str:
    """Month names and abbreviations ("Mar", "Mar.", "March", "Sept"), in Title or UPPER case."""
    forms = []
    for name in _MONTHS:
        for cased in (name, name.upper()):
            forms.append(f"{cased[:3]}(?:{cased[3:]}|\\.)?" if len(cased) > 3 else cased)
    forms += ["Sept\\.?", "SEPT\\.?"]
    return "(?:" + "|".join(sorted(forms, key=len, reverse=True)) + ")(?![A-Za-z])"


_MONTH = _month_pattern()
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_MONTH_NUMBER = r"(?:0?[1-9]|1[0-2])"
_ORDINAL = r"(?:st|nd|rd|th)?"
_TITLE = r"(?:(?:Doctor|DOCTOR|Professor|Prof|PROF|Dr|DR|Mrs|MRS|Mr|Ms|Miss|MISS|Mx)\.?|(?:MR|MS)\.)"
_DEGREE = r"(?:M\.D\.|MD|Ph\.D\.|PhD|FRCR|FRCPC|MBBS|DABR)(?![A-Za-z])"
# A name word: capitalised, an initial, or a DICOM "FAMILY^GIVEN"; never a degree or a label ("MRN:").
_NAME_WORD = rf"(?!{_DEGREE})(?:[A-Z][A-Za-z'’^-]+(?![A-Za-z'’^-])|[A-Z]\.|[A-Z](?=[\s,]))(?![ \t]*[:#])"
_NAME = rf"{_NAME_WORD}(?:,?[ \t]{_NAME_WORD}){{0,3}}"  # words one space apart: wider gaps part fields
_NAME_LABELS = (
    r"patient(?:'s)?\s+name|pt\.?\s+name|full\s+name|patient|attending|radiologist|resident|fellow"
    r"|(?:referring|ordering|reading|requesting)\s+(?:physician|doctor|clinician|provider)"
    r"|physician|provider|technologist|tech|cc"
)
_NAME_VERBS = (
    r"(?:electronically\s+)?signed\s+by|dictated\s+by|transcribed\s+by|reported\s+by|read\s+by"
    r"|reviewed\s+by|verified\s+by|approved\s+by|referred\s+by|ordered\s+by|requested\s+by"
    r"|interpreted\s+by|discussed\s+with|communicated\s+to|called\s+to|notified"
)
_ID_LABELS = (
    r"MRN|MR\s*#|MR\s*No\.?|medical\s+record(?:\s+(?:number|no\.?|#))?|patient\s+ID|pt\.?\s*ID|PID"
    r"|hospital\s+(?:number|no\.?|#)|NHS\s+(?:number|no\.?)|SSN|social\s+security(?:\s+number)?"
    r"|record\s*(?:#|no\.?|number)|ID"
)
_ACCESSION_LABELS = r"accession(?:\s+(?:number|num|no\.?|#))?|acc(?:ession)?\.?\s*(?:#|no\.?|number)|ACC"
_PHONE_LABELS = r"phone|tel|telephone|mobile|pager|pgr|beeper|fax|ext|extension"
_LABEL_SEPARATOR = r"[ \t]*(?:[:#=]|no\.?|number)?[ \t]*"
_LABEL_END = r"(?:\b|(?<=[#.]))"  # "ACC583920X" is a value, not the label "ACC" and "583920X"
_ID_VALUE = r"(?=[A-Za-z0-9/-]*\d)[A-Za-z0-9][A-Za-z0-9/-]{2,}"

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_ACCESSION = re.compile(rf"\b((?i:{_ACCESSION_LABELS}){_LABEL_END}{_LABEL_SEPARATOR}){_ID_VALUE}")
_LABELLED_ID = re.compile(rf"\b((?i:{_ID_LABELS}){_LABEL_END}{_LABEL_SEPARATOR}){_ID_VALUE}")
_LABELLED_PHONE = re.compile(rf"\b((?i:{_PHONE_LABELS})\.?[ \t]*[:#]?[ \t]*)\+?\(?\d[\d()\t .-]{{2,}}\d")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+?1[ .-]?)?(?:\(\d{3}\)|\d{3})[ .-]?\d{3}[ .-]\d{4}(?!\d)"  # (555) 123-4567
    r"|(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?!\d)"  # +44 20 7946 0958
)
_DATES = re.compile(
    "|".join(
        (
            r"\b(?:19|20)\d{2}([-/.])" + _MONTH_NUMBER + r"\1" + _DAY + r"\b",  # 2019-04-12
            r"\b" + _DAY + r"([-/.])" + _DAY + r"\2(?:\d{4}|\d{2})\b",  # 04/12/2019, 12.4.19
            r"\b(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\b",  # 20190412
            rf"\b{_DAY}{_ORDINAL}(?:[ \t]+of)?[ \t-]+{_MONTH}(?:,?[ \t-]+\d{{4}}|[ \t-]+\d{{2}}\b)?",  # 12 Apr 2019
            rf"\b{_MONTH}[ \t]+{_DAY}{_ORDINAL}\b(?:,?[ \t]+\d{{4}}\b)?",  # April 12, 2019
            rf"\b{_MONTH},?[ \t]+\d{{4}}\b",  # April 2019
        )
    )
)
_LABELLED_NAME = re.compile(
    rf"((?:\b(?i:{_NAME_LABELS})|(?m:^)[ \t]*(?i:name))[ \t]*:[ \t]*(?:{_TITLE}[ \t]+)?"
    rf"|\b(?i:{_NAME_VERBS})[ \t]*:?[ \t]*(?:{_TITLE}[ \t]+)?){_NAME}"
)
_TITLED_NAME = re.compile(rf"\b({_TITLE}[ \t]+){_NAME}")
_NAME_WITH_DEGREE = re.compile(rf"\b{_NAME}(,?[ \t]+{_DEGREE})")
_LONG_NUMBER = re.compile(r"\b\d{3}-\d{2}-\d{4}\b|\b\d{6,}\b")


@dataclass(frozen=True)
class KnownIdentifiers:
    """Identifiers known to belong to a report's patient and study (from its DICOM header).

    ``people``: person names as DICOM writes them (``"DOE^JOHN^Q"``) or plain ("John Doe");
    ``ids``: patient IDs and other record numbers; ``accessions``: accession numbers;
    ``places``: institution names and addresses, matched as whole phrases.
    """

    people: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    accessions: tuple[str, ...] = ()
    places: tuple[str, ...] = ()

    def name_parts(self) -> set[str]:
        """Every name part of two letters or more (family, given and middle names)."""
        parts = set()
        for person in self.people:
            components = str(person).split("^")[:3]  # DICOM PN: family^given^middle^prefix^suffix
            for component in components:
                parts.update(word for word in re.split(r"[\s,.-]+", component) if len(word) >= MIN_NAME_PART)
        return parts

    def phrases(self) -> list[str]:
        """All known values to remove, longest first (so a longer value wins over its parts)."""
        values = {*self.name_parts(), *self.ids, *self.accessions, *self.places}
        return sorted((value.strip() for value in values if value and value.strip()), key=len, reverse=True)


def scrub_report(text: str, known: KnownIdentifiers | None = None) -> str:
    """``text`` with names, dates, record and accession numbers, phones and e-mails as ``XXXX``.

    The rules, and what they miss, are listed in the module documentation.
    """
    text = _EMAIL.sub(PLACEHOLDER, text)
    if known is not None:
        text = _scrub_known(text, known.phrases())
    for pattern in (_ACCESSION, _LABELLED_ID, _LABELLED_PHONE):
        text = pattern.sub(_keep_label, text)
    text = _PHONE.sub(PLACEHOLDER, text)
    text = _DATES.sub(PLACEHOLDER, text)
    text = _LABELLED_NAME.sub(_keep_label, text)
    text = _TITLED_NAME.sub(_keep_label, text)
    text = _NAME_WITH_DEGREE.sub(_keep_degree, text)
    return _LONG_NUMBER.sub(PLACEHOLDER, text)


def _scrub_known(text: str, phrases: Iterable[str]) -> str:
    for phrase in phrases:
        words = (re.escape(word) for word in phrase.split())
        pattern = re.compile(r"(?<![A-Za-z0-9])" + r"\s+".join(words) + r"(?![A-Za-z0-9])", re.IGNORECASE)
        text = pattern.sub(PLACEHOLDER, text)
    return text


def _keep_label(match: re.Match[str]) -> str:
    """The label or title (group 1) stays, the name or number after it goes."""
    return match.group(1) + PLACEHOLDER


def _keep_degree(match: re.Match[str]) -> str:
    """The degree (group 1) stays, the name before it goes."""
    return PLACEHOLDER + match.group(1)
