"""Synthetic chest phantoms: seeded studies with ground-truth findings, exact masks and reports.

* :func:`make_chest_radiograph` - frontal (PA) and lateral radiographs, brightness in [0, 1];
* :func:`make_chest_ct` - an axial CT volume in HU, ``(rows, cols, slices)``;
* :func:`make_report` - a template report for a list of findings;
* :func:`write_phantom_dataset` - images, masks, reports and a manifest on disk;
* writers for PNG, DICOM (DX, CT series) and NIfTI.

The finding vocabulary lives in :mod:`medvl.findings`.
"""

from medvl.data.phantom.ct import make_chest_ct
from medvl.data.phantom.dataset import write_phantom_dataset
from medvl.data.phantom.radiograph import make_chest_radiograph
from medvl.data.phantom.reports import PhantomReport, make_report
from medvl.data.phantom.study import PhantomStudy, PhantomView
from medvl.data.phantom.writers import (
    PatientIdentity,
    write_ct_dicom_series,
    write_nifti,
    write_png,
    write_radiograph_dicom,
    write_study_images,
)

__all__ = [
    "PatientIdentity",
    "PhantomReport",
    "PhantomStudy",
    "PhantomView",
    "make_chest_ct",
    "make_chest_radiograph",
    "make_report",
    "write_ct_dicom_series",
    "write_nifti",
    "write_phantom_dataset",
    "write_png",
    "write_radiograph_dicom",
    "write_study_images",
]
