"""Writing files so that nothing half-written is ever left behind.

Each writer goes to a temporary name in the destination folder and is renamed into place
(``os.replace`` is atomic on one file system), so a reader sees the old file or the new one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


@contextmanager
def atomic_path(path: str | Path, exclusive: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it to ``path``.

    The caller writes the temporary file by any means (PIL, pydicom, nibabel, torch).
    With ``exclusive=True`` an existing ``path`` raises ``FileExistsError`` instead of
    being replaced. On error the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if exclusive:
            os.link(tmp, path)  # fails if path exists
            tmp.unlink()
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | Path, data: bytes, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path, exclusive=exclusive) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; on success it replaces ``path`` whole.

    Used for model and checkpoint folders: a reader never sees a folder with some files
    written and others missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def read_yaml_mapping(path: str | Path) -> dict:
    """The mapping in a YAML file (an empty file: ``{}``); a missing file, bad YAML or another
    top-level type raises :class:`medvl.errors.ConfigError` naming the file."""
    import yaml

    from medvl.errors import ConfigError

    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError("config file not found", path) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", path) from exc
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError("expected a mapping at the top level", path)
    return values


def read_yaml_config(path: str | Path, build: Callable[[dict], T]) -> T:
    """``build(mapping)`` of a YAML file; a :class:`medvl.errors.ConfigError` it raises names the file."""
    from medvl.errors import ConfigError

    path = Path(path)
    values = read_yaml_mapping(path)
    try:
        return build(values)
    except ConfigError as exc:
        raise ConfigError(exc.problem, path) from exc
