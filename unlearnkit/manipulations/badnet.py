"""BadNet backdoor poisoning (Gu et al. 2019), as used for corrective unlearning by Goel et al. (2024).

``count`` training samples drawn uniformly from the whole training set get the target label and a
``patch_size x patch_size`` patch of maximum intensity in the bottom-right corner on every channel.
The trigger is stamped after augmentation, so crops and flips never move it. D_m is the whole test
set with the trigger, judged against the clean labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..config import ConfigError, check_range
from ..data.core import DataSplits, ImageSet
from .base import MANIPULATIONS, Manipulated, check_class, check_size, count_from, unchanged_training_set


def stamp_trigger(images: torch.Tensor, patch_size: int, value: float) -> torch.Tensor:
    """Return a copy of ``images`` with the bottom-right ``patch_size`` square set to ``value``."""
    stamped = images.clone()
    stamped[..., -patch_size:, -patch_size:] = value
    return stamped


DEFAULT_FRACTION = 0.01  # Goel et al. (2024) default


@MANIPULATIONS.register("badnet")
@dataclass(frozen=True)
class BadNet:
    name: ClassVar[str] = "badnet"
    target_class: int = 0
    patch_size: int = 3
    fraction: float | None = None
    count: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_range("manipulation.patch_size", self.patch_size, 1)
        check_range("manipulation.target_class", self.target_class, 0)
        check_size("manipulation", self.count, self.fraction)

    def apply(self, splits: DataSplits) -> Manipulated:
        info, train, test = splits.info, splits.train, splits.test
        check_class("manipulation.target_class", self.target_class, info.num_classes)
        height, width = train.images.shape[-2:]
        if self.patch_size > min(height, width):
            raise ConfigError(f"manipulation.patch_size must be at most {min(height, width)}, got {self.patch_size}")
        n = count_from("manipulation", self.count, self.fraction, DEFAULT_FRACTION, len(train))
        generator = torch.Generator().manual_seed(self.seed)
        poisoned = torch.randperm(len(train), generator=generator)[:n].sort().values.to(train.images.device)

        labels = train.labels.clone()
        labels[poisoned] = self.target_class
        poisoned_mask = torch.zeros(len(train), dtype=torch.bool, device=train.images.device)
        poisoned_mask[poisoned] = True
        patch_size = self.patch_size

        def stamp_poisoned(images01: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
            rows = poisoned_mask[index.to(poisoned_mask.device)].to(images01.device)
            if rows.any():
                images01[rows, :, -patch_size:, -patch_size:] = 1.0
            return images01

        triggered_test = ImageSet(stamp_trigger(test.images, patch_size, 255), test.labels, test.ids)
        return Manipulated(
            name=self.name,
            train=unchanged_training_set(splits, labels, stamp_poisoned),
            clean_train_labels=train.labels,
            manipulated=poisoned,
            affected_test=triggered_test,
            retain_test_mask=torch.ones(len(test), dtype=torch.bool, device=test.images.device),
            target_class=self.target_class,
        )
