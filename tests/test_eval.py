"""`medvl eval`: the shipped model names held-out phantom findings; the scores are written."""

from __future__ import annotations

import json

import pytest

from medvl.cli import main
from medvl.data.phantom import write_phantom_dataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """Fresh-seed single-finding phantoms the default model never saw (all in the test split)."""
    folder = tmp_path_factory.mktemp("held_out")
    write_phantom_dataset(folder, 48, seed=2026, mode="single", normal_fraction=0.25, image_size=192,
                          splits=(0.0, 0.0, 1.0))
    return folder


def test_eval_reports_finding_accuracy_and_word_overlap(held_out, tmp_path, capsys):
    assert main(["eval", "--data", str(held_out), "--out", str(tmp_path), "--beams", "1"]) == 0

    scores = json.loads((tmp_path / "eval.json").read_text())
    assert scores["n_drafted"] == scores["n_studies"] == 48
    assert scores["findings"]["abnormal"]["accuracy"] >= 0.55  # 400 held-out phantoms (README): 0.72
    assert scores["findings"]["normal"]["accuracy"] >= 0.85  # README: 0.98
    assert 0.3 < scores["nlg"]["BLEU_4"] <= 1 and 0.5 < scores["nlg"]["ROUGE_L"] <= 1
    lines = (tmp_path / "drafts.jsonl").read_text().splitlines()
    assert len(lines) == 48 and {"study_id", "draft", "reference", "findings"} <= set(json.loads(lines[0]))
    assert "finding accuracy" in capsys.readouterr().out


def test_eval_with_consensus_decoding_records_it_and_still_names_the_findings(held_out, tmp_path):
    """--consensus 3 keeps, of three beam candidates, the one the others agree with most."""
    assert main(["eval", "--data", str(held_out), "--out", str(tmp_path), "--consensus", "3"]) == 0

    scores = json.loads((tmp_path / "eval.json").read_text())
    assert scores["decoding"]["consensus_candidates"] == 3
    assert scores["n_drafted"] == 48
    assert scores["findings"]["abnormal"]["accuracy"] >= 0.55
    assert scores["findings"]["normal"]["accuracy"] >= 0.85
    drafts = [json.loads(line)["draft"] for line in (tmp_path / "drafts.jsonl").read_text().splitlines()]
    assert all(draft.strip() for draft in drafts)
