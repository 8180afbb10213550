"""The `Draft`: a generated report with its sections, sentences and tokens, and its exports.

Every draft carries the notice "DRAFT - not for clinical use" and the exact model (name and
weights version) and decoding settings that wrote it. It holds no patient identifier: the study
is named by its salted UID hash (DICOM) or the input's file name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from medvl import DRAFT_NOTICE
from medvl.text import SECTION_TAGS, to_display

_TAG_SECTIONS = {tag: name for name, tag in SECTION_TAGS.items()}
SENTENCE_END = "."


@dataclass(frozen=True)
class DraftSentence:
    """One sentence: its section, display text, the span of generated tokens it came from, and
    who wrote it: ``"decoder"``, ``"report bank"`` (the consensus report of the training reports
    with the head's findings) or ``"finding sentence"`` (put in for a finding the head sees)."""

    section: str
    text: str
    token_start: int
    token_end: int  # exclusive
    origin: str = "decoder"


@dataclass
class Draft:
    """A machine-written report draft for one study."""

    study: str  # the study UID hash, or the input's file name for non-DICOM input
    study_uid_hash: str | None
    sentences: list[DraftSentence]
    tokens: list[str]
    model_name: str
    model_version: str
    decoding: dict[str, Any]
    views: list[dict[str, Any]] = field(default_factory=list)
    maps: dict[str, list[list[np.ndarray]]] = field(default_factory=dict)  # method -> [sentence][view] map
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def sections(self) -> dict[str, str]:
        """Display text per section, in order of appearance."""
        sections: dict[str, list[str]] = {}
        for sentence in self.sentences:
            sections.setdefault(sentence.section, []).append(sentence.text)
        return {name: " ".join(texts) for name, texts in sections.items()}

    def to_text(self) -> str:
        """The draft as plain text, headed by the notice."""
        body = "\n\n".join(f"{name.upper()}:\n{text}" for name, text in self.sections.items())
        return f"{DRAFT_NOTICE}\n\n{body}\n\n-- {self.model_name} {self.model_version}\n"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (maps are left out: they are arrays, written as overlays)."""
        return {
            "notice": DRAFT_NOTICE,
            "status": "preliminary",
            "study": self.study,
            "study_uid_hash": self.study_uid_hash,
            "sections": self.sections,
            "sentences": [
                {"section": s.section, "text": s.text, "tokens": [s.token_start, s.token_end], "origin": s.origin}
                for s in self.sentences
            ],
            "tokens": self.tokens,
            "model": {"name": self.model_name, "version": self.model_version},
            "decoding": self.decoding,
            "views": self.views,
            "created": self.created,
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2) + "\n"


def split_draft_sentences(tokens: list[str], decode: Any) -> list[DraftSentence]:
    """Sentences of generated ``tokens``: a section tag opens a section, ``"."`` ends a sentence.

    ``decode(start, end)`` turns a token span into cleaned text (the tokenizer's decoding of
    those ids), so subword tokenizers are handled by the tokenizer itself.
    """
    sentences: list[DraftSentence] = []
    section, start = "findings", None

    def close(end: int) -> None:
        text = to_display(decode(start, end)) if start is not None else ""
        if text:
            sentences.append(DraftSentence(section, text, start, end))

    for index, token in enumerate(tokens):
        if token in _TAG_SECTIONS:
            close(index)
            section, start = _TAG_SECTIONS[token], None
            continue
        if start is None:
            start = index
        if token == SENTENCE_END:
            close(index + 1)
            start = None
    close(len(tokens))
    return sentences
