"""Tokenizers for report targets: exact round trips, unknown words, section tags, save and load."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from medvl.data.phantom.dataset import plan_findings
from medvl.data.phantom.reports import make_report
from medvl.errors import ConfigError, ModelError
from medvl.text import (
    SECTION_TAGS,
    SPECIAL_TOKENS,
    CleaningConfig,
    clean_report,
    load_tokenizer,
    sections_to_target,
    train_tokenizer,
)


@pytest.fixture(scope="module")
def targets() -> list[str]:
    plans = plan_findings(200, seed=11, mode="mixed", normal_fraction=0.2)
    return [sections_to_target(make_report(findings, seed=i).sections) for i, findings in enumerate(plans)]


@pytest.fixture(scope="module", params=["wordlevel", "bpe"])
def tokenizer(request: pytest.FixtureRequest, targets: list[str]) -> PreTrainedTokenizerFast:
    """Trained with min_frequency=1, so every word of ``targets`` is in its vocabulary."""
    return train_tokenizer(targets, kind=request.param, min_frequency=1, vocab_size=400, model_max_length=128)


def _ids(tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> list[list[int]]:
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def test_decode_gives_the_cleaned_text_back(tokenizer: PreTrainedTokenizerFast, targets: list[str]) -> None:
    assert [tokenizer.decode(ids) for ids in _ids(tokenizer, targets)] == targets


def test_special_tokens_and_section_tags(tokenizer: PreTrainedTokenizerFast, targets: list[str]) -> None:
    assert [tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id] == [0, 1, 2, 3]
    for tag in SECTION_TAGS.values():
        [tag_id] = _ids(tokenizer, [tag])[0]
        assert tokenizer.convert_ids_to_tokens(tag_id) == tag
    ids = _ids(tokenizer, [targets[0]])[0]
    assert ids[0] == tokenizer.convert_tokens_to_ids(SECTION_TAGS["findings"])
    framed = [tokenizer.bos_token_id, *ids, tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.pad_token_id]
    assert tokenizer.decode(framed, skip_special_tokens=True) == targets[0]
    assert tokenizer(targets[0])["input_ids"] == ids  # no post-processor: the model adds BOS/EOS
    assert tokenizer.model_max_length == 128


def test_unknown_words_become_unk(targets: list[str]) -> None:
    tokenizer = train_tokenizer(targets, kind="wordlevel")
    tokens = tokenizer.convert_ids_to_tokens(_ids(tokenizer, ["[impression] zebra heart ."])[0])
    assert tokens == ["[impression]", "[UNK]", "heart", "."]
    words = Counter(token for target in targets for token in target.split())
    rare = sorted(word for word, count in words.items() if count < 3)
    assert rare, "the phantom corpus should have words seen fewer than 3 times"
    assert all(tokenizer.convert_tokens_to_ids(word) == tokenizer.unk_token_id for word in rare)
    with_unk = [" ".join("[UNK]" if token in rare else token for token in target.split()) for target in targets]
    assert [tokenizer.decode(ids) for ids in _ids(tokenizer, targets)] == with_unk


def test_bpe_splits_unseen_words_into_known_pieces(targets: list[str]) -> None:
    tokenizer = train_tokenizer(targets, kind="bpe", vocab_size=300)
    assert len(tokenizer) <= 300
    ids = _ids(tokenizer, ["[findings] cardiolung effusions ."])[0]
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids) == "[findings] cardiolung effusions ."
    assert tokenizer.unk_token_id in _ids(tokenizer, ["heart \u00e9"])[0]  # a character never seen


def test_save_and_load_give_identical_ids(tokenizer: PreTrainedTokenizerFast, targets: list[str], tmp_path: Path) -> None:
    tokenizer.save_pretrained(tmp_path)
    loaded = load_tokenizer(tmp_path)
    assert _ids(loaded, targets) == _ids(tokenizer, targets)
    assert loaded.get_vocab() == tokenizer.get_vocab()
    assert loaded.model_max_length == tokenizer.model_max_length
    assert loaded.decode(_ids(loaded, [targets[1]])[0], skip_special_tokens=True) == targets[1]


def test_load_errors_name_the_directory(tokenizer: PreTrainedTokenizerFast, tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(ModelError, match=str(missing)):
        load_tokenizer(missing)
    with pytest.raises(ModelError, match="no tokenizer.json"):
        load_tokenizer(tmp_path)

    broken = tmp_path / "broken"
    tokenizer.save_pretrained(broken)
    (broken / "tokenizer.json").write_text('{"version": "1.0", "model": ')
    with pytest.raises(ModelError, match="broken: cannot read the tokenizer"):
        load_tokenizer(broken)

    foreign = tmp_path / "foreign"
    plain = Tokenizer(models.WordLevel({"heart": 0, "<unk>": 1}, unk_token="<unk>"))
    plain.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=plain, unk_token="<unk>").save_pretrained(foreign)
    with pytest.raises(ModelError, match=r"foreign: not a medvl tokenizer: lacks \[PAD\]"):
        load_tokenizer(foreign)


def test_bad_training_arguments() -> None:
    with pytest.raises(ConfigError, match="sentencepiece"):
        train_tokenizer(["heart ."], kind="sentencepiece")
    with pytest.raises(ConfigError, match="min_frequency"):
        train_tokenizer(["heart ."], min_frequency=0)
    with pytest.raises(ConfigError, match="no training text"):
        train_tokenizer(["", "[findings]"])


def test_iu_vocabulary_matches_r2gen(shared_data: Path) -> None:
    annotation = json.loads((shared_data / "iu_xray" / "annotation.json").read_text())
    config = CleaningConfig(style="r2gen_iu")
    reports = [clean_report(entry["report"], config) for entry in annotation["train"]]
    tokenizer = train_tokenizer(reports, kind="wordlevel", min_frequency=3)

    counts = Counter(token for report in reports for token in report.split())
    r2gen_words = {word for word, count in counts.items() if count >= 3}  # R2Gen: these + <unk>
    reserved = set(SPECIAL_TOKENS.values()) | set(SECTION_TAGS.values())
    words = set(tokenizer.get_vocab()) - reserved
    print(f"IU X-ray train, min_frequency=3: {len(words)} words + [UNK] = {len(words) + 1} (R2Gen: 760); "
          f"tokenizer size with special tokens and section tags: {len(tokenizer)}")
    assert words == r2gen_words
    assert 700 <= len(words) + 1 <= 820
    assert sorted(tokenizer.get_vocab().values()) == list(range(len(tokenizer)))  # no gaps in the ids
