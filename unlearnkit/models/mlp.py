"""A multi-layer perceptron on the raw pixels: the classic MNIST classifier (LeCun et al., "Gradient-Based
Learning Applied to Document Recognition", Proc. IEEE 1998, Sec. III-C).

Its first layer is dense in input space, so training on an input ``x + xi`` writes ``xi`` straight
into the weights: a small model that memorises input-space Gaussian poisons within a few epochs on a
CPU, which is what the Gaussian Unlearning Score (Pawelczyk et al., ICLR 2025) looks for; a small
convolutional network needs far longer training to show it. Inputs are average-pooled to 28x28
first (nothing to do on MNIST-sized images), so the model accepts any image size. Train it with
``channels_last: false``: the layout only slows the flattening down.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import MODELS, BlockNet

SIDE = 28
HIDDEN = 256


class PoolTo(nn.Module):
    """Average-pool images to ``side x side`` (nothing to do when they already are)."""

    def __init__(self, side: int) -> None:
        super().__init__()
        self.side = side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if x.shape[-2:] == (self.side, self.side) else F.adaptive_avg_pool2d(x, self.side)


@MODELS.register("mlp")
def mlp(num_classes: int, in_channels: int) -> BlockNet:
    """3 blocks (two hidden layers of 256 ReLU units), about 270k parameters for 1x28x28 and 10 classes."""
    return BlockNet([
        nn.Sequential(PoolTo(SIDE), nn.Flatten(), nn.Linear(in_channels * SIDE * SIDE, HIDDEN),
                      nn.ReLU(inplace=True)),
        nn.Sequential(nn.Linear(HIDDEN, HIDDEN), nn.ReLU(inplace=True)),
        nn.Linear(HIDDEN, num_classes),
    ])
