"""Tables of the audits: what membership inference and the Gaussian Unlearning Score say about each model.

Both audits are hypothesis tests at the same significance level, so their verdicts compare:

* the loss-threshold MIA *detects* the forget set when the share of S_f it flags at 1% FPR is
  significantly above 1% (one-sided binomial test over the |S_f| members);
* GUS *detects* the poisons when the z-test rejects mean 0 for ``I_z`` (two-sided p-value).

A model "looks unlearned" to an audit that does not detect. Pawelczyk et al. (ICLR 2025) show models
that look unlearned to the MIA while GUS still detects the poisons.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from .figures import budget_share

FPR = 0.01
AUDIT_COLUMNS = ["mia_tpr_at_1pct_fpr", "mia_auc", "gus_mean", "gus_std", "gus_p_value", "gus_tpr_at_1pct_fpr",
                 "gus_auc"]


def mia_detects(tpr: float, members: int, significance: float = 0.05, fpr: float = FPR) -> bool:
    """Whether flagging ``tpr`` of ``members`` at false-positive rate ``fpr`` is significantly above chance."""
    if members <= 0 or np.isnan(tpr):
        return False
    flagged = int(round(tpr * members))
    return binomtest(flagged, members, fpr, alternative="greater").pvalue < significance


def audit_verdicts(table: pd.DataFrame, significance: float = 0.05, members: str = "n_forget") -> pd.DataFrame:
    """``table`` with ``mia_detects``, ``gus_detects`` and ``mia_misses_gus_detects`` (the paper's case:
    the MIA says "unlearned", GUS does not) for every row; ``members`` names the |S_f| column."""
    verdicts = table.copy()
    verdicts["mia_detects"] = [mia_detects(t, int(n), significance)
                               for t, n in zip(verdicts["mia_tpr_at_1pct_fpr"], verdicts[members])]
    if "gus_p_value" in verdicts:
        verdicts["gus_detects"] = verdicts["gus_p_value"] < significance
    else:
        verdicts["gus_detects"] = False
    verdicts["mia_misses_gus_detects"] = ~verdicts["mia_detects"] & verdicts["gus_detects"]
    return verdicts


def audit_overview(results: pd.DataFrame, originals: pd.DataFrame, significance: float = 0.05,
                   alpha: float | None = None) -> pd.DataFrame:
    """One row per model at identified fraction ``alpha`` (default the largest): the original M_o (on all
    of S_m), then the selected run of each method and budget, with both audits and their verdicts.
    Means over seeds; a verdict holds when it holds for the majority of seeds."""
    alpha = float(results["alpha"].max()) if alpha is None else alpha
    selected = results[results["selected"] & np.isclose(results["alpha"], alpha)]
    selected = selected.assign(budget_share=budget_share(selected, originals))
    runs = audit_verdicts(selected, significance)
    before = audit_verdicts(originals.assign(method="original M_o", budget_share=np.nan, n_forget=originals["n_manipulated"]),
                            significance)
    columns = [c for c in AUDIT_COLUMNS if c in runs or c in before]
    verdicts = ["mia_detects", "gus_detects", "mia_misses_gus_detects"]
    both = pd.concat([before, runs], ignore_index=True)
    both["budget_share"] = both["budget_share"].round(6)
    method_order = {method: rank for rank, method in enumerate(pd.unique(both["method"]))}
    both = both.sort_values(["budget_share"], kind="stable", na_position="first")
    both = both.sort_values(["method"], kind="stable", key=lambda methods: methods.map(method_order))
    grouped = both.groupby(["manipulation", "method", "budget_share"], sort=False, dropna=False)
    table = grouped[[c for c in ["acc_clean", *columns] if c in both]].mean()
    table[verdicts] = grouped[verdicts].mean() > 0.5
    return table.reset_index()


def largest_budget_runs(results: pd.DataFrame, originals: pd.DataFrame, alpha: float | None = None) -> pd.DataFrame:
    """The selected run of every manipulation, seed and method at ``alpha`` (default the largest) with
    the largest budget: each method at its best chance (Pawelczyk et al.: up to 10% of the compute)."""
    alpha = float(results["alpha"].max()) if alpha is None else alpha
    selected = results[results["selected"] & np.isclose(results["alpha"], alpha)]
    selected = selected.assign(budget_share=budget_share(selected, originals))
    keep = selected.groupby(["manipulation", "seed", "method"], sort=False)["budget_share"].idxmax()
    return selected.loc[keep.to_numpy()].reset_index(drop=True)
