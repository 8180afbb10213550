"""The COVID-19 image data collection (Cohen et al.) as a medvl manifest.

    python -m medvl.data.importers.covid_cxr --data ../shared/data/covid_cxr \\
        --out runs/data/covid_cxr/manifest.jsonl

The folder holds ``metadata.csv`` (one row per image: ``patientid``, ``offset``, ``finding``,
``view``, ``modality``, ``clinical_notes``, ``image``, ...) and the images it names. Each frontal
chest radiograph (modality ``X-ray``, view ``PA``, ``AP`` or ``AP Supine``) becomes one study:

* ``images``: the radiograph, then the lateral radiograph (view ``L``) of the same patient on the
  same day (``offset``) when there is one; absolute paths, the data stays where it is;
* ``report``: the imaging-findings sentences of ``clinical_notes`` (:func:`findings_sentences`);
  a row whose notes hold none is skipped and counted;
* ``split``: from the salted hash of the patient id (:func:`split_of`), so all the images of one
  patient land in one split. The salt is medvl's (:mod:`medvl.privacy`): set ``MEDVL_SALT`` to get
  the same split on another machine;
* ``study_id``: a salted hash of the image's file name; ``meta``: the patient's hash, the
  collection's diagnosis label, the view, the source (DOI, URL: cite it when showing an image)
  and the image's licence (no age, sex, date or patient id).

A few images are listed twice, under two patient ids: the ids are taken as one patient and the
image as one study.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from medvl.data.manifest import SPLITS, ManifestRow, write_manifest
from medvl.errors import ConfigError, ManifestError, MedVLError
from medvl.io.raster import position_from_name
from medvl.io.study import role_rank, view_role
from medvl.privacy import hash_identifier

DATASET = "covid_cxr"
METADATA = "metadata.csv"
REQUIRED_COLUMNS = ("patientid", "offset", "finding", "view", "modality", "clinical_notes", "image")
RADIOGRAPH = "X-ray"  # the collection's modality value for radiographs
LATERAL_VIEW = "L"  # the collection's view value for lateral radiographs
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)  # train, val, test: shares of the patients
SKIPPED_NO_FINDINGS = "no imaging-findings sentence in the notes"
SKIPPED_REPEATED = "image listed again (under another patient id)"


# --------------------------------------------------------------------------- the sentence filter
def _terms(*patterns: str, flags: int = re.IGNORECASE) -> re.Pattern[str]:
    """One regex matching any of ``patterns`` as whole words."""
    return re.compile(r"\b(?:" + "|".join(patterns) + r")\b", flags)


# Words that name an imaging finding on their own (support devices included).
FINDING_TERMS = _terms(
    r"opacit(?:y|ies)", r"opacifications?", r"infiltrat(?:e|es|ion|ions|ive)", r"consolidat\w*",
    r"ground[- ]glass", r"GGOs?", r"effusions?", r"pneumothora(?:x|ces)", r"atelecta\w+", r"cardiomegaly",
    r"air[- ]?space", r"interstitial", r"reticul\w+", r"nodul(?:e|es|ar)", r"bronchograms?", r"patch\w*",
    r"crazy[- ]paving", r"haz(?:e|y|iness)", r"lesions?", r"cavit(?:y|ies|ation)", r"fibro\w+",
    r"emphysema\w*", r"o?edema", r"pneumomediastinum", r"\w*adenopathy", r"radiolucen\w*", r"tubes?",
    r"catheters?",
)
# Words that describe a state ("normal", "clear", "changes"): a finding only next to an imaging
# study or a chest structure ("the chest radiograph was normal", "lungs are clear").
STATE_TERMS = _terms(
    r"(?:ab)?normal\w*", r"clear", r"unremarkable", r"shadow\w*", r"markings?", r"densit(?:y|ies)", r"dense",
    r"changes?", r"involv\w+", r"thicken\w*", r"enlarge\w*", r"prominen\w*", r"pattern", r"distribution",
    r"typical", r"improv\w*", r"progress\w*", r"regress\w*", r"worsen\w*", r"resol\w*", r"pneumonia",
)
STUDY_TERMS = re.compile(
    _terms(r"radiograph\w*", r"radiolog\w*", r"x-?rays?", r"(?:chest |plain )?films?", r"CXR",
           r"computed tomography", r"scans?", r"imaging", r"findings?", r"appearances?").pattern
    + r"|\bCT\b"  # upper case only: "ct" is no word of its own in these notes
)
ANATOMY_TERMS = _terms(
    r"lungs?", r"pulmonary", r"lobes?", r"lobar", r"(?:mid)?zones?", r"(?:peri|infra|supra)?hil(?:um|ar|a)",
    r"bases?", r"basal", r"basilar", r"ap(?:ex|ices|ical)", r"periph\w*", r"pleura\w*",
    r"(?:intra|hemi)?thora(?:x|cic)", r"chest", r"cardiac", r"heart", r"cardiomediastinal", r"mediastin\w*",
    r"costophrenic", r"diaphragm\w*", r"parenchym\w*",
)
# Words of the clinical story (symptoms, examination, vital signs, laboratory values, exposure,
# intensive care, outcome): a finding sentence that holds one keeps only its finding clauses.
CLINICAL_TERMS = _terms(
    r"history", r"fever\w*", r"febrile", r"cough\w*", r"dyspn\w+", r"short(?:ness)? of breath", r"chills?",
    r"fatigue", r"myalgi\w+", r"pain", r"diarrh\w+", r"sore throat", r"temperature", r"saturation",
    r"SpO2", r"oxygen", r"hypox\w+", r"laborator\w+", r"blood", r"lymphocyt\w*", r"lymphopeni\w*",
    r"leukocyt\w*", r"platelets?", r"C-reactive", r"CRP", r"procalcitonin", r"d-dimer", r"mm ?Hg", r"mg",
    r"mmol", r"travel\w*", r"returned", r"flew", r"flown", r"contacts?", r"expos\w+", r"auscultation",
    r"breath sounds", r"rales", r"crackles", r"intubat\w+", r"ventilat\w+", r"died", r"death", r"discharged",
    r"test(?:s|ed)?", r"PCR", r"swabs?", r"admitted", r"hospitali[sz]\w*", r"ICU", r"intensive care", r"emergency",
)

_MONTH = (
    r"\b(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_DAY = r"\b\d{1,2}(?:st|nd|rd|th)?\b"
_YEAR = r"\d{4}\b"
# "On January 22, 2020,", "3 March", "Feb 2020", "2020-01-22", "22/01/2020", "in 2004".
_DATE = re.compile(
    r"(?:\b(?i:on|in|since|from|by|until|dated)\s+)?"
    rf"(?:{_MONTH}\s+{_DAY}(?:,?\s+{_YEAR})?"
    rf"|{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR})?"
    rf"|{_MONTH},?\s+{_YEAR}"
    r"|\b\d{4}-\d{1,2}-\d{1,2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b"
    r"|\b(?i:in|since|during)\s+(?:19|20)\d{2}\b(?![-/]))"
    r",?"
)
# "65-year-old", "65 years old", "aged 65", "65 yo".
_AGE = re.compile(
    r"\b(?:aged\s+)?\d{1,3}(?:\s+|-)(?:years?|yrs?)(?:\s+|-)old\b|\baged\s+\d{1,3}\b|\b\d{1,3}[\s-]*y/?o\b",
    re.IGNORECASE,
)
# Asides in parentheses (one level of nesting) that are dropped: figure apparatus ("(a)", "(b, c)",
# "(arrows)", "(Fig. 2)", "(not shown)") and clinical story ("(normal white blood cell (WBC) count)").
_ASIDE = re.compile(r"\s*\((?:[^()]|\([^()]*\))*\)")
_FIGURE_ASIDE = re.compile(
    r"^\(\s*[a-h](?:\s*(?:,|and|-)\s*[a-h])*\s*\)$|\b(?:arrows?|arrowheads?|fig(?:ure)?s?|panels?|not shown)\b",
    re.IGNORECASE,
)
# Panel labels opening a sentence ("A, Chest radiograph ...", "B and C: ...").
_PANEL_LABEL = re.compile(r"^[A-H](?:\s*(?:,|and|-)\s*[A-H])*[,:]\s+")
# Sentence ends: ". " before a capital, or a period glued to the next sentence ("fever.Increasing").
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z])|(?<=[a-z]{2}[.!?])(?=[A-Z][a-z])")
# Where a sentence mixing findings and clinical story is cut: punctuation inside it, and the
# words that open a clause ("fever, and CT showed ...", "... on ventilation with consolidation").
_CLAUSE_BREAK = re.compile(r"\s*[,;:]\s*|\s+(?=(?:while|whereas|although|which|with)\s)", re.IGNORECASE)
_LEADING_CONJUNCTION = re.compile(r"^(?:and|but|while|whereas|although|which|with)\s+", re.IGNORECASE)


def findings_sentences(notes: str) -> str:
    """The imaging-findings sentences of free-text clinical notes, dates and ages removed.

    A sentence is kept when it names a finding (opacity, consolidation, ground-glass, effusion,
    ...; :data:`FINDING_TERMS`) or a state ("normal", "clear", "changes") of an imaging study or
    a chest structure. The clinical story (history, symptoms, examination, laboratory values,
    exposure, intensive care, outcome; :data:`CLINICAL_TERMS`) is dropped: a sentence mixing both
    keeps only its finding clauses. Calendar dates, ages, figure panel labels and asides in
    parentheses about the figure ("(arrows)") or the clinical story are removed from what is kept.
    Returns ``""`` when no sentence is kept.
    """
    text = " ".join(notes.replace("\ufffd", " ").split())  # U+FFFD: characters lost by the source
    text = _ASIDE.sub(_kept_aside, text)
    for pattern in (_DATE, _AGE):
        text = pattern.sub("", text)
    kept = [_finding_part(_PANEL_LABEL.sub("", sentence)) for sentence in _SENTENCE_BREAK.split(text)]
    return " ".join(_tidy(sentence) for sentence in kept if sentence)


def is_finding(text: str) -> bool:
    """Whether ``text`` names an imaging finding (see :func:`findings_sentences`)."""
    if FINDING_TERMS.search(text):
        return True
    return bool(STATE_TERMS.search(text) and (STUDY_TERMS.search(text) or ANATOMY_TERMS.search(text)))


def _kept_aside(match: re.Match[str]) -> str:
    """A parenthesis as it is, or nothing when it holds figure apparatus or clinical story."""
    aside = match.group().strip()
    return "" if _FIGURE_ASIDE.search(aside) or CLINICAL_TERMS.search(aside) else match.group()


def _finding_part(sentence: str) -> str:
    """The sentence if it is a finding free of clinical story, else its clauses that are."""
    if not is_finding(sentence):
        return ""
    if not CLINICAL_TERMS.search(sentence):
        return sentence
    clauses = (_LEADING_CONJUNCTION.sub("", clause) for clause in _CLAUSE_BREAK.split(sentence))
    return ", ".join(clause for clause in clauses if is_finding(clause) and not CLINICAL_TERMS.search(clause))


def _tidy(sentence: str) -> str:
    """One space between words, none before punctuation or inside parentheses, a capital first
    and a full stop last."""
    sentence = " ".join(re.sub(r"\(\s*\)", " ", sentence).split())  # "()" left by a removed age or date
    sentence = re.sub(r"\s+([,.;:!?)])|(\()\s+", r"\1\2", sentence)
    sentence = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", sentence).strip(" ,;:")
    if not sentence.endswith((".", "!", "?")):
        sentence += "."
    return sentence[:1].upper() + sentence[1:]


# --------------------------------------------------------------------------- splits and the manifest
def split_of(key: str, fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0) -> str:
    """``train``, ``val`` or ``test`` for ``key`` (a patient id), from its salted hash.

    The hash places the key uniformly in [0, 1); ``fractions`` (train, val, test) cut that
    interval. The same key always gets the same split, whatever other keys there are.
    """
    position = int(hash_identifier(f"{DATASET}:split:{seed}:{key}"), 16) / 16**16
    bound = 0.0
    for split, fraction in zip(SPLITS, fractions):
        bound += fraction
        if position < bound:
            return split
    return SPLITS[-1]


@dataclass
class CovidImportSummary:
    """What :func:`covid_cxr_manifest` wrote, and what it skipped and why."""

    manifest: Path
    studies: Counter[str] = field(default_factory=Counter)  # by split
    patients: dict[str, set[str]] = field(default_factory=dict)  # patient hashes by split
    with_lateral: int = 0  # studies with a lateral view as well
    skipped: Counter[str] = field(default_factory=Counter)  # metadata rows by reason

    def add(self, row: ManifestRow) -> None:
        """Count a written study."""
        self.studies[row.split] += 1
        self.patients.setdefault(row.split, set()).add(row.meta["patient_hash"])
        self.with_lateral += len(row.images) > 1

    def lines(self) -> list[str]:
        """A short human-readable account."""
        total = sum(self.studies.values())
        lines = [f"wrote {total} studies ({self.with_lateral} with a lateral view) to {self.manifest}"]
        lines += [
            f"  {split:<5} {self.studies[split]:>4} studies, {len(self.patients.get(split, ())):>3} patients"
            for split in SPLITS
        ]
        lines += [f"  skipped {count:>4} rows: {reason}" for reason, count in self.skipped.most_common()]
        return lines


def covid_cxr_manifest(
    folder: str | Path,
    out_manifest: str | Path,
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> CovidImportSummary:
    """Write a manifest of the frontal radiographs of the covid_cxr ``folder`` (see the module notes).

    ``fractions`` are the train / val / test shares of the patients; ``seed`` reshuffles which
    patient goes where. Raises :class:`ManifestError` for a folder without a readable
    ``metadata.csv``, or when no study is left; :class:`ConfigError` for bad fractions.
    """
    _check_fractions(fractions)
    folder = Path(folder).resolve()
    records = _read_metadata(folder)
    laterals = _lateral_images(records, folder)
    patient_of = _same_patients(records)
    summary = CovidImportSummary(Path(out_manifest))
    rows: list[ManifestRow] = []
    listed: set[str] = set()
    for record in records:
        image = folder / record["image"]
        reason = SKIPPED_REPEATED if record["image"] in listed else _skip_reason(record, image)
        listed.add(record["image"])
        report = "" if reason else findings_sentences(record["clinical_notes"])
        if reason or not report:
            summary.skipped[reason or SKIPPED_NO_FINDINGS] += 1
            continue
        patient = patient_of[record["patientid"]]
        row = ManifestRow(
            study_id=_study_id(record["image"]),
            images=_views(image, laterals.get(_day(record))),
            report=report,
            split=split_of(patient, fractions, seed),
            meta=_meta(record, patient),
        )
        rows.append(row)
        summary.add(row)
    if not rows:
        raise ManifestError("no frontal radiograph with imaging findings in the notes", folder / METADATA)
    write_manifest(rows, out_manifest)
    return summary


def _check_fractions(fractions: Sequence[float]) -> None:
    if len(fractions) != len(SPLITS) or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ConfigError(
            f"fractions: expected {len(SPLITS)} shares (train, val, test) >= 0 summing to 1, got {fractions!r}"
        )


def _read_metadata(folder: Path) -> list[dict[str, str]]:
    path = folder / METADATA
    if not path.is_file():
        raise ManifestError(f"no {METADATA} here (expected the covid_cxr folder)", folder)
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [column for column in REQUIRED_COLUMNS if column not in (reader.fieldnames or ())]
            records = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ManifestError(f"cannot read: {exc}", path) from exc
    if missing:
        raise ManifestError(f"missing column(s): {', '.join(missing)}", path)
    return records


def _same_patients(records: list[dict[str, str]]) -> dict[str, str]:
    """Each patient id -> the id its split is drawn from. The collection lists a few images under
    two patient ids; ids that share an image are one patient, so that no image or patient is in
    two splits."""
    parent: dict[str, str] = {}

    def root(patient: str) -> str:
        while parent.setdefault(patient, patient) != patient:
            patient = parent[patient]
        return patient

    first_patient_of_image: dict[str, str] = {}
    for record in records:
        first = first_patient_of_image.setdefault(record["image"], record["patientid"])
        parent[root(record["patientid"])] = root(first)
    return {patient: root(patient) for patient in parent}


def _skip_reason(record: dict[str, str], image: Path) -> str | None:
    """Why a metadata row is no study of its own (``None`` when it is one)."""
    if record["modality"] != RADIOGRAPH:
        return f"modality {record['modality'] or 'missing'}"
    if view_role(record["view"]) != "frontal":
        return f"view {record['view'] or 'missing'} (not frontal)"
    if not image.is_file():
        return "image file missing"
    return None


def _day(record: dict[str, str]) -> tuple[str, str] | None:
    """(patient, offset in days): the radiographs of one visit; ``None`` when the offset is unknown."""
    offset = record["offset"].strip()
    return (record["patientid"], offset) if offset else None


def _lateral_images(records: list[dict[str, str]], folder: Path) -> dict[tuple[str, str], Path]:
    """The first lateral radiograph of each (patient, day), where the file exists."""
    laterals: dict[tuple[str, str], Path] = {}
    for record in records:
        day = _day(record)
        image = folder / record["image"]
        if record["modality"] == RADIOGRAPH and record["view"] == LATERAL_VIEW and day and image.is_file():
            laterals.setdefault(day, image)
    return laterals


def _views(frontal: Path, lateral: Path | None) -> tuple[Path, ...]:
    """The study's images: the frontal, then the lateral if medvl will read them in that order.

    A PNG's view role comes from the words of its file name (:func:`medvl.io.raster.position_from_name`)
    and views are read frontal, lateral, other; a lateral whose name ranks before the frontal's
    would take the frontal's slot, so it is left out.
    """
    if lateral is None or _name_rank(lateral) < _name_rank(frontal):
        return (frontal,)
    return (frontal, lateral)


def _name_rank(path: Path) -> int:
    return role_rank(view_role(position_from_name(path)))


def _study_id(image: str) -> str:
    """A study id that does not show the image's file name: a salted hash of it."""
    return f"{DATASET}-{hash_identifier(f'{DATASET}:image:{image}')}"


def _meta(record: dict[str, str], patient: str) -> dict[str, str]:
    """The non-identifying extras of a study (empty values left out)."""
    meta = {
        "dataset": DATASET,
        "patient_hash": hash_identifier(f"{DATASET}:patient:{patient}"),
        "diagnosis": record["finding"],
        "view": record["view"],
        "doi": record.get("doi", ""),
        "url": record.get("url", ""),
        "license": record.get("license", ""),
    }
    return {key: value.strip() for key, value in meta.items() if value and value.strip()}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m medvl.data.importers.covid_cxr --data FOLDER --out MANIFEST``."""
    parser = argparse.ArgumentParser(
        prog="python -m medvl.data.importers.covid_cxr",
        description="Write a medvl manifest of the frontal radiographs of the COVID-19 image data collection.",
    )
    parser.add_argument("--data", type=Path, required=True, help="the covid_cxr folder (metadata.csv, images/)")
    parser.add_argument("--out", type=Path, required=True, help="the manifest to write (.jsonl or .csv)")
    parser.add_argument("--seed", type=int, default=0, help="another seed sends other patients to each split")
    args = parser.parse_args(argv)
    try:
        summary = covid_cxr_manifest(args.data, args.out, seed=args.seed)
    except MedVLError as error:
        print(f"medvl: error: {error}", file=sys.stderr)
        return 2
    print("\n".join(summary.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
