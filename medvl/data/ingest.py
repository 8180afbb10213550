"""`medvl ingest`: a PACS export (DICOM tree) and a RIS export (reports) -> a de-identified manifest.

    summary = ingest("pacs_export/", "reports.csv", "data/site", IngestConfig.from_yaml("ingest.yaml"))

Steps, each in one function:

1. walk ``dicom_root`` (any nesting), read every DICOM header (``stop_before_pixels``) and group
   the image files by StudyInstanceUID and SeriesInstanceUID (:func:`scan_tree`);
2. keep the series that pass the rules of :class:`IngestConfig` (modality, view position,
   SeriesDescription patterns, BurnedInAnnotation, fewest slices), at most one per view role
   (frontal, lateral, other: the one with most slices) (:func:`select_series`);
3. join each study's report by AccessionNumber or StudyInstanceUID (:func:`read_reports`);
4. de-identify the chosen files (:mod:`medvl.deid.dicom`) into
   ``out_dir/studies/<study>/<series>/<nnnn>.dcm`` (folder names are salted hashes) and scrub the
   report (:mod:`medvl.deid.text`);
5. split by patient: the salted patient pseudonym decides train/val/test, so one patient is
   never in two splits and keeps its split in later runs with the same salt;
6. write ``manifest.jsonl`` and ``ingest_summary.json`` (counts of what was skipped and why).

Resumable: a study folder is written whole (:func:`medvl.files.atomic_directory`) with its
``done.json`` marker last; a rerun reuses a study whose marker lists the same chosen series
(same folders, same image counts), and gives the same manifest. Reports and splits are
recomputed on each run (they are cheap), so a corrected report or new split fractions apply.

Nothing identifying is logged, printed or written outside the de-identified copies: not the
input paths (PACS folder names are often patient names or IDs), not UIDs, not accession numbers.
"""

from __future__ import annotations

import csv
import difflib
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from tqdm.auto import tqdm

from medvl.data.manifest import SPLITS, ManifestRow, write_manifest
from medvl.deid.dicom import deidentify_file, known_identifiers, patient_pseudonym
from medvl.deid.text import scrub_report
from medvl.errors import ConfigError, MedVLError
from medvl.files import atomic_directory, atomic_write_text, read_yaml_config
from medvl.io.dicom import is_dicom_file, read_header
from medvl.io.study import role_rank, view_role
from medvl.privacy import hash_identifier

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"
SUMMARY_NAME = "ingest_summary.json"
STUDIES_FOLDER = "studies"
DONE_MARKER = "done.json"
REPORT_KEYS = {"accession": "AccessionNumber", "study_uid": "StudyInstanceUID"}
RADIOGRAPH_MODALITIES = ("CR", "DX")  # projection images: the only ones filtered by view position
REPORT_SUFFIXES = (".csv", ".jsonl")


# --- configuration -------------------------------------------------------------------------------
@dataclass(frozen=True)
class IngestConfig:
    """Which series to keep, how reports are joined, and how patients are split.

    Description patterns are regular expressions searched case-insensitively in
    SeriesDescription; an empty ``include_descriptions`` accepts every description, an empty
    ``view_positions`` every view. ``min_slices`` maps a modality to the fewest images
    (files x frames) one of its series needs.
    """

    modalities: tuple[str, ...] = ("CR", "DX")
    view_positions: tuple[str, ...] = ("PA", "AP", "LL", "RL", "LATERAL")
    include_descriptions: tuple[str, ...] = ()
    exclude_descriptions: tuple[str, ...] = ("scout", "localizer", "topogram", "dose", "screen ?save")
    min_slices: dict[str, int] = field(default_factory=lambda: {"CT": 16, "MR": 16})
    report_key: str = "accession"
    report_key_column: str = "accession"
    report_text_column: str = "report"
    require_report: bool = True
    splits: dict[str, float] = field(default_factory=lambda: {"train": 0.8, "val": 0.1, "test": 0.1})

    def __post_init__(self) -> None:
        for name in ("modalities", "view_positions", "include_descriptions", "exclude_descriptions"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(item, str) for item in value):
                raise ConfigError(f"{name}: expected a list of strings, got {value!r}")
            upper = name in ("modalities", "view_positions")
            object.__setattr__(self, name, tuple(item.strip().upper() if upper else item for item in value))
        for pattern in (*self.include_descriptions, *self.exclude_descriptions):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"description pattern {pattern!r} is not a valid regular expression: {exc}") from exc
        if not isinstance(self.min_slices, Mapping) or not all(
            isinstance(count, int) and not isinstance(count, bool) and count >= 1 for count in self.min_slices.values()
        ):
            raise ConfigError(
                f"min_slices: expected a mapping of modality to a positive count, got {self.min_slices!r}"
            )
        object.__setattr__(self, "min_slices", {str(k).upper(): v for k, v in self.min_slices.items()})
        if self.report_key not in REPORT_KEYS:
            raise ConfigError(f"report_key: expected one of {', '.join(REPORT_KEYS)}, got {self.report_key!r}")
        _check_splits(self.splits)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> IngestConfig:
        """Build from a YAML mapping; unknown keys or bad values raise :class:`ConfigError`."""
        values = dict(values or {})
        names = [f.name for f in fields(cls)]
        for key in values:
            if key not in names:
                close = difflib.get_close_matches(str(key), names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(names)}"
                raise ConfigError(f"{key}: unknown key{hint}")
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path) -> IngestConfig:
        """Read and check a YAML ingest config."""
        return read_yaml_config(path, cls.from_dict)


def _check_splits(splits: Any) -> None:
    if not isinstance(splits, Mapping) or not splits or set(splits) - set(SPLITS):
        raise ConfigError(f"splits: expected fractions for {'/'.join(SPLITS)}, got {splits!r}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in splits.values()):
        raise ConfigError(f"splits: fractions must be numbers >= 0, got {splits!r}")
    if abs(sum(splits.values()) - 1.0) > 1e-6:
        raise ConfigError(f"splits: fractions must add up to 1, got {sum(splits.values()):g}")


# --- what the tree holds -------------------------------------------------------------------------
@dataclass(frozen=True)
class Instance:
    """One DICOM image file: where it is and how it sorts in its series."""

    path: Path
    sop_uid: str
    instance_number: int
    frames: int
    burned_in: bool  # BurnedInAnnotation is YES: text may be written into the pixels


@dataclass
class Series:
    """The image files of one SeriesInstanceUID, and the header of its first file."""

    uid: str
    header: Dataset
    instances: list[Instance] = field(default_factory=list)

    @property
    def modality(self) -> str:
        return str(self.header.get("Modality", "")).strip().upper()

    @property
    def view_position(self) -> str:
        return str(self.header.get("ViewPosition", "")).strip().upper()

    @property
    def description(self) -> str:
        return str(self.header.get("SeriesDescription", "")).strip()

    @property
    def slices(self) -> int:
        return sum(instance.frames for instance in self.instances)

    @property
    def role(self) -> str:
        return view_role(self.view_position)

    @property
    def series_id(self) -> str:
        """The salted hash naming the series' output folder."""
        return hash_identifier(self.uid)


@dataclass
class StudyFiles:
    """The series of one StudyInstanceUID found in the tree."""

    uid: str
    series: dict[str, Series] = field(default_factory=dict)

    @property
    def study_id(self) -> str:
        """The salted hash of the StudyInstanceUID: the manifest's ``study_id`` and folder name."""
        return hash_identifier(self.uid)

    @property
    def header(self) -> Dataset:
        """The header of the study's first series (patient and study attributes)."""
        return next(iter(self.series.values())).header


@dataclass
class IngestSummary:
    """What an ingest run found, wrote and skipped (counts only, never identifiers)."""

    files: Counter[str] = field(default_factory=Counter)
    studies_found: int = 0
    studies_written: int = 0
    studies_resumed: int = 0
    studies_skipped: Counter[str] = field(default_factory=Counter)
    series_excluded: Counter[str] = field(default_factory=Counter)
    splits: Counter[str] = field(default_factory=Counter)
    patients: int = 0
    manifest: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping, written as ``ingest_summary.json``."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("files", "studies_skipped", "series_excluded"):
            values[name] = dict(sorted(values[name].items()))
        values["splits"] = {split: self.splits.get(split, 0) for split in SPLITS}
        return values

    def describe(self) -> str:
        """A few lines for the command line."""
        ingested = self.studies_written + self.studies_resumed
        splits = ", ".join(f"{split} {self.splits.get(split, 0)}" for split in SPLITS)
        lines = [
            (
                f"ingested {ingested} of {self.studies_found} studies ({self.patients} patients; {splits}); "
                f"{self.studies_written} written now, {self.studies_resumed} already done"
            ),
            f"manifest: {self.manifest}" if self.manifest else "no manifest written: no study was ingested",
        ]
        for title, counts in (
            ("studies skipped", self.studies_skipped),
            ("series excluded", self.series_excluded),
            ("files", self.files),
        ):
            if counts:
                lines.append(f"{title}: " + ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items())))
        return "\n".join(lines)


# --- 1. walking the tree -------------------------------------------------------------------------
def scan_tree(root: Path, summary: IngestSummary, progress: bool = True) -> list[StudyFiles]:
    """Read every file's header under ``root``; DICOM images grouped by study and series.

    Files that are not DICOM, unreadable, without an image, without study or series UID, or
    repeating an SOPInstanceUID already seen are counted in ``summary.files`` by reason.
    """
    paths = sorted(path for path in root.rglob("*") if path.is_file())
    studies: dict[str, StudyFiles] = {}
    seen_instances: set[str] = set()
    for path in tqdm(paths, desc="reading headers", unit="file", disable=not progress):
        reason, header = _read_image_header(path)
        if reason is None and str(header.SOPInstanceUID) in seen_instances:
            reason = "duplicate SOPInstanceUID"
        summary.files[reason or "DICOM image"] += 1
        if reason is not None:
            continue
        seen_instances.add(str(header.SOPInstanceUID))
        study = studies.setdefault(str(header.StudyInstanceUID), StudyFiles(str(header.StudyInstanceUID)))
        series = study.series.setdefault(str(header.SeriesInstanceUID), Series(str(header.SeriesInstanceUID), header))
        series.instances.append(
            Instance(
                path=path,
                sop_uid=str(header.SOPInstanceUID),
                instance_number=_integer(header.get("InstanceNumber")),
                frames=max(1, _integer(header.get("NumberOfFrames"), default=1)),
                burned_in=str(header.get("BurnedInAnnotation", "")).strip().upper() == "YES",
            )
        )
    return sorted(studies.values(), key=lambda study: study.study_id)


def _read_image_header(path: Path) -> tuple[str | None, Dataset | None]:
    """``(None, header)`` for a DICOM image file, else ``(reason it is left out, None)``."""
    try:
        if not is_dicom_file(path):
            return "not DICOM", None
        header = read_header(path)
    except OSError:
        return "unreadable file", None
    except MedVLError:
        return "unreadable DICOM", None
    if "Rows" not in header:
        return "DICOM without image", None
    if not all(str(header.get(key, "")).strip() for key in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")):
        return "DICOM without study, series or instance UID", None
    return None, header


def _integer(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# --- 2. choosing series --------------------------------------------------------------------------
def exclusion_reason(series: Series, config: IngestConfig) -> str | None:
    """Why the rules leave ``series`` out, or ``None`` when it may be used."""
    if series.modality not in config.modalities:
        return "modality not selected"
    if any(instance.burned_in for instance in series.instances):
        return "burned-in annotation"
    if (
        config.view_positions
        and series.modality in RADIOGRAPH_MODALITIES
        and series.view_position not in config.view_positions
    ):
        return "view position not selected"
    description = series.description
    if config.include_descriptions and not any(
        re.search(pattern, description, re.IGNORECASE) for pattern in config.include_descriptions
    ):
        return "description not included"
    if any(re.search(pattern, description, re.IGNORECASE) for pattern in config.exclude_descriptions):
        return "description excluded"
    if series.slices < config.min_slices.get(series.modality, 1):
        return "too few slices"
    return None


def select_series(study: StudyFiles, config: IngestConfig, summary: IngestSummary) -> list[Series]:
    """The series to use, frontal then lateral then other; one per role, the one with most slices.

    Every series left out is counted in ``summary.series_excluded`` by reason.
    """
    best: dict[str, Series] = {}
    for series in sorted(study.series.values(), key=_preference):
        reason = exclusion_reason(series, config)
        if reason is None and series.role in best:
            reason = "another series of the same view role chosen"
        if reason is not None:
            summary.series_excluded[reason] += 1
            continue
        best[series.role] = series
    return sorted(best.values(), key=lambda series: role_rank(series.role))


def _preference(series: Series) -> tuple[int, int, str]:
    """Most slices first, then the lower SeriesNumber, then a stable hash."""
    return (-series.slices, _integer(series.header.get("SeriesNumber"), default=1 << 30), series.series_id)


# --- 3. reports ----------------------------------------------------------------------------------
def read_reports(path: Path, key_column: str, text_column: str) -> dict[str, str]:
    """Report text by key (accession number or StudyInstanceUID) from a ``.csv`` or ``.jsonl`` file.

    Rows sharing a key (addenda) are joined by a blank line, in file order; rows with an empty
    key or text are ignored. Errors name the file, the line and the columns, never a value.
    """
    if path.suffix.lower() not in REPORT_SUFFIXES:
        raise ConfigError(f"reports must be a {' or '.join(REPORT_SUFFIXES)} file", path)
    if not path.is_file():
        raise ConfigError("reports file not found", path)
    records = _csv_records(path) if path.suffix.lower() == ".csv" else _jsonl_records(path)
    texts: dict[str, list[str]] = {}
    for where, record in records:
        for column in (key_column, text_column):
            if column not in record:
                raise ConfigError(f"no column {column!r}; columns: {', '.join(map(str, record))}", where)
        key, text = (str(record[column] or "").strip() for column in (key_column, text_column))
        if key and text:
            texts.setdefault(key, []).append(text)
    return {key: "\n\n".join(parts) for key, parts in texts.items()}


def _csv_records(path: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:  # utf-8-sig: spreadsheets add a BOM
        reader = csv.DictReader(handle)
        for record in reader:
            yield f"{path}:{reader.line_num}", record


def _jsonl_records(path: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"malformed JSON: {exc.msg} at column {exc.colno}", where) from exc
            if not isinstance(record, dict):
                raise ConfigError(f"expected a JSON object, got {type(record).__name__}", where)
            yield where, record


# --- 4. writing a study --------------------------------------------------------------------------
def study_marker(chosen: list[Series]) -> dict[str, Any]:
    """What a finished study folder holds: its series folders and their facts (no identifiers)."""
    return {
        "images": [series.series_id for series in chosen],
        "series": [
            {"modality": series.modality, "view_position": series.view_position or None, "images": series.slices}
            for series in chosen
        ],
    }


def write_study(chosen: list[Series], folder: Path) -> None:
    """De-identify the chosen series into ``folder``, replaced whole, with its done marker last.

    Each series becomes ``<series hash>/<nnnn>.dcm`` in InstanceNumber order.
    """
    with atomic_directory(folder) as tmp:
        for series in chosen:
            ordered = sorted(series.instances, key=lambda item: (item.instance_number, hash_identifier(item.sop_uid)))
            for number, instance in enumerate(ordered, start=1):
                deidentify_file(instance.path, tmp / series.series_id / f"{number:04d}.dcm")
        atomic_write_text(tmp / DONE_MARKER, json.dumps(study_marker(chosen), indent=2) + "\n")


def is_done(folder: Path, chosen: list[Series]) -> bool:
    """Whether a previous run finished ``folder`` with these same series (a rerun skips it)."""
    try:
        marker = json.loads((folder / DONE_MARKER).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return marker == study_marker(chosen) and all((folder / image).is_dir() for image in marker["images"])


# --- 5. splits -----------------------------------------------------------------------------------
def patient_split(patient: str, fractions: Mapping[str, float]) -> str:
    """The split of a patient: its hex pseudonym read as a number in [0, 1) against the fractions."""
    position = int(patient, 16) / 16 ** len(patient)
    cumulative = 0.0
    for split in SPLITS:
        cumulative += fractions.get(split, 0.0)
        if position < cumulative:
            return split
    return [split for split in SPLITS if fractions.get(split, 0.0) > 0][-1]  # rounding at the top end


# --- the whole run -------------------------------------------------------------------------------
def ingest(
    dicom_root: str | Path,
    reports_path: str | Path,
    out_dir: str | Path,
    config: IngestConfig | None = None,
    *,
    progress: bool = True,
) -> IngestSummary:
    """De-identify a DICOM tree and its reports into ``out_dir`` with a patient-split manifest.

    Writes ``out_dir/manifest.jsonl`` (when at least one study is ingested),
    ``out_dir/ingest_summary.json`` and ``out_dir/studies/``; returns the summary. A rerun into
    the same ``out_dir`` reuses the studies already written.
    """
    config = config or IngestConfig()
    dicom_root = Path(dicom_root)
    out_dir = Path(out_dir).resolve()  # absolute: the manifest stores the paths inside it relative to it
    if not dicom_root.is_dir():
        raise ConfigError("DICOM folder not found", dicom_root)
    reports = read_reports(Path(reports_path), config.report_key_column, config.report_text_column)
    summary = IngestSummary()
    studies = scan_tree(dicom_root, summary, progress)
    summary.studies_found = len(studies)
    rows = []
    for study in tqdm(studies, desc="de-identifying studies", unit="study", disable=not progress):
        row = _ingest_study(study, reports, out_dir, config, summary)
        if row is not None:
            rows.append(row)
    summary.patients = len({row.meta["patient"] for row in rows})
    summary.splits = Counter(row.split for row in rows)
    if rows:
        write_manifest(rows, out_dir / MANIFEST_NAME)
        summary.manifest = str(out_dir / MANIFEST_NAME)
    else:
        logger.warning("no study was ingested: no manifest written (see %s)", out_dir / SUMMARY_NAME)
    atomic_write_text(out_dir / SUMMARY_NAME, json.dumps(summary.to_dict(), indent=2) + "\n")
    return summary


def _ingest_study(
    study: StudyFiles, reports: Mapping[str, str], out_dir: Path, config: IngestConfig, summary: IngestSummary
) -> ManifestRow | None:
    """One study: choose, join, de-identify (or reuse), and its manifest row; ``None`` if skipped."""
    chosen = select_series(study, config, summary)
    if not chosen:
        summary.studies_skipped["no series passed the rules"] += 1
        return None
    key = str(study.header.get(REPORT_KEYS[config.report_key], "")).strip()
    report = reports.get(key, "") if key else ""
    if not report and config.require_report:
        summary.studies_skipped["no report"] += 1
        return None
    folder = out_dir / STUDIES_FOLDER / study.study_id
    if is_done(folder, chosen):
        summary.studies_resumed += 1
    else:
        try:
            write_study(chosen, folder)
        except MedVLError as exc:  # its message names an input path: log the study hash only
            summary.studies_skipped[f"unreadable ({type(exc).__name__})"] += 1
            logger.warning("study %s skipped: %s", study.study_id, type(exc).__name__)
            return None
        summary.studies_written += 1
    patient = patient_pseudonym(study.header)
    known = known_identifiers(series.header for series in study.series.values())
    return ManifestRow(
        study_id=study.study_id,
        images=tuple(folder / series.series_id for series in chosen),
        report=scrub_report(report, known),
        split=patient_split(patient, config.splits),
        meta={"patient": patient, "series": study_marker(chosen)["series"]},
    )
