"""Shared test set-up: offline, a fixed salt, and the optional ../shared/data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MEDVL_SALT", "medvl-test-salt")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MEDVL_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _isolated_medvl_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep medvl's per-user state (salt file, caches) out of the real home folder."""
    monkeypatch.setenv("MEDVL_HOME", str(tmp_path_factory.getbasetemp() / "medvl_home"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only ../shared/data folder; tests using it skip where a clone lacks it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED_DATA} (only present on the development machines)")
    return SHARED_DATA
