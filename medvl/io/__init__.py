"""Reading scans: DICOM (file, series folder, multi-frame, compressed), NIfTI, PNG/JPEG."""

from medvl.io.loader import load_studies, load_study
from medvl.io.study import Study, View, ViewInfo

__all__ = ["Study", "View", "ViewInfo", "load_studies", "load_study"]
