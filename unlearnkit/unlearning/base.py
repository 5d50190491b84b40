"""The one interface every unlearning method implements, and the method registry.

A method gets the original model M_o and an :class:`UnlearningTask` (retain / forget / validation
data, the original training recipe, a model factory), its own typed hyper-parameters, a
:class:`Budget` and a seed; it returns a new model and what the unlearning cost. Methods never
touch the original model in place.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from ..config import ConfigError, check_range, from_dict
from ..data.core import DatasetInfo, ImageSet
from ..data.pipeline import TrainingSet
from ..registry import Registry
from ..training import TrainConfig


@dataclass(frozen=True)
class Budget:
    """Optimiser steps for an unlearning run: absolute ``steps`` or a ``fraction`` of the original training.

    Pawelczyk et al. (2025) compare methods at up to ~10% of the original compute; Goel et al. (2024)
    fine-tune for 1000 steps = 1/4 of training. ``None`` for both means the method's own default.
    """

    steps: int | None = None
    fraction: float | None = None

    def __post_init__(self) -> None:
        if self.steps is not None and self.fraction is not None:
            raise ConfigError("budget: give only one of 'steps' and 'fraction', got both")
        if self.steps is not None:
            check_range("budget.steps", self.steps, 1)
        if self.fraction is not None:
            check_range("budget.fraction", self.fraction, 0.0, low_open=True)

    def resolve(self, original_steps: int, default_steps: int) -> int:
        if self.steps is not None:
            return self.steps
        if self.fraction is not None:
            return max(1, round(self.fraction * original_steps))
        return default_steps


@dataclass
class UnlearningTask:
    """Everything a method may use. ``retain`` never contains a sample of ``forget``."""

    original: torch.nn.Module
    info: DatasetInfo
    retain: TrainingSet
    forget: TrainingSet
    validation: ImageSet
    recipe: TrainConfig
    new_model: Callable[[int], torch.nn.Module]
    """``new_model(seed)``: a freshly initialised model of the original architecture, on the device."""

    def __post_init__(self) -> None:
        if len(self.forget) == 0:
            raise ConfigError("the forget set S_f is empty: nothing to unlearn")
        if torch.isin(self.retain.index, self.forget.index).any():
            raise ValueError("the retain set contains samples of the forget set")

    @property
    def device(self) -> torch.device:
        return next(self.original.parameters()).device


@dataclass
class UnlearningResult:
    """The unlearned model and its cost: optimiser steps, wall seconds, training samples seen."""

    model: torch.nn.Module
    steps: int
    seconds: float
    samples_seen: int
    details: dict[str, Any] = field(default_factory=dict)
    reused_seconds: float = 0.0
    """Compute time of intermediate results reused from an earlier run of the same task (SSD's
    importances across a grid); counted in ``seconds`` so every run reports its full cost."""


class Method:
    """Base class: subclasses set ``name``, ``Params`` (a frozen dataclass) and implement ``unlearn``.

    ``default_steps`` is the budget used when the caller gives none: a quarter of the original
    training, which is Goel et al.'s 1000 of 4000 steps and scales with smaller recipes.
    """

    name: ClassVar[str]
    Params: ClassVar[type]

    uses_budget: ClassVar[bool] = True
    """False for training-free methods, which ignore any budget."""
    is_reference: ClassVar[bool] = False
    """True for the gold standard (RewoD): comparisons give it its full default budget, not the
    shared budget of the approximate methods."""
    default_fraction: ClassVar[float] = 0.25
    supports_text: ClassVar[bool] = True
    """False for methods that need image batches or a block-structured network (the language-model
    family rejects them before any compute)."""

    def default_steps(self, task: UnlearningTask) -> int:
        return max(1, round(self.default_fraction * task.recipe.steps))

    def validate(self, params: Any, task: UnlearningTask) -> None:
        """Checks that need the task (e.g. k against the model's number of blocks)."""

    def unlearn(self, task: UnlearningTask, params: Any, steps: int, seed: int) -> UnlearningResult:
        raise NotImplementedError


METHODS: Registry[type[Method]] = Registry("unlearning method")


def method_params(name: str, values: Mapping[str, Any] | None = None) -> Any:
    """Validated hyper-parameters of method ``name`` (unknown keys and bad values are errors)."""
    return from_dict(METHODS.get(name).Params, values or {}, prefix=f"methods.{name}.")


def unlearn(name: str, task: UnlearningTask, params: Mapping[str, Any] | Any | None = None,
            budget: Budget | None = None, seed: int = 0) -> UnlearningResult:
    """Run method ``name`` on ``task``; all checks happen before any compute."""
    method = METHODS.get(name)()
    if params is None or isinstance(params, Mapping):
        params = method_params(name, params)
    method.validate(params, task)
    steps = (budget or Budget()).resolve(task.recipe.steps, method.default_steps(task)) if method.uses_budget else 0
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[task.device] if task.device.type == "cuda" else []):
        torch.manual_seed(seed)
        result = method.unlearn(task, params, steps, seed)
    if task.device.type == "cuda":
        torch.cuda.synchronize(task.device)
    result.seconds = time.perf_counter() - started + result.reused_seconds
    result.model.eval()
    return result


def copy_of_original(task: UnlearningTask) -> torch.nn.Module:
    model = copy.deepcopy(task.original)
    model.train()
    return model
