"""Consensus (minimum Bayes risk) choice among candidate reports.

Beam search returns the likeliest token sequence; a report model trained on several
radiologists' phrasings can rank one radiologist's rare wording first. Minimum Bayes risk
decoding keeps instead the candidate that agrees most with the others: the one with the highest
mean BLEU-4 (add-one smoothed, with brevity penalty, on token ids) against every other candidate
of the same study, so the draft uses the wording most candidates share.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence

import torch

BLEU_ORDER = 4


def _ngrams(tokens: Sequence[Hashable], order: int) -> Counter[tuple[Hashable, ...]]:
    return Counter(tuple(tokens[i : i + order]) for i in range(len(tokens) - order + 1))


def ngram_counts(tokens: Sequence[Hashable]) -> list[Counter[tuple[Hashable, ...]]]:
    """The 1- to 4-gram counts of a token sequence (what :func:`counted_bleu` compares)."""
    return [_ngrams(tokens, order) for order in range(1, BLEU_ORDER + 1)]


def counted_bleu(
    hypothesis: Sequence[Counter[tuple[Hashable, ...]]],
    hypothesis_length: int,
    reference: Sequence[Counter[tuple[Hashable, ...]]],
    reference_length: int,
) -> float:
    """:func:`sentence_bleu` from :func:`ngram_counts` and lengths, computed once per text."""
    if not hypothesis_length:
        return 0.0
    log_precision = 0.0
    for found, wanted in zip(hypothesis, reference):
        matched = sum(min(count, wanted[gram]) for gram, count in found.items())
        log_precision += math.log((matched + 1) / (sum(found.values()) + 1)) / BLEU_ORDER
    brevity = min(0.0, 1.0 - reference_length / hypothesis_length)
    return math.exp(log_precision + brevity)


def sentence_bleu(hypothesis: Sequence[Hashable], reference: Sequence[Hashable]) -> float:
    """BLEU-4 of one token (or word) sequence against one reference, add-one smoothed, with brevity penalty."""
    return counted_bleu(ngram_counts(hypothesis), len(hypothesis), ngram_counts(reference), len(reference))


def consensus_index(candidates: Sequence[Sequence[int]]) -> int:
    """The index of the candidate with the highest mean BLEU against the others (the first among equals)."""
    if len(candidates) < 2:
        return 0
    support = [
        sum(sentence_bleu(candidate, other) for j, other in enumerate(candidates) if j != i)
        for i, candidate in enumerate(candidates)
    ]
    return max(range(len(candidates)), key=lambda i: (support[i], -i))


def choose_consensus(ids: torch.Tensor, n_candidates: int, eos_token_id: int, pad_token_id: int) -> torch.Tensor:
    """From ``(batch * n_candidates, length)`` generated ids, each study's consensus row ``(batch, length)``.

    Rows are grouped per study as ``generate(num_return_sequences=n_candidates)`` returns them;
    each candidate is compared up to its first EOS.
    """
    if ids.shape[0] % n_candidates:
        raise ValueError(f"{ids.shape[0]} rows are not a whole number of groups of {n_candidates} candidates")
    rows = ids.tolist()
    chosen = []
    for start in range(0, len(rows), n_candidates):
        group = rows[start : start + n_candidates]
        texts = [row[: row.index(eos_token_id)] if eos_token_id in row else row for row in group]
        texts = [[token for token in text if token != pad_token_id] for text in texts]
        chosen.append(start + consensus_index(texts))
    return ids[chosen]
