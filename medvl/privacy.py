"""Pseudonymous identifiers: salted hashes instead of DICOM UIDs or patient IDs.

The salt comes from ``$MEDVL_SALT`` when set (set it to share hashes across machines);
otherwise from a random per-user salt file created on first use
(``$MEDVL_HOME/salt``, default ``~/.config/medvl/salt``). The raw value is never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from functools import lru_cache
from pathlib import Path

from medvl.files import atomic_write_bytes


def medvl_home() -> Path:
    """The per-user folder for medvl's own state (salt, caches)."""
    return Path(os.environ.get("MEDVL_HOME", Path.home() / ".config" / "medvl"))


@lru_cache(maxsize=4)
def _salt_from(env_value: str | None, salt_file: Path) -> bytes:
    if env_value:
        return env_value.encode("utf-8")
    if not salt_file.exists():
        salt_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            atomic_write_bytes(salt_file, secrets.token_hex(32).encode("ascii"), exclusive=True)
        except FileExistsError:  # another process created it first
            pass
        os.chmod(salt_file, 0o600)
    return salt_file.read_bytes().strip()


def get_salt() -> bytes:
    """The salt used for every pseudonymous hash in this process."""
    return _salt_from(os.environ.get("MEDVL_SALT"), medvl_home() / "salt")


def hash_identifier(value: str, length: int = 16) -> str:
    """HMAC-SHA256 of ``value`` under the salt, as ``length`` hex characters."""
    digest = hmac.new(get_salt(), value.strip().encode("utf-8"), hashlib.sha256).hexdigest()
    return digest[:length]
