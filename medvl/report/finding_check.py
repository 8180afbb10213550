"""Finding check: of a study's candidate drafts, keep one that states what the image shows.

A model with a finding head knows which findings it sees before it writes (its verdicts, also
given to the decoder as the finding prompt), yet beam search may still rank first a memorised
report that leaves one out, or one that adds a finding the model has no way to see (a healed rib
fracture copied from a training report). The finding check reads each candidate with the clinical
labelers and counts its **disagreements** with the head:

* the finding kinds the draft states as present (:func:`medvl.evaluate.labeler.label_report`)
  that the head does not see, and those the head sees that the draft does not state (sides aside);
* the CheXpert observations the draft states as present (:func:`medvl.evaluate.chexpert.label_chexpert`)
  that none of the head's finding kinds shows ("unverifiable": fractures, pleural thickening,
  a widened mediastinum for the IU-phantom models).

The kept draft is the likeliest of the candidates with the fewest disagreements (or their
consensus, with ``consensus_candidates`` > 1); among equals, those that word each seen finding as
its CheXpert observation come first (:func:`unworded_findings`: "blunting of the costophrenic
angle" names an effusion for the finding labeler, and for CheXpert only another abnormality).

The check can only choose among what the beam found. ``decoding.finding_bias`` steers the search
itself (:class:`FindingWordBias`): while a draft has not yet named a finding the head sees, the
words that name it (:func:`finding_words`: the vocabulary words the labeler reads as that kind)
get that much more log-probability in that study's beams. Measured on the IU-phantom val split
(``docs/results.md``), the check raises the clinical F1 of the same beams by 0.02-0.04 and leaves
BLEU-4 as it was; a bias of 2 with a length penalty of 6 adds about 0.015 more.

The labelers' readings are cached per text: beam candidates repeat the same memorised wordings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

import torch
from transformers import LogitsProcessor, PreTrainedTokenizerFast

from medvl.evaluate.chexpert import NO_FINDING, label_chexpert
from medvl.evaluate.labeler import label_report
from medvl.findings import FINDING_KINDS, label_kind
from medvl.model.consensus import consensus_index


def seen_kinds(labels: Sequence[str], verdicts: Sequence[bool]) -> frozenset[str]:
    """The finding kinds of the labels the head says the study shows."""
    return frozenset(label_kind(label) for label, shown in zip(labels, verdicts) if shown)


def verifiable_observations(labels: Sequence[str]) -> frozenset[str]:
    """The CheXpert observations the head's finding kinds can show, plus "No Finding"."""
    kinds = {label_kind(label) for label in labels}
    return frozenset(FINDING_KINDS[kind].chexpert for kind in kinds if kind in FINDING_KINDS) - {None} | {NO_FINDING}


@lru_cache(maxsize=8192)
def stated_kinds(text: str) -> frozenset[str]:
    """The finding kinds a draft states as present (negated and uncertain ones are not)."""
    return frozenset(key.kind for key in label_report(text).positive)


@lru_cache(maxsize=8192)
def stated_observations(text: str) -> frozenset[str]:
    """The CheXpert observations a draft states as present."""
    return label_chexpert(text).positive()


def unverifiable_claims(text: str, verifiable: frozenset[str]) -> frozenset[str]:
    """The CheXpert observations a draft states as present that the head cannot see."""
    return stated_observations(text) - verifiable


def disagreements(text: str, seen: frozenset[str], verifiable: frozenset[str]) -> int:
    """How far a draft is from the head: kinds stated but not seen or seen but not stated,
    plus the unverifiable observations it states."""
    return len(stated_kinds(text) ^ seen) + len(unverifiable_claims(text, verifiable))


def unworded_findings(text: str, seen: frozenset[str]) -> int:
    """How many seen kinds with a CheXpert observation the draft does not state as that observation."""
    stated = stated_observations(text)
    return sum(1 for kind in seen if kind in FINDING_KINDS and FINDING_KINDS[kind].chexpert not in (None, *stated))


def checked_indices(texts: Sequence[str], seen: frozenset[str], verifiable: frozenset[str]) -> list[int]:
    """The indices of the candidates with the fewest disagreements, then the fewest unworded
    findings, likeliest first."""
    counts = [(disagreements(text, seen, verifiable), unworded_findings(text, seen)) for text in texts]
    return [index for index, count in enumerate(counts) if count == min(counts)]


def checked_index(
    texts: Sequence[str],
    seen: frozenset[str],
    verifiable: frozenset[str],
    candidate_ids: Sequence[Sequence[int]] | None = None,
) -> int:
    """The index of the kept candidate: the first (likeliest) of :func:`checked_indices`, or, given
    their token ids, the consensus of those."""
    fewest = checked_indices(texts, seen, verifiable)
    if candidate_ids is None or len(fewest) < 2:
        return fewest[0]
    return fewest[consensus_index([candidate_ids[index] for index in fewest])]


@lru_cache(maxsize=4)
def finding_words(tokenizer: PreTrainedTokenizerFast) -> dict[str, frozenset[int]]:
    """Per finding kind, the ids of the vocabulary's words that name it on their own
    (the labeler reads "there is <word> ." as that kind present: "nodule", "effusions", "picc");
    read once per tokenizer."""
    words: dict[str, set[int]] = {}
    for word, token_id in tokenizer.get_vocab().items():
        if word.isalpha():
            for kind in stated_kinds(f"there is {word} ."):
                words.setdefault(kind, set()).add(token_id)
    return {kind: frozenset(ids) for kind, ids in words.items()}


class FindingWordBias(LogitsProcessor):
    """Adds ``bias`` to the scores of the words naming each finding a study's head sees, in that
    study's rows, until the row has one of those words or its finished sentences name the kind.

    ``seen``: the kinds per study; rows come study by study, ``rows_per_study`` each (beam search).
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerFast,
        words: Mapping[str, frozenset[int]],
        seen: Sequence[frozenset[str]],
        rows_per_study: int,
        bias: float,
    ) -> None:
        self.tokenizer = tokenizer
        self.words = words
        self.row_kinds = [kinds for kinds in seen for _ in range(rows_per_study)]
        self.bias = bias
        self.full_stop = tokenizer.convert_tokens_to_ids(".")
        self._stated: dict[tuple[int, ...], frozenset[str]] = {}

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for row, kinds in enumerate(self.row_kinds):
            ids = input_ids[row].tolist()
            stated = self._stated_in_sentences(ids)
            for kind in kinds - stated:
                words = self.words.get(kind)
                if words and words.isdisjoint(ids):
                    scores[row, list(words)] += self.bias
        return scores

    def _stated_in_sentences(self, ids: list[int]) -> frozenset[str]:
        """The kinds the finished sentences of ``ids`` state (cached per prefix)."""
        end = max((index + 1 for index, token in enumerate(ids) if token == self.full_stop), default=0)
        key = tuple(ids[:end])
        if key not in self._stated:
            self._stated[key] = stated_kinds(self.tokenizer.decode(list(key), skip_special_tokens=True)) if key else frozenset()
        return self._stated[key]
