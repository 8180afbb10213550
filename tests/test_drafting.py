"""Drafting with the embedded default model: right findings, batches that go on, honest exports."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import medvl
from medvl import DRAFT_NOTICE
from medvl.cli import main
from medvl.evaluate.labeler import label_report
from medvl.report.drafting import Drafter
from medvl.samples import sample_card, sample_path


@pytest.fixture(scope="module")
def drafter() -> Drafter:
    return Drafter()


def test_default_model_names_the_sample_finding_and_side(drafter):
    run = drafter.draft(["sample:chest-xray"])

    draft = run.drafts[0]
    truth = sample_card("chest-xray")["findings"][0]
    positive = {(key.kind, key.side) for key in label_report(" ".join(draft.sections.values())).positive}
    assert positive == {(truth["kind"], truth["side"])}
    assert draft.to_text().startswith(DRAFT_NOTICE)


def test_a_batch_goes_on_past_a_bad_study_and_reports_it(drafter, tmp_path):
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"\0" * 200)

    run = drafter.draft(["sample:chest-xray", broken, "sample:chest-xray"], batch_size=2)

    assert len(run.drafts) == 2
    assert [str(path) for path, _ in run.failures] == [str(broken)]
    assert str(broken) in str(run.failures[0][1])
    assert run.drafts[0].sections == run.drafts[1].sections  # same study, same batch position or not


def test_json_export_carries_sections_model_decoding_and_no_source_path(drafter):
    draft = drafter.draft(["sample:chest-xray"]).drafts[0]

    exported = json.loads(draft.to_json())

    assert exported["notice"] == DRAFT_NOTICE and exported["status"] == "preliminary"
    assert set(exported["sections"]) <= {"findings", "impression"} and exported["sections"]["findings"]
    assert exported["model"]["name"] == "medvl-phantom-cxr"
    assert exported["model"]["version"].startswith(medvl.__version__ + "+")
    assert exported["decoding"]["num_beams"] >= 1
    assert [s["text"] for s in exported["sentences"]] == [s.text for s in draft.sentences]
    assert str(sample_path("chest-xray")) not in draft.to_json()


def test_sentence_attention_maps_cover_each_view_and_sum_to_one_on_the_grid(drafter):
    draft = drafter.draft(["sample:chest-xray"], explain=True).drafts[0]

    maps = draft.maps["attention"]
    assert len(maps) == len(draft.sentences)
    for views in maps:
        assert [m.shape for m in views] == [(256, 256), (256, 256)]  # the sample's original pixels
        assert all(np.isfinite(m).all() and m.min() >= 0 for m in views)


def test_report_command_writes_text_json_and_an_overlay(tmp_path, capsys):
    assert main(["report", "sample:chest-xray", "--out", str(tmp_path)]) == 0

    written = {path.name.rsplit(".", 1)[-1]: path for path in tmp_path.iterdir()}
    assert sorted(written) == ["json", "png", "txt"]
    overlay = np.asarray(Image.open(next(tmp_path.glob("*_attention.png"))).convert("RGB")).astype(int)
    saturated = np.abs(overlay[..., 0] - overlay[..., 2]) > 60  # coloured (not grey) pixels: the heat map
    assert saturated.mean() > 0.01
    assert written["txt"].read_text().startswith(DRAFT_NOTICE)


def test_report_command_writes_dicom_sr_and_fhir_for_a_dicom_study(tmp_path):
    import highdicom as hd
    import pydicom

    assert main(["report", "sample:chest-ct", "--model", "ct", "--out", str(tmp_path), "--format", "sr,fhir", "--no-overlay"]) == 0

    sr = hd.sr.srread(next(tmp_path.glob("*.sr.dcm")))
    assert sr.VerificationFlag == "UNVERIFIED" and sr.CompletionFlag == "PARTIAL"
    fhir = json.loads(next(tmp_path.glob("*.fhir.json")).read_text())
    assert fhir["resourceType"] == "DiagnosticReport" and fhir["status"] == "preliminary"
    assert isinstance(pydicom.dcmread(next(tmp_path.glob("*.sr.dcm"))), pydicom.Dataset)


def test_eval_grounding_prints_the_pointing_game_per_kind(tmp_path, capsys):
    from medvl.data.phantom import write_phantom_dataset

    write_phantom_dataset(tmp_path / "data", 4, seed=31, normal_fraction=0.0, image_size=160, splits=(0.0, 0.0, 1.0))

    assert main(["eval", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--grounding",
                 "--maps", "attention", "--beams", "1"]) == 0

    table = json.loads((tmp_path / "out" / "grounding.json").read_text())
    assert table["per_kind"] and "pointing" in capsys.readouterr().out.lower()
