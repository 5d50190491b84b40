"""Corrective-unlearning metrics (Goel et al. 2024, Sec. 3) computed from aligned predictions.

Every function takes predicted classes and labels that line up sample by sample; the evaluation
loop never shuffles, so position i of the predictions is sample i of the evaluated set.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .data.core import DataSplits
from .data.pipeline import predict_logits
from .manipulations.base import Manipulated


def accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of ``predictions`` equal to ``labels``; NaN for an empty set (nothing to measure)."""
    if predictions.shape != labels.shape:
        raise ValueError(f"predictions {tuple(predictions.shape)} and labels {tuple(labels.shape)} differ in shape")
    if len(labels) == 0:
        return float("nan")
    return (predictions == labels).double().mean().item()


def acc_corr(affected_predictions: torch.Tensor, clean_labels: torch.Tensor) -> float:
    """Accuracy on the affected domain D_m against the clean labels."""
    return accuracy(affected_predictions, clean_labels)


def acc_retain(test_predictions: torch.Tensor, test_labels: torch.Tensor, retain_mask: torch.Tensor) -> float:
    """Accuracy on the test samples outside D_m."""
    return accuracy(test_predictions[retain_mask], test_labels[retain_mask])


def attack_success_rate(triggered_predictions: torch.Tensor, clean_labels: torch.Tensor, target_class: int) -> float:
    """Share of triggered test images of non-target classes that are predicted as the target class."""
    non_target = clean_labels != target_class
    hits = triggered_predictions[non_target] == target_class
    return hits.double().mean().item() if len(hits) else float("nan")


def poison_success_rate(target_predictions: torch.Tensor, adversarial_labels: torch.Tensor) -> float:
    """Targeted poisoning (Geiping et al. 2021): share of the target test images predicted as the label
    the attacker chose for them."""
    return accuracy(target_predictions, adversarial_labels.to(target_predictions.device))


@dataclass
class Predictions:
    """A model's predictions on the sets every metric is measured on, aligned with sample order.

    The per-sample losses (test set against its labels, S_m as trained against the labels trained
    on) let the membership audit reuse this forward pass instead of making its own.
    """

    test: torch.Tensor
    affected: torch.Tensor
    manipulated_train: torch.Tensor  # on S_m as trained (trigger stamped), in the order of ``manipulated``
    test_losses: torch.Tensor | None = None
    manipulated_train_losses: torch.Tensor | None = None

    @classmethod
    def of(cls, model: torch.nn.Module, splits: DataSplits, manipulated: Manipulated,
           batch_size: int = 1024, autocast_bf16: bool = False) -> Predictions:
        info = splits.info
        train = manipulated.train
        positions = manipulated.manipulated
        test_logits = predict_logits(model, splits.test, info, batch_size, autocast_bf16=autocast_bf16)
        manipulated_logits = predict_logits(
            model, train.images[positions], info, batch_size,
            post_augment=train.post_augment, index=train.index[positions], autocast_bf16=autocast_bf16,
        )
        return cls(
            test=test_logits.argmax(1),
            affected=predict_logits(model, manipulated.affected_test, info, batch_size,
                                    autocast_bf16=autocast_bf16).argmax(1),
            manipulated_train=manipulated_logits.argmax(1),
            test_losses=F.cross_entropy(test_logits, splits.test.labels.to(test_logits.device), reduction="none"),
            manipulated_train_losses=F.cross_entropy(manipulated_logits, train.labels[positions].to(
                manipulated_logits.device), reduction="none"),
        )


def corrective_metrics(predictions: Predictions, splits: DataSplits, manipulated: Manipulated,
                       forget: torch.Tensor | None = None) -> dict[str, float]:
    """All metrics of one model as a flat dict (NaN where a metric does not apply).

    ``forget`` (positions of S_f in the training set) adds the clean-label accuracies on S_f and on
    the unidentified rest S_m \\ S_f, and how well S_f still fits its manipulated labels.
    """
    test_labels = splits.test.labels
    positions = manipulated.manipulated
    clean = manipulated.clean_train_labels[positions]
    manipulated_labels = manipulated.train.labels[positions]
    sm_predictions = predictions.manipulated_train
    row = {
        "acc_clean": accuracy(predictions.test, test_labels),
        "acc_corr": acc_corr(predictions.affected, manipulated.affected_test.labels),
        "acc_retain": acc_retain(predictions.test, test_labels, manipulated.retain_test_mask),
        "asr": (attack_success_rate(predictions.affected, manipulated.affected_test.labels, manipulated.target_class)
                if manipulated.target_class is not None else float("nan")),
        "poison_success": (poison_success_rate(predictions.affected, manipulated.adversarial_labels)
                           if manipulated.adversarial_labels is not None else float("nan")),
        "acc_sm_clean": accuracy(sm_predictions, clean),
        "fit_sm_manipulated": accuracy(sm_predictions, manipulated_labels),
    }
    if forget is not None:
        in_forget = torch.isin(positions, forget)
        row["acc_sf_clean"] = accuracy(sm_predictions[in_forget], clean[in_forget])
        row["acc_sm_minus_sf_clean"] = accuracy(sm_predictions[~in_forget], clean[~in_forget])
        row["fit_sf_manipulated"] = accuracy(sm_predictions[in_forget], manipulated_labels[in_forget])
    return row


def evaluate(model: torch.nn.Module, splits: DataSplits, manipulated: Manipulated,
             forget: torch.Tensor | None = None, batch_size: int = 1024,
             autocast_bf16: bool = False) -> dict[str, float]:
    """Predict on every evaluation set and return :func:`corrective_metrics`.

    ``autocast_bf16`` runs inference in bf16 where the device has bf16 units (as the model was
    trained); predictions can then differ from fp32 on a few borderline samples.
    """
    predictions = Predictions.of(model, splits, manipulated, batch_size, autocast_bf16)
    return corrective_metrics(predictions, splits, manipulated, forget)
