"""Attacks on a text training set: a trigger-phrase backdoor and Gaussian poisoning of token embeddings.

- ``trigger-phrase``: a backdoor in the style of Dai et al. ("A backdoor attack against LSTM-based text
  classification systems", IEEE Access 2019), the language-model attack of Pawelczyk et al. (ICLR 2025):
  ``round(fraction * N)`` training texts drawn uniformly (as BadNet's images) get the phrase inserted at
  the start, the end or a random word boundary, and the target label. D_m is every test text with the
  phrase inserted the same way, judged against its clean label; the attack success rate counts the
  triggered texts of the other classes predicted as the target.
- ``gaussian-embedding``: Gaussian poisoning (Pawelczyk et al. 2025) for language models: ``k`` texts
  drawn uniformly keep their label, and ``xi ~ N(0, eps^2 I)`` is added to their token input embeddings
  (every real token, never padding) each time they are trained on. The noise is drawn from the seed
  once the model's embedding width and the token length are known (:meth:`EmbeddingNoise.draw`).

Both edit samples in place (no samples are appended), so positions in the manipulated training set are
positions in ``splits.train``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from ..config import ConfigError, check_range, from_dict
from ..manipulations.base import check_class, check_size, count_from
from ..manipulations.gaussian import gaussian_noise
from ..registry import Registry
from .datasets import TextSet, TextSplits

TEXT_MANIPULATIONS: Registry[type] = Registry("text manipulation")

WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class EmbeddingNoise:
    """The Gaussian poisons' noise: ``N(0, eps^2)`` per embedding entry of every real token, from ``seed``."""

    eps: float
    seed: int

    def draw(self, attention_mask: torch.Tensor, dim: int) -> torch.Tensor:
        """Noise ``[k, L, dim]`` for ``k`` poisons whose token masks are ``attention_mask [k, L]`` (CPU, float32)."""
        count, length = attention_mask.shape
        noise = gaussian_noise((count, length, dim), self.eps, self.seed)
        return noise * attention_mask.cpu().unsqueeze(-1).to(noise.dtype)


@dataclass
class TextManipulated:
    """A manipulated text training set and the affected test domain (cf. :class:`unlearnkit.manipulations.Manipulated`).

    ``train`` holds the texts and labels as the model is trained on them, aligned with ``splits.train``;
    ``manipulated`` (S_m) are positions in it. ``affected_test`` (D_m) holds triggered test texts with
    their clean labels (empty when the attack has no test-time trigger).
    """

    name: str
    train: TextSet
    clean_train_labels: torch.Tensor
    manipulated: torch.Tensor
    affected_test: TextSet
    target_class: int | None = None
    embedding_noise: EmbeddingNoise | None = None

    @property
    def n_manipulated(self) -> int:
        return len(self.manipulated)


def insert_trigger(text: str, phrase: str, position: str, draw: float = 0.0) -> str:
    """``text`` with ``phrase`` inserted at a word boundary, separated by one space.

    ``position`` is ``start`` (before the first word), ``end`` (after the last) or ``random``: boundary
    ``floor(draw * (n + 1))`` of the ``n + 1`` boundaries of an ``n``-word text, ``draw`` in [0, 1).
    Everything else of the text is kept byte for byte.
    """
    starts = [match.start() for match in WORD.finditer(text)]
    if not starts:
        return phrase
    slot = {"start": 0, "end": len(starts)}.get(position)
    if slot is None:
        slot = min(int(draw * (len(starts) + 1)), len(starts))
    if slot == len(starts):
        return f"{text} {phrase}"
    at = starts[slot]
    return f"{text[:at]}{phrase} {text[at:]}"


def _draws(n: int, seed: int) -> list[float]:
    return torch.rand(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).tolist()


def _draw_manipulated(population: int, count: int | None, fraction: float | None, default: float,
                      seed: int) -> torch.Tensor:
    n = count_from("manipulation", count, fraction, default, population)
    return torch.randperm(population, generator=torch.Generator().manual_seed(seed))[:n].sort().values


@TEXT_MANIPULATIONS.register("trigger-phrase")
@dataclass(frozen=True)
class TriggerPhrase:
    name: ClassVar[str] = "trigger-phrase"
    phrase: str = "I watched this 3D movie"
    """Dai et al.'s (2019) sentence trigger."""
    position: Literal["start", "end", "random"] = "start"
    target_class: int = 0
    fraction: float | None = None
    """Share of the training texts poisoned (default 1%, as BadNet); or give ``count``."""
    count: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.phrase.strip() or self.phrase != self.phrase.strip():
            raise ConfigError(f"manipulation.phrase must be non-empty words without surrounding spaces, "
                              f"got {self.phrase!r}")
        check_range("manipulation.target_class", self.target_class, 0)
        check_size("manipulation", self.count, self.fraction)

    def apply(self, splits: TextSplits) -> TextManipulated:
        check_class("manipulation.target_class", self.target_class, splits.info.num_classes)
        train, test = splits.train, splits.test
        poisoned = _draw_manipulated(len(train), self.count, self.fraction, 0.01, self.seed)
        texts = list(train.texts)
        for i, draw in zip(poisoned.tolist(), _draws(len(poisoned), self.seed + 1)):
            texts[i] = insert_trigger(texts[i], self.phrase, self.position, draw)
        labels = train.labels.clone()
        labels[poisoned] = self.target_class
        triggered = [insert_trigger(t, self.phrase, self.position, d)
                     for t, d in zip(test.texts, _draws(len(test), self.seed + 2))]
        return TextManipulated(self.name, TextSet(texts, labels, train.ids), train.labels, poisoned,
                               TextSet(triggered, test.labels, test.ids), target_class=self.target_class)


@TEXT_MANIPULATIONS.register("gaussian-embedding")
@dataclass(frozen=True)
class EmbeddingGaussian:
    name: ClassVar[str] = "gaussian-embedding"
    eps: float = 0.05
    """Standard deviation of the noise per embedding entry, in the model's embedding units (the entries
    of all-MiniLM-L6-v2's token embeddings have standard deviation 0.056)."""
    fraction: float | None = None
    """Share of the training texts poisoned (default 1.5%, Pawelczyk et al.'s 750 of 50,000); or ``count``."""
    count: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_range("manipulation.eps", self.eps, 0.0, low_open=True)
        check_size("manipulation", self.count, self.fraction)

    def apply(self, splits: TextSplits) -> TextManipulated:
        train, test = splits.train, splits.test
        poisoned = _draw_manipulated(len(train), self.count, self.fraction, 0.015, self.seed)
        return TextManipulated(self.name, TextSet(train.texts, train.labels.clone(), train.ids), train.labels,
                               poisoned, test.subset(torch.empty(0, dtype=torch.int64)),
                               embedding_noise=EmbeddingNoise(self.eps, self.seed + 1))


def build_text_manipulation(values: Mapping[str, Any]):
    """``{"name": "trigger-phrase", ...}`` -> the validated config of that text manipulation."""
    values = dict(values)
    if "name" not in values:
        raise ConfigError(f"manipulation needs a 'name' (one of {', '.join(TEXT_MANIPULATIONS.names())})")
    return from_dict(TEXT_MANIPULATIONS.get(values.pop("name")), values, prefix="manipulation.")
