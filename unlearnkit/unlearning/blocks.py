"""Addressing "the last k blocks" of a model for EU-k and CF-k (Goel et al. 2023)."""

from __future__ import annotations

import torch

from ..config import ConfigError


def check_k(name: str, k: int | None, model: torch.nn.Module) -> None:
    """``k`` must address between 1 and all of the model's blocks (None = all)."""
    if k is None:
        return
    blocks = getattr(model, "num_blocks", None)
    if blocks is None:
        raise ConfigError(f"methods.{name}.k needs a model with addressable blocks (a unlearnkit BlockNet)")
    if not 1 <= k <= blocks:
        raise ConfigError(f"methods.{name}.k must be in [1, {blocks}] for this model, got {k}")


def split_blocks(model: torch.nn.Module, k: int | None) -> tuple[list[torch.nn.Module], list[torch.nn.Module]]:
    """``(frozen prefix, trainable last k blocks)``; ``k=None`` trains the whole model."""
    if k is None:
        return [], [model]
    return model.prefix_blocks(k), model.last_blocks(k)
