"""A small, fast CNN for 28x28 (and 32x32) images on a 2-core CPU.

Conv-BN-ReLU-MaxPool stages in the VGG style (Simonyan & Zisserman, "Very Deep Convolutional
Networks for Large-Scale Image Recognition", ICLR 2015) with batch normalisation (Ioffe & Szegedy,
ICML 2015), sized for the quick MNIST BadNet demo of the corrective-unlearning setting (Goel et al.,
"Corrective Machine Unlearning", TMLR 2024).
"""

from __future__ import annotations

from torch import nn

from .base import MODELS, BlockNet


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    # No conv bias: the following BatchNorm's shift makes it redundant.
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]


@MODELS.register("small-cnn")
def small_cnn(num_classes: int, in_channels: int) -> BlockNet:
    """4 blocks, about 94k parameters for 10 classes."""
    return BlockNet([
        nn.Sequential(*_conv_bn_relu(in_channels, 32), nn.MaxPool2d(2)),
        nn.Sequential(*_conv_bn_relu(32, 64), nn.MaxPool2d(2)),
        nn.Sequential(*_conv_bn_relu(64, 128)),
        # Max- rather than average-pooling keeps a small, localised feature (such as a BadNet
        # trigger patch) as visible to the classifier as it is in any one position.
        nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(128, num_classes)),
    ])
