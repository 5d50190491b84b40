"""Metrics of a text classifier under a manipulation, with the same names as the image metrics.

``acc_clean`` (test accuracy), ``acc_corr`` (accuracy on the triggered test texts against their clean
labels), ``asr`` (triggered texts of non-target classes predicted as the target), ``acc_retain`` (the
test texts outside D_m: all of them, as for BadNet), the clean-label accuracy on S_m and how well S_m
still fits its manipulated labels, split into S_f and S_m \\ S_f when a forget set is given; then the
audits: loss-threshold MIA of S_f against unseen test texts and, for Gaussian poisons, the GUS.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..audits import GaussianUnlearningScore, MembershipInference
from ..metrics import accuracy, attack_success_rate
from .audits import embedding_gus, text_loss_mia
from .experiment import TextData
from .pipeline import predict_token_logits


def _predict(model, data, bf16: bool) -> torch.Tensor:
    if len(data) == 0:
        return torch.empty(0, dtype=torch.int64)
    return predict_token_logits(model, data, autocast_bf16=bf16).argmax(1).cpu()


def text_metrics(model: torch.nn.Module, data: TextData, forget: torch.Tensor | None = None,
                 autocast_bf16: bool = False) -> dict[str, float]:
    manipulated = data.manipulated
    positions = manipulated.manipulated
    test_labels = data.test.labels.cpu()
    test = _predict(model, data.test, autocast_bf16)
    affected = _predict(model, data.affected, autocast_bf16)
    affected_labels = data.affected.labels.cpu()
    sm = _predict(model, data.train.subset(positions.to(data.train.device)), autocast_bf16)
    clean = manipulated.clean_train_labels[positions].cpu()
    trained_labels = manipulated.train.labels[positions].cpu()
    row = {
        "acc_clean": accuracy(test, test_labels),
        "acc_corr": accuracy(affected, affected_labels),
        "acc_retain": accuracy(test, test_labels),
        "asr": (attack_success_rate(affected, affected_labels, manipulated.target_class)
                if manipulated.target_class is not None else float("nan")),
        "acc_sm_clean": accuracy(sm, clean),
        "fit_sm_manipulated": accuracy(sm, trained_labels),
    }
    if forget is not None:
        in_forget = torch.isin(positions, forget.cpu())
        row["acc_sf_clean"] = accuracy(sm[in_forget], clean[in_forget])
        row["acc_sm_minus_sf_clean"] = accuracy(sm[~in_forget], clean[~in_forget])
        row["fit_sf_manipulated"] = accuracy(sm[in_forget], trained_labels[in_forget])
    return row


@dataclass
class TextAudits:
    """Loss-threshold MIA of S_f against unseen test texts and, for Gaussian poisons, the GUS on S_f."""

    mia: MembershipInference
    gus: GaussianUnlearningScore | None

    def summary(self) -> dict[str, float]:
        return {**self.mia.summary(), **(self.gus.summary() if self.gus is not None else {})}


def text_audits(model: torch.nn.Module, data: TextData, forget: torch.Tensor, autocast_bf16: bool = False,
                control_seed: int = 12345) -> TextAudits:
    """The audits of ``model`` on the forget set as trained on (trigger, target label or noise included)."""
    members = data.train.only(forget.to(data.train.device))
    gus = embedding_gus(model, members, data.eps, control_seed) if data.eps is not None else None
    return TextAudits(text_loss_mia(model, members, data.test, autocast_bf16), gus)


def original_metrics(model: torch.nn.Module, data: TextData, autocast_bf16: bool = False) -> dict[str, float]:
    """M_o's metrics, with the audits over all of S_m and the share of S_m cut at the token limit."""
    positions = data.manipulated.manipulated
    return {**text_metrics(model, data, autocast_bf16=autocast_bf16),
            **text_audits(model, data, positions, autocast_bf16).summary(),
            "truncated_sm": data.truncated_manipulated}
