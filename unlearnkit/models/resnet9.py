"""ResNet-9 as used by Goel et al., "Corrective Machine Unlearning" (TMLR 2024, Appendix A).

The architecture is the fast CIFAR ResNet of Page's DAWNBench entry ("How to train your ResNet",
2018): conv-BN-CELU units, two residual units, max-pooling and a bias-free linear head.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import MODELS, BlockNet

# The small CELU alpha of the public recipe: close to ReLU but smooth near zero.
CELU_ALPHA = 0.075


def _unit(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
          padding: int = 1) -> nn.Sequential:
    # No conv bias: the following BatchNorm's shift makes it redundant.
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.CELU(alpha=CELU_ALPHA),
    )


class Residual(nn.Module):
    """x + f(x), with f two shape-preserving units."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_unit(channels, channels), _unit(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@MODELS.register("resnet9")
def resnet9(num_classes: int, in_channels: int) -> BlockNet:
    """7 blocks, about 2.3M parameters for 3 input channels and 10 classes."""
    return BlockNet([
        _unit(in_channels, 64),
        _unit(64, 128, kernel_size=5, stride=2, padding=2),
        Residual(128),
        nn.Sequential(_unit(128, 256), nn.MaxPool2d(2)),
        Residual(256),
        # The unpadded conv leaves 6x6 (32x32 input) or 5x5 (28x28) maps; the global max-pool
        # makes the head independent of that size.
        nn.Sequential(_unit(256, 128, padding=0), nn.AdaptiveMaxPool2d(1), nn.Flatten()),
        nn.Linear(128, num_classes, bias=False),
    ])
