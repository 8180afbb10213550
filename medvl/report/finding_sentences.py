"""Finding sentences: make a draft state what the finding head sees, in the training reports' words.

The finding check (:mod:`medvl.report.finding_check`) keeps the beam candidate that agrees best
with the head, but no candidate may state a finding the head sees, and the likeliest may still
claim one it rules out. With ``decoding.state_findings`` the chosen draft is edited, sentence by
sentence, so that the report and the head agree:

* a sentence is dropped when it states a finding kind the head does not see, a kind it sees on
  another side only ("right lower lobe opacity" where the head sees a left one), or a CheXpert
  observation none of the head's kinds can show (a copied "healed rib fractures");
* for each label the head sees that the draft does not state on its side (or states only in words
  that are not its CheXpert observation, "blunting of the costophrenic angle" for an effusion),
  that label's *finding sentence* is put after the draft's first sentence.

A label's finding sentence is the commonest training sentence that states exactly that finding
(its kind and side, by the phantom labeler; its CheXpert observation and no other, by the
CheXpert labeler) in words the model's vocabulary has, the shortest among equals
(:func:`mine_finding_sentences`). They are mined when a model is calibrated
(:func:`medvl.train.calibration.calibrate`) and kept in its ``config.json``
(``finding_sentences``); a label no training sentence states has none, and is left to the
decoder. The edited draft is re-encoded, so its attention maps cover the stated sentences too:
the model's attention while it reads them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

from transformers import PreTrainedTokenizerFast

from medvl.evaluate.chexpert import NO_FINDING
from medvl.evaluate.labeler import label_report
from medvl.findings import FINDING_KINDS
from medvl.report.finding_check import stated_observations, unverifiable_claims
from medvl.text import split_sentences

SIDES = ("left", "right", "bilateral")


def label_key(label: str) -> tuple[str, str | None, str | None]:
    """A finding-head label as the labeler's (kind, side, device): ``"support_device:left:central_line"``
    -> ``("support_device", "left", "central_line")``."""
    kind, *rest = label.split(":")
    side = next((part for part in rest if part in SIDES), None)
    device = next((part for part in rest if part not in SIDES), None)
    return kind, side, device


def observation_of(kind: str) -> str | None:
    """The CheXpert observation a finding kind shows (``None`` for kinds with none, e.g. granulomas)."""
    return FINDING_KINDS[kind].chexpert if kind in FINDING_KINDS else None


@lru_cache(maxsize=8192)
def stated_findings(text: str) -> frozenset[tuple[str, str | None, str | None]]:
    """The (kind, side, device) of each finding ``text`` states as present."""
    return frozenset(tuple(key) for key in label_report(text).positive)


def states_exactly(sentence: str, key: tuple[str, str | None, str | None]) -> bool:
    """Whether ``sentence`` states the finding ``key`` and nothing else, for both labelers."""
    if stated_findings(sentence) != {key}:
        return False
    wanted = observation_of(key[0])
    return stated_observations(sentence) - {NO_FINDING} == ({wanted} if wanted else set())


def mine_finding_sentences(
    reports: Iterable[str], labels: Sequence[str], tokenizer: PreTrainedTokenizerFast
) -> dict[str, str]:
    """Per head label, the commonest sentence of the cleaned ``reports`` that states exactly its
    finding with no word outside the tokenizer's vocabulary (the shortest, then the first in
    alphabetical order, among equals); labels no sentence states are left out."""
    vocabulary = tokenizer.get_vocab()
    keys = {label_key(label): label for label in labels}
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for report in reports:
        for sentence in split_sentences(report):
            found = stated_findings(sentence)
            key = next(iter(found)) if len(found) == 1 else None
            if key in keys and all(word in vocabulary for word in sentence.split()) and states_exactly(sentence, key):
                counts[keys[key]][sentence] += 1
    return {
        label: min(found, key=lambda sentence: (-found[sentence], len(sentence.split()), sentence))
        for label, found in sorted(counts.items())
    }


def state_findings(
    text: str, seen_labels: Sequence[str], sentences: Mapping[str, str], verifiable: frozenset[str]
) -> str:
    """``text`` (cleaned sentences) edited to state the findings of ``seen_labels`` and no other:
    sentences claiming an unseen kind, a seen kind on a side the head does not see it on, or an
    unverifiable observation are dropped; the finding sentence of each seen label not stated (on
    its side, as its CheXpert observation) goes after the first sentence."""
    seen = [label_key(label) for label in seen_labels]
    sides: dict[str, set[str | None]] = {}
    for kind, side, _ in seen:
        sides.setdefault(kind, set()).add(side)

    def claims_unseen(sentence: str) -> bool:
        return any(
            kind not in sides or (side is not None and side not in sides[kind] and not sides[kind] & {None, "bilateral"})
            for kind, side, _ in stated_findings(sentence)
        ) or bool(unverifiable_claims(sentence, verifiable))

    kept = [sentence for sentence in split_sentences(text) if not claims_unseen(sentence)]
    stated, observations = stated_findings(" ".join(kept)), stated_observations(" ".join(kept))
    added: dict[str, str] = {}
    for label, (kind, side, _) in zip(seen_labels, seen):
        on_its_side = any(found == kind and (side is None or found_side == side) for found, found_side, _ in stated)
        wanted = observation_of(kind)
        worded = on_its_side and (wanted is None or wanted in observations)
        if not worded and kind not in added and label in sentences:
            added[kind] = sentences[label]
    return " ".join([*kept[:1], *added.values(), *kept[1:]])


def stated_ids(
    tokenizer: PreTrainedTokenizerFast,
    ids: Sequence[int],
    seen_labels: Sequence[str],
    sentences: Mapping[str, str],
    verifiable: frozenset[str],
) -> list[int]:
    """Generated token ids (no EOS) with their findings section (or, without a ``[findings]``
    tag, the whole text) edited by :func:`state_findings` and re-encoded; other sections and the
    section tags are kept as generated."""
    ids = list(ids)
    tags = [index for index, token in enumerate(tokenizer.convert_ids_to_tokens(ids)) if is_section_tag(token)]
    start, end = 0, len(ids)
    findings = [index for index in tags if tokenizer.convert_ids_to_tokens(ids[index]) == "[findings]"]
    if findings:
        start = findings[0] + 1
        end = next((index for index in tags if index > findings[0]), len(ids))
    body = tokenizer.decode(ids[start:end], skip_special_tokens=False)
    edited = state_findings(body, seen_labels, sentences, verifiable)
    return [*ids[:start], *tokenizer.encode(edited, add_special_tokens=False), *ids[end:]]


def untagged(target: str) -> str:
    """A tagged report target (``"[findings] ... [impression] ..."``) without its section tags."""
    return " ".join(word for word in target.split() if not is_section_tag(word))


def is_section_tag(token: str) -> bool:
    """Whether a target token is a section tag (``"[findings]"``)."""
    return token.startswith("[") and token.endswith("]") and token[1:-1].islower()
