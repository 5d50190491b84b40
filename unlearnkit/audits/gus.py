"""The Gaussian Unlearning Score (Pawelczyk et al., "Machine Unlearning Fails to Remove Data Poisoning
Attacks", ICLR 2025): a test of whether a model still carries Gaussian poisons, without a retrained model.

For a poisoned sample with clean input ``x``, label ``y`` and noise ``xi ~ N(0, eps^2 I)``:

    I_z = <xi, g_z> / (eps * ||g_z||_2),    g_z = grad_x loss(theta; x, y)   (at the clean x)

If ``theta`` does not depend on ``xi`` (a model that never saw it), ``I_z`` is exactly N(0, 1): a fixed
unit vector dotted with isotropic Gaussian noise. Training on ``x + xi`` lowers the loss along ``xi``, so
a model that memorised the poison gives ``I_z`` shifted away from 0 (typically negative). We report the
mean, the two-sided z-test p-value of the mean against N(0, 1), and how well ``|I_z|`` separates the
poisons from control noise ``xi'`` that was never trained on (TPR at 1% FPR, ROC AUC).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..data.core import DatasetInfo
from ..data.pipeline import normalise
from .detection import roc_auc, tpr_at_fpr


def input_gradients(model: torch.nn.Module, images01: torch.Tensor, labels: torch.Tensor, info: DatasetInfo,
                    batch_size: int = 256) -> torch.Tensor:
    """``grad_x loss(theta; x, y)`` for each sample, w.r.t. the pixels in [0, 1] (eval mode, fp32).

    In eval mode every sample's loss depends only on its own input, so the gradient of the summed
    loss of a batch gives each sample's own input gradient.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    gradients = []
    try:
        for start in range(0, len(images01), batch_size):
            x = images01[start:start + batch_size].to(device, torch.float32).requires_grad_(True)
            loss = F.cross_entropy(model(normalise(x, info)), labels[start:start + batch_size].to(device),
                                   reduction="sum")
            gradients.append(torch.autograd.grad(loss, x)[0].detach())
    finally:
        model.train(was_training)
    return torch.cat(gradients) if gradients else torch.empty_like(images01, dtype=torch.float32)


def unlearning_scores(gradients: torch.Tensor, noise: torch.Tensor, eps: float) -> torch.Tensor:
    """``I_z = <xi, g_z> / (eps ||g_z||)`` per sample (0 where the gradient vanishes)."""
    g = gradients.flatten(1).double()
    xi = noise.to(g.device).flatten(1).double()
    norms = g.norm(dim=1)
    return torch.where(norms > 0, (xi * g).sum(1) / (eps * norms.clamp_min(1e-300)), torch.zeros_like(norms))


def two_sided_p_value(scores: torch.Tensor) -> float:
    """p-value of the z-test that i.i.d. N(0, 1) scores have mean 0: ``z = sqrt(n) * mean``."""
    if len(scores) == 0:
        return float("nan")
    z = math.sqrt(len(scores)) * scores.double().mean().item()
    return math.erfc(abs(z) / math.sqrt(2))


@dataclass
class GaussianUnlearningScore:
    scores: torch.Tensor
    """``I_z`` of every poison (CPU, float64)."""
    control_scores: torch.Tensor
    """``I_z`` of the same inputs with fresh noise never trained on (the null)."""

    @property
    def mean(self) -> float:
        return self.scores.mean().item()

    @property
    def std(self) -> float:
        return self.scores.std().item()

    @property
    def p_value(self) -> float:
        return two_sided_p_value(self.scores)

    def tpr_at_fpr(self, fpr: float = 0.01) -> float:
        """Share of poisons whose ``|I_z|`` exceeds the threshold that flags ``fpr`` of the controls."""
        return tpr_at_fpr(self.scores.abs(), self.control_scores.abs(), fpr)

    @property
    def auc(self) -> float:
        return roc_auc(self.scores.abs(), self.control_scores.abs())

    def summary(self) -> dict[str, float]:
        return {"gus_mean": self.mean, "gus_std": self.std, "gus_p_value": self.p_value,
                "gus_tpr_at_1pct_fpr": self.tpr_at_fpr(0.01), "gus_auc": self.auc}


def gaussian_unlearning_score(model: torch.nn.Module, images01: torch.Tensor, labels: torch.Tensor,
                              noise: torch.Tensor, eps: float, info: DatasetInfo, control_seed: int = 12345,
                              batch_size: int = 256) -> GaussianUnlearningScore:
    """GUS of ``model`` on poisons with clean inputs ``images01`` (pixels in [0, 1]), labels and their noise.

    The control noise is drawn from ``control_seed`` with the same scale; it reuses the input
    gradients, so the whole audit costs one backward pass per poison.
    """
    gradients = input_gradients(model, images01, labels, info, batch_size).cpu()
    control = torch.randn(noise.shape, generator=torch.Generator().manual_seed(control_seed)) * eps
    return GaussianUnlearningScore(unlearning_scores(gradients, noise.cpu(), eps),
                                   unlearning_scores(gradients, control, eps))
