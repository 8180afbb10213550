"""Occlusion sensitivity: how much a sentence's probability drops when part of a view is hidden.

A third opinion that needs no access to the model's insides, but one forward pass per patch
position and view (all sentences at once): an option for small images, never a default. Each
view in turn is occluded by :class:`monai.visualize.OcclusionSensitivity` (Gaussian-weighted
patches of ``mask_size`` pixels on the model's input grid, ``overlap`` between neighbours) while
the other views stay as they are. A pixel's value is how much the sentence's log probability
(teacher-forced on the draft, as for Grad-CAM) falls when the patches over it are hidden, kept
where it falls. Maps sum to 1 per sentence over the views and are returned on the views'
original pixels, like attention and Grad-CAM maps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.visualize import OcclusionSensitivity
from torch import nn

from medvl.explain.gradcam import SentenceLogProbs, Span, as_shares, sentence_spans, view_maps
from medvl.model.modeling import MedVLModel
from medvl.report.draft import DraftSentence


class OneViewScores(nn.Module):
    """Copies of one view ``(batch, 1, *size)`` -> sentence scores, the study's other views fixed."""

    def __init__(self, scores: SentenceLogProbs, images: torch.Tensor, view: int) -> None:
        super().__init__()
        self.scores = scores
        self.images = images
        self.view = view
        self.train(scores.training)  # MONAI puts a wrapper back in its own mode afterwards, and the model with it

    def forward(self, view_images: torch.Tensor) -> torch.Tensor:
        images = self.images.repeat(view_images.shape[0], *[1] * (self.images.dim() - 1))
        images[:, self.view] = view_images
        return self.scores(images)


@torch.no_grad()
def sentence_occlusion(
    model: MedVLModel,
    images: torch.Tensor,
    view_mask: torch.Tensor,
    ids: Sequence[int],
    spans: Sequence[Span],
    mask_size: int = 16,
    overlap: float = 0.5,
    n_batch: int = 16,
) -> torch.Tensor:
    """``(sentences, views, *image size)``: each sentence's occlusion map, summing to 1 over its views.

    ``images`` ``(1, views, 1, *size)`` and ``view_mask`` ``(views,)`` are one study's model
    input; ``ids`` its draft's token ids, ``spans`` its sentences' token spans. ``n_batch``
    occluded copies go through the model at once.
    """
    scores = SentenceLogProbs(model, view_mask, ids, spans)
    baseline = scores(images)[0]  # (sentences,)
    spatial_dims = images.dim() - 3
    maps = torch.zeros(len(spans), images.shape[1], *images.shape[3:], device=images.device)
    for view in torch.nonzero(view_mask).flatten().tolist():
        occlusion = OcclusionSensitivity(
            OneViewScores(scores, images, view),
            mask_size=mask_size,
            n_batch=n_batch,
            overlap=overlap,
            activate=False,
            verbose=False,
        )
        occluded, _ = occlusion(images[:, view])  # (1, sentences, *size): the scores with each patch hidden
        maps[:, view] = (baseline.view(-1, *[1] * spatial_dims) - occluded[0]).clamp_min(0)
    return as_shares(maps)


def occlusion_maps(
    model: MedVLModel,
    sample: Mapping[str, Any],
    draft_ids: Sequence[int],
    sentences: Sequence[DraftSentence],
    mask_size: int = 16,
    overlap: float = 0.5,
    n_batch: int = 16,
) -> list[list[np.ndarray]]:
    """Per sentence, per view: the occlusion map on the view's original pixels (as ``draft.maps``).

    Arguments as for :func:`medvl.explain.gradcam.gradcam_maps`, plus the patch ``mask_size``
    (pixels of the model's input grid), ``overlap`` and ``n_batch`` of :func:`sentence_occlusion`.
    """
    if not sentences:
        return []
    images = sample["image"][None].to(model.device)
    maps = sentence_occlusion(
        model,
        images,
        sample["view_mask"].to(model.device),
        draft_ids,
        sentence_spans(sentences),
        mask_size=mask_size,
        overlap=overlap,
        n_batch=n_batch,
    )
    return [view_maps(sentence_map, model, sample) for sentence_map in maps]
