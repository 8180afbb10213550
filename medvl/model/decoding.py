"""Decoding settings: how a report is generated from the visual prefix."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from medvl.errors import ConfigError


@dataclass(frozen=True)
class DecodingConfig:
    """Greedy (``num_beams=1``) or beam search, with length and repetition controls.

    ``consensus_candidates`` > 1 asks beam search (at least that wide) for that many candidates
    per study and keeps the one that agrees most with the others (minimum Bayes risk with a BLEU
    utility, :mod:`medvl.model.consensus`).

    ``finding_check`` (models with a finding head) keeps, among the beam's candidates, those that
    state what the head sees and nothing the model cannot see, then the likeliest (or the
    consensus) of them; ``finding_bias`` > 0 adds that much to the log-probability of the words
    that name a finding the head sees, until the draft names it: :mod:`medvl.report.finding_check`.
    ``state_findings`` then edits the kept draft so that it states what the head sees and no
    finding it does not (the model's mined finding sentences, :mod:`medvl.report.finding_sentences`).
    ``report_bank`` (``"choose"`` or ``"consensus"``) keeps, of the checked candidates, the one
    closest to the training reports of the findings the head sees (:mod:`medvl.report.report_bank`).
    """

    num_beams: int = 3
    max_new_tokens: int = 120
    min_new_tokens: int = 0
    length_penalty: float = 1.0  # beam search: > 1 favours longer reports
    repetition_penalty: float = 1.0  # > 1 discourages tokens already generated
    no_repeat_ngram_size: int = 0  # forbid repeating any n-gram of this size (0: off)
    use_cache: bool = True  # reuse attention keys/values between steps (KV cache)
    consensus_candidates: int = 1  # > 1: keep the consensus of this many beam candidates (medvl.model.consensus)
    finding_check: bool = False  # keep a candidate that states what the finding head sees (medvl.report.finding_check)
    finding_bias: float = 0.0  # > 0: favour the words naming a finding the head sees, until the draft names it
    state_findings: bool = False  # edit the draft to state what the head sees (medvl.report.finding_sentences)
    report_bank: str = "off"  # "choose" / "consensus": choose against the training reports of the head's findings

    def __post_init__(self) -> None:
        for name in ("num_beams", "max_new_tokens", "consensus_candidates"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"decoding.{name}: expected a positive integer, got {getattr(self, name)!r}")
        for name in ("min_new_tokens", "no_repeat_ngram_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ConfigError(f"decoding.{name}: expected an integer >= 0, got {getattr(self, name)!r}")
        if not isinstance(self.finding_check, bool):
            raise ConfigError(f"decoding.finding_check: expected true or false, got {self.finding_check!r}")
        if not isinstance(self.state_findings, bool):
            raise ConfigError(f"decoding.state_findings: expected true or false, got {self.state_findings!r}")
        if self.report_bank not in ("off", "choose", "consensus"):
            raise ConfigError(f"decoding.report_bank: expected off, choose or consensus, got {self.report_bank!r}")
        if not isinstance(self.finding_bias, (int, float)) or self.finding_bias < 0:
            raise ConfigError(f"decoding.finding_bias: expected a number >= 0, got {self.finding_bias!r}")
        if self.repetition_penalty <= 0 or self.length_penalty <= 0:
            raise ConfigError("decoding: repetition_penalty and length_penalty must be positive")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> DecodingConfig:
        """Build from a mapping; unknown keys raise :class:`ConfigError`."""
        values = dict(values or {})
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"decoding: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return asdict(self)

    def updated(self, **changes: Any) -> DecodingConfig:
        """A copy with the given fields changed (``None`` values are ignored)."""
        return replace(self, **{key: value for key, value in changes.items() if value is not None})

    @property
    def beam_width(self) -> int:
        """The beams searched: ``num_beams``, at least ``consensus_candidates``."""
        return max(self.num_beams, self.consensus_candidates)

    @property
    def n_candidates(self) -> int:
        """Candidates returned per study: every beam with ``finding_check`` or ``report_bank``, else
        ``consensus_candidates``."""
        return self.beam_width if self.finding_check or self.report_bank != "off" else self.consensus_candidates

    def generate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``transformers`` ``generate``."""
        return {
            "do_sample": False,
            "num_beams": self.beam_width,
            "num_return_sequences": self.n_candidates,
            "max_new_tokens": self.max_new_tokens,
            "min_new_tokens": self.min_new_tokens,
            "length_penalty": self.length_penalty,
            "repetition_penalty": self.repetition_penalty,
            "no_repeat_ngram_size": self.no_repeat_ngram_size,
            "use_cache": self.use_cache,
            "early_stopping": self.beam_width > 1,
        }
