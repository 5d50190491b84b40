"""The audits of :mod:`unlearnkit.audits` for language models: GUS on token embeddings, loss-threshold MIA.

Gaussian Unlearning Score (Pawelczyk et al., ICLR 2025) on embeddings: for a poisoned text with token
ids ``t``, label ``y`` and embedding noise ``xi`` (``[L, d]``, zero on padding),

    I_z = <xi, g_z> / (eps * ||g_z||_2),    g_z = grad_e loss(theta; e, y) at the clean embeddings e = E[t].

The gradient is taken with respect to an additive perturbation of the token input embeddings at zero,
the very place the poison's noise enters the model, so ``I_z ~ N(0, 1)`` exactly when ``theta`` never
saw ``xi``. The score arithmetic, the z-test and the detection rates are those of the image audit
(:func:`unlearnkit.audits.unlearning_scores`, :class:`unlearnkit.audits.GaussianUnlearningScore`).

Loss-threshold membership inference (Yeom et al. 2018): members are the forget set as trained on,
non-members unseen test texts; :class:`unlearnkit.audits.MembershipInference` holds the losses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..audits import GaussianUnlearningScore, MembershipInference, unlearning_scores
from ..manipulations.gaussian import gaussian_noise
from .pipeline import TokenBatch, TokenSet, predict_token_logits


def embedding_gradients(model: torch.nn.Module, data: TokenSet, batch_size: int = 64) -> torch.Tensor:
    """``grad_e loss`` at each sample's clean token embeddings, ``[N, L, d]`` (zero past its last token).

    Eval mode, fp32. Each sample's loss depends only on its own tokens, so the gradient of a batch's
    summed loss gives every sample its own gradient.
    """
    device = next(model.parameters()).device
    length = data.input_ids.shape[1]
    was_training = model.training
    model.eval()
    gradients = []
    try:
        for start in range(0, len(data), batch_size):
            positions = torch.arange(start, min(start + batch_size, len(data)), device=data.device)
            batch = data.batch(positions)
            width = batch.input_ids.shape[1]
            perturbation = torch.zeros((len(positions), width, model.embedding_dim), device=device, requires_grad=True)
            logits = model(TokenBatch(batch.input_ids, batch.attention_mask, perturbation))
            loss = F.cross_entropy(logits.float(), data.labels[positions], reduction="sum")
            (gradient,) = torch.autograd.grad(loss, perturbation)
            gradients.append(F.pad(gradient.detach().cpu(), (0, 0, 0, length - width)))
    finally:
        model.train(was_training)
    return torch.cat(gradients) if gradients else torch.empty(0, length, model.embedding_dim)


def embedding_gus(model: torch.nn.Module, poisons: TokenSet, eps: float, control_seed: int = 12345,
                  batch_size: int = 64) -> GaussianUnlearningScore:
    """GUS of ``model`` on ``poisons`` (a subset of the training set carrying its embedding noise).

    The control noise ``xi'`` is fresh ``N(0, eps^2)`` noise on the same tokens, never trained on.
    """
    positions = torch.arange(len(poisons), device=poisons.device)
    noise = poisons.noise_of(positions)
    if noise is None:
        raise ValueError("these samples carry no embedding noise: GUS needs Gaussian poisons")
    gradients = embedding_gradients(model, poisons.without_noise(), batch_size)
    mask = poisons.attention_mask.cpu().unsqueeze(-1).to(torch.float32)
    control = gaussian_noise(tuple(noise.shape), eps, control_seed) * mask
    return GaussianUnlearningScore(unlearning_scores(gradients, noise.cpu(), eps),
                                   unlearning_scores(gradients, control, eps))


def token_losses(model: torch.nn.Module, data: TokenSet, batch_size: int = 256,
                 autocast_bf16: bool = False) -> torch.Tensor:
    """Cross-entropy of each sample as trained on (noise included), on the CPU."""
    logits = predict_token_logits(model, data, batch_size, autocast_bf16)
    return F.cross_entropy(logits, data.labels.to(logits.device), reduction="none").cpu()


def text_loss_mia(model: torch.nn.Module, members: TokenSet, nonmembers: TokenSet,
                  autocast_bf16: bool = False) -> MembershipInference:
    return MembershipInference(token_losses(model, members, autocast_bf16=autocast_bf16),
                               token_losses(model, nonmembers, autocast_bf16=autocast_bf16))
