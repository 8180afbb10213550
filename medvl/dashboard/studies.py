"""Where the dashboard's studies come from: the bundled samples and the user's uploads.

Uploads are written into a per-session work folder, one sub-folder per upload named by the
digest of its contents: a single file is the study, several files are the views or slices of
one study, and a ``.zip`` (a DICOM series, a folder of views) is unpacked where it lies, every
entry checked to stay inside that folder.
"""

from __future__ import annotations

import hashlib
import shutil
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from medvl.errors import MedVLError, ScanError
from medvl.files import atomic_directory
from medvl.io import load_study
from medvl.model.loading import DEFAULT_MODEL
from medvl.samples import SAMPLE_PREFIX, sample_card, sample_path

EMBEDDED_MODEL_FOR_DIMS = {2: DEFAULT_MODEL, 3: "ct"}  # radiographs, volumes
MAX_UNZIPPED_BYTES = 2 * 2**30  # what one uploaded archive may unpack to
UPLOAD_PREFIX = "upload:"


@dataclass(frozen=True)
class StudySource:
    """A study the dashboard can open, and what is known about it."""

    key: str  # names the study across reruns: "sample:<name>" or "upload:<digest>"
    label: str  # what the reader sees
    path: Path  # what medvl.io.load_study reads
    reference: str | None = None  # the reference report, where one is known
    findings: tuple[dict[str, Any], ...] | None = None  # the true findings, where known (samples)


def sample_source(name: str) -> StudySource:
    """A bundled sample, with its reference report and true findings."""
    card = sample_card(name)
    return StudySource(
        key=SAMPLE_PREFIX + name,
        label=name,
        path=sample_path(name),
        reference=card["report"],
        findings=tuple(card["findings"]),
    )


def upload_source(files: Sequence[tuple[str, bytes]], workspace: Path) -> StudySource:
    """The study of uploaded ``(file name, contents)`` pairs, written under ``workspace``.

    Raises :class:`~medvl.errors.ScanError` naming the uploaded file for an unusable name or
    archive; nothing is left half-written.
    """
    digest = hashlib.sha256()
    for name, data in files:
        digest.update(name.encode("utf-8") + b"\0" + hashlib.sha256(data).digest())
    folder = workspace / digest.hexdigest()[:16]
    if not folder.exists():
        with atomic_directory(folder) as tmp:
            for name, data in files:
                _save_upload(name, data, tmp)
    entries = sorted(folder.iterdir())
    return StudySource(
        key=UPLOAD_PREFIX + folder.name,
        label=", ".join(name for name, _ in files),
        path=entries[0] if len(entries) == 1 else folder,
    )


def readable_error(error: MedVLError, workspace: Path) -> str:
    """The error's one-line message, naming an uploaded file as the reader named it."""
    if error.path is None or not Path(error.path).is_relative_to(workspace):
        return str(error)
    inside_upload = Path(error.path).relative_to(workspace).parts[1:]
    where = "/".join(inside_upload) or "the uploaded files"
    return f"{where}: {error.problem}"


def embedded_model_for(path: str | Path) -> str:
    """The embedded model that reads the study at ``path``: ``cxr`` for 2D, ``ct`` for 3D."""
    return EMBEDDED_MODEL_FOR_DIMS[load_study(path).spatial_dims]


def extract_zip(archive: Path, folder: Path, max_bytes: int = MAX_UNZIPPED_BYTES) -> None:
    """Unpack ``archive`` into ``folder``, refusing entries that would land outside it.

    Raises :class:`~medvl.errors.ScanError` naming the archive for an unreadable archive, an
    absolute or ``..`` entry name, or contents larger than ``max_bytes`` unpacked.
    """
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = [info for info in zipped.infolist() if not info.is_dir()]
            unpacked = sum(info.file_size for info in members)
            if unpacked > max_bytes:
                raise ScanError(
                    f"the archive unpacks to {unpacked / 2**20:.0f} MiB, over the {max_bytes / 2**20:.0f} MiB limit",
                    archive.name,
                )
            for info in members:
                target = _member_path(folder, info.filename, archive.name)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(info) as source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out)
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as exc:
        raise ScanError(f"not a readable zip archive ({exc})", archive.name) from exc


def _save_upload(name: str, data: bytes, folder: Path) -> None:
    """Write one uploaded file into ``folder``; unpack it there if it is a zip archive."""
    file_name = PurePosixPath(name.replace("\\", "/")).name
    if file_name in ("", ".", ".."):
        raise ScanError("not a usable file name", name)
    target = folder / file_name
    target.write_bytes(data)
    if target.suffix.lower() == ".zip":
        extract_zip(target, folder / target.stem)
        target.unlink()


def _member_path(folder: Path, member: str, archive_name: str) -> Path:
    """Where archive entry ``member`` is written: inside ``folder``, or an error."""
    parts = PurePosixPath(member.replace("\\", "/")).parts
    if not parts or parts[0] == "/" or ".." in parts:
        raise ScanError(f"unsafe entry {member!r} in the archive (absolute, or climbing out with '..')", archive_name)
    return folder.joinpath(*parts)
