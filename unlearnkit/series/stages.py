"""The stages of the notebook series, each cached in the artifact store under ``<output_root>/<run_name>/``.

``poison`` -> ``original`` (train M_o) -> ``unlearn`` (one stage directory per run) -> results with
model selection, and ``importance`` (SSD's ratio histogram and the raw per-parameter importances). Every stage loads what it needs from
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

from ..audits import ModelAudit, audit_model
from ..config import to_dict
from ..data.core import DataSplits
from ..data.pipeline import predict_logits
from ..device import pick_device
from ..experiment import TrainedOriginal, prepare
from ..manipulations import Manipulated, forget_sets
from ..metrics import accuracy, evaluate
from ..store import MANIFEST, ArtifactStore, load_tensors, read_json, save_table, save_tensors, write_json
from ..sweep import CellTable, SweepOutcome, WorkerSpec, run_cells
from ..unlearning import Budget, SSDImportances, make_task, select_best, ssd_importances, unlearn_evaluate_and_audit
from ..unlearning.grids import SSD_SELECTION_WEIGHTINGS
from ..unlearning.importance_ratio import RatioDistribution, ratio_distribution
from .cells import CellWorker, OriginalCell, UnlearnCell
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
    directory: Path | None = None

    def tensors(self) -> SSDImportances:
        """The per-parameter importances ``I_f`` and ``I_X`` behind the histogram (for the SSD explorer)."""
        if self.directory is None:
            raise FileNotFoundError(f"{self.label}: no stage directory recorded for these importances")
        return load_importances(self.directory)


class Series:
    """The stages of one parameter set, sharing a store and a device."""

    def __init__(self, params: SeriesParameters):
        self.params = params
        self.store = ArtifactStore(output_root(params.output_root), params.run_name)
        self.device = pick_device(params.device)
        self.executor = params.execution().build()
        # Computes the cells of the local executor, holding the originals this series loaded.
        self.worker = CellWorker(self.store.root, self.store.run, params.device, progress=params.progress, keep=None)

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
                recorded = load_tensors(directory / "manipulated.safetensors")
                same_noise = (manipulated.noise is None or "noise" not in recorded
                              or torch.equal(recorded["noise"], manipulated.noise.cpu()))
                if not torch.equal(recorded["positions"], manipulated.manipulated.cpu()) or not same_noise:
                    raise RuntimeError(f"{directory}: the recorded manipulated indices or noise differ from the "
                                       "ones drawn now; rerun with force=True")
            results.append(Poisoned(label, seed, splits, manipulated, forget, directory, hit))
        return results

    # 02 train --------------------------------------------------------------------------------

    def original_cells(self) -> list[OriginalCell]:
        return [OriginalCell(label, seed, self.params.experiment(index, seed)) for index, label, seed in self._experiments()]

    def originals(self, force: bool = False) -> list[Original]:
        """Train (or load) the original model M_o of every manipulation and seed, as cells of the
        sweep on its executor (on Ray, every original trains at once), then load them here."""
        cells = self.original_cells()
        self._run_cells(cells, "original", force, "original models")
        results = []
        for cell in cells:
            trained = self.worker.original(cell.experiment)
            val = trained.splits.val
            logits = predict_logits(trained.model, val, trained.splits.info, autocast_bf16=trained.config.train.bf16)
            val_acc = accuracy(logits.argmax(1), val.labels)
            results.append(Original(cell.label, cell.seed, trained, val_acc))
        return results

    def original_audit(self, original: Original) -> ModelAudit:
        """MIA and (with noise) GUS of M_o on all of S_m: the "before unlearning" reference of every run.
        Cheap (one forward over S_m and the test set, one backward per poison), so it is not cached."""
        trained = original.trained
        return audit_model(trained.model, trained.splits, trained.manipulated,
                           autocast_bf16=trained.config.train.bf16)

    def originals_table(self, originals: list[Original]) -> pd.DataFrame:
        rows = []
        for original in originals:
            trained = original.trained
            manifest = read_json(trained.directory / "manifest.json")
            rows.append({"manipulation": original.label, "dataset": trained.splits.info.name,
                         "model": trained.config.model, "seed": original.seed,
                         "n_manipulated": trained.manipulated.n_manipulated, **trained.metrics,
                         **self.original_audit(original).row(),
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

    def unlearning_cells(self, originals: list[Original]) -> list[UnlearnCell]:
        """Every method x hyper-parameter setting x budget x alpha on every original, in table order.

        alpha comes before method: consecutive runs share a forget set, so SSD computes its
        importances once per alpha for a whole grid.
        """
        cells = []
        for original in originals:
            for alpha in self.params.alphas:
                for method in self.params.methods:
                    for point, given in itertools.product(self.params.method_points(method),
                                                          self.params.budgets_for(method)):
                        cells.append(UnlearnCell(original.label, original.trained.config, method, point,
                                                 float(alpha), given, original.seed))
        return cells

    def unlearning_runs(self, force: bool = False, originals: list[Original] | None = None) -> pd.DataFrame:
        """Every method x hyper-parameter setting x budget x alpha on every original, one cached stage per run.

        The runs are cells of a sweep (:mod:`unlearnkit.sweep`) on the parameters' executor: finished
        runs are skipped, an interrupted call resumes, and every run is recorded in the ledger
        ``<run>/sweep/unlearn.jsonl`` as soon as it finishes. The table lists the planned runs in plan order.
        """
        originals = originals or self.originals()
        for original in originals:
            self.worker.adopt(original.trained)
        cells = self.unlearning_cells(originals)
        outcome = self._run_cells(cells, "unlearn", force, "unlearning runs")
        table = tidy_runs([{**outcome.rows[cell.key], "manipulation": cell.label} for cell in cells])
        table.attrs["from_cache"] = outcome.reused
        save_table(self.run_dir / "unlearning_runs.csv", table)
        return table

    def run_audit(self, run: str) -> ModelAudit:
        """The per-sample audit arrays of the unlearning run ``run`` (its stage directory's name)."""
        path = self.run_dir / run / AUDIT_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: the run was cached before audits were kept; "
                                    "rerun the unlearning stage with force=True")
        return ModelAudit.from_tensors(load_tensors(path))

    def ledger(self, stage: str) -> CellTable:
        """The sweep's record of finished ``original`` or ``unlearn`` cells of this run folder."""
        return CellTable(self.run_dir / "sweep" / f"{stage}.jsonl")

    def _run_cells(self, cells, stage: str, force: bool, description: str) -> SweepOutcome:
        worker = WorkerSpec(CellWorker, {"output_root": str(self.store.root), "run_name": self.store.run,
                                         "device": self.params.device}, local=self.worker)
        return run_cells(cells, self.ledger(stage), self.executor, worker, force=force,
                         exists=lambda cell: (self.run_dir / cell.key / MANIFEST).is_file(),
                         progress=self.params.progress, description=description)

    # 04 evaluate -----------------------------------------------------------------------------

    def results(self, runs: pd.DataFrame | None = None, originals: list[Original] | None = None) -> pd.DataFrame:
        """All runs with the model selected per (manipulation, seed, method, alpha) marked; writes results.csv.

        Selection follows Goel et al. (2024): the best ``0.5 * val acc + 0.5 * changed S_f predictions``,
        never the test set; ``min_relative_val_acc`` drops collapsed candidates first.
        """
        originals = originals or self.originals()
        runs = self.unlearning_runs(originals=originals) if runs is None else runs
        table = mark_selected(runs, originals, RUN_GROUP, self.params.min_relative_val_acc)
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
            if not (directory / IMPORTANCES_FILE).is_file():
                # Built before the raw importances were kept: rebuild once so every stage has them.
                directory, hit = self.store.build("importance", key, build, force=True)
            summary = read_json(directory / "summary.json")
            fit, clean = summary.pop("fit_sf_manipulated"), summary.pop("acc_sf_clean")
            distribution = RatioDistribution.from_summary(pd.read_csv(directory / "histogram.csv"), summary)
            results.append(Importance(original.label, original.seed, params.importance_alpha, distribution,
                                      fit, clean, hit, directory))
        return results


def _record_poison(directory: Path, splits: DataSplits, manipulated: Manipulated,
                   forget: dict[float, torch.Tensor]) -> None:
    positions = manipulated.manipulated
    noise = {} if manipulated.noise is None else {"noise": manipulated.noise}
    save_tensors(directory / "manipulated.safetensors", {
        "positions": positions, "ids": manipulated.sample_ids(splits, positions),
        "clean_labels": manipulated.clean_train_labels[positions],
        "manipulated_labels": manipulated.train.labels[positions], **noise,
    })
    save_tensors(directory / "forget_sets.safetensors", {f"alpha={a:g}": f for a, f in forget.items()})


def mark_selected(runs: pd.DataFrame, originals: list, group: list[str],
                  min_relative_val_acc: float | None) -> pd.DataFrame:
    """``runs`` with ``selected`` (the run picked per ``group`` for each original's manipulation and seed,
    by Goel et al.'s validation-only score) and ``flag_low_val_acc`` columns. ``originals`` need ``label``,
    ``seed`` and ``val_acc`` (their validation accuracy, the reference of the collapse guard)."""
    picked = []
    for original in originals:
        mine = runs[(runs["manipulation"] == original.label) & (runs["seed"] == original.seed)]
        if len(mine):
            picked.append(select_best(mine, group, original.val_acc, min_relative_val_acc))
    best = pd.concat(picked, ignore_index=True) if picked else runs.iloc[:0]
    table = runs.copy()
    table["selected"] = table["run"].isin(best["run"])
    table["flag_low_val_acc"] = table["run"].isin(set(best.loc[best["flag_low_val_acc"], "run"]))
    return table


AUDIT_FILE = "audit.safetensors"
"""Per-sample audit arrays of a run (losses of the MIA, ``I_z`` of GUS), beside its ``row.json``."""


def _unlearning_run(directory: Path, original: TrainedOriginal, method: str, params: dict[str, Any], alpha: float,
                    forget: torch.Tensor, budget: Budget | None, seed: int) -> None:
    row, audit = unlearn_evaluate_and_audit(original, method, params, alpha, forget, budget, seed)
    save_tensors(directory / AUDIT_FILE, audit.tensors())
    write_json(directory / "row.json", row)


IMPORTANCES_FILE = "importances.safetensors"


def save_importances(path: Path, importances: SSDImportances) -> None:
    """``forget/<parameter>`` and ``reference/<parameter>`` tensors, with the batch size and reference set."""
    save_tensors(path, {**{f"forget/{name}": t for name, t in importances.forget.items()},
                        **{f"reference/{name}": t for name, t in importances.reference.items()}})
    write_json(path.with_suffix(".json"), {"batch_size": importances.batch_size,
                                           "reference_set": importances.reference_set})


def load_importances(directory: Path) -> SSDImportances:
    tensors = load_tensors(directory / IMPORTANCES_FILE)
    meta = read_json((directory / IMPORTANCES_FILE).with_suffix(".json"))
    parts = {"forget": {}, "reference": {}}
    for key, tensor in tensors.items():
        part, name = key.split("/", 1)
        parts[part][name] = tensor
    return SSDImportances(parts["forget"], parts["reference"], meta["batch_size"], meta["reference_set"])


def _importance_distribution(directory: Path, original: TrainedOriginal, forget: torch.Tensor, batch_size: int,
                             reference: str, thresholds: list[float]) -> None:
    importances = ssd_importances(make_task(original, forget), batch_size, reference)
    save_importances(directory / IMPORTANCES_FILE, importances)
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
