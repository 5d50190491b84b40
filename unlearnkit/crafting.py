"""The cached steps behind crafted attacks: models trained on the clean data, and the crafting itself.

``clean-<hash>/``: an architecture trained by the kit's trainer on the unmanipulated training set. With
the victim's own model and batch-order seeds it is the reference an indiscriminate attack's accuracy
drop is measured against ("the same model trained clean"); with the attacker's seed it is the
surrogate that Gradient Canceling corrupts and Witches' Brew aligns gradients on.

``craft-<hash>/``: the tensors and summary of one crafting run (:mod:`unlearnkit.manipulations.crafted`),
keyed by the data, the architecture, the recipe (without the victim's seed) and the attack's settings.
Both are built once and read by every later use, in any notebook or process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from .config import to_dict
from .data import DataConfig, DataSplits
from .data.pipeline import TrainingSet, predict_logits
from .manipulations.crafted import CraftContext, Crafted, CraftedManipulation
from .metrics import accuracy
from .models import build_model
from .store import (
    ArtifactStore,
    load_model_weights,
    load_tensors,
    read_json,
    save_model,
    save_table,
    save_tensors,
    write_json,
)
from .training import TrainConfig, train

CLEAN_STAGE = "clean"
CRAFT_STAGE = "craft"
SURROGATE_SEED_BASE = 10_000
"""The attacker's surrogate for attack seed ``s`` is initialised and batched from ``10000 + s``, a seed no
victim of a series uses: it never coincides with the victim's own clean model (gray-box, not white-box)."""


@dataclass
class CleanModel:
    """A model trained on the unmanipulated training set, with its test and validation accuracy."""

    model: torch.nn.Module
    metrics: dict[str, float]
    directory: Path
    cache_hit: bool


def clean_training_set(splits: DataSplits) -> TrainingSet:
    train_set = splits.train
    return TrainingSet(train_set.images, train_set.labels, torch.arange(len(train_set), device=train_set.images.device))


def train_clean(data: DataConfig, splits: DataSplits, model: str, model_seed: int, recipe: TrainConfig,
                store: ArtifactStore, progress: bool = True, force: bool = False) -> CleanModel:
    """``model`` (initialised from ``model_seed``) trained with ``recipe`` on ``splits.train`` as is (cached)."""
    info, device = splits.info, splits.train.images.device
    network = build_model(model, info.num_classes, info.in_channels, model_seed).to(device)

    def build(directory: Path) -> dict[str, Any]:
        started = time.perf_counter()
        _, history = train(network, clean_training_set(splits), info, recipe, progress, f"train {model} on clean data")
        seconds = time.perf_counter() - started
        save_model(directory / "model.safetensors", network)
        save_table(directory / "history.csv", history)
        metrics = {name: accuracy(predict_logits(network, images, info, autocast_bf16=recipe.bf16).argmax(1),
                                  images.labels) for name, images in (("acc_clean", splits.test), ("val_acc", splits.val))}
        write_json(directory / "metrics.json", metrics)
        return {"train_seconds": seconds, "device": str(device)}

    key = {"data": to_dict(data), "model": model, "model_seed": model_seed, "train": to_dict(recipe)}
    directory, hit = store.build(CLEAN_STAGE, key, build, force=force)
    if hit:
        load_model_weights(directory / "model.safetensors", network)
    if recipe.channels_last:
        network = network.to(memory_format=torch.channels_last)
    return CleanModel(network.eval(), read_json(directory / "metrics.json"), directory, hit)


def craft_key(manipulation: CraftedManipulation, data: DataConfig, model: str, recipe: TrainConfig) -> dict[str, Any]:
    """What a crafting run depends on. The victim's seed is left out: the attacker does not know it, and
    every seed of a series is attacked with the same poisons (as every seed shares a BadNet draw)."""
    return {"data": to_dict(data), "model": model, "train": to_dict(replace(recipe, seed=0)),
            "manipulation": {"name": manipulation.name, **to_dict(manipulation)}}


def craft(manipulation: CraftedManipulation, data: DataConfig, splits: DataSplits, model: str, recipe: TrainConfig,
          store: ArtifactStore, progress: bool = True, force: bool = False) -> tuple[Crafted, Path, bool]:
    """Run ``manipulation.craft`` once per key and store its result; later calls load it onto the data's device.

    Returns the crafted tensors, the stage directory and whether it came from the cache.
    """
    recipe = replace(recipe, seed=0)

    def clean_model(seed: int) -> torch.nn.Module:
        surrogate_seed = SURROGATE_SEED_BASE + seed
        return train_clean(data, splits, model, surrogate_seed, replace(recipe, seed=surrogate_seed), store,
                           progress).model

    def build(directory: Path) -> dict[str, Any]:
        started = time.perf_counter()
        result = manipulation.craft(CraftContext(splits, model, recipe, clean_model, progress))
        seconds = time.perf_counter() - started
        save_tensors(directory / "crafted.safetensors", result.tensors)
        write_json(directory / "summary.json", result.summary)
        return {"craft_seconds": seconds, "device": str(splits.train.images.device)}

    directory, hit = store.build(CRAFT_STAGE, craft_key(manipulation, data, model, recipe), build, force=force)
    crafted = Crafted(load_tensors(directory / "crafted.safetensors", splits.train.images.device),
                      read_json(directory / "summary.json"))
    return crafted, directory, hit
