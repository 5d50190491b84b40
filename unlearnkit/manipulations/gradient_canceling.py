"""Indiscriminate poisoning by Gradient Canceling (Lu, Kamath & Yu, "Exploring the Limits of Model-Targeted
Indiscriminate Data Poisoning Attacks", ICML 2023), the indiscriminate attack of Pawelczyk et al.,
"Machine Unlearning Fails to Remove Data Poisoning Attacks" (ICLR 2025).

The attacker picks *target parameters* ``theta_p`` of a model with low test accuracy and adds
``n = eps * N`` poisons ``D_p`` to the ``N`` clean training samples so that ``theta_p`` becomes a
stationary point of the victim's training objective; training on ``D_clean u D_p`` then stalls near it.
The trainer minimises the mean loss over the union plus weight decay ``wd``, whose gradient vanishes
at ``theta_p`` when

    r = grad L(D_clean; theta_p) + eps * grad L(D_p; theta_p) + (1 + eps) * wd * theta_p = 0

(``L`` the mean cross-entropy over a set; the first two terms are Lu et al.'s objective, the last the
weight decay the kit's recipe adds). The poisons start as the label-flipping baseline's: copies of
``n`` random clean training samples, each with a label drawn from the other classes (``flip_labels:
false`` keeps the sources' labels), so the optimisation begins where the cheap attack ends. Their
inputs (labels fixed) are optimised with Adam on ``||r||_2``, each step followed by a projection onto
valid pixels [0, 1]; the best iterate is kept and stored as uint8 images, as any image file holds them. They are appended after the clean training set
(``Manipulated.source`` names the clean sample each started from) and form S_m.

**Target parameters.** Lu et al. obtain them by parameter corruption (GradPC, Sun et al. 2020): moving
a clean model a short way uphill on the clean training loss. A target close to the clean model is what
a small poison budget can reach (their "poisonability" threshold); a model trained far away, e.g. on
heavily label-flipped data, has a clean gradient no ``eps * N`` poisons can cancel. Here a surrogate of
the victim's architecture is trained on the clean data with the attack's seed, then takes normalised
gradient-ascent steps of ``corruption_step * ||theta_clean||`` on mini-batches of the clean training
loss until its accuracy on the clean training data falls to ``target_accuracy`` (batch-norm statistics
re-estimated on clean data after every step, so the target is a model the victim could hold).

The metric is the clean test-accuracy drop against the same model trained clean; unlearning should
remove it when the poisons are identified. Gradients are taken in eval mode (see
:mod:`.gradients`) and without augmentation.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import torch

from ..config import check_range
from ..data.core import DatasetInfo, DataSplits
from ..data.pipeline import normalise, predict_logits
from ..frontend import tqdm
from ..metrics import accuracy
from .appended import appended_poisons
from .base import MANIPULATIONS, Manipulated, check_size, count_from
from .crafted import CraftContext, Crafted
from .gradients import Gradient, dot, loss_gradient, mean_gradient, norm, trainable
from .label_flip import flipped_labels

DEFAULT_FRACTION = 0.03  # Lu et al. (2023) study poison ratios of a few percent; 3% is one of theirs
REFERENCE_SAMPLES = 4096
"""Clean training samples on which the corrupted model's batch-norm statistics and accuracy are measured."""


@MANIPULATIONS.register("gradient-canceling")
@dataclass(frozen=True)
class GradientCanceling:
    name: ClassVar[str] = "gradient-canceling"
    fraction: float | None = None
    """Poison ratio eps = n / N (default 0.03); or give ``count``."""
    count: int | None = None
    target_accuracy: float = 0.5
    """Accuracy on the clean training data at which parameter corruption stops (the target model)."""
    corruption_step: float = 0.002
    corruption_max_steps: int = 200
    steps: int = 300
    """Adam steps on the poison pixels."""
    lr: float = 0.02
    batch_size: int = 500
    """Samples per gradient computation (memory only: the objective is over whole sets)."""
    flip_labels: bool = True
    """Start from the label-flipping baseline's poisons (each label drawn from the other classes); False:
    keep the source samples' labels."""
    seed: int = 0

    def __post_init__(self) -> None:
        check_size("manipulation", self.count, self.fraction)
        check_range("manipulation.target_accuracy", self.target_accuracy, 0.0, 1.0, high_open=True)
        check_range("manipulation.corruption_step", self.corruption_step, 0.0, low_open=True)
        check_range("manipulation.corruption_max_steps", self.corruption_max_steps, 1)
        check_range("manipulation.steps", self.steps, 1)
        check_range("manipulation.lr", self.lr, 0.0, low_open=True)
        check_range("manipulation.batch_size", self.batch_size, 1)

    def poison_count(self, splits: DataSplits) -> int:
        return count_from("manipulation", self.count, self.fraction, DEFAULT_FRACTION, len(splits.train))

    def craft(self, context: CraftContext) -> Crafted:
        splits, info = context.splits, context.splits.info
        train, device = splits.train, context.device
        n = self.poison_count(splits)  # validates before any compute
        generator = torch.Generator().manual_seed(self.seed)
        sources = torch.randperm(len(train), generator=generator)[:n].sort().values.to(device)
        reference = torch.randperm(len(train), generator=generator)[:REFERENCE_SAMPLES].to(device)

        clean = context.clean_model(self.seed)
        target, corruption = corrupt_parameters(clean, train.images[reference], train.labels[reference], info,
                                                self.target_accuracy, self.corruption_step,
                                                self.corruption_max_steps, self.batch_size, generator,
                                                context.progress)
        target.requires_grad_(True)
        eps = n / len(train)
        stationarity = [g + (1 + eps) * context.recipe.weight_decay * p.detach()
                        for g, p in zip(mean_gradient(target, train.images, train.labels, info, self.batch_size),
                                        trainable(target))]
        labels = train.labels[sources]
        if self.flip_labels:
            labels = flipped_labels(labels, info.num_classes, generator).to(device)
        poisons, history = cancel_gradient(target, stationarity, train.images[sources].float() / 255, labels, info,
                                           eps, self.steps, self.lr, self.batch_size, context.progress)
        stored = (poisons * 255).round().to(torch.uint8)
        with torch.no_grad():
            clean_norm = norm(stationarity).item()
            quantised = residual_norm(target, stationarity, stored.float() / 255, labels, info, eps, self.batch_size)
        test_logits = predict_logits(target, splits.test, info)
        summary = {
            "eps": eps, "n_poisons": n, "clean_gradient_norm": clean_norm,
            "gradient_norm_before": history[0], "gradient_norm_after": min(history),
            "gradient_norm_stored": quantised, "gradient_norm_history": history,
            "target_train_accuracy": corruption["accuracy"], "target_test_accuracy":
                accuracy(test_logits.argmax(1), splits.test.labels),
            "target_relative_distance": corruption["relative_distance"],
            "corruption_steps": corruption["steps"],
        }
        return Crafted({"poisons": stored, "labels": labels, "sources": sources}, summary)

    def apply(self, splits: DataSplits, crafted: Crafted) -> Manipulated:
        train, device = splits.train, splits.train.images.device
        poisons, labels, sources = (crafted.tensors[k].to(device) for k in ("poisons", "labels", "sources"))
        if len(poisons) != self.poison_count(splits) or int(sources.max()) >= len(train):
            raise ValueError("the crafted poisons do not belong to this training set; craft them again")
        return appended_poisons(self.name, splits, poisons, labels, sources)


@torch.no_grad()
def recalibrate_batch_norm(model: torch.nn.Module, images_uint8: torch.Tensor, info: DatasetInfo,
                           batch_size: int) -> None:
    """Re-estimate every batch-norm layer's running statistics as the plain average over ``images``."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for layer in norms:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average
    model.train()
    for start in range(0, len(images_uint8), batch_size):
        model(normalise(images_uint8[start:start + batch_size].float() / 255, info))
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum
    model.eval()


def corrupt_parameters(clean: torch.nn.Module, images_uint8: torch.Tensor, labels: torch.Tensor, info: DatasetInfo,
                       target_accuracy: float, step: float, max_steps: int, batch_size: int,
                       generator: torch.Generator, progress: bool = True) -> tuple[torch.nn.Module, dict]:
    """Normalised gradient ascent on the clean loss from ``clean`` until the accuracy on ``images`` is at
    most ``target_accuracy`` (or ``max_steps``); returns the target model (eval mode, fp32) and a summary."""
    target = copy.deepcopy(clean).float().to(memory_format=torch.contiguous_format).eval()
    start = [p.detach().clone() for p in trainable(target)]
    scale = norm(start).item()
    device = images_uint8.device

    def current_accuracy() -> float:
        return accuracy(predict_logits(target, images_uint8, info).argmax(1), labels)

    achieved, steps = current_accuracy(), 0
    with tqdm(total=max_steps, desc="corrupt parameters", disable=not progress, leave=False) as bar:
        while achieved > target_accuracy and steps < max_steps:
            batch = torch.randint(0, len(labels), (batch_size,), generator=generator).to(device)
            gradient = loss_gradient(target, images_uint8[batch].float() / 255, labels[batch], info)
            size = norm(gradient).clamp_min(1e-30)
            with torch.no_grad():
                for parameter, part in zip(trainable(target), gradient):
                    parameter += step * scale * part / size
            recalibrate_batch_norm(target, images_uint8, info, batch_size)
            achieved, steps = current_accuracy(), steps + 1
            bar.set_postfix(accuracy=f"{achieved:.3f}")
            bar.update(1)
    distance = norm([p.detach() - q for p, q in zip(trainable(target), start)]).item() / scale
    return target, {"accuracy": achieved, "steps": steps, "relative_distance": distance}


def residual_norm(target: torch.nn.Module, stationarity: Gradient, poisons01: torch.Tensor, labels: torch.Tensor,
                  info: DatasetInfo, eps: float, batch_size: int) -> float:
    """``||stationarity + eps * grad L(D_p; theta_p)||_2`` for the given poisons."""
    return norm(_residual(target, stationarity, poisons01, labels, info, eps, batch_size)).item()


def _residual(target, stationarity, poisons01, labels, info, eps, batch_size) -> Gradient:
    residual = [s.clone() for s in stationarity]
    with torch.enable_grad():
        for start in range(0, len(labels), batch_size):
            chunk = slice(start, start + batch_size)
            share = eps * len(labels[chunk]) / len(labels)
            for total, part in zip(residual, loss_gradient(target, poisons01[chunk], labels[chunk], info, scale=share)):
                total += part.detach()
    return residual


def cancel_gradient(target: torch.nn.Module, stationarity: Gradient, poisons01: torch.Tensor, labels: torch.Tensor,
                    info: DatasetInfo, eps: float, steps: int, lr: float, batch_size: int,
                    progress: bool = True) -> tuple[torch.Tensor, list[float]]:
    """Minimise ``||r||_2`` over the poison pixels (Adam, projected onto [0, 1]); return the best poisons
    and ``||r||_2`` at every step (the first entry is the initial poisons')."""
    poisons = poisons01.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([poisons], lr=lr)
    best, history = poisons.detach().clone(), []
    with tqdm(total=steps, desc="gradient canceling", disable=not progress, leave=False) as bar:
        for _ in range(steps):
            residual = _residual(target, stationarity, poisons.detach(), labels, info, eps, batch_size)
            history.append(norm(residual).item())
            if history[-1] == min(history):
                best = poisons.detach().clone()
            # d/dx ||r||^2 / 2 = eps * J_x^T r: the gradient of <r, eps * grad L(D_p)> with r held fixed.
            poisons.grad = torch.zeros_like(poisons)
            for start in range(0, len(labels), batch_size):
                chunk = slice(start, start + batch_size)
                share = eps * len(labels[chunk]) / len(labels)
                part = loss_gradient(target, poisons[chunk], labels[chunk], info, create_graph=True, scale=share)
                poisons.grad += torch.autograd.grad(dot(residual, part), poisons)[0]
            optimizer.step()
            with torch.no_grad():
                poisons.clamp_(0.0, 1.0)
            bar.set_postfix(gradient_norm=f"{history[-1]:.4f}")
            bar.update(1)
    final = residual_norm(target, stationarity, poisons.detach(), labels, info, eps, batch_size)
    if final < min(history):
        best = poisons.detach().clone()
    history.append(final)
    return best, history
