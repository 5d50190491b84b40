"""Crafted manipulations: attacks that optimise their poisons against a trained model.

Gradient Canceling and Witches' Brew need a model trained on the clean data and minutes to hours of
optimisation, so they split in two steps:

* ``craft(context) -> Crafted``: the expensive, seeded optimisation. The experiment layer caches its
  result in the artifact store under a ``craft-<hash>`` stage (see :mod:`unlearnkit.crafting`), keyed
  by the data, the victim's architecture and recipe and the attack's settings, so every notebook and
  process that prepares the same experiment reads the same poisons;
* ``apply(splits, crafted) -> Manipulated``: cheap and deterministic, like every other manipulation.

A crafted attack is any manipulation config with a ``craft`` method; nothing dispatches on names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import torch

from ..data.core import DataSplits
from ..training import TrainConfig
from .base import Manipulated


@dataclass
class CraftContext:
    """What a crafting step may use besides its own settings.

    The attacker knows the training data, the victim's architecture and training recipe (the gray-box
    setting of Geiping et al. 2021), but not the victim's initialisation or batch order: a surrogate
    comes from ``clean_model(seed)`` with the attack's own seed.
    """

    splits: DataSplits
    model: str
    recipe: TrainConfig
    clean_model: Callable[[int], torch.nn.Module]
    """``clean_model(seed)``: the victim's architecture trained by the kit's trainer on the clean
    training set with ``recipe``, initialised and batched from the attack's ``seed`` (a seed stream
    disjoint from the victims'), in eval mode, on the device."""
    progress: bool = True

    @property
    def device(self) -> torch.device:
        return self.splits.train.images.device


@dataclass
class Crafted:
    """The result of a crafting step: tensors (stored as safetensors) and a JSON-ready summary."""

    tensors: dict[str, torch.Tensor]
    summary: dict[str, Any] = field(default_factory=dict)


class CraftedManipulation(Protocol):
    name: ClassVar[str]

    def craft(self, context: CraftContext) -> Crafted: ...

    def apply(self, splits: DataSplits, crafted: Crafted) -> Manipulated: ...


def is_crafted(manipulation: object) -> bool:
    return callable(getattr(manipulation, "craft", None))
