"""Wide residual networks (Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016).

Pre-activation basic blocks (He et al., "Identity Mappings in Deep Residual Networks", ECCV 2016),
widened by a factor k; WRN-28-10 is the CIFAR configuration of the paper.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .base import MODELS, BlockNet


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3, BN-ReLU-(dropout)-conv3x3, plus an identity or 1x1 conv shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = F.relu(self.bn1(x))
        out = self.conv1(activated)
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        # Where the shape changes the projection reads the pre-activated input, as in the paper's
        # code; the identity path keeps the raw input so the residual stream stays un-normalised.
        shortcut = x if self.shortcut is None else self.shortcut(activated)
        return out + shortcut


def wide_resnet(depth: int, widen_factor: int, num_classes: int, in_channels: int,
                dropout: float = 0.0) -> BlockNet:
    """WRN-``depth``-``widen_factor``: blocks are [stem], each residual block, [head]."""
    if depth < 10 or (depth - 4) % 6 != 0:
        raise ValueError(f"WideResNet depth must be 6n+4 with n >= 1, got depth={depth}")
    if widen_factor < 1:
        raise ValueError(f"widen_factor must be at least 1, got {widen_factor}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    blocks_per_group = (depth - 4) // 6
    blocks: list[nn.Module] = [nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)]
    channels = 16
    for width, stride in ((16 * widen_factor, 1), (32 * widen_factor, 2), (64 * widen_factor, 2)):
        for index in range(blocks_per_group):
            blocks.append(PreActBlock(channels, width, stride if index == 0 else 1, dropout))
            channels = width
    # Pre-activation blocks end on a conv, so the head applies the last BN-ReLU itself.
    blocks.append(nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1),
                                nn.Flatten(), nn.Linear(channels, num_classes)))
    return BlockNet(blocks)


@MODELS.register("wideresnet28-10")
def wideresnet28_10(num_classes: int, in_channels: int) -> BlockNet:
    """14 blocks (stem, 12 residual blocks, head), about 36.5M parameters for 10 classes."""
    return wide_resnet(28, 10, num_classes, in_channels)
