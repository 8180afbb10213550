"""A rule-based report labeler: which findings a report asserts, denies or is unsure of.

In the spirit of the CheXpert and NegBio labelers, in three steps per sentence:

1. **Mentions.** Every :class:`Phrase` of a phrase table (:data:`FINDING_PHRASES` names the
   kinds of :mod:`medvl.findings`) is matched on whole words, case-insensitively; where matches
   overlap the longest wins ("calcified granuloma" over "granuloma").
2. **Status.** Cue words (:data:`CUES`) open a scope: negation ("no", "without", "negative for",
   "... is not seen") and uncertainty ("possible", "may represent", "cannot be excluded") reach
   forward to the end of the sentence or to a stop word ("but", "however", ";"), so a list after
   "No" is denied as a whole; backward cues reach back to the sentence start or the last stop
   word. Negation beats uncertainty; a mention in no scope is positive. Some phrases carry their
   own status ("heart size is normal" denies cardiomegaly). Two positive mentions offered as
   alternatives ("scarring or atelectasis") are both uncertain. In IU X-ray reports the
   anonymiser replaced "likely" by ``XXXX``: an ``XXXX`` that opens a clause after a comma, or
   that stands before "represents", "secondary to" and the like, is read as "likely".
3. **Where.** The side, zone and size (mm or cm) nearest before a mention, else nearest after
   it, belong to it; they are read between its neighbouring mentions, within its clause ("but",
   ";"). A mention marked as a ``sign`` (an opacity) that a named diagnosis explains ("linear
   opacity ... consistent with atelectasis") is not counted on its own: the diagnosis takes its
   place, and its side.

A report's label per kind aggregates its mentions as CheXpert does: positive beats uncertain
beats negative. Its positive findings are :class:`FindingKey` tuples ``(kind, side, device)``.

The matching is generic: another vocabulary (the 14 CheXpert observations) is one more tuple of
:class:`Phrase` passed as ``phrases``. Sides, zones and sizes are normalised with the rules of
:data:`medvl.findings.FINDING_KINDS` where a kind is one of those, and kept as read otherwise.
Works on raw report text and on cleaned lowercase text ("no pleural effusion or pneumothorax .").
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from medvl.findings import FINDING_KINDS, FindingKind

POSITIVE, UNCERTAIN, NEGATIVE = "positive", "uncertain", "negative"
STATUSES = (POSITIVE, UNCERTAIN, NEGATIVE)  # strongest first: how mentions aggregate


@dataclass(frozen=True)
class Phrase:
    """One way reports name a finding: a regular expression matched on whole words, ignoring case.

    A space in ``pattern`` matches any run of spaces or hyphens, ``" ?"`` an optional one.
    ``status`` fixes the status of statements that carry it ("heart size is normal": negative);
    ``None`` leaves it to the cues around the mention. ``sign`` marks a description of an
    appearance that a diagnosis named after "consistent with" in the same clause explains.
    """

    kind: str
    pattern: str
    device: str | None = None
    status: str | None = None
    sign: bool = False


@dataclass(frozen=True)
class Cue:
    """A word or phrase that changes the status of the mentions in its scope, or ends scopes.

    ``effect``: "negative" or "uncertain" (a scope), "stop" (ends every scope), "clause" (ends
    every scope and the clause where a mention's side, zone and size are read), "explains" (a
    sign before it is explained by the diagnosis after it), "alternative" (two positive mentions
    it joins, with at most two words besides, are both uncertain: "scarring or atelectasis") or
    "ignore" (looks like a cue but is none: "no change"). ``direction``: "forward", "backward"
    or "both".
    """

    pattern: str
    effect: str
    direction: str = "forward"


# --- the finding vocabulary ----------------------------------------------------------------------
# Words between a heart word and what is said of it: up to five before "enlarged" (none of them
# "normal"), up to eight before "normal" (none of them "enlarged").
_GAP_ENLARGED = r"(?:\W+(?!normal\b)\w+){0,5}?\W+"
_GAP_NORMAL = r"(?:\W+(?!enlarge)\w+){0,8}?\W+"
_HEART = r"(?:heart|cardiac)"
_HEART_OR_MEDIASTINUM = r"(?:heart|cardiac|cardio ?mediastinal)"
_NORMAL = r"(?:normal|unremarkable)"
_OPACITY = r"opacit(?:y|ies)"
_SPINE = r"(?:(?:thoracic |lumbar |t-)?spine|vertebra[el]?|(?:vertebral |intervertebral )?dis[ck]s?|endplates?)"

FINDING_PHRASES: tuple[Phrase, ...] = (
    Phrase("cardiomegaly", r"cardiomegaly"),
    Phrase("cardiomegaly", rf"enlarged {_HEART}"),
    Phrase("cardiomegaly", rf"enlargement of the {_HEART}"),
    Phrase("cardiomegaly", rf"{_HEART}{_GAP_ENLARGED}enlarge(?:d|ment)"),
    Phrase("cardiomegaly", rf"{_HEART_OR_MEDIASTINUM}{_GAP_NORMAL}{_NORMAL}", status=NEGATIVE),
    Phrase("cardiomegaly", rf"normal (?:\w+ )?{_HEART_OR_MEDIASTINUM}", status=NEGATIVE),
    Phrase("pleural_effusion", r"(?:pleural )?effusions?"),
    Phrase("pleural_effusion", r"pleural fluid"),
    Phrase("pleural_effusion", r"hydrothora(?:x|ces)"),
    Phrase("pleural_effusion", r"blunt(?:ing|ed)? of (?:the )?(?:\w+ ){0,2}costophrenic(?: angles?| sulcus| sulci)?"),
    Phrase("pleural_effusion", r"costophrenic (?:\w+ ){0,2}?blunt(?:ing|ed)"),
    Phrase("pneumothorax", r"pneumothora(?:x|ces|xes)"),
    Phrase("consolidation", r"consolidat(?:ion|ions|ive|ed)"),
    Phrase("consolidation", rf"consolidative {_OPACITY}"),
    Phrase("consolidation", r"air ?space (?:disease|consolidation)"),
    Phrase("opacity", _OPACITY, sign=True),
    Phrase("opacity", r"opacification", sign=True),
    Phrase("opacity", r"infiltrat(?:e|es|ion|ions)", sign=True),
    Phrase("opacity", r"increased density", sign=True),
    Phrase("opacity", r"(?:interstitial|reticular) markings?", sign=True),
    Phrase("nodule", r"nodules?"),
    Phrase("nodule", rf"nodular (?:{_OPACITY}|densit(?:y|ies))"),
    Phrase("mass", r"mass(?:es)?"),
    Phrase("calcified_granuloma", r"(?:calcified )?granulomas?"),
    Phrase("calcified_granuloma", r"calcified (?:pulmonary )?nodules?"),
    Phrase("atelectasis", r"atelecta(?:sis|ses|tic)"),
    Phrase("atelectasis", r"(?:lobar|segmental|subsegmental) collapse"),
    Phrase("edema", r"o?edema"),
    Phrase("edema", r"(?:pulmonary |vascular )+congestion"),
    Phrase("edema", r"congestive heart failure|chf"),
    Phrase("support_device", r"central (?:venous )?(?:catheter|line)s?", device="central_line"),
    Phrase(
        "support_device",
        r"(?:internal jugular|ij|subclavian|picc)(?: \w+){0,3}? (?:catheter|line)s?",
        device="central_line",
    ),
    Phrase("support_device", r"picc|(?:venous )?catheters?", device="central_line"),  # a bare catheter: venous
    Phrase("support_device", r"endotracheal tubes?|et tubes?|ett", device="endotracheal_tube"),
    Phrase("support_device", r"(?:pacemaker|pacer|pacing)(?: leads?| wires?)?|pacemakers|pacers", device="pacemaker"),
    Phrase("support_device", r"aicd|defibrillator", device="pacemaker"),
    Phrase("support_device", r"chest tubes?|(?:nasogastric|orogastric|feeding|enteric|ng|og) tubes?"),
    Phrase("degenerative_spine", r"spondylo(?:sis|tic)(?: changes?)?|(?:t-spine |thoracic |spinal |vertebral )?osteophytes?"),
    Phrase("degenerative_spine", rf"degenerat\w*(?: [\w-]+){{0,5}}? {_SPINE}"),
    Phrase("degenerative_spine", rf"{_SPINE} degenerat\w*(?: changes?| disease)?"),
)

# --- cues ----------------------------------------------------------------------------------------
_SEEN = r"(?:seen|identified|present|visualized|visualised|evident|appreciated|demonstrated|noted|detected)"
_EXCLUDED = r"(?:excluded|ruled out)"
_ANONYMISED = r"x{4}"  # IU X-ray's placeholder for words the anonymiser removed
_LINKING = r"(?:represent|reflect|relat|consistent|compatible|correspond|secondary|due)\w*"

CUES: tuple[Cue, ...] = (
    Cue(r"no|not|without|neither|nor|absence of|free of|clear of|negative for", "negative"),
    Cue(r"no (?:\w+ )?(?:evidence|signs?|findings) (?:of|to suggest)", "negative"),
    Cue(r"resolution of|removal of|no longer|rule(?:s|d)? out", "negative"),
    Cue(rf"(?:(?:is|are|was|were) )?not {_SEEN}", "negative", "backward"),
    Cue(rf"no longer {_SEEN}|(?:(?:is|are|has|have) )?(?:been )?(?:resolved|removed|cleared)", "negative", "backward"),
    Cue(r"(?:is|are) absent", "negative", "backward"),
    Cue(r"possible|possibly|probable|probably|questionable|question of", "uncertain"),
    Cue(r"suspect(?:ed)?|suspicious (?:for|of)", "uncertain"),
    Cue(r"suspicion (?:for|of)|concerning for|worrisome for|equivocal|borderline|indeterminate", "uncertain"),
    Cue(r"may|might|could|suggest(?:s|ed|ing|ive of)?|suggestion of|possibility of|consider(?:ed)?", "uncertain"),
    Cue(r"likely|presumed|presumably|favou?r(?:s|ed)?|apparent(?:ly)?", "uncertain"),
    # IU X-ray's anonymised "likely" (an angle, "costophrenic XXXX", is a noun)
    Cue(rf"most {_ANONYMISED}|(?<!costophrenic\s){_ANONYMISED}(?= {_LINKING})|(?<=,) ?{_ANONYMISED}", "uncertain"),
    Cue(r"(?:cannot|can not|could not) (?:exclude|rule out)", "uncertain"),
    Cue(rf"(?:cannot|can not|could not) be {_EXCLUDED}", "uncertain", "backward"),
    Cue(rf"(?:(?:is|are) )?not (?:entirely |completely )?{_EXCLUDED}", "uncertain", "backward"),
    Cue(r"(?:is|are) (?:suspected|questioned|possible|questionable)", "uncertain", "backward"),
    Cue(r"versus|vs", "uncertain", "both"),
    Cue(r"but|however|although|though|while|whereas|except(?: for)?|apart from|aside from|other than", "clause"),
    Cue(r"with the exception of", "clause"),
    Cue(rf"which|there (?:is|are)|(?:is|are) {_SEEN}", "stop"),
    Cue(r"consistent with|compatible with|in keeping with|representing|reflecting|characteristic of", "explains"),
    Cue(r"and ?/ ?or|or", "alternative"),
    Cue(r"no (?:significant |interval |appreciable )?(?:change|increase|decrease|worsening|progression)", "ignore"),
    Cue(r"without (?:significant |interval )?change|not significantly (?:changed|different)", "ignore"),
    Cue(r"age indeterminate", "ignore"),  # an "age-indeterminate fracture" is a fracture
)

_ENDS_SCOPE = ("stop", "clause")

# --- where ---------------------------------------------------------------------------------------
SIDE_WORDS = {
    "bilateral": r"bilateral(?:ly)?|both|bibasilar|bibasal|biapical|left and right|right and left",
    "left": r"left|lingula(?:r)?",
    "right": r"right",
}
ZONE_WORDS = {
    "upper": r"upper|apex|apices|apical|biapical",
    "middle": r"middle|mid|midlung|lingula(?:r)?",
    "lower": r"lower|bases?|basilar|basal|bibasilar|bibasal",
}
_SIZE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?) ?(mm|cm)\b", re.IGNORECASE)
_MM_PER_UNIT = {"mm": 1.0, "cm": 10.0}


# --- results -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mention:
    """One finding named in one sentence, with its status and where it is."""

    kind: str
    status: str  # "positive", "uncertain" or "negative"
    side: str | None
    zone: str | None
    size_mm: float | None
    sentence_index: int
    span: tuple[int, int]  # character offsets of the phrase in the labelled text
    device: str | None = None
    text: str = ""


class FindingKey(NamedTuple):
    """What a positive finding is compared by: its kind, side and (support devices) device."""

    kind: str
    side: str | None = None
    device: str | None = None


@dataclass(frozen=True)
class ReportLabels:
    """A report's mentions, the aggregate status per mentioned kind and its positive findings."""

    mentions: tuple[Mention, ...]
    status: dict[str, str]
    positive: tuple[FindingKey, ...]

    def kinds(self, status: str) -> tuple[str, ...]:
        """The kinds whose aggregate status is ``status``."""
        return tuple(kind for kind, value in self.status.items() if value == status)


# --- labelling -----------------------------------------------------------------------------------
def label_report(text: str, phrases: Sequence[Phrase] = FINDING_PHRASES) -> ReportLabels:
    """Label ``text`` (raw or cleaned report text) with the kinds of ``phrases``."""
    mentions = find_mentions(text, phrases)
    return ReportLabels(tuple(mentions), aggregate_status(mentions), positive_findings(mentions))


def find_mentions(text: str, phrases: Sequence[Phrase] = FINDING_PHRASES) -> list[Mention]:
    """Every mention of a kind of ``phrases`` in ``text``, in reading order."""
    table = _compile_phrases(tuple(phrases))
    cues = _compile_cues(CUES)
    mentions: list[Mention] = []
    for index, (start, end) in enumerate(sentence_spans(text)):
        mentions += _sentence_mentions(text[start:end], start, index, table, cues)
    return mentions


def aggregate_status(mentions: Iterable[Mention]) -> dict[str, str]:
    """The status per mentioned kind: positive beats uncertain beats negative (CheXpert's rule)."""
    best: dict[str, str] = {}
    for mention in mentions:
        current = best.get(mention.kind)
        if current is None or STATUSES.index(mention.status) < STATUSES.index(current):
            best[mention.kind] = mention.status
    return best


def positive_findings(mentions: Iterable[Mention]) -> tuple[FindingKey, ...]:
    """The distinct positive findings, less specific duplicates merged, in registry order.

    A positive mention without a side (or device) merges into one of the same kind that has it
    ("Small left effusion. ... Effusion."); left and right of a kind that can be bilateral make
    one bilateral finding.
    """
    keys = {FindingKey(m.kind, m.side, m.device) for m in mentions if m.status == POSITIVE}
    keys = _fold_bilateral(keys)
    return sort_findings(key for key in keys if not any(_less_specific(key, other) for other in keys))


def sort_findings(keys: Iterable[FindingKey]) -> tuple[FindingKey, ...]:
    """``keys`` in the order of :data:`~medvl.findings.FINDING_KINDS` (other kinds last), then device and side."""
    order = {kind: number for number, kind in enumerate(FINDING_KINDS)}
    return tuple(sorted(keys, key=lambda k: (order.get(k.kind, len(order)), k.kind, k.device or "", k.side or "")))


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence: text up to ``. ! ?`` before a space or the end, or a blank line.

    Decimal points ("1.5 cm") do not end a sentence.
    """
    spans = []
    start = 0
    for boundary in _SENTENCE_END.finditer(text):
        spans.append((start, boundary.end()))
        start = boundary.end()
    spans.append((start, len(text)))
    return [_strip(text, s, e) for s, e in spans if text[s:e].strip(" \t\r\n.!?")]


_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)|\n\s*\n")


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


# --- matching ------------------------------------------------------------------------------------
class _Match(NamedTuple):
    start: int
    end: int
    item: Any  # the Phrase, Cue or location label that matched


def _regex(pattern: str) -> re.Pattern[str]:
    """Whole-word, case-insensitive; a space matches whitespace, " ?" optional whitespace."""
    spaced = pattern.replace(" ?", r"\s*").replace(" ", r"\s+")
    return re.compile(rf"(?<!\w)(?:{spaced})(?!\w)", re.IGNORECASE)


@lru_cache(maxsize=8)
def _compile_phrases(phrases: tuple[Phrase, ...]) -> tuple[tuple[re.Pattern[str], Phrase], ...]:
    return tuple((_regex(phrase.pattern), phrase) for phrase in phrases)


@lru_cache(maxsize=8)
def _compile_cues(cues: tuple[Cue, ...]) -> tuple[tuple[re.Pattern[str], Cue], ...]:
    """The cues as whole-word regexes, and semicolons and colons, which end a clause too."""
    return tuple((_regex(cue.pattern), cue) for cue in cues) + ((re.compile(r"[;:]"), Cue("[;:]", "clause")),)


def _longest_first(sentence: str, table: Iterable[tuple[re.Pattern[str], Any]]) -> list[_Match]:
    """All matches of the table, overlaps resolved in favour of the longest, in reading order."""
    found = [_Match(m.start(), m.end(), item) for regex, item in table for m in regex.finditer(sentence)]
    kept: list[_Match] = []
    for match in sorted(found, key=lambda m: (m.start - m.end, m.start)):
        if all(match.end <= other.start or other.end <= match.start for other in kept):
            kept.append(match)
    return sorted(kept)


def _sentence_mentions(
    sentence: str,
    offset: int,
    index: int,
    table: tuple[tuple[re.Pattern[str], Phrase], ...],
    cue_table: tuple[tuple[re.Pattern[str], Cue], ...],
) -> list[Mention]:
    words = sentence.replace("-", " ")  # "right-sided" reads as "right sided"; offsets stay valid
    found = _longest_first(words, table)
    cues = [c for c in _longest_first(words, cue_table) if c.item.effect != "ignore"]
    found = _drop_explained_signs(found, cues)
    mentions = []
    clauses = [c for c in cues if c.item.effect == "clause"]
    places = [_longest_first(words, place_table) for place_table in (_SIDE_TABLE, _ZONE_TABLE, _SIZE_TABLE)]
    statuses = _statuses(words, found, cues)
    for number, match in enumerate(found):
        phrase: Phrase = match.item
        side, zone, size = _location(places, match, *_reading_bounds(found, number, clauses, len(sentence)))
        spec = FINDING_KINDS.get(phrase.kind)
        mentions.append(
            Mention(
                kind=phrase.kind,
                status=statuses[number],
                side=_normalised_side(side.item if side else None, spec, phrase.device),
                zone=zone.item if zone and (spec is None or spec.zoned) else None,
                size_mm=_millimetres(words[size.start : size.end]) if size and (spec is None or spec.size_mm) else None,
                sentence_index=index,
                span=(offset + match.start, offset + match.end),
                device=phrase.device,
                text=sentence[match.start : match.end],
            )
        )
    return mentions


def _reading_bounds(found: list[_Match], number: int, clauses: list[_Match], sentence_end: int) -> tuple[int, int]:
    """Where mention ``number`` reads its side, zone and size: between its neighbours, in its clause."""
    mention = found[number]
    starts = [0] + [c.end for c in clauses if c.end <= mention.start] + ([found[number - 1].end] if number else [])
    ends = [sentence_end] + [c.start for c in clauses if c.start >= mention.end]
    if number + 1 < len(found):
        ends.append(found[number + 1].start)
    return max(starts), min(ends)


def _drop_explained_signs(found: list[_Match], cues: list[_Match]) -> list[_Match]:
    """Without the signs that an "explains" cue hands over to the diagnosis named after it."""
    dropped: set[_Match] = set()
    for cue in (c for c in cues if c.item.effect == "explains"):
        if not any(m.start >= cue.end for m in found):  # no diagnosis named after it
            continue
        clause_start = max((c.end for c in cues if c.item.effect in _ENDS_SCOPE and c.end <= cue.start), default=0)
        dropped |= {m for m in found if m.item.sign and clause_start <= m.start and m.end <= cue.start}
    return [m for m in found if m not in dropped]


def _statuses(words: str, found: list[_Match], cues: list[_Match]) -> list[str]:
    """The status of each mention: its phrase's own, else its cues'; positive alternatives uncertain."""
    statuses = [match.item.status or _status(match, cues, len(words)) for match in found]
    for number in range(len(found) - 1):
        first, second = found[number], found[number + 1]
        free = not (first.item.status or second.item.status)
        if free and statuses[number] == statuses[number + 1] == POSITIVE and _alternatives(words, first, second, cues):
            statuses[number] = statuses[number + 1] = UNCERTAIN
    return statuses


_MODIFIERS_BETWEEN_ALTERNATIVES = 2


def _alternatives(words: str, first: _Match, second: _Match, cues: list[_Match]) -> bool:
    """Whether an "alternative" cue ("or") and at most two other words are all that separate two mentions."""
    for cue in cues:
        if cue.item.effect == "alternative" and first.end <= cue.start and cue.end <= second.start:
            between = words[first.end : cue.start] + " " + words[cue.end : second.start]
            few_words = len(between.split()) <= _MODIFIERS_BETWEEN_ALTERNATIVES
            return few_words and not re.search(r"[^\w\s]", between)
    return False


def _status(mention: _Match, cues: list[_Match], sentence_end: int) -> str:
    """Negative if a negation cue's scope holds the mention, else uncertain if an uncertainty one does."""
    stops = [c for c in cues if c.item.effect in _ENDS_SCOPE]
    effects = {
        cue.item.effect
        for cue in cues
        if cue.item.effect in (NEGATIVE, UNCERTAIN) and _in_scope(mention, cue, stops, sentence_end)
    }
    return NEGATIVE if NEGATIVE in effects else UNCERTAIN if UNCERTAIN in effects else POSITIVE


def _in_scope(mention: _Match, cue: _Match, stops: list[_Match], sentence_end: int) -> bool:
    direction = cue.item.direction
    if direction in ("forward", "both"):
        scope_end = min((s.start for s in stops if s.start >= cue.end), default=sentence_end)
        if cue.start < mention.end and mention.start < scope_end:  # a cue inside the phrase counts
            return True
    if direction in ("backward", "both"):
        scope_start = max((s.end for s in stops if s.end <= cue.start), default=0)
        if scope_start <= mention.start < cue.start:
            return True
    return False


# --- side, zone, size ----------------------------------------------------------------------------
_SIDE_TABLE = tuple((_regex(words), side) for side, words in SIDE_WORDS.items())
_ZONE_TABLE = tuple((_regex(words), zone) for zone, words in ZONE_WORDS.items())
_SIZE_TABLE = ((_SIZE, "size"),)


def _location(places: list[list[_Match]], mention: _Match, before: int, after: int) -> list[_Match | None]:
    """Per table of ``places`` (sides, zones, sizes) the match nearest before the mention (its
    words included) in ``[before, mention end)``, else the nearest after it, up to ``after``."""
    nearest = []
    for hits in places:
        within = [hit for hit in hits if before <= hit.start and hit.end <= after]
        preceding = [hit for hit in within if hit.start < mention.end]
        nearest.append(preceding[-1] if preceding else within[0] if within else None)
    return nearest


def _millimetres(size: str) -> float:
    match = _SIZE.fullmatch(size)
    assert match is not None
    return float(match.group(1)) * _MM_PER_UNIT[match.group(2).lower()]


def _normalised_side(side: str | None, spec: FindingKind | None, device: str | None) -> str | None:
    """The side as the kind allows it: none for sideless kinds, the only side where there is one."""
    if spec is None:
        return side
    allowed = spec.device(device).sides if device is not None else spec.sides
    if allowed == (None,):
        return None
    if len(allowed) == 1:
        return allowed[0]
    return side


def _fold_bilateral(keys: set[FindingKey]) -> set[FindingKey]:
    """Left and right (or either with bilateral) of a kind that can be bilateral, as one bilateral."""
    by_kind: dict[tuple[str, str | None], set[str | None]] = defaultdict(set)
    for key in keys:
        by_kind[(key.kind, key.device)].add(key.side)
    folded = set(keys)
    for (kind, device), sides in by_kind.items():
        spec = FINDING_KINDS.get(kind)
        can_be_bilateral = spec is not None and "bilateral" in spec.sides and device is None
        if can_be_bilateral and ({"left", "right"} <= sides or ("bilateral" in sides and sides & {"left", "right"})):
            folded -= {FindingKey(kind, side, device) for side in ("left", "right")}
            folded.add(FindingKey(kind, "bilateral", device))
    return folded


def _less_specific(key: FindingKey, other: FindingKey) -> bool:
    """Whether ``other`` says everything ``key`` says and more (same kind, a side or device more)."""
    return (
        key != other
        and key.kind == other.kind
        and key.side in (None, other.side)
        and key.device in (None, other.device)
    )
