"""Errors a user can act on: each names the file (or row) and what is wrong with it.

Every error raised for bad input is a :class:`MedVLError`; the command line prints
``str(error)`` as one line and exits non-zero, never a bare traceback.
"""

from __future__ import annotations

from pathlib import Path


class MedVLError(Exception):
    """Base class: ``str(error)`` is one line, ``"<where>: <problem>"``."""

    def __init__(self, problem: str, path: str | Path | None = None) -> None:
        self.problem = " ".join(str(problem).split())  # always one line
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {self.problem}" if self.path else self.problem)


class ScanError(MedVLError):
    """A scan (DICOM, NIfTI, PNG/JPEG file or folder) cannot be read as an image."""


class ScanNotFoundError(ScanError):
    """The path does not exist, or a folder holds no readable scan."""


class NotDicomError(ScanError):
    """The file is not DICOM (no preamble/'DICM' and no parsable header)."""


class TruncatedFileError(ScanError):
    """The file ends before its header or pixel data does."""


class NoPixelDataError(ScanError):
    """A DICOM object without an image (a report, a SEG without frames, ...)."""


class UnsupportedTransferSyntaxError(ScanError):
    """Pixel data in a compression no installed decoder handles."""


class MixedSeriesError(ScanError):
    """A folder mixes series, or slices of one series disagree in geometry."""


class InvalidImageError(ScanError):
    """Decoded pixels are unusable: empty, NaN/inf, or absurd dimensions."""


class UnsupportedFormatError(ScanError):
    """The file type is not one medvl reads."""


class ManifestError(MedVLError):
    """A manifest file or one of its rows is invalid."""


class ConfigError(MedVLError):
    """A configuration file or value is invalid."""


class ModelError(MedVLError):
    """A model directory is missing, incomplete or incompatible."""
