"""The ``poisoning`` family (notebook 07): indiscriminate and targeted data poisoning, then unlearning.

Pawelczyk et al., "Machine Unlearning Fails to Remove Data Poisoning Attacks" (ICLR 2025): Gradient
Canceling (Lu et al. 2023) and random label flipping lower the clean test accuracy; Witches' Brew
(Geiping et al. 2021) makes chosen test images be classified as an adversarial label. Every method
unlearns the identified poisons; the metrics are the clean-accuracy drop against *the same model
trained on the clean data* and the poison success rate, before and after unlearning, against RewoD.

The stages are the core series' (poison, train, unlearn, evaluate) plus two cached ones: the crafting
of the optimised poisons (``craft-<hash>``, once per attack setting) and the clean reference model of
each seed (``clean-<hash>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..crafting import craft, train_clean
from ..manipulations import build_manipulation, is_crafted
from ..metrics import evaluate
from ..store import read_json, save_table
from .families import Family, register_family
from .parameters import SeriesParameters
from .schema import stage_field
from .stages import Original, Poisoned, Series
from .tables import cost_table

SMOKE_MANIPULATIONS = [
    {"name": "gradient-canceling", "fraction": 0.1, "target_accuracy": 0.5, "corruption_step": 0.01, "steps": 40,
     "lr": 0.05, "seed": 0},
    {"name": "label-flip", "fraction": 0.1, "seed": 0},
    {"name": "witches-brew", "adversarial_class": 8, "target_class": 3, "targets": 4, "budget": 0.02,
     "restarts": 2, "steps": 40, "seed": 0},
]
SMOKE_METHODS = {"rewod": {}, "cf": {}, "neggrad+": {}, "ssd": {"selection_weighting": 10.0, "dampening": 10.0}}
SMOKE_TRAIN = {"steps": 100, "batch_size": 64, "lr": 0.05, "warmup_fraction": 0.05, "log_every": 10}
REFERENCE_COLUMNS = ["acc_clean_reference", "poison_success_reference"]


@dataclass(frozen=True)
class PoisoningParameters(SeriesParameters):
    """The core series' parameters with this family's smoke-sized defaults (what notebook 07 runs as is)."""

    run_name: str = stage_field("common", "poisoning-smoke")
    train_subset: int | None = stage_field("poison", 1500)
    manipulations: list[dict[str, Any]] = stage_field("poison", factory=lambda: [dict(m) for m in SMOKE_MANIPULATIONS])
    alphas: list[float] = stage_field("poison", factory=lambda: [0.5, 1.0])
    train: dict[str, Any] = stage_field("train", factory=lambda: dict(SMOKE_TRAIN))
    methods: dict[str, Any] = stage_field("unlearn", factory=lambda: {k: dict(v) for k, v in SMOKE_METHODS.items()})


class PoisoningSeries(Series):
    """The core stages plus the crafting summaries and the clean reference of every seed."""

    def crafting(self, poisoned: list[Poisoned]) -> pd.DataFrame:
        """One row per crafted attack (first seed): its stage, cost and summary (lists left out)."""
        rows = []
        labels = self.params.manipulation_labels()
        for item in poisoned:
            if item.seed != self.params.seeds[0]:
                continue
            index = labels.index(item.label)
            experiment = self.params.experiment(index, item.seed)
            manipulation = build_manipulation(experiment.manipulation)
            if not is_crafted(manipulation):
                continue
            crafted, directory, _ = craft(manipulation, experiment.data, item.splits, experiment.model,
                                          experiment.train, self.store, self.params.progress)
            manifest = read_json(directory / "manifest.json")
            rows.append({"manipulation": item.label, "craft_seconds": manifest.get("craft_seconds"),
                         "directory": directory.name, **crafted.summary})
        return pd.DataFrame.from_records(rows)

    def references(self, originals: list[Original], force: bool = False) -> pd.DataFrame:
        """The same model trained on the clean data (model seed, batch order and recipe of each original),
        evaluated on each manipulation's test sets: ``acc_clean_reference`` and ``poison_success_reference``."""
        rows, models = [], {}
        for original in originals:
            config = original.trained.config
            if original.seed not in models:
                models[original.seed] = train_clean(config.data, original.trained.splits, config.model,
                                                    config.model_seed, config.train, self.store,
                                                    self.params.progress, force=force)
            reference = models[original.seed]
            metrics = evaluate(reference.model, original.trained.splits, original.trained.manipulated,
                               autocast_bf16=config.train.bf16)
            rows.append({"manipulation": original.label, "seed": original.seed,
                         "acc_clean_reference": metrics["acc_clean"],
                         "poison_success_reference": metrics["poison_success"],
                         "reference_directory": reference.directory.name})
        return pd.DataFrame.from_records(rows)

    def originals_table(self, originals: list[Original], references: pd.DataFrame | None = None) -> pd.DataFrame:
        references = self.references(originals) if references is None else references
        table = with_reference(super().originals_table(originals), references)
        save_table(self.run_dir / "originals.csv", table)
        return table

    def results(self, runs: pd.DataFrame | None = None, originals: list[Original] | None = None,
                references: pd.DataFrame | None = None) -> pd.DataFrame:
        originals = originals or self.originals()
        references = self.references(originals) if references is None else references
        table = with_reference(super().results(runs, originals), references)
        save_table(self.run_dir / "results.csv", table)
        return table


def with_reference(table: pd.DataFrame, references: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the clean reference's metrics and ``acc_drop = acc_clean_reference - acc_clean``."""
    merged = table.drop(columns=[c for c in [*REFERENCE_COLUMNS, "acc_drop"] if c in table.columns]).merge(
        references[["manipulation", "seed", *REFERENCE_COLUMNS]], on=["manipulation", "seed"], how="left")
    merged["acc_drop"] = merged["acc_clean_reference"] - merged["acc_clean"]
    return merged


def before_after(results: pd.DataFrame, originals: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``metric`` of M_o, of every selected method at each alpha, and of the clean reference: one row
    per manipulation and method (mean over seeds)."""
    selected = results[results["selected"]].dropna(subset=[metric])
    if selected.empty:
        return pd.DataFrame()
    after = selected.pivot_table(index=["manipulation", "method"], columns="alpha", values=metric, aggfunc="mean",
                                 sort=False).rename(columns=lambda alpha: f"after@{alpha:g}")
    reference_metric = {"acc_drop": None, "poison_success": "poison_success_reference"}.get(metric)
    base = originals.groupby("manipulation", sort=False)[[metric] + ([reference_metric] if reference_metric else [])]
    base = base.mean().rename(columns={metric: "M_o", reference_metric: "clean model"})
    if "clean model" not in base.columns:
        base["clean model"] = 0.0  # the drop of the clean model against itself
    return base.join(after.reset_index(level="method"), how="inner").set_index("method", append=True)


def poisoning_summary(run_dir: Path) -> str:
    """A few lines for the terminal: M_o's accuracy drop and poison success, and each selected
    method's at the largest alpha, with the time per run."""
    results = pd.read_csv(Path(run_dir) / "results.csv")
    originals = pd.read_csv(Path(run_dir) / "originals.csv")
    high = results["alpha"].max()
    cost = cost_table(results).set_index("method")["seconds_mean"]
    selected = results[results["selected"] & np.isclose(results["alpha"], high)]
    lines = []
    for manipulation, group in originals.groupby("manipulation", sort=False):
        metric = "poison_success" if group["poison_success"].notna().any() else "acc_drop"
        lines.append(f"{manipulation}: M_o acc_clean {group['acc_clean'].mean():.3f} (clean model "
                     f"{group['acc_clean_reference'].mean():.3f}, drop {group['acc_drop'].mean():+.3f})"
                     + (f", poison success {group['poison_success'].mean():.2f} (clean model "
                        f"{group['poison_success_reference'].mean():.2f})" if metric == "poison_success" else ""))
        mine = selected[selected["manipulation"] == manipulation]
        for method, runs in mine.groupby("method", sort=False):
            lines.append(f"  {method:<10} {metric}@{high:g} {runs[metric].mean():+.3f}   "
                         f"acc_clean {runs['acc_clean'].mean():.3f}   {cost.get(method, np.nan):.2f} s/run")
    return "\n".join(lines)


POISONING = register_family(Family(
    name="poisoning",
    parameters=PoisoningParameters,
    notebooks={"07_indiscriminate_targeted": ("common", "poison", "train", "unlearn", "evaluate")},
    summary=poisoning_summary,
    description="indiscriminate (Gradient Canceling, label flipping) and targeted (Witches' Brew) poisoning, "
                "then unlearning (Pawelczyk et al. 2025)",
))
