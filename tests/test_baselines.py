"""Text baselines: what each writes, and their scores on the real IU X-ray test reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medvl.evaluate.baselines import (
    TrigramModel,
    baseline_table,
    commonest_report,
    composed_normal_report,
    finding_composition,
    label_consensus,
    label_retrieval,
    main,
    normal_template,
)

TRAIN = [
    "the heart is normal . the lungs are clear .",
    "the heart is normal . the lungs are clear .",
    "the heart is normal . no pleural effusion . the lungs are clear .",
    "mild cardiomegaly . the lungs are clear .",
    "mild cardiomegaly . small left pleural effusion .",
]


def test_commonest_report_and_normal_template() -> None:
    assert commonest_report(TRAIN) == "the heart is normal . the lungs are clear ."
    assert normal_template(TRAIN, n_sentences=3) == "the lungs are clear . the heart is normal . mild cardiomegaly ."


def test_label_retrieval_finds_a_report_with_the_same_positive_observations() -> None:
    retrieved = label_retrieval(TRAIN, {"a": "cardiomegaly . lungs clear .", "b": "left effusion . cardiomegaly ."})
    assert retrieved == {"a": "mild cardiomegaly . the lungs are clear .", "b": "mild cardiomegaly . small left pleural effusion ."}


def test_label_consensus_keeps_the_wording_its_label_group_shares() -> None:
    train = [
        "heart size normal . lungs clear bilaterally . no effusion seen .",  # the group's odd one out, first
        "the heart is normal in size . the lungs are clear .",
        "the heart is normal in size . the lungs are clear . no pneumothorax .",
        "the heart is normal in size . the lungs are clear . no pneumothorax .",
        "the heart is normal in size . the lungs are clear . no pleural effusion .",
        "mild cardiomegaly . the lungs are clear .",
    ]
    chosen = label_consensus(train, {"a": "normal heart . clear lungs .", "b": "cardiomegaly ."})
    assert chosen == {
        "a": "the heart is normal in size . the lungs are clear . no pneumothorax .",
        "b": "mild cardiomegaly . the lungs are clear .",
    }
    assert label_retrieval(train, {"a": "normal heart ."})["a"] == chosen["a"]  # here also the commonest


HEART, LUNGS, PLEURA = "the heart is normal in size .", "the lungs are clear .", "there is no pleural effusion ."
NODULE = "there is a right upper lobe nodule ."


def normal_pairs() -> list[str]:
    """Normal reports, each with two of three common sentences and one of its own."""
    own = [f"{word} ." for word in ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota")]
    pairs = [f"{HEART} {LUNGS}", f"{LUNGS} {PLEURA}", f"{HEART} {PLEURA}"] * 3
    return [f"{pair} {sentence}" for pair, sentence in zip(pairs, own)]


def test_the_composed_normal_report_says_what_most_normal_reports_share() -> None:
    train = normal_pairs() + [f"mild cardiomegaly . {LUNGS} {PLEURA}"] * 4  # abnormal: not in the normal group
    assert composed_normal_report(train) == f"{HEART} {LUNGS} {PLEURA}"
    assert composed_normal_report(TRAIN) == "the heart is normal . the lungs are clear ."
    abnormal = ["mild cardiomegaly . the lungs are clear ."] * 3
    assert composed_normal_report(abnormal) == normal_template(abnormal)  # no normal report to compose from


def test_the_finding_composition_oracle_composes_the_test_reports_finding_group() -> None:
    nodules = [f"{HEART} {NODULE} {LUNGS}", f"{NODULE} {PLEURA}"] * 5
    train = normal_pairs() * 2 + nodules + ["mild cardiomegaly . the lungs are clear ."] * 3
    tests = {"normal": "lungs clear .", "nodule": "left lung nodule .", "heart": "cardiomegaly ."}
    fallback = {study: f"fallback {study} ." for study in tests}
    written = finding_composition(train, tests, fallback)
    assert written["normal"] == f"{HEART} {LUNGS} {PLEURA}"
    assert NODULE in written["nodule"].replace(" . ", " .|").split("|")  # states the group's finding
    assert written["heart"] == "fallback heart ."  # three cardiomegaly reports are no group


def test_trigram_model_writes_the_likeliest_report_without_repeating_itself() -> None:
    assert TrigramModel(TRAIN).generate() == "the heart is normal . the lungs are clear ."
    looping = TrigramModel(["a b a b a b a b c ."])
    assert looping.generate() == "a b a b c ."


@pytest.fixture(scope="module")
def table(shared_data: Path) -> dict:
    """BLEU and ROUGE-L against R2Gen's references (METEOR's Java run is left to the script)."""
    return baseline_table(shared_data / "iu_xray" / "annotation.json", metrics=("bleu", "rouge"), r2gen_references=True)


@pytest.mark.shared_data
def test_calibration_against_the_published_word_overlap_figures(table: dict) -> None:
    """The issue's figures (pycocoevalcap, R2Gen's cleaning and references, this test split):
    commonest report BLEU-4 0.081 / ROUGE-L 0.312, six-sentence template 0.147 / 0.368."""
    commonest, template = table["commonest report"]["nlg"], table["normal template"]["nlg"]
    assert (round(commonest["BLEU_4"], 3), round(commonest["ROUGE_L"], 3)) == (0.081, 0.312)
    assert template["BLEU_4"] == pytest.approx(0.147, abs=0.005)
    assert template["ROUGE_L"] == pytest.approx(0.368, abs=0.005)


@pytest.mark.shared_data
def test_the_label_oracles_beat_the_fixed_reports_on_clinical_f1(table: dict) -> None:
    f1 = {name: scores["clinical"]["micro"]["f1"] for name, scores in table.items()}
    print("\n" + "\n".join(f"{name}: clinical F1 (micro) {value:.3f}" for name, value in f1.items()))
    blind = max(value for name, value in f1.items() if "oracle" not in name)
    assert f1["label retrieval (oracle)"] > blind + 0.1 and f1["label retrieval (oracle)"] > 0.9
    assert f1["label consensus (oracle)"] > blind + 0.1 and f1["label consensus (oracle)"] > 0.9


@pytest.mark.shared_data
def test_the_phantom_reader_shows_the_ceiling_of_the_iu_phantom_set(table: dict) -> None:
    """A reader of exactly what each test phantom draws: clinical F1 (micro) 0.886 (0.853 before the
    degenerative spine was drawn); 104 test reports state an abnormality no phantom shows."""
    reader = table["phantom reader (oracle)"]["clinical"]["micro"]
    print(f"\nphantom reader (oracle): clinical P / R / F1 (micro) {reader['precision']:.3f} / "
          f"{reader['recall']:.3f} / {reader['f1']:.3f}")
    assert reader["f1"] == pytest.approx(0.886, abs=0.002)


@pytest.mark.shared_data
def test_the_consensus_oracle_words_its_reports_better_than_retrieval(table: dict) -> None:
    """Reading every label right and choosing the wording the label group shares: BLEU-4 about 0.18,
    above the template (0.147) and the commonest report with the same labels (0.09)."""
    bleu = {name: scores["nlg"]["BLEU_4"] for name, scores in table.items()}
    print(f"\nBLEU-4 (R2Gen's references): {', '.join(f'{name} {value:.3f}' for name, value in bleu.items())}")
    assert bleu["label consensus (oracle)"] > bleu["normal template"] + 0.02
    assert bleu["label consensus (oracle)"] > bleu["label retrieval (oracle)"] + 0.06


@pytest.mark.shared_data
def test_the_composed_normal_report_is_the_strongest_image_blind_wording(table: dict) -> None:
    """The sentences most normal training reports share beat the six commonest sentences on word
    overlap, with the same clinical F1: the report bank's normal wording, without an image."""
    composed, template = table["composed normal report"], table["normal template"]
    print(f"\ncomposed normal report: BLEU-4 {composed['nlg']['BLEU_4']:.3f}, ROUGE-L {composed['nlg']['ROUGE_L']:.3f}")
    assert composed["nlg"]["BLEU_4"] > template["nlg"]["BLEU_4"] + 0.02
    assert composed["nlg"]["ROUGE_L"] > template["nlg"]["ROUGE_L"] + 0.03
    assert composed["clinical"]["micro"]["f1"] == pytest.approx(template["clinical"]["micro"]["f1"], abs=0.01)
    oracle = table["finding composition (oracle)"]
    assert oracle["clinical"]["micro"]["f1"] > composed["clinical"]["micro"]["f1"] + 0.2


def test_script_writes_json_and_markdown(tmp_path: Path, capsys) -> None:
    studies = [{"id": f"r{n}", "report": report.replace(" .", ".")} for n, report in enumerate(TRAIN)]
    annotation = tmp_path / "annotation.json"
    annotation.write_text(json.dumps({"train": studies, "test": [dict(s, id=f"t{s['id']}") for s in studies[2:]]}))
    assert main(["--annotation", str(annotation), "--out", str(tmp_path / "out"), "--no-meteor"]) == 0
    table = (tmp_path / "out" / "baselines.md").read_text().splitlines()
    assert table[0].startswith("|  | BLEU-1 |") and "METEOR" not in table[0] and len(table) == 2 + 8 + 2
    scores = json.loads((tmp_path / "out" / "baselines.json").read_text())
    assert scores["label retrieval (oracle)"]["clinical"]["micro"]["f1"] == 1.0
    assert scores["label consensus (oracle)"]["clinical"]["micro"]["f1"] == 1.0
    assert scores["phantom reader (oracle)"]["clinical"]["micro"]["f1"] == 1.0  # every finding here is drawn
    assert "commonest report" in capsys.readouterr().out
