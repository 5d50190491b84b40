"""BadT: knowledge distillation from a competent and an incompetent teacher (Chundawat et al., AAAI 2023).

The student (a copy of M_o) is distilled towards a *randomly initialised* teacher on the forget set
S_f and towards M_o on the retain set, with KL at temperature 1. Batches are drawn from the union
S_f ∪ (S_tr \\ S_f); each sample picks its teacher by membership. Goel et al. (2024) run 1000 steps.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import torch

from ..config import check_range
from ..data.pipeline import TrainingSet
from .base import METHODS, Method, UnlearningResult, UnlearningTask, copy_of_original
from .loop import batches, optimise, set_trainable


@dataclass(frozen=True)
class BadTeacherParams:
    temperature: float = 1.0
    lr: float | None = None
    """Peak learning rate (None: the original recipe's)."""

    def __post_init__(self) -> None:
        check_range("temperature", self.temperature, 0.0, low_open=True)
        if self.lr is not None:
            check_range("lr", self.lr, 0.0, low_open=True)


def union(first: TrainingSet, second: TrainingSet) -> TrainingSet:
    if not isinstance(first, TrainingSet):  # a set type of its own (tokenised texts) joins itself
        return first.union(second)
    return TrainingSet(torch.cat([first.images, second.images]), torch.cat([first.labels, second.labels]),
                       torch.cat([first.index, second.index]), first.post_augment)


def incompetent_teacher(task: UnlearningTask, seed: int) -> torch.nn.Module:
    """A freshly initialised network of the original architecture, frozen: the "bad" teacher."""
    return task.new_model(seed + 1).eval().requires_grad_(False)


@METHODS.register("badt")
class BadTeacher(Method):
    name: ClassVar[str] = "badt"
    Params: ClassVar[type] = BadTeacherParams

    def unlearn(self, task: UnlearningTask, params: BadTeacherParams, steps: int, seed: int) -> UnlearningResult:
        student = copy_of_original(task)
        competent = copy.deepcopy(task.original).eval().requires_grad_(False)
        incompetent = incompetent_teacher(task, seed)
        forget_index = task.forget.index
        generator = torch.Generator(device=task.device).manual_seed(seed)
        stream = batches(union(task.retain, task.forget), task.info, task.recipe, steps, generator)

        def step_loss(_: int) -> torch.Tensor:
            inputs, _, index = next(stream)
            in_forget = torch.isin(index, forget_index).unsqueeze(1)
            with torch.no_grad():
                target = torch.where(in_forget, incompetent(inputs).float(), competent(inputs).float())
            log_student = torch.log_softmax(student(inputs).float() / params.temperature, dim=1)
            log_target = torch.log_softmax(target / params.temperature, dim=1)
            return torch.nn.functional.kl_div(log_student, log_target, reduction="batchmean", log_target=True)

        optimise(student, set_trainable(student, []), task.recipe, params.lr or task.recipe.lr, steps, step_loss,
                 description="BadT")
        batch = min(task.recipe.batch_size, len(task.retain) + len(task.forget))
        return UnlearningResult(student, steps, 0.0, steps * batch)
