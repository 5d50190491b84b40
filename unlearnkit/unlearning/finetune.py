"""Fine-tuning on the retain set: CF-k / GD, NGD and EU-k.

- CF-k (catastrophic forgetting, Goel et al. 2023; all blocks = "GD" of Pawelczyk et al. 2025):
  fine-tune the last k blocks (all by default) on S_tr \\ S_f with the original recipe; Goel et al.
  (2024) use 1000 steps, 1/4 of training.
- NGD (Pawelczyk et al. 2025): GD with N(0, sigma^2) noise added to the parameters after every update.
- EU-k (exact unlearning of the last k blocks, Goel et al. 2023): re-initialise the last k blocks
  and retrain only them on the retain set; the frozen prefix runs in eval mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..config import check_range
from ..models import reinitialise_
from .base import METHODS, Method, UnlearningResult, UnlearningTask, copy_of_original
from .blocks import check_k, split_blocks
from .loop import batches, optimise, set_trainable


def cross_entropy_steps(model, task: UnlearningTask, steps: int, seed: int):
    generator = torch.Generator(device=task.device).manual_seed(seed)
    stream = batches(task.retain, task.info, task.recipe, steps, generator)

    def step_loss(_: int) -> torch.Tensor:
        inputs, labels, _ = next(stream)
        return torch.nn.functional.cross_entropy(model(inputs).float(), labels,
                                                 label_smoothing=task.recipe.label_smoothing)

    return step_loss


def finetune_retain(task: UnlearningTask, k: int | None, lr: float | None, steps: int, seed: int,
                    noise_std: float = 0.0, reinitialise: bool = False, description: str = "CF") -> UnlearningResult:
    model = copy_of_original(task)
    frozen, trained = split_blocks(model, k)
    if reinitialise:
        # One seeded stream for all k blocks: seeding each block alike would give blocks of the
        # same architecture identical weights.
        reinitialise_(torch.nn.ModuleList(trained), seed)
    parameters = set_trainable(model, frozen)
    noise = torch.Generator(device=task.device).manual_seed(seed + 1)
    optimise(model, parameters, task.recipe, lr or task.recipe.lr, steps,
             cross_entropy_steps(model, task, steps, seed), frozen=frozen,
             noise_std=noise_std, noise_generator=noise, description=description)
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    return UnlearningResult(model, steps, 0.0, steps * min(task.recipe.batch_size, len(task.retain)),
                            {"trained_blocks": "all" if k is None else k})


@dataclass(frozen=True)
class FinetuneParams:
    k: int | None = None
    """Fine-tune only the last k blocks (None: all of them)."""
    lr: float | None = None
    """Peak learning rate (None: the original recipe's)."""

    def __post_init__(self) -> None:
        if self.lr is not None:
            check_range("lr", self.lr, 0.0, low_open=True)


@METHODS.register("cf")
class CatastrophicForgetting(Method):
    name: ClassVar[str] = "cf"
    Params: ClassVar[type] = FinetuneParams

    def validate(self, params: FinetuneParams, task: UnlearningTask) -> None:
        check_k(self.name, params.k, task.original)

    def unlearn(self, task, params: FinetuneParams, steps, seed) -> UnlearningResult:
        return finetune_retain(task, params.k, params.lr, steps, seed, description="CF")


@dataclass(frozen=True)
class NoisyParams:
    noise_variance: float = 1e-7
    """sigma^2 of the Gaussian noise added to each update (Pawelczyk et al. 2025's figure: 1e-7)."""
    lr: float | None = None

    def __post_init__(self) -> None:
        check_range("noise_variance", self.noise_variance, 0.0)
        if self.lr is not None:
            check_range("lr", self.lr, 0.0, low_open=True)


@METHODS.register("ngd")
class NoisyGradientDescent(Method):
    name: ClassVar[str] = "ngd"
    Params: ClassVar[type] = NoisyParams

    def unlearn(self, task, params: NoisyParams, steps, seed) -> UnlearningResult:
        return finetune_retain(task, None, params.lr, steps, seed, noise_std=params.noise_variance ** 0.5,
                               description="NGD")


@dataclass(frozen=True)
class ExactLastKParams:
    k: int = 1
    """Number of final blocks re-initialised and retrained."""
    lr: float | None = None

    def __post_init__(self) -> None:
        check_range("k", self.k, 1)
        if self.lr is not None:
            check_range("lr", self.lr, 0.0, low_open=True)


@METHODS.register("eu")
class ExactUnlearningLastK(Method):
    name: ClassVar[str] = "eu"
    Params: ClassVar[type] = ExactLastKParams
    supports_text: ClassVar[bool] = False  # k counts the blocks of a BlockNet

    def validate(self, params: ExactLastKParams, task: UnlearningTask) -> None:
        check_k(self.name, params.k, task.original)

    def unlearn(self, task, params: ExactLastKParams, steps, seed) -> UnlearningResult:
        return finetune_retain(task, params.k, params.lr, steps, seed, reinitialise=True, description="EU-k")
