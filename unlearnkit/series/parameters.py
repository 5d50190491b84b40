"""The parameters of the core series (01 poison ... 05 SSD importance): one typed, validated schema.

Every notebook's ``parameters`` cell declares the subset of these fields its stages depend on, with
the defaults below (the smoke set, so a notebook opened as is runs in seconds). Parameter files
(``parameters/*.yaml``) use the same flat keys. :func:`~unlearnkit.series.families.load_parameter_file`
validates a file before any compute: an unknown key, a wrong type or a value out of range stops with a
message naming it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..config import ConfigError, check_range, from_dict, to_dict
from ..data import DataConfig
from ..experiment import ExperimentConfig
from ..manipulations import build_manipulation
from ..models import MODELS
from ..sweep import ExecutionOptions
from ..training import TrainConfig
from ..unlearning import METHODS, Budget, method_params, named_grid
from .families import Family, register_family
from .schema import CommonParameters, canonical_manipulation, data_values, stage_field
from .tables import core_summary

SMOKE_TRAIN = {"steps": 150, "batch_size": 128, "lr": 0.05, "warmup_fraction": 0.05, "log_every": 10}
SMOKE_MANIPULATIONS = [
    {"name": "badnet", "target_class": 0, "patch_size": 3, "fraction": 0.03, "seed": 0},
    {"name": "interclass", "class_a": 3, "class_b": 5, "fraction": 0.1, "seed": 0},
]
SMOKE_METHODS = {
    "rewod": {}, "cf": {}, "eu": {}, "ngd": {}, "ga": {}, "neggrad+": {},
    "scrub": {"msteps": 5}, "badt": {}, "ssd": {"selection_weighting": [1.0, 10.0]},
}


@dataclass(frozen=True)
class SeriesParameters(CommonParameters):
    """Everything the core series depends on. Field order follows the stages that first use each field."""

    # 01 poison: data, manipulations, identified fractions and seeds.
    dataset: str = stage_field("poison", "mnist")
    data_root: str | None = stage_field("poison", None)
    download: bool = stage_field("poison", False)
    val_size: int = stage_field("poison", 500)
    train_subset: int | None = stage_field("poison", 4000)
    test_subset: int | None = stage_field("poison", 1000)
    data_seed: int = stage_field("poison", 0)
    manipulations: list[dict[str, Any]] = stage_field("poison", factory=lambda: [dict(m) for m in SMOKE_MANIPULATIONS])
    alphas: list[float] = stage_field("poison", factory=lambda: [0.5, 1.0])
    seeds: list[int] = stage_field("poison", factory=lambda: [0])
    # 02 train: the original model M_o.
    model: str = stage_field("train", "small-cnn")
    train: dict[str, Any] = stage_field("train", factory=lambda: dict(SMOKE_TRAIN))
    # 03 unlearn: methods with their hyper-parameters (a list sweeps, "grid" names a paper grid), budget.
    methods: dict[str, Any] = stage_field("unlearn", factory=lambda: {k: dict(v) for k, v in SMOKE_METHODS.items()})
    budget_fraction: float | list[float] | None = stage_field("unlearn", None)
    budget_steps: int | list[int] | None = stage_field("unlearn", None)
    # Where the sweep's cells run (no effect on results; see unlearnkit.sweep).
    executor: str = stage_field("unlearn", "local")
    ray_address: str | None = stage_field("unlearn", None)
    gpus_per_run: float | None = stage_field("unlearn", None)
    cpus_per_run: int | None = stage_field("unlearn", None)
    # 04 evaluate: model selection without test labels.
    min_relative_val_acc: float | None = stage_field("evaluate", None)
    # 05 SSD importance histogram.
    importance_alpha: float = stage_field("importance", 1.0)
    importance_batch_size: int | None = stage_field("importance", None)
    importance_reference: Literal["retain", "full"] = stage_field("importance", "retain")
    importance_threshold: float = stage_field("importance", 10.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("val_size", self.val_size, 0)
        if not self.manipulations:
            raise ConfigError("manipulations must list at least one manipulation")
        if not self.alphas:
            raise ConfigError("alphas must list at least one identified fraction")
        for i, alpha in enumerate(self.alphas):
            check_range(f"alphas[{i}]", alpha, 0.0, 1.0, low_open=True)
        if len(set(self.alphas)) != len(self.alphas):
            raise ConfigError(f"alphas has repeated values: {self.alphas}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must list distinct seeds, got {self.seeds}")
        for i, seed in enumerate(self.seeds):
            check_range(f"seeds[{i}]", seed, 0)
        if self.model.lower() not in MODELS:
            MODELS.get(self.model)
        check_range("importance_alpha", self.importance_alpha, 0.0, 1.0, low_open=True)
        check_range("importance_threshold", self.importance_threshold, 0.0, low_open=True)
        if self.importance_batch_size is not None:
            check_range("importance_batch_size", self.importance_batch_size, 1)
        if self.min_relative_val_acc is not None:
            check_range("min_relative_val_acc", self.min_relative_val_acc, 0.0, 1.0)
        # Build every derived config now: their checks name the offending key before any compute.
        self.data_config()
        for index in range(len(self.manipulations)):
            self.canonical_manipulation(index)
        self.train_config()
        self.budgets()
        if not self.methods:
            raise ConfigError("methods must name at least one unlearning method")
        for name in self.methods:
            self.method_points(name)
        self.execution()

    # Derived configs -------------------------------------------------------------------------

    def data_config(self) -> DataConfig:
        return from_dict(DataConfig, data_values(self), prefix="data.")

    def canonical_manipulation(self, index: int) -> dict[str, Any]:
        """The manipulation with every default spelled out, so equivalent spellings share a cache."""
        return canonical_manipulation(self.manipulations, index, build_manipulation)

    def manipulation_labels(self) -> list[str]:
        """Display names: the manipulation's name, numbered when a name repeats."""
        names = [m["name"] for m in self.manipulations]
        return [name if names.count(name) == 1 else f"{name}#{names[:i].count(name) + 1}"
                for i, name in enumerate(names)]

    def train_config(self, seed: int = 0) -> TrainConfig:
        return from_dict(TrainConfig, {**self.train, "seed": self.train.get("seed", 0) + seed}, prefix="train.")

    def experiment(self, index: int, seed: int) -> ExperimentConfig:
        """The original model of manipulation ``index`` and seed ``seed`` (model init and batch order)."""
        return ExperimentConfig(data=self.data_config(), manipulation=self.canonical_manipulation(index),
                                model=self.model, model_seed=seed, train=self.train_config(seed))

    def execution(self) -> ExecutionOptions:
        """The executor of the sweep's cells (``local`` or ``ray``) with its resources."""
        return ExecutionOptions(executor=self.executor, ray_address=self.ray_address,
                                gpus_per_run=self.gpus_per_run, cpus_per_run=self.cpus_per_run)

    def budgets(self) -> list[Budget | None]:
        """The compute budgets every approximate method runs at: ``[None]`` (each method's default), or
        one per value of ``budget_fraction`` (a share of the original training steps, e.g. Pawelczyk
        et al.'s 0.02 ... 0.10) or of ``budget_steps``."""
        if self.budget_fraction is not None and self.budget_steps is not None:
            raise ConfigError("give only one of budget_fraction and budget_steps, got both")
        for key in ("budget_fraction", "budget_steps"):
            values = getattr(self, key)
            if values is None:
                continue
            values = values if isinstance(values, list) else [values]
            if not values or len(set(values)) != len(values):
                raise ConfigError(f"{key} must be one value or a list of distinct values, got {getattr(self, key)}")
            unit = "fraction" if key == "budget_fraction" else "steps"
            budgets = []
            for index, value in enumerate(values):
                try:
                    budgets.append(Budget(**{unit: value}))
                except ConfigError as err:
                    raise ConfigError(f"{key}[{index}]: {err}") from err
            return budgets
        return [None]

    def budgets_for(self, method: str) -> list[Budget | None]:
        """RewoD (the reference) always retrains fully and SSD needs no training: one run each."""
        kind = METHODS.get(method)
        return [None] if kind.is_reference or not kind.uses_budget else self.budgets()

    def method_points(self, name: str) -> list[dict[str, Any]]:
        """Every hyper-parameter setting of method ``name``, validated.

        The method's entry is a mapping of hyper-parameters, where a list sweeps its values (the
        product over all lists) and ``grid`` names a paper grid (``ssd-goel``, ``scrub-goel``), or a
        list of such mappings whose settings are concatenated.
        """
        if name not in METHODS:
            try:
                METHODS.get(name)
            except ConfigError as err:  # names the known methods and the closest one
                raise ConfigError(f"methods.{name}: {err}") from err
        spec = self.methods[name]
        specs = spec if isinstance(spec, list) else [spec]
        if not specs:
            raise ConfigError(f"methods.{name} is an empty list of settings: give at least one (or {{}} for the defaults)")
        points = []
        for index, entry in enumerate(specs):
            where = f"methods.{name}" + (f"[{index}]" if isinstance(spec, list) else "")
            if entry is not None and not isinstance(entry, Mapping):
                raise ConfigError(f"{where} must be a mapping of hyper-parameters, got {entry!r}")
            points += _expand(name, dict(entry or {}), where)
        return points


def _expand(name: str, spec: dict[str, Any], where: str) -> list[dict[str, Any]]:
    grid_points = [{}]
    if "grid" in spec:
        try:
            grid_method, grid_points = named_grid(spec.pop("grid"))
        except ConfigError as err:
            raise ConfigError(f"{where}.grid: {err}") from err
        if grid_method != name:
            raise ConfigError(f"{where}.grid is a grid of {grid_method!r}, not of {name!r}")
    swept = {key: value if isinstance(value, list) else [value] for key, value in spec.items()}
    for key, values in swept.items():
        if not values:
            raise ConfigError(f"{where}.{key} is an empty list")
    points = []
    for grid_point in grid_points:
        for combination in itertools.product(*swept.values()):
            points.append(to_dict(method_params(name, {**grid_point, **dict(zip(swept, combination))})))
    return points


CORE = register_family(Family(
    name="core",
    parameters=SeriesParameters,
    notebooks={
        "01_poison": ("common", "poison"),
        "02_train": ("common", "poison", "train"),
        "03_unlearn": ("common", "poison", "train", "unlearn"),
        "04_evaluate": ("common", "poison", "train", "unlearn", "evaluate"),
        "05_ssd_importance": ("common", "poison", "train", "importance"),
    },
    summary=core_summary,
    description="corrective unlearning: poison, train, unlearn, evaluate, SSD importance (Goel et al. 2024)",
))
