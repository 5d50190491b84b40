"""One experiment: load data, manipulate it, train the original model M_o (cached), evaluate.

This is the library-level pipeline behind the notebooks and ``unlearnkit demo``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from .config import ConfigError, from_dict, to_dict
from .crafting import craft
from .data import DataConfig, DataSplits, load_data
from .device import pick_device
from .manipulations import Manipulated, build_manipulation
from .manipulations.crafted import is_crafted
from .metrics import evaluate
from .models import MODELS, build_model
from .store import ArtifactStore, load_model_weights, read_json, save_model, save_table, save_tensors, write_json
from .training import TrainConfig, train


@dataclass(frozen=True)
class ExperimentConfig:
    """Data, manipulation, model and training recipe of one original model M_o."""

    data: DataConfig = field(default_factory=DataConfig)
    manipulation: dict[str, Any] = field(default_factory=lambda: {"name": "badnet"})
    model: str = "small-cnn"
    model_seed: int = 0
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        build_manipulation(self.manipulation)  # validates before any compute
        if self.model.lower() not in MODELS:
            MODELS.get(self.model)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ExperimentConfig:
        return from_dict(cls, values)


@dataclass
class TrainedOriginal:
    """The original model M_o with its data, manipulation, history and metrics."""

    config: ExperimentConfig
    splits: DataSplits
    manipulated: Manipulated
    model: torch.nn.Module
    history: pd.DataFrame
    metrics: dict[str, float]
    directory: Path
    cache_hit: bool


def prepare(config: ExperimentConfig, device: torch.device, store: ArtifactStore | None = None,
            progress: bool = True) -> tuple[DataSplits, Manipulated]:
    """Load the data onto ``device`` and apply the manipulation.

    A crafted attack (one with a ``craft`` step) is crafted once per key and cached in ``store``
    (default: ``ArtifactStore()``); every later call reads the same poisons.
    """
    splits = load_data(config.data, device)
    manipulation = build_manipulation(config.manipulation)
    if not is_crafted(manipulation):
        return splits, manipulation.apply(splits)
    crafted, _, _ = craft(manipulation, config.data, splits, config.model, config.train, store or ArtifactStore(),
                          progress)
    return splits, manipulation.apply(splits, crafted)


def new_model(config: ExperimentConfig, splits: DataSplits, device: torch.device) -> torch.nn.Module:
    info = splits.info
    return build_model(config.model, info.num_classes, info.in_channels, config.model_seed).to(device)


def train_original(config: ExperimentConfig, store: ArtifactStore | None = None, device: str | None = None,
                   progress: bool = True, force: bool = False) -> TrainedOriginal:
    """Train (or load from the store) the original model on the manipulated training set."""
    store = store or ArtifactStore()
    compute_device = pick_device(device)
    splits, manipulated = prepare(config, compute_device, store, progress)
    model = new_model(config, splits, compute_device)

    def build(directory: Path) -> dict[str, Any]:
        started = time.perf_counter()
        _, history = train(model, manipulated.train, splits.info, config.train, progress, "train M_o")
        seconds = time.perf_counter() - started
        save_model(directory / "model.safetensors", model)
        save_table(directory / "history.csv", history)
        save_tensors(directory / "manipulated.safetensors", {
            "positions": manipulated.manipulated,
            "ids": manipulated.sample_ids(splits, manipulated.manipulated),
        })
        write_json(directory / "metrics.json", evaluate(model, splits, manipulated, autocast_bf16=config.train.bf16))
        return {"train_seconds": seconds, "device": str(compute_device)}

    directory, hit = store.build("original", to_dict(config), build, force=force)
    if hit:
        load_model_weights(directory / "model.safetensors", model)
    if config.train.channels_last:
        # As trained: a loaded model would otherwise run in NCHW (a one-channel input cannot tell
        # convolutions which layout to use), several times slower on CPU.
        model = model.to(memory_format=torch.channels_last)
    history = pd.read_csv(directory / "history.csv")
    return TrainedOriginal(config, splits, manipulated, model.eval(), history,
                           read_json(directory / "metrics.json"), directory, hit)


def demo_config(steps: int = 600, train_subset: int | None = None) -> ExperimentConfig:
    """BadNet on the embedded MNIST with the small CPU model: the kit's quick end-to-end job."""
    if steps < 1:
        raise ConfigError(f"steps must be positive, got {steps}")
    return ExperimentConfig(
        data=DataConfig(name="mnist", train_subset=train_subset, val_size=5000 if train_subset is None else 500),
        manipulation={"name": "badnet", "target_class": 0, "patch_size": 3, "fraction": 0.01, "seed": 0},
        model="small-cnn",
        train=TrainConfig(steps=steps, batch_size=256, lr=0.05, warmup_fraction=0.05, log_every=50),
    )
