"""medvl: draft radiology reports from medical scans, and show why each sentence was written.

    import medvl
    run = medvl.draft("path/to/study")           # the embedded default model
    print(run.drafts[0].to_text())
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

DRAFT_NOTICE = "DRAFT - not for clinical use"


def __getattr__(name: str) -> Any:
    """``medvl.draft`` is imported on first use (it needs torch, MONAI and transformers)."""
    if name == "draft":
        from medvl.report.drafting import draft

        return draft
    raise AttributeError(f"module 'medvl' has no attribute {name!r}")
