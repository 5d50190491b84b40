"""The ``gaussian`` family: Gaussian poisoning audited with the Gaussian Unlearning Score and membership
inference, against the unlearning budget (Pawelczyk et al., "Machine Unlearning Fails to Remove Data
Poisoning Attacks", ICLR 2025, Sec. 4 and Figure 6).

One notebook (``06_gaussian_poisoning``) runs the core series' stages (poison, train, unlearn at every
budget, select) on Gaussian poisons and reads the audits every unlearning run keeps. Its parameters are
the core series' with Gaussian defaults, the forget set being all poisons (alpha = 1, as in the paper),
budgets of 2% ... 10% of the training compute, and the significance level of both audits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import check_range
from .audit_tables import audit_overview
from .families import Family, register_family
from .parameters import SeriesParameters
from .schema import stage_field

SMOKE_TRAIN = {"steps": 150, "batch_size": 64, "lr": 0.05, "warmup_fraction": 0.05, "channels_last": False,
               "log_every": 10}
SMOKE_MANIPULATIONS = [{"name": "gaussian", "eps": 0.3, "count": 200, "seed": 0}]
SMOKE_METHODS = {"rewod": {}, "cf": {}, "ngd": {}, "ga": {"lr": [0.0025, 0.02]}, "neggrad+": {}, "scrub": {"msteps": 5},
                 "ssd": {"selection_weighting": [1.0, 10.0]}}
PAPER_BUDGETS = [0.02, 0.04, 0.06, 0.08, 0.1]


@dataclass(frozen=True)
class GaussianParameters(SeriesParameters):
    """The core series' parameters with Gaussian-poisoning defaults (the smoke set), and the audits' level."""

    run_name: str = stage_field("common", "gaussian-smoke")
    train_subset: int | None = stage_field("poison", 1000)
    test_subset: int | None = stage_field("poison", 1000)
    manipulations: list[dict[str, Any]] = stage_field("poison", factory=lambda: [dict(m) for m in SMOKE_MANIPULATIONS])
    alphas: list[float] = stage_field("poison", factory=lambda: [1.0])
    model: str = stage_field("train", "mlp")
    train: dict[str, Any] = stage_field("train", factory=lambda: dict(SMOKE_TRAIN))
    methods: dict[str, Any] = stage_field("unlearn", factory=lambda: {k: dict(v) for k, v in SMOKE_METHODS.items()})
    budget_fraction: float | list[float] | None = stage_field("unlearn", factory=lambda: [0.04, 0.1])
    significance: float = stage_field("audit", 0.05)
    """Level of both audits' tests: GUS's z-test and the binomial test of the MIA's TPR at 1% FPR."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("significance", self.significance, 0.0, 1.0, low_open=True, high_open=True)


def gaussian_summary(run_dir: Path) -> str:
    """Both audits of M_o and of each method's selected run at the largest alpha, per budget."""
    results = pd.read_csv(Path(run_dir) / "results.csv")
    originals = pd.read_csv(Path(run_dir) / "originals.csv")
    overview = audit_overview(results, originals)
    lines = [f"{'model':<22} {'acc_clean':>9} {'GUS mean':>9} {'GUS p':>9} {'GUS TPR':>8} {'MIA TPR':>8} "
             f"{'MIA AUC':>8}  verdict"]
    for manipulation, group in overview.groupby("manipulation", sort=False):
        lines.append(f"{manipulation}:")
        for _, row in group.iterrows():
            label = row["method"] if np.isnan(row["budget_share"]) else f"{row['method']} @ {row['budget_share']:.0%}"
            verdict = (f"MIA: {'still poisoned' if row['mia_detects'] else 'unlearned'}, "
                       f"GUS: {'still poisoned' if row['gus_detects'] else 'unlearned'}")
            lines.append(f"  {label:<20} {row.get('acc_clean', np.nan):>9.3f} {row.get('gus_mean', np.nan):>+9.2f} "
                         f"{row.get('gus_p_value', np.nan):>9.1e} {row.get('gus_tpr_at_1pct_fpr', np.nan):>8.3f} "
                         f"{row['mia_tpr_at_1pct_fpr']:>8.3f} {row['mia_auc']:>8.3f}  {verdict}")
    return "\n".join(lines)


GAUSSIAN = register_family(Family(
    name="gaussian",
    parameters=GaussianParameters,
    notebooks={"06_gaussian_poisoning": ("common", "poison", "train", "unlearn", "evaluate", "audit")},
    summary=gaussian_summary,
    description="Gaussian poisoning: does unlearning remove it? GUS and membership inference against the "
                "budget (Pawelczyk et al. 2025)",
))
