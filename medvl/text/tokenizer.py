"""Tokenizers for cleaned report targets, trained with ``tokenizers`` and used as
``transformers.PreTrainedTokenizerFast``.

How ids are produced: text is split on whitespace only (cleaned text already separates every
token), then

* ``"wordlevel"``: one id per word seen at least ``min_frequency`` times in training, any other
  word -> ``[UNK]`` (R2Gen's vocabulary: words with count >= threshold, plus unk);
* ``"bpe"``: byte-pair subwords, continuation pieces prefixed with ``##``; only characters never
  seen in training become ``[UNK]``.

Ids 0-3 are ``[PAD] [BOS] [EOS] [UNK]``; the section tags of :data:`SECTION_TAGS` follow, each
one token that ``decode(..., skip_special_tokens=True)`` keeps. There is no post-processor:
``tokenizer(texts, add_special_tokens=False)`` (or ``True``: the same) gives the text's ids only,
and the model adds ``bos_token_id`` / ``eos_token_id`` itself. ``decode`` joins tokens with one
space, so decoding the ids of in-vocabulary cleaned text gives that text back exactly.

Save with the standard ``tokenizer.save_pretrained(directory)`` (``tokenizer.json`` and
``tokenizer_config.json``); read back with :func:`load_tokenizer`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from medvl.errors import ConfigError, ModelError
from medvl.text.sections import SECTION_TAGS

SPECIAL_TOKENS = {"pad_token": "[PAD]", "bos_token": "[BOS]", "eos_token": "[EOS]", "unk_token": "[UNK]"}
TOKENIZER_KINDS = ("wordlevel", "bpe")
SUBWORD_PREFIX = "##"
_TAGS = frozenset(SECTION_TAGS.values())


def train_tokenizer(
    texts: Iterable[str],
    kind: str = "wordlevel",
    min_frequency: int = 3,
    vocab_size: int = 30_000,
    model_max_length: int = 256,
) -> PreTrainedTokenizerFast:
    """A tokenizer trained on cleaned targets (see the module docstring for how ids come about).

    ``vocab_size`` is an upper bound, special tokens and section tags included; a word-level
    vocabulary is usually bounded by ``min_frequency`` first (for BPE, ``min_frequency`` is the
    count a pair needs to be merged). Section tags in ``texts`` are not
    counted: they are added as tokens of their own.
    """
    if kind not in TOKENIZER_KINDS:
        raise ConfigError(f"tokenizer kind: expected one of {', '.join(TOKENIZER_KINDS)}, got {kind!r}")
    for name, value in (("min_frequency", min_frequency), ("vocab_size", vocab_size), ("model_max_length", model_max_length)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"tokenizer {name}: expected a positive integer, got {value!r}")
    corpus = [_without_tags(text) for text in texts]
    if not any(corpus):
        raise ConfigError("tokenizer: no training text (every text is empty)")

    reserved = [*SPECIAL_TOKENS.values(), *SECTION_TAGS.values()]  # ids 0, 1, 2, ... in this order
    trainer: trainers.Trainer
    if kind == "wordlevel":
        tokenizer = Tokenizer(models.WordLevel(unk_token=SPECIAL_TOKENS["unk_token"]))
        trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=reserved)
    else:
        tokenizer = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS["unk_token"], continuing_subword_prefix=SUBWORD_PREFIX))
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=reserved,
            continuing_subword_prefix=SUBWORD_PREFIX,
        )
        tokenizer.decoder = decoders.WordPiece(prefix=SUBWORD_PREFIX, cleanup=False)
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.train_from_iterator(corpus, trainer)
    # The trainer registered the tags as special tokens; make them ordinary added tokens so that
    # decoding with skip_special_tokens=True keeps them.
    tokenizer.add_tokens([AddedToken(tag, single_word=True, normalized=False, special=False) for tag in SECTION_TAGS.values()])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,  # keep " ." and " ,": decoding must give the cleaned text back
        **SPECIAL_TOKENS,
    )


def load_tokenizer(directory: str | Path) -> PreTrainedTokenizerFast:
    """The tokenizer saved in ``directory`` by ``save_pretrained``; read locally, never downloaded.

    A missing directory, a missing or unreadable ``tokenizer.json``, or a tokenizer without
    medvl's special tokens and section tags raises :class:`ModelError` naming the directory.
    """
    path = Path(directory)
    if not (path / "tokenizer.json").is_file():
        what = "no tokenizer.json in this folder" if path.is_dir() else "tokenizer folder not found"
        raise ModelError(f"{what} (a tokenizer is saved with tokenizer.save_pretrained)", path=path)
    try:
        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:  # tokenizers raises plain Exception for a malformed tokenizer.json
        raise ModelError(f"cannot read the tokenizer: {exc}", path=path) from exc
    vocabulary = tokenizer.get_vocab()
    missing = [token for token in (*SPECIAL_TOKENS.values(), *SECTION_TAGS.values()) if token not in vocabulary]
    if missing or any(getattr(tokenizer, name) != token for name, token in SPECIAL_TOKENS.items()):
        lacking = ", ".join(missing) or "special token roles"
        raise ModelError(f"not a medvl tokenizer: lacks {lacking} (train one with medvl.text.train_tokenizer)", path=path)
    return tokenizer


def load_pretrained_tokenizer(directory: str | Path) -> PreTrainedTokenizerFast:
    """A pretrained language model's own (fast) tokenizer, made ready for medvl targets.

    The section tags are added as ordinary tokens when missing (the model's embedding table must
    then grow: see :func:`medvl.model.loading.build_model_with_language_model`), and a tokenizer
    without padding or BOS token uses its EOS token for them, as GPT-2 style models expect.
    """
    path = Path(directory)
    try:
        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:  # OSError for a missing file, plain Exception from tokenizers
        raise ModelError(f"cannot read the language model's tokenizer: {exc}", path=path) from exc
    if tokenizer.eos_token is None:
        raise ModelError("the language model's tokenizer has no end-of-sequence token", path=path)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    tokenizer.bos_token = tokenizer.bos_token or tokenizer.eos_token
    missing = [tag for tag in SECTION_TAGS.values() if tag not in tokenizer.get_vocab()]
    tokenizer.add_tokens([AddedToken(tag, single_word=True, normalized=False, special=False) for tag in missing])
    return tokenizer


def _without_tags(text: str) -> str:
    return " ".join(token for token in text.split() if token not in _TAGS)
