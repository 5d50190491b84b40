"""Unlearning a fine-tuned language model through the method registry, one tidy row per run.

The task is the one every method gets (:class:`unlearnkit.unlearning.UnlearningTask`) with tokenised
sets in place of image sets: they batch themselves, and the model takes a token batch, so GA, CF / GD,
NGD, NegGrad+, SCRUB, BadT, NPO and RewoD run unchanged. RewoD here is exact unlearning for
fine-tuning: fine-tune the same pretrained model again, from a fresh head, on the retain set. Budgets
are shares of the original fine-tuning steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..config import to_dict
from ..metrics import accuracy
from ..unlearning import METHODS, Budget, UnlearningTask, method_params, unlearn
from ..unlearning.runner import selection_and_cost
from ..unlearning.selection import SelectionScore
from .experiment import TrainedLanguageOriginal
from .metrics import TextAudits, text_audits, text_metrics
from .pipeline import predict_token_logits


def make_text_task(original: TrainedLanguageOriginal, forget: torch.Tensor) -> UnlearningTask:
    """Retain = S_tr \\ S_f (still holding S_m \\ S_f), forget = S_f, the validation split, the recipe."""
    data = original.data
    forget = forget.to(data.train.device)
    return UnlearningTask(original=original.model, info=data.splits.info, retain=data.train.without(forget),
                          forget=data.train.only(forget), validation=data.val, recipe=original.config.train,
                          new_model=original.new_model)


def selection(model: torch.nn.Module, original: TrainedLanguageOriginal, task: UnlearningTask,
              before: torch.Tensor) -> SelectionScore:
    """Goel et al.'s label-free score: validation accuracy and the share of S_f predictions changed."""
    bf16 = original.config.train.bf16
    val = predict_token_logits(model, task.validation, autocast_bf16=bf16).argmax(1)
    after = predict_token_logits(model, task.forget, autocast_bf16=bf16).argmax(1)
    return SelectionScore(accuracy(val, task.validation.labels), (after != before).double().mean().item())


def text_unlearning_run(original: TrainedLanguageOriginal, method: str, params: Any, alpha: float,
                        forget: torch.Tensor, budget: Budget | None = None, seed: int = 0,
                        before: Mapping[str, float] | None = None) -> tuple[dict[str, Any], TextAudits]:
    """Unlearn ``forget`` (positions in S_tr) with ``method``: the tidy row and the audits of the result.

    The row holds the run's identity, metrics, audits, the selection score and the cost; ``before``
    (M_o's audit summary on the same forget set) is copied into ``before_*`` columns.
    """
    config = original.config
    bf16 = config.train.bf16
    task = make_text_task(original, forget)
    before_predictions = predict_token_logits(original.model, task.forget, autocast_bf16=bf16).argmax(1)
    result = unlearn(method, task, params, budget, seed)
    score = selection(result.model, original, task, before_predictions)
    audits = text_audits(result.model, original.data, forget, bf16)
    hyper = method_params(method, params) if params is None or isinstance(params, Mapping) else params
    row = {
        "manipulation": original.data.manipulated.name,
        "dataset": original.data.splits.info.name,
        "model": config.model,
        "seed": seed,
        "method": METHODS.get(method).name,
        "params": to_dict(hyper),
        "budget_fraction": budget.fraction if budget else None,
        "budget_steps": budget.steps if budget else None,
        "alpha": alpha,
        "n_manipulated": original.data.manipulated.n_manipulated,
        "n_forget": len(forget),
        **text_metrics(result.model, original.data, forget, bf16),
        **audits.summary(),
        **{f"before_{key}": value for key, value in (before or {}).items()},
        **selection_and_cost(score, result),
    }
    return row, audits


def text_unlearn_and_evaluate(original: TrainedLanguageOriginal, method: str, params: Any, alpha: float,
                              forget: torch.Tensor, budget: Budget | None = None, seed: int = 0) -> dict[str, Any]:
    """The tidy row of :func:`text_unlearning_run`, with M_o's audits on the same forget set as ``before_*``."""
    before = text_audits(original.model, original.data, forget, original.config.train.bf16).summary()
    return text_unlearning_run(original, method, params, alpha, forget, budget, seed, before)[0]
