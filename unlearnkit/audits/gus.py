"""The Gaussian Unlearning Score (Pawelczyk et al., "Machine Unlearning Fails to Remove Data Poisoning
Attacks", ICLR 2025, Sec. 4): a test of whether a model still carries Gaussian poisons that needs no
retrained model.

For a poisoned sample with clean input ``x``, label ``y`` and noise ``xi ~ N(0, eps^2 I)``:

    I_z = <xi, g_z> / (eps * ||g_z||_2),    g_z = grad_x loss(theta; x, y)   (at the clean x)

If ``theta`` does not depend on ``xi`` (a model that never saw it), ``I_z`` is exactly N(0, 1): a unit
vector fixed by ``theta`` and ``x`` dotted with isotropic Gaussian noise of scale ``eps``. Training on
``x + xi`` lowers the loss along ``xi``, so a model that memorised the poison gives ``I_z`` shifted
away from 0 (to first order ``loss(x + xi) - loss(x) = eps ||g_z|| I_z``, pushed negative). We report
the mean, the two-sided z-test p-value of the mean against N(0, 1), and how well ``|I_z|`` separates the
poisons from control noise ``xi'`` never trained on (TPR at 1% FPR, ROC AUC): the control scores reuse
each poison's input gradient with fresh noise, so they follow the null exactly at no extra backward pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..data.core import DatasetInfo
from ..data.pipeline import normalise
from .detection import roc_auc, tpr_at_fpr

CONTROL_DRAWS = 10
"""Control noise draws per poison: 10 x |S_f| null scores make the 1%-FPR threshold stable."""


def input_gradients(model: torch.nn.Module, images01: torch.Tensor, labels: torch.Tensor, info: DatasetInfo,
                    batch_size: int = 256) -> torch.Tensor:
    """``grad_x loss(theta; x, y)`` of each sample w.r.t. its pixels in [0, 1] (eval mode, fp32, CPU result).

    One forward and backward pass per batch on the model's device. In eval mode each sample's loss
    depends on its own input only, so the gradient of the summed loss holds every per-sample gradient.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    gradients = []
    try:
        for start in range(0, len(images01), batch_size):
            x = images01[start:start + batch_size].to(device, torch.float32).requires_grad_(True)
            y = labels[start:start + batch_size].to(device)
            loss = F.cross_entropy(model(normalise(x, info)), y, reduction="sum")
            gradients.append(torch.autograd.grad(loss, x)[0].detach().cpu())
    finally:
        model.train(was_training)
    return torch.cat(gradients) if gradients else torch.empty(images01.shape, dtype=torch.float32)


def unlearning_scores(gradients: torch.Tensor, noise: torch.Tensor, eps: float) -> torch.Tensor:
    """``I_z = <xi, g_z> / (eps ||g_z||)`` per sample (float64, on the gradients' device).

    A sample whose input gradient vanishes (an exactly saturated softmax) carries no information
    about ``xi``; it scores 0.
    """
    g = gradients.flatten(1).double()
    xi = noise.to(g.device).flatten(1).double()
    norms = g.norm(dim=1)
    dots = (xi * g).sum(1)
    return torch.where(norms > 0, dots / (eps * norms.clamp_min(torch.finfo(torch.float64).tiny)),
                       torch.zeros_like(norms))


def two_sided_p_value(scores: torch.Tensor) -> float:
    """p-value of the z-test that N(0, 1) scores have mean 0: ``z = sqrt(n) * mean``, ``P(|Z| >= |z|)``."""
    if len(scores) == 0:
        return float("nan")
    z = math.sqrt(len(scores)) * scores.double().mean().item()
    return math.erfc(abs(z) / math.sqrt(2))


@dataclass
class GaussianUnlearningScore:
    """``I_z`` of the poisons and of control noise on the same inputs and model."""

    scores: torch.Tensor
    """``I_z`` of every poison evaluated (float64)."""
    control_scores: torch.Tensor
    """``I_z`` of the same inputs with fresh noise never trained on: a sample of the null N(0, 1)."""

    @property
    def mean(self) -> float:
        return self.scores.double().mean().item() if len(self.scores) else float("nan")

    @property
    def std(self) -> float:
        return self.scores.double().std().item() if len(self.scores) > 1 else float("nan")

    @property
    def p_value(self) -> float:
        return two_sided_p_value(self.scores)

    def tpr_at_fpr(self, fpr: float = 0.01) -> float:
        """Share of poisons whose ``|I_z|`` exceeds the threshold that flags ``fpr`` of the controls."""
        return tpr_at_fpr(self.scores.abs(), self.control_scores.abs(), fpr)

    @property
    def auc(self) -> float:
        """P(|I_z| of a poison > |I_z| of a control): 0.5 when the model carries no trace of the noise."""
        return roc_auc(self.scores.abs(), self.control_scores.abs())

    def subset(self, mask: torch.Tensor) -> GaussianUnlearningScore:
        """The score of the poisons selected by ``mask``, against their own controls."""
        mask = mask.to(self.scores.device)
        control = self.control_scores.view(-1, len(self.scores))[:, mask].flatten() \
            if len(self.scores) else self.control_scores
        return GaussianUnlearningScore(self.scores[mask], control)

    def summary(self, prefix: str = "gus") -> dict[str, float]:
        return {f"{prefix}_mean": self.mean, f"{prefix}_std": self.std, f"{prefix}_p_value": self.p_value,
                f"{prefix}_tpr_at_1pct_fpr": self.tpr_at_fpr(0.01), f"{prefix}_auc": self.auc}


def control_noise_scores(gradients: torch.Tensor, eps: float, seed: int, draws: int = CONTROL_DRAWS) -> torch.Tensor:
    """``I_z`` of ``draws`` fresh noise vectors per gradient, drawn on the CPU from ``seed``:
    ``[draws * n]``, draw-major (entry ``d * n + i`` belongs to sample ``i``)."""
    generator = torch.Generator().manual_seed(seed)
    scores = []
    for _ in range(draws):  # one draw at a time: n x input size floats, never draws x n x input size
        control = torch.randn(gradients.shape, generator=generator) * eps
        scores.append(unlearning_scores(gradients, control, eps))
    return torch.cat(scores) if scores else torch.empty(0, dtype=torch.float64)


def gaussian_unlearning_score(model: torch.nn.Module, images01: torch.Tensor, labels: torch.Tensor,
                              noise: torch.Tensor, eps: float, info: DatasetInfo, control_seed: int,
                              control_draws: int = CONTROL_DRAWS, batch_size: int = 256) -> GaussianUnlearningScore:
    """GUS of ``model`` on poisons with clean inputs ``images01`` (pixels in [0, 1]), labels and noise.

    One backward pass per poison; the control noise (``control_draws`` per poison, from
    ``control_seed``, scale ``eps``) reuses the same input gradients.
    """
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    if len(noise) != len(images01) or noise.shape[1:] != images01.shape[1:]:
        raise ValueError(f"noise {tuple(noise.shape)} does not match the inputs {tuple(images01.shape)}")
    gradients = input_gradients(model, images01, labels, info, batch_size)
    return GaussianUnlearningScore(unlearning_scores(gradients, noise.cpu(), eps),
                                   control_noise_scores(gradients, eps, control_seed, control_draws))
