"""Manipulations that add samples after the clean training set (poisons crafted from clean ones, flipped copies)."""

from __future__ import annotations

import torch

from ..data.core import DataSplits
from ..data.pipeline import TrainingSet
from .base import Manipulated


def appended_poisons(name: str, splits: DataSplits, pixels: torch.Tensor, labels: torch.Tensor,
                     sources: torch.Tensor) -> Manipulated:
    """The clean training set followed by ``pixels`` with ``labels``; each poison is a manipulated sample
    whose clean counterpart is ``sources`` (position in ``splits.train``). D_m is the whole test set:
    an indiscriminate attack aims at every test point."""
    train, test = splits.train, splits.test
    device = train.images.device
    sources = sources.to(device)
    total = len(train) + len(pixels)
    images = torch.cat([train.images, pixels.to(device)])
    trained_labels = torch.cat([train.labels, labels.to(device)])
    return Manipulated(
        name=name,
        train=TrainingSet(images, trained_labels, torch.arange(total, device=device)),
        clean_train_labels=torch.cat([train.labels, train.labels[sources]]),
        manipulated=torch.arange(len(train), total, device=device),
        affected_test=test,
        retain_test_mask=torch.zeros(len(test), dtype=torch.bool, device=test.images.device),
        source=torch.cat([torch.arange(len(train), device=device), sources]),
    )
