"""Detection rates of a score that should be higher for positives than for negatives."""

from __future__ import annotations

import torch


def tpr_at_fpr(positives: torch.Tensor, negatives: torch.Tensor, fpr: float = 0.01) -> float:
    """True-positive rate at the most lenient threshold whose false-positive rate is at most ``fpr``.

    A sample is flagged when its score is strictly above the threshold; the threshold is the
    ``(floor(fpr * n) + 1)``-th largest negative score, so at most ``fpr`` of the ``n`` negatives are
    flagged (fewer when negatives tie at the threshold). With ``n < 1 / fpr`` no negative may be
    flagged and the threshold is the largest negative score.
    """
    if not 0.0 <= fpr <= 1.0:
        raise ValueError(f"fpr must be in [0, 1], got {fpr}")
    if len(positives) == 0 or len(negatives) == 0:
        return float("nan")
    ordered = negatives.double().sort(descending=True).values
    allowed = int(fpr * len(ordered) + 1e-9)  # negatives that may lie above the threshold
    threshold = ordered[allowed] if allowed < len(ordered) else -torch.inf
    return (positives.double() > threshold).double().mean().item()


def roc_auc(positives: torch.Tensor, negatives: torch.Tensor) -> float:
    """Area under the ROC curve: P(positive score > negative score), ties counted one half."""
    if len(positives) == 0 or len(negatives) == 0:
        return float("nan")
    scores = torch.cat([positives.double(), negatives.double()])
    ranks = _average_ranks(scores)
    n_pos, n_neg = len(positives), len(negatives)
    return ((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)).item()


def _average_ranks(values: torch.Tensor) -> torch.Tensor:
    """1-based ranks, tied values sharing the mean of their ranks."""
    order = values.argsort()
    unique, inverse, counts = torch.unique(values[order], return_inverse=True, return_counts=True)
    last = counts.cumsum(0).double()
    mean_rank = last - (counts.double() - 1) / 2
    ranks = torch.empty_like(values)
    ranks[order] = mean_rank[inverse]
    return ranks
