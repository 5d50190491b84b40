"""The optimisation loop the training-based methods share.

Each method supplies ``step_loss(step)`` (the loss of one step, built from its own batches); the
loop owns the optimiser, the learning-rate schedule of the original recipe (Goel et al. 2024 use
"the same hyper-parameters during unlearning unless otherwise specified"), bf16 autocast,
progress and the optional Gaussian update noise of NGD.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import torch

from ..data.core import DatasetInfo
from ..data.pipeline import TrainingSet, batch_stream
from ..device import autocast
from ..frontend import tqdm
from ..training import TrainConfig, lr_at, make_optimizer


def batches(data: TrainingSet, info: DatasetInfo, recipe: TrainConfig, steps: int,
            generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``steps`` augmented batches of ``data`` with the recipe's batch size and augmentation."""
    return batch_stream(data, info, recipe.batch_size, steps, generator,
                        augment_batches=recipe.augment, channels_last=recipe.channels_last)


def set_trainable(model: torch.nn.Module, frozen: Iterable[torch.nn.Module]) -> list[torch.nn.Parameter]:
    """Freeze the parameters of ``frozen`` modules; return the parameters left trainable."""
    frozen_ids = {id(p) for module in frozen for p in module.parameters()}
    for parameter in model.parameters():
        parameter.requires_grad_(id(parameter) not in frozen_ids)
    return [p for p in model.parameters() if p.requires_grad]


def optimise(model: torch.nn.Module, parameters: list[torch.nn.Parameter], recipe: TrainConfig,
             lr: float, steps: int, step_loss: Callable[[int], torch.Tensor],
             frozen: Iterable[torch.nn.Module] = (), noise_std: float = 0.0,
             noise_generator: torch.Generator | None = None, description: str = "unlearn") -> None:
    """Run ``steps`` SGD steps minimising ``step_loss(step)`` over ``parameters``.

    ``frozen`` modules are kept in eval mode, so their batch-norm statistics stay untouched.
    ``noise_std > 0`` adds N(0, noise_std^2) to every trainable parameter after each update (NGD).
    """
    frozen = list(frozen)
    device = next(model.parameters()).device
    optimizer = make_optimizer(parameters, recipe)
    model.train()
    for module in frozen:
        module.eval()
    for step in tqdm(range(steps), desc=description, leave=False, disable=steps < 20):
        learning_rate = lr_at(step, steps, lr, recipe.warmup_fraction, recipe.final_lr_fraction)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate
        with autocast(device, recipe.bf16):
            loss = step_loss(step)
        optimizer.zero_grad(set_to_none=True)
        loss.float().backward()
        optimizer.step()
        if noise_std > 0:
            with torch.no_grad():
                for parameter in parameters:
                    parameter.add_(torch.randn(parameter.shape, device=device, generator=noise_generator,
                                               dtype=parameter.dtype) * noise_std)
    model.eval()


def kl_to_teacher(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) of the temperature-softened distributions, batch mean.

    Scaled by T^2 so gradients keep their magnitude across temperatures (Hinton et al. 2015).
    """
    log_student = torch.log_softmax(student_logits.float() / temperature, dim=1)
    log_teacher = torch.log_softmax(teacher_logits.float() / temperature, dim=1)
    return torch.nn.functional.kl_div(log_student, log_teacher, reduction="batchmean", log_target=True) * temperature ** 2
