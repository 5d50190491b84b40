"""Tables of the ``similar`` family: when Acc_corr recovers, how much influence is left, what expansion found."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

RECOVERY_KEYS = ["manipulation", "seed", "method", "expansion"]


def recovery_table(results: pd.DataFrame, references: pd.DataFrame, fraction: float = 0.9) -> pd.DataFrame:
    """The smallest alpha from which the selected models' Acc_corr stays within ``fraction`` of the
    reference's (Goel et al. 2024, Sec. 2.2: how large alpha must be for Acc_corr(U, alpha) to reach a
    constant fraction, e.g. 0.9, of Acc_corr(U*_corr, 1), where U*_corr retrains without all of S_m).

    One row per manipulation, seed, method and expansion; ``recovery_alpha`` is NaN when even the
    largest alpha stays below the threshold, and rows are dropped where Acc_corr is undefined.
    """
    columns = [*RECOVERY_KEYS, "acc_corr_reference", "threshold", "recovery_alpha"]
    selected = results[results["selected"] & results["acc_corr"].notna()]
    reference = references[["manipulation", "seed", "acc_corr"]].rename(columns={"acc_corr": "acc_corr_reference"})
    rows = []
    for keys, group in selected.merge(reference, on=["manipulation", "seed"]).groupby(RECOVERY_KEYS, sort=False):
        threshold = fraction * group["acc_corr_reference"].iloc[0]
        by_alpha = group.groupby("alpha")["acc_corr"].mean().sort_index()
        recovered = math.nan
        for alpha, value in reversed(list(by_alpha.items())):
            if value < threshold:
                break
            recovered = alpha
        rows.append({**dict(zip(RECOVERY_KEYS, keys)), "acc_corr_reference": group["acc_corr_reference"].iloc[0],
                     "threshold": threshold, "recovery_alpha": recovered,
                     **{f"acc_corr@{alpha:g}": value for alpha, value in by_alpha.items()}})
    return pd.DataFrame.from_records(rows) if rows else pd.DataFrame(columns=columns)


def recovery_overview(recovery: pd.DataFrame) -> pd.DataFrame:
    """Recovery alpha per manipulation and method (rows) and expansion (columns), mean over seeds;
    "never" where some seed never recovers."""
    if recovery.empty:
        return recovery

    def mean_or_never(values: pd.Series) -> str:
        return "never" if values.isna().any() else f"{values.mean():.2g}"

    return recovery.pivot_table(index=["manipulation", "method"], columns="expansion", values="recovery_alpha",
                                aggfunc=mean_or_never, dropna=False, sort=False)


def influence_table(results: pd.DataFrame) -> pd.DataFrame:
    """Influence left on S_f by the selected models, mean over seeds, per manipulation, method, expansion, alpha."""
    columns = ["influence_remaining", "sf_loss", "sf_loss_original", "sf_loss_reference", "mia_auc", "acc_corr", "asr"]
    selected = results[results["selected"]]
    present = [c for c in columns if c in selected.columns]
    return (selected.groupby(["manipulation", "method", "expansion", "alpha"], sort=False)[present]
            .mean().reset_index())


def expansion_overview(expansion: pd.DataFrame) -> pd.DataFrame:
    """Precision and recall of every scorer and size at every alpha, mean over seeds."""
    return (expansion.groupby(["manipulation", "scorer", "size", "alpha"], sort=False)
            [["n_added", "n_to_find", "precision", "recall", "recall_duplicates"]].mean().reset_index())


def summary_text(results: pd.DataFrame, recovery: pd.DataFrame, expansion: pd.DataFrame) -> str:
    """A few lines for the terminal: recovery alphas, influence at the largest alpha, expansion quality."""
    fraction = (recovery["threshold"] / recovery["acc_corr_reference"]).iloc[0] if len(recovery) else math.nan
    lines = [f"alpha from which Acc_corr stays >= {fraction:.2g} x the reference's (selected models):"]
    overview = recovery_overview(recovery)
    lines += ["  " + line for line in (overview.to_string().splitlines() if len(overview) else ["(no Acc_corr)"])]
    influence = influence_table(results)
    if len(influence):
        top = influence["alpha"].max()
        at_top = influence[influence["alpha"] == top]
        lines.append(f"influence left on S_f at alpha={top:g} (1 = as M_o, 0 = as the reference):")
        for _, row in at_top.iterrows():
            lines.append(f"  {row['manipulation']:<16} {row['method']:<8} {row['expansion']:<22} "
                         f"{row['influence_remaining']:>+6.2f}   acc_corr {row['acc_corr']:.3f}")
    low = expansion["alpha"].min()
    lines.append(f"expansion at alpha={low:g}: precision / recall of what was added")
    for _, row in expansion_overview(expansion[expansion["alpha"] == low]).iterrows():
        lines.append(f"  {row['manipulation']:<16} {row['scorer']:<12} {row['size']:<12} "
                     f"{_fmt(row['precision'])} / {_fmt(row['recall'])}")
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return "  n/a" if value is None or np.isnan(value) else f"{value:.3f}"


def similar_summary(run_dir: Path) -> str:
    """:func:`summary_text` of a run folder of the ``similar`` family (its results, recovery and expansion tables)."""
    run_dir = Path(run_dir)
    return summary_text(pd.read_csv(run_dir / "results.csv"), pd.read_csv(run_dir / "recovery.csv"),
                        pd.read_csv(run_dir / "expansion.csv"))
