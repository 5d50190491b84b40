"""BadNet backdoor poisoning (Gu et al. 2019), as used for corrective unlearning by Goel et al. (2024).

``count`` training samples drawn uniformly from the whole training set get the target label and a
``patch_size x patch_size`` patch of maximum intensity in the bottom-right corner on every channel.
The trigger is stamped after augmentation, so crops and flips never move it. D_m is the whole test
set with the trigger, judged against the clean labels.

The patch may be moved (``row``, ``col``: its top-left pixel) and dimmed (``value``: its intensity as a
share of the maximum, quantised to the 256 levels of the stored images), for designing triggers; the
defaults are Gu et al.'s white bottom-right square.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..config import ConfigError, check_range
from ..data.core import DataSplits, ImageSet
from .base import MANIPULATIONS, Manipulated, check_class, check_size, count_from, unchanged_training_set


def trigger_window(height: int, width: int, patch_size: int, row: int | None = None,
                   col: int | None = None) -> tuple[slice, slice]:
    """Rows and columns of the patch; ``None`` puts it flush with the bottom / right edge."""
    top = height - patch_size if row is None else row
    left = width - patch_size if col is None else col
    return slice(top, top + patch_size), slice(left, left + patch_size)


def stamp_trigger(images: torch.Tensor, patch_size: int, value: float, row: int | None = None,
                  col: int | None = None) -> torch.Tensor:
    """A copy of ``images`` (``[..., H, W]``) whose ``patch_size`` square at ``(row, col)`` (default: the
    bottom-right corner) is ``value`` on every channel."""
    stamped = images.clone()
    rows, cols = trigger_window(*images.shape[-2:], patch_size, row, col)
    stamped[..., rows, cols] = value
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
    row: int | None = None
    """Top row of the patch; None: flush with the bottom edge."""
    col: int | None = None
    """Left column of the patch; None: flush with the right edge."""
    value: float = 1.0
    """Intensity of the patch as a share of the maximum pixel value (1.0: white)."""

    def __post_init__(self) -> None:
        check_range("manipulation.patch_size", self.patch_size, 1)
        check_range("manipulation.target_class", self.target_class, 0)
        check_size("manipulation", self.count, self.fraction)
        for name in ("row", "col"):
            if getattr(self, name) is not None:
                check_range(f"manipulation.{name}", getattr(self, name), 0)
        check_range("manipulation.value", self.value, 0.0, 1.0)

    @property
    def level(self) -> int:
        """The patch's pixel value in the stored uint8 images (train and test triggers are identical)."""
        return round(self.value * 255)

    def apply(self, splits: DataSplits) -> Manipulated:
        info, train, test = splits.info, splits.train, splits.test
        check_class("manipulation.target_class", self.target_class, info.num_classes)
        height, width = train.images.shape[-2:]
        if self.patch_size > min(height, width):
            raise ConfigError(f"manipulation.patch_size must be at most {min(height, width)}, got {self.patch_size}")
        for name, position, size in (("row", self.row, height), ("col", self.col, width)):
            if position is not None and position + self.patch_size > size:
                raise ConfigError(f"manipulation.{name} must be at most {size - self.patch_size} for a patch of "
                                  f"{self.patch_size} pixels on {height}x{width} images, got {position}")
        n = count_from("manipulation", self.count, self.fraction, DEFAULT_FRACTION, len(train))
        generator = torch.Generator().manual_seed(self.seed)
        poisoned = torch.randperm(len(train), generator=generator)[:n].sort().values.to(train.images.device)

        labels = train.labels.clone()
        labels[poisoned] = self.target_class
        poisoned_mask = torch.zeros(len(train), dtype=torch.bool, device=train.images.device)
        poisoned_mask[poisoned] = True
        window_rows, window_cols = trigger_window(height, width, self.patch_size, self.row, self.col)
        level = self.level

        def stamp_poisoned(images01: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
            rows = poisoned_mask[index.to(poisoned_mask.device)].to(images01.device)
            if rows.any():
                images01[rows, :, window_rows, window_cols] = level / 255
            return images01

        triggered_test = ImageSet(stamp_trigger(test.images, self.patch_size, level, self.row, self.col),
                                  test.labels, test.ids)
        return Manipulated(
            name=self.name,
            train=unchanged_training_set(splits, labels, stamp_poisoned),
            clean_train_labels=train.labels,
            manipulated=poisoned,
            affected_test=triggered_test,
            retain_test_mask=torch.ones(len(test), dtype=torch.bool, device=test.images.device),
            target_class=self.target_class,
        )
