"""Selective Synaptic Dampening (Foster et al., "Fast Machine Unlearning Without Retraining Through
Selective Synaptic Dampening", AAAI 2024; arXiv 2308.07707). Training-free.

1. Importance of parameter j on data X: ``I_X[j]`` = mean over the mini-batches of X of the squared
   gradient of the batch-mean loss (a diagonal Fisher estimate), model in eval mode. Batch-level
   squares make the value depend on the batch size, which is recorded.
2. Select parameters with ``I_f[j] > a * I_X[j]`` (``a`` = selection weighting, default 10).
3. Dampen them: ``theta_j <- min(lam * I_X[j] / I_f[j], 1) * theta_j`` (``lam`` = dampening, default 1).

``X`` is the retain set (Goel et al. 2024) or the whole training set (Foster et al.). Every
parameter (weights, biases, norm affine) is eligible; batch-norm running statistics are buffers
and stay untouched.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import time
import weakref
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F

from ..config import check_range
from ..data.core import DatasetInfo
from ..data.pipeline import TrainingSet, prepare
from .badt import union
from .base import METHODS, Method, UnlearningResult, UnlearningTask


@torch.no_grad()
def _accumulate(squares: list[torch.Tensor], grads: tuple[torch.Tensor, ...]) -> None:
    torch._foreach_addcmul_(squares, grads, grads)


@torch.no_grad()
def _in_channels_last(parameters: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """The parameters to differentiate: each 4-D one in channels_last, as ``module.to`` would store it.

    A convolution runs in NHWC when its input or its weight is channels_last, and a one-channel input
    (MNIST) is ambiguous, so with NCHW weights the network would run in NCHW. With channels_last
    weights it runs exactly as a model converted by the trainer (``model.to(memory_format=...)``)
    does, whatever layout the caller's model has: same kernels, hence bitwise the same importances.
    Converted weights are detached copies with the same values and ``requires_grad``, so the caller's
    model is never touched; weights already in that layout are used as they are.
    """
    converted = []
    for p in parameters:
        q = p.to(memory_format=torch.channels_last) if p.dim() == 4 else p
        converted.append(p if q is p else q.requires_grad_(p.requires_grad))
    return tuple(converted)


def importance(model: torch.nn.Module, data: TrainingSet, info: DatasetInfo, batch_size: int,
               channels_last: bool = True) -> dict[str, torch.Tensor]:
    """Mean over fixed-order mini-batches of the squared gradient of the batch-mean cross-entropy.

    Samples are presented as they were trained on (manipulation hook applied, no augmentation).
    The model is put in eval mode, so batch-norm uses its running statistics and nothing changes.
    With ``channels_last`` the convolutions run in NHWC (inputs and, through detached copies, the
    weights); the importances come back in the layout of the model's own parameters.
    """
    was_training = model.training
    model.eval()
    names, parameters = zip(*model.named_parameters())
    differentiated = _in_channels_last(parameters) if channels_last else parameters
    if all(d is p for d, p in zip(differentiated, parameters)):
        forward = model
    else:
        forward = functools.partial(torch.func.functional_call, model, dict(zip(names, differentiated)))
    squares = [torch.zeros_like(d, memory_format=torch.preserve_format) for d in differentiated]
    batches = 0
    try:
        for start in range(0, len(data), batch_size):
            stop = min(start + batch_size, len(data))
            inputs = prepare(data.images[start:stop], data.index[start:stop], info, data.post_augment, channels_last)
            loss = F.cross_entropy(forward(inputs), data.labels[start:stop])
            _accumulate(squares, torch.autograd.grad(loss, differentiated))
            batches += 1
    finally:
        model.train(was_training)
    return {name: _in_layout_of(p, square.div_(max(batches, 1))) for name, square, p in zip(names, squares, parameters)}


def _in_layout_of(parameter: torch.Tensor, square: torch.Tensor) -> torch.Tensor:
    return square if square.stride() == parameter.stride() else torch.empty_like(parameter).copy_(square)


@dataclass
class SSDImportances:
    """Per-parameter-tensor importances on the forget set and the reference set, and their ratio."""

    forget: dict[str, torch.Tensor]
    reference: dict[str, torch.Tensor]
    batch_size: int
    reference_set: str

    def ratio(self) -> dict[str, torch.Tensor]:
        """``I_f / I_X`` element-wise (inf where only the forget set moves a parameter, NaN for 0/0)."""
        return {name: self.forget[name] / self.reference[name] for name in self.forget}


def ssd_importances(task: UnlearningTask, batch_size: int | None = None,
                    reference_set: Literal["retain", "full"] = "retain") -> SSDImportances:
    """Importances of M_o on S_f and on the retain set (Goel et al.) or all of S_tr (Foster et al.)."""
    batch_size = batch_size or task.recipe.batch_size
    reference = task.retain if reference_set == "retain" else union(task.retain, task.forget)
    model = task.original
    return SSDImportances(
        forget=importance(model, task.forget, task.info, batch_size, task.recipe.channels_last),
        reference=importance(model, reference, task.info, batch_size, task.recipe.channels_last),
        batch_size=batch_size,
        reference_set=reference_set,
    )


@torch.no_grad()
def dampen(model: torch.nn.Module, importances: SSDImportances, selection_weighting: float,
           dampening: float) -> dict[str, int]:
    """Apply steps 2-3 in place; return the number of selected parameters per tensor."""
    selected_counts = {}
    for name, parameter in model.named_parameters():
        forget, reference = importances.forget[name], importances.reference[name]
        selected = forget > selection_weighting * reference
        factor = (dampening * reference / forget).clamp(max=1.0)
        parameter.copy_(torch.where(selected, factor * parameter, parameter))
        selected_counts[name] = int(selected.sum())
    return selected_counts


@dataclass(frozen=True)
class SSDParams:
    selection_weighting: float = 10.0
    """``a``: select parameters with I_f > a * I_X."""
    dampening: float = 1.0
    """``lam``: scale selected parameters by min(lam * I_X / I_f, 1)."""
    batch_size: int | None = None
    """Mini-batch size of the importance estimate (None: the training recipe's)."""
    reference_set: Literal["retain", "full"] = "retain"

    def __post_init__(self) -> None:
        check_range("selection_weighting", self.selection_weighting, 0.0, low_open=True)
        check_range("dampening", self.dampening, 0.0, low_open=True)
        if self.batch_size is not None:
            check_range("batch_size", self.batch_size, 1)


@METHODS.register("ssd")
class SelectiveSynapticDampening(Method):
    name: ClassVar[str] = "ssd"
    Params: ClassVar[type] = SSDParams

    uses_budget: ClassVar[bool] = False
    supports_text: ClassVar[bool] = False  # the importances read image batches

    def unlearn(self, task: UnlearningTask, params: SSDParams, steps: int, seed: int) -> UnlearningResult:
        importances, reused_seconds = _shared_importances(task, params.batch_size, params.reference_set)
        model = copy.deepcopy(task.original)
        counts = dampen(model, importances, params.selection_weighting, params.dampening)
        total = sum(p.numel() for p in model.parameters())
        seen = len(task.forget) + (len(task.retain) if params.reference_set == "retain"
                                   else len(task.retain) + len(task.forget))
        return UnlearningResult(model, 0, 0.0, seen, {
            "batch_size": importances.batch_size, "reference_set": params.reference_set,
            "selected_parameters": sum(counts.values()), "selected_share": sum(counts.values()) / total,
            "importances_reused": reused_seconds > 0,
        }, reused_seconds=reused_seconds)


_LAST_IMPORTANCES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _shared_importances(task: UnlearningTask, batch_size: int | None,
                        reference_set: Literal["retain", "full"]) -> tuple[SSDImportances, float]:
    """The importances of ``task``, reused when the previous SSD run had the same model and data.

    A hyper-parameter grid (Goel et al. sweep 50 pairs of a and lam) needs the importances only once
    per forget set. The reused result carries the seconds it took, so each run's cost stays the cost
    of running SSD on its own. Only the latest entry per model is kept.
    """
    key = (hashlib.sha1(task.forget.index.cpu().numpy().tobytes()).hexdigest(),
           hashlib.sha1(task.retain.index.cpu().numpy().tobytes()).hexdigest(),
           batch_size or task.recipe.batch_size, reference_set, task.recipe.channels_last)
    cached = _LAST_IMPORTANCES.get(task.original)
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    started = time.perf_counter()
    importances = ssd_importances(task, batch_size, reference_set)
    _LAST_IMPORTANCES[task.original] = (key, importances, time.perf_counter() - started)
    return importances, 0.0
