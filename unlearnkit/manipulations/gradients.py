"""Parameter gradients of the training loss, as the crafted attacks use them.

Models are evaluated in eval mode, so batch-norm layers use their running statistics: the loss of a
sample is then a function of the parameters and that sample alone, and a poison's gradient does not
depend on which other samples share its batch. In training the victim normalises with the statistics
of mixed batches that are almost all clean, which the running statistics of a model trained on clean
data approximate.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..data.core import DatasetInfo
from ..data.pipeline import normalise

Gradient = list[torch.Tensor]


def trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def loss_gradient(model: torch.nn.Module, images01: torch.Tensor, labels: torch.Tensor, info: DatasetInfo,
                  create_graph: bool = False, scale: float = 1.0) -> Gradient:
    """``scale * grad_theta mean_i CE(f(x_i), y_i)`` for float images in [0, 1] (a graph on request)."""
    loss = F.cross_entropy(model(normalise(images01, info)), labels) * scale
    return list(torch.autograd.grad(loss, trainable(model), create_graph=create_graph))


def mean_gradient(model: torch.nn.Module, images_uint8: torch.Tensor, labels: torch.Tensor, info: DatasetInfo,
                  batch_size: int) -> Gradient:
    """``grad_theta`` of the mean loss over a whole uint8 set, accumulated over chunks of ``batch_size``."""
    total = [torch.zeros_like(p) for p in trainable(model)]
    for start in range(0, len(labels), batch_size):
        chunk = slice(start, start + batch_size)
        share = len(labels[chunk]) / len(labels)
        for accumulated, part in zip(total, loss_gradient(model, images_uint8[chunk].float() / 255, labels[chunk],
                                                          info, scale=share)):
            accumulated += part
    return total


def dot(first: Sequence[torch.Tensor], second: Sequence[torch.Tensor]) -> torch.Tensor:
    return sum((a * b).sum() for a, b in zip(first, second))


def norm(gradient: Sequence[torch.Tensor]) -> torch.Tensor:
    return dot(gradient, gradient).sqrt()


def cosine(first: Sequence[torch.Tensor], second: Sequence[torch.Tensor]) -> torch.Tensor:
    return dot(first, second) / (norm(first) * norm(second)).clamp_min(1e-30)
