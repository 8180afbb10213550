"""The CheXpert-style labeler: real-report phrasing, CheXpert's aggregation and No Finding rules,
and its agreement with a hand-labelled set of real IU X-ray sentences.

The hand-labelled set (``tests/data/iu_hand_labels.jsonl``) refers to the shared IU X-ray
annotation without copying it: each line holds a report ``id``, the ``sentence`` index in
:func:`medvl.evaluate.labeler.sentence_spans` of that report's raw text, the first 12 hex digits
of the SHA-256 of the sentence (UTF-8) to detect drift, and the labels read by hand:
``labels`` (observation -> "positive" / "negative" / "uncertain"; absent = blank), and
``sides`` / ``zones`` for positive or uncertain observations whose place the sentence states.
Lines marked ``held_out`` were labelled after the labeler's last change (a fresh sample): their
agreement is printed apart, free of tuning to the rest.

Hand-labelling guide (the rules the labels follow; see :mod:`medvl.evaluate.chexpert`):

* an observation is labelled only where the sentence names it or a synonym ("infiltrate",
  "airspace disease" and "scarring" are Lung Opacity; a cavity, nodule or mass is a Lung
  Lesion, a calcified nodule or granuloma is not; "hilar enlargement" is Enlarged
  Cardiomediastinum; sternotomy wires and prosthetic valves are Support Devices, surgical clips
  are not); "the lungs are clear" or "no acute bony abnormality" label nothing;
* negative when denied or gone ("resolved", "removed"); uncertain when hedged ("possible",
  "may represent", "versus", "cannot exclude", "borderline", "upper limits of normal", two
  findings offered as alternatives, and IU's anonymised "XXXX represents" = "likely represents");
  positive when stated, also "stable", "old", "healed" or "again noted";
* a diagnosis offered for a located finding shares its location ("opacity in the left base
  which may represent pneumonia": pneumonia left, lower);
* No Finding (per sentence, as per report): positive unless the sentence states or hedges an
  abnormality (any other observation but Support Devices, or emphysema, hyperinflation,
  granulomas and calcifications, degenerative changes, scoliosis, a tortuous aorta, an elevated
  hemidiaphragm, costophrenic blunting...); never negative.

Agreement is measured per sentence x observation cell, four classes (blank, positive, negative,
uncertain) over the 14 observations: over the cells that the hand labels or the labeler fill
(the headline figure, which blank-blank cells cannot inflate), and over all cells.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from medvl.evaluate.chexpert import (
    ATELECTASIS,
    CARDIOMEGALY,
    ENLARGED_CARDIOMEDIASTINUM,
    FRACTURE,
    LUNG_LESION,
    LUNG_OPACITY,
    NO_FINDING,
    OBSERVATIONS,
    PLEURAL_EFFUSION,
    PLEURAL_OTHER,
    PNEUMONIA,
    PNEUMOTHORAX,
    SUPPORT_DEVICES,
    label_chexpert,
)
from medvl.evaluate.labeler import NEGATIVE, POSITIVE, UNCERTAIN, sentence_spans
from medvl.text import CleaningConfig, clean_report

HAND_LABELS = Path(__file__).parent / "data" / "iu_hand_labels.jsonl"
P, N, U = POSITIVE, NEGATIVE, UNCERTAIN

# --- sentences -----------------------------------------------------------------------------------
SENTENCES = [
    ("No acute cardiopulmonary abnormality.", {NO_FINDING: P}),
    (
        "Heart size is normal. No pleural effusion or pneumothorax.",
        {NO_FINDING: P, CARDIOMEGALY: N, PNEUMOTHORAX: N, PLEURAL_EFFUSION: N},
    ),
    ("The cardiomediastinal silhouette is within normal limits.", {NO_FINDING: P, ENLARGED_CARDIOMEDIASTINUM: N, CARDIOMEGALY: N}),
    ("The lungs are free of focal airspace disease.", {NO_FINDING: P, LUNG_OPACITY: N}),
    ("Degenerative changes of the thoracic spine.", {}),  # an abnormality, but no fracture
    ("Old healed left rib fractures.", {FRACTURE: P}),
    ("An age-indeterminate compression fracture of T12.", {FRACTURE: P}),
    ("Calcified granuloma in the right upper lobe.", {}),  # not a lung lesion (CheXpert's rule)
    ("Nodular densities consistent with old granulomatous disease.", {}),
    ("A 2 cm nodule in the right upper lobe.", {LUNG_LESION: P}),
    ("The lungs are hyperinflated.", {}),
    ("Sternotomy wires are intact.", {NO_FINDING: P, SUPPORT_DEVICES: P}),
    ("Interval removal of the endotracheal tube.", {NO_FINDING: P, SUPPORT_DEVICES: N}),
    ("Possible left lower lobe pneumonia.", {PNEUMONIA: U}),
    ("Pneumothorax cannot be excluded.", {PNEUMOTHORAX: U}),
    ("Left basilar opacity may represent atelectasis.", {LUNG_OPACITY: P, ATELECTASIS: U}),
    ("Streaky opacities XXXX represent atelectasis.", {LUNG_OPACITY: P, ATELECTASIS: U}),
    ("Scarring or atelectasis at the right lung base.", {LUNG_OPACITY: U, ATELECTASIS: U}),
    ("Blunting of the right costophrenic angle.", {}),  # blunting alone is not an effusion
    ("Small pericardial effusion.", {}),
    ("Heart size is at the upper limits of normal.", {CARDIOMEGALY: U}),
    ("Right apical pleural thickening.", {PLEURAL_OTHER: P}),
    ("There is a large hydropneumothorax on the left.", {PNEUMOTHORAX: P, PLEURAL_EFFUSION: P}),
    ("no pleural effusion or pneumothorax . mild cardiomegaly .", {CARDIOMEGALY: P, PLEURAL_EFFUSION: N, PNEUMOTHORAX: N}),
]


@pytest.mark.parametrize(("text", "expected"), SENTENCES, ids=[text for text, _ in SENTENCES])
def test_observations_of_real_report_phrasing(text: str, expected: dict[str, str]) -> None:
    assert label_chexpert(text).status == expected


def test_side_and_zone_where_stated() -> None:
    labels = label_chexpert("Left lower lobe consolidation. Right pleural effusion. Left pleural effusion. Cardiomegaly.")
    assert labels.sides == {"Consolidation": "left", PLEURAL_EFFUSION: "bilateral"}
    assert labels.zones == {"Consolidation": "lower"}


# --- aggregation ---------------------------------------------------------------------------------
def test_statuses_aggregate_positive_over_uncertain_over_negative() -> None:
    assert label_chexpert("Possible pneumothorax. No pneumothorax. Right pneumothorax.").status[PNEUMOTHORAX] == P
    assert label_chexpert("No pneumothorax. Possible pneumothorax.").status[PNEUMOTHORAX] == U
    assert label_chexpert("No pneumothorax. No evidence of pneumothorax.").status[PNEUMOTHORAX] == N


def test_no_finding_is_positive_only_without_a_finding_other_than_devices() -> None:
    assert label_chexpert("Pacemaker in place. The lungs are clear.").status == {NO_FINDING: P, SUPPORT_DEVICES: P}
    assert NO_FINDING not in label_chexpert("The lungs are clear. Possible small effusion.").status
    assert NO_FINDING not in label_chexpert("The lungs are clear. Mild emphysema.").status
    assert label_chexpert("No emphysema. No effusion.").status == {NO_FINDING: P, PLEURAL_EFFUSION: N}
    assert label_chexpert("").status == {NO_FINDING: P}


def test_positive_set_counts_uncertain_labels_as_asked() -> None:
    labels = label_chexpert("Mild cardiomegaly. Possible left effusion. No pneumothorax.")
    assert labels.positive() == {CARDIOMEGALY}
    assert labels.positive(uncertain_as=POSITIVE) == {CARDIOMEGALY, PLEURAL_EFFUSION}


# --- the hand-labelled set -----------------------------------------------------------------------
def _hand_labelled(shared_data: Path) -> list[tuple[str, dict]]:
    """(sentence, record) for every hand-labelled line, the sentence read from the shared annotation."""
    annotation = json.loads((shared_data / "iu_xray" / "annotation.json").read_text(encoding="utf-8"))
    reports = {entry["id"]: entry["report"] for split in annotation.values() for entry in split}
    labelled = []
    for line in HAND_LABELS.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        start, end = sentence_spans(reports[record["id"]])[record["sentence"]]
        sentence = reports[record["id"]][start:end]
        digest = hashlib.sha256(sentence.encode("utf-8")).hexdigest()[:12]
        assert digest == record["sha256"], f"{record['id']} sentence {record['sentence']} changed: {sentence!r}"
        labelled.append((sentence, record))
    return labelled


def _agreement(labelled: list[tuple[str, dict]]) -> tuple[float, int, float, list[str]]:
    """(agreement over filled cells, their number, agreement over all cells, the disagreements)."""
    filled = agreed_filled = agreed_all = 0
    disagreements = []
    for sentence, record in labelled:
        read = label_chexpert(sentence).status
        for observation in OBSERVATIONS:
            hand, machine = record["labels"].get(observation), read.get(observation)
            agreed_all += hand == machine
            if hand or machine:
                filled += 1
                agreed_filled += hand == machine
                if hand != machine:
                    disagreements.append(f"{observation}: hand {hand}, labeler {machine} in {sentence!r}")
    return agreed_filled / filled, filled, agreed_all / (len(labelled) * len(OBSERVATIONS)), disagreements


@pytest.mark.shared_data
def test_agreement_with_hand_labels_on_real_iu_sentences(shared_data: Path) -> None:
    """All hand-labelled sentences, and apart the held-out ones, labelled after the labeler's last change."""
    labelled = _hand_labelled(shared_data)
    held_out = [(sentence, record) for sentence, record in labelled if record.get("held_out")]
    assert len(labelled) >= 150 and len(held_out) >= 50
    for name, part in (("all", labelled), ("held out", held_out)):
        agreement, filled, overall, disagreements = _agreement(part)
        print(
            f"\nCheXpert labeler vs hand labels, {name}: {len(part)} real IU sentences, agreement {agreement:.3f} over "
            f"{filled} labelled cells (either side non-blank), {overall:.3f} over all sentence x observation cells"
        )
        print("\n".join(disagreements))
        assert agreement >= 0.95


@pytest.mark.shared_data
def test_sides_and_zones_agree_with_hand_labels(shared_data: Path) -> None:
    """Where the hand labels place a present or hedged observation, the labeler places it there or
    nowhere: it reads a place in the words around a mention and does not hand on a neighbour's
    ("opacity in the left base, likely atelectasis": the atelectasis has no side of its own)."""
    for field in ("sides", "zones"):
        pairs = []
        for sentence, record in _hand_labelled(shared_data):
            labels = label_chexpert(sentence)
            read = getattr(labels, field)
            pairs += [(place, read.get(name)) for name, place in record.get(field, {}).items() if name in labels.status]
        named = [(hand, machine) for hand, machine in pairs if machine is not None]
        precision = sum(hand == machine for hand, machine in named) / len(named)
        recall = sum(hand == machine for hand, machine in pairs) / len(pairs)
        print(f"\n{field}: {len(pairs)} hand-placed cells; labeler places {len(named)}, "
              f"{precision:.3f} of them as the hand labels; recall {recall:.3f}")
        assert len(pairs) >= 50 and precision >= 0.95 and recall >= 0.75


@pytest.mark.shared_data
def test_cleaned_reports_read_as_the_raw_ones(shared_data: Path) -> None:
    """Metrics label R2Gen-cleaned text: its positive observations match the raw report's."""
    annotation = json.loads((shared_data / "iu_xray" / "annotation.json").read_text(encoding="utf-8"))
    reports = [entry["report"] for entry in annotation["test"]]
    cleaning = CleaningConfig(style="r2gen_iu")
    same = sum(label_chexpert(r).positive() == label_chexpert(clean_report(r, cleaning)).positive() for r in reports)
    print(f"\nraw and R2Gen-cleaned test reports with the same positive observations: {same}/{len(reports)}")
    assert same / len(reports) >= 0.97
