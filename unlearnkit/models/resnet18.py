"""ResNet-18 (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016), CIFAR variant.

The CIFAR variant replaces the ImageNet 7x7/stride-2 stem and max-pool with one 3x3 convolution,
so 32x32 (or 28x28) inputs keep enough resolution for the four stages.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .base import MODELS, BlockNet


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity or 1x1 conv-BN (projection) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            # Projection (option B of He et al.) only where the identity cannot be added.
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


@MODELS.register("resnet18")
def resnet18(num_classes: int, in_channels: int) -> BlockNet:
    """10 blocks (stem, 8 basic blocks, head), about 11.2M parameters for 10 classes."""
    blocks: list[nn.Module] = [nn.Sequential(
        nn.Conv2d(in_channels, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True))]
    channels = 64
    for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        blocks.append(BasicBlock(channels, width, stride))
        blocks.append(BasicBlock(width, width))
        channels = width
    blocks.append(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes)))
    return BlockNet(blocks)
