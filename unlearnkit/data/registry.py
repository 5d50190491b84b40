"""The dataset registry and the validated :class:`DataConfig` that loads a :class:`DataSplits`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from ..config import ConfigError, check_range
from ..registry import Registry
from .core import DatasetInfo, DataSplits, ImageSet, carve_validation, take_subset

RawLoader = Callable[[Path | None, bool], tuple[DatasetInfo, ImageSet, ImageSet]]
"""``loader(root, download) -> (info, train, test)`` with uint8 tensors on the CPU."""

DATASETS: Registry[RawLoader] = Registry("dataset")


class DatasetNotFoundError(FileNotFoundError):
    """The data is neither on disk nor downloadable; the message says where we looked and what to do."""


@dataclass(frozen=True)
class DataConfig:
    """Which dataset to load and how to split it.

    ``root=None`` with ``name="mnist"`` uses the embedded offline copy of MNIST; every other dataset
    (and MNIST from files) reads torchvision's on-disk format under ``root``, downloading it there
    when ``download`` is true.
    """

    name: str = "mnist"
    root: str | None = None
    download: bool = False
    val_size: int = 5000
    train_subset: int | None = None
    test_subset: int | None = None
    seed: int = 0

    datasets: ClassVar = DATASETS
    """The registry ``name`` is looked up in (the text data sets subclass this config with theirs)."""

    def __post_init__(self) -> None:
        if self.name.lower() not in self.datasets:
            self.datasets.get(self.name)  # raises with the known names
        check_range("data.val_size", self.val_size, 0)
        for key in ("train_subset", "test_subset"):
            value = getattr(self, key)
            if value is not None:
                check_range(f"data.{key}", value, 1)
        if self.train_subset is not None and self.val_size >= self.train_subset:
            raise ConfigError(
                f"data.val_size ({self.val_size}) must be smaller than data.train_subset ({self.train_subset})"
            )


@functools.lru_cache(maxsize=4)
def _load_raw(name: str, root: str | None, download: bool) -> tuple[DatasetInfo, ImageSet, ImageSet]:
    return DATASETS.get(name)(Path(root).expanduser() if root else None, download)


def load_data(config: DataConfig, device: torch.device | str = "cpu") -> DataSplits:
    """Load, subset and split a dataset, with every tensor on ``device``.

    The validation split is carved from the (possibly subset) training set with ``config.seed``;
    sample ids of train and validation refer to positions in the full training set.
    """
    info, train, test = _load_raw(config.name.lower(), config.root, config.download)
    train = take_subset(train, config.train_subset, config.seed, "data.train_subset")
    test = take_subset(test, config.test_subset, config.seed + 1, "data.test_subset")
    train, val = carve_validation(train, config.val_size, config.seed)
    return DataSplits(info, train, val, test).to(device)
