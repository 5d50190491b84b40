"""What every manipulation returns, and the registry of manipulation configs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch

from ..config import ConfigError, check_range, from_dict
from ..data.core import DataSplits, ImageSet
from ..data.pipeline import PostAugment, TrainingSet
from ..registry import Registry


@dataclass
class Manipulated:
    """A manipulated training set and the test-time domain the manipulation affects.

    Index conventions: ``manipulated`` (S_m) holds positions in ``train``, the training set as the
    model sees it. That is ``splits.train`` with labels, pixels or a post-augmentation hook changed,
    possibly followed by appended samples (poisons crafted from clean ones, near-duplicates);
    ``source`` maps every position of ``train`` to the position in ``splits.train`` of the clean sample
    it comes from. ``affected_test`` (D_m) carries test-set ids in its ``ids``; ``retain_test_mask`` is
    a boolean mask over the test set selecting the samples outside D_m (where Acc_retain is measured).
    """

    name: str
    train: TrainingSet
    clean_train_labels: torch.Tensor
    manipulated: torch.Tensor
    affected_test: ImageSet
    retain_test_mask: torch.Tensor
    target_class: int | None = None
    noise: torch.Tensor | None = None
    """Gaussian poisoning: the noise ``xi`` added to each sample of S_m (float pixels in [0, 1] units,
    aligned with ``manipulated``), kept for the Gaussian Unlearning Score."""
    noise_scale: float | None = None
    """Gaussian poisoning: the standard deviation ``eps`` the noise was drawn with."""
    noise_seed: int | None = None
    """Gaussian poisoning: the seed the noise derives from (control noise uses another stream of it)."""
    source: torch.Tensor | None = None
    """Position in ``splits.train`` of the clean sample behind each position of ``train``; None when
    ``train`` has exactly the samples of ``splits.train`` in the same order."""
    adversarial_labels: torch.Tensor | None = None
    """Targeted poisoning: the label the attacker wants each sample of ``affected_test`` to receive
    (aligned with it); the poison success rate is the share predicted so."""

    def __post_init__(self) -> None:
        if len(self.clean_train_labels) != len(self.train):
            raise ValueError(f"clean_train_labels has {len(self.clean_train_labels)} entries for "
                             f"{len(self.train)} training samples")
        if self.source is not None and len(self.source) != len(self.train):
            raise ValueError(f"source has {len(self.source)} entries for {len(self.train)} training samples")
        if self.noise is not None and (len(self.noise) != len(self.manipulated) or self.noise_scale is None):
            raise ValueError("noise needs one row per manipulated sample and its noise_scale")
        if self.adversarial_labels is not None and len(self.adversarial_labels) != len(self.affected_test):
            raise ValueError(f"adversarial_labels has {len(self.adversarial_labels)} entries for "
                             f"{len(self.affected_test)} affected test samples")

    @property
    def n_manipulated(self) -> int:
        return len(self.manipulated)

    def source_positions(self, positions: torch.Tensor) -> torch.Tensor:
        """Positions in ``splits.train`` of the clean samples behind ``positions`` of ``train``."""
        positions = torch.as_tensor(positions, dtype=torch.int64, device=self.train.images.device)
        return positions if self.source is None else self.source.to(positions.device)[positions]

    def clean_pixels(self, splits: DataSplits, positions: torch.Tensor) -> torch.Tensor:
        """The clean uint8 images behind ``positions`` of ``train`` (before any manipulation)."""
        return splits.train.images[self.source_positions(positions).to(splits.train.images.device)]

    def sample_ids(self, splits: DataSplits, positions: torch.Tensor) -> torch.Tensor:
        """Dataset ids of the clean samples behind ``positions`` (an appended copy has its source's id)."""
        return splits.train.ids[self.source_positions(positions).to(splits.train.ids.device)]

    def as_trained(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training samples at ``positions`` as the model saw them: uint8 pixels (trigger stamped), labels."""
        positions = torch.as_tensor(positions, dtype=torch.int64, device=self.train.images.device)
        pixels = self.train.images[positions]
        if self.train.post_augment is not None:
            stamped = self.train.post_augment(pixels.float() / 255, self.train.index[positions])
            pixels = (stamped * 255).round().clamp(0, 255).to(torch.uint8)
        return pixels, self.train.labels[positions]


class ManipulationConfig(Protocol):
    name: ClassVar[str]

    def apply(self, splits: DataSplits) -> Manipulated: ...


MANIPULATIONS: Registry[type] = Registry("manipulation")


def build_manipulation(values: Mapping[str, Any]) -> ManipulationConfig:
    """``{"name": "badnet", ...}`` -> the validated config of that manipulation."""
    values = dict(values)
    if "name" not in values:
        raise ConfigError(f"manipulation needs a 'name' (one of {', '.join(MANIPULATIONS.names())})")
    cls = MANIPULATIONS.get(values.pop("name"))
    return from_dict(cls, values, prefix="manipulation.")


def check_size(name: str, count: int | None, fraction: float | None) -> None:
    """Dataset-independent checks of a size given as ``count`` or ``fraction`` (before any data is loaded)."""
    if count is not None and fraction is not None:
        raise ConfigError(f"{name}: give only one of 'count' and 'fraction', got both")
    if fraction is not None:
        check_range(f"{name}.fraction", fraction, 0.0, 1.0, low_open=True)
    if count is not None:
        check_range(f"{name}.count", count, 1)


def count_from(name: str, count: int | None, fraction: float | None, default_fraction: float,
               population: int) -> int:
    """Resolve a size given as an absolute ``count`` or a ``fraction`` of ``population`` (not both)."""
    if count is not None and fraction is not None:
        raise ConfigError(f"{name}: give only one of 'count' and 'fraction', got both")
    if count is None:
        fraction = default_fraction if fraction is None else fraction
        check_range(f"{name}.fraction", fraction, 0.0, 1.0, low_open=True)
        count = int(math.floor(fraction * population + 0.5))
    check_range(f"{name}.count", count, 1, population)
    return count


def check_class(name: str, value: int, num_classes: int) -> None:
    if not 0 <= value < num_classes:
        raise ConfigError(f"{name} must be a class in [0, {num_classes - 1}], got {value}")


def unchanged_training_set(splits: DataSplits, labels: torch.Tensor, hook: PostAugment | None) -> TrainingSet:
    train = splits.train
    index = torch.arange(len(train), device=train.images.device)
    return TrainingSet(train.images, labels, index, hook)
