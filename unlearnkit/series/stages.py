"""The stages of the notebook series, each cached in the artifact store under ``<output_root>/<run_name>/``.

``poison`` -> ``original`` (train M_o) -> ``unlearn`` (one stage directory per run) -> results with
model selection, and ``importance`` (SSD's ratio histogram). Every stage loads what it needs from
the store or builds it, so each notebook can run alone and an interrupted series resumes where it
stopped. ``force`` rebuilds only the stage it is passed to, never the upstream ones.
"""

from __future__ import annotations

import functools
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..config import to_dict
from ..data.core import DataSplits
from ..data.pipeline import predict_logits
from ..device import pick_device
from ..experiment import TrainedOriginal, prepare, train_original
from ..manipulations import Manipulated, forget_sets
from ..metrics import accuracy, evaluate
from ..store import ArtifactStore, load_tensors, read_json, save_table, save_tensors, write_json
from ..unlearning import Budget, make_task, select_best, ssd_importances, unlearn_and_evaluate
from ..unlearning.grids import SSD_SELECTION_WEIGHTINGS
from ..unlearning.importance_ratio import RatioDistribution, ratio_distribution
from .parameters import SeriesParameters
from .paths import output_root

IDENTITY = ["manipulation", "dataset", "model", "seed"]
RUN_GROUP = [*IDENTITY, "method", "budget_fraction", "budget_steps", "alpha"]
"""One selected model per group: model selection picks among hyper-parameter settings only."""


@dataclass
class Poisoned:
    """One manipulated training set with its nested forget sets, for one seed."""

    label: str
    seed: int
    splits: DataSplits
    manipulated: Manipulated
    forget: dict[float, torch.Tensor]
    directory: Path
    cache_hit: bool

    def counts(self) -> dict[str, Any]:
        return {"manipulation": self.label, "seed": self.seed, "n_train": len(self.splits.train),
                "n_manipulated": self.manipulated.n_manipulated,
                **{f"n_forget@{alpha:g}": len(forget) for alpha, forget in self.forget.items()}}


@dataclass
class Original:
    label: str
    seed: int
    trained: TrainedOriginal
    val_acc: float


@dataclass
class Importance:
    label: str
    seed: int
    alpha: float
    distribution: RatioDistribution
    fit_sf_manipulated: float
    acc_sf_clean: float
    cache_hit: bool


class Series:
    """The stages of one parameter set, sharing a store and a device."""

    def __init__(self, params: SeriesParameters):
        self.params = params
        self.store = ArtifactStore(output_root(params.output_root), params.run_name)
        self.device = pick_device(params.device)

    @property
    def run_dir(self) -> Path:
        return self.store.run_dir

    @property
    def figures_dir(self) -> Path:
        return self.run_dir / "figures"

    def publish(self, figure, name: str):
        """Write ``figure`` to ``<run>/figures/name.html`` (and ``.png`` if possible); return it for display."""
        from .export import save_figure

        save_figure(figure, self.figures_dir, name, png=self.params.export_png)
        return figure

    def _experiments(self):
        labels = self.params.manipulation_labels()
        for index, label in enumerate(labels):
            for seed in self.params.seeds:
                yield index, label, seed

    # 01 poison -------------------------------------------------------------------------------

    def poisoned(self, force: bool = False) -> list[Poisoned]:
        """Manipulate the training set and draw the forget sets; the indices are recorded in the store."""
        results = []
        for index, label, seed in self._experiments():
            experiment = self.params.experiment(index, seed)
            splits, manipulated = prepare(experiment, self.device, self.store, self.params.progress)
            forget = forget_sets(manipulated.manipulated, self.params.alphas, seed)
            key = {"data": to_dict(experiment.data), "manipulation": experiment.manipulation,
                   "alphas": sorted(forget), "forget_seed": seed}

            build = functools.partial(_record_poison, splits=splits, manipulated=manipulated, forget=forget)
            directory, hit = self.store.build("poison", key, build, force=force)
            if hit:
                recorded = load_tensors(directory / "manipulated.safetensors")["positions"]
                if not torch.equal(recorded, manipulated.manipulated.cpu()):
                    raise RuntimeError(f"{directory}: the recorded manipulated indices differ from the ones "
                                       "drawn now; rerun with force=True")
            results.append(Poisoned(label, seed, splits, manipulated, forget, directory, hit))
        return results

    # 02 train --------------------------------------------------------------------------------

    def originals(self, force: bool = False) -> list[Original]:
        """Train (or load) the original model M_o of every manipulation and seed."""
        results = []
        for index, label, seed in self._experiments():
            trained = train_original(self.params.experiment(index, seed), self.store, str(self.device),
                                     progress=self.params.progress, force=force)
            val = trained.splits.val
            logits = predict_logits(trained.model, val, trained.splits.info, autocast_bf16=trained.config.train.bf16)
            val_acc = accuracy(logits.argmax(1), val.labels)
            results.append(Original(label, seed, trained, val_acc))
        return results

    def originals_table(self, originals: list[Original]) -> pd.DataFrame:
        rows = []
        for original in originals:
            trained = original.trained
            manifest = read_json(trained.directory / "manifest.json")
            rows.append({"manipulation": original.label, "dataset": trained.splits.info.name,
                         "model": trained.config.model, "seed": original.seed,
                         "n_manipulated": trained.manipulated.n_manipulated, **trained.metrics,
                         "val_acc": original.val_acc, "train_steps": trained.config.train.steps,
                         "train_seconds": manifest.get("train_seconds"), "directory": trained.directory.name})
        table = pd.DataFrame.from_records(rows)
        save_table(self.run_dir / "originals.csv", table)
        return table

    # 03 unlearn ------------------------------------------------------------------------------

    def planned_runs(self) -> int:
        points = sum(len(self.params.method_points(name)) * len(self.params.budgets_for(name))
                     for name in self.params.methods)
        return len(self.params.manipulations) * len(self.params.seeds) * points * len(self.params.alphas)

    def unlearning_runs(self, force: bool = False, originals: list[Original] | None = None) -> pd.DataFrame:
        """Every method x hyper-parameter setting x budget x alpha on every original, one cached stage per run."""
        originals = originals or self.originals()
        rows, hits = [], 0
        bar = tqdm(total=self.planned_runs(), desc="unlearning runs", disable=not self.params.progress)
        for original in originals:
            trained = original.trained
            sets = forget_sets(trained.manipulated.manipulated, self.params.alphas, original.seed)
            # alpha outermost: consecutive runs share a forget set, so SSD computes its importances
            # once per alpha for a whole grid.
            for alpha, forget in sets.items():
                for method in self.params.methods:
                    for point, given in itertools.product(self.params.method_points(method),
                                                          self.params.budgets_for(method)):
                        bar.set_postfix_str(f"{original.label} {method} alpha={alpha:g}")
                        key = {"experiment": to_dict(trained.config), "method": method, "params": point,
                               "alpha": alpha, "forget_seed": original.seed,
                               "budget": to_dict(given) if given else None, "seed": original.seed}

                        build = functools.partial(_unlearning_run, original=trained, method=method, params=point,
                                                  alpha=alpha, forget=forget, budget=given, seed=original.seed)
                        directory, hit = self.store.build("unlearn", key, build, force=force)
                        hits += hit
                        row = read_json(directory / "row.json")
                        rows.append({**row, "manipulation": original.label, "run": directory.name})
                        bar.update(1)
        bar.close()
        table = tidy_runs(rows)
        table.attrs["from_cache"] = hits
        save_table(self.run_dir / "unlearning_runs.csv", table)
        return table

    # 04 evaluate -----------------------------------------------------------------------------

    def results(self, runs: pd.DataFrame | None = None, originals: list[Original] | None = None) -> pd.DataFrame:
        """All runs with the model selected per (manipulation, seed, method, alpha) marked; writes results.csv.

        Selection follows Goel et al. (2024): the best ``0.5 * val acc + 0.5 * changed S_f predictions``,
        never the test set; ``min_relative_val_acc`` drops collapsed candidates first.
        """
        originals = originals or self.originals()
        runs = self.unlearning_runs(originals=originals) if runs is None else runs
        picked = []
        for original in originals:
            mine = runs[(runs["manipulation"] == original.label) & (runs["seed"] == original.seed)]
            if len(mine):
                picked.append(select_best(mine, RUN_GROUP, original.val_acc, self.params.min_relative_val_acc))
        best = pd.concat(picked, ignore_index=True) if picked else runs.iloc[:0]
        table = runs.copy()
        table["selected"] = table["run"].isin(best["run"])
        flagged = set(best.loc[best["flag_low_val_acc"], "run"])
        table["flag_low_val_acc"] = table["run"].isin(flagged)
        save_table(self.run_dir / "results.csv", table)
        return table

    # 05 importance ---------------------------------------------------------------------------

    def importances(self, force: bool = False, originals: list[Original] | None = None) -> list[Importance]:
        """SSD's importance ratios of M_o at ``importance_alpha``, for every manipulation (first seed)."""
        params = self.params
        thresholds = [*SSD_SELECTION_WEIGHTINGS, params.importance_threshold]
        results = []
        for original in originals or self.originals():
            if original.seed != params.seeds[0]:
                continue
            trained = original.trained
            forget = forget_sets(trained.manipulated.manipulated, [params.importance_alpha], original.seed)
            forget = forget[float(params.importance_alpha)]
            batch_size = params.importance_batch_size or trained.config.train.batch_size
            key = {"experiment": to_dict(trained.config), "alpha": params.importance_alpha,
                   "forget_seed": original.seed, "batch_size": batch_size,
                   "reference": params.importance_reference, "thresholds": sorted(set(thresholds))}

            build = functools.partial(_importance_distribution, original=trained, forget=forget, batch_size=batch_size,
                                      reference=params.importance_reference, thresholds=thresholds)
            directory, hit = self.store.build("importance", key, build, force=force)
            summary = read_json(directory / "summary.json")
            fit, clean = summary.pop("fit_sf_manipulated"), summary.pop("acc_sf_clean")
            distribution = RatioDistribution.from_summary(pd.read_csv(directory / "histogram.csv"), summary)
            results.append(Importance(original.label, original.seed, params.importance_alpha, distribution,
                                      fit, clean, hit))
        return results


def _record_poison(directory: Path, splits: DataSplits, manipulated: Manipulated,
                   forget: dict[float, torch.Tensor]) -> None:
    positions = manipulated.manipulated
    save_tensors(directory / "manipulated.safetensors", {
        "positions": positions, "ids": manipulated.sample_ids(splits, positions),
        "clean_labels": manipulated.clean_train_labels[positions],
        "manipulated_labels": manipulated.train.labels[positions],
    })
    save_tensors(directory / "forget_sets.safetensors", {f"alpha={a:g}": f for a, f in forget.items()})


def _unlearning_run(directory: Path, original: TrainedOriginal, method: str, params: dict[str, Any], alpha: float,
                    forget: torch.Tensor, budget: Budget | None, seed: int) -> None:
    write_json(directory / "row.json", unlearn_and_evaluate(original, method, params, alpha, forget, budget, seed))


def _importance_distribution(directory: Path, original: TrainedOriginal, forget: torch.Tensor, batch_size: int,
                             reference: str, thresholds: list[float]) -> None:
    importances = ssd_importances(make_task(original, forget), batch_size, reference)
    distribution = ratio_distribution(importances.ratio(), thresholds)
    fit = evaluate(original.model, original.splits, original.manipulated, forget,
                   autocast_bf16=original.config.train.bf16)
    save_table(directory / "histogram.csv", distribution.histogram)
    write_json(directory / "summary.json", {**distribution.summary(), "fit_sf_manipulated": fit["fit_sf_manipulated"],
                                            "acc_sf_clean": fit["acc_sf_clean"]})


def tidy_runs(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows as a table: hyper-parameters as a JSON ``params`` column plus one ``hp_<name>`` column each."""
    records = []
    for row in rows:
        params = row["params"]
        records.append({**row, "params": json.dumps(params, sort_keys=True),
                        **{f"hp_{name}": value for name, value in params.items()}})
    table = pd.DataFrame.from_records(records)
    if table.empty:
        return table
    front = [*IDENTITY, "method", "params", "budget_fraction", "budget_steps", "alpha", "n_manipulated", "n_forget",
             "acc_corr", "acc_retain", "acc_clean", "asr", "unlearn_seconds", "unlearn_steps"]
    return table[front + [c for c in table.columns if c not in front]]
