"""Grad-CAM: where in the encoder's feature map a sentence's probability comes from.

A second opinion next to attention (:mod:`medvl.explain.attention`). A sentence's score is its
log probability under the model, teacher-forced on the draft: the sum of the log probabilities
of the sentence's tokens, each given the images and the tokens before it. Its gradient is taken
on the output of the encoder's last stage (the feature map, before any pooling to the token
grid), through the hooks of :mod:`monai.visualize`, and turned into a map in one of two ways:

* ``"hirescam"`` (the default; Draelos and Carin, 2020): each cell's channels are weighed by
  that cell's own gradient, summed, and the positive part kept;
* ``"classic"`` (Selvaraju et al., 2017: :class:`monai.visualize.GradCAM`): each channel is
  weighed by its gradient averaged over the view's cells.

Classic Grad-CAM suits a classifier that pools its feature map: where a cell is does not change
how it counts. Here every cell becomes a visual token with its own position, so where the
gradient falls matters, and averaging it away leaves maps that light up wherever a feature is
active. On validation phantoms (seed 555, 24 named findings of the localised kinds, default
model) the peak of classic Grad-CAM fell on the lesion the sentence names for 25% of them (42%
within 15 px), that of HiResCAM for 38% (71%).

As for attention, each sentence's map is scaled to sum to 1 over its views' cells, then
resampled onto each view's original pixels (a map per slice for volumes). All the sentences of
a draft are explained in one forward and one backward pass: the images are repeated once per
sentence and copy ``i`` is scored on sentence ``i``.

The model is left as it was: MONAI registers hooks it never removes (it drops their handles), so
they are put on a throwaway :class:`FeatureTap` that stands in for the encoder's last stage for
the duration of the call, and parameters are frozen so that no gradient is left on them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.visualize import GradCAM
from monai.visualize.class_activation_maps import ModelWithHooks
from torch import nn

from medvl.errors import ConfigError
from medvl.explain.attention import to_view_grids
from medvl.model.modeling import MedVLModel
from medvl.report.draft import DraftSentence

Span = tuple[int, int]  # a sentence's generated tokens, [start, end)


class SentenceLogProbs(nn.Module):
    """``images`` ``(batch, views, 1, *size)`` -> ``(batch, sentences)`` log probabilities.

    The draft's token ``ids`` are teacher-forced after each image's visual prefix; the score of
    the sentence spanning ``ids[start:end]`` is the sum of those tokens' log probabilities.
    """

    def __init__(self, model: MedVLModel, view_mask: torch.Tensor, ids: Sequence[int], spans: Sequence[Span]) -> None:
        super().__init__()
        self.model = model
        self.view_mask = view_mask
        self.input_ids = torch.tensor([model.config.text_config.bos_token_id, *ids], device=view_mask.device)
        self.spans = list(spans)
        self.train(model.training)  # MONAI puts a wrapper back in its own mode afterwards, and the model with it

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        batch = images.shape[0]
        input_ids = self.input_ids.expand(batch, -1)
        logits = self.model(images, self.view_mask.expand(batch, -1), input_ids).logits.float()
        # the logits at position j (BOS at 0) predict ids[j]
        log_probs = logits[:, :-1].log_softmax(dim=-1).gather(-1, input_ids[:, 1:, None])[..., 0]
        return torch.stack([log_probs[:, start:end].sum(dim=1) for start, end in self.spans], dim=1)


class FeatureTap(nn.Module):
    """Stands in for the encoder's last stage while a draft is explained.

    MONAI's hooks go on this throwaway module instead of the model. Its output is made the root
    of the gradient graph, so only the way from the feature map to the scores is differentiated.
    """

    def __init__(self, stage: nn.Module) -> None:
        super().__init__()
        self.stage = stage

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stage(x).detach().requires_grad_()


@contextmanager
def tapped_feature_stage(model: MedVLModel) -> Iterator[str]:
    """Put a :class:`FeatureTap` in place of the encoder's last stage; yields its module name."""
    stages = model.encoder.stages
    last = len(stages) - 1
    original = stages[last]
    stages[last] = FeatureTap(original)
    try:
        yield f"encoder.stages.{last}"
    finally:
        stages[last] = original


@contextmanager
def frozen(model: nn.Module) -> Iterator[None]:
    """Parameters that need no gradient (so none is computed, nor left behind)."""
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    model.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in trainable:
            parameter.requires_grad_(True)


class _SentencePerCopy(ModelWithHooks):
    """MONAI's hooked model, explaining sentence ``i`` on copy ``i`` of the images."""

    def class_score(self, logits: torch.Tensor, class_idx: int) -> torch.Tensor:
        return logits.diagonal()


class HiResCAM(GradCAM):
    """Grad-CAM with each cell's channels weighed by that cell's own gradient (HiResCAM)."""

    def compute_map(self, x, class_idx=None, retain_graph=False, layer_idx=-1, **kwargs):  # type: ignore[override]
        _, activations, gradients = self.nn_module(x, class_idx=class_idx, retain_graph=retain_graph, **kwargs)
        return F.relu((activations[layer_idx] * gradients[layer_idx]).sum(1, keepdim=True))


CAM_VARIANTS: dict[str, type[GradCAM]] = {"hirescam": HiResCAM, "classic": GradCAM}


def sentence_spans(sentences: Sequence[DraftSentence]) -> list[Span]:
    """The generated-token span of each sentence."""
    return [(sentence.token_start, sentence.token_end) for sentence in sentences]


def as_shares(maps: torch.Tensor) -> torch.Tensor:
    """``maps`` ``(sentences, ...)`` scaled so that each sentence's map sums to 1 (zeros stay zeros)."""
    totals = maps.flatten(1).sum(dim=1).clamp_min(1e-12)
    return maps / totals.view(-1, *[1] * (maps.dim() - 1))


def sentence_gradcam(
    model: MedVLModel,
    images: torch.Tensor,
    view_mask: torch.Tensor,
    ids: Sequence[int],
    spans: Sequence[Span],
    variant: str = "hirescam",
) -> torch.Tensor:
    """``(sentences, views, *feature grid)``: each sentence's Grad-CAM, summing to 1 over its views.

    ``images`` ``(1, views, 1, *size)`` and ``view_mask`` ``(views,)`` are one study's model
    input; ``ids`` its draft's token ids, ``spans`` its sentences' token spans; ``variant`` a
    key of :data:`CAM_VARIANTS`.
    """
    if variant not in CAM_VARIANTS:
        raise ConfigError(f"unknown Grad-CAM variant {variant!r}; known: {', '.join(CAM_VARIANTS)}")
    copies = images.expand(len(spans), *images.shape[1:])
    with tapped_feature_stage(model) as layer, frozen(model), torch.enable_grad(), warnings.catch_warnings():
        # nothing before the tap needs a gradient, so its hook fires on its output: all Grad-CAM needs
        warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed")
        scores = SentenceLogProbs(model, view_mask, ids, spans)
        hooked = _SentencePerCopy(scores, f"model.{layer}", register_forward=True, register_backward=True)
        cam = CAM_VARIANTS[variant](hooked, target_layers=f"model.{layer}")
        maps = cam.compute_map(copies)  # (sentences * views, 1, *grid)
    maps = maps.detach().float().reshape(len(spans), images.shape[1], *maps.shape[2:])
    return as_shares(maps)


def view_maps(grid_map: torch.Tensor, model: MedVLModel, sample: Mapping[str, Any]) -> list[np.ndarray]:
    """A ``(views, *grid)`` map on each view of ``sample`` that the model read, at its original pixels."""
    grids = to_view_grids(
        grid_map.cpu(), model.config.transform_config.image_size, sample["geometry"], sample["original_size"]
    )
    return [grid.numpy() for grid in grids]


def gradcam_maps(
    model: MedVLModel,
    sample: Mapping[str, Any],
    draft_ids: Sequence[int],
    sentences: Sequence[DraftSentence],
    variant: str = "hirescam",
) -> list[list[np.ndarray]]:
    """Per sentence, per view: the Grad-CAM map on the view's original pixels (as ``draft.maps``).

    ``sample`` is the study's prepared sample (:meth:`medvl.report.drafting.Drafter.prepare`),
    ``draft_ids`` the generated token ids, ``sentences`` the draft's sentences and ``variant``
    a key of :data:`CAM_VARIANTS`.
    """
    if not sentences:
        return []
    images = sample["image"][None].to(model.device)
    maps = sentence_gradcam(
        model, images, sample["view_mask"].to(model.device), draft_ids, sentence_spans(sentences), variant
    )
    return [view_maps(sentence_map, model, sample) for sentence_map in maps]
