"""Scorer ``features``: nearest neighbours of S_f in the original model's penultimate features.

The penultimate features are the input of the model's final linear layer (see
:meth:`ExpansionContext.penultimate`): the representation in which activation-based poison
detection looks for the manipulated samples (Chen et al., "Detecting Backdoor Attacks on Deep
Neural Networks by Activation Clustering", 2019). Samples that share the manipulation with S_f (the
same trigger, the same confusion, a near-duplicate) tend to sit next to S_f there. A candidate's
score is the mean cosine similarity to its ``k`` most similar S_f samples (optionally after
subtracting the training-set mean feature, ``centre``). With ``same_label`` only S_f samples with the candidate's training label
count as neighbours: a swapped label (Interclass Confusion) or a target label (BadNet) is part of what
S_f shares, and a clean sample of the same look but its true label should not match it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from ..config import check_range
from .base import SCORERS, Scorer
from .context import ExpansionContext

NO_NEIGHBOUR = -3.0
"""Similarity given to S_f samples of another label: below any cosine similarity."""


@dataclass(frozen=True)
class FeatureParams:
    k: int = 1
    """Average the similarity to this many nearest S_f samples."""
    centre: bool = False
    """Subtract the training-set mean feature before the cosine similarity."""
    same_label: bool = True

    def __post_init__(self) -> None:
        check_range("k", self.k, 1)


@SCORERS.register("features")
class NearestFeatures(Scorer):
    name: ClassVar[str] = "features"
    Params: ClassVar[type] = FeatureParams

    @torch.no_grad()
    def score(self, context: ExpansionContext, forget: torch.Tensor, candidates: torch.Tensor,
              params: FeatureParams, seed: int) -> torch.Tensor:
        features = context.penultimate()
        mean = features.mean(0) if params.centre else torch.zeros_like(features[0])
        anchors = F.normalize(features[forget.to(features.device)] - mean, dim=1)
        anchor_labels = context.labels(forget)
        k = min(params.k, len(forget))
        scores = []
        for chunk in context.chunks(candidates.to(features.device), 4096):
            similarity = F.normalize(features[chunk] - mean, dim=1) @ anchors.T
            if params.same_label:
                other = context.labels(chunk).view(-1, 1) != anchor_labels.view(1, -1)
                similarity = similarity.masked_fill(other, NO_NEIGHBOUR)
            scores.append(similarity.topk(k, dim=1).values.mean(1))
        return torch.cat(scores).double().cpu()
