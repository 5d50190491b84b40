"""The cells of the series' sweeps and the worker that computes them.

Two kinds of cell, each keyed like its stage directory in the artifact store (``<stage>-<hash of
its config>``), so a cell is finished exactly when its stage is built:

* :class:`OriginalCell` trains the original model M_o of one manipulation and seed;
* :class:`UnlearnCell` runs one method with one hyper-parameter setting and budget on the forget set
  S_f of one alpha, for one original model (``stages._unlearning_run``, one row per run).

A :class:`CellWorker` computes cells in one process and keeps the originals it has loaded (data on
the device, model weights), so consecutive cells of the same original reuse them; the grid points
of one method on one forget set form one group, so a Ray worker gets them together and SSD computes
its importances once for the whole grid.
"""

from __future__ import annotations

import functools
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import config_hash, to_dict
from ..device import pick_device
from ..experiment import ExperimentConfig, TrainedOriginal, train_original
from ..manipulations import forget_sets
from ..store import MANIFEST, ArtifactStore, read_json
from ..sweep import CellResult
from ..unlearning import Budget


def stage_key(stage: str, config: dict[str, Any]) -> str:
    """The name of the stage directory the store builds for ``config``: the cell's key."""
    return f"{stage}-{config_hash(config)}"


@dataclass(frozen=True)
class OriginalCell:
    """Train (or load) M_o for manipulation ``label`` and ``seed``."""

    label: str
    seed: int
    experiment: ExperimentConfig

    @property
    def key(self) -> str:
        return stage_key("original", to_dict(self.experiment))

    @property
    def group(self) -> str:
        return self.key

    def run(self, worker: CellWorker, force: bool) -> CellResult:
        started = time.time()
        trained = worker.original(self.experiment, force=force)
        manifest = read_json(trained.directory / MANIFEST)
        return CellResult(self.key, {
            "manipulation": self.label, "dataset": trained.splits.info.name, "model": trained.config.model,
            "seed": self.seed, "n_manipulated": trained.manipulated.n_manipulated, **trained.metrics,
            "train_steps": trained.config.train.steps, "train_seconds": manifest.get("train_seconds"),
            "directory": trained.directory.name,
        }, manifest["created"] < started)


@dataclass(frozen=True)
class UnlearnCell:
    """Unlearn S_f at ``alpha`` from the original of ``experiment`` with ``method`` and ``params``."""

    label: str
    experiment: ExperimentConfig
    method: str
    params: dict[str, Any]
    alpha: float
    budget: Budget | None
    seed: int

    def config(self) -> dict[str, Any]:
        """The store key of the run (unchanged since the series first cached runs)."""
        return {"experiment": to_dict(self.experiment), "method": self.method, "params": self.params,
                "alpha": self.alpha, "forget_seed": self.seed,
                "budget": to_dict(self.budget) if self.budget else None, "seed": self.seed}

    @property
    def key(self) -> str:
        return stage_key("unlearn", self.config())

    @property
    def group(self) -> str:
        budget = to_dict(self.budget) if self.budget else None
        return config_hash(to_dict(self.experiment), self.method, self.alpha, budget)

    def run(self, worker: CellWorker, force: bool) -> CellResult:
        # stages plans these cells and holds the per-run function: importing it at module level
        # would be circular.
        from .stages import _unlearning_run

        original = worker.original(self.experiment)
        forget = forget_sets(original.manipulated.manipulated, [self.alpha], self.seed)[float(self.alpha)]
        build = functools.partial(_unlearning_run, original=original, method=self.method, params=self.params,
                                  alpha=self.alpha, forget=forget, budget=self.budget, seed=self.seed)
        directory, hit = worker.store.build("unlearn", self.config(), build, force=force)
        row = read_json(directory / "row.json")
        return CellResult(self.key, {**row, "manipulation": self.label, "run": directory.name}, hit)


class CellWorker:
    """Computes cells against one run folder, keeping the originals it loaded for the next cells.

    ``keep`` bounds how many originals stay loaded (None: all, as the series in one process holds
    them anyway). A kept original is reloaded when its stage was rebuilt since (another worker or
    ``force``).
    """

    def __init__(self, output_root: str | Path, run_name: str, device: str | None = None, progress: bool = False,
                 keep: int | None = 2):
        self.store = ArtifactStore(Path(output_root), run_name)
        self.device = pick_device(device)
        self.progress = progress
        self.keep = keep
        self._originals: OrderedDict[str, tuple[float, TrainedOriginal]] = OrderedDict()

    def adopt(self, trained: TrainedOriginal) -> None:
        """Use the already loaded ``trained`` for its cells (the same objects the caller holds)."""
        self._remember(trained)

    def original(self, experiment: ExperimentConfig, force: bool = False) -> TrainedOriginal:
        key = stage_key("original", to_dict(experiment))
        kept = self._originals.get(key)
        if kept is not None and not force and _built_at(kept[1].directory) == kept[0]:
            self._originals.move_to_end(key)
            return kept[1]
        trained = train_original(experiment, self.store, str(self.device), progress=self.progress, force=force)
        self._remember(trained)
        return trained

    def _remember(self, trained: TrainedOriginal) -> None:
        key = stage_key("original", to_dict(trained.config))
        self._originals[key] = (_built_at(trained.directory), trained)
        self._originals.move_to_end(key)
        while self.keep is not None and len(self._originals) > self.keep:
            self._originals.popitem(last=False)

    def run(self, cells, force: bool) -> list[CellResult]:
        return [cell.run(self, force) for cell in cells]


def _built_at(directory: Path) -> float | None:
    manifest = Path(directory) / MANIFEST
    return read_json(manifest)["created"] if manifest.is_file() else None
