"""MNIST, Fashion-MNIST, CIFAR-10/100 and SVHN read through torchvision's dataset classes.

Each split becomes one ``uint8`` tensor ``[N, C, H, W]`` taken straight from the dataset's
``.data`` array, so loading costs one copy at most rather than a Python loop over PIL images.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.error import URLError

import torch

from .core import DatasetInfo, ImageSet
from .mnist_embedded import MNIST_INFO
from .registry import DATASETS, DatasetNotFoundError

DEFAULT_ROOT = "~/.cache/unlearnkit/data"

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
DIGITS = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class _Source:
    """How one dataset is found and read through torchvision."""

    info: DatasetInfo
    dataset_class: str  # attribute of torchvision.datasets
    layout: tuple[str, ...]  # where torchvision looks, relative to the root
    split_argument: bool = False  # SVHN takes split="train"/"test" instead of train=True/False
    channels_last: bool = False  # CIFAR keeps .data as [N, H, W, C]


_SOURCES = {
    "mnist": _Source(MNIST_INFO, "MNIST", ("MNIST/raw",)),
    "fashion-mnist": _Source(
        DatasetInfo("fashion-mnist", 10, FASHION_MNIST_CLASSES, (0.2860,), (0.3530,), hflip=True, crop_padding=2),
        "FashionMNIST", ("FashionMNIST/raw",),
    ),
    "cifar10": _Source(
        DatasetInfo("cifar10", 10, CIFAR10_CLASSES, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
                    hflip=True, crop_padding=4),
        "CIFAR10", ("cifar-10-batches-py",), channels_last=True,
    ),
    "cifar100": _Source(
        # the class names come from the dataset's meta file when it is read
        DatasetInfo("cifar100", 100, tuple(str(c) for c in range(100)), (0.5071, 0.4865, 0.4409),
                    (0.2673, 0.2564, 0.2762), hflip=True, crop_padding=4),
        "CIFAR100", ("cifar-100-python",), channels_last=True,
    ),
    "svhn": _Source(
        # house numbers are digits, whose mirror images are not digits
        DatasetInfo("svhn", 10, DIGITS, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970),
                    hflip=False, crop_padding=4),
        "SVHN", ("train_32x32.mat", "test_32x32.mat"), split_argument=True,
    ),
}

TORCHVISION_DATASETS = tuple(_SOURCES)


def default_root() -> Path:
    """``$UNLEARNKIT_DATA``, else ``~/.cache/unlearnkit/data``."""
    return Path(os.environ.get("UNLEARNKIT_DATA", DEFAULT_ROOT)).expanduser()


def load_torchvision(name: str, root: Path | None, download: bool) -> tuple[DatasetInfo, ImageSet, ImageSet]:
    """Read (and with ``download`` fetch) dataset ``name`` in torchvision's layout under ``root``.

    Returns ``(info, train, test)`` on the CPU. Raises :class:`DatasetNotFoundError`, naming the
    directory looked in, when the files are missing or corrupted and cannot be downloaded.
    """
    source = _SOURCES.get(name)
    if source is None:
        raise ValueError(f"unknown torchvision dataset {name!r}; known: {', '.join(TORCHVISION_DATASETS)}")
    root = Path(root).expanduser() if root is not None else default_root()
    # imported here because torchvision takes seconds to import and the embedded MNIST never needs it
    import torchvision.datasets

    dataset_class = getattr(torchvision.datasets, source.dataset_class)
    splits = []
    for train in (True, False):
        split = {"split": "train" if train else "test"} if source.split_argument else {"train": train}
        try:
            splits.append(dataset_class(str(root), download=download, **split))
        except (RuntimeError, URLError, OSError) as err:
            raise DatasetNotFoundError(_not_found_message(name, root, source, download, err)) from err
        except ModuleNotFoundError as err:  # torchvision reads SVHN's .mat files with scipy, an optional dependency
            raise ModuleNotFoundError(f"loading {name} needs {err.name}: pip install {err.name}") from err
    train_set, test_set = splits

    info = source.info
    classes = tuple(getattr(train_set, "classes", ()))
    if name == "cifar100" and len(classes) == info.num_classes:
        info = replace(info, class_names=classes)
    return info, _as_image_set(train_set, source), _as_image_set(test_set, source)


def _as_image_set(dataset: Any, source: _Source) -> ImageSet:
    images = torch.as_tensor(dataset.data)
    if images.ndim == 3:  # MNIST-likes store grey images as [N, H, W]
        images = images.unsqueeze(1)
    elif source.channels_last:
        images = images.permute(0, 3, 1, 2)
    # SVHN's .labels already maps the digit 0 from its file label 10 to 0
    labels = dataset.targets if hasattr(dataset, "targets") else dataset.labels
    return ImageSet(images.contiguous(), torch.as_tensor(labels, dtype=torch.int64).reshape(-1))


def _not_found_message(name: str, root: Path, source: _Source, download: bool, err: BaseException) -> str:
    where = " and ".join(str(root / part) for part in source.layout)
    problem = "could not be downloaded" if download else "was not found (or is corrupted)"
    return (
        f"dataset {name!r} {problem}; looked in {where} (torchvision: {err}). "
        f"Set data.download=true on a machine with internet access to fetch it into {root}, "
        f"or place torchvision's files in that layout under data.root. "
        "Without any files, the offline default is `name: mnist` with no root (the embedded MNIST)."
    )


@DATASETS.register("fashion-mnist")
def load_fashion_mnist(root: Path | None, download: bool) -> tuple[DatasetInfo, ImageSet, ImageSet]:
    return load_torchvision("fashion-mnist", root, download)


@DATASETS.register("cifar10")
def load_cifar10(root: Path | None, download: bool) -> tuple[DatasetInfo, ImageSet, ImageSet]:
    return load_torchvision("cifar10", root, download)


@DATASETS.register("cifar100")
def load_cifar100(root: Path | None, download: bool) -> tuple[DatasetInfo, ImageSet, ImageSet]:
    return load_torchvision("cifar100", root, download)


@DATASETS.register("svhn")
def load_svhn(root: Path | None, download: bool) -> tuple[DatasetInfo, ImageSet, ImageSet]:
    return load_torchvision("svhn", root, download)
