"""MONAI dictionary transforms that turn a manifest row into model-ready tensors.

One pipeline serves 2D radiographs and 3D volumes (``spatial_dims``). It runs in two parts:

* deterministic, cacheable (:func:`deterministic_transforms`): :class:`LoadStudyd` reads the
  study and orders its views frontal / lateral / other into slots ``view0``, ``view1``, ...
  (with ``view{v}_masks`` when the row has lesion masks); :class:`ScaleViewIntensityd` maps
  intensities to [0, 1] (a CT window, or percentiles); optionally ``Spacingd`` resamples volumes
  to ``target_spacing``; :class:`FitAndPadd` scales each view, keeping its aspect ratio, until it
  fits ``image_size`` and pads the rest with zeros; :class:`RecordGeometryd` stores how to map
  the result back to the original pixels;
* per epoch (:func:`per_epoch_transforms`): small random affine and intensity changes when
  training (never a flip: laterality is a finding), then :class:`StackViewsd` builds the sample.

A sample holds ``image`` ``(max_views, 1, *image_size)`` float32, ``view_mask``
``(max_views,)`` bool, ``view_roles``, ``view_info``, ``original_size`` ``(max_views, D)``,
``geometry`` ``(max_views, D+1, D+1)`` and, when the row has masks, ``masks``
``(max_views, n_findings, *image_size)`` bool. Masks go through every spatial transform with the
same parameters (and the same random draw) as their view, resampled with nearest neighbour.

Geometry: ``geometry[v]`` is the homogeneous matrix taking a voxel index of the transformed view
to a voxel index of the view as :func:`medvl.io.load_study` returned it (pixel centres at
integers). :func:`to_original_index` applies it to points and :func:`restore_original_grid`
resamples a map (an attention map, a mask) back onto the original pixel grid. It is derived from
the affines MONAI keeps up to date through resampling, resizing and padding, so it stays exact
whichever of them ran; random augmentation (training only) is not part of it.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import zipfile
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.data.utils import to_affine_nd
from monai.transforms import (
    Compose,
    MapTransform,
    RandAdjustContrastd,
    RandAffined,
    RandGaussianNoised,
    RandScaleIntensityFixedMeand,
    Resize,
    ScaleIntensityRange,
    ScaleIntensityRangePercentiles,
    Spacingd,
    SpatialPad,
    SpatialResample,
    Transform,
)
from monai.utils import convert_to_tensor, ensure_tuple

from medvl.errors import ConfigError, InvalidImageError, ManifestError, MedVLError
from medvl.io import load_study
from medvl.io.study import Study, View, role_rank

# Center and width in Hounsfield units of the usual CT display windows.
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (40.0, 400.0),
    "abdomen": (40.0, 350.0),
    "liver": (30.0, 150.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
    "subdural": (75.0, 215.0),
}
HEADER_WINDOW = "header"  # use the view's own DICOM window (VOI LUT) where it has one
INTENSITY_MODES = ("auto", "percentile", "window")
MISSING_ROLE = "missing"
LINEAR_MODE = {2: "bilinear", 3: "trilinear"}
# Masks are resized by area (each output pixel: the share of it the lesion covers) and any
# coverage counts (see StackViewsd), so that a lesion of one pixel never vanishes on the way down:
# a lost mask would teach the finding head that a finding it is told about is nowhere.
MASK_MODE = "area"
MASK_COVERAGE = 0.01  # a pixel belongs to a lesion when the lesion covers more than this share of it
MASK_ARRAY_NAME = re.compile(r"view(\d+)_finding(\d+)")


def view_key(slot: int) -> str:
    """Dictionary key of the view in ``slot`` between loading and stacking."""
    return f"view{slot}"


def view_masks_key(slot: int) -> str:
    """Dictionary key of the lesion masks of the view in ``slot``."""
    return f"view{slot}_masks"


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class AugmentConfig:
    """Random changes applied to training samples; 0 switches one off.

    There is deliberately no flip: which side a finding is on is part of the report.
    """

    enabled: bool = True
    prob: float = 0.5  # probability that each random transform fires
    rotate_degrees: float = 10.0  # rotation drawn from [-r, r] (about each axis in 3D)
    scale: float = 0.1  # zoom factor drawn from [1 - s, 1 + s]
    translate: float = 0.05  # shift drawn from [-t, t] times the image size
    gamma: tuple[float, float] = (0.8, 1.25)  # intensity gamma range
    contrast: float = 0.1  # contrast factor drawn from [1 - c, 1 + c], mean kept
    noise_std: float = 0.02  # Gaussian noise standard deviation (intensities are in [0, 1])

    def __post_init__(self) -> None:
        _check_type(self, "enabled", bool, "augment.")
        _check_range(self, "prob", 0.0, 1.0, "augment.")
        _check_range(self, "rotate_degrees", 0.0, 45.0, "augment.")
        _check_range(self, "scale", 0.0, 0.5, "augment.")
        _check_range(self, "translate", 0.0, 0.25, "augment.")
        _check_range(self, "contrast", 0.0, 0.5, "augment.")
        _check_range(self, "noise_std", 0.0, 0.5, "augment.")
        low, high = _number_pair(self.gamma, "augment.gamma")
        if not 0 < low <= high:
            raise ConfigError(f"augment.gamma: expected 0 < low <= high, got {self.gamma!r}")
        object.__setattr__(self, "gamma", (low, high))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> AugmentConfig:
        """Build from a YAML mapping; unknown keys raise :class:`ConfigError`."""
        return cls(**_known_keys(cls, values, "augment."))


@dataclass(frozen=True)
class TransformConfig:
    """Everything that decides how a study becomes a tensor."""

    spatial_dims: int = 2
    image_size: int | tuple[int, ...] = 224  # an int means the same size along every axis
    max_views: int = 2  # 2 for frontal + lateral radiographs, 1 for CT/MR volumes
    intensity: str = "auto"  # "auto": CT -> window, anything else -> percentiles
    window: str | tuple[float, float] = "lung"  # a WINDOW_PRESETS name, "header" or (center, width)
    percentiles: tuple[float, float] = (0.5, 99.5)
    target_spacing: float | tuple[float, ...] | None = None  # mm; 3D only, resampled before resizing
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.spatial_dims not in (2, 3) or isinstance(self.spatial_dims, bool):
            raise ConfigError(f"spatial_dims: expected 2 or 3, got {self.spatial_dims!r}")
        object.__setattr__(self, "image_size", _int_tuple(self.image_size, self.spatial_dims, "image_size"))
        if not isinstance(self.max_views, int) or isinstance(self.max_views, bool) or self.max_views < 1:
            raise ConfigError(f"max_views: expected a positive integer, got {self.max_views!r}")
        if self.intensity not in INTENSITY_MODES:
            raise ConfigError(f"intensity: expected one of {', '.join(INTENSITY_MODES)}, got {self.intensity!r}")
        object.__setattr__(self, "window", _window(self.window))
        low, high = _number_pair(self.percentiles, "percentiles")
        if not 0 <= low < high <= 100:
            raise ConfigError(f"percentiles: expected 0 <= low < high <= 100, got {self.percentiles!r}")
        object.__setattr__(self, "percentiles", (low, high))
        if self.target_spacing is not None:
            if self.spatial_dims != 3:
                raise ConfigError("target_spacing: only for volumes (spatial_dims: 3)")
            object.__setattr__(self, "target_spacing", _spacing(self.target_spacing))
        if isinstance(self.augment, Mapping):
            object.__setattr__(self, "augment", AugmentConfig.from_dict(self.augment))
        elif not isinstance(self.augment, AugmentConfig):
            raise ConfigError(f"augment: expected a mapping, got {self.augment!r}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TransformConfig:
        """Build from a YAML mapping; unknown keys or bad values raise :class:`ConfigError`."""
        return cls(**_known_keys(cls, values, ""))

    def to_dict(self) -> dict[str, Any]:
        """A YAML/JSON-ready mapping (tuples as lists) that :meth:`from_dict` reads back."""
        return json.loads(json.dumps(asdict(self)))


def _known_keys(cls: type, values: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'transforms'}: expected a mapping, got {values!r}")
    names = [f.name for f in fields(cls)]
    for key in values:
        if key in names:
            continue
        if "flip" in str(key).lower():
            raise ConfigError(f"{prefix}{key}: medvl never flips images (laterality is part of the findings)")
        close = difflib.get_close_matches(str(key), names, n=1)
        hint = f" (did you mean {prefix}{close[0]!r}?)" if close else f"; known keys: {', '.join(names)}"
        raise ConfigError(f"{prefix}{key}: unknown key{hint}")
    return dict(values)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_type(config: Any, name: str, kind: type, prefix: str) -> None:
    value = getattr(config, name)
    if not isinstance(value, kind):
        raise ConfigError(f"{prefix}{name}: expected {kind.__name__}, got {value!r}")


def _check_range(config: Any, name: str, low: float, high: float, prefix: str) -> None:
    value = getattr(config, name)
    if not _is_number(value) or not low <= value <= high:
        raise ConfigError(f"{prefix}{name}: expected a number in [{low}, {high}], got {value!r}")


def _number_pair(value: Any, name: str) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(_is_number(v) for v in value):
        raise ConfigError(f"{name}: expected two numbers, got {value!r}")
    return float(value[0]), float(value[1])


def _int_tuple(value: Any, spatial_dims: int, name: str) -> tuple[int, ...]:
    values = [value] * spatial_dims if not isinstance(value, (list, tuple)) else list(value)
    valid = all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values)
    if not valid or len(values) != spatial_dims:
        raise ConfigError(f"{name}: expected a positive integer or {spatial_dims} of them, got {value!r}")
    return tuple(values)


def _spacing(value: Any) -> tuple[float, float, float]:
    values = [value] * 3 if not isinstance(value, (list, tuple)) else list(value)
    if len(values) != 3 or not all(_is_number(v) and v > 0 for v in values):
        raise ConfigError(f"target_spacing: expected a positive number or 3 of them (mm), got {value!r}")
    return tuple(float(v) for v in values)


def _window(value: Any) -> str | tuple[float, float]:
    if isinstance(value, str):
        if value != HEADER_WINDOW and value not in WINDOW_PRESETS:
            names = ", ".join([*WINDOW_PRESETS, HEADER_WINDOW])
            raise ConfigError(f"window: expected one of {names} or [center, width], got {value!r}")
        return value
    center, width = _number_pair(value, "window")
    if width <= 0:
        raise ConfigError(f"window: width must be positive, got {value!r}")
    return center, width


# --------------------------------------------------------------------------- transforms


class LoadStudyd(MapTransform):
    """Read a study's images into view slots ordered frontal, lateral, other.

    ``data[key]`` is a list of paths, each anything :func:`medvl.io.load_study` reads (or a
    :class:`~medvl.io.Study` already loaded, as drafting passes them); the views
    of all of them are pooled, ordered by role (stably, so ties keep the listed order) and the
    first ``max_views`` fill ``view0``, ``view1``, ... Also written: ``view_roles`` and
    ``view_info`` (one entry per slot, ``"missing"``/``None`` for empty slots), ``original_size``
    and ``source_affine`` (for :class:`RecordGeometryd`). When ``data[masks_key]`` names an
    ``.npz`` file, its arrays ``view{v}_finding{f}`` (``v`` counting the pooled views before
    ordering) become ``view{slot}_masks`` with one channel per finding.
    """

    def __init__(
        self,
        keys: str = "images",
        max_views: int = 2,
        spatial_dims: int = 2,
        masks_key: str = "masks",
        findings_key: str = "findings",
    ) -> None:
        super().__init__(keys)
        if len(self.keys) != 1:
            raise ValueError(f"LoadStudyd reads one key of image paths, got {self.keys}")
        self.max_views = max_views
        self.spatial_dims = spatial_dims
        self.masks_key = masks_key
        self.findings_key = findings_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        views = [view for path in ensure_tuple(d[self.keys[0]]) for view in self._read(path)]
        masks = None
        if d.get(self.masks_key):
            n_findings = len(d.get(self.findings_key) or ())
            masks = read_masks(d[self.masks_key], [view.info.size for view in views], n_findings)

        kept = sorted(range(len(views)), key=lambda index: role_rank(views[index].info.role))[: self.max_views]
        d["original_size"] = torch.zeros(self.max_views, self.spatial_dims, dtype=torch.long)
        d["source_affine"] = torch.eye(4, dtype=torch.float64).repeat(self.max_views, 1, 1)
        for slot, index in enumerate(kept):
            image = views[index].image
            d[view_key(slot)] = image
            d["original_size"][slot] = torch.tensor(image.shape[1:])
            d["source_affine"][slot] = torch.as_tensor(image.affine, dtype=torch.float64)
            if masks is not None and masks[index].shape[0] > 0:  # MONAI cannot resize 0 channels
                mask = torch.from_numpy(masks[index]).float()
                d[view_masks_key(slot)] = MetaTensor(mask, affine=image.affine.clone())
        empty_slots = self.max_views - len(kept)
        d["view_roles"] = [views[index].info.role for index in kept] + [MISSING_ROLE] * empty_slots
        d["view_info"] = [views[index].info.to_dict() for index in kept] + [None] * empty_slots
        return d

    def _read(self, path: str | Path | Study) -> tuple[View, ...]:
        study = path if isinstance(path, Study) else load_study(path)
        for view in study.views:
            if view.info.spatial_dims != self.spatial_dims:
                size = "x".join(str(s) for s in view.info.size)
                raise InvalidImageError(
                    f"expected {self.spatial_dims}D images (spatial_dims: {self.spatial_dims}), "
                    f"got a {view.info.spatial_dims}D one of size {size}",
                    path,
                )
        return study.views


def read_masks(path: str | Path, view_sizes: Sequence[Sequence[int]], n_findings: int) -> list[np.ndarray]:
    """Per view, a boolean ``(n_findings, *size)`` array from an ``.npz`` of ``view{v}_finding{f}``.

    A finding without an array in a view has an empty mask there. ``n_findings`` of 0 means
    "as many as the file names".
    """
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ManifestError("masks must be an .npz archive of named arrays", path)
        with archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ManifestError(f"cannot read masks: {exc}", path) from exc

    placed: dict[tuple[int, int], np.ndarray] = {}
    for name, array in arrays.items():
        match = MASK_ARRAY_NAME.fullmatch(name)
        if match is None:
            raise ManifestError(f"unexpected array {name!r}: masks are named view<v>_finding<f>", path)
        view, finding = int(match[1]), int(match[2])
        if view >= len(view_sizes):
            raise ManifestError(f"{name}: the study has {len(view_sizes)} view(s)", path)
        if tuple(array.shape) != tuple(view_sizes[view]):
            expected = tuple(view_sizes[view])
            raise ManifestError(f"{name}: shape {tuple(array.shape)} differs from the view's {expected}", path)
        placed[view, finding] = array.astype(bool)

    count = n_findings or 1 + max((finding for _, finding in placed), default=-1)
    masks = [np.zeros((count, *size), dtype=bool) for size in view_sizes]
    for (view, finding), array in placed.items():
        if finding >= count:
            raise ManifestError(f"view{view}_finding{finding}: the row lists {count} finding(s)", path)
        masks[view][finding] = array
    return masks


def intensity_scaler(
    intensity: str,
    window: str | tuple[float, float],
    percentiles: tuple[float, float],
    view_info: Mapping[str, Any],
) -> Transform:
    """The MONAI transform mapping one view's intensities to [0, 1] (clipped).

    ``"window"`` uses the preset or (center, width), or with ``"header"`` the view's own window,
    falling back to percentiles where the view has none. ``"auto"`` windows CT and uses
    percentiles for everything else (radiographs, MR, images of unknown modality).
    """
    if intensity == "auto":
        intensity = "window" if view_info.get("modality") == "CT" else "percentile"
    if intensity == "window":
        if window == HEADER_WINDOW:
            center_width = view_info.get("window")
        else:
            center_width = WINDOW_PRESETS[window] if isinstance(window, str) else window
        if center_width is not None:
            center, width = center_width
            return ScaleIntensityRange(center - width / 2, center + width / 2, 0.0, 1.0, clip=True)
    low, high = percentiles
    return ScaleIntensityRangePercentiles(low, high, 0.0, 1.0, clip=True)


class ScaleViewIntensityd(MapTransform):
    """Scale each view slot to [0, 1] as :func:`intensity_scaler` decides from its ``view_info``."""

    def __init__(
        self,
        max_views: int,
        intensity: str = "auto",
        window: str | tuple[float, float] = "lung",
        percentiles: tuple[float, float] = (0.5, 99.5),
        info_key: str = "view_info",
    ) -> None:
        super().__init__([view_key(slot) for slot in range(max_views)], allow_missing_keys=True)
        self.intensity, self.window, self.percentiles = intensity, window, percentiles
        self.info_key = info_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for slot, key in enumerate(self.keys):
            if key in d:
                scaler = intensity_scaler(self.intensity, self.window, self.percentiles, d[self.info_key][slot])
                d[key] = scaler(d[key])
        return d


def fitted_size(size: Sequence[int], box: Sequence[int]) -> tuple[int, ...]:
    """``size`` scaled by one factor so that it just fits inside ``box``."""
    factor = min(b / s for b, s in zip(box, size))
    return tuple(min(b, max(1, round(s * factor))) for b, s in zip(box, size))


class FitAndPadd(MapTransform):
    """Resize to fit ``spatial_size`` keeping the aspect ratio, then zero-pad symmetrically.

    The first present key (the view) decides the size; the others (its masks) follow it, each
    with its own interpolation mode. Downsampling of linear modes is anti-aliased.
    """

    def __init__(
        self,
        keys: Sequence[str],
        spatial_size: Sequence[int],
        mode: Sequence[str],
        allow_missing_keys: bool = True,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.spatial_size = tuple(spatial_size)
        self.mode = tuple(mode)
        self.pad = SpatialPad(self.spatial_size, method="symmetric", mode="constant")

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        present = [key for key in self.keys if key in d]
        if not present:
            return d
        size = fitted_size(d[present[0]].shape[1:], self.spatial_size)
        for key, mode in self.key_iterator(d, self.mode):
            resize = Resize(size, mode=mode, anti_aliasing=mode in LINEAR_MODE.values())
            d[key] = self.pad(resize(d[key]))
        return d


class RecordGeometryd(MapTransform):
    """Write ``geometry``: per slot, the matrix from transformed to original voxel indices.

    It is solved from ``source_affine`` (written by :class:`LoadStudyd`) and the view's current
    affine, both mapping voxel indices to the same patient space: ``source @ G = current``.
    """

    def __init__(self, max_views: int, spatial_dims: int) -> None:
        super().__init__([view_key(slot) for slot in range(max_views)], allow_missing_keys=True)
        self.spatial_dims = spatial_dims

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        source_affine = d.pop("source_affine")
        axes = [*range(self.spatial_dims), -1]  # the spatial axes and the translation column
        geometry = torch.eye(self.spatial_dims + 1, dtype=torch.float64).repeat(len(self.keys), 1, 1)
        for slot, key in enumerate(self.keys):
            if key in d:
                current = torch.as_tensor(d[key].affine, dtype=torch.float64)
                geometry[slot] = torch.linalg.lstsq(source_affine[slot][:, axes], current[:, axes]).solution
        d["geometry"] = geometry
        return d


class StackViewsd(MapTransform):
    """Stack the view slots into ``image``, ``view_mask`` and (when present) ``masks``."""

    def __init__(self, max_views: int, spatial_size: Sequence[int]) -> None:
        super().__init__([view_key(slot) for slot in range(max_views)], allow_missing_keys=True)
        self.spatial_size = tuple(spatial_size)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        d["image"] = torch.zeros(len(self.keys), 1, *self.spatial_size, dtype=torch.float32)
        d["view_mask"] = torch.zeros(len(self.keys), dtype=torch.bool)
        for slot, key in enumerate(self.keys):
            if key in d:
                d["image"][slot] = convert_to_tensor(d.pop(key), track_meta=False)
                d["view_mask"][slot] = True
        view_masks = {
            slot: convert_to_tensor(d.pop(view_masks_key(slot)), track_meta=False) > MASK_COVERAGE
            for slot in range(len(self.keys))
            if view_masks_key(slot) in d
        }
        if d.pop("masks", None) is not None:  # the row's mask file becomes the mask tensor
            n_findings = next(iter(view_masks.values())).shape[0] if view_masks else 0
            d["masks"] = torch.zeros(len(self.keys), n_findings, *self.spatial_size, dtype=torch.bool)
            for slot, mask in view_masks.items():
                d["masks"][slot] = mask
        return d


# --------------------------------------------------------------------------- pipelines


def deterministic_transforms(config: TransformConfig) -> list[Transform]:
    """Load, scale intensities, resample (3D, optional), fit and pad: the cacheable part."""
    linear = LINEAR_MODE[config.spatial_dims]
    transforms: list[Transform] = [
        LoadStudyd("images", config.max_views, config.spatial_dims),
        ScaleViewIntensityd(config.max_views, config.intensity, config.window, config.percentiles),
    ]
    for slot in range(config.max_views):
        keys = [view_key(slot), view_masks_key(slot)]
        if config.target_spacing is not None:
            transforms.append(
                Spacingd(
                    keys, config.target_spacing, mode=("bilinear", "nearest"), dtype=np.float32, allow_missing_keys=True
                )
            )
        transforms.append(FitAndPadd(keys, config.image_size, mode=(linear, MASK_MODE)))
    transforms.append(RecordGeometryd(config.max_views, config.spatial_dims))
    return transforms


def random_transforms(config: TransformConfig) -> list[Transform]:
    """Small random affine, gamma, contrast and noise, drawn per view; masks follow the affine."""
    augment = config.augment
    if not augment.enabled:
        return []
    dims = config.spatial_dims
    transforms: list[Transform] = []
    for slot in range(config.max_views):
        image, masks = view_key(slot), view_masks_key(slot)
        if augment.rotate_degrees or augment.scale or augment.translate:
            transforms.append(
                RandAffined(
                    [image, masks],
                    prob=augment.prob,
                    rotate_range=[math.radians(augment.rotate_degrees)] * (1 if dims == 2 else 3),
                    scale_range=[augment.scale] * dims,
                    translate_range=[augment.translate * size for size in config.image_size],
                    mode=("bilinear", "bilinear"),  # masks too: nearest sampling can skip a 1-pixel lesion
                    padding_mode="zeros",
                    allow_missing_keys=True,
                )
            )
        if augment.gamma != (1.0, 1.0):
            transforms.append(
                RandAdjustContrastd(image, prob=augment.prob, gamma=augment.gamma, allow_missing_keys=True)
            )
        if augment.contrast:
            transforms.append(
                RandScaleIntensityFixedMeand(
                    image, factors=augment.contrast, preserve_range=True, prob=augment.prob, allow_missing_keys=True
                )
            )
        if augment.noise_std:
            transforms.append(
                RandGaussianNoised(image, prob=augment.prob, std=augment.noise_std, allow_missing_keys=True)
            )
    return transforms


def per_epoch_transforms(config: TransformConfig, train: bool) -> list[Transform]:
    """What runs on every access: the random part (training only), then stacking the views."""
    return [*(random_transforms(config) if train else []), StackViewsd(config.max_views, config.image_size)]


def build_transforms(config: TransformConfig, train: bool) -> Compose:
    """The whole pipeline; MONAI datasets cache everything before the first random transform."""
    return Compose([*deterministic_transforms(config), *per_epoch_transforms(config, train)])


def study_error(exc: BaseException) -> MedVLError | None:
    """The :class:`MedVLError` behind ``exc`` (MONAI's Compose wraps errors in RuntimeError)."""
    while exc is not None and not isinstance(exc, MedVLError):
        exc = exc.__cause__
    return exc


# --------------------------------------------------------------------------- geometry


def to_original_index(points: Any, geometry: Any) -> np.ndarray:
    """Map voxel indices ``(..., D)`` of a transformed view to indices of the original view."""
    points = np.asarray(points, dtype=np.float64)
    matrix = np.asarray(geometry, dtype=np.float64)
    homogeneous = np.concatenate([points, np.ones((*points.shape[:-1], 1))], axis=-1)
    return (homogeneous @ matrix.T)[..., :-1]


def restore_original_grid(
    values: torch.Tensor, geometry: Any, original_size: Sequence[int], mode: str = "bilinear"
) -> torch.Tensor:
    """Resample a channel-first map on the transformed grid onto the original view's pixels.

    Padding falls outside the original grid; pixels of the original view outside the
    transformed one (none, for fit-and-pad) get 0.
    """
    source = MetaTensor(torch.as_tensor(values, dtype=torch.float32), affine=to_affine_nd(3, np.asarray(geometry)))
    resample = SpatialResample(mode=mode, padding_mode="zeros", dtype=np.float32)
    size = tuple(int(s) for s in original_size)
    restored = resample(source, dst_affine=torch.eye(4, dtype=torch.float64), spatial_size=size)
    return convert_to_tensor(restored, track_meta=False)
