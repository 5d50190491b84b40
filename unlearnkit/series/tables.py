"""Summary tables over the tidy results (one row per unlearning run)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd


def mean_over_seeds(table: pd.DataFrame, by: Sequence[str], metric: str) -> pd.DataFrame:
    """``mean``, ``std`` (0 for one seed) and ``n`` of ``metric`` per group, groups in order of appearance."""
    grouped = table.groupby(list(by), sort=False)[metric]
    summary = grouped.agg(["mean", "std", "count"]).reset_index().rename(columns={"count": "n"})
    summary["std"] = summary["std"].fillna(0.0)
    return summary


def retain_change_table(results: pd.DataFrame, originals: pd.DataFrame) -> pd.DataFrame:
    """Change in Acc_retain of the selected models vs M_o, in percentage points, mean over alpha and seeds.

    Goel et al. (2024), Table 1: SSD costs utility (-8.94 pp on CIFAR-10 poisoning), the others stay
    within about one point.
    """
    selected = results[results["selected"]].merge(
        originals[["manipulation", "seed", "acc_retain"]], on=["manipulation", "seed"], suffixes=("", "_original"))
    selected = selected.assign(delta_acc_retain_pp=100 * (selected["acc_retain"] - selected["acc_retain_original"]))
    return (selected.groupby(["manipulation", "method"], sort=False)["delta_acc_retain_pp"]
            .mean().reset_index())


def cost_table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean wall seconds and optimiser steps per run for each method, and the ratio to RewoD's time
    (Goel et al. 2024, Table 3). Every run counts, not only the selected ones."""
    table = (results.groupby("method", sort=False)
             .agg(runs=("run", "count"), seconds_mean=("unlearn_seconds", "mean"),
                  steps_mean=("unlearn_steps", "mean"))
             .reset_index())
    rewod = table.loc[table["method"] == "rewod", "seconds_mean"]
    table["relative_to_rewod"] = table["seconds_mean"] / rewod.iloc[0] if len(rewod) else np.nan
    return table


def selected_overview(results: pd.DataFrame) -> pd.DataFrame:
    """Acc_corr (and ASR where defined) of the selected model per manipulation and method at each alpha."""
    selected = results[results["selected"]]
    return (selected.pivot_table(index=["manipulation", "method"], columns="alpha", values="acc_corr",
                                 aggfunc="mean", sort=False)
            .rename(columns=lambda alpha: f"acc_corr@{alpha:g}"))


def summary_text(results: pd.DataFrame, originals: pd.DataFrame) -> str:
    """A few lines for the terminal: M_o per manipulation, then Acc_corr of each method at the
    smallest and largest alpha, the change in Acc_retain and the time per run."""
    lines = []
    alphas = sorted(results["alpha"].unique())
    low, high = alphas[0], alphas[-1]
    retain = retain_change_table(results, originals).set_index(["manipulation", "method"])["delta_acc_retain_pp"]
    cost = cost_table(results).set_index("method")["seconds_mean"]
    selected = results[results["selected"]]
    for manipulation, group in originals.groupby("manipulation", sort=False):
        asr = group["asr"].mean()
        lines.append(f"{manipulation}: M_o acc_clean {group['acc_clean'].mean():.3f}, "
                     f"acc_corr {group['acc_corr'].mean():.3f}" + ("" if np.isnan(asr) else f", asr {asr:.3f}"))
        lines.append(f"  {'method':<10} {f'acc_corr@{low:g}':>13} {f'acc_corr@{high:g}':>13} "
                     f"{'Δacc_retain':>12} {'s/run':>7}")
        mine = selected[selected["manipulation"] == manipulation]
        for method, runs in mine.groupby("method", sort=False):
            at = runs.groupby("alpha")["acc_corr"].mean()
            lines.append(f"  {method:<10} {at.get(low, np.nan):>13.3f} {at.get(high, np.nan):>13.3f} "
                         f"{retain.get((manipulation, method), np.nan):>+11.2f}p {cost.get(method, np.nan):>7.2f}")
    return "\n".join(lines)


def core_summary(run_dir: Path) -> str:
    """:func:`summary_text` of a run folder of the core series (its ``results.csv`` and ``originals.csv``)."""
    return summary_text(pd.read_csv(Path(run_dir) / "results.csv"), pd.read_csv(Path(run_dir) / "originals.csv"))
