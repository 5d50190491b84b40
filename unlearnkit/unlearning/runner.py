"""Running methods over forget sets of an original model, one tidy row per run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ..config import to_dict
from ..experiment import TrainedOriginal
from ..manipulations import forget_sets
from ..metrics import evaluate
from .base import Budget, method_params, unlearn
from .selection import forget_predictions, selection_score
from .task import make_task


def run_alpha_sweep(original: TrainedOriginal, method: str, alphas: Sequence[float],
                    params: Mapping[str, Any] | None = None, budget: Budget | None = None,
                    seed: int = 0, forget_seed: int = 0) -> pd.DataFrame:
    """Unlearn with ``method`` at every alpha (nested forget sets) and evaluate each result.

    Columns: the experiment's identity, method and hyper-parameters, alpha, |S_m|, |S_f|, every
    metric of :func:`unlearnkit.metrics.corrective_metrics`, the validation selection score and
    the cost (steps, seconds, samples seen).
    """
    hyper = method_params(method, params)
    sets = forget_sets(original.manipulated.manipulated, alphas, forget_seed)
    rows = []
    for alpha, forget in sets.items():
        task = make_task(original, forget)
        before = forget_predictions(original.model, task.forget, task.info)
        result = unlearn(method, task, hyper, budget, seed)
        score = selection_score(result.model, task.validation, task.forget, task.info, before)
        rows.append({
            "manipulation": original.manipulated.name,
            "dataset": original.splits.info.name,
            "model": original.config.model,
            "seed": seed,
            "method": method,
            "params": to_dict(hyper),
            "alpha": alpha,
            "n_manipulated": original.manipulated.n_manipulated,
            "n_forget": len(forget),
            **evaluate(result.model, original.splits, original.manipulated, forget),
            "val_acc": score.val_acc,
            "forget_changed": score.forget_changed,
            "score": score.score,
            "unlearn_steps": result.steps,
            "unlearn_seconds": result.seconds,
            "unlearn_samples": result.samples_seen,
            **{f"detail_{key}": value for key, value in result.details.items()},
        })
    return pd.DataFrame.from_records(rows)
