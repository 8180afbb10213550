"""Finding sentences: drafts edited to state what the finding head sees, in training sentences."""

from __future__ import annotations

import pytest
import torch

from medvl.errors import ConfigError
from medvl.model import MedVLConfig
from medvl.model.decoding import DecodingConfig
from medvl.model.loading import build_model, resolve_model_dir
from medvl.report.finding_check import stated_kinds, stated_observations, verifiable_observations
from medvl.report.finding_sentences import (
    label_key,
    mine_finding_sentences,
    state_findings,
    stated_ids,
    states_exactly,
)
from medvl.report.generation import FINDING_SENTENCE, generate_ids, generate_reports
from medvl.text import train_tokenizer
from medvl.train.calibration import fit_finding_thresholds
from tests.test_model import tiny_config

LABELS = ["cardiomegaly", "nodule:left", "nodule:right", "pleural_effusion:left", "degenerative_spine"]
VERIFIABLE = verifiable_observations(LABELS)
SENTENCES = {
    "nodule:left": "there is a left upper lobe nodule .",
    "pleural_effusion:left": "small left pleural effusion .",
    "cardiomegaly": "the heart is enlarged .",
}
TRAINING_REPORTS = [
    "the heart is normal in size . small left pleural effusion . no pneumothorax .",
    "the heart is normal in size . small left pleural effusion .",
    "the heart is normal in size . there is a small left pleural effusion . the lungs are clear .",
    "blunting of the left costophrenic angle . the lungs are clear .",  # an effusion, not in CheXpert's words
    "the heart is enlarged . there is a left upper lobe nodule .",
    "there is a left upper lobe nodule and a small left pleural effusion .",  # two findings
    "there is a left upper lobe nodule .",
    "there is a right lower lobe nodule .",
    "there is a left upper lobe nodule measuring 12 mm .",  # a word the vocabulary lacks
]


@pytest.fixture(scope="module")
def tokenizer():
    reports = [f"[findings] {text}" for text in TRAINING_REPORTS * 3 if "12 mm" not in text]
    reports += ["[findings] the lungs are clear . [impression] no acute disease ."] * 3
    return train_tokenizer(reports, min_frequency=1)


def test_a_head_label_is_read_as_the_labelers_kind_side_and_device():
    assert label_key("cardiomegaly") == ("cardiomegaly", None, None)
    assert label_key("nodule:left") == ("nodule", "left", None)
    assert label_key("support_device:left:central_line") == ("support_device", "left", "central_line")
    assert label_key("support_device:pacemaker") == ("support_device", None, "pacemaker")


def test_each_label_gets_the_commonest_sentence_stating_exactly_its_finding(tokenizer):
    mined = mine_finding_sentences(TRAINING_REPORTS, LABELS, tokenizer)
    assert mined["pleural_effusion:left"] == "small left pleural effusion ."  # twice, beats the longer once
    assert mined["nodule:left"] == "there is a left upper lobe nodule ."  # not the two-finding one, nor "12 mm"
    assert mined["nodule:right"] == "there is a right lower lobe nodule ."  # sides are kept apart
    assert mined["cardiomegaly"] == "the heart is enlarged ."
    assert "degenerative_spine" not in mined  # no sentence states it: no sentence, rather than a wrong one
    for label, sentence in mined.items():
        assert states_exactly(sentence, label_key(label))
    assert not states_exactly("blunting of the left costophrenic angle .", label_key("pleural_effusion:left"))


def test_a_missed_finding_is_stated_after_the_first_sentence():
    draft = "the heart is normal in size . the lungs are clear ."
    edited = state_findings(draft, ["nodule:left"], SENTENCES, VERIFIABLE)
    assert edited == "the heart is normal in size . there is a left upper lobe nodule . the lungs are clear ."
    assert stated_kinds(edited) == {"nodule"}


def test_sentences_claiming_what_the_head_does_not_see_are_dropped():
    draft = "the heart is normal in size . there is a right upper lobe nodule . healed left rib fractures ."
    assert state_findings(draft, [], SENTENCES, VERIFIABLE) == "the heart is normal in size ."
    kept = state_findings(draft, ["nodule:right"], SENTENCES, VERIFIABLE)
    assert kept == "the heart is normal in size . there is a right upper lobe nodule ."  # its own wording stays


def test_a_finding_on_the_wrong_side_is_replaced_by_the_seen_sides_sentence():
    draft = "the heart is normal in size . there is a right upper lobe nodule . the lungs are clear ."
    edited = state_findings(draft, ["nodule:left"], SENTENCES, VERIFIABLE)
    assert edited == "the heart is normal in size . there is a left upper lobe nodule . the lungs are clear ."
    both = state_findings(draft, ["nodule:left", "nodule:right"], SENTENCES, VERIFIABLE)
    assert "right upper lobe nodule" in both and "left upper lobe nodule" in both
    unsided = "the heart is normal in size . there are scattered nodules ."
    assert state_findings(unsided, ["nodule:left"], SENTENCES, VERIFIABLE).endswith(
        "there is a left upper lobe nodule . there are scattered nodules ."
    )  # kept (no side to contradict), and the seen side is stated


def test_a_finding_not_worded_as_its_chexpert_observation_gets_its_sentence():
    draft = "the heart is normal in size . blunting of the left costophrenic angle ."
    edited = state_findings(draft, ["pleural_effusion:left"], SENTENCES, VERIFIABLE)
    assert "Pleural Effusion" in stated_observations(edited) and "blunting" in edited
    assert state_findings(edited, ["pleural_effusion:left"], SENTENCES, VERIFIABLE) == edited  # stated once
    assert state_findings(draft, ["nodule:right"], SENTENCES, VERIFIABLE) == draft.split(" blunting")[0]
    assert state_findings("the lungs are clear .", ["nodule:right"], SENTENCES, VERIFIABLE) == "the lungs are clear ."


def test_only_the_findings_section_is_edited_and_the_ids_round_trip(tokenizer):
    text = "[findings] the heart is normal in size . the lungs are clear . [impression] no acute disease ."
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert stated_ids(tokenizer, ids, [], SENTENCES, VERIFIABLE) == ids
    edited = tokenizer.decode(stated_ids(tokenizer, ids, ["nodule:left"], SENTENCES, VERIFIABLE))
    assert edited == (
        "[findings] the heart is normal in size . there is a left upper lobe nodule . the lungs are clear . "
        "[impression] no acute disease ."
    )
    untagged = tokenizer.encode("the lungs are clear .", add_special_tokens=False)
    assert tokenizer.decode(stated_ids(tokenizer, untagged, ["cardiomegaly"], SENTENCES, VERIFIABLE)) == (
        "the lungs are clear . the heart is enlarged ."
    )


def test_an_untrained_model_states_what_its_head_sees_only_with_state_findings(tokenizer):
    torch.manual_seed(0)
    config = tiny_config()
    config.finding_labels = LABELS
    config.finding_thresholds = [1.0, 0.0, 1.0, 1.0, 1.0]  # the head sees "nodule:left" in every study, nothing else
    config.finding_sentences = SENTENCES
    model = build_model(config, tokenizer).eval()
    images, view_mask = torch.randn(3, 2, 1, 64, 64), torch.ones(3, 2, dtype=torch.bool)
    plain = DecodingConfig(num_beams=2, max_new_tokens=12)

    written = [tokenizer.decode(ids) for ids in generate_ids(model, images, view_mask, plain, tokenizer)]
    stated = [tokenizer.decode(ids) for ids in generate_ids(model, images, view_mask, plain.updated(state_findings=True), tokenizer)]
    assert not any(stated_kinds(text) == {"nodule"} for text in written)
    assert all(stated_kinds(text) == {"nodule"} and SENTENCES["nodule:left"] in text for text in stated)
    reports = generate_reports(model, images, view_mask, plain.updated(state_findings=True), tokenizer)
    assert all(report.stated == {SENTENCES["nodule:left"]} for report in reports)
    assert all(report.origin(SENTENCES["nodule:left"]) == FINDING_SENTENCE for report in reports)


def test_rare_labels_are_fitted_on_the_training_studies_too():
    probabilities = torch.tensor([[0.9, 0.3], [0.8, 0.1], [0.7, 0.05], [0.1, 0.02]])
    targets = torch.tensor([[1, 1], [1, 0], [1, 0], [0, 0]])  # label 1: one positive, at 0.3
    training = (torch.tensor([[0.2, 0.25], [0.9, 0.2], [0.1, 0.01]]), torch.tensor([[0, 1], [1, 1], [0, 0]]))
    alone = fit_finding_thresholds(probabilities, targets)
    pooled = fit_finding_thresholds(probabilities, targets, more=training)
    assert alone[1] == 0.5 and 0.05 < pooled[1] < 0.2  # its three positives, 0.2-0.3, are called
    assert pooled[0] == alone[0]  # enough positives on val: val alone decides
    assert fit_finding_thresholds(probabilities, targets, more=(training[0], training[1] * 0))[1] == 0.5


def test_finding_sentences_must_belong_to_the_models_labels():
    with pytest.raises(ConfigError, match="finding_sentences: nodule:left are not finding labels"):
        MedVLConfig(finding_labels=["cardiomegaly"], finding_sentences={"nodule:left": "a nodule ."})
    with pytest.raises(ConfigError, match="state_findings"):
        DecodingConfig(state_findings="yes")


def test_the_shipped_iu_models_finding_sentences_state_exactly_their_labels():
    config = MedVLConfig.from_pretrained(resolve_model_dir("iu"))
    assert config.decoding_config.state_findings
    assert len(config.finding_sentences) >= 20
    for label, sentence in config.finding_sentences.items():
        assert states_exactly(sentence, label_key(label)), (label, sentence)
