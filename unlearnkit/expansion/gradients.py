"""Scorers that look at the loss landscape of the original model around S_f.

``gradient``: cosine similarity between each candidate's loss gradient and the mean of S_f's unit
gradients (labels as trained; the plain mean is dominated by the S_f samples the model fits worst). Samples that teach the model the same thing as S_f (the same trigger-to-target
rule, the same swapped pair) push the parameters the same way; clean samples of the affected classes
push the other way. Per-sample gradients of the last ``blocks`` blocks come from ``torch.func``
(vmap of grad), in chunks whose size bounds the memory, and are never stored.

``loss_change``: how much each candidate's loss rises when the model takes one step of gradient
ascent on S_f, the direction an unlearner moves in. To first order the change is the learning rate
times the dot product of the two gradients, i.e. the unnormalised ``gradient`` score; here the
step is taken for real (its length ``step`` relative to the norm of the moved parameters) and the loss
evaluated again, which keeps the curvature along the step and needs two forward passes per
candidate instead of a per-sample backward pass. By default the change is relative (of the log
loss): a memorised sample has a loss near zero whose absolute change is tiny whatever the step does
to it, and memorised samples are exactly what shares the manipulation with S_f.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
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
    unit_mean: bool = True
    """Compare with the mean of S_f's unit gradients (True) or with the gradient of S_f's mean loss."""

    def __post_init__(self) -> None:
        _check_blocks(self.blocks)


def per_sample_gradients(context: ExpansionContext, positions: torch.Tensor, blocks: int
                         ) -> Iterator[dict[str, torch.Tensor]]:
    """Each sample's loss gradient w.r.t. the last ``blocks`` blocks' parameters, chunk by chunk
    (``{name: [chunk, numel]}``); a chunk holds at most :data:`PER_SAMPLE_BUDGET` entries."""
    head = context.head(blocks)
    parameters = {name: p.detach() for name, p in head.named_parameters()}
    buffers = dict(head.named_buffers())

    def loss(params, x, y):
        logits = functional_call(head, (params, buffers), (x.unsqueeze(0),))
        return F.cross_entropy(logits.float(), y.unsqueeze(0))

    gradients = vmap(grad(loss), in_dims=(None, 0, 0))
    size = max(1, min(context.batch_size, PER_SAMPLE_BUDGET // sum(p.numel() for p in parameters.values())))
    for chunk in context.chunks(positions, size):
        per_sample = gradients(parameters, context.head_inputs(blocks, chunk), context.labels(chunk))
        yield {name: g.flatten(1) for name, g in per_sample.items()}


def _norms(flat: dict[str, torch.Tensor]) -> torch.Tensor:
    return sum(g.pow(2).sum(1) for g in flat.values()).sqrt()


def per_sample_gradient_similarity(context: ExpansionContext, positions: torch.Tensor, blocks: int,
                                   direction: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dot, norm)`` of each sample's loss gradient with ``direction`` (last ``blocks`` blocks' parameters)."""
    dots, norms = [], []
    for flat in per_sample_gradients(context, positions, blocks):
        dots.append(sum((g * direction[name].flatten()).sum(1) for name, g in flat.items()))
        norms.append(_norms(flat))
    return torch.cat(dots), torch.cat(norms)


def mean_unit_gradient(context: ExpansionContext, positions: torch.Tensor, blocks: int) -> dict[str, torch.Tensor]:
    """The mean of the samples' unit-length loss gradients: every sample of S_f counts alike, so the few
    the model fits worst (whose gradients are largest) do not set the direction alone."""
    total: dict[str, torch.Tensor] = {}
    for flat in per_sample_gradients(context, positions, blocks):
        unit = _norms(flat).clamp_min(1e-30).unsqueeze(1)
        for name, g in flat.items():
            total[name] = total.get(name, 0) + (g / unit).sum(0)
    return {name: value / len(positions) for name, value in total.items()}


@SCORERS.register("gradient")
class GradientSimilarity(Scorer):
    name: ClassVar[str] = "gradient"
    Params: ClassVar[type] = GradientParams

    def score(self, context: ExpansionContext, forget: torch.Tensor, candidates: torch.Tensor,
              params: GradientParams, seed: int) -> torch.Tensor:
        blocks = context.resolve_blocks(params.blocks)
        if params.unit_mean:
            direction = mean_unit_gradient(context, forget, blocks)
        else:
            direction = {name: g.flatten() for name, g in context.mean_gradient(forget, blocks).items()}
        direction_norm = math.sqrt(sum(g.pow(2).sum().item() for g in direction.values()))
        dots, norms = per_sample_gradient_similarity(context, candidates, blocks, direction)
        return (dots / (norms * direction_norm).clamp_min(1e-30)).double().cpu()


@dataclass(frozen=True)
class LossChangeParams:
    step: float = 0.05
    """Length of the ascent step relative to the norm of the moved parameters."""
    blocks: int | None = 1
    """Move the parameters of the last ``blocks`` blocks (None: all of them)."""
    relative: bool = True
    """Score the change of the log loss (True) or of the loss itself."""

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
        before = context.losses(candidates, blocks, log=params.relative)
        return (context.losses(candidates, blocks, moved, log=params.relative) - before).cpu()
