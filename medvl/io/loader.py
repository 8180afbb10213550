"""`load_study`: one entry point for every scan medvl reads.

A path is a study:

* a DICOM file (recognised by content, whatever its name), a NIfTI file or a PNG/JPEG file;
* a folder holding one DICOM series (a volume, or a single image);
* a folder holding several views of one study: image files, single-image DICOM series, or
  sub-folders that are each a series. Views are ordered frontal, lateral, then others; within
  a role by file name. A DICOM view's role comes from its ViewPosition, another file's from
  the words of its name ("chest_pa.png", "lat.jpg").

Files that are not images (DICOMDIR, reports, text, licences) are skipped in folders. Anything
unreadable raises a :class:`~medvl.errors.ScanError` subclass naming the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from pathlib import Path

from medvl.errors import (
    InvalidImageError,
    MedVLError,
    MixedSeriesError,
    NotDicomError,
    ScanError,
    ScanNotFoundError,
    UnsupportedFormatError,
)
from medvl.io.dicom import DicomSeries, find_series, is_dicom_file, read_dicom_file, read_dicom_series
from medvl.io.nifti import is_nifti_name, read_nifti
from medvl.io.raster import read_raster
from medvl.io.study import Study, role_rank

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg")
DICOM_SUFFIXES = ("", ".dcm", ".dicom", ".dic", ".ima")  # names that promise DICOM content


def load_study(path: str | Path, series_uid: str | None = None) -> Study:
    """Read the study at ``path`` (file or folder).

    ``series_uid`` picks one SeriesInstanceUID among the DICOM files directly in a folder that
    holds several series (the error for such a folder lists them).
    Raises a :class:`~medvl.errors.ScanError` subclass naming the file for any unreadable input.
    """
    path = Path(path)
    if not path.exists():
        raise ScanNotFoundError("no such file or folder", path)
    try:
        if path.is_dir():
            return _load_folder(path, series_uid)
        if series_uid is not None:
            raise ScanError("series_uid selects a series in a folder, but this is a single file", path)
        return _load_file(path)
    except MedVLError:
        raise
    except Exception as exc:  # a reader let a library error through: still report it as bad input
        raise ScanError(f"cannot be read: {type(exc).__name__}: {exc}", path) from exc


def load_studies(paths: Iterable[str | Path]) -> tuple[list[Study], list[tuple[Path, MedVLError]]]:
    """Read many studies, going on past bad ones: ``(studies, [(path, error), ...])``."""
    studies: list[Study] = []
    failures: list[tuple[Path, MedVLError]] = []
    for path in paths:
        try:
            studies.append(load_study(path))
        except MedVLError as error:
            failures.append((Path(path), error))
    return studies, failures


def _load_file(path: Path) -> Study:
    if path.stat().st_size == 0:
        raise InvalidImageError("the file is empty (0 bytes)", path)
    if is_dicom_file(path):
        return read_dicom_file(path)
    reader = _reader_for_name(path)
    if reader is not None:
        return reader(path)
    if path.suffix.lower() in DICOM_SUFFIXES:
        raise NotDicomError("not a DICOM file: no 'DICM' marker after the 128-byte preamble", path)
    raise UnsupportedFormatError(
        f"unsupported file type '{path.suffix}': medvl reads DICOM, NIfTI (.nii, .nii.gz), PNG and JPEG", path
    )


def _reader_for_name(path: Path) -> Callable[[Path], Study] | None:
    if is_nifti_name(path):
        return read_nifti
    if path.suffix.lower() in RASTER_SUFFIXES:
        return read_raster
    return None


def _load_folder(folder: Path, series_uid: str | None) -> Study:
    """One entry (a series, an image file, a sub-folder) is the study; several are its views."""
    entries = sorted(entry for entry in folder.iterdir() if not entry.name.startswith("."))
    files = [entry for entry in entries if entry.is_file() and entry.stat().st_size > 0]
    dicom_files = [path for path in files if is_dicom_file(path)]
    series = find_series(dicom_files)
    if series_uid is not None:
        return read_dicom_series(_pick_series(series, series_uid, folder))

    dicom_set = set(dicom_files)
    other_files = [path for path in files if path not in dicom_set and _reader_for_name(path)]
    has_volume = any(not one.is_single_image for one in series)
    if has_volume and (len(series) > 1 or other_files):
        raise _several_series_error(series, folder)
    entry_studies = chain(
        (read_dicom_series(one) for one in series),
        (_load_file(path) for path in other_files),
        _subfolder_studies(entry for entry in entries if entry.is_dir()),
    )
    studies = _collect_one_study(entry_studies, folder)
    if not studies:
        raise ScanNotFoundError("no DICOM, NIfTI, PNG or JPEG image in this folder", folder)
    if len(studies) == 1:
        return studies[0]
    if has_volume:
        raise _several_series_error(series, folder)
    return _combine(studies, folder)


def _subfolder_studies(subfolders: Iterable[Path]) -> Iterator[Study]:
    """The study of each sub-folder that holds an image (notes and empty folders are skipped)."""
    for subfolder in subfolders:
        try:
            yield _load_folder(subfolder, series_uid=None)
        except ScanNotFoundError:
            continue


def _several_series_error(series: list[DicomSeries], folder: Path) -> MixedSeriesError:
    listing = "; ".join(one.describe() for one in series)
    return MixedSeriesError(
        f"a volume cannot be combined with other series or images; pick one series with series_uid: {listing}",
        folder,
    )


def _pick_series(series: list[DicomSeries], series_uid: str, folder: Path) -> DicomSeries:
    for one in series:
        if one.uid == series_uid.strip():
            return one
    available = "; ".join(one.describe() for one in series) or "no DICOM image series"
    raise ScanNotFoundError(f"series {series_uid} is not in this folder; it holds: {available}", folder)


def _collect_one_study(studies: Iterable[Study], folder: Path) -> list[Study]:
    """Read a folder's entries, stopping at the first whose StudyInstanceUID differs."""
    collected: list[Study] = []
    first_dicom: Study | None = None
    for study in studies:
        if study.study_uid_hash is not None:
            first_dicom = first_dicom or study
            if study.study_uid_hash != first_dicom.study_uid_hash:
                raise MixedSeriesError(
                    f"{first_dicom.source.name} and {study.source.name} belong to different studies "
                    "(their StudyInstanceUIDs differ)",
                    folder,
                )
        collected.append(study)
    return collected


def _combine(studies: list[Study], folder: Path) -> Study:
    """One study from the views of several: frontal first, then lateral, then others, each by name."""
    named_views = [(view, study.source.name) for study in studies for view in study.views]
    named_views.sort(key=lambda item: (role_rank(item[0].info.role), item[1]))
    study_hash = next((study.study_uid_hash for study in studies if study.study_uid_hash), None)
    return Study(views=tuple(view for view, _ in named_views), source=folder, study_uid_hash=study_hash)
