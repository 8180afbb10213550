"""The 3D path end to end, and real studies from ../shared/data drafted without error."""

from __future__ import annotations

import pytest

from medvl.data.phantom import make_chest_ct, write_ct_dicom_series, write_nifti
from medvl.findings import Finding
from medvl.report.drafting import Drafter

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ct_drafter() -> Drafter:
    return Drafter("ct")


def test_a_phantom_ct_drafts_the_same_from_a_dicom_series_and_from_nifti(ct_drafter, tmp_path):
    view = make_chest_ct([Finding("pleural_effusion", side="left")], seed=404).view("ct")
    write_ct_dicom_series(tmp_path / "series", view, shuffle_names=True)
    write_nifti(tmp_path / "volume.nii.gz", view)

    run = ct_drafter.draft([tmp_path / "series", tmp_path / "volume.nii.gz"], explain=True)

    assert not run.failures
    from_dicom, from_nifti = run.drafts
    assert from_dicom.sentences and from_dicom.tokens == from_nifti.tokens
    assert from_dicom.study_uid_hash is not None and from_nifti.study_uid_hash is None
    assert [m.shape for m in from_dicom.maps["attention"][0]] == [view.image.shape]  # a map per voxel, every slice


def test_the_2d_model_refuses_a_volume_with_a_clear_error(tmp_path):
    view = make_chest_ct(seed=1).view("ct")
    write_nifti(tmp_path / "volume.nii.gz", view)

    run = Drafter().draft([tmp_path / "volume.nii.gz"])

    assert not run.drafts
    assert "expected 2D images (spatial_dims: 2), got a 3D one of size 64x64x48" in str(run.failures[0][1])


def test_real_dicom_series_and_real_radiographs_are_drafted(shared_data, ct_drafter):
    series = [shared_data / "dicom" / name for name in ("ct_3slice_series", "mr_t1_sagittal_series", "mr_adc_20slice_series")]
    radiographs = sorted((shared_data / "covid_cxr" / "images").glob("*.png"))[:3]

    volumes = ct_drafter.draft(series)
    pictures = Drafter().draft(radiographs)

    assert not volumes.failures and not pictures.failures
    assert all(draft.sentences for draft in volumes.drafts + pictures.drafts)
