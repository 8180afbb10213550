"""The embedded `iu` model (IU X-ray report language, trained on IU-phantoms) reads the image:
it calls an enlarged heart where the phantom draws one and not where it does not."""

from __future__ import annotations

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
