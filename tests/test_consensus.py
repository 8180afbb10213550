"""Consensus (minimum Bayes risk) decoding: the candidate most others agree with is kept."""

from __future__ import annotations

import pytest
import torch

from medvl.errors import ConfigError
from medvl.model.consensus import choose_consensus, consensus_index, sentence_bleu
from medvl.model.decoding import DecodingConfig
from medvl.model.loading import build_model
from medvl.text import train_tokenizer
from tests.test_model import tiny_config


def words(text: str) -> list[int]:
    vocabulary = {word: number for number, word in enumerate(sorted(set(WORDING.split())))}
    return [vocabulary[word] for word in text.split()]


WORDING = (
    "the heart is normal in size . the lungs are clear . no pneumothorax or pleural effusion . "
    "cardiomediastinal silhouette within normal limits . lungs clear bilaterally ."
)


def test_sentence_bleu_is_one_for_identical_text_and_falls_with_each_change():
    text = words("the heart is normal in size . the lungs are clear .")
    one_word_changed = words("the heart is normal in size . lungs clear bilaterally .")
    assert sentence_bleu(text, text) == pytest.approx(1.0)
    assert 0.0 < sentence_bleu(one_word_changed, text) < sentence_bleu(text, text)
    assert sentence_bleu(text[:4], text) < sentence_bleu(text, text)  # brevity penalty
    assert sentence_bleu([], text) == 0.0


def test_consensus_keeps_the_wording_most_candidates_share_not_the_first():
    rare_first = words("cardiomediastinal silhouette within normal limits . lungs clear bilaterally .")
    shared = [
        words("the heart is normal in size . the lungs are clear . no pneumothorax or pleural effusion ."),
        words("the heart is normal in size . the lungs are clear ."),
        words("the heart is normal in size . the lungs are clear . no pneumothorax ."),
    ]
    # the middle one of the three common wordings: closest to both others; never the rare first one
    assert consensus_index([rare_first, *shared]) == 3
    assert consensus_index([shared[1]]) == 0


def test_choose_consensus_picks_one_row_per_study_among_its_own_candidates():
    eos, pad = 9, 0
    ids = torch.tensor(
        [[1, 2, 3, eos], [5, 6, eos, pad], [1, 2, 3, eos],  # study 0: rows 0 and 2 agree
         [4, 4, eos, pad], [7, 8, 8, eos], [7, 8, 8, eos]]  # study 1: rows 4 and 5 agree
    )
    chosen = choose_consensus(ids, 3, eos, pad)
    assert chosen.tolist() == [[1, 2, 3, eos], [7, 8, 8, eos]]
    with pytest.raises(ValueError, match="groups of 4"):
        choose_consensus(ids, 4, eos, pad)


def test_model_consensus_draft_is_one_of_its_beam_candidates():
    reports = [f"[findings] {sentence} ." for sentence in WORDING.split(" . ")] * 2
    tokenizer = train_tokenizer(reports, min_frequency=1)
    torch.manual_seed(0)
    model = build_model(tiny_config(), tokenizer).eval()
    images, view_mask = torch.randn(2, 2, 1, 64, 64), torch.ones(2, 2, dtype=torch.bool)
    decoding = DecodingConfig(num_beams=4, max_new_tokens=12, consensus_candidates=4)

    drafts = model.generate(images, view_mask, decoding)
    eos = model.config.text_config.eos_token_id
    visual = model.visual_tokens(images, view_mask)
    bos = torch.full((2, 1), model.config.text_config.bos_token_id)
    embeds = torch.cat([visual, model.get_input_embeddings()(bos)], dim=1)
    candidates = model.language_model.generate(
        inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long),
        eos_token_id=eos, pad_token_id=model.config.text_config.pad_token_id, **decoding.generate_kwargs(),
    )
    assert drafts.shape[0] == 2
    for study in range(2):
        own = candidates[study * 4 : (study + 1) * 4, : drafts.shape[1]]
        assert any(torch.equal(row, drafts[study]) for row in own)
    plain = model.generate(images, view_mask, DecodingConfig(num_beams=4, max_new_tokens=12))
    assert plain.shape[0] == 2


def test_consensus_candidates_must_be_a_positive_integer():
    with pytest.raises(ConfigError, match="consensus_candidates"):
        DecodingConfig(consensus_candidates=0)
    assert DecodingConfig(num_beams=2, consensus_candidates=5).generate_kwargs()["num_beams"] == 5
