"""Deletion (forget) sets S_f drawn from the manipulated set S_m for a grid of identified fractions.

Following Goel et al. (2024), ``|S_f| = round(alpha * n)`` samples are drawn uniformly without
replacement. All alphas share one seeded permutation, so the sets are nested (S_f at 0.1 is inside
S_f at 0.2 ...), which makes curves against alpha smoother.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..config import ConfigError


def forget_size(alpha: float, n_manipulated: int) -> int:
    """``round(alpha * n)`` with halves rounded up (Python's round would send 0.5 to even)."""
    return int(math.floor(alpha * n_manipulated + 0.5 + 1e-9))


def forget_sets(manipulated: torch.Tensor, alphas: Sequence[float], seed: int) -> dict[float, torch.Tensor]:
    """Nested, seeded forget sets ``{alpha: sorted positions}`` for every alpha in ``alphas``."""
    for alpha in alphas:
        if not 0.0 < alpha <= 1.0:
            raise ConfigError(f"alphas must be in (0, 1], got {alpha}")
    generator = torch.Generator().manual_seed(seed)
    order = manipulated[torch.randperm(len(manipulated), generator=generator).to(manipulated.device)]
    sets = {}
    for alpha in alphas:
        size = forget_size(alpha, len(manipulated))
        if size == 0:
            raise ConfigError(f"alpha={alpha} of n={len(manipulated)} manipulated samples gives an empty forget set")
        sets[float(alpha)] = order[:size].sort().values
    return sets
