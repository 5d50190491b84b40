"""Targeted poisoning by gradient matching: Witches' Brew (Geiping et al., "Witches' Brew: Industrial Scale
Data Poisoning via Gradient Matching", ICLR 2021), the targeted attack of Pawelczyk et al., "Machine
Unlearning Fails to Remove Data Poisoning Attacks" (ICLR 2025).

The attacker wants ``targets`` test images ``x_t`` classified as an adversarial class ``y_adv``. It
perturbs a budget of ``round(budget * N)`` training images *of that class* (labels untouched: a
clean-label attack), each within an l_inf ball of radius ``eps`` (default 16/255) and inside the valid
pixel range, so that the training gradient of the poisons points where the gradient of the
adversarial target loss points. On a surrogate model ``theta`` it minimises

    1 - cos( grad_theta sum_i CE(f(x_i + delta_i), y_i),  grad_theta sum_t CE(f(x_t), y_adv) )

so that a victim training on the poisons takes steps that also lower the adversarial loss of the
targets. As in the paper: the surrogate is the victim's architecture trained on the clean data (here
by the kit's trainer, with the attack's seed; the victim's own initialisation stays unknown), the
perturbations start uniformly in the ball, are optimised with Adam on the *signed* gradient with the
step size decayed tenfold at 3/8, 5/8 and 5/6 of the steps, through the dataset's random crops and
flips (differentiable, so the poisons survive the victim's augmentation; ``augment: false`` turns it
off), and the best of ``restarts`` runs is kept (highest alignment over the whole poison set). The
paper uses restarts R = 8, M = 250 steps, budget 1% and eps = 16/255 on CIFAR-10.

The poisons are stored as uint8 images with ``|poison - clean| <= floor(eps * 255)`` grey levels
exactly. Gradients are taken in eval mode (see :mod:`.gradients`). S_m is the poisoned training
images, D_m the target test images (judged against their clean labels), and the poison success rate is
the share of targets predicted as ``y_adv``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from ..config import ConfigError, check_range
from ..data.core import DatasetInfo, DataSplits
from ..data.pipeline import TrainingSet, augment
from ..frontend import tqdm
from .base import MANIPULATIONS, Manipulated, check_class
from .crafted import CraftContext, Crafted
from .gradients import Gradient, cosine, loss_gradient, trainable

DECAY_POINTS = (3 / 8, 5 / 8, 5 / 6)


def step_size(step: int, steps: int, lr: float) -> float:
    """``lr`` divided by 10 at each of 3/8, 5/8 and 5/6 of the steps (Geiping et al. 2021)."""
    return lr * 0.1 ** sum(step >= math.floor(point * steps) for point in DECAY_POINTS)


def gradient_alignment(model: torch.nn.Module, target_gradient: Gradient, poisons01: torch.Tensor,
                       labels: torch.Tensor, info: DatasetInfo, batch_size: int = 512) -> float:
    """Cosine between ``target_gradient`` and the gradient of the summed loss over all poisons (no augmentation)."""
    total = [torch.zeros_like(p) for p in trainable(model)]
    with torch.enable_grad():
        for start in range(0, len(labels), batch_size):
            chunk = slice(start, start + batch_size)
            for accumulated, part in zip(total, loss_gradient(model, poisons01[chunk], labels[chunk], info,
                                                              scale=len(labels[chunk]))):
                accumulated += part
    return cosine(total, target_gradient).item()


def quantise_within(clean_uint8: torch.Tensor, poisoned01: torch.Tensor, eps: float) -> torch.Tensor:
    """uint8 poisons: ``poisoned01`` rounded to grey levels, then clipped to ``floor(eps * 255)`` levels of the clean image."""
    levels = math.floor(eps * 255 + 1e-6)
    clean = clean_uint8.to(torch.int16)
    rounded = (poisoned01 * 255).round().to(torch.int16)
    return torch.minimum(torch.maximum(rounded, clean - levels), clean + levels).clamp(0, 255).to(torch.uint8)


@MANIPULATIONS.register("witches-brew")
@dataclass(frozen=True)
class WitchesBrew:
    name: ClassVar[str] = "witches-brew"
    adversarial_class: int | None = None
    """The label the targets should receive; None: drawn with ``seed`` (the paper draws it at random)."""
    target_class: int | None = None
    """The true class of the target test images; None: any class but the adversarial one."""
    targets: int = 1
    budget: float = 0.01
    """Share of the training set that is perturbed (all of it images of the adversarial class)."""
    eps: float = 16 / 255
    restarts: int = 8
    steps: int = 250
    lr: float = 0.1
    """Initial Adam step size, in units of ``eps``."""
    augment: bool = True
    batch_size: int = 512
    """Poisons per gradient computation: the alignment is computed per batch, as in the paper."""
    seed: int = 0

    def __post_init__(self) -> None:
        check_range("manipulation.budget", self.budget, 0.0, 1.0, low_open=True)
        check_range("manipulation.eps", self.eps, 0.0, 1.0, low_open=True)
        if math.floor(self.eps * 255 + 1e-6) < 1:
            raise ConfigError(f"manipulation.eps must allow at least one grey level (>= 1/255), got {self.eps}")
        check_range("manipulation.targets", self.targets, 1)
        check_range("manipulation.restarts", self.restarts, 1)
        check_range("manipulation.steps", self.steps, 1)
        check_range("manipulation.lr", self.lr, 0.0, low_open=True)
        check_range("manipulation.batch_size", self.batch_size, 1)
        for key in ("adversarial_class", "target_class"):
            value = getattr(self, key)
            if value is not None:
                check_range(f"manipulation.{key}", value, 0)
        if self.adversarial_class is not None and self.adversarial_class == self.target_class:
            raise ConfigError(f"manipulation.target_class and adversarial_class must differ, both are "
                              f"{self.target_class}")

    def selection(self, splits: DataSplits) -> tuple[int, torch.Tensor, torch.Tensor]:
        """The adversarial class, the target test positions and the poisoned training positions (seeded);
        raises :class:`ConfigError` when the data cannot provide them."""
        num_classes = splits.info.num_classes
        for key in ("adversarial_class", "target_class"):
            if getattr(self, key) is not None:
                check_class(f"manipulation.{key}", getattr(self, key), num_classes)
        generator = torch.Generator().manual_seed(self.seed)
        adversarial = self.adversarial_class
        if adversarial is None:
            others = [c for c in range(num_classes) if c != self.target_class]
            adversarial = others[int(torch.randint(len(others), (1,), generator=generator))]
        test_labels, train_labels = splits.test.labels.cpu(), splits.train.labels.cpu()
        eligible = (test_labels == self.target_class) if self.target_class is not None else (test_labels != adversarial)
        candidates = eligible.nonzero().flatten()
        if self.targets > len(candidates):
            raise ConfigError(f"manipulation.targets={self.targets} but the test set has only {len(candidates)} "
                              "eligible target images")
        targets = candidates[torch.randperm(len(candidates), generator=generator)[:self.targets]].sort().values
        count = max(1, round(self.budget * len(train_labels)))
        members = (train_labels == adversarial).nonzero().flatten()
        if count > len(members):
            raise ConfigError(f"manipulation.budget={self.budget} asks for {count} training images of class "
                              f"{adversarial}, but the training set has only {len(members)}")
        poisons = members[torch.randperm(len(members), generator=generator)[:count]].sort().values
        return adversarial, targets, poisons

    def craft(self, context: CraftContext) -> Crafted:
        splits, info, device = context.splits, context.splits.info, context.device
        adversarial, targets, positions = self.selection(splits)  # validates before any compute
        targets, positions = targets.to(device), positions.to(device)
        surrogate = context.clean_model(self.seed).float().to(memory_format=torch.contiguous_format).eval()
        surrogate.requires_grad_(True)
        target_images = splits.test.images[targets].float() / 255
        adversarial_labels = torch.full((len(targets),), adversarial, dtype=torch.int64, device=device)
        with torch.enable_grad():
            target_gradient = [g.detach() for g in loss_gradient(surrogate, target_images, adversarial_labels, info,
                                                                 scale=len(targets))]
        clean = splits.train.images[positions]
        labels = splits.train.labels[positions]
        clean01 = clean.float() / 255
        generator = torch.Generator(device=device).manual_seed(self.seed)
        before = gradient_alignment(surrogate, target_gradient, clean01, labels, info, self.batch_size)

        best, best_alignment, alignments = None, -math.inf, []
        for restart in range(self.restarts):
            delta = self._brew(surrogate, target_gradient, clean01, labels, info, generator, context.progress,
                               f"brew {restart + 1}/{self.restarts}")
            alignment = gradient_alignment(surrogate, target_gradient, clean01 + delta, labels, info, self.batch_size)
            alignments.append(alignment)
            if alignment > best_alignment:
                best, best_alignment = delta, alignment
        poisoned = quantise_within(clean, clean01 + best, self.eps)
        stored = gradient_alignment(surrogate, target_gradient, poisoned.float() / 255, labels, info, self.batch_size)
        summary = {"adversarial_class": adversarial, "target_ids": splits.test.ids[targets].tolist(),
                   "target_labels": splits.test.labels[targets].tolist(), "n_poisons": len(positions),
                   "alignment_before": before, "alignment_restarts": alignments, "alignment_after": best_alignment,
                   "alignment_stored": stored, "best_restart": alignments.index(best_alignment)}
        return Crafted({"positions": positions, "poisons": poisoned, "targets": targets,
                        "adversarial_labels": adversarial_labels}, summary)

    def _brew(self, surrogate: torch.nn.Module, target_gradient: Gradient, clean01: torch.Tensor,
              labels: torch.Tensor, info: DatasetInfo, generator: torch.Generator, progress: bool,
              description: str) -> torch.Tensor:
        """One restart: signed Adam on the perturbations, projected onto the eps-ball and valid pixels."""
        uniform = torch.rand(clean01.shape, generator=generator, device=clean01.device)
        delta = ((2 * uniform - 1) * self.eps).clamp(-clean01, 1 - clean01).requires_grad_(True)
        optimizer = torch.optim.Adam([delta], lr=self.lr * self.eps)
        for step in tqdm(range(self.steps), desc=description, disable=not progress, leave=False):
            for group in optimizer.param_groups:
                group["lr"] = step_size(step, self.steps, self.lr * self.eps)
            delta.grad = torch.zeros_like(delta)
            for start in range(0, len(labels), self.batch_size):
                chunk = slice(start, start + self.batch_size)
                poisons = clean01[chunk] + delta[chunk]
                if self.augment:
                    poisons = augment(poisons, info, generator)
                gradient = loss_gradient(surrogate, poisons, labels[chunk], info, create_graph=True,
                                         scale=len(labels[chunk]))
                loss = 1 - cosine(gradient, target_gradient)
                delta.grad += torch.autograd.grad(loss, delta)[0]
            delta.grad.sign_()
            optimizer.step()
            with torch.no_grad():
                delta.copy_(torch.maximum(torch.minimum(delta, 1 - clean01), -clean01).clamp(-self.eps, self.eps))
        return delta.detach()

    def apply(self, splits: DataSplits, crafted: Crafted) -> Manipulated:
        train, test = splits.train, splits.test
        device = train.images.device
        positions, poisons, targets, adversarial_labels = (
            crafted.tensors[k].to(device) for k in ("positions", "poisons", "targets", "adversarial_labels"))
        if int(positions.max()) >= len(train) or int(targets.max()) >= len(test):
            raise ValueError("the crafted poisons do not belong to this data; craft them again")
        images = train.images.clone()
        images[positions] = poisons
        is_target = torch.zeros(len(test), dtype=torch.bool, device=test.images.device)
        is_target[targets.to(is_target.device)] = True
        return Manipulated(
            name=self.name,
            train=TrainingSet(images, train.labels.clone(), torch.arange(len(train), device=device)),
            clean_train_labels=train.labels,
            manipulated=positions,
            affected_test=test.subset(targets),
            retain_test_mask=~is_target,
            adversarial_labels=adversarial_labels,
        )
