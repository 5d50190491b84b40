"""Named hyper-parameter grids from the papers, for sweeps and model selection."""

from __future__ import annotations

from typing import Any

from ..config import ConfigError

SSD_SELECTION_WEIGHTINGS = (0.1, 1, 10, 50, 100, 500, 1e3, 1e4, 1e5, 1e6)
SSD_DAMPENING_MULTIPLIERS = (0.1, 0.5, 1, 5, 10)
SCRUB_ALPHAS = (0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10)

GRIDS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    # Goel et al. (2024, A.2): a in 10 values x lam in {0.1a, 0.5a, a, 5a, 10a} = 50 pairs.
    "ssd-goel": ("ssd", [{"selection_weighting": float(a), "dampening": float(m * a)}
                         for a in SSD_SELECTION_WEIGHTINGS for m in SSD_DAMPENING_MULTIPLIERS]),
    # Goel et al. (2024, A.2): SCRUB's KL weight alpha over 8 values.
    "scrub-goel": ("scrub", [{"alpha": float(alpha)} for alpha in SCRUB_ALPHAS]),
}


def named_grid(name: str) -> tuple[str, list[dict[str, Any]]]:
    """``(method, [params, ...])`` of a named grid."""
    if name not in GRIDS:
        raise ConfigError(f"unknown grid {name!r}; known: {', '.join(sorted(GRIDS))}")
    method, points = GRIDS[name]
    return method, [dict(point) for point in points]
