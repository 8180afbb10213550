"""medvl: draft radiology reports from medical scans, and show why each sentence was written."""

__version__ = "0.1.0"

DRAFT_NOTICE = "DRAFT - not for clinical use"
