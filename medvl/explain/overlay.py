"""Overlays: a map drawn over its image, as RGB arrays and PNG files.

Images are shown with a window (center, width) when one is given (CT presets, the DICOM header)
or scaled between their 1st and 99th percentiles (radiographs); the map is scaled to its
maximum, coloured with a matplotlib colour map, and blended with an opacity that grows with the
map's value, so that low attention leaves the image visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw

from medvl.files import atomic_path
from medvl.io.study import Study
from medvl.report.draft import Draft


def display_image(image: np.ndarray, window: tuple[float, float] | None = None) -> np.ndarray:
    """``image`` scaled to [0, 1] for display: by ``window`` (center, width) or percentiles."""
    image = np.asarray(image, dtype=np.float32)
    if window is not None:
        low, high = window[0] - window[1] / 2, window[0] + window[1] / 2
    else:
        low, high = np.percentile(image, (1, 99))
    return np.clip((image - low) / max(high - low, 1e-6), 0, 1)


def overlay_rgb(
    image: np.ndarray,
    heat: np.ndarray,
    alpha: float = 0.6,
    colormap: str = "inferno",
    window: tuple[float, float] | None = None,
) -> np.ndarray:
    """``(H, W, 3)`` uint8: the 2D ``image`` with ``heat`` (same shape) blended over it."""
    grey = display_image(image, window)
    heat = np.asarray(heat, dtype=np.float32)
    heat = heat / heat.max() if heat.max() > 0 else heat
    colour = colormaps[colormap](heat)[..., :3]
    weight = alpha * heat[..., None]
    rgb = (1 - weight) * grey[..., None] + weight * colour
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)


def peak_slice(heat: np.ndarray) -> int:
    """The slice (last axis) of a volume map holding its maximum."""
    return int(np.unravel_index(int(np.argmax(heat)), heat.shape)[-1])


def overlay_panel(
    images: Sequence[np.ndarray],
    heats: Sequence[np.ndarray],
    captions: Sequence[str],
    alpha: float = 0.6,
    windows: Sequence[tuple[float, float] | None] | None = None,
    tile: int = 256,
) -> Image.Image:
    """One row per caption, one column per view: overlays side by side under their caption.

    ``images[v]`` is a 2D view or a volume (the slice where that row's map peaks is shown);
    ``heats[row][v]`` is the map of row ``row`` on view ``v``.
    """
    windows = list(windows) if windows is not None else [None] * len(images)
    caption_height = 18
    panel = Image.new("RGB", (tile * len(images), (tile + caption_height) * len(captions)), "black")
    draw = ImageDraw.Draw(panel)
    for row, caption in enumerate(captions):
        top = row * (tile + caption_height)
        draw.text((4, top + 3), caption[: tile * len(images) // 6], fill="white")
        for column, image in enumerate(images):
            heat = np.asarray(heats[row][column])
            if heat.ndim == 3:
                index = peak_slice(heat)
                image, heat = np.asarray(image)[..., index], heat[..., index]
            rgb = overlay_rgb(np.asarray(image), heat, alpha=alpha, window=windows[column])
            tile_image = Image.fromarray(rgb).resize((tile, tile), Image.Resampling.BILINEAR)
            panel.paste(tile_image, (column * tile, top + caption_height))
    return panel


def save_png(image: Image.Image, path: str | Path) -> Path:
    """Write ``image`` as PNG atomically."""
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return Path(path)


def draft_overlay(draft: Draft, study: Study, method: str = "attention", alpha: float = 0.6) -> Image.Image:
    """A panel with one row per sentence of ``draft``: its ``method`` map over each view."""
    if method not in draft.maps:
        raise ValueError(f"the draft has no {method!r} maps (draft with explain=True)")
    views = study.ordered_views()[: len(draft.views)]  # the views the model read
    images = [view.image[0].numpy() for view in views]
    captions = [f"{sentence.section}: {sentence.text}" for sentence in draft.sentences]
    heats = draft.maps[method]
    if not captions:  # an empty draft: show the views without a map
        captions, heats = ["(the draft has no sentence)"], [[np.zeros_like(image) for image in images]]
    return overlay_panel(
        images,
        heats,
        captions,
        alpha=alpha,
        windows=[view.info.window for view in views],
    )
