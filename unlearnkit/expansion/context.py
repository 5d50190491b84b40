"""What an expansion scorer may look at: the original model and the training set as it was trained on.

Never the test set: an :class:`ExpansionContext` is built from the model, the (manipulated) training
set and the dataset's normalisation only. Samples are presented as trained (the manipulation hook
applied, e.g. the BadNet trigger), without random augmentation, with the model in eval mode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data.core import DatasetInfo
from ..data.pipeline import TrainingSet, prepare

CACHE_BYTES = 2 ** 28
"""Largest per-sample intermediate kept for the whole training set (256 MiB)."""


@dataclass
class ExpansionContext:
    model: nn.Module
    """The original model M_o (a BlockNet, so "the last k blocks" are addressable)."""
    train: TrainingSet
    """The training set as the model saw it; positions index it (S_f, the candidates, S_m)."""
    info: DatasetInfo
    batch_size: int = 512
    channels_last: bool = True
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not torch.equal(self.train.index.cpu(), torch.arange(len(self.train))):
            raise ValueError("the context needs the whole training set, indexed by position")

    @classmethod
    def of(cls, original, batch_size: int | None = None) -> ExpansionContext:
        """The context of a :class:`~unlearnkit.experiment.TrainedOriginal` (its splits' test set is not used)."""
        recipe = original.config.train
        return cls(original.model, original.manipulated.train, original.splits.info,
                   batch_size or recipe.batch_size, recipe.channels_last)

    def remember(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` the first time ``key`` is asked for, the kept result afterwards."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def num_blocks(self) -> int:
        return self.model.num_blocks

    def resolve_blocks(self, blocks: int | None) -> int:
        """``blocks`` (None: every block) checked against the model."""
        if blocks is None:
            return self.num_blocks
        if not 1 <= blocks <= self.num_blocks:
            raise ValueError(f"blocks must be in [1, {self.num_blocks}] for this model, got {blocks}")
        return blocks

    def head(self, blocks: int) -> nn.Module:
        """The last ``blocks`` blocks as one module, in eval mode (shares the model's parameters)."""
        return nn.Sequential(*self.model.last_blocks(blocks)).eval()

    def chunks(self, positions: torch.Tensor, size: int | None = None):
        size = size or self.batch_size
        for start in range(0, len(positions), size):
            yield positions[start:start + size]

    def images(self, positions: torch.Tensor) -> torch.Tensor:
        """Normalised model inputs of ``positions`` as trained (hook applied, no augmentation)."""
        positions = positions.to(self.train.images.device)
        return prepare(self.train.images[positions], self.train.index[positions], self.info,
                       self.train.post_augment, self.channels_last)

    def labels(self, positions: torch.Tensor) -> torch.Tensor:
        return self.train.labels[positions.to(self.train.labels.device)].to(self.device)

    @torch.no_grad()
    def penultimate(self) -> torch.Tensor:
        """Penultimate features of every training sample: the input of the model's final linear layer
        (the representation the classifier reads, as in activation-based poison detection), flattened,
        computed once and kept."""
        if "penultimate" not in self._cache:
            classifier = [m for m in self.model.blocks[-1].modules() if isinstance(m, nn.Linear)]
            if not classifier:
                raise ValueError("the model's last block has no linear layer to read penultimate features from")
            captured = []
            handle = classifier[-1].register_forward_pre_hook(lambda _, inputs: captured.append(inputs[0].flatten(1)))
            try:
                self.model.eval()
                for chunk in self.chunks(torch.arange(len(self.train), device=self.device)):
                    self.model(self.images(chunk))
            finally:
                handle.remove()
            self._cache["penultimate"] = torch.cat(captured).float()
        return self._cache["penultimate"]

    @torch.no_grad()
    def _prefix_outputs(self, blocks: int, positions: torch.Tensor) -> torch.Tensor:
        prefix = nn.Sequential(*self.model.prefix_blocks(blocks)).eval()
        return torch.cat([prefix(self.images(chunk)) for chunk in self.chunks(positions)])

    def head_inputs(self, blocks: int, positions: torch.Tensor) -> torch.Tensor:
        """What the last ``blocks`` blocks receive for ``positions`` (the images when they are all blocks).

        The inputs of every training sample are computed once and kept (in float16) when that takes
        at most :data:`CACHE_BYTES`; larger ones (e.g. a wide network's last feature maps) are
        recomputed per call.
        """
        if blocks == self.num_blocks:
            return self.images(positions)
        key = f"inputs-{blocks}"
        if key not in self._cache:
            sample = self._prefix_outputs(blocks, positions[:1])
            fits = 2 * sample[0].numel() * len(self.train) <= CACHE_BYTES
            everything = torch.arange(len(self.train), device=self.device)
            self._cache[key] = self._prefix_outputs(blocks, everything).half() if fits else None
        cached = self._cache[key]
        if cached is None:
            return self._prefix_outputs(blocks, positions)
        return cached[positions.to(self.device)].float()

    @torch.no_grad()
    def losses(self, positions: torch.Tensor, blocks: int, parameters: dict[str, torch.Tensor] | None = None,
               log: bool = False) -> torch.Tensor:
        """Per-sample cross-entropy (trained labels) of ``positions`` in float64, optionally with replaced head
        parameters; ``log`` gives its logarithm, accurate also for well-fit samples whose loss is far
        below float32 resolution."""
        head = self.head(blocks)
        values = []
        for chunk in self.chunks(positions):
            inputs = self.head_inputs(blocks, chunk)
            logits = head(inputs) if parameters is None else torch.func.functional_call(head, parameters, (inputs,))
            values.append(_log_loss(logits.double(), self.labels(chunk)) if log else
                          F.cross_entropy(logits.double(), self.labels(chunk), reduction="none"))
        return torch.cat(values)

    def mean_gradient(self, positions: torch.Tensor, blocks: int) -> dict[str, torch.Tensor]:
        """Gradient of the mean loss over ``positions`` w.r.t. the parameters of the last ``blocks`` blocks."""
        head = self.head(blocks)
        names, parameters = zip(*head.named_parameters())
        total = [torch.zeros_like(p) for p in parameters]
        for chunk in self.chunks(positions):
            loss = F.cross_entropy(head(self.head_inputs(blocks, chunk)).float(), self.labels(chunk), reduction="sum")
            for accumulated, gradient in zip(total, torch.autograd.grad(loss, parameters)):
                accumulated.add_(gradient)
        return {name: g / len(positions) for name, g in zip(names, total)}


def _log_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``log CE`` from logits: with ``r = logsumexp_{k != y} z_k - z_y``, ``CE = softplus(r)``, whose log is
    ``r`` itself to within ``exp(r)`` once ``r`` is very negative."""
    others = logits.scatter(1, labels.view(-1, 1), float("-inf"))
    r = torch.logsumexp(others, dim=1) - logits.gather(1, labels.view(-1, 1)).squeeze(1)
    return torch.where(r < -30, r, torch.log(F.softplus(r).clamp_min(1e-300)))
