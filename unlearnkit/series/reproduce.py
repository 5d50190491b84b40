"""The ``reproduce`` family: Goel et al. (2024), "Corrective Machine Unlearning", Figure 2, Table 1,
Figure 3 and the paper's claims, from one sweep.

One notebook (``09_reproduce_corrective``) runs the whole sweep of a parameter set (originals and
unlearning runs as cells on the local or Ray executor), selects hyper-parameters on the validation
score, aggregates over seeds and alphas, draws the figures with the core series' figure functions,
and checks every headline claim (:mod:`unlearnkit.series.claims`). Parameter sets:
``reproduce-quick.yaml`` (embedded MNIST, CPU), ``reproduce-cifar10.yaml`` and
``reproduce-cifar100.yaml`` (the paper's grids, GPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import ConfigError, check_range
from ..store import save_table
from .aggregate import over_seeds, retain_change_over_alphas
from .claims import Claim, ClaimSettings, claims_table, corrective_claims
from .families import Family, register_family
from .parameters import SeriesParameters
from .schema import stage_field
from .stages import Importance, Original, Series
from .tables import core_summary, cost_table

SMOKE_REPRODUCE_TRAIN = {"steps": 80, "batch_size": 64, "lr": 0.05, "warmup_fraction": 0.05, "log_every": 10}
PAPER_METHODS_SMOKE = {"rewod": {}, "cf": {}, "scrub": {"msteps": 5}, "badt": {},
                       "ssd": {"selection_weighting": [1.0, 10.0]}}
"""The paper's five methods, SSD on two grid points so that selection has a choice."""


@dataclass(frozen=True)
class ReproduceParameters(SeriesParameters):
    """The core series' parameters plus how the paper's claims are judged. The defaults are a smoke
    run (its own run folder, the paper's five methods, a smaller recipe) that finishes in a minute or two."""

    run_name: str = stage_field("common", "reproduce-smoke")
    val_size: int = stage_field("poison", 300)
    train_subset: int | None = stage_field("poison", 2000)
    test_subset: int | None = stage_field("poison", 500)
    train: dict[str, Any] = stage_field("train", factory=lambda: dict(SMOKE_REPRODUCE_TRAIN))
    methods: dict[str, Any] = stage_field("unlearn", factory=lambda: {k: dict(v) for k, v in PAPER_METHODS_SMOKE.items()})
    poisoning_label: str = stage_field("claims", "badnet")
    """The manipulation (by its label in the results) that plays the paper's poisoning."""
    confusion_label: str = stage_field("claims", "interclass")
    """The manipulation that plays the paper's Interclass Confusion."""
    restore_share: float = stage_field("claims", 0.5)
    late_alpha: float = stage_field("claims", 0.8)
    claim_margin: float = stage_field("claims", 0.02)
    retain_band_pp: float = stage_field("claims", 1.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.budgets()) != 1:
            raise ConfigError("the reproduction compares methods at one budget: give one budget_fraction or "
                              f"budget_steps, got {len(self.budgets())}")
        check_range("claim_margin", self.claim_margin, 0.0, 1.0)
        self.claim_settings()

    def claim_settings(self) -> ClaimSettings:
        return ClaimSettings(restore_share=self.restore_share, late_alpha=self.late_alpha, margin=self.claim_margin,
                             retain_band_pp=self.retain_band_pp)


@dataclass
class Reproduction:
    """Everything the notebook shows; the tables are also written to the run folder."""

    originals: list[Original]
    originals_table: pd.DataFrame
    results: pd.DataFrame
    """Every run of the grid, the selected ones marked (``results.csv``)."""
    curves: pd.DataFrame
    """Selected runs, mean ± std over seeds per manipulation, method and alpha (``aggregated.csv``)."""
    retain: pd.DataFrame
    """Change in Acc_retain, mean ± std over alphas (Table 1, ``retain_change.csv``)."""
    importances: list[Importance]
    costs: pd.DataFrame
    claims: list[Claim]


def reproduce(series: Series, force: bool = False) -> Reproduction:
    """Run the sweep of ``series.params`` (``force`` reruns its unlearning cells), select, aggregate, check."""
    params: ReproduceParameters = series.params
    originals = series.originals()
    originals_table = series.originals_table(originals)
    results = series.results(series.unlearning_runs(force=force, originals=originals), originals)
    curves = over_seeds(results)
    retain = retain_change_over_alphas(results, originals_table)
    importances = series.importances(originals=originals)
    costs = cost_table(results)
    claims = corrective_claims(
        curves, originals_table.groupby("manipulation")["acc_corr"].mean().to_dict(), retain,
        {item.label: item.distribution for item in importances}, costs,
        params.poisoning_label, params.confusion_label, params.claim_settings())
    save_table(series.run_dir / "aggregated.csv", curves)
    save_table(series.run_dir / "retain_change.csv", retain)
    save_table(series.run_dir / "claims.csv", claims_table(claims))
    return Reproduction(originals, originals_table, results, curves, retain, importances, costs, claims)


def reproduce_summary(run_dir: Path) -> str:
    """The core summary of the run, then each claim of the paper with its verdict."""
    claims = pd.read_csv(Path(run_dir) / "claims.csv")
    lines = [core_summary(run_dir), "", "Claims of Goel et al. (2024) on this run:"]
    lines += [f"  [{row.verdict}] {row.statement}" for row in claims.itertuples()]
    return "\n".join(lines)


REPRODUCE = register_family(Family(
    name="reproduce",
    parameters=ReproduceParameters,
    notebooks={"09_reproduce_corrective": ("common", "poison", "train", "unlearn", "evaluate", "importance", "claims")},
    summary=reproduce_summary,
    description="Goel et al. (2024): Figure 2, Table 1, Figure 3 and the headline claims from one sweep",
))
