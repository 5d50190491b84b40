"""Random label flipping: the cheap baseline of indiscriminate poisoning (Lu et al. 2023 compare Gradient
Canceling against it; Pawelczyk et al. 2025 use both).

``n = round(fraction * N)`` training samples drawn uniformly each get a label drawn uniformly from the
*other* classes. By default they are added as extra copies after the clean training set, the threat
model of Gradient Canceling (an attacker who adds ``eps * N`` samples), so the two compare at the same
budget; ``append: false`` relabels the chosen samples in place instead (classic label noise). Either
way the flipped samples form S_m and D_m is the whole test set (the metric is the clean accuracy drop).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..data.core import DataSplits
from .appended import appended_poisons
from .base import MANIPULATIONS, Manipulated, check_size, count_from, unchanged_training_set

DEFAULT_FRACTION = 0.03  # the same budget as Gradient Canceling's default


def flipped_labels(labels: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """Each label replaced by one drawn uniformly from the other ``num_classes - 1`` classes."""
    shift = torch.randint(1, num_classes, labels.shape, generator=generator)
    return (labels.cpu() + shift) % num_classes


@MANIPULATIONS.register("label-flip")
@dataclass(frozen=True)
class LabelFlip:
    name: ClassVar[str] = "label-flip"
    fraction: float | None = None
    count: int | None = None
    append: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        check_size("manipulation", self.count, self.fraction)

    def apply(self, splits: DataSplits) -> Manipulated:
        train, test = splits.train, splits.test
        device = train.images.device
        n = count_from("manipulation", self.count, self.fraction, DEFAULT_FRACTION, len(train))
        generator = torch.Generator().manual_seed(self.seed)
        chosen = torch.randperm(len(train), generator=generator)[:n].sort().values
        wrong = flipped_labels(train.labels.cpu()[chosen], splits.info.num_classes, generator).to(device)
        chosen = chosen.to(device)
        if self.append:
            return appended_poisons(self.name, splits, train.images[chosen], wrong, chosen)
        labels = train.labels.clone()
        labels[chosen] = wrong
        return Manipulated(
            name=self.name,
            train=unchanged_training_set(splits, labels, None),
            clean_train_labels=train.labels,
            manipulated=chosen,
            affected_test=test,
            retain_test_mask=torch.zeros(len(test), dtype=torch.bool, device=test.images.device),
        )
