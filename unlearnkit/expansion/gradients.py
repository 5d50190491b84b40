"""Scorers that look at the loss landscape of the original model around S_f.

``gradient``: cosine similarity between each candidate's loss gradient and the mean gradient of S_f
(labels as trained). Samples that teach the model the same thing as S_f (the same trigger-to-target
rule, the same swapped pair) push the parameters the same way; clean samples of the affected classes
push the other way. Per-sample gradients of the last ``blocks`` blocks come from ``torch.func``
(vmap of grad), in chunks whose size bounds the memory, and are never stored.

``loss_change``: how much each candidate's loss rises when the model takes one step of gradient
ascent on S_f, the direction an unlearner moves in. To first order the change is the learning rate
times the dot product of the two gradients, i.e. the unnormalised ``gradient`` score; here the
step is taken for real (its length ``step`` relative to the norm of the moved parameters) and the loss
evaluated again, which keeps the curvature along the step and needs two forward passes per
candidate instead of a per-sample backward pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from ..config import check_range
from .base import SCORERS, Scorer
from .context import ExpansionContext

PER_SAMPLE_BUDGET = 2 ** 25
"""Most gradient entries held at once (chunk size x parameters): 128 MiB in float32."""


def _check_blocks(blocks: int | None) -> None:
    if blocks is not None:
        check_range("blocks", blocks, 1)


@dataclass(frozen=True)
class GradientParams:
    blocks: int | None = 1
    """Differentiate the parameters of the last ``blocks`` blocks (None: all of them)."""

    def __post_init__(self) -> None:
        _check_blocks(self.blocks)


def per_sample_gradient_similarity(context: ExpansionContext, positions: torch.Tensor, blocks: int,
                                   direction: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dot, norm)`` of each sample's loss gradient with ``direction`` (last ``blocks`` blocks' parameters)."""
    head = context.head(blocks)
    parameters = {name: p.detach() for name, p in head.named_parameters()}
    buffers = dict(head.named_buffers())

    def loss(params, x, y):
        logits = functional_call(head, (params, buffers), (x.unsqueeze(0),))
        return F.cross_entropy(logits.float(), y.unsqueeze(0))

    gradients = vmap(grad(loss), in_dims=(None, 0, 0))
    size = max(1, min(context.batch_size, PER_SAMPLE_BUDGET // sum(p.numel() for p in parameters.values())))
    dots, norms = [], []
    for chunk in context.chunks(positions, size):
        per_sample = gradients(parameters, context.head_inputs(blocks, chunk), context.labels(chunk))
        flat = {name: g.flatten(1) for name, g in per_sample.items()}
        dots.append(sum((g * direction[name].flatten()).sum(1) for name, g in flat.items()))
        norms.append(sum(g.pow(2).sum(1) for g in flat.values()).sqrt())
    return torch.cat(dots), torch.cat(norms)


@SCORERS.register("gradient")
class GradientSimilarity(Scorer):
    name: ClassVar[str] = "gradient"
    Params: ClassVar[type] = GradientParams

    def score(self, context: ExpansionContext, forget: torch.Tensor, candidates: torch.Tensor,
              params: GradientParams, seed: int) -> torch.Tensor:
        blocks = context.resolve_blocks(params.blocks)
        mean = context.mean_gradient(forget, blocks)
        mean_norm = math.sqrt(sum(g.pow(2).sum().item() for g in mean.values()))
        dots, norms = per_sample_gradient_similarity(context, candidates, blocks, mean)
        return (dots / (norms * mean_norm).clamp_min(1e-30)).double().cpu()


@dataclass(frozen=True)
class LossChangeParams:
    step: float = 0.05
    """Length of the ascent step relative to the norm of the moved parameters."""
    blocks: int | None = 1
    """Move the parameters of the last ``blocks`` blocks (None: all of them)."""

    def __post_init__(self) -> None:
        check_range("step", self.step, 0.0, low_open=True)
        _check_blocks(self.blocks)


@SCORERS.register("loss_change")
class LossChange(Scorer):
    name: ClassVar[str] = "loss_change"
    Params: ClassVar[type] = LossChangeParams

    def score(self, context: ExpansionContext, forget: torch.Tensor, candidates: torch.Tensor,
              params: LossChangeParams, seed: int) -> torch.Tensor:
        blocks = context.resolve_blocks(params.blocks)
        ascent = context.mean_gradient(forget, blocks)
        parameters = dict(context.head(blocks).named_parameters())
        gradient_norm = math.sqrt(sum(g.pow(2).sum().item() for g in ascent.values()))
        parameter_norm = math.sqrt(sum(p.detach().pow(2).sum().item() for p in parameters.values()))
        scale = params.step * parameter_norm / max(gradient_norm, 1e-30)
        moved = {name: p.detach() + scale * ascent[name] for name, p in parameters.items()}
        before = context.losses(candidates, blocks)
        return (context.losses(candidates, blocks, moved) - before).double().cpu()
