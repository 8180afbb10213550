"""Manifests: one row per study (image paths, report, split, optional findings and masks).

Two spellings of one format, chosen by the file's extension:

* JSON Lines (``.jsonl``, preferred), one object per line::

    {"study_id": "phantom-000001",
     "images": ["studies/phantom-000001/frontal.png", "studies/phantom-000001/lateral.png"],
     "report": "...", "split": "train",
     "findings": [{"kind": "pleural_effusion", "side": "left", ...}],
     "masks": "masks/phantom-000001.npz"}

* CSV (``.csv``) with the same columns; ``images`` joined by ``;``, ``findings`` and ``meta``
  as JSON strings, empty cells for absent optional values.

Columns: ``study_id`` (unique), ``images`` (one or more paths, each anything
:func:`medvl.io.load_study` reads: a file or a DICOM series folder), ``split``
(``train``/``val``/``test``), ``report`` (may be empty only when reports are not required, as
for inference), and the optional ``findings`` (list of dicts, see :mod:`medvl.findings`),
``masks`` (an ``.npz`` of boolean arrays keyed ``view{v}_finding{f}``: ``v`` counts the views
in the order the ``images`` are listed, ``f`` indexes ``findings``) and ``meta`` (a dict of
non-identifying extras). Relative paths are relative to the manifest's folder. Any other column
is an error, so a typo such as ``reprot`` cannot pass silently.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medvl.errors import ManifestError, MedVLError
from medvl.files import atomic_write_text
from medvl.findings import Finding

SPLITS = ("train", "val", "test")
COLUMNS = ("study_id", "images", "report", "split", "findings", "masks", "meta")
REQUIRED_COLUMNS = ("study_id", "images", "split")
CSV_LIST_SEPARATOR = ";"
FORMATS = (".jsonl", ".csv")


@dataclass(frozen=True)
class ManifestRow:
    """One study of a manifest, with absolute paths."""

    study_id: str
    images: tuple[Path, ...]
    report: str
    split: str
    findings: tuple[dict[str, Any], ...] = ()
    masks: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, relative_to: Path | None = None) -> dict[str, Any]:
        """The row as a manifest record; paths inside ``relative_to`` are written relative to it."""
        record: dict[str, Any] = {
            "study_id": self.study_id,
            "images": [_portable_path(path, relative_to) for path in self.images],
            "report": self.report,
            "split": self.split,
        }
        if self.findings:
            record["findings"] = [dict(finding) for finding in self.findings]
        if self.masks is not None:
            record["masks"] = _portable_path(self.masks, relative_to)
        if self.meta:
            record["meta"] = dict(self.meta)
        return record


def read_manifest(
    path: str | Path, require_reports: bool = True, check_files_exist: bool = True
) -> list[ManifestRow]:
    """Read and validate a ``.jsonl`` or ``.csv`` manifest.

    ``require_reports=False`` accepts rows without a report (inference manifests).
    ``check_files_exist`` checks that every image and mask path exists.
    Raises :class:`ManifestError` naming the file, the line and the problem.
    """
    path = Path(path)
    _check_format(path)
    if not path.is_file():
        raise ManifestError("manifest file not found", path)
    folder = path.resolve().parent
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read manifest: {exc}", path) from exc
    records = _jsonl_records(text, path) if path.suffix == ".jsonl" else _csv_records(text, path)

    rows: list[ManifestRow] = []
    first_line_of: dict[str, int] = {}
    for line, record in records:
        where = f"{path}:{line}"
        row = _parse_row(record, folder, require_reports, where)
        if row.study_id in first_line_of:
            raise ManifestError(
                f"duplicate study_id {row.study_id!r} (first on line {first_line_of[row.study_id]})", where
            )
        first_line_of[row.study_id] = line
        if check_files_exist:
            _check_files(row, record, where)
        rows.append(row)
    if not rows:
        raise ManifestError("manifest holds no studies", path)
    return rows


def write_manifest(rows: Iterable[ManifestRow], path: str | Path) -> None:
    """Write ``rows`` atomically as ``.jsonl`` or ``.csv`` (by extension).

    Paths inside the manifest's folder are written relative to it, so the folder can move.
    """
    path = Path(path)
    _check_format(path)
    folder = path.resolve().parent
    records = [row.to_dict(relative_to=folder) for row in rows]
    text = _jsonl_text(records) if path.suffix == ".jsonl" else _csv_text(records)
    atomic_write_text(path, text)


def _check_format(path: Path) -> None:
    if path.suffix not in FORMATS:
        raise ManifestError(f"manifest must end in {' or '.join(FORMATS)}, got {path.suffix or 'no extension'!r}", path)


def _jsonl_records(text: str, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"malformed JSON: {exc.msg} at column {exc.colno}", f"{path}:{number}") from exc
        if not isinstance(record, dict):
            raise ManifestError(f"expected a JSON object, got {type(record).__name__}", f"{path}:{number}")
        yield number, record


def _csv_records(text: str, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    _check_columns(reader.fieldnames or [], f"{path}:1")
    for record in reader:
        where = f"{path}:{reader.line_num}"
        if None in record:  # more cells than header columns
            raise ManifestError(f"{len(record[None])} more cell(s) than the header has columns", where)
        yield reader.line_num, _csv_cells_to_record(record, where)


def _csv_cells_to_record(cells: dict[str, str | None], where: str) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for column, cell in cells.items():
        cell = (cell or "").strip()
        if column in ("findings", "meta"):
            record[column] = _json_cell(cell, column, where) if cell else None
        elif column == "images":
            record[column] = [part.strip() for part in cell.split(CSV_LIST_SEPARATOR) if part.strip()]
        elif column in ("report", "study_id", "split"):
            record[column] = cell
        else:  # masks
            record[column] = cell or None
    return record


def _json_cell(cell: str, column: str, where: str) -> Any:
    try:
        return json.loads(cell)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{column}: malformed JSON: {exc.msg} at column {exc.colno}", where) from exc


def _check_columns(columns: Iterable[str], where: str) -> None:
    for column in columns:
        if column not in COLUMNS:
            close = difflib.get_close_matches(column, COLUMNS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; known columns: {', '.join(COLUMNS)}"
            raise ManifestError(f"unknown column {column!r}{hint}", where)


def _parse_row(record: dict[str, Any], folder: Path, require_reports: bool, where: str) -> ManifestRow:
    _check_columns(record, where)
    for column in REQUIRED_COLUMNS:
        if record.get(column) in (None, "", []):
            raise ManifestError(f"missing {column}", where)

    study_id = record["study_id"]
    if not isinstance(study_id, str):
        raise ManifestError(f"study_id must be a string, got {study_id!r}", where)
    split = record["split"]
    if split not in SPLITS:
        raise ManifestError(f"split must be one of {'/'.join(SPLITS)}, got {split!r}", where)
    report = record.get("report")
    if report is None:
        report = ""
    if not isinstance(report, str):
        raise ManifestError(f"report must be a string, got {type(report).__name__}", where)
    if require_reports and not report.strip():
        raise ManifestError("report is empty (only inference manifests may omit reports)", where)

    images = record["images"]
    if not isinstance(images, list) or not all(isinstance(image, str) and image.strip() for image in images):
        raise ManifestError(f"images must be a non-empty list of paths, got {images!r}", where)
    masks = record.get("masks")
    if masks is not None and (not isinstance(masks, str) or not masks.strip()):
        raise ManifestError(f"masks must be a path, got {masks!r}", where)
    meta = record.get("meta") or {}
    if not isinstance(meta, dict):
        raise ManifestError(f"meta must be an object, got {type(meta).__name__}", where)

    return ManifestRow(
        study_id=study_id,
        images=tuple(_absolute(image, folder) for image in images),
        report=report,
        split=split,
        findings=_parse_findings(record.get("findings"), where),
        masks=None if masks is None else _absolute(masks, folder),
        meta=meta,
    )


def _parse_findings(findings: Any, where: str) -> tuple[dict[str, Any], ...]:
    """Findings checked against :mod:`medvl.findings`, each as ``Finding.to_dict()`` writes it."""
    if findings is None:
        return ()
    if not isinstance(findings, list):
        raise ManifestError(f"findings must be a list, got {type(findings).__name__}", where)
    parsed = []
    for number, finding in enumerate(findings):
        try:
            parsed.append(Finding.from_dict(finding).to_dict())
        except MedVLError as exc:
            raise ManifestError(f"findings[{number}]: {exc.problem}", where) from exc
        except (TypeError, ValueError) as exc:  # e.g. a size_mm that is not a number
            raise ManifestError(f"findings[{number}]: {exc}", where) from exc
    return tuple(parsed)


def _check_files(row: ManifestRow, record: dict[str, Any], where: str) -> None:
    for written, image in zip(record["images"], row.images):
        if not image.exists():
            raise ManifestError(f"image not found: {written}", where)
    if row.masks is not None and not row.masks.is_file():
        raise ManifestError(f"masks file not found: {record['masks']}", where)


def _absolute(path: str, folder: Path) -> Path:
    """``path`` made absolute against ``folder``, without following symbolic links."""
    return Path(os.path.normpath(folder / Path(path.strip()).expanduser()))


def _portable_path(path: Path, relative_to: Path | None) -> str:
    if relative_to is not None and path.is_absolute() and path.is_relative_to(relative_to):
        return path.relative_to(relative_to).as_posix()
    return path.as_posix()


def _jsonl_text(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def _csv_text(records: list[dict[str, Any]]) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow(
            {
                **record,
                "images": CSV_LIST_SEPARATOR.join(record["images"]),
                "findings": json.dumps(record["findings"], ensure_ascii=False) if record.get("findings") else "",
                "meta": json.dumps(record["meta"], ensure_ascii=False) if record.get("meta") else "",
            }
        )
    return buffer.getvalue()
