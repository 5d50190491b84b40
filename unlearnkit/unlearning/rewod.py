"""RewoD: retrain from scratch on the retain set with the original recipe (Goel et al. 2024, A.2).

Exact unlearning when every manipulated sample is identified (alpha = 1); the gold standard the
cheaper methods are measured against. Its default budget is the full original training.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from ..training import train
from .base import METHODS, Method, UnlearningResult, UnlearningTask


@dataclass(frozen=True)
class RewoDParams:
    """RewoD has no hyper-parameters of its own: it reuses the original recipe."""


@METHODS.register("rewod")
class RewoD(Method):
    name: ClassVar[str] = "rewod"
    Params: ClassVar[type] = RewoDParams

    default_fraction: ClassVar[float] = 1.0
    is_reference: ClassVar[bool] = True

    def unlearn(self, task: UnlearningTask, params: RewoDParams, steps: int, seed: int) -> UnlearningResult:
        model = task.new_model(seed)
        recipe = replace(task.recipe, steps=steps, seed=seed)
        train(model, task.retain, task.info, recipe, description="RewoD")
        return UnlearningResult(model, steps, 0.0, steps * min(recipe.batch_size, len(task.retain)))
