"""Writing phantom views as PNG, DICOM (DX radiograph, CT series) and NIfTI, atomically.

Geometry: a CT view's files all come from :attr:`PhantomView.affine_lps` - DICOM
ImageOrientationPatient ``(1, 0, 0, 0, 1, 0)``, ImagePositionPatient of slice ``k`` its
``(0, 0, k)`` voxel, slices written inferior→superior with InstanceNumber ``k + 1`` - and the
NIfTI affine is the same matrix in RAS (first two rows negated), with the array in the same
``(rows, cols, slices)`` order. A reader that follows DICOM and MONAI conventions gets identical
arrays and affines from both.

Identity: DICOM files carry a fake :class:`PatientIdentity` (a neutral default, or the one
given), never a real one; de-identification tests rely on these fields being filled.
UIDs are random, or derived from ``uid_seed`` so that the same seed writes the same UIDs
(views of one study written with one seed share their StudyInstanceUID).
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.sr.codedict import codes
from pydicom.uid import CTImageStorage, DigitalXRayImageStorageForPresentation, ExplicitVRLittleEndian, generate_uid

from medvl.data.phantom.study import PhantomStudy, PhantomView
from medvl.errors import ConfigError
from medvl.files import atomic_directory, atomic_path, atomic_write_bytes

CT_WINDOWS = {"lung": (-600.0, 1500.0), "soft_tissue": (40.0, 400.0)}
CT_RESCALE_INTERCEPT = -1024  # stored value 0 is -1024 HU; 12 bits reach 3071 HU
STORED_BITS = 12  # both radiographs and CT store 12 bits in 16
PATIENT_ORIENTATION = {"frontal": ["L", "F"], "lateral": ["P", "F"]}  # row direction, column direction


@dataclass(frozen=True)
class PatientIdentity:
    """A fake patient and study identity for DICOM headers (DICOM formats: PN, DA)."""

    name: str = "PHANTOM^ANONYMOUS"
    patient_id: str = "PHANTOM-000000"
    birth_date: str = "19700101"
    sex: str = "O"
    accession_number: str = "PHANTOM000000"
    study_date: str = "20000101"


def _uid(uid_seed: str | None, role: str) -> str:
    return generate_uid() if uid_seed is None else generate_uid(entropy_srcs=[uid_seed, role])


# --- PNG -----------------------------------------------------------------------------------------
def write_png(path: str | Path, image: np.ndarray, *, bit_depth: int = 8) -> Path:
    """Write a ``[0, 1]`` 2D image as an 8- or 16-bit grayscale PNG (``round(image * max)``)."""
    if bit_depth not in (8, 16):
        raise ConfigError(f"PNG bit depth must be 8 or 16, got {bit_depth!r}", path)
    if image.ndim != 2:
        raise ConfigError(f"a PNG holds one 2D image, got an array of shape {image.shape}", path)
    maximum = 2**bit_depth - 1
    pixels = np.round(np.clip(image, 0.0, 1.0) * maximum).astype(np.uint8 if bit_depth == 8 else np.uint16)
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG", compress_level=1)
    return path


# --- DICOM ---------------------------------------------------------------------------------------
def _dicom_base(
    sop_class: str,
    modality: str,
    identity: PatientIdentity,
    uid_seed: str,
    series_role: str,
    instance_role: str,
) -> Dataset:
    """Patient, study, series, equipment and SOP common attributes shared by every file."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = _uid(uid_seed, instance_role)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = identity.name
    ds.PatientID = identity.patient_id
    ds.PatientBirthDate = identity.birth_date
    ds.PatientSex = identity.sex
    ds.StudyInstanceUID = _uid(uid_seed, "study")
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = identity.study_date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
    ds.AccessionNumber = identity.accession_number
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.StudyDescription = "PHANTOM CHEST"
    ds.Modality = modality
    ds.SeriesInstanceUID = _uid(uid_seed, series_role)
    ds.BodyPartExamined = "CHEST"
    ds.Manufacturer = "medvl synthetic phantom"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    return ds


def _save(ds: Dataset, path: Path) -> None:
    ds.save_as(path, enforce_file_format=True)


def write_radiograph_dicom(
    path: str | Path,
    view: PhantomView,
    *,
    identity: PatientIdentity | None = None,
    uid_seed: str | None = None,
    series_number: int = 1,
) -> Path:
    """Write a radiograph view as a DX (for presentation) DICOM file, 12 bits in 16.

    Stored values are ``round(image * 4095)``; ViewPosition is "PA" or "LL", and PixelSpacing
    equals ImagerPixelSpacing (no magnification correction).
    """
    if view.spatial_dims != 2 or view.name not in PATIENT_ORIENTATION:
        raise ConfigError(f"write_radiograph_dicom needs a frontal or lateral view, got '{view.name}'", path)
    uid_seed = uid_seed or generate_uid()
    ds = _dicom_base(
        DigitalXRayImageStorageForPresentation,
        "DX",
        identity or PatientIdentity(),
        uid_seed,
        f"series/{view.name}",
        f"instance/{view.name}",
    )
    ds.SeriesNumber = series_number
    ds.InstanceNumber = 1
    ds.SeriesDescription = f"PHANTOM CHEST {view.view_position}"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.ViewPosition = view.view_position
    ds.PatientOrientation = PATIENT_ORIENTATION[view.name]
    ds.ImageLaterality = "U"
    region = Dataset()
    region.CodeValue, region.CodingSchemeDesignator, region.CodeMeaning = (
        codes.SCT.Chest.value,
        codes.SCT.Chest.scheme_designator,
        codes.SCT.Chest.meaning,
    )
    ds.AnatomicRegionSequence = DicomSequence([region])
    ds.ImagerPixelSpacing = [float(s) for s in view.spacing]
    ds.PixelSpacing = [float(s) for s in view.spacing]  # the phantom has no magnification
    ds.PixelSpacingCalibrationType = "GEOMETRY"
    ds.EstimatedRadiographicMagnificationFactor = 1.0
    ds.DetectorType = ""
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = -1  # higher values: less X-ray reached the detector
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.RescaleType = "US"
    ds.PresentationLUTShape = "IDENTITY"
    maximum = 2**STORED_BITS - 1
    ds.WindowCenter = (maximum + 1) // 2
    ds.WindowWidth = maximum + 1
    pixels = np.round(np.clip(view.image, 0.0, 1.0) * maximum).astype(np.uint16)
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelData = pixels.tobytes()
    path = Path(path)
    with atomic_path(path) as tmp:
        _save(ds, tmp)
    return path


def write_ct_dicom_series(
    folder: str | Path,
    view: PhantomView,
    *,
    identity: PatientIdentity | None = None,
    uid_seed: str | None = None,
    window: str = "lung",
    shuffle_names: bool = False,
    series_number: int = 1,
) -> list[Path]:
    """Write a CT view as one CT Image Storage file per slice into ``folder`` (replaced whole).

    Stored values are ``HU + 1024`` (RescaleIntercept -1024, slope 1), so
    ``apply_modality_lut`` returns the exact HU. With ``shuffle_names`` the file names are a
    seeded permutation unrelated to slice order. Returns the paths in slice order.
    """
    if view.spatial_dims != 3 or view.origin is None:
        raise ConfigError(f"write_ct_dicom_series needs a CT view, got '{view.name}'", folder)
    if window not in CT_WINDOWS:
        raise ConfigError(f"unknown CT window '{window}' (windows: {', '.join(CT_WINDOWS)})", folder)
    uid_seed = uid_seed or generate_uid()
    identity = identity or PatientIdentity()
    affine = view.affine_lps
    rows, cols, slices = view.image.shape
    stored = np.round(view.image - CT_RESCALE_INTERCEPT)
    if stored.min() < 0 or stored.max() > 2**STORED_BITS - 1:
        raise ConfigError("CT values must lie between -1024 and 3071 HU to be stored in 12 bits", folder)
    stored = stored.astype(np.uint16)
    order = np.arange(slices)
    if shuffle_names:
        order = np.random.default_rng(list(f"{uid_seed}/names".encode())).permutation(slices)
    names = [f"IM{order[k] + 1:05d}.dcm" for k in range(slices)]
    frame_of_reference = _uid(uid_seed, "frame_of_reference")
    center, width = CT_WINDOWS[window]
    folder = Path(folder)
    with atomic_directory(folder) as tmp:
        for k in range(slices):
            ds = _dicom_base(CTImageStorage, "CT", identity, uid_seed, "series/ct", f"instance/ct/{k}")
            ds.SeriesNumber = series_number
            ds.InstanceNumber = k + 1
            ds.AcquisitionNumber = 1
            ds.SeriesDescription = "PHANTOM CHEST CT"
            ds.ImageType = ["DERIVED", "PRIMARY", "AXIAL"]
            ds.FrameOfReferenceUID = frame_of_reference
            ds.PositionReferenceIndicator = ""
            ds.PatientPosition = "HFS"
            ds.KVP = 120
            ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
            position = affine @ np.array([0.0, 0.0, k, 1.0])
            ds.ImagePositionPatient = [round(float(v), 4) for v in position[:3]]
            ds.SliceLocation = round(float(position[2]), 4)
            ds.PixelSpacing = [float(view.spacing[0]), float(view.spacing[1])]
            ds.SliceThickness = float(view.spacing[2])
            ds.SpacingBetweenSlices = float(view.spacing[2])
            ds.RescaleIntercept = CT_RESCALE_INTERCEPT
            ds.RescaleSlope = 1
            ds.RescaleType = "HU"
            ds.WindowCenter = center
            ds.WindowWidth = width
            ds.Rows, ds.Columns = rows, cols
            ds.PixelData = np.ascontiguousarray(stored[:, :, k]).tobytes()
            _save(ds, tmp / names[k])
    return [folder / name for name in names]


# --- NIfTI ---------------------------------------------------------------------------------------
def write_nifti(path: str | Path, view: PhantomView) -> Path:
    """Write a CT view as gzipped NIfTI-1 (int16 HU, RAS affine = the DICOM geometry)."""
    if view.spatial_dims != 3 or view.origin is None:
        raise ConfigError(f"write_nifti needs a CT view, got '{view.name}'", path)
    image = nib.Nifti1Image(view.image.astype(np.int16), view.affine_ras)
    image.header.set_xyzt_units("mm")
    image.set_qform(view.affine_ras, code=1)
    image.set_sform(view.affine_ras, code=1)
    image.header["scl_slope"], image.header["scl_inter"] = 1.0, 0.0
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed:
        compressed.write(image.to_bytes())
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


# --- a whole study -------------------------------------------------------------------------------
def supported_formats(spatial_dims: int) -> tuple[str, ...]:
    """The image formats :func:`write_study_images` writes for 2D or 3D studies."""
    return ("png", "dicom") if spatial_dims == 2 else ("dicom", "nifti")


def write_study_images(
    folder: str | Path,
    study: PhantomStudy,
    *,
    image_format: str = "png",
    bit_depth: int = 8,
    identity: PatientIdentity | None = None,
    uid_seed: str | None = None,
) -> list[Path]:
    """Write every view of ``study`` into ``folder``; returns one path per view, in view order.

    Radiographs: ``<view>.png`` or ``<view>.dcm``. CT: a DICOM series folder ``ct/`` or
    ``ct.nii.gz``. All views written by one call share one StudyInstanceUID.
    """
    folder = Path(folder)
    if image_format not in supported_formats(study.spatial_dims):
        allowed = " or ".join(supported_formats(study.spatial_dims))
        raise ConfigError(
            f"{study.spatial_dims}D phantom studies are written as {allowed}, not '{image_format}'", folder
        )
    uid_seed = uid_seed or generate_uid()
    paths = []
    for number, view in enumerate(study.views, start=1):
        if image_format == "png":
            paths.append(write_png(folder / f"{view.name}.png", view.image, bit_depth=bit_depth))
        elif image_format == "nifti":
            paths.append(write_nifti(folder / f"{view.name}.nii.gz", view))
        elif view.spatial_dims == 2:
            dicom = write_radiograph_dicom(
                folder / f"{view.name}.dcm", view, identity=identity, uid_seed=uid_seed, series_number=number
            )
            paths.append(dicom)
        else:
            write_ct_dicom_series(folder / view.name, view, identity=identity, uid_seed=uid_seed, series_number=number)
            paths.append(folder / view.name)
    return paths
