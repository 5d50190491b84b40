"""Building an :class:`UnlearningTask` from a trained original model and a forget set."""

from __future__ import annotations

import torch

from ..experiment import TrainedOriginal
from ..models import build_model
from .base import UnlearningTask


def make_task(original: TrainedOriginal, forget: torch.Tensor) -> UnlearningTask:
    """Retain = S_tr \\ S_f (still holding the unidentified S_m \\ S_f), forget = S_f, validation split."""
    config, splits = original.config, original.splits
    device = next(original.model.parameters()).device
    training_set = original.manipulated.train

    def new_model(seed: int) -> torch.nn.Module:
        model = build_model(config.model, splits.info.num_classes, splits.info.in_channels, seed).to(device)
        return model.to(memory_format=torch.channels_last) if config.train.channels_last else model

    return UnlearningTask(
        original=original.model, info=splits.info, retain=training_set.without(forget),
        forget=training_set.only(forget), validation=splits.val, recipe=config.train, new_model=new_model,
    )
