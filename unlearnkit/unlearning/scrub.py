"""SCRUB (Kurmanji et al., "Towards Unbounded Machine Unlearning", NeurIPS 2023).

The student starts as a copy of M_o; the teacher is M_o, frozen. During the first ``msteps`` steps
each step begins with a *max* step on a forget batch that pushes the student away from the
teacher; every step then makes a *min* step on a retain batch with ``gamma * CE + alpha * KL``.
Temperature ``T`` softens both distributions.

``forget_loss="kl"`` is the original max step (maximise KL(teacher || student) on S_f).
``forget_loss="ce"`` is the variant of the corrective-unlearning code (Goel et al. 2024, A.2:
"gradient ascent using the task-loss for S_f"). Goel et al. run 1000 steps at lr 0.0025 with the
first 200 (a fifth, the default here) ascending, T = 4, and tune alpha over {0.001, ..., 10}.

The KL max step is unbounded: on a small model whose S_f is all one (target) label it can collapse
the student to a single class within a few dozen steps (seen on the MNIST BadNet demo with the
defaults). That is the method's known instability, kept for fidelity; tune ``msteps`` / ``lr`` or use
``forget_loss="ce"``, and let validation-based selection (which flags collapsed picks) choose.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F

from ..config import check_range
from ..device import autocast
from ..training import lr_at, make_optimizer
from .base import METHODS, Method, UnlearningResult, UnlearningTask, copy_of_original
from .loop import batches, kl_to_teacher


@dataclass(frozen=True)
class ScrubParams:
    alpha: float = 1.0
    """Weight of the distillation (KL) term of the min step."""
    gamma: float = 1.0
    """Weight of the cross-entropy term of the min step."""
    temperature: float = 4.0
    lr: float = 0.0025
    msteps: int | None = None
    """Max steps happen only in the first ``msteps`` steps (None: the first fifth, Goel et al.'s 200 of 1000)."""
    forget_loss: Literal["kl", "ce"] = "kl"

    def __post_init__(self) -> None:
        check_range("alpha", self.alpha, 0.0)
        check_range("gamma", self.gamma, 0.0)
        check_range("temperature", self.temperature, 0.0, low_open=True)
        check_range("lr", self.lr, 0.0, low_open=True)
        if self.msteps is not None:
            check_range("msteps", self.msteps, 0)


@METHODS.register("scrub")
class Scrub(Method):
    name: ClassVar[str] = "scrub"
    Params: ClassVar[type] = ScrubParams

    def unlearn(self, task: UnlearningTask, params: ScrubParams, steps: int, seed: int) -> UnlearningResult:
        student = copy_of_original(task)
        teacher = copy.deepcopy(task.original).eval().requires_grad_(False)
        device = task.device
        recipe = task.recipe
        generator = torch.Generator(device=device).manual_seed(seed)
        max_steps = min(round(0.2 * steps) if params.msteps is None else params.msteps, steps)
        retain = batches(task.retain, task.info, recipe, steps, generator)
        forget = batches(task.forget, task.info, recipe, max(max_steps, 1), generator)
        optimizer = make_optimizer(student.parameters(), recipe)
        ascents = 0
        student.train()
        for step in range(steps):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, steps, params.lr, recipe.warmup_fraction, recipe.final_lr_fraction)
            if step < max_steps:
                inputs, labels, _ = next(forget)
                with autocast(device, recipe.bf16):
                    logits = student(inputs)
                    if params.forget_loss == "kl":
                        with torch.no_grad():
                            target = teacher(inputs)
                        loss = -kl_to_teacher(logits, target, params.temperature)
                    else:
                        loss = -F.cross_entropy(logits.float(), labels)
                optimizer.zero_grad(set_to_none=True)
                loss.float().backward()
                optimizer.step()
                ascents += 1
            inputs, labels, _ = next(retain)
            with autocast(device, recipe.bf16):
                logits = student(inputs)
                with torch.no_grad():
                    target = teacher(inputs)
                loss = (params.gamma * F.cross_entropy(logits.float(), labels)
                        + params.alpha * kl_to_teacher(logits, target, params.temperature))
            optimizer.zero_grad(set_to_none=True)
            loss.float().backward()
            optimizer.step()
        batch = min(recipe.batch_size, len(task.retain))
        forget_batch = min(recipe.batch_size, len(task.forget))
        return UnlearningResult(student, steps + ascents, 0.0, steps * batch + ascents * forget_batch,
                                {"ascent_steps": ascents, "descent_steps": steps})
