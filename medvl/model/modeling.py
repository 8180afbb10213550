"""`MedVLModel`: MONAI encoder -> projector -> visual tokens -> causal language model.

LLaVA-style prefix fusion. Each view's feature map is flattened into one token per grid cell,
projected into the language model's embedding space, and given a learned position (grid cell)
and view embedding (the cell embedding starts from fixed sines of the cell's coordinates).
The tokens of all views form a prefix; the report follows it:

    [view 0 tokens][view 1 tokens][finding prompt tokens][BOS] t1 t2 ... tn [EOS]

The finding prompt (``config.finding_prompt``, one token per finding label, "shown" or "not
shown") is there only for models with one; see :meth:`MedVLModel.prefix`.

A missing view (a study with only a frontal radiograph) is replaced by a learned "missing view"
embedding, so every prefix has the same length and nothing needs masking. The loss is the usual
next-token cross-entropy on the report tokens only.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModelForCausalLM, LogitsProcessor, LogitsProcessorList, PreTrainedModel
from transformers.utils import ModelOutput

from medvl.errors import ConfigError
from medvl.model.config import MedVLConfig
from medvl.model.consensus import choose_consensus
from medvl.model.decoding import DecodingConfig
from medvl.model.encoder import VisualEncoder

IGNORE_INDEX = -100  # label value the loss skips (transformers' convention)


@dataclass
class MedVLOutput(ModelOutput):
    """``loss`` (when labels were given: ``text_loss`` plus the weighted ``finding_loss``),
    ``logits`` over the report positions, the language model's ``attentions`` over the whole
    sequence (prefix included) on request, and the auxiliary head's ``finding_logits``."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    n_visual_tokens: int | None = None
    n_prefix_tokens: int | None = None  # visual tokens plus finding prompt tokens: the report starts after them
    text_loss: torch.Tensor | None = None
    finding_loss: torch.Tensor | None = None
    finding_logits: torch.Tensor | None = None


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of each position's logits against the next position's label
    (``IGNORE_INDEX`` skipped), in float32: the loss transformers' causal LMs compute."""
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE_INDEX)


def grid_position_embedding(grid_shape: tuple[int, ...], width: int) -> torch.Tensor:
    """Fixed sine-cosine embedding of each grid cell's coordinates, ``(cells, width)`` (as in MAE).

    Used to initialise the (learned) cell embedding. A CNN feature says *what* is in a cell, not
    *where* the cell is; left and right lungs look alike, so the side of a finding must come from
    the position. Unit-scale sines make the position as loud as the content from the first step,
    where a small random initialisation left side errors as the commonest mistake.
    """
    per_axis = (width // len(grid_shape)) // 2 * 2
    frequencies = 1.0 / (100.0 ** (torch.arange(per_axis // 2, dtype=torch.float32) / max(per_axis // 2, 1)))
    axes = torch.meshgrid(*(torch.arange(size, dtype=torch.float32) for size in grid_shape), indexing="ij")
    parts = []
    for coordinate in axes:
        angles = coordinate.reshape(-1, 1) * frequencies
        parts += [torch.sin(angles), torch.cos(angles)]
    embedding = torch.cat(parts, dim=1)
    return F.pad(embedding, (0, width - embedding.shape[1]))


class VisualProjector(nn.Module):
    """Two-layer MLP from encoder channels to the language model's width (as in LLaVA 1.5)."""

    def __init__(self, in_features: int, hidden: int, out_features: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(in_features, hidden), nn.GELU(), nn.Linear(hidden, out_features))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


class MedVLModel(PreTrainedModel):
    """Draft reports from images. ``images``: ``(batch, views, channels, *spatial)``."""

    config_class = MedVLConfig
    base_model_prefix = "medvl"
    main_input_name = "images"
    _supports_sdpa = True
    _supports_attention_backend = True

    def __init__(self, config: MedVLConfig, language_model: PreTrainedModel | None = None) -> None:
        super().__init__(config)
        self.encoder = VisualEncoder(config.encoder_config)
        self.grid_shape = self.encoder.grid_shape(config.transform_config.image_size)
        width = config.text_config.hidden_size
        self.projector = VisualProjector(self.encoder.out_channels, config.projector_hidden or width, width)
        self.cell_embedding = nn.Parameter(grid_position_embedding(self.grid_shape, width))
        self.view_embedding = nn.Parameter(torch.randn(config.max_views, width) * 0.02)
        self.missing_view_embedding = nn.Parameter(torch.zeros(width))
        self.finding_head = nn.Linear(width, len(config.finding_labels)) if config.finding_labels else None
        self.finding_feedback = nn.Linear(len(config.finding_labels), width) if config.finding_feedback else None
        # one embedding per finding label and state (0: not shown, 1: shown), at the scale of word embeddings
        self.finding_prompt = (
            nn.Parameter(torch.randn(len(config.finding_labels), 2, width) * 0.02) if config.finding_prompt else None
        )
        self.language_model = language_model or AutoModelForCausalLM.from_config(config.text_config)
        # Score only the report's positions: the LM head over the visual prefix is wasted work.
        self._text_logits_only = "logits_to_keep" in inspect.signature(self.language_model.forward).parameters
        self.frozen_parts: list[str] = []  # kept in evaluation mode (see medvl.model.adapters.freeze)
        self._check_sequence_fits()
        self.post_init()

    def _check_sequence_fits(self) -> None:
        """Refuse a config whose prefix plus report is longer than the LM's position table."""
        positions = getattr(self.config.text_config, "max_position_embeddings", None)
        needed = self.n_prefix_tokens + int(self.config.text["max_length"]) + 2  # BOS and EOS
        if positions is not None and positions < needed:
            prompt = f" + {self.n_prompt_tokens} finding prompt tokens" if self.n_prompt_tokens else ""
            raise ConfigError(
                f"the language model has {positions} positions but needs {needed}: {self.n_visual_tokens} visual "
                f"tokens (grid {'x'.join(map(str, self.grid_shape))} x {self.config.max_views} views){prompt} + "
                f"{self.config.text['max_length']} report tokens + 2; use a coarser encoder.token_grid or more positions"
            )

    def _init_weights(self, module: nn.Module) -> None:
        """Keep the initialisation each part was built with.

        The encoder keeps MONAI's (Kaiming for convolutions), the projector and finding head
        PyTorch's defaults, and the language model (a ``PreTrainedModel``) initialises itself.
        transformers' generic default would redraw every convolution and linear layer from
        N(0, 0.02), which starves the visual path: the visual tokens start ~20x too small and a
        small model then learns to write the commonest report whatever the image.
        """

    def train(self, mode: bool = True) -> MedVLModel:
        """Set training mode, except for frozen parts: their batch-norm statistics stay as trained."""
        super().train(mode)
        for part in self.frozen_parts:
            getattr(self, part).eval()
        return self

    @property
    def tokens_per_view(self) -> int:
        """Visual tokens per view (cells of the encoder's grid)."""
        return math.prod(self.grid_shape)

    @property
    def n_visual_tokens(self) -> int:
        """Length of the visual prefix."""
        return self.config.max_views * self.tokens_per_view

    @property
    def n_prompt_tokens(self) -> int:
        """Finding prompt tokens after the visual ones (one per finding label, or none)."""
        return 0 if self.finding_prompt is None else len(self.config.finding_labels)

    @property
    def n_prefix_tokens(self) -> int:
        """Length of the whole prefix the report follows: visual plus finding prompt tokens."""
        return self.n_visual_tokens + self.n_prompt_tokens

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def visual_tokens(self, images: torch.Tensor, view_mask: torch.Tensor) -> torch.Tensor:
        """``(batch, views * cells, width)`` prefix embeddings for ``images``."""
        return self.encode(images, view_mask)[0]

    def encode(self, images: torch.Tensor, view_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The visual prefix and, with a finding head, each token's finding logits
        ``(batch, views * cells, labels)`` (fed back into the prefix with ``finding_feedback``)."""
        tokens = self._image_tokens(images, view_mask)
        if self.finding_head is None:
            return tokens, None
        token_logits = self.finding_head(tokens)
        if self.finding_feedback is not None:
            tokens = tokens + self.finding_feedback(torch.sigmoid(token_logits))
        return tokens, token_logits

    def prefix(
        self, images: torch.Tensor, view_mask: torch.Tensor, finding_targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The whole prefix the report follows ``(batch, prefix tokens, width)`` and the token finding logits.

        With ``config.finding_prompt``, the visual tokens are followed by one token per finding label
        saying whether the study shows it: from ``finding_targets`` when given (training and
        validation loss: teacher forcing), otherwise from the finding head (its study probability
        above the label's ``config.finding_thresholds``, 0.5 by default).
        """
        visual, token_logits = self.encode(images, view_mask)
        if self.finding_prompt is None or token_logits is None:
            return visual, token_logits
        shown = finding_targets if finding_targets is not None else self.head_verdicts(token_logits)
        labels = torch.arange(self.n_prompt_tokens, device=visual.device)
        prompt = self.finding_prompt[labels[None, :], shown.to(device=visual.device, dtype=torch.long)]
        return torch.cat([visual, prompt.to(visual.dtype)], dim=1), token_logits

    @staticmethod
    def study_probabilities(token_logits: torch.Tensor) -> torch.Tensor:
        """``(batch, labels)``: the finding head's probability of each label for the study (its tokens' maximum)."""
        return torch.sigmoid(token_logits.amax(dim=1).float())

    def head_verdicts(self, token_logits: torch.Tensor) -> torch.Tensor:
        """``(batch, labels)`` booleans: the study probability is above the label's threshold."""
        probabilities = self.study_probabilities(token_logits)
        thresholds = self.config.finding_thresholds or [0.5] * probabilities.shape[-1]
        return probabilities > torch.tensor(thresholds, device=probabilities.device)

    def _image_tokens(self, images: torch.Tensor, view_mask: torch.Tensor) -> torch.Tensor:
        batch, views = images.shape[:2]
        features = self.encoder(images.flatten(0, 1))  # (batch * views, channels, *grid)
        tokens = self.projector(features.flatten(2).transpose(1, 2)) + self.cell_embedding
        tokens = tokens.view(batch, views, self.tokens_per_view, -1) + self.view_embedding[:views, None, :]
        present = view_mask.to(torch.bool)[:, :, None, None]
        tokens = torch.where(present, tokens, self.missing_view_embedding.to(tokens.dtype))
        return tokens.flatten(1, 2)

    def forward(
        self,
        images: torch.Tensor,
        view_mask: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool = False,
        finding_targets: torch.Tensor | None = None,
        token_targets: torch.Tensor | None = None,
        token_known: torch.Tensor | None = None,
    ) -> MedVLOutput:
        """Score ``input_ids`` (``[BOS] t1 ... tn [EOS] [PAD]...``) after the visual prefix.

        ``labels`` are aligned with ``input_ids`` (``IGNORE_INDEX`` where no loss is wanted);
        as in transformers, position ``i`` predicts label ``i + 1``.

        With a finding head, ``finding_targets`` ``(batch, n_labels)`` (0/1 per
        ``config.finding_labels``) and ``token_targets`` ``(batch, visual tokens, n_labels)``
        (which findings reach each token's grid cell; ``token_known``, of the same shape, says
        which of them each token is taught: see :func:`medvl.train.batching.token_targets`) add the
        auxiliary loss: binary cross-entropy of every token's labels, and of the study's labels
        against the maximum over its tokens.
        """
        visual, token_logits = self.prefix(images, view_mask, finding_targets)
        text = self.get_input_embeddings()(input_ids)
        batch, n_prefix = visual.shape[:2]
        prefix_mask = torch.ones(batch, n_prefix, dtype=torch.long, device=visual.device)
        text_mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
        text_length = input_ids.shape[1]
        output = self.language_model(
            inputs_embeds=torch.cat([visual, text.to(visual.dtype)], dim=1),
            attention_mask=torch.cat([prefix_mask, text_mask.to(torch.long)], dim=1),
            output_attentions=output_attentions,
            **({"logits_to_keep": text_length} if self._text_logits_only else {}),
        )
        logits = output.logits[:, -text_length:]
        text_loss = None if labels is None else causal_lm_loss(logits, labels)
        finding_logits, finding_loss = None, None
        if token_logits is not None:
            finding_logits = token_logits.amax(dim=1)
            if finding_targets is not None:
                finding_loss = self._finding_loss(token_logits, finding_logits, finding_targets, token_targets, token_known)
        loss = text_loss
        if loss is not None and finding_loss is not None:
            loss = loss + self.config.finding_loss_weight * finding_loss
        return MedVLOutput(
            loss=loss,
            logits=logits,
            attentions=output.attentions,
            n_visual_tokens=self.n_visual_tokens,
            n_prefix_tokens=n_prefix,
            text_loss=text_loss,
            finding_loss=finding_loss,
            finding_logits=finding_logits,
        )

    def _finding_loss(
        self,
        token_logits: torch.Tensor,
        finding_logits: torch.Tensor,
        finding_targets: torch.Tensor,
        token_targets: torch.Tensor | None,
        token_known: torch.Tensor | None,
    ) -> torch.Tensor:
        """Study-level BCE, plus token-level BCE of the labels each token is taught (``token_known``),
        summed over labels and averaged over the tokens taught any, weighted by
        ``config.finding_token_weight``; positive terms weighted by ``config.finding_pos_weight``."""
        n_labels = finding_logits.shape[-1]
        pos_weight = torch.tensor(self.config.finding_pos_weight, dtype=finding_logits.dtype, device=finding_logits.device)
        loss = n_labels * F.binary_cross_entropy_with_logits(
            finding_logits, finding_targets.to(finding_logits.dtype), pos_weight=pos_weight
        )
        if token_targets is not None and token_known is not None and bool(token_known.any()):
            known = token_known.to(token_logits.dtype)
            per_label = F.binary_cross_entropy_with_logits(
                token_logits, token_targets.to(token_logits.dtype), reduction="none", pos_weight=pos_weight
            )
            taught_tokens = token_known.any(dim=-1).sum()
            loss = loss + self.config.finding_token_weight * (per_label * known).sum() / taught_tokens
        return loss

    @torch.no_grad()
    def generate(self, images: torch.Tensor, view_mask: torch.Tensor, decoding: DecodingConfig | None = None) -> torch.Tensor:
        """Report token ids ``(batch, length)`` (no BOS; EOS then padding where a report ended).

        The likeliest candidate, or with ``consensus_candidates`` > 1 their consensus. The finding
        check needs the report text: :func:`medvl.report.generation.generate_ids` applies it.
        """
        decoding = decoding or self.config.decoding_config
        ids, _ = self.generate_candidates(images, view_mask, decoding)
        text_config = self.config.text_config
        groups = ids.view(images.shape[0], decoding.n_candidates, -1)
        if decoding.consensus_candidates == 1:
            return groups[:, 0]
        ids = groups[:, : decoding.consensus_candidates].flatten(0, 1)
        return choose_consensus(ids, decoding.consensus_candidates, text_config.eos_token_id, text_config.pad_token_id)

    @torch.no_grad()
    def generate_candidates(
        self,
        images: torch.Tensor,
        view_mask: torch.Tensor,
        decoding: DecodingConfig | None = None,
        guide: Callable[[torch.Tensor], LogitsProcessor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Every study's ``decoding.n_candidates`` candidate reports, likeliest first,
        ``(batch * n_candidates, length)``, and the finding head's verdicts ``(batch, labels)``
        (``None`` without a finding head).

        ``guide``, given the verdicts, returns a logits processor that steers the search (rows
        study by study, ``decoding.beam_width`` rows each): :class:`medvl.report.finding_check.FindingWordBias`.
        """
        decoding = decoding or self.config.decoding_config
        text_config = self.config.text_config
        visual, token_logits = self.prefix(images, view_mask)
        bos = torch.full((visual.shape[0], 1), text_config.bos_token_id, dtype=torch.long, device=visual.device)
        embeds = torch.cat([visual, self.get_input_embeddings()(bos).to(visual.dtype)], dim=1)
        positions = getattr(text_config, "max_position_embeddings", None)
        if positions is not None:  # never run past the language model's position table
            decoding = decoding.updated(max_new_tokens=min(decoding.max_new_tokens, positions - embeds.shape[1]))
        verdicts = None if token_logits is None else self.head_verdicts(token_logits)
        steering = {} if guide is None or verdicts is None else {"logits_processor": LogitsProcessorList([guide(verdicts)])}
        ids = self.language_model.generate(
            inputs_embeds=embeds,
            attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device),
            bos_token_id=text_config.bos_token_id,
            eos_token_id=text_config.eos_token_id,
            pad_token_id=text_config.pad_token_id,
            **decoding.generate_kwargs(),
            **steering,
        )
        return ids, verdicts
