"""Methods that push the loss on the forget set up: GA and NegGrad+.

- GA (gradient ascent on S_f; e.g. Graves et al. 2021, used by Pawelczyk et al. 2025).
- NegGrad+ (Kurmanji et al. 2023): minimise ``beta * L(retain) - (1 - beta) * L(forget)``, one
  retain batch and one forget batch per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from ..config import check_range
from .base import METHODS, Method, UnlearningResult, copy_of_original
from .loop import batches, optimise, set_trainable


@dataclass(frozen=True)
class AscentParams:
    lr: float = 0.0025
    """Peak learning rate; ascent diverges at the training rate, so it defaults to a tenth of it."""

    def __post_init__(self) -> None:
        check_range("lr", self.lr, 0.0, low_open=True)


@METHODS.register("ga")
class GradientAscent(Method):
    name: ClassVar[str] = "ga"
    Params: ClassVar[type] = AscentParams

    # Ascent on a small forget set diverges quickly; 1/40 of training is 100 of Goel et al.'s 4000 steps.
    default_fraction: ClassVar[float] = 0.025

    def unlearn(self, task, params: AscentParams, steps, seed) -> UnlearningResult:
        model = copy_of_original(task)
        generator = torch.Generator(device=task.device).manual_seed(seed)
        forget = batches(task.forget, task.info, task.recipe, steps, generator)

        def step_loss(_: int) -> torch.Tensor:
            inputs, labels, _ = next(forget)
            return -F.cross_entropy(model(inputs).float(), labels)

        optimise(model, set_trainable(model, []), task.recipe, params.lr, steps, step_loss, description="GA")
        return UnlearningResult(model, steps, 0.0, steps * min(task.recipe.batch_size, len(task.forget)))


@dataclass(frozen=True)
class NegGradPlusParams:
    beta: float = 0.999
    """Weight of the retain loss; the forget loss gets ``1 - beta``."""
    lr: float = 0.0025

    def __post_init__(self) -> None:
        check_range("beta", self.beta, 0.0, 1.0)
        check_range("lr", self.lr, 0.0, low_open=True)


@METHODS.register("neggrad+")
class NegGradPlus(Method):
    name: ClassVar[str] = "neggrad+"
    Params: ClassVar[type] = NegGradPlusParams

    def unlearn(self, task, params: NegGradPlusParams, steps, seed) -> UnlearningResult:
        model = copy_of_original(task)
        generator = torch.Generator(device=task.device).manual_seed(seed)
        retain = batches(task.retain, task.info, task.recipe, steps, generator)
        forget = batches(task.forget, task.info, task.recipe, steps, generator)

        def step_loss(_: int) -> torch.Tensor:
            retain_inputs, retain_labels, _ = next(retain)
            forget_inputs, forget_labels, _ = next(forget)
            retain_loss = F.cross_entropy(model(retain_inputs).float(), retain_labels)
            forget_loss = F.cross_entropy(model(forget_inputs).float(), forget_labels)
            return params.beta * retain_loss - (1.0 - params.beta) * forget_loss

        optimise(model, set_trainable(model, []), task.recipe, params.lr, steps, step_loss, description="NegGrad+")
        batch = min(task.recipe.batch_size, len(task.retain)) + min(task.recipe.batch_size, len(task.forget))
        return UnlearningResult(model, steps, 0.0, steps * batch)
