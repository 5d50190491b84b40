"""NPO: negative preference optimisation (Zhang, Lin, Bai & Mei, "Negative Preference Optimization:
From Catastrophic Collapse to Effective Unlearning", COLM 2024; arXiv 2404.05868).

NPO treats the forget samples as dispreferred answers of a DPO objective with no preferred one. With
the frozen original model M_o as the reference policy and ``pi(y | x)`` the model's probability of the
label ``y`` the sample was trained with (a class here; a whole answer for a generative model):

    L_NPO = -(2 / beta) * E_{(x, y) in S_f} [ log sigmoid( -beta * log(pi_theta(y | x) / pi_ref(y | x)) ) ]

Its gradient is gradient ascent on the forget loss reweighted by ``2 * sigmoid(beta * log-ratio)``,
which is 1 at the start (NPO begins exactly as GA) and falls towards 0 as the forget likelihood drops
below the reference, so unlike GA it slows down instead of collapsing; ``beta -> 0`` gives GA.
``retain_weight > 0`` adds ``retain_weight * CE`` on a retain batch each step (the paper's NPO-RT).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from ..config import check_range
from .base import METHODS, Method, UnlearningResult, UnlearningTask, copy_of_original
from .loop import batches, optimise, set_trainable


def label_log_likelihood(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``log pi(y | x)`` of each sample's label."""
    return torch.log_softmax(logits.float(), dim=1).gather(1, labels.unsqueeze(1)).squeeze(1)


def npo_loss(logits: torch.Tensor, reference_logits: torch.Tensor, labels: torch.Tensor, beta: float) -> torch.Tensor:
    """``-(2 / beta) * mean log sigmoid(-beta * (log pi_theta(y|x) - log pi_ref(y|x)))``."""
    log_ratio = label_log_likelihood(logits, labels) - label_log_likelihood(reference_logits, labels)
    return -(2.0 / beta) * F.logsigmoid(-beta * log_ratio).mean()


@dataclass(frozen=True)
class NPOParams:
    beta: float = 0.1
    """Inverse temperature of the preference loss (Zhang et al. use 0.1)."""
    retain_weight: float = 0.0
    """Weight of the retain cross-entropy (0: pure NPO; > 0: NPO-RT)."""
    lr: float = 0.0025
    """Peak learning rate (as GA, a tenth of the image recipe's; give the language recipe's scale there)."""

    def __post_init__(self) -> None:
        check_range("beta", self.beta, 0.0, low_open=True)
        check_range("retain_weight", self.retain_weight, 0.0)
        check_range("lr", self.lr, 0.0, low_open=True)


@METHODS.register("npo")
class NegativePreferenceOptimization(Method):
    name: ClassVar[str] = "npo"
    Params: ClassVar[type] = NPOParams

    def unlearn(self, task: UnlearningTask, params: NPOParams, steps: int, seed: int) -> UnlearningResult:
        model = copy_of_original(task)
        reference = copy.deepcopy(task.original).eval().requires_grad_(False)
        generator = torch.Generator(device=task.device).manual_seed(seed)
        forget = batches(task.forget, task.info, task.recipe, steps, generator)
        retain = batches(task.retain, task.info, task.recipe, steps, generator) if params.retain_weight > 0 else None

        def step_loss(_: int) -> torch.Tensor:
            inputs, labels, _ = next(forget)
            with torch.no_grad():
                reference_logits = reference(inputs)
            loss = npo_loss(model(inputs), reference_logits, labels, params.beta)
            if retain is not None:
                retain_inputs, retain_labels, _ = next(retain)
                loss = loss + params.retain_weight * F.cross_entropy(model(retain_inputs).float(), retain_labels)
            return loss

        optimise(model, set_trainable(model, []), task.recipe, params.lr, steps, step_loss, description="NPO")
        batch = min(task.recipe.batch_size, len(task.forget))
        if retain is not None:
            batch += min(task.recipe.batch_size, len(task.retain))
        return UnlearningResult(model, steps, 0.0, steps * batch)
