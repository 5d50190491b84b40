"""Gaussian data poisoning (Pawelczyk et al., "Machine Unlearning Fails to Remove Data Poisoning
Attacks", ICLR 2025, Sec. 4).

``k`` training points drawn uniformly without replacement get ``xi ~ N(0, eps^2 I)`` added to their
input; their labels stay. These points are the poison and (at alpha = 1) the forget set. The noise is
re-derivable from ``seed`` and kept with the manipulation (``Manipulated.noise``, aligned with
``Manipulated.manipulated``), so the Gaussian Unlearning Score
(:mod:`unlearnkit.audits.gus`) can test whether a model still carries it.

Units and placement: ``eps`` is the standard deviation in pixel units (pixels scaled to [0, 1], before
the per-channel normalisation), and the noise is added without clipping, so the poisoned input is
exactly ``x + xi``; the input gradient of the score is taken in the same units. Like the BadNet
trigger, the noise is added after augmentation: it is fixed in the image frame and identical every
time the sample is drawn, which is what "the training point x + xi" means for a model trained with
random crops and flips.

There is no affected test domain: Acc_corr is undefined (NaN) and Acc_retain is the clean accuracy.
The paper's CIFAR-10 experiment poisons 750 of 50000 points (1.5%, the default fraction here); its
Figure 6 reports a noise level of about 0.32 (read as eps^2 or eps; ``eps`` is the standard deviation
here, so set ``eps: 0.566`` for a variance of 0.32).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar

import torch

from ..config import check_range
from ..data.core import DataSplits, ImageSet
from .base import MANIPULATIONS, Manipulated, check_size, count_from, unchanged_training_set

DEFAULT_FRACTION = 0.015  # 750 of CIFAR-10's 50000 (Pawelczyk et al. 2025)


def stream_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for the named random ``stream`` of ``seed``: streams never share draws."""
    digest = hashlib.sha256(f"{seed}/{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def gaussian_noise(shape: tuple[int, ...], eps: float, seed: int) -> torch.Tensor:
    """``N(0, eps^2 I)`` noise (float32) drawn on the CPU from ``seed``: the same on every device."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * eps


@MANIPULATIONS.register("gaussian")
@dataclass(frozen=True)
class GaussianPoisoning:
    name: ClassVar[str] = "gaussian"
    eps: float = 0.32
    """Standard deviation of the noise in [0, 1] pixel units."""
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
        drawn = torch.randperm(len(train), generator=torch.Generator().manual_seed(self.seed))[:k]
        # Noise row i belongs to the i-th drawn point, so a larger k keeps every earlier point's noise.
        noise = gaussian_noise((k, *train.images.shape[1:]), self.eps, stream_seed(self.seed, "gaussian-noise"))
        order = drawn.argsort()
        poisoned, noise = drawn[order].to(device), noise[order].to(device)
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
            noise_scale=self.eps,
            noise_seed=self.seed,
        )
