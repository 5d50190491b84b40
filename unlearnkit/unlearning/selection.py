"""Model selection without test labels (Goel et al. 2024, Sec. 4).

score = 0.5 * accuracy on the held-out validation split
      + 0.5 * share of S_f whose prediction changed from the original model.

A collapsed model that predicts one class everywhere changes almost every S_f prediction and can
outrank a useful one (seen on Interclass Confusion); :func:`select_best` keeps the paper's rule by
default, flags such picks, and offers ``min_relative_val_acc`` as a guard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from ..data.core import DatasetInfo, ImageSet
from ..data.pipeline import TrainingSet, predict_logits
from ..metrics import accuracy


def forget_predictions(model: torch.nn.Module, forget: TrainingSet, info: DatasetInfo,
                       autocast_bf16: bool = False) -> torch.Tensor:
    """Predictions on S_f as trained on (trigger stamped, no augmentation)."""
    return predict_logits(model, forget.images, info, post_augment=forget.post_augment, index=forget.index,
                          autocast_bf16=autocast_bf16).argmax(1)


@dataclass(frozen=True)
class SelectionScore:
    val_acc: float
    forget_changed: float

    @property
    def score(self) -> float:
        return 0.5 * self.val_acc + 0.5 * self.forget_changed


def selection_score(model: torch.nn.Module, validation: ImageSet, forget: TrainingSet, info: DatasetInfo,
                    original_forget_predictions: torch.Tensor, autocast_bf16: bool = False) -> SelectionScore:
    val_predictions = predict_logits(model, validation, info, autocast_bf16=autocast_bf16).argmax(1)
    after = forget_predictions(model, forget, info, autocast_bf16)
    changed = (after != original_forget_predictions).double().mean().item()
    return SelectionScore(accuracy(val_predictions, validation.labels), changed)


def select_best(runs: pd.DataFrame, group_by: Sequence[str], original_val_acc: float | None = None,
                min_relative_val_acc: float | None = None, collapse_warning: float = 0.5) -> pd.DataFrame:
    """The best-scoring row of each group (columns ``score`` and ``val_acc`` required).

    ``min_relative_val_acc`` (e.g. 0.8) drops candidates whose validation accuracy is below that
    share of the original model's before picking. The result has a ``flag_low_val_acc`` column that
    marks picks whose validation accuracy is below ``collapse_warning`` times the original's.
    """
    # idxmax returns index labels: stacked sweep tables repeat them, and .loc would then pick
    # every row sharing the winning label.
    candidates = runs.reset_index(drop=True)
    if min_relative_val_acc is not None:
        if original_val_acc is None:
            raise ValueError("min_relative_val_acc needs original_val_acc")
        candidates = candidates[candidates["val_acc"] >= min_relative_val_acc * original_val_acc]
    best = candidates.loc[candidates.groupby(list(group_by), dropna=False)["score"].idxmax()].copy()
    threshold = collapse_warning * original_val_acc if original_val_acc is not None else float("-inf")
    best["flag_low_val_acc"] = best["val_acc"] < threshold
    return best.reset_index(drop=True)
