"""Report cleaning: raw report text -> the model's target language.

Cleaned text is a sequence of tokens separated by single spaces, each sentence ending with a
``" ."`` token: ``"heart size is normal . no effusion ."``. Three styles:

* ``"basic"`` (default): for drafting. Lowercases (option), drops ``XXXX`` anonymisation
  placeholders (option), removes list numbers ("1. ", "2) "), keeps numbers with their decimals
  ("1.5 cm" stays one token ``1.5``; glued units are split: "7mm" -> ``7 mm``), keeps words with
  inner hyphens and apostrophes ("well-defined", "patient's"), keeps ``, ; : %`` as tokens of
  their own, turns every ``. ! ?`` run into one ``.`` and drops all other symbols.
* ``"r2gen_iu"`` and ``"r2gen_mimic"``: exactly R2Gen's ``clean_report_iu_xray`` and
  ``clean_report_mimic_cxr`` (``modules/tokenizers.py`` of Chen et al., EMNLP 2020), the cleaning
  behind most published IU X-ray / MIMIC-CXR scores. Their quirks are kept on purpose, so that
  scores are comparable:

  - decimal points vanish ("1.5 cm" -> ``15 cm``), and so does every "1. " anywhere in the text
    ("T11. The" -> ``t1the``); " 2. " to " 5. " become sentence ends, losing the number;
  - the character class ``[.,?;*!%^&_+():-\\[\\]{}]`` holds the range ``:-\\[``, so it also
    removes ``< = > ? @`` (and A-Z, already lowercased), yet never the hyphen itself;
  - quotes, apostrophes, slashes and backslashes are removed without a space ("and/or" ->
    ``andor``, "there's" -> ``theres``); ``XXXX`` placeholders stay, as ``xxxx``;
  - empty sentences are kept (R2Gen's filter compares a string with ``[]``, always true), so a
    report ending in ". ." gives a ``. .`` token pair.

  One deliberate difference: R2Gen's string can hold runs of spaces (a comma removed between
  two spaces, an empty sentence); here whitespace runs are collapsed to one space. R2Gen only
  ever uses ``report.split()``, and scores its references after decoding (tokens joined by one
  space), so the token sequence, the vocabulary and the evaluated text are identical.

The options ``lowercase`` and ``drop_placeholders`` apply to the ``basic`` style only; the R2Gen
styles are fixed recipes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from medvl.errors import ConfigError

SENTENCE_END = "."


@dataclass(frozen=True)
class CleaningConfig:
    """How report text is cleaned: a style from :data:`CLEANING_STYLES` and its options."""

    style: str = "basic"
    lowercase: bool = True  # basic only
    drop_placeholders: bool = True  # basic only: remove "XXXX" anonymisation placeholders

    def __post_init__(self) -> None:
        if self.style not in CLEANING_STYLES:
            raise ConfigError(f"cleaning.style: expected one of {', '.join(CLEANING_STYLES)}, got {self.style!r}")
        for name in ("lowercase", "drop_placeholders"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"cleaning.{name}: expected true or false, got {getattr(self, name)!r}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> CleaningConfig:
        """Build from a mapping; unknown keys or bad values raise :class:`ConfigError`."""
        values = dict(values or {})
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ConfigError(f"cleaning: unknown key(s) {', '.join(map(str, unknown))}; known: {', '.join(names)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """A YAML/JSON-ready mapping that :meth:`from_dict` reads back."""
        return asdict(self)


def clean_report(text: str, config: CleaningConfig | None = None) -> str:
    """``text`` in the model's target language (see the module docstring).

    The basic style gives ``""`` for text without words; the R2Gen styles give ``"."`` (R2Gen's
    ``" ."``), as R2Gen does.
    """
    config = config or CleaningConfig()
    return _CLEANERS[config.style](text, config)


def split_sentences(cleaned: str) -> list[str]:
    """The sentences of cleaned text, each ending with its ``" ."`` token.

    Empty sentences are skipped; an unterminated tail (a generation cut short) is kept as it is.
    Call it on one section's text (see :func:`medvl.text.target_to_sections`).
    """
    sentences: list[str] = []
    current: list[str] = []
    for token in cleaned.split():
        current.append(token)
        if token == SENTENCE_END:
            if len(current) > 1:
                sentences.append(" ".join(current))
            current = []
    if current:
        sentences.append(" ".join(current))
    return sentences


def to_display(cleaned: str) -> str:
    """Readable text: ``"heart size is normal . no effusion ."`` -> ``"Heart size is normal. No effusion."``.

    Sentence case, no space before ``. , ; : %``; decimals kept by the basic style ("1.5") are
    single tokens and come out unchanged.
    """
    return " ".join(_display_sentence(sentence) for sentence in split_sentences(cleaned))


_SPACE_BEFORE_PUNCTUATION = re.compile(r" ([.,;:%])(?= |$)")


def _display_sentence(sentence: str) -> str:
    text = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", sentence)
    return text[:1].upper() + text[1:]

# --- basic ---------------------------------------------------------------------------------------
_PLACEHOLDER = re.compile(r"\bX{2,}(?:['-]\w+)*")  # IU's "XXXX", also "XXXX't", "XXXX-XXXX"
_LIST_NUMBER = re.compile(r"(?:^|(?<=[.!?:;] ))\d{1,2}[.)] ")  # "1. " / "2) " opening a sentence
_GLUED_UNIT = re.compile(r"(\d)(mm|cm)\b", re.IGNORECASE)
_TOKEN = re.compile(r"\d+(?:\.\d+)+|\w+(?:['-]\w+)*|[.!?]+|[,;:%]")
_CLAUSE_PUNCTUATION = frozenset(",;:")


def _clean_basic(text: str, config: CleaningConfig) -> str:
    if config.drop_placeholders:
        text = _PLACEHOLDER.sub(" ", text)
    text = " ".join(text.split())
    text = _LIST_NUMBER.sub("", text)
    text = _GLUED_UNIT.sub(r"\1 \2", text)
    if config.lowercase:
        text = text.lower()
    sentences: list[list[str]] = [[]]
    for token in _TOKEN.findall(text):
        if token[0] in ".!?":
            sentences.append([])
        else:
            sentences[-1].append(token)
    return " ".join(f"{' '.join(words)} {SENTENCE_END}" for words in map(_trim_clause_punctuation, sentences) if words)


def _trim_clause_punctuation(tokens: list[str]) -> list[str]:
    """A sentence without ``, ; :`` at its start or end."""
    start, end = 0, len(tokens)
    while start < end and tokens[start] in _CLAUSE_PUNCTUATION:
        start += 1
    while end > start and tokens[end - 1] in _CLAUSE_PUNCTUATION:
        end -= 1
    return tokens[start:end]


# --- R2Gen (modules/tokenizers.py), step for step ----------------------------------------------
_R2GEN_LIST_NUMBERS = (
    ("1. ", ""),
    (". 2. ", ". "),
    (". 3. ", ". "),
    (". 4. ", ". "),
    (". 5. ", ". "),
    (" 2. ", ". "),
    (" 3. ", ". "),
    (" 4. ", ". "),
    (" 5. ", ". "),
)
_R2GEN_REMOVED_QUOTES = ('"', "/", "\\", "'")
_R2GEN_PUNCTUATION = re.compile(r"[.,?;*!%^&_+():-\[\]{}]")  # R2Gen's pattern, ':-\[' range included


def _replace_in_order(text: str, replacements: tuple[tuple[str, str], ...]) -> str:
    for old, new in replacements:
        text = text.replace(old, new)
    return text


def _r2gen_sentence(sentence: str) -> str:
    for char in _R2GEN_REMOVED_QUOTES:
        sentence = sentence.replace(char, "")
    return _R2GEN_PUNCTUATION.sub("", sentence.strip().lower())


def _r2gen_sentences(text: str) -> str:
    """R2Gen's common tail: list numbers, lowercase, split on ". ", clean and join sentences."""
    text = _replace_in_order(text, _R2GEN_LIST_NUMBERS).strip().lower()
    report = " . ".join(_r2gen_sentence(sentence) for sentence in text.split(". ")) + " ."
    return " ".join(report.split())


def _clean_r2gen_iu(text: str, config: CleaningConfig) -> str:
    text = _replace_in_order(text, (("..", "."),) * 3)
    return _r2gen_sentences(text)


def _clean_r2gen_mimic(text: str, config: CleaningConfig) -> str:
    text = text.replace("\n", " ")
    text = _replace_in_order(text, (("__", "_"),) * 7 + (("  ", " "),) * 6 + (("..", "."),) * 8)
    return _r2gen_sentences(text)


_CLEANERS: dict[str, Callable[[str, CleaningConfig], str]] = {
    "basic": _clean_basic,
    "r2gen_iu": _clean_r2gen_iu,
    "r2gen_mimic": _clean_r2gen_mimic,
}
CLEANING_STYLES = tuple(_CLEANERS)
