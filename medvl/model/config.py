"""`MedVLConfig`: everything needed to rebuild a model, saved as ``config.json``.

It follows the transformers conventions: sub-configurations are accepted as dictionaries or
objects, bad values are rejected when the config is built, and unknown keyword arguments go
to ``PreTrainedConfig`` so ``save_pretrained`` / ``from_pretrained`` round-trip.
"""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, GPT2Config, PreTrainedConfig

from medvl.data.transforms import TransformConfig
from medvl.errors import ConfigError
from medvl.findings import HEAD_SIDES
from medvl.model.decoding import DecodingConfig
from medvl.model.encoder import EncoderConfig
from medvl.text import CleaningConfig, sections_to_target, split_sections

DEFAULT_TEXT_CONFIG = {"model_type": "gpt2", "n_layer": 3, "n_embd": 256, "n_head": 4, "n_positions": 512}


class MedVLConfig(PreTrainedConfig):
    """Encoder, projector, language model, preprocessing, text format and decoding defaults.

    Args:
        encoder: :class:`~medvl.model.encoder.EncoderConfig` fields (MONAI network and cut).
        text_config: the causal language model's config (a ``PreTrainedConfig`` or a mapping
            with ``model_type``, e.g. ``gpt2`` or ``llama``), built from scratch or taken from a
            local pretrained model.
        preprocessing: :class:`~medvl.data.transforms.TransformConfig` fields: how a study
            becomes a tensor (image size, views, intensity). Drafting uses exactly these.
        projector_hidden: hidden width of the two-layer projector (default: the LM's width).
        text: report format: ``cleaning`` (a :class:`medvl.text.CleaningConfig` mapping),
            ``sections`` (their order in the target) and ``max_length`` (target tokens).
        decoding: :class:`~medvl.model.decoding.DecodingConfig` defaults for drafting.
        model_name: a human-readable name written into every draft.
        finding_labels: class labels (:func:`medvl.findings.finding_label`) of an auxiliary
            multi-label head on the pooled visual tokens; empty for none. Training with it
            teaches the encoder the findings directly, which keeps a small model from
            writing the commonest report whatever the image.
        finding_sides: how that head learns sides. ``"token"``: one label per kind and side
            (``"atelectasis:bilateral"``), for each token its finding masks reach and for the
            study. ``"study"``: each token learns only what its cell shows (``"atelectasis"``);
            the sided labels (``"atelectasis:left"``, a bilateral finding counting on both sides)
            are learnt from the study's labels alone, through the maximum over the tokens, so
            the tokens that cannot tell a side (a lateral view, the vena cava segment that a
            left and a right central line share) learn to stay quiet instead of being told
            "left" in one study and "right" in the next. ``"cell"``: as ``"study"``, and a sided
            label of a token means "its cell shows the finding on that side": on a frontal
            radiograph the half the cell lies in (a right basal cell is "atelectasis:right" in a
            bilateral study as in a right-sided one), never on a lateral view, and for a device
            only where it enters the picture (:func:`medvl.findings.reached_token_labels`).
        finding_loss_weight: weight of that head's binary cross-entropy in the training loss.
        finding_pos_weight: weight of the positive terms of that cross-entropy (``pos_weight``):
            above 1, a rare small finding (a calcified granuloma is one visual token of 128)
            pulls on the encoder as hard as the many tokens without it.
        finding_token_weight: weight of the per-token term against the per-study term (the
            maximum over the tokens). The study term can be met by any one token - a lateral
            view's token of a line, which cannot show its side - while the token term teaches
            every cell a finding reaches: above 1, the cells that show a thin line or a small
            nodule on the frontal view count for more.
        finding_feedback: add each visual token's finding probabilities (the head's output,
            through a learned linear map) back into the token, so the language model reads
            "right pleural effusion here" directly instead of re-deriving it from features.
        finding_prompt: put one prompt token per finding label between the visual tokens and the
            report, saying whether the study shows that finding (as in PromptMRG's diagnosis
            prompts): the study's true labels while training (teacher forcing), the finding
            head's verdicts (probability above the label's threshold) when scoring without labels
            or drafting. A small decoder otherwise learns the finding head's evidence too weakly
            to outweigh the commonest normal sentences in beam search.
        finding_thresholds: per finding label, the head probability above which the prompt says
            "shown" (default 0.5 for every label); fitted on the validation split after training
            (:mod:`medvl.train.calibration`).
        finding_sentences: per finding label, the training sentence that states that finding,
            put into a draft that does not state what the head sees (``decoding.state_findings``,
            :mod:`medvl.report.finding_sentences`); mined when the model is calibrated.
    """

    model_type = "medvl"
    sub_configs = {"text_config": AutoConfig}

    def __init__(
        self,
        encoder: dict[str, Any] | None = None,
        text_config: dict[str, Any] | PreTrainedConfig | None = None,
        preprocessing: dict[str, Any] | None = None,
        projector_hidden: int | None = None,
        text: dict[str, Any] | None = None,
        decoding: dict[str, Any] | None = None,
        model_name: str = "medvl",
        finding_labels: list[str] | None = None,
        finding_sides: str = "token",
        finding_loss_weight: float = 1.0,
        finding_pos_weight: float = 1.0,
        finding_token_weight: float = 1.0,
        finding_feedback: bool = False,
        finding_prompt: bool = False,
        finding_thresholds: list[float] | None = None,
        finding_sentences: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.encoder = EncoderConfig.from_dict(encoder or {}).to_dict()
        self.preprocessing = TransformConfig.from_dict(preprocessing or {}).to_dict()
        if self.encoder["spatial_dims"] != self.preprocessing["spatial_dims"]:
            raise ConfigError(
                f"encoder.spatial_dims ({self.encoder['spatial_dims']}) differs from "
                f"preprocessing.spatial_dims ({self.preprocessing['spatial_dims']})"
            )
        if isinstance(text_config, dict):
            text_config = dict(text_config)
            model_type = text_config.pop("model_type", "gpt2")
            text_config = AutoConfig.for_model(model_type, **text_config)
        self.text_config = text_config if text_config is not None else GPT2Config(**_without_type(DEFAULT_TEXT_CONFIG))
        if projector_hidden is not None and projector_hidden < 1:
            raise ConfigError(f"projector_hidden: expected a positive integer, got {projector_hidden!r}")
        self.projector_hidden = projector_hidden
        self.text = {"cleaning": {"style": "basic"}, "sections": ["findings", "impression"], "max_length": 160, **(text or {})}
        self.decoding = DecodingConfig.from_dict(decoding).to_dict()
        self.model_name = model_name
        self.finding_labels = list(finding_labels or [])
        if finding_sides not in HEAD_SIDES:
            raise ConfigError(f"finding_sides: expected one of {', '.join(HEAD_SIDES)}, got {finding_sides!r}")
        self.finding_sides = finding_sides
        if finding_loss_weight < 0:
            raise ConfigError(f"finding_loss_weight: expected a number >= 0, got {finding_loss_weight!r}")
        self.finding_loss_weight = float(finding_loss_weight)
        if finding_pos_weight <= 0:
            raise ConfigError(f"finding_pos_weight: expected a positive number, got {finding_pos_weight!r}")
        self.finding_pos_weight = float(finding_pos_weight)
        if finding_token_weight < 0:
            raise ConfigError(f"finding_token_weight: expected a number >= 0, got {finding_token_weight!r}")
        self.finding_token_weight = float(finding_token_weight)
        if finding_feedback and not self.finding_labels:
            raise ConfigError("finding_feedback needs finding_labels (a finding head)")
        self.finding_feedback = bool(finding_feedback)
        if finding_prompt and not self.finding_labels:
            raise ConfigError("finding_prompt needs finding_labels (a finding head)")
        self.finding_prompt = bool(finding_prompt)
        if finding_thresholds is not None and (
            len(finding_thresholds) != len(self.finding_labels) or not all(0 < t < 1 for t in finding_thresholds)
        ):
            raise ConfigError(
                f"finding_thresholds: expected one number between 0 and 1 per finding label "
                f"({len(self.finding_labels)}), got {finding_thresholds!r}"
            )
        self.finding_thresholds = None if finding_thresholds is None else [float(t) for t in finding_thresholds]
        unknown = sorted(set(finding_sentences or {}) - set(self.finding_labels))
        if unknown:
            raise ConfigError(f"finding_sentences: {', '.join(unknown)} are not finding labels of this model")
        self.finding_sentences = dict(finding_sentences or {})
        super().__init__(**kwargs)

    @property
    def encoder_config(self) -> EncoderConfig:
        """The encoder settings as a dataclass."""
        return EncoderConfig.from_dict(self.encoder)

    @property
    def transform_config(self) -> TransformConfig:
        """The preprocessing settings as a dataclass."""
        return TransformConfig.from_dict(self.preprocessing)

    @property
    def decoding_config(self) -> DecodingConfig:
        """The default decoding settings as a dataclass."""
        return DecodingConfig.from_dict(self.decoding)

    @property
    def cleaning(self) -> CleaningConfig:
        """How report text is cleaned for this model."""
        return CleaningConfig.from_dict(self.text["cleaning"])

    def report_target(self, report: str) -> str:
        """The text the model learns to write for ``report``: its cleaned, tagged sections."""
        return sections_to_target(split_sections(report), self.text["sections"], self.cleaning)

    @property
    def max_views(self) -> int:
        """Views per study the model reads (frontal + lateral: 2; a volume: 1)."""
        return int(self.preprocessing["max_views"])


def _without_type(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if key != "model_type"}
