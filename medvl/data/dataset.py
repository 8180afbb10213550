"""`StudyDataset`: one split of a manifest as tensors, loaded once and cached.

The deterministic transforms (reading, intensity, resampling, fit and pad) run once per study
and are cached by MONAI: in memory (``CacheDataset``) or, with ``cache_dir``, on disk
(``PersistentDataset``, reused by later runs with the same transform settings). The random
augmentation and the stacking of views run on every access, so a second epoch never decodes a
DICOM or PNG file again.

Bad studies: every study is loaded (or read from the disk cache) when the dataset is built. A
study that raises a :class:`~medvl.errors.MedVLError` (missing, corrupt or unsupported file,
bad mask file) is left out, logged as one line ``"<study_id>: <error>"`` and listed in
:attr:`StudyDataset.failures`; failures are not cached, so a fixed file is picked up next run.
Other exceptions are bugs and propagate. ``skip_bad=False`` makes the first bad study fatal.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Sequence
from multiprocessing.pool import ThreadPool
from pathlib import Path
from typing import Any

import torch
from monai.data import CacheDataset, PersistentDataset
from monai.transforms import Compose
from torch.utils.data import Dataset

from medvl.data.manifest import SPLITS, ManifestRow
from medvl.data.transforms import TransformConfig, deterministic_transforms, per_epoch_transforms, study_error
from medvl.errors import ManifestError

logger = logging.getLogger(__name__)

STACKED_KEYS = ("image", "view_mask", "original_size", "geometry")


def study_item(row: ManifestRow) -> dict[str, Any]:
    """The dictionary the transforms start from (plain types only, as the disk cache requires)."""
    return {
        "study_id": row.study_id,
        "images": [str(path) for path in row.images],
        "report": row.report,
        "findings": [dict(finding) for finding in row.findings],
        "masks": None if row.masks is None else str(row.masks),
    }


class StudyDataset(Dataset):
    """The studies of one split, as samples of :mod:`medvl.data.transforms` plus their text.

    Each sample holds ``image``, ``view_mask``, ``view_roles``, ``view_info``,
    ``original_size``, ``geometry``, ``masks`` (when the row has a mask file), and the row's
    ``study_id``, ``images`` (paths), ``report`` and ``findings`` (dicts). Use :func:`collate`
    to batch.

    ``split`` keeps that split's rows (``None``: all); ``train=True`` adds random augmentation;
    ``cache_dir`` keeps the cache on disk (one sub-folder per transform settings) instead of in
    memory; ``load_threads`` read studies in parallel while the cache fills; ``skip_bad`` leaves
    out studies that fail to load (see the module notes) instead of raising.

    Augmentation is a function of ``(seed, epoch, sample index)`` (:meth:`set_epoch`), not of a
    random state carried from sample to sample: a resumed run, or one with more loader workers
    or processes, augments every sample exactly as an uninterrupted single-process run does.
    """

    def __init__(
        self,
        rows: Sequence[ManifestRow],
        config: TransformConfig,
        split: str | None = None,
        *,
        train: bool = False,
        cache_dir: str | Path | None = None,
        skip_bad: bool = True,
        load_threads: int = 1,
        seed: int = 0,
    ) -> None:
        if split is not None and split not in SPLITS:
            raise ManifestError(f"split must be one of {'/'.join(SPLITS)}, got {split!r}")
        items = [study_item(row) for row in rows if split is None or row.split == split]
        if not items:
            raise ManifestError(f"the manifest has no {split or 'any'} studies")
        self.config = config
        self.cache_dir = None if cache_dir is None else Path(cache_dir) / config_digest(config)
        cached_part = Compose(deterministic_transforms(config))
        if self.cache_dir is None:
            self._cached = CacheDataset(items, cached_part, runtime_cache=True, progress=False)
        else:
            self._cached = PersistentDataset(items, cached_part, cache_dir=self.cache_dir)
        self._per_epoch = Compose(per_epoch_transforms(config, train))
        self.seed, self.epoch = seed, 0
        self.failures = self._load_all(items, skip_bad, load_threads)
        self._indices = [index for index, item in enumerate(items) if item["study_id"] not in self.failures]
        if not self._indices:
            raise ManifestError(f"none of the {len(items)} studies could be loaded (see the log for each)")

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, index: int) -> dict[str, Any]:
        cached = self._cached[self._indices[index]]
        self._per_epoch.set_random_state(seed=sample_seed(self.seed, self.epoch, index))
        return self._per_epoch(copy.deepcopy(cached))  # random transforms must not alter the cache

    def set_epoch(self, epoch: int) -> None:
        """Draw the augmentation of epoch ``epoch`` from now on."""
        self.epoch = epoch

    @property
    def study_ids(self) -> list[str]:
        """The ids of the studies in the dataset, in sample order."""
        return [self._cached.data[index]["study_id"] for index in self._indices]

    @property
    def findings(self) -> list[list[dict[str, Any]]]:
        """Each study's findings (dicts), in sample order."""
        return [self._cached.data[index]["findings"] for index in self._indices]

    def _load_all(self, items: list[dict[str, Any]], skip_bad: bool, threads: int) -> dict[str, str]:
        """Fill the cache; return ``{study_id: error}`` for the studies that failed."""

        def load(index: int) -> str | None:
            try:
                self._cached[index]
            except Exception as exc:
                error = study_error(exc)
                if error is None:
                    raise  # not a bad input: a bug
                if not skip_bad:
                    raise error from None
                return str(error)
            return None

        with ThreadPool(max(1, threads)) as pool:
            errors = pool.map(load, range(len(items)))
        failures = {item["study_id"]: error for item, error in zip(items, errors) if error is not None}
        for study_id, error in failures.items():
            logger.warning("%s: %s", study_id, error)
        if failures:
            logger.warning("left out %d of %d studies that could not be loaded", len(failures), len(items))
        return failures


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The augmentation seed of sample ``index`` in epoch ``epoch`` of a run seeded ``seed``."""
    digest = hashlib.blake2b(f"{seed}:{epoch}:{index}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")


def config_digest(config: TransformConfig) -> str:
    """A short hash of the transform settings: caches made with other settings are not reused."""
    return hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch samples: tensors stacked, masks padded to the most findings, the rest as lists.

    ``masks`` becomes ``(batch, max_views, max_findings, *image_size)`` with ``n_findings``
    ``(batch,)`` giving each sample's count; a sample without masks counts 0.
    """
    batch: dict[str, Any] = {key: torch.stack([sample[key] for sample in samples]) for key in STACKED_KEYS}
    if any("masks" in sample for sample in samples):
        batch["masks"], batch["n_findings"] = _pad_masks(samples)
    for key in samples[0]:
        if key not in batch:
            batch[key] = [sample.get(key) for sample in samples]
    return batch


def _pad_masks(samples: Sequence[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
    image = samples[0]["image"]
    counts = torch.tensor([sample["masks"].shape[1] if "masks" in sample else 0 for sample in samples])
    masks = torch.zeros(len(samples), image.shape[0], int(counts.max()), *image.shape[2:], dtype=torch.bool)
    for row, sample in enumerate(samples):
        if "masks" in sample:
            masks[row, :, : counts[row]] = sample["masks"]
    return masks, counts
