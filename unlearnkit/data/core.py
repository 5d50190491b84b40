"""In-memory image datasets as uint8 tensors, and their train / validation / test splits."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..config import ConfigError


@dataclass
class ImageSet:
    """Images as a ``uint8`` tensor ``[N, C, H, W]`` with ``int64`` labels ``[N]``.

    ``ids`` are the positions of the samples in the split they were drawn from (the full training
    set for train/validation, the test set for test), so results line up with sample ids.
    """

    images: torch.Tensor
    labels: torch.Tensor
    ids: torch.Tensor = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 [N, C, H, W], got {self.images.dtype} {tuple(self.images.shape)}")
        self.labels = self.labels.to(torch.int64)
        if self.labels.shape != (len(self.images),):
            raise ValueError(f"labels must have shape ({len(self.images)},), got {tuple(self.labels.shape)}")
        if self.ids is None:
            self.ids = torch.arange(len(self.images))
        self.ids = self.ids.to(torch.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, positions: torch.Tensor) -> ImageSet:
        """The samples at ``positions`` (indices into this set, not ids)."""
        positions = torch.as_tensor(positions, dtype=torch.int64, device=self.images.device)
        return ImageSet(self.images[positions], self.labels[positions], self.ids.to(positions.device)[positions])

    def to(self, device: torch.device | str) -> ImageSet:
        return ImageSet(self.images.to(device), self.labels.to(device), self.ids.to(device))


@dataclass
class DatasetInfo:
    """What a model and the batch pipeline need to know about a dataset."""

    name: str
    num_classes: int
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    hflip: bool  # horizontal flips preserve the label (false for digits)
    crop_padding: int

    @property
    def in_channels(self) -> int:
        return len(self.mean)


@dataclass
class DataSplits:
    """A dataset's training set (without the validation carve-out), validation set and test set."""

    info: DatasetInfo
    train: ImageSet
    val: ImageSet
    test: ImageSet

    def to(self, device: torch.device | str) -> DataSplits:
        return DataSplits(self.info, self.train.to(device), self.val.to(device), self.test.to(device))


def carve_validation(train: ImageSet, val_size: int, seed: int) -> tuple[ImageSet, ImageSet]:
    """Split ``val_size`` samples off ``train`` with a seeded permutation (never the test set).

    The validation set exists for model selection without test labels (Goel et al. 2024, Sec. 4).
    """
    if not 0 <= val_size < len(train):
        raise ConfigError(f"val_size must be in [0, {len(train) - 1}], got {val_size}")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(train), generator=generator)
    val_pos, train_pos = order[:val_size].sort().values, order[val_size:].sort().values
    return train.subset(train_pos), train.subset(val_pos)


def take_subset(images: ImageSet, size: int | None, seed: int, name: str) -> ImageSet:
    """A seeded class-agnostic random subset of ``size`` samples (all when ``size`` is None)."""
    if size is None or size >= len(images):
        return images
    if size <= 0:
        raise ConfigError(f"{name} must be positive, got {size}")
    generator = torch.Generator().manual_seed(seed)
    positions = torch.randperm(len(images), generator=generator)[:size].sort().values
    return images.subset(positions)
