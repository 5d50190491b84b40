"""Running methods over forget sets of an original model, one tidy row per run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch

from ..audits import ModelAudit, audit_model
from ..config import to_dict
from ..experiment import TrainedOriginal
from ..manipulations import forget_sets
from ..metrics import Predictions, corrective_metrics
from .base import Budget, UnlearningResult, method_params, unlearn
from .selection import SelectionScore, forget_predictions, selection_score
from .task import make_task


def unlearn_evaluate_and_audit(original: TrainedOriginal, method: str, params: Any, alpha: float,
                               forget: torch.Tensor, budget: Budget | None = None,
                               seed: int = 0) -> tuple[dict[str, Any], ModelAudit]:
    """Unlearn the forget set ``forget`` (positions in S_tr) with ``method``, evaluate and audit the result.

    The row holds the experiment's identity, method and hyper-parameters, the requested budget (None:
    the method's default), alpha, |S_m|, |S_f|, every metric of
    :func:`unlearnkit.metrics.corrective_metrics`, the audits of :meth:`ModelAudit.row` (membership
    inference on S_f for every manipulation; the Gaussian Unlearning Score when the manipulation
    carries noise), the validation selection score and the cost (steps, seconds, samples seen). The
    audit keeps the per-sample losses and ``I_z`` for histograms.
    """
    task = make_task(original, forget)
    splits, manipulated = original.splits, original.manipulated
    bf16 = original.config.train.bf16  # evaluate in the precision the model was trained in
    before = forget_predictions(original.model, task.forget, task.info, bf16)
    result = unlearn(method, task, params, budget, seed)
    score = selection_score(result.model, task.validation, task.forget, task.info, before, bf16)
    predictions = Predictions.of(result.model, splits, manipulated, autocast_bf16=bf16)
    audit = audit_model(result.model, splits, manipulated, forget, predictions, bf16)
    row = {
        "manipulation": manipulated.name,
        "dataset": splits.info.name,
        "model": original.config.model,
        "seed": seed,
        "method": method,
        "params": to_dict(method_params(method, params) if isinstance(params, Mapping) else params),
        "budget_fraction": budget.fraction if budget else None,
        "budget_steps": budget.steps if budget else None,
        "alpha": alpha,
        "n_manipulated": manipulated.n_manipulated,
        "n_forget": len(forget),
        **corrective_metrics(predictions, splits, manipulated, forget),
        **audit.row(),
        **selection_and_cost(score, result),
    }
    return row, audit


def selection_and_cost(score: SelectionScore, result: UnlearningResult) -> dict[str, Any]:
    """The row's selection score (validation accuracy, changed S_f predictions) and the run's cost."""
    return {"val_acc": score.val_acc, "forget_changed": score.forget_changed, "score": score.score,
            "unlearn_steps": result.steps, "unlearn_seconds": result.seconds, "unlearn_samples": result.samples_seen,
            **{f"detail_{key}": value for key, value in result.details.items()}}


def unlearn_and_evaluate(original: TrainedOriginal, method: str, params: Any, alpha: float,
                         forget: torch.Tensor, budget: Budget | None = None, seed: int = 0) -> dict[str, Any]:
    """The row of :func:`unlearn_evaluate_and_audit`."""
    return unlearn_evaluate_and_audit(original, method, params, alpha, forget, budget, seed)[0]


def run_alpha_sweep(original: TrainedOriginal, method: str, alphas: Sequence[float],
                    params: Mapping[str, Any] | None = None, budget: Budget | None = None,
                    seed: int = 0, forget_seed: int = 0) -> pd.DataFrame:
    """Unlearn with ``method`` at every alpha (nested forget sets), one row per alpha."""
    hyper = method_params(method, params)
    sets = forget_sets(original.manipulated.manipulated, alphas, forget_seed)
    rows = [unlearn_and_evaluate(original, method, hyper, alpha, forget, budget, seed) for alpha, forget in sets.items()]
    return pd.DataFrame.from_records(rows)
