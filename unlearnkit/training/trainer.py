"""Steps-based SGD training on the device-resident batch pipeline.

The recipe follows Goel et al. (2024, Appendix A): SGD with momentum and weight decay, a fixed
number of steps, linear warm-up then linear decay, random crop + flip, mixed precision (bf16
autocast where the device has fast bf16) and channels_last memory layout.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn.functional as F

from ..config import check_range
from ..data.core import DatasetInfo
from ..data.pipeline import TrainingSet, batch_stream
from ..device import autocast
from ..frontend import tqdm
from .schedule import lr_at


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 4000
    batch_size: int = 512
    lr: float = 0.025
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    warmup_fraction: float = 0.01
    final_lr_fraction: float = 0.2
    label_smoothing: float = 0.0
    augment: bool = True
    bf16: bool = True
    channels_last: bool = True
    log_every: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        check_range("train.steps", self.steps, 1)
        check_range("train.batch_size", self.batch_size, 1)
        check_range("train.lr", self.lr, 0.0, low_open=True)
        check_range("train.momentum", self.momentum, 0.0, 1.0, high_open=True)
        check_range("train.weight_decay", self.weight_decay, 0.0)
        check_range("train.warmup_fraction", self.warmup_fraction, 0.0, 1.0, high_open=True)
        check_range("train.final_lr_fraction", self.final_lr_fraction, 0.0, 1.0)
        check_range("train.label_smoothing", self.label_smoothing, 0.0, 1.0, high_open=True)
        check_range("train.log_every", self.log_every, 1)

    def lr_at(self, step: int) -> float:
        return lr_at(step, self.steps, self.lr, self.warmup_fraction, self.final_lr_fraction)


def make_optimizer(parameters, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD with the recipe's momentum and weight decay, unless the recipe builds its own optimiser
    (``optimizer_for``, e.g. the language models' AdamW recipe)."""
    own = getattr(config, "optimizer_for", None)
    if own is not None:
        return own(parameters)
    return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay, nesterov=config.nesterov and config.momentum > 0)


def train(model: torch.nn.Module, data: TrainingSet, info: DatasetInfo, config: TrainConfig,
          progress: bool = True, description: str = "train") -> tuple[torch.nn.Module, pd.DataFrame]:
    """Train ``model`` in place on ``data`` (already on the model's device); return it and a history.

    The history has one row per ``log_every`` steps: step, lr, mean loss and accuracy over those
    steps, and elapsed seconds.
    """
    device = next(model.parameters()).device
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    model.train()
    optimizer = make_optimizer(model.parameters(), config)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    records = []
    loss_sum = torch.zeros((), device=device)
    correct_sum = torch.zeros((), device=device)
    seen = 0
    start = time.perf_counter()
    stream = batch_stream(data, info, config.batch_size, config.steps, generator,
                          augment_batches=config.augment, channels_last=config.channels_last)
    with tqdm(total=config.steps, desc=description, disable=not progress, leave=False) as bar:
        for step, (inputs, labels, _) in enumerate(stream):
            lr = config.lr_at(step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with autocast(device, config.bf16):
                logits = model(inputs)
            loss = F.cross_entropy(logits.float(), labels, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            # Accumulate on the device: a .item() per step would synchronise with the GPU.
            loss_sum += loss.detach() * len(labels)
            correct_sum += (logits.detach().argmax(1) == labels).sum()
            seen += len(labels)
            if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
                records.append({"step": step + 1, "lr": lr, "loss": loss_sum.item() / seen,
                                "train_acc": correct_sum.item() / seen,
                                "seconds": time.perf_counter() - start})
                bar.set_postfix(loss=f"{records[-1]['loss']:.3f}")
                loss_sum.zero_()
                correct_sum.zero_()
                seen = 0
            bar.update(1)
    model.eval()
    return model, pd.DataFrame.from_records(records, columns=["step", "lr", "loss", "train_acc", "seconds"])
