"""Gaussian data poisoning (Pawelczyk et al., "Machine Unlearning Fails to Remove Data Poisoning
Attacks", ICLR 2025).

``k`` training points drawn uniformly get ``xi ~ N(0, eps^2 I)`` added to their input; labels stay.
The noise is drawn from ``seed`` and kept (``Manipulated.noise``), so the Gaussian Unlearning Score can
test whether a model still carries it. The noise lives in pixel units ([0, 1] per channel, before
normalisation) and is added without clipping, so the poisoned input is exactly ``x + xi``. Like the
BadNet trigger it is added after augmentation, i.e. fixed in the image frame, and is identical every
time the sample is drawn.

There is no affected test domain: Acc_corr is undefined (NaN) and Acc_retain is the clean accuracy.
The paper's CIFAR-10 figure poisons 750 points (1.5%) with eps^2 of about 0.32; ``eps`` is the
standard deviation here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..config import check_range
from ..data.core import DataSplits, ImageSet
from .base import MANIPULATIONS, Manipulated, check_size, count_from, unchanged_training_set

DEFAULT_FRACTION = 0.015  # 750 of CIFAR-10's 50000 (Pawelczyk et al. 2025)


def gaussian_noise(shape: tuple[int, ...], eps: float, seed: int) -> torch.Tensor:
    """``N(0, eps^2 I)`` noise drawn on the CPU from ``seed`` (the same on every device)."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * eps


@MANIPULATIONS.register("gaussian")
@dataclass(frozen=True)
class GaussianPoisoning:
    name: ClassVar[str] = "gaussian"
    eps: float = 0.32
    fraction: float | None = None
    count: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_range("manipulation.eps", self.eps, 0.0, low_open=True)
        check_size("manipulation", self.count, self.fraction)

    def apply(self, splits: DataSplits) -> Manipulated:
        train, test = splits.train, splits.test
        device = train.images.device
        k = count_from("manipulation", self.count, self.fraction, DEFAULT_FRACTION, len(train))
        generator = torch.Generator().manual_seed(self.seed)
        poisoned = torch.randperm(len(train), generator=generator)[:k].sort().values.to(device)
        # A different stream from the index draw, so changing k does not change the noise of a point.
        noise = gaussian_noise((k, *train.images.shape[1:]), self.eps, self.seed + 1).to(device)
        slot = torch.full((len(train),), -1, dtype=torch.int64, device=device)
        slot[poisoned] = torch.arange(k, device=device)

        def add_noise(images01: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
            rows = slot[index.to(device)].to(images01.device)
            hit = rows >= 0
            if hit.any():
                images01[hit] += noise[rows[hit]].to(images01.device, images01.dtype)
            return images01

        empty = ImageSet(test.images[:0], test.labels[:0], test.ids[:0])
        return Manipulated(
            name=self.name,
            train=unchanged_training_set(splits, train.labels.clone(), add_noise),
            clean_train_labels=train.labels,
            manipulated=poisoned,
            affected_test=empty,
            retain_test_mask=torch.ones(len(test), dtype=torch.bool, device=test.images.device),
            noise=noise,
        )
