"""The dashboard: samples drafted under the DRAFT notice, a sentence's map drawn over the views,
uploads (files, zipped series, bad files) opened or refused in one line, exports that keep the
notice. The app runs in Streamlit's AppTest; its helpers are tested directly."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest

from medvl import DRAFT_NOTICE
from medvl.dashboard import streamlit_command
from medvl.dashboard.pictures import view_picture, window_choices
from medvl.dashboard.review import export_json, export_text, sr_bytes
from medvl.dashboard.studies import extract_zip, readable_error, upload_source
from medvl.errors import NotDicomError, ScanError
from medvl.explain.overlay import peak_slice
from medvl.io import load_study
from medvl.report.draft import Draft, DraftSentence
from medvl.samples import sample_path

pytest.importorskip("streamlit", reason="the dashboard needs streamlit (pip install 'medvl[dashboard]')")
from streamlit.testing.v1 import AppTest

from medvl.dashboard.app import drafted

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
RUN_TIMEOUT = 60  # seconds for one run of the script, drafting included


def open_app() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT).run()


def open_sample(name: str) -> AppTest:
    app = open_app()
    app.selectbox(key="sample").select(name).run()
    assert not app.exception, app.exception
    return app


def upload(files: list[tuple[str, bytes]]) -> AppTest:
    app = open_app()
    app.radio(key="origin").set_value("Upload").run()
    app.file_uploader(key="upload").set_value([(name, data, "application/octet-stream") for name, data in files]).run()
    assert not app.exception, app.exception
    return app


def sentence_choice(app: AppTest):
    return next(radio for radio in app.radio if radio.label.startswith("Choose a sentence"))


def labelled(elements, label: str):
    return next(element for element in elements if element.label == label)


def zipped(folder: Path, prefix: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, prefix + path.name)
    return buffer.getvalue()


def coloured(picture: np.ndarray) -> np.ndarray:
    """Pixels the colour map painted (a grey pixel has red equal to blue)."""
    return np.abs(picture[..., 0].astype(int) - picture[..., 2].astype(int)) > 60


# --- the app -------------------------------------------------------------------------------------


def test_the_page_opens_under_the_draft_notice_and_asks_for_a_study():
    app = open_app()

    assert not app.exception
    assert DRAFT_NOTICE in app.warning[0].value
    assert "Choose a sample or upload a study" in app.info[0].value


def test_a_sample_is_drafted_with_its_sections_scored_and_exportable():
    app = open_sample("chest-xray")

    assert not app.error
    draft_text = labelled(app.text_area, "Edit the draft").value
    assert draft_text.startswith(DRAFT_NOTICE) and "FINDINGS:" in draft_text
    sentences = [option for option in sentence_choice(app).options if not option.startswith("None")]
    assert sentences and all(option.split("**: ", 1)[1] in draft_text for option in sentences)
    assert [image.proto.imgs[0].alt for image in app.image] == ["frontal view", "lateral view"]
    assert labelled(app.metric, "Findings").value == "match"  # the default model names the right effusion
    assert float(labelled(app.metric, "BLEU-1").value) > 0.2
    assert [button.label for button in app.download_button] == ["Text", "JSON"]  # no SR for a PNG study


def test_sentences_not_written_by_the_decoder_say_who_wrote_them():
    app = open_app()
    app.text_input(key="model").set_value("iu").run()
    app.selectbox(key="sample").select("chest-xray").run()  # its phantom shows a right effusion
    assert not app.exception, app.exception

    options = [option for option in sentence_choice(app).options if not option.startswith("None")]
    marked = [option for option in options if option.endswith(("_(report bank)_", "_(finding sentence)_"))]
    assert marked, options  # iu drafts with the report bank and finding sentences
    assert any("report bank" in caption.value and "finding sentence" in caption.value for caption in app.caption)


def test_choosing_a_sentence_draws_its_map_over_each_view_and_none_removes_it():
    app = open_sample("chest-xray")
    choice = sentence_choice(app)

    choice.set_value(0).run()

    assert [image.proto.imgs[0].alt for image in app.image] == [
        "frontal view with the Attention map overlay",
        "lateral view with the Attention map overlay",
    ]
    marker = app.html[0].value
    assert 'data-medvl-overlay="attention"' in marker and 'data-sentence="1"' in marker

    sentence_choice(app).set_value(-1).run()

    assert all("overlay" not in image.proto.imgs[0].alt for image in app.image)
    assert not app.html


def test_a_ct_sample_has_a_slice_slider_window_presets_and_a_dicom_sr(tmp_path):
    app = open_sample("chest-ct")

    slider = labelled(app.slider, "Slice")
    assert (slider.min, slider.max, slider.value) == (1, 48, 25)  # the middle slice, no map chosen
    assert {"auto", "lung", "mediastinum", "bone"} <= set(labelled(app.selectbox, "Window").options)
    labelled(app.selectbox, "Window").select("lung").run()
    sentence_choice(app).set_value(0).run()
    assert not app.exception and not app.error
    assert "Attention map overlay" in app.image[0].proto.imgs[0].alt
    assert "DICOM SR" in [button.label for button in app.download_button]

    run = drafted("sample:chest-ct", "ct", sample_path("chest-ct"))  # the app's cached draft
    peak = peak_slice(run.drafts[0].maps["attention"][0][0])
    assert labelled(app.slider, "Slice").value == peak + 1  # a chosen map opens at its peak slice
    sr = pydicom.dcmread(io.BytesIO(sr_bytes(run.drafts[0], sample_path("chest-ct"))))
    source = pydicom.dcmread(next(sample_path("chest-ct").rglob("*.dcm")), stop_before_pixels=True)
    assert (sr.Modality, sr.CompletionFlag, sr.VerificationFlag) == ("SR", "PARTIAL", "UNVERIFIED")
    assert sr.StudyInstanceUID == source.StudyInstanceUID


def test_an_uploaded_zip_of_views_is_drafted_as_one_study():
    app = upload([("study.zip", zipped(sample_path("chest-xray"), prefix="study/"))])

    assert not app.error
    assert [image.proto.imgs[0].alt for image in app.image] == ["frontal view", "lateral view"]
    assert labelled(app.text_area, "Edit the draft").value.startswith(DRAFT_NOTICE)


def test_a_bad_upload_is_reported_in_one_line_naming_the_file():
    app = upload([("broken.dcm", b"\0" * 200)])

    assert [error.value for error in app.error] == [
        "broken.dcm: not a DICOM file: no 'DICM' marker after the 128-byte preamble"
    ]
    assert not app.image


def test_a_zip_that_climbs_out_of_its_folder_is_refused_in_one_line():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../escaped.png", (sample_path("chest-xray") / "frontal.png").read_bytes())

    app = upload([("evil.zip", buffer.getvalue())])

    assert [error.value for error in app.error] == [
        "evil.zip: unsafe entry '../escaped.png' in the archive (absolute, or climbing out with '..')"
    ]


@pytest.mark.shared_data
def test_real_dicom_series_and_real_radiograph_open_without_error(shared_data):
    series = zipped(shared_data / "dicom" / "ct_3slice_series")
    radiograph = min((shared_data / "covid_cxr" / "images").glob("*.png"))

    volume = upload([("ct_3slice_series.zip", series)])
    picture = upload([(radiograph.name, radiograph.read_bytes())])

    for app in (volume, picture):
        assert not app.error and not app.exception
        assert labelled(app.text_area, "Edit the draft").value.startswith(DRAFT_NOTICE)
    assert labelled(volume.slider, "Slice").max == 3
    assert len(picture.image) == 1


# --- the helpers ---------------------------------------------------------------------------------


def test_several_uploaded_files_are_one_study_folder_and_a_bad_name_is_refused(tmp_path):
    xray = sample_path("chest-xray")
    files = [(name, (xray / name).read_bytes()) for name in ("frontal.png", "lateral.png")]

    source = upload_source(files, tmp_path)

    assert source.path.is_dir() and sorted(p.name for p in source.path.iterdir()) == ["frontal.png", "lateral.png"]
    assert [view.info.role for view in load_study(source.path).views] == ["frontal", "lateral"]
    assert upload_source(files, tmp_path) == source  # the same contents: the same study
    with pytest.raises(ScanError, match=r"^\.\.: not a usable file name$"):
        upload_source([("..", b"x")], tmp_path)


@pytest.mark.parametrize("entry", ["../outside.txt", "/etc/outside.txt", "a/../../outside.txt", "..\\outside.txt"])
def test_extract_zip_refuses_entries_that_leave_the_folder(tmp_path, entry):
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zipped_file:
        zipped_file.writestr(entry, b"x")

    with pytest.raises(ScanError, match="unsafe entry"):
        extract_zip(archive, tmp_path / "into")

    assert sorted(path.name for path in tmp_path.rglob("*")) == ["upload.zip"]


def test_extract_zip_refuses_an_archive_that_unpacks_too_large_or_is_not_a_zip(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped_file:
        zipped_file.writestr("zeros.dcm", b"\0" * 100_000)
    (tmp_path / "fake.zip").write_bytes(b"not a zip")

    with pytest.raises(ScanError, match=r"^bomb\.zip: the archive unpacks to 0 MiB, over the 0 MiB limit$"):
        extract_zip(archive, tmp_path / "into", max_bytes=50_000)
    with pytest.raises(ScanError, match=r"^fake\.zip: not a readable zip archive"):
        extract_zip(tmp_path / "fake.zip", tmp_path / "into")


def test_errors_name_uploaded_files_as_the_reader_named_them(tmp_path):
    inside = NotDicomError("not a DICOM file", tmp_path / "0123abcd" / "series" / "IM1")
    elsewhere = NotDicomError("not a DICOM file", "/data/IM1")

    assert readable_error(inside, tmp_path) == "series/IM1: not a DICOM file"
    assert readable_error(elsewhere, tmp_path) == "/data/IM1: not a DICOM file"


def test_a_map_colours_the_view_where_it_is_high_and_leaves_the_rest_as_it_was():
    view = load_study(sample_path("chest-xray")).views[0]
    heat = np.zeros(view.info.size, dtype=np.float32)
    heat[20:60, 30:90] = 1.0

    plain = view_picture(view)
    overlaid = view_picture(view, heat, alpha=0.8)

    assert plain.shape == (*view.info.size, 3) and not coloured(plain).any()
    assert coloured(overlaid)[20:60, 30:90].all()
    assert np.array_equal(overlaid[100:], plain[100:])
    assert np.array_equal(view_picture(view, heat, alpha=0.0), plain)


def test_on_a_volume_a_slice_is_painted_by_its_share_of_the_volume_peak():
    view = load_study(sample_path("chest-ct")).views[0]
    heat = np.zeros(view.info.size, dtype=np.float32)
    heat[10:30, 10:30, 5] = 1.0
    heat[10:30, 10:30, 40] = 0.25

    def change(slice_index: int) -> float:
        painted = view_picture(view, heat, alpha=1.0, slice_index=slice_index).astype(int)
        return float(np.abs(painted - view_picture(view, slice_index=slice_index).astype(int)).mean())

    assert change(40) < 0.5 * change(5)


def test_window_choices_offer_ct_presets_only_for_volumes():
    radiograph = load_study(sample_path("chest-xray")).views
    volume = load_study(sample_path("chest-ct")).views

    assert window_choices(radiograph)[0] == "auto" and "lung" not in window_choices(radiograph)
    assert {"auto", "lung", "bone", "brain"} <= set(window_choices(volume))


def test_exports_keep_the_notice_and_record_the_reader_edit():
    draft = Draft(
        study="s1",
        study_uid_hash=None,
        sentences=[DraftSentence("findings", "No effusion.", 0, 2)],
        tokens=["no", "effusion", "."],
        model_name="m",
        model_version="0.1",
        decoding={},
    )
    edited = "FINDINGS:\nSmall right effusion."

    assert export_text(edited) == f"{DRAFT_NOTICE}\n\n{edited}\n"
    assert export_text(draft.to_text()) == draft.to_text()
    assert "edited_text" not in json.loads(export_json(draft, draft.to_text()))
    exported = json.loads(export_json(draft, edited))
    assert exported["edited_text"] == export_text(edited) and exported["sections"] == {"findings": "No effusion."}


def test_the_launcher_serves_on_localhost_headless_with_an_upload_limit():
    command = streamlit_command(port=8600, max_upload_mb=64)

    options = dict(zip(command[5::2], command[6::2]))
    assert command[1:4] == ["-m", "streamlit", "run"] and command[4].endswith("medvl/dashboard/app.py")
    assert options["--server.address"] == "127.0.0.1" and options["--server.port"] == "8600"
    assert options["--server.headless"] == "true" and options["--server.maxUploadSize"] == "64"
    assert options["--browser.gatherUsageStats"] == "false"
