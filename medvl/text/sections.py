"""Report sections: splitting raw reports by their headers, and the tagged model target.

Raw reports ("FINDINGS: ... IMPRESSION: ...") are split by :func:`split_sections` into a dict
keyed by the canonical names of :data:`SECTION_NAMES`. The language model reads and writes one
string per study, the cleaned sections each led by its tag from :data:`SECTION_TAGS`::

    [findings] heart size is normal . no effusion . [impression] no acute disease .

:data:`SECTION_TAGS` is the one list of tags: the tokenizer adds each as a single token that
survives ``decode(skip_special_tokens=True)``, so :func:`target_to_sections` recovers the
structure of generated text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from medvl.errors import ConfigError
from medvl.text.cleaning import SENTENCE_END, CleaningConfig, clean_report

SECTION_NAMES = ("findings", "impression", "comparison", "indication", "history", "technique")
SECTION_TAGS = {name: f"[{name}]" for name in SECTION_NAMES}
TARGET_ORDER = ("findings", "impression")  # the sections the model writes, in this order
DEFAULT_SECTION = "findings"  # where headerless report text, or untagged generated text, belongs
PREAMBLE = "preamble"  # text before the first header of a report that has headers

# Header words (case-insensitive, followed by ":") and the section each opens.
HEADER_ALIASES = {
    "findings": "findings",
    "finding": "findings",
    "impression": "impression",
    "impressions": "impression",
    "conclusion": "impression",
    "conclusions": "impression",
    "comparison": "comparison",
    "comparisons": "comparison",
    "indication": "indication",
    "indications": "indication",
    "clinical indication": "indication",
    "history": "history",
    "clinical history": "history",
    "technique": "technique",
}

# A header opens the text, a line or a sentence: "CT findings:" or "medical history:" in the
# middle of a sentence are words, not headers.
_HEADER = re.compile(
    r"(?:^|(?<=[.!?:;]))[ \t]*(?P<name>"
    + "|".join(r"\s+".join(map(re.escape, alias.split())) for alias in sorted(HEADER_ALIASES, key=len, reverse=True))
    + r")\s*:",
    re.IGNORECASE | re.MULTILINE,
)
_TAG_SECTIONS = {tag: name for name, tag in SECTION_TAGS.items()}


def split_sections(report: str) -> dict[str, str]:
    """The sections of a raw report, by canonical name, in order of appearance.

    Headers are matched case-insensitively (:data:`HEADER_ALIASES`; "CONCLUSION:" opens the
    impression). A report without headers is all ``"findings"``; text before the first header of
    a report with headers goes to ``"preamble"``. A repeated section is joined with a space;
    empty sections are left out. Whitespace is normalised, the text is otherwise untouched.
    """
    headers = list(_HEADER.finditer(report))
    if not headers:
        return _joined({DEFAULT_SECTION: [report]})
    parts: dict[str, list[str]] = {PREAMBLE: [report[: headers[0].start()]]}
    ends = [header.start() for header in headers[1:]] + [len(report)]
    for header, end in zip(headers, ends):
        name = HEADER_ALIASES[" ".join(header.group("name").lower().split())]
        parts.setdefault(name, []).append(report[header.end() : end])
    return _joined(parts)


def _joined(parts: Mapping[str, list[str]]) -> dict[str, str]:
    texts = {name: " ".join(" ".join(chunks).split()) for name, chunks in parts.items()}
    return {name: text for name, text in texts.items() if text}


def clean_sections(
    sections: Mapping[str, str], order: Sequence[str] = TARGET_ORDER, config: CleaningConfig | None = None
) -> dict[str, str]:
    """The sections named in ``order`` (in that order), cleaned; sections without words are left out."""
    for name in order:
        if name not in SECTION_TAGS:
            raise ConfigError(f"section order: unknown section {name!r}; known: {', '.join(SECTION_NAMES)}")
    cleaned = {name: clean_report(sections[name], config) for name in order if name in sections}
    return {name: text for name, text in cleaned.items() if _has_words(text.split())}


def sections_to_target(
    sections: Mapping[str, str], order: Sequence[str] = TARGET_ORDER, config: CleaningConfig | None = None
) -> str:
    """The model target: each cleaned section led by its tag, e.g. ``"[findings] ... [impression] ..."``.

    A report with findings only (IU X-ray) gives ``"[findings] ..."``; one with none of the
    sections in ``order`` gives ``""``.
    """
    return " ".join(f"{SECTION_TAGS[name]} {text}" for name, text in clean_sections(sections, order, config).items())


def target_to_sections(text: str) -> dict[str, str]:
    """The sections of tagged (generated) text; the inverse of :func:`sections_to_target`.

    Text before any tag belongs to ``"findings"``, a repeated tag continues its section, and
    sections without words are left out, so text without tags, with repeated tags or with empty
    sections still gives a usable result.
    """
    parts: dict[str, list[str]] = {}
    section = DEFAULT_SECTION
    for token in text.split():
        if token in _TAG_SECTIONS:
            section = _TAG_SECTIONS[token]
        else:
            parts.setdefault(section, []).append(token)
    return {name: " ".join(tokens) for name, tokens in parts.items() if _has_words(tokens)}


def _has_words(tokens: Sequence[str]) -> bool:
    return any(token != SENTENCE_END for token in tokens)
