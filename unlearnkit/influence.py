"""How much of the forget set's influence a model still carries, measured against a reference model.

The reference model never saw S_m nor any near-duplicate of its samples: it is trained from scratch
with the original recipe on the training set without them (Goel et al.'s U*_corr, "retraining without
the whole manipulated set"; Xu et al. 2026 ask the same of retraining when near-duplicates remain).
On the identified forget samples S_f, as trained (trigger, label), we compare the mean loss of:

* the original model M_o (which learnt them): ``loss_original``,
* the unlearned model: ``loss``,
* the reference: ``loss_reference``.

``influence_remaining = (loss_reference - loss) / (loss_reference - loss_original)`` is the share of
the original's fit to S_f that is still there: 1 = as the original, 0 = as a model that never saw
them (negative: less fit than the reference, i.e. overshooting). It is NaN when the original fits S_f
no better than the reference (nothing to remove). Beside it: the mean confidence in the trained label
and the loss-threshold membership inference of S_f against unseen test points (Yeom et al.).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .audits import loss_threshold_mia
from .data.core import DatasetInfo, ImageSet
from .data.pipeline import TrainingSet, predict_logits

MIN_GAP = 1e-3
"""Loss gaps (reference - original) below this leave nothing measurable to remove."""


def fit_statistics(model: torch.nn.Module, samples: TrainingSet, info: DatasetInfo) -> dict[str, float]:
    """Mean cross-entropy and mean softmax confidence of the trained labels of ``samples`` (as trained)."""
    logits = predict_logits(model, samples.images, info, post_augment=samples.post_augment, index=samples.index)
    labels = samples.labels.to(logits.device)
    loss = F.cross_entropy(logits, labels, reduction="none")
    confidence = logits.softmax(1).gather(1, labels.view(-1, 1)).flatten()
    return {"loss": loss.mean().item(), "confidence": confidence.mean().item()}


def influence_remaining(loss: float, loss_original: float, loss_reference: float) -> float:
    gap = loss_reference - loss_original
    if not math.isfinite(gap) or gap < MIN_GAP:
        return float("nan")
    return (loss_reference - loss) / gap


def influence_row(model: torch.nn.Module, original: torch.nn.Module, reference: torch.nn.Module,
                  forget: TrainingSet, unseen: ImageSet, info: DatasetInfo) -> dict[str, float]:
    """The influence of ``forget`` left in ``model``, with the original and the reference for scale."""
    mine = fit_statistics(model, forget, info)
    before = fit_statistics(original, forget, info)
    never = fit_statistics(reference, forget, info)
    membership = loss_threshold_mia(model, forget, unseen, info).summary()
    return {
        "sf_loss": mine["loss"], "sf_confidence": mine["confidence"],
        "sf_loss_original": before["loss"], "sf_loss_reference": never["loss"],
        "sf_confidence_reference": never["confidence"],
        "influence_remaining": influence_remaining(mine["loss"], before["loss"], never["loss"]),
        **membership,
    }
