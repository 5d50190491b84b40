"""Expand-then-unlearn: any registered method, run on S_f plus what an expansion adds to it.

One wrapper for every method: the expansion only changes which samples the method is told to
forget (and so which remain in its retain set); the method itself is called through the ordinary
:func:`~unlearnkit.unlearning.unlearn`. The expansion sees the original model and the training set
only (an :class:`ExpansionContext`), and the method gets the usual :class:`UnlearningTask` (retain,
forget, validation split): the test set reaches neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ..config import to_dict
from ..experiment import TrainedOriginal
from ..influence import influence_row
from ..manipulations import NearDuplicated, related_positions
from ..metrics import evaluate
from ..unlearning import Budget, UnlearningResult, UnlearningTask, make_task, method_params, unlearn
from ..unlearning.selection import forget_predictions, selection_score
from .base import Expansion, ExpansionPolicy, expand, expansion_quality
from .context import ExpansionContext


@dataclass
class ExpandedUnlearning:
    result: UnlearningResult
    expansion: Expansion
    task: UnlearningTask
    """The task the method was given: forget = the expanded set."""


def expand_then_unlearn(original: TrainedOriginal, method: str, params: Mapping[str, Any] | Any | None,
                        forget: torch.Tensor, policy: ExpansionPolicy | None, budget: Budget | None = None,
                        seed: int = 0, context: ExpansionContext | None = None) -> ExpandedUnlearning:
    """Expand S_f with ``policy`` (None: no expansion), then unlearn the expanded set with ``method``.

    ``context`` may be shared between calls on the same original model (it caches features).
    """
    if policy is None:
        expansion = Expansion(forget, forget[:0])
    else:
        expansion = expand(context or ExpansionContext.of(original), forget, policy, seed)
    task = make_task(original, expansion.expanded)
    return ExpandedUnlearning(unlearn(method, task, params, budget, seed), expansion, task)


def expansion_columns(expansion: Expansion, original: TrainedOriginal) -> dict[str, Any]:
    """What was added and how well it matches what should be removed (S_m and its near-duplicates)."""
    manipulated = original.manipulated
    duplicates = manipulated.duplicates if isinstance(manipulated, NearDuplicated) else None
    quality = expansion_quality(expansion.added, expansion.forget, related_positions(manipulated), duplicates)
    policy = expansion.policy
    return {
        "expansion": policy.label if policy else "none",
        "expansion_scorer": policy.scorer if policy else "none",
        "expansion_params": to_dict(policy.params) if policy else {},
        "expansion_size": policy.size.label if policy else "",
        "n_expanded": len(expansion.forget) + len(expansion.added),
        "n_added": quality["n_added"],
        "expansion_precision": quality["precision"],
        "expansion_recall": quality["recall"],
        "expansion_recall_sm": quality["recall_sm"],
        "expansion_recall_duplicates": quality["recall_duplicates"],
    }


def expand_unlearn_and_evaluate(original: TrainedOriginal, method: str, params: Any, alpha: float,
                                forget: torch.Tensor, policy: ExpansionPolicy | None,
                                reference: torch.nn.Module | None = None, budget: Budget | None = None,
                                seed: int = 0, context: ExpansionContext | None = None) -> dict[str, Any]:
    """One tidy row: :func:`expand_then_unlearn`, then the corrective metrics and the influence left.

    Metrics on S_f (``acc_sf_clean``, influence) use the identified set itself, so rows with and
    without expansion compare on the same samples; the selection score's "changed predictions" uses
    the expanded set, which is what the developer believes is manipulated. ``reference`` (a model that
    never saw S_m or its near-duplicates) adds the influence columns of :mod:`unlearnkit.influence`.
    """
    bf16 = original.config.train.bf16
    info = original.splits.info
    training_set = original.manipulated.train
    run = expand_then_unlearn(original, method, params, forget, policy, budget, seed, context)
    expanded_before = forget_predictions(original.model, run.task.forget, info, bf16)
    score = selection_score(run.result.model, run.task.validation, run.task.forget, info, expanded_before, bf16)
    row = {
        "manipulation": original.manipulated.name,
        "dataset": info.name,
        "model": original.config.model,
        "seed": seed,
        "method": method,
        "params": to_dict(method_params(method, params) if params is None or isinstance(params, Mapping) else params),
        "budget_fraction": budget.fraction if budget else None,
        "budget_steps": budget.steps if budget else None,
        "alpha": alpha,
        "n_manipulated": original.manipulated.n_manipulated,
        "n_forget": len(forget),
        **expansion_columns(run.expansion, original),
        **evaluate(run.result.model, original.splits, original.manipulated, forget, autocast_bf16=bf16),
        "val_acc": score.val_acc,
        "forget_changed": score.forget_changed,
        "score": score.score,
        "unlearn_steps": run.result.steps,
        "unlearn_seconds": run.result.seconds,
        "unlearn_samples": run.result.samples_seen,
    }
    if reference is not None:
        row.update(influence_row(run.result.model, original.model, reference, training_set.only(forget),
                                 original.splits.test, info))
    return row
