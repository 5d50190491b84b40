"""Shared fixtures: tiny hand-made datasets and the embedded MNIST."""

from __future__ import annotations

import pytest
import torch

from unlearnkit.data import DataConfig, DatasetInfo, DataSplits, ImageSet, load_data

TINY_INFO = DatasetInfo(name="tiny", num_classes=4, class_names=("a", "b", "c", "d"),
                        mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), hflip=True, crop_padding=2)


def tiny_set(n: int, seed: int, size: int = 8) -> ImageSet:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 200, (n, 3, size, size), dtype=torch.uint8, generator=generator)
    labels = torch.arange(n) % 4
    return ImageSet(images, labels)


@pytest.fixture
def tiny_splits() -> DataSplits:
    """200 training images (50 per class), 20 validation, 40 test; 3x8x8, pixel values below 200."""
    return DataSplits(TINY_INFO, tiny_set(200, 0), tiny_set(20, 1), tiny_set(40, 2))


@pytest.fixture(scope="session")
def mnist_small() -> DataSplits:
    return load_data(DataConfig(name="mnist", train_subset=6000, test_subset=2000, val_size=500, seed=0))


def pytest_collection_modifyitems(config, items) -> None:
    """``lm_finetune`` tests (minutes of real fine-tuning) run only when ``-m`` names them. Browser tests
    run last: the notebooks they open in JupyterLab then find the stages that nbval's runs of the same
    notebooks cached (same parameters, same outputs folder)."""
    if "lm_finetune" not in (config.option.markexpr or ""):
        skip = pytest.mark.skip(reason="fine-tunes the pretrained language model: run with pytest -m lm_finetune")
        for item in items:
            if "lm_finetune" in item.keywords:
                item.add_marker(skip)
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
