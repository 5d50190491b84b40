"""Scorer ``random``: a uniformly random ranking, the chance level every other scorer must beat.

Its expected precision is the share of still-unfound manipulated samples among the candidates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from .base import SCORERS, Scorer
from .context import ExpansionContext


@dataclass(frozen=True)
class RandomParams:
    """No parameters: the seed of the run decides the ranking."""


@SCORERS.register("random")
class RandomScorer(Scorer):
    name: ClassVar[str] = "random"
    Params: ClassVar[type] = RandomParams

    def score(self, context: ExpansionContext, forget: torch.Tensor, candidates: torch.Tensor,
              params: RandomParams, seed: int) -> torch.Tensor:
        return torch.rand(len(candidates), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
