"""Aggregating a sweep over seeds and alphas, after model selection.

Model selection (:meth:`Series.results`, Goel et al.'s validation score) keeps one hyper-parameter
setting per manipulation, seed, method, budget and alpha; these functions summarise the selected
runs the way the paper reports them: curves against alpha as mean ± std over seeds (Figure 2) and
the change in Acc_retain as mean ± std over alphas (Table 1). ``results.csv`` keeps the whole grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

CURVE = ["manipulation", "method", "budget_fraction", "budget_steps", "alpha"]
"""One point of a curve: everything that identifies a selected run except the seed."""


def over_seeds(results: pd.DataFrame, metrics: Sequence[str] = ("acc_corr", "acc_retain", "acc_clean", "asr"),
               ) -> pd.DataFrame:
    """Mean, standard deviation (0 for one seed) and number of seeds of each metric of the selected
    runs, per manipulation, method, budget and alpha: columns ``<metric>_mean``, ``<metric>_std``, ``seeds``."""
    selected = results[results["selected"]]
    grouped = selected.groupby(CURVE, dropna=False, sort=False)
    table = grouped[list(metrics)].agg(["mean", "std"])
    table.columns = [f"{metric}_{statistic}" for metric, statistic in table.columns]
    for metric in metrics:
        table[f"{metric}_std"] = table[f"{metric}_std"].where(table[f"{metric}_mean"].isna(),
                                                              table[f"{metric}_std"].fillna(0.0))
    table["seeds"] = grouped["seed"].nunique()
    return table.reset_index()


def retain_change_over_alphas(results: pd.DataFrame, originals: pd.DataFrame) -> pd.DataFrame:
    """Change in Acc_retain of the selected models against their own M_o, in percentage points:
    averaged over seeds at each alpha, then mean ± std over the alphas (Goel et al. 2024, Table 1,
    which reports SSD at -8.94 ± 1.02 on CIFAR-10 poisoning and the other methods within about one point).

    Columns: manipulation, method, budget_fraction, budget_steps, ``delta_acc_retain_pp`` (mean),
    ``delta_acc_retain_pp_std`` and ``alphas``.
    """
    selected = results[results["selected"]].merge(
        originals[["manipulation", "seed", "acc_retain"]], on=["manipulation", "seed"], suffixes=("", "_original"))
    selected = selected.assign(delta=100 * (selected["acc_retain"] - selected["acc_retain_original"]))
    per_alpha = selected.groupby(CURVE, dropna=False, sort=False)["delta"].mean().reset_index()
    grouped = per_alpha.groupby(CURVE[:-1], dropna=False, sort=False)["delta"]
    table = grouped.agg(delta_acc_retain_pp="mean", delta_acc_retain_pp_std="std", alphas="count").reset_index()
    table["delta_acc_retain_pp_std"] = table["delta_acc_retain_pp_std"].fillna(0.0)
    return table


def mean_pm_std(table: pd.DataFrame, value: str, index: str = "method", columns: str = "manipulation",
                digits: int = 2) -> pd.DataFrame:
    """``value`` as ``"mean ± std"`` strings in a method x manipulation grid, as the paper prints it."""
    text = table.assign(shown=[f"{m:+.{digits}f} ± {s:.{digits}f}"
                               for m, s in zip(table[value], table[f"{value}_std"])])
    return text.pivot(index=index, columns=columns, values="shown").reindex(
        index=list(dict.fromkeys(table[index])), columns=list(dict.fromkeys(table[columns])))
