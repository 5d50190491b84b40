"""The torchvision-backed loaders on tiny fake datasets written in the real on-disk formats.

torchvision checks CIFAR and SVHN files against the md5s of the real downloads; the tests point
those expected md5s at the fake files (``monkeypatch`` on the dataset class), so the integrity
check itself still runs. MNIST-likes are only checked for existence.
"""

from __future__ import annotations

import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd

import unlearnkit.data  # noqa: F401  (registers the datasets)
from unlearnkit.data.registry import DATASETS, DataConfig, DatasetNotFoundError, load_data
from unlearnkit.data.torchvision_sets import CIFAR10_CLASSES, load_torchvision

N_TRAIN, N_TEST = 6, 4


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _fake_images(n: int, channels: int, size: int, seed: int) -> np.ndarray:
    """Distinct random ``uint8`` images ``[N, C, H, W]``: the ground truth each file encodes."""
    return np.random.default_rng(seed).integers(0, 256, (n, channels, size, size), dtype=np.uint8)


def _fake_labels(n: int, num_classes: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, num_classes, n).astype(np.int64)


def _pickle(path: Path, obj: dict) -> None:
    # Python-2 pickles of the real files unpickle (with torchvision's encoding="latin1") to str keys
    path.write_bytes(pickle.dumps(obj, protocol=2))


def _write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    """MNIST's idx format: big-endian magic (0x0803 images / 0x0801 labels), sizes, then uint8 bytes."""
    n, _, h, w = images.shape
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">4I", 0x0803, n, h, w) + images.tobytes())
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
        struct.pack(">2I", 0x0801, n) + labels.astype(np.uint8).tobytes()
    )


def write_mnist_like(root: Path, folder: str) -> dict[str, np.ndarray]:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    truth = {
        "train_x": _fake_images(N_TRAIN, 1, 28, 1), "train_y": _fake_labels(N_TRAIN, 10, 2),
        "test_x": _fake_images(N_TEST, 1, 28, 3), "test_y": _fake_labels(N_TEST, 10, 4),
    }
    _write_idx(raw, "train", truth["train_x"], truth["train_y"])
    _write_idx(raw, "t10k", truth["test_x"], truth["test_y"])
    return truth


def write_cifar10(root: Path, monkeypatch: pytest.MonkeyPatch, n_train: int = N_TRAIN,
                  n_test: int = N_TEST) -> dict[str, np.ndarray]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    truth = {
        "train_x": _fake_images(n_train, 3, 32, 5), "train_y": _fake_labels(n_train, 10, 6),
        "test_x": _fake_images(n_test, 3, 32, 7), "test_y": _fake_labels(n_test, 10, 8),
    }
    truth["train_x"][0] = 0
    truth["train_x"][0, 0] = 255  # pure red: channel 0 must stay the red plane
    # each row of "data" is 1024 red, 1024 green, 1024 blue bytes, i.e. a flattened [C, H, W]
    batches = np.array_split(np.arange(n_train), 5)  # five batches, as many as the real set
    for i, positions in enumerate(batches, start=1):
        _pickle(folder / f"data_batch_{i}", {
            "batch_label": f"training batch {i} of 5",
            "data": truth["train_x"][positions].reshape(len(positions), -1),
            "labels": truth["train_y"][positions].tolist(),
            "filenames": [f"train_{p}.png" for p in positions],
        })
    _pickle(folder / "test_batch", {
        "batch_label": "testing batch 1 of 1",
        "data": truth["test_x"].reshape(n_test, -1),
        "labels": truth["test_y"].tolist(),
        "filenames": [f"test_{p}.png" for p in range(n_test)],
    })
    _pickle(folder / "batches.meta", {"label_names": list(CIFAR10_CLASSES), "num_cases_per_batch": 2, "num_vis": 3072})
    monkeypatch.setattr(tvd.CIFAR10, "train_list", [[f"data_batch_{i}", _md5(folder / f"data_batch_{i}")]
                                                    for i in range(1, 6)])
    monkeypatch.setattr(tvd.CIFAR10, "test_list", [["test_batch", _md5(folder / "test_batch")]])
    monkeypatch.setattr(tvd.CIFAR10, "meta", {**tvd.CIFAR10.meta, "md5": _md5(folder / "batches.meta")})
    return truth


CIFAR100_NAMES = [f"fine_{c:02d}" for c in range(100)]


def write_cifar100(root: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, np.ndarray]:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    truth = {
        "train_x": _fake_images(N_TRAIN, 3, 32, 9), "train_y": _fake_labels(N_TRAIN, 100, 10),
        "test_x": _fake_images(N_TEST, 3, 32, 11), "test_y": _fake_labels(N_TEST, 100, 12),
    }
    for split in ("train", "test"):
        x, y = truth[f"{split}_x"], truth[f"{split}_y"]
        _pickle(folder / split, {
            "filenames": [f"{split}_{p}.png" for p in range(len(y))],
            "batch_label": f"{split}ing batch 1 of 1",
            "fine_labels": y.tolist(),
            "coarse_labels": (y // 5).tolist(),
            "data": x.reshape(len(x), -1),
        })
    _pickle(folder / "meta", {"fine_label_names": CIFAR100_NAMES,
                              "coarse_label_names": [f"coarse_{c:02d}" for c in range(20)]})
    monkeypatch.setattr(tvd.CIFAR100, "train_list", [["train", _md5(folder / "train")]])
    monkeypatch.setattr(tvd.CIFAR100, "test_list", [["test", _md5(folder / "test")]])
    monkeypatch.setattr(tvd.CIFAR100, "meta", {**tvd.CIFAR100.meta, "md5": _md5(folder / "meta")})
    return truth


def write_svhn(root: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, np.ndarray]:
    from scipy.io import savemat

    root.mkdir(parents=True, exist_ok=True)
    truth = {
        "train_x": _fake_images(N_TRAIN, 3, 32, 13), "train_y": np.array([0, 1, 2, 0, 9, 5]),
        "test_x": _fake_images(N_TEST, 3, 32, 14), "test_y": np.array([3, 0, 7, 8]),
    }
    split_list = {key: list(value) for key, value in tvd.SVHN.split_list.items()}
    for split in ("train", "test"):
        path = root / f"{split}_32x32.mat"
        digits = truth[f"{split}_y"]
        # the .mat files hold X as [H, W, C, N] and label the digit 0 as 10
        savemat(path, {"X": truth[f"{split}_x"].transpose(2, 3, 1, 0),
                       "y": np.where(digits == 0, 10, digits).astype(np.uint8)[:, None]})
        split_list[split][2] = _md5(path)
    monkeypatch.setattr(tvd.SVHN, "split_list", split_list)
    return truth


def _write(name: str, root: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, np.ndarray]:
    if name == "mnist":
        return write_mnist_like(root, "MNIST")
    if name == "fashion-mnist":
        return write_mnist_like(root, "FashionMNIST")
    return {"cifar10": write_cifar10, "cifar100": write_cifar100, "svhn": write_svhn}[name](root, monkeypatch)


EXPECTED = {  # name -> (channels, size, hflip, crop_padding, a class name)
    "mnist": (1, 28, False, 2, "0"),
    "fashion-mnist": (1, 28, True, 2, "Ankle boot"),
    "cifar10": (3, 32, True, 4, "airplane"),
    "cifar100": (3, 32, True, 4, "fine_00"),
    "svhn": (3, 32, False, 4, "0"),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_loader_returns_the_exact_pixels_and_labels(name, tmp_path, monkeypatch):
    truth = _write(name, tmp_path, monkeypatch)
    info, train, test = DATASETS.get(name)(tmp_path, False)

    channels, size, hflip, crop_padding, class_name = EXPECTED[name]
    assert info.name == name and info.num_classes == len(info.class_names)
    assert info.in_channels == channels and (info.hflip, info.crop_padding) == (hflip, crop_padding)
    assert class_name in info.class_names
    for split, images in (("train", train), ("test", test)):
        x, y = truth[f"{split}_x"], truth[f"{split}_y"]
        assert images.images.dtype == torch.uint8 and images.images.shape == (len(x), channels, size, size)
        assert torch.equal(images.images, torch.from_numpy(x))
        assert images.labels.dtype == torch.int64 and torch.equal(images.labels, torch.from_numpy(y))
        assert torch.equal(images.ids, torch.arange(len(x)))


def test_cifar_keeps_rgb_order_and_cifar100_takes_class_names_from_meta(tmp_path, monkeypatch):
    write_cifar10(tmp_path / "c10", monkeypatch)
    _, train, _ = load_torchvision("cifar10", tmp_path / "c10", False)
    assert train.images[0, 0].eq(255).all() and train.images[0, 1:].eq(0).all()

    write_cifar100(tmp_path / "c100", monkeypatch)
    info, _, _ = load_torchvision("cifar100", tmp_path / "c100", False)
    assert info.class_names == tuple(CIFAR100_NAMES)


@pytest.mark.parametrize("name, looked_in", [
    ("mnist", "MNIST/raw"),
    ("fashion-mnist", "FashionMNIST/raw"),
    ("cifar10", "cifar-10-batches-py"),
    ("cifar100", "cifar-100-python"),
    ("svhn", "train_32x32.mat"),
])
def test_missing_files_name_the_directory_looked_in(name, looked_in, tmp_path):
    with pytest.raises(DatasetNotFoundError) as caught:
        DATASETS.get(name)(tmp_path, False)
    message = str(caught.value)
    assert name in message and str(tmp_path / looked_in) in message
    assert "data.download=true" in message and "name: mnist" in message


def test_default_root_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNKIT_DATA", str(tmp_path / "cache"))
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-py"):
        load_torchvision("cifar10", None, False)
    write_cifar10(tmp_path / "cache", monkeypatch)
    _, train, _ = load_torchvision("cifar10", None, False)
    assert len(train) == N_TRAIN


def test_failed_download_is_a_dataset_not_found_error(tmp_path, monkeypatch):
    from urllib.error import URLError

    def offline(self):
        raise URLError("network is unreachable")

    monkeypatch.setattr(tvd.CIFAR10, "download", offline)
    with pytest.raises(DatasetNotFoundError, match="could not be downloaded") as caught:
        load_torchvision("cifar10", tmp_path, True)
    assert str(tmp_path / "cifar-10-batches-py") in str(caught.value)


def test_load_data_end_to_end(tmp_path, monkeypatch):
    truth = write_cifar10(tmp_path, monkeypatch)
    splits = load_data(DataConfig(name="cifar10", root=str(tmp_path), val_size=2))

    assert splits.info.name == "cifar10" and splits.info.class_names == CIFAR10_CLASSES
    assert (len(splits.train), len(splits.val), len(splits.test)) == (N_TRAIN - 2, 2, N_TEST)
    assert sorted(torch.cat([splits.train.ids, splits.val.ids]).tolist()) == list(range(N_TRAIN))
    for part in (splits.train, splits.val):
        assert torch.equal(part.images, torch.from_numpy(truth["train_x"][part.ids.numpy()]))
        assert torch.equal(part.labels, torch.from_numpy(truth["train_y"][part.ids.numpy()]))
    assert torch.equal(splits.test.images, torch.from_numpy(truth["test_x"]))
