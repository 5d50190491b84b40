"""The fine-tuning recipe of a language model: the steps-based trainer's recipe with AdamW.

Transformers are fine-tuned with AdamW, a short linear warm-up and a linear decay to zero, no weight
decay on biases and norm weights, and dropout active (Devlin et al. 2019; the usual Hugging Face
recipe). The trainer (:func:`unlearnkit.training.train`) and every unlearning method build their
optimiser through :meth:`TextTrainConfig.optimizer_for`, so unlearning keeps the fine-tuning optimiser.
``momentum`` is AdamW's first-moment decay (beta_1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ..training import TrainConfig


@dataclass(frozen=True)
class TextTrainConfig(TrainConfig):
    steps: int = 300
    batch_size: int = 16
    lr: float = 5e-5
    momentum: float = 0.9
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    final_lr_fraction: float = 0.0
    augment: bool = False
    channels_last: bool = False
    optimizer: Literal["adamw", "sgd"] = "adamw"

    def optimizer_for(self, parameters) -> torch.optim.Optimizer:
        parameters = [p for p in parameters if p.requires_grad]
        if self.optimizer == "sgd":
            return torch.optim.SGD(parameters, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay,
                                   nesterov=self.nesterov and self.momentum > 0)
        groups = [{"params": [p for p in parameters if p.dim() >= 2], "weight_decay": self.weight_decay},
                  {"params": [p for p in parameters if p.dim() < 2], "weight_decay": 0.0}]
        return torch.optim.AdamW([g for g in groups if g["params"]], lr=self.lr, betas=(self.momentum, 0.999))
