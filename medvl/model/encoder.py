"""The image encoder: a MONAI network cut where its feature map is still a grid.

The encoder family and depth come from config (``resnet10`` ... ``resnet200`` through
``monai.networks.nets.ResNet``, ``densenet121`` ... ``densenet264`` through
``monai.networks.nets.DenseNet``); ``spatial_dims`` makes the same code 2D or 3D. The output of
stage ``feature_stage`` (1-4, stride 4 to 32 with ``conv1_stride=2``; a 7x7 stem at stride 1 is
about 4x dearer for nothing) is the feature map whose cells become visual tokens.

With ``detail_stage``, an earlier stage's output (finer, stride 4 or 8) is also max-pooled to the
token grid and joined to each token's channels: one bright 3-pixel granuloma is the strongest
response in its cell there, where deeper features averaged over a 16-pixel cell lose it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from monai.networks.nets import DenseNet, ResNet
from monai.networks.nets.resnet import resnet_params
from torch import nn

from medvl.errors import ConfigError

DENSENET_BLOCKS = {
    "densenet121": (6, 12, 24, 16),
    "densenet169": (6, 12, 32, 32),
    "densenet201": (6, 12, 48, 32),
    "densenet264": (6, 12, 64, 48),
}
RESNET_INPLANES = (64, 128, 256, 512)


@dataclass(frozen=True)
class EncoderConfig:
    """Which MONAI network encodes the views, and where it is cut."""

    name: str = "resnet10"  # a key of monai's resnet_params, or of DENSENET_BLOCKS
    spatial_dims: int = 2
    in_channels: int = 1
    feature_stage: int = 3  # 1..4: the stage whose output is the token grid
    widen_factor: float = 1.0  # ResNet only: channel multiplier
    conv1_stride: int = 2  # ResNet only: stride of the 7x7 stem convolution
    token_grid: tuple[int, ...] | None = None  # pool the feature map to this grid (None: keep)
    token_pool: str = "avg"  # "avg" or "max": how cells are pooled to token_grid ("max" keeps small bright lesions)
    detail_stage: int | None = None  # an earlier stage also max-pooled to the grid and joined (small lesions)

    def __post_init__(self) -> None:
        if self.name not in resnet_params and self.name not in DENSENET_BLOCKS:
            known = ", ".join([*resnet_params, *DENSENET_BLOCKS])
            raise ConfigError(f"encoder.name: unknown network {self.name!r}; known: {known}")
        if self.spatial_dims not in (2, 3):
            raise ConfigError(f"encoder.spatial_dims: expected 2 or 3, got {self.spatial_dims!r}")
        if self.feature_stage not in (1, 2, 3, 4):
            raise ConfigError(f"encoder.feature_stage: expected 1 to 4, got {self.feature_stage!r}")
        if self.detail_stage is not None and self.detail_stage not in range(1, self.feature_stage):
            raise ConfigError(
                f"encoder.detail_stage: expected a stage before feature_stage ({self.feature_stage}), got {self.detail_stage!r}"
            )
        if self.token_pool not in ("avg", "max"):
            raise ConfigError(f"encoder.token_pool: expected 'avg' or 'max', got {self.token_pool!r}")
        if self.token_grid is not None:
            grid = tuple(int(g) for g in self.token_grid)
            if len(grid) != self.spatial_dims or min(grid) < 1:
                raise ConfigError(f"encoder.token_grid: expected {self.spatial_dims} positive sizes, got {self.token_grid!r}")
            object.__setattr__(self, "token_grid", grid)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> EncoderConfig:
        """Build from a mapping; unknown keys raise :class:`ConfigError`."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"encoder: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        values = asdict(self)
        values["token_grid"] = None if self.token_grid is None else list(self.token_grid)
        return values


class VisualEncoder(nn.Module):
    """``(N, C, *spatial)`` images to ``(N, channels, *grid)`` feature maps."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.stages = _resnet_stages(config) if config.name in resnet_params else _densenet_stages(config)
        self.detail_end = None if config.detail_stage is None else _stage_end(self.stages, config.detail_stage)
        if config.token_grid is None:
            self.pool: nn.Module = nn.Identity()
        else:
            pools = {("avg", 2): nn.AdaptiveAvgPool2d, ("avg", 3): nn.AdaptiveAvgPool3d,
                     ("max", 2): nn.AdaptiveMaxPool2d, ("max", 3): nn.AdaptiveMaxPool3d}
            pool = pools[config.token_pool, config.spatial_dims]
            self.pool = pool(config.token_grid)
        self.out_channels = self._probe_channels()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.detail_end is None:
            return self.pool(self.stages(images))
        detail = self.stages[: self.detail_end](images)
        features = self.pool(self.stages[self.detail_end :](detail))
        max_pool = F.adaptive_max_pool2d if self.config.spatial_dims == 2 else F.adaptive_max_pool3d
        return torch.cat([features, max_pool(detail, features.shape[2:])], dim=1)

    def grid_shape(self, image_size: Sequence[int]) -> tuple[int, ...]:
        """The token grid for images of ``image_size`` (found by a dry run on an empty image)."""
        if self.config.token_grid is not None:
            return self.config.token_grid
        with torch.no_grad():
            probe = torch.zeros(1, self.config.in_channels, *image_size)
            return tuple(self.stages.eval()(probe).shape[2:])

    def _probe_channels(self) -> int:
        size = (64 if self.config.spatial_dims == 2 else 32,) * self.config.spatial_dims
        with torch.no_grad():
            return int(self.eval()(torch.zeros(1, self.config.in_channels, *size)).shape[1])


def _resnet_stages(config: EncoderConfig) -> nn.Sequential:
    block, layers, shortcut, bias_downsample, _ = resnet_params[config.name]
    network = ResNet(
        block=block,
        layers=layers,
        block_inplanes=list(RESNET_INPLANES),
        spatial_dims=config.spatial_dims,
        n_input_channels=config.in_channels,
        conv1_t_stride=config.conv1_stride,
        shortcut_type=shortcut,
        bias_downsample=bias_downsample,
        widen_factor=config.widen_factor,
        feed_forward=False,
    )
    names = ["conv1", "bn1", "act", "maxpool"] + [f"layer{stage}" for stage in range(1, config.feature_stage + 1)]
    return nn.Sequential(*(getattr(network, name) for name in names))


def _stage_end(stages: nn.Sequential, stage: int) -> int:
    """How many of ``stages``' modules produce stage ``stage``'s output (ResNet ``layerN``,
    DenseNet ``denseblockN``)."""
    names = [type(module).__name__ for module in stages]
    blocks = [index for index, module in enumerate(stages) if _is_stage(module)]
    if len(blocks) < stage:
        raise ConfigError(f"encoder.detail_stage: the network has {len(blocks)} stages ({', '.join(names)})")
    return blocks[stage - 1] + 1


def _is_stage(module: nn.Module) -> bool:
    """A ResNet layer (a Sequential of blocks) or a DenseNet dense block."""
    return type(module).__name__ in ("Sequential", "_DenseBlock")


def _densenet_stages(config: EncoderConfig) -> nn.Sequential:
    network = DenseNet(
        spatial_dims=config.spatial_dims,
        in_channels=config.in_channels,
        out_channels=1,
        block_config=DENSENET_BLOCKS[config.name],
    )
    kept = []
    for name, module in network.features.named_children():
        kept.append(module)
        if name == f"denseblock{config.feature_stage}":
            break
    return nn.Sequential(*kept)
