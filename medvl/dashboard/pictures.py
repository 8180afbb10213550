"""What the dashboard draws: one view (one slice of a volume), windowed, with a map over it.

Windows come from :data:`medvl.data.transforms.WINDOW_PRESETS` (CT, in HU) or the view's own
DICOM header; ``"auto"`` scales between the 1st and 99th percentiles. Overlays are drawn by
:func:`medvl.explain.overlay.overlay_rgb`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medvl.data.transforms import HEADER_WINDOW, WINDOW_PRESETS
from medvl.explain.overlay import overlay_rgb, peak_slice
from medvl.io.study import View

AUTO_WINDOW = "auto"


def window_choices(views: Sequence[View]) -> list[str]:
    """The windows a reader can pick: auto, the header's (where a view has one), CT presets for volumes."""
    choices = [AUTO_WINDOW]
    if any(view.info.window is not None for view in views):
        choices.append(HEADER_WINDOW)
    if any(view.info.spatial_dims == 3 for view in views):
        choices += list(WINDOW_PRESETS)
    return choices


def window_for(view: View, choice: str) -> tuple[float, float] | None:
    """(center, width) of window ``choice`` for ``view``; ``None`` means percentile scaling."""
    if choice == HEADER_WINDOW:
        return view.info.window
    return WINDOW_PRESETS.get(choice)


def slice_count(view: View) -> int:
    """Slices of a volume (the last array axis); 1 for a 2D view."""
    return int(view.info.size[-1]) if view.info.spatial_dims == 3 else 1


def default_slice(view: View, heat: np.ndarray | None) -> int:
    """The slice to show first: where the map peaks, else the middle one."""
    return peak_slice(heat) if heat is not None else slice_count(view) // 2


def view_picture(
    view: View,
    heat: np.ndarray | None = None,
    window: tuple[float, float] | None = None,
    alpha: float = 0.6,
    slice_index: int | None = None,
) -> np.ndarray:
    """``(rows, columns, 3)`` uint8: the view (slice ``slice_index`` of a volume) with ``heat`` over it.

    On a volume the map's opacity follows its value relative to the peak of the whole volume,
    so a slice far from the peak is not painted as strongly as the peak's.
    """
    image = np.asarray(view.image[0], dtype=np.float32)
    heat = np.zeros_like(image) if heat is None else np.asarray(heat, dtype=np.float32)
    if image.ndim == 3:
        index = slice_count(view) // 2 if slice_index is None else slice_index
        volume_peak = float(heat.max())
        image, heat = image[..., index], heat[..., index]
        alpha = alpha * float(heat.max()) / volume_peak if volume_peak > 0 else alpha
    return overlay_rgb(image, heat, alpha=alpha, window=window)
