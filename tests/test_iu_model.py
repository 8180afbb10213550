"""The embedded `iu` model (IU X-ray report language, trained on IU-phantoms) reads the image:
it calls an enlarged heart where the phantom draws one and not where it does not, and it
reproduces its row of docs/results.md on the IU-phantom test split (with ../shared)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medvl.data.phantom import make_chest_radiograph, write_study_images
from medvl.evaluate.chexpert import CARDIOMEGALY, NO_FINDING, label_chexpert
from medvl.findings import Finding
from medvl.report.drafting import Drafter

pytestmark = pytest.mark.slow

SEEDS = (11, 12, 13, 14)


@pytest.fixture(scope="module")
def drafts(tmp_path_factory) -> dict[str, list[str]]:
    """Drafts of the same four phantom chests (fresh seeds), with and without cardiomegaly."""
    folder = tmp_path_factory.mktemp("iu")
    studies = {"cardiomegaly": [], "normal": []}
    for seed in SEEDS:
        for name, findings in (("cardiomegaly", [Finding("cardiomegaly")]), ("normal", [])):
            study = folder / f"{name}-{seed}"
            write_study_images(study, make_chest_radiograph(findings, seed + 1000, size=192))
            studies[name].append(study)
    drafter = Drafter("iu")
    return {name: [" ".join(d.sections.values()) for d in drafter.draft(paths).drafts] for name, paths in studies.items()}


def test_iu_model_names_cardiomegaly_only_where_the_heart_is_enlarged(drafts):
    enlarged = [CARDIOMEGALY in label_chexpert(text).positive() for text in drafts["cardiomegaly"]]
    normal = [CARDIOMEGALY in label_chexpert(text).positive() for text in drafts["normal"]]
    assert sum(enlarged) >= 3 and not any(normal), drafts


def test_iu_model_writes_a_normal_report_for_a_normal_chest(drafts):
    assert sum(NO_FINDING in label_chexpert(text).positive() for text in drafts["normal"]) >= 3, drafts["normal"]


def _results_row(name_start: str) -> list[float]:
    """The figures of the row of docs/results.md's main table whose name starts with ``name_start``."""
    table = (Path(__file__).resolve().parents[1] / "docs" / "results.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith(f"| {name_start}"))
    return [float(cell) for cell in row.strip(" |").split("|")[1:]]


def test_the_shipped_iu_model_reproduces_its_row_of_the_results_table(shared_data: Path, tmp_path: Path) -> None:
    """`medvl eval` of the embedded `iu` on the IU-phantom test split gives the docs' figures
    (all but METEOR, which needs Java): BLEU-1..4, ROUGE-L, CIDEr, clinical P / R / F1 micro, F1 macro."""
    from medvl.data.iu_phantom import write_iu_phantom
    from medvl.evaluate.run import evaluate

    manifest = write_iu_phantom(shared_data / "iu_xray" / "annotation.json", tmp_path / "iu_phantom")
    scores = evaluate(manifest, tmp_path / "eval", model="iu", metrics=("bleu", "rouge", "cider"))

    nlg, clinical = scores["nlg"], scores["clinical"]
    measured = [nlg["BLEU_1"], nlg["BLEU_2"], nlg["BLEU_3"], nlg["BLEU_4"], nlg["ROUGE_L"], nlg["CIDEr"],
                clinical["micro"]["precision"], clinical["micro"]["recall"], clinical["micro"]["f1"],
                clinical["macro"]["f1"]]
    documented = _results_row("medvl, IU-phantom images")
    del documented[4]  # METEOR
    print("\nmeasured:  ", " ".join(f"{value:.3f}" for value in measured))
    assert measured == pytest.approx(documented, abs=0.0015)
