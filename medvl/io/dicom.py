"""Reading DICOM with pydicom: single images, multi-frame objects and series folders.

Pixels come out as the rest of medvl expects them (see :mod:`medvl.io.study`):

* in modality units: the Modality LUT (rescale slope/intercept or a LUT sequence, per frame for
  Enhanced objects) is applied, so CT is in HU;
* higher values brighter: MONOCHROME1 is mirrored onto the MONOCHROME2 convention over the
  range the stored bits can take (and so is the header's window centre); ``ViewInfo.photometric``
  keeps the photometric interpretation as decoded, so a mirrored view says ``MONOCHROME1``;
* colour (RGB, YBR, palette) reduced to luminance;
* a multi-frame object or a series folder stacked as ``(rows, columns, slices)``, slices ordered
  by their position along the slice normal.

Headers are read first (``stop_before_pixels``) to check, group and order files, and sizes are
checked before any pixels are decoded. Only files with the DICOM Part 10 marker are read ('DICM'
after the 128-byte preamble; this is also what ``pydicom.dcmread`` accepts without
``force=True``). pydicom's exceptions never leave this module: each becomes a
:class:`~medvl.errors.ScanError` naming the file.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, get_decoder
from pydicom.pixels.decoders.base import Decoder
from pydicom.uid import DeflatedExplicitVRLittleEndian

from medvl.errors import (
    InvalidImageError,
    MedVLError,
    MixedSeriesError,
    NoPixelDataError,
    NotDicomError,
    ScanError,
    TruncatedFileError,
    UnsupportedTransferSyntaxError,
)
from medvl.io.raster import (
    DEFAULT_ORIENTATION,
    check_dimensions,
    luminance,
    make_view,
    patient_affine,
    slice_normal,
)
from medvl.io.study import Study, View
from medvl.privacy import hash_identifier

PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
UNDEFINED_LENGTH = 0xFFFFFFFF
SPACING_TOLERANCE = 0.01  # relative: slice gaps further than 1% from the median are an error
POSITION_TOLERANCE_MM = 1e-3  # slices closer than this along the normal are duplicates
ORIENTATION_TOLERANCE = 1e-3  # direction cosines that differ by more than this differ


def is_dicom_file(path: Path) -> bool:
    """True if the file carries the DICOM Part 10 marker: 'DICM' after a 128-byte preamble."""
    with path.open("rb") as file:
        file.seek(128)
        return file.read(4) == b"DICM"


def read_header(path: Path) -> Dataset:
    """The file's data set without its pixel data (cheap: for checking, grouping and sorting)."""
    with pydicom_errors(path):
        return pydicom.dcmread(path, stop_before_pixels=True)


def read_dicom_file(path: Path) -> Study:
    """Read one DICOM file: a 2D view, or a 3D view when it holds several frames."""
    header = read_header(path)
    return _study_of(header, _file_view(path, header), path)


@dataclass(frozen=True)
class DicomSeries:
    """The image files of one SeriesInstanceUID in a folder, with their headers."""

    uid: str
    files: tuple[Path, ...]
    headers: tuple[Dataset, ...]

    @property
    def is_single_image(self) -> bool:
        """True for one file holding one frame (a radiograph, a single slice)."""
        return len(self.files) == 1 and _frame_count(self.headers[0]) == 1

    def describe(self) -> str:
        """``"<SeriesInstanceUID> (<modality>, <n> files, '<SeriesDescription>')"``."""
        header = self.headers[0]
        modality = _text(header, "Modality") or "unknown modality"
        description = _text(header, "SeriesDescription") or ""
        return f"{self.uid or '(no SeriesInstanceUID)'} ({modality}, {len(self.files)} files, '{description}')"


def find_series(paths: Iterable[Path]) -> list[DicomSeries]:
    """Group DICOM files by SeriesInstanceUID, reading headers only.

    Objects without an image (DICOMDIR, reports, presentation states) are left out.
    """
    groups: dict[str, list[tuple[Path, Dataset]]] = {}
    for path in paths:
        header = read_header(path)
        if "Rows" in header:
            groups.setdefault(str(header.get("SeriesInstanceUID", "")), []).append((path, header))
    return [
        DicomSeries(uid=uid, files=tuple(p for p, _ in members), headers=tuple(h for _, h in members))
        for uid, members in groups.items()
    ]


def read_dicom_series(series: DicomSeries) -> Study:
    """Read a series: its single file, or its slices stacked along the slice normal."""
    if len(series.files) == 1:
        return read_dicom_file(series.files[0])
    folder = series.files[0].parent
    with pydicom_errors(folder):
        view = _stack_view(series, folder)
    return _study_of(series.headers[0], view, folder)


# --- one file -------------------------------------------------------------------------------


def _file_view(path: Path, header: Dataset) -> View:
    """The view of one file; a multi-frame object becomes a volume."""
    with pydicom_errors(path):
        dataset = read_complete(path, header)
        frames = _frame_count(dataset)
        check_dimensions(_frame_shape(dataset, path) + ((frames,) if frames > 1 else ()), path)
        orientation = _frame_value(dataset, "ImageOrientationPatient", "PlaneOrientationSequence")
        orientation = DEFAULT_ORIENTATION if orientation is None else _floats(orientation)
        spacing: tuple[float, ...] = _pixel_spacing(dataset)
        if frames == 1:
            order, origin, source_format = np.arange(1), _origin(dataset), "dicom"
        else:
            order, slice_spacing, origin = _frame_geometry(dataset, orientation, path)
            spacing, source_format = (*spacing, slice_spacing), "dicom-multiframe"
        pixels, photometric = _decode(dataset, path)
        image = pixels[0] if frames == 1 else np.moveaxis(pixels[order], 0, -1)
        affine = patient_affine(orientation, spacing, origin)
        facts = _view_facts(dataset, photometric)
        return make_view(image, affine, path, source_format=source_format, spacing=spacing, **facts)


def _frame_geometry(
    dataset: Dataset, orientation: Sequence[float], path: Path
) -> tuple[np.ndarray, float, Sequence[float]]:
    """Frame order, slice spacing and first-voxel position of a multi-frame object.

    Enhanced objects with a PlanePositionSequence per frame are ordered along the slice normal;
    others (cine, ultrasound) keep their frame order and take the header's slice spacing.
    """
    frames = _frame_count(dataset)
    positions = _per_frame_positions(dataset, frames)
    if positions is None:
        slice_spacing = _positive_float(dataset.get("SpacingBetweenSlices")) or _positive_float(
            dataset.get("SliceThickness")
        )
        return np.arange(frames), slice_spacing or 1.0, _origin(dataset)
    orientations = [
        _floats(_frame_value(dataset, "ImageOrientationPatient", "PlaneOrientationSequence", i) or orientation)
        for i in range(frames)
    ]
    names = [f"frame {i + 1}" for i in range(frames)]
    _require_same(orientations, names, "ImageOrientationPatient", path, _same_direction)
    order, slice_spacing = _order_along_normal(positions, orientation, "frames", path)
    return order, slice_spacing, positions[order[0]]


def _origin(dataset: Dataset) -> tuple[float, ...]:
    """ImagePositionPatient of the (first) frame, or the origin when the header has none."""
    position = _frame_value(dataset, "ImagePositionPatient", "PlanePositionSequence")
    return (0.0, 0.0, 0.0) if position is None else _floats(position)


def _per_frame_positions(dataset: Dataset, frames: int) -> np.ndarray | None:
    """Each frame's ImagePositionPatient from the per-frame functional groups, if all have one."""
    per_frame = dataset.get("PerFrameFunctionalGroupsSequence") or []
    if len(per_frame) != frames:
        return None
    items = [group.get("PlanePositionSequence") for group in per_frame]
    if not all(items) or not all("ImagePositionPatient" in item[0] for item in items):
        return None
    return np.array([_floats(item[0].ImagePositionPatient) for item in items])


# --- series folder ----------------------------------------------------------------------------


def _stack_view(series: DicomSeries, folder: Path) -> View:
    """Stack the slices of a multi-file series into a volume ordered along the slice normal."""
    _check_stackable(series, folder)
    headers = series.headers
    orientation = _floats(headers[0].ImageOrientationPatient)
    positions = np.array([_floats(h.ImagePositionPatient) for h in headers])
    order, slice_spacing = _order_along_normal(positions, orientation, "slices", folder)
    rows, columns = headers[0].Rows, headers[0].Columns
    check_dimensions((rows, columns, len(headers)), folder)

    slices = np.empty((len(order), rows, columns), dtype=np.float32)  # filled slice by slice
    for k, index in enumerate(order):
        path = series.files[index]
        with pydicom_errors(path):
            pixels, photometric = _decode(read_complete(path, headers[index]), path)
        slices[k] = pixels[0]
    volume = np.moveaxis(slices, 0, -1)  # (rows, columns, slices), a view: no copy
    spacing = (*_pixel_spacing(headers[0]), slice_spacing)
    affine = patient_affine(orientation, spacing, positions[order[0]])
    facts = _view_facts(headers[order[0]], photometric)
    return make_view(volume, affine, folder, source_format="dicom-series", spacing=spacing, **facts)


def _check_stackable(series: DicomSeries, folder: Path) -> None:
    """Refuse a series whose slices cannot form one regular volume, naming what differs."""
    headers, names = series.headers, [path.name for path in series.files]
    for name, header in zip(names, headers, strict=True):
        if _frame_count(header) > 1:
            raise MixedSeriesError(f"series {series.uid}: {name} is multi-frame; it cannot be stacked", folder)
        if "ImagePositionPatient" not in header or "ImageOrientationPatient" not in header:
            raise MixedSeriesError(
                f"series {series.uid}: {name} has no ImagePositionPatient/ImageOrientationPatient, "
                "so its slices cannot be ordered",
                folder,
            )
    orientations = [_floats(header.ImageOrientationPatient) for header in headers]
    _require_same([(header.Rows, header.Columns) for header in headers], names, "size (rows, columns)", folder)
    _require_same(orientations, names, "ImageOrientationPatient", folder, _same_direction)
    _require_same([_pixel_spacing(header) for header in headers], names, "PixelSpacing", folder, _same_spacing)


def _order_along_normal(
    positions: np.ndarray, orientation: Sequence[float], what: str, where: Path
) -> tuple[np.ndarray, float]:
    """Indices ordering slices by position along the normal, and the spacing between them.

    Raises MixedSeriesError for duplicate positions or uneven spacing (a missing slice).
    """
    distances = positions @ slice_normal(orientation)
    order = np.argsort(distances, kind="stable")
    gaps = np.diff(distances[order])
    duplicates = int(np.count_nonzero(gaps < POSITION_TOLERANCE_MM))
    if duplicates:
        raise MixedSeriesError(
            f"{duplicates + 1} {what} share a position along the slice normal (duplicates, or several "
            "stacks, echoes or time points in one series)",
            where,
        )
    spacing = float(np.median(gaps))
    if np.any(np.abs(gaps - spacing) > SPACING_TOLERANCE * spacing):
        raise MixedSeriesError(
            f"uneven spacing between {what}: gaps from {gaps.min():.4g} to {gaps.max():.4g} mm "
            f"(median {spacing:.4g} mm); a slice may be missing",
            where,
        )
    return order, spacing


def _require_same(values: Sequence[Any], names: Sequence[str], what: str, where: Path, same: Any = operator.eq) -> None:
    """Raise MixedSeriesError naming the first file (or frame) whose value differs from the first."""
    for name, value in zip(names, values, strict=True):
        if not same(value, values[0]):
            shown = [tuple(v if isinstance(v, int) else round(float(v), 4) for v in x) for x in (values[0], value)]
            raise MixedSeriesError(f"{what} differs: {names[0]} has {shown[0]}, {name} has {shown[1]}", where)


def _same_direction(a: Sequence[float], b: Sequence[float]) -> bool:
    return bool(np.allclose(a, b, atol=ORIENTATION_TOLERANCE))


def _same_spacing(a: Sequence[float], b: Sequence[float]) -> bool:
    return bool(np.allclose(a, b, rtol=SPACING_TOLERANCE))


# --- reading and decoding ----------------------------------------------------------------------


@contextmanager
def pydicom_errors(path: Path) -> Iterator[None]:
    """Turn what pydicom raises for a malformed file into a ScanError naming the file."""
    try:
        yield
    except MedVLError:
        raise
    except InvalidDicomError as exc:
        raise NotDicomError(f"not a DICOM file: {exc}", path) from exc
    except (EOFError, struct.error) as exc:
        raise TruncatedFileError(f"the file ends unexpectedly: {exc}", path) from exc
    except Exception as exc:  # pydicom reports malformed values with many exception types
        raise ScanError(f"cannot read this DICOM file: {type(exc).__name__}: {exc}", path) from exc


def read_complete(path: Path, header: Dataset) -> Dataset:
    """Read the whole file, refusing one cut short or without pixel data."""
    dataset = pydicom.dcmread(path)
    has_pixels = any(keyword in dataset for keyword in PIXEL_KEYWORDS)
    if len(dataset) < len(header) or _ends_inside_element(dataset, path.stat().st_size):
        where = "pixel data" if has_pixels or len(dataset) < len(header) else "header"
        raise TruncatedFileError(f"the file is truncated: it ends inside its {where}", path)
    if not has_pixels:
        sop_class = dataset.file_meta.get("MediaStorageSOPClassUID") or dataset.get("SOPClassUID")
        kind = f" ({sop_class.name})" if sop_class else ""
        raise NoPixelDataError(f"no pixel data: this DICOM object{kind} holds no image", path)
    return dataset


def _ends_inside_element(dataset: Dataset, file_size: int) -> bool:
    """True if the last element read does not end where the file does.

    A complete file ends exactly at the end of its last data element. pydicom stops quietly
    at the end of a cut-off file, leaving a shortened value (or dropping a partial tag).
    Elements of undefined length (sequences, encapsulated pixel data) cannot be checked here,
    nor can a deflated data set, whose offsets are those of the inflated stream.
    """
    if dataset.file_meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        return False
    for data in (dataset, dataset.file_meta):
        if len(data):
            last = data.get_item(list(data.keys())[-1])
            if not isinstance(last, RawDataElement) or last.length == UNDEFINED_LENGTH:
                return False
            return last.value_tell + last.length != file_size
    return True


def _decoder(dataset: Dataset, path: Path) -> Decoder:
    """The pydicom decoder for the file's transfer syntax, if one is installed."""
    syntax = dataset.file_meta.get("TransferSyntaxUID")
    if syntax is None:
        raise UnsupportedTransferSyntaxError("no TransferSyntaxUID: the pixel encoding is unknown", path)
    label = syntax if syntax.name == str(syntax) else f"{syntax.name} ({syntax})"
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError as exc:
        raise UnsupportedTransferSyntaxError(f"transfer syntax {label} is not supported", path) from exc
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies)
        raise UnsupportedTransferSyntaxError(f"no installed decoder handles {label} ({missing})", path)
    return decoder


def _decode(dataset: Dataset, path: Path) -> tuple[np.ndarray, str]:
    """Frames ``(n, rows, columns)`` in modality units, higher = brighter, and the photometric."""
    decoder = _decoder(dataset, path)
    try:
        pixels, decoded = decoder.as_array(dataset, as_rgb=False)
    except Exception as exc:  # decoders raise ValueError, RuntimeError, ... for corrupt data
        label = dataset.file_meta.TransferSyntaxUID.name
        raise InvalidImageError(f"cannot decode the pixel data ({label}): {exc}", path) from exc
    photometric = str(decoded["photometric_interpretation"])
    if int(decoded["number_of_frames"]) == 1:
        pixels = pixels[np.newaxis]
    if photometric == "PALETTE COLOR":
        return luminance(apply_color_lut(pixels, dataset)), photometric
    if pixels.ndim == 4:  # colour samples last; a YBR image's Y is its luminance already
        return (pixels[..., 0] if photometric.startswith("YBR") else luminance(pixels)), photometric
    frames = np.empty(pixels.shape, dtype=np.float32)
    for index, frame in enumerate(pixels):
        lut_source = _lut_source(dataset, index)
        frames[index] = apply_modality_lut(frame, lut_source)
        if photometric == "MONOCHROME1":
            frames[index] = _monochrome1_mirror(dataset, lut_source) - frames[index]
    return frames, photometric


def _lut_source(dataset: Dataset, frame: int) -> Dataset:
    """Where frame's modality LUT lives: its PixelValueTransformationSequence item, else the data set."""
    return _functional_group(dataset, frame, "PixelValueTransformationSequence") or dataset


def _monochrome1_mirror(dataset: Dataset, lut_source: Dataset) -> float:
    """Lowest + highest value the stored bits can take after the modality LUT.

    ``mirror - value`` maps MONOCHROME1 (low = bright) onto MONOCHROME2 within the same range,
    independently of the image content.
    """
    bits = int(dataset.BitsStored)
    lowest, highest = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if dataset.PixelRepresentation else (0, 2**bits - 1)
    ends = apply_modality_lut(np.array([lowest, highest]), lut_source)
    return float(np.min(ends) + np.max(ends))


# --- header values -------------------------------------------------------------------------------


def _functional_group(dataset: Dataset, frame: int, sequence: str) -> Dataset | None:
    """A frame's item of an Enhanced functional-group sequence: per-frame if present, else shared."""
    per_frame = dataset.get("PerFrameFunctionalGroupsSequence") or []
    shared = dataset.get("SharedFunctionalGroupsSequence") or []
    for groups in (per_frame[frame : frame + 1], shared[:1]):
        items = groups[0].get(sequence) if groups else None
        if items:
            return items[0]
    return None


def _frame_value(dataset: Dataset, keyword: str, sequence: str, frame: int = 0) -> Any:
    """An attribute from a frame's functional group (Enhanced objects), else from the top level."""
    item = _functional_group(dataset, frame, sequence)
    if item is not None and keyword in item:
        return item[keyword].value
    return dataset.get(keyword)


def _frame_count(header: Dataset) -> int:
    return int(header.get("NumberOfFrames") or 1)


def _frame_shape(dataset: Dataset, path: Path) -> tuple[int, int]:
    if "Rows" not in dataset or "Columns" not in dataset:
        raise InvalidImageError("the header has no Rows/Columns", path)
    return int(dataset.Rows), int(dataset.Columns)


def _pixel_spacing(dataset: Dataset) -> tuple[float, float]:
    """(between rows, between columns) in mm: PixelSpacing, else ImagerPixelSpacing, else 1.0."""
    candidates = (
        _frame_value(dataset, "PixelSpacing", "PixelMeasuresSequence"),
        dataset.get("ImagerPixelSpacing"),
    )
    for value in candidates:
        if isinstance(value, MultiValue | list | tuple) and len(value) == 2:
            spacing = tuple(_positive_float(v) for v in value)
            if all(spacing):
                return spacing  # type: ignore[return-value]
    return (1.0, 1.0)


def _window(dataset: Dataset, photometric: str) -> tuple[float, float] | None:
    """The header's first (center, width), mirrored like the pixels for MONOCHROME1."""
    center = _first(_frame_value(dataset, "WindowCenter", "FrameVOILUTSequence"))
    width = _first(_frame_value(dataset, "WindowWidth", "FrameVOILUTSequence"))
    if center is None or width is None:
        return None
    center = float(center)
    if photometric == "MONOCHROME1":
        center = _monochrome1_mirror(dataset, _lut_source(dataset, 0)) - center
    return (center, float(width))


def _view_facts(dataset: Dataset, photometric: str) -> dict[str, Any]:
    """The ViewInfo fields read from the header (technical, never identifying)."""
    body_part = _text(dataset, "BodyPartExamined")
    return {
        "modality": _text(dataset, "Modality"),
        "body_part": body_part.upper() if body_part else None,
        "view_position": _text(dataset, "ViewPosition"),
        "photometric": photometric,
        "window": _window(dataset, photometric),
    }


def _study_of(header: Dataset, view: View, source: Path) -> Study:
    uid = _text(header, "StudyInstanceUID")
    return Study(views=(view,), source=source, study_uid_hash=hash_identifier(uid) if uid else None)


def _text(dataset: Dataset, keyword: str) -> str | None:
    value = dataset.get(keyword)
    text = "" if value is None else str(value).strip()
    return text or None


def _first(value: Any) -> Any:
    if isinstance(value, MultiValue | list | tuple):
        value = value[0] if len(value) else None
    return None if value in (None, "") else value


def _positive_float(value: Any) -> float | None:
    try:
        number = float(_first(value))
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) and number > 0 else None


def _floats(values: Sequence[Any]) -> tuple[float, ...]:
    return tuple(float(v) for v in values)
