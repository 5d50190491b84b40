"""The distribution of SSD's per-parameter importance ratios ``I_f / I_X`` (Goel et al. 2024, Fig. 3).

SSD dampens exactly the parameters whose ratio exceeds the selection weighting ``a`` (Foster et al.
2024). Goel et al. explain why SSD removes BadNet poisons but not Interclass Confusion by the tail of
this distribution: poisoning produces a few parameters with ratios near 800, confusion none above
~200. The histogram is kept on fixed log-spaced bins so that runs with different models or
manipulations can be overlaid, and the shares above thresholds are exact, not read off the bins.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

LOG10_LOW, LOG10_HIGH, BINS_PER_DECADE = -12, 12, 6


@dataclass
class RatioDistribution:
    """Counts of the ratio over all parameters, its extremes and the shares above thresholds."""

    histogram: pd.DataFrame
    """One row per log-spaced bin: ``left``, ``right``, ``count`` (finite ratios in ``[left, right)``)."""
    n_parameters: int
    n_zero: int
    n_below_range: int
    n_above_range: int
    n_infinite: int
    n_undefined: int
    max_finite: float
    share_above: dict[float, float]
    """``{a: share of all parameters whose ratio exceeds a}`` (SSD's selection at weighting ``a``)."""

    def summary(self) -> dict[str, object]:
        return {
            "n_parameters": self.n_parameters, "n_zero": self.n_zero, "n_below_range": self.n_below_range,
            "n_above_range": self.n_above_range, "n_infinite": self.n_infinite, "n_undefined": self.n_undefined,
            "max_finite": self.max_finite,
            "share_above": {str(threshold): share for threshold, share in self.share_above.items()},
        }

    @classmethod
    def from_summary(cls, histogram: pd.DataFrame, summary: dict) -> RatioDistribution:
        values = dict(summary)
        values["share_above"] = dict(sorted((float(k), float(v)) for k, v in values["share_above"].items()))
        return cls(histogram=histogram, **values)


def bin_edges() -> np.ndarray:
    return np.logspace(LOG10_LOW, LOG10_HIGH, (LOG10_HIGH - LOG10_LOW) * BINS_PER_DECADE + 1)


@torch.no_grad()
def ratio_distribution(ratios: dict[str, torch.Tensor], thresholds: Iterable[float]) -> RatioDistribution:
    """Histogram and threshold shares of the ratios of every parameter tensor.

    Ratios are ``inf`` where only the forget set moves a parameter (``I_X = 0 < I_f``; SSD always
    selects those) and NaN for ``0 / 0`` (never selected).
    """
    flat = torch.cat([r.detach().flatten().double().cpu() for r in ratios.values()])
    finite = flat[torch.isfinite(flat)]
    edges = bin_edges()
    positive = finite[finite > 0].numpy()
    counts, _ = np.histogram(positive, bins=edges)
    n_infinite = int(torch.isinf(flat).sum())
    share_above = {float(a): float(((flat > a).sum()).item()) / len(flat) for a in sorted(set(thresholds))}
    return RatioDistribution(
        histogram=pd.DataFrame({"left": edges[:-1], "right": edges[1:], "count": counts.astype(np.int64)}),
        n_parameters=len(flat),
        n_zero=int((finite == 0).sum()),
        n_below_range=int(((positive > 0) & (positive < edges[0])).sum()),
        n_above_range=int((positive >= edges[-1]).sum()),
        n_infinite=n_infinite,
        n_undefined=int(torch.isnan(flat).sum()),
        max_finite=float(finite.max()) if len(finite) else float("nan"),
        share_above=share_above,
    )
