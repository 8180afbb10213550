"""Finding check and finding word bias: drafts that state what the finding head sees."""

from __future__ import annotations

import pytest
import torch

from medvl.errors import ConfigError
from medvl.model.consensus import consensus_index
from medvl.model.decoding import DecodingConfig
from medvl.model.loading import build_model
from medvl.report.finding_check import (
    FindingWordBias,
    checked_index,
    disagreements,
    finding_words,
    seen_kinds,
    unworded_findings,
    verifiable_observations,
)
from medvl.report.generation import generate_ids
from medvl.text import train_tokenizer
from tests.test_model import tiny_config

LABELS = ["cardiomegaly", "nodule:left", "nodule:right", "pleural_effusion:left", "degenerative_spine"]
VERIFIABLE = verifiable_observations(LABELS)
NORMAL = "the heart is normal in size . the lungs are clear ."
NODULE = "the heart is normal in size . there is a right upper lobe nodule ."
FRACTURE = "the heart is normal in size . the lungs are clear . healed left rib fractures ."


@pytest.fixture(scope="module")
def tokenizer():
    reports = [f"[findings] {text}" for text in (NORMAL, NODULE, FRACTURE, "small left pleural effusion . no pneumothorax .")]
    return train_tokenizer(reports * 3, min_frequency=1)


def test_seen_kinds_drop_the_side_and_keep_only_the_verdicts_shown():
    assert seen_kinds(LABELS, [False, False, True, False, True]) == {"nodule", "degenerative_spine"}
    assert seen_kinds(LABELS, [False] * 5) == frozenset()


def test_only_observations_some_head_kind_shows_are_verifiable():
    assert VERIFIABLE == {"Cardiomegaly", "Lung Lesion", "Pleural Effusion", "No Finding"}


def test_disagreements_count_missed_extra_and_unverifiable_findings():
    nodule = frozenset({"nodule"})
    assert disagreements(NODULE, nodule, VERIFIABLE) == 0
    assert disagreements(NORMAL, nodule, VERIFIABLE) == 1  # the nodule is not stated
    assert disagreements(NODULE, frozenset(), VERIFIABLE) == 1  # a nodule the head does not see
    assert disagreements("no nodule is seen . the lungs are clear .", nodule, VERIFIABLE) == 1  # negated is absent
    assert disagreements(FRACTURE, frozenset(), VERIFIABLE) == 1  # a fracture no head kind can show
    assert disagreements(NORMAL, frozenset(), VERIFIABLE) == 0


def test_the_check_keeps_the_likeliest_candidate_that_agrees_with_the_head():
    texts = [NORMAL, FRACTURE, NODULE, NODULE + " no pleural effusion ."]
    assert checked_index(texts, frozenset({"nodule"}), VERIFIABLE) == 2
    assert checked_index(texts, frozenset(), VERIFIABLE) == 0
    assert checked_index([FRACTURE, NODULE], frozenset(), VERIFIABLE) == 0  # all disagree once: the likeliest


def test_among_equals_the_check_prefers_a_seen_finding_worded_as_its_chexpert_observation():
    blunting = "the heart is normal in size . blunting of the left costophrenic angle ."
    effusion = "the heart is normal in size . small left pleural effusion ."
    seen = frozenset({"pleural_effusion"})
    assert disagreements(blunting, seen, VERIFIABLE) == disagreements(effusion, seen, VERIFIABLE) == 0
    assert unworded_findings(blunting, seen) == 1 and unworded_findings(effusion, seen) == 0
    assert checked_index([blunting, effusion], seen, VERIFIABLE) == 1
    assert unworded_findings(NORMAL, frozenset({"degenerative_spine"})) == 0  # no CheXpert observation to word


def test_the_check_with_consensus_keeps_the_consensus_of_the_agreeing_candidates():
    ids = [[9, 9, 9, 9], [7, 8, 7, 8, 7], [1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6]]
    texts = [NODULE, NORMAL, NORMAL, NORMAL]
    kept = checked_index(texts, frozenset(), VERIFIABLE, candidate_ids=ids)
    assert kept == 1 + consensus_index(ids[1:]) and kept in (2, 3)  # not the likeliest, the shared wording
    assert checked_index(texts, frozenset({"nodule"}), VERIFIABLE, candidate_ids=ids) == 0


def test_finding_words_are_the_vocabulary_words_that_name_a_kind(tokenizer):
    words = {kind: set(tokenizer.convert_ids_to_tokens(list(ids))) for kind, ids in finding_words(tokenizer).items()}
    assert words["nodule"] == {"nodule"}
    assert words["pleural_effusion"] == {"effusion"}
    assert "normal" not in set().union(*words.values()) and "heart" not in set().union(*words.values())


def test_the_bias_favours_a_seen_findings_words_until_the_draft_names_it(tokenizer):
    words = finding_words(tokenizer)
    nodule = tokenizer.convert_tokens_to_ids("nodule")
    bias = FindingWordBias(tokenizer, words, [frozenset({"nodule"}), frozenset()], rows_per_study=2, bias=3.0)
    sentence = tokenizer.convert_tokens_to_ids(["the", "heart", "is", "normal", "in", "size", "."])
    named = tokenizer.convert_tokens_to_ids(["there", "is", "a", "right", "upper", "lobe", "nodule", "."])
    unnamed = sentence + tokenizer.convert_tokens_to_ids(["the", "lungs", "are", "clear", ".", "there", "is", "a"])
    rows = torch.tensor([unnamed, sentence + named, unnamed, unnamed])
    scores = bias(rows, torch.zeros(4, len(tokenizer)))
    assert scores[0, nodule] == 3.0  # study 1 sees a nodule its draft has not named
    assert scores[1, nodule] == 0.0  # already named
    assert scores[2:].abs().sum() == 0.0  # study 2 sees nothing
    assert scores[0].sum() == 3.0  # only the nodule's own words


def test_a_strong_bias_makes_even_an_untrained_model_name_what_its_head_sees(tokenizer):
    torch.manual_seed(0)
    config = tiny_config()
    config.finding_labels = LABELS
    config.finding_thresholds = [1.0, 0.0, 1.0, 1.0, 1.0]  # the head sees "nodule:left" in every study, nothing else
    model = build_model(config, tokenizer).eval()
    images, view_mask = torch.randn(3, 2, 1, 64, 64), torch.ones(3, 2, dtype=torch.bool)
    nodule = tokenizer.convert_tokens_to_ids("nodule")
    plain = DecodingConfig(num_beams=2, max_new_tokens=12)

    assert not any(nodule in ids for ids in generate_ids(model, images, view_mask, plain, tokenizer))
    steered = generate_ids(model, images, view_mask, plain.updated(finding_bias=50.0, finding_check=True), tokenizer)
    assert all(nodule in ids for ids in steered)
    with pytest.raises(ConfigError, match="tokenizer"):
        generate_ids(model, images, view_mask, plain.updated(finding_check=True))


def test_decoding_refuses_a_negative_bias_or_a_non_boolean_check():
    with pytest.raises(ConfigError, match="finding_bias"):
        DecodingConfig(finding_bias=-1.0)
    with pytest.raises(ConfigError, match="finding_check"):
        DecodingConfig(finding_check="yes")
    assert DecodingConfig(num_beams=4, finding_check=True).generate_kwargs()["num_return_sequences"] == 4
    assert DecodingConfig(num_beams=4).generate_kwargs()["num_return_sequences"] == 1
