"""Interclass Confusion (Goel et al. 2024): swap the labels of samples from two classes A and B.

``count / 2`` randomly chosen samples of A are labelled B and as many of B are labelled A, so the
model learns to confuse the pair. D_m is the test images of A and B with their clean labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..config import ConfigError
from ..data.core import DataSplits
from .base import MANIPULATIONS, Manipulated, check_class, check_size, count_from, unchanged_training_set

DEFAULT_FRACTION = 0.1  # Goel et al. (2024) default


@MANIPULATIONS.register("interclass")
@dataclass(frozen=True)
class InterclassConfusion:
    name: ClassVar[str] = "interclass"
    class_a: int = 3
    class_b: int = 5
    fraction: float | None = None
    count: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.class_a == self.class_b:
            raise ConfigError(f"manipulation.class_a and class_b must differ, both are {self.class_a}")
        check_size("manipulation", self.count, self.fraction)

    def apply(self, splits: DataSplits) -> Manipulated:
        info, train, test = splits.info, splits.train, splits.test
        check_class("manipulation.class_a", self.class_a, info.num_classes)
        check_class("manipulation.class_b", self.class_b, info.num_classes)
        n = count_from("manipulation", self.count, self.fraction, DEFAULT_FRACTION, len(train))
        if n % 2:
            raise ConfigError(f"manipulation.count must be even (n/2 samples of each class are swapped), got {n}")
        generator = torch.Generator().manual_seed(self.seed)
        labels_cpu = train.labels.cpu()
        chosen = []
        for source in (self.class_a, self.class_b):
            members = (labels_cpu == source).nonzero().flatten()
            if n // 2 > len(members):
                raise ConfigError(
                    f"manipulation.count={n} needs {n // 2} samples of class {source}, "
                    f"but the training set has only {len(members)}"
                )
            chosen.append(members[torch.randperm(len(members), generator=generator)[: n // 2]])
        from_a, from_b = (c.to(train.labels.device) for c in chosen)

        labels = train.labels.clone()
        labels[from_a] = self.class_b
        labels[from_b] = self.class_a
        in_pair = (test.labels == self.class_a) | (test.labels == self.class_b)
        return Manipulated(
            name=self.name,
            train=unchanged_training_set(splits, labels, None),
            clean_train_labels=train.labels,
            manipulated=torch.cat([from_a, from_b]).sort().values,
            affected_test=test.subset(in_pair.nonzero().flatten()),
            retain_test_mask=~in_pair,
        )
