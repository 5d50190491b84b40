"""Tokenised text sets on the compute device, their batch stream, and fixed-order prediction.

A :class:`TokenSet` is to a language model what :class:`unlearnkit.data.pipeline.TrainingSet` is to an
image model: token ids padded to one length, the labels to train on, each sample's index in the full
(manipulated) training set, and the manipulation's per-sample input change, here Gaussian noise on
the token input embeddings of the poisoned samples. It batches itself (``batches``), which is what the
trainer and every unlearning method draw from, and each batch is a :class:`TokenBatch` that the model
wrapper (:class:`unlearnkit.text.models.SequenceClassifier`) takes as its input.

Texts are padded on the right; every batch is cut to its longest text, so short snippets do not pay
for the longest one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from ..data.pipeline import sample_batches
from ..device import autocast


@dataclass
class TokenBatch:
    """One batch as the model takes it: ids, attention mask, optional embedding noise ``[B, L, d]``."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    noise: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class Encoded:
    """Token ids ``[N, L]`` and attention masks of texts padded (right) or truncated to ``L`` tokens."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    truncated: torch.Tensor
    """Whether each text had more than ``L`` tokens (its end was cut off)."""


def encode(tokenizer, texts: Sequence[str], max_length: int) -> Encoded:
    """Tokenise ``texts`` with the model's tokenizer to exactly ``max_length`` positions."""
    if tokenizer.padding_side != "right":
        raise ValueError("the tokenizer must pad on the right")
    texts = list(texts)
    if not texts:
        empty = torch.zeros((0, max_length), dtype=torch.int64)
        return Encoded(empty, empty.clone(), torch.zeros(0, dtype=torch.bool))
    full = tokenizer(texts, truncation=False, add_special_tokens=True)["input_ids"]
    encoded = tokenizer(texts, padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
    truncated = torch.tensor([len(ids) > max_length for ids in full], dtype=torch.bool)
    return Encoded(encoded["input_ids"].to(torch.int64), encoded["attention_mask"].to(torch.int64), truncated)


@dataclass
class TokenSet:
    """Tokenised samples, the labels to train on, their index, and the Gaussian poisons' embedding noise.

    ``index`` holds positions in the full (manipulated) training set (or in the evaluated split);
    ``noise_slot[i]`` is the row of ``noise`` (``[k, L, d]``) for the sample whose index is ``i``, or -1.
    Subsets share ``noise`` and ``noise_slot``, so the retain and forget sets still know their poisons.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor
    noise: torch.Tensor | None = None
    noise_slot: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.input_ids.shape[0] != n or self.attention_mask.shape != self.input_ids.shape or len(self.index) != n:
            raise ValueError("input_ids, attention_mask, labels and index must describe the same samples")
        if (self.noise is None) != (self.noise_slot is None):
            raise ValueError("noise and noise_slot come together")

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def of(cls, encoded: Encoded, labels: torch.Tensor, device: torch.device | str = "cpu") -> TokenSet:
        """An evaluation set: ``index`` is the position in ``encoded``, no noise."""
        return cls(encoded.input_ids.to(device), encoded.attention_mask.to(device), labels.to(device),
                   torch.arange(len(labels), device=device))

    @property
    def device(self) -> torch.device:
        return self.input_ids.device

    def subset(self, positions: torch.Tensor) -> TokenSet:
        """The samples at ``positions`` of *this* set."""
        positions = torch.as_tensor(positions, dtype=torch.int64, device=self.device)
        return TokenSet(self.input_ids[positions], self.attention_mask[positions], self.labels[positions],
                        self.index[positions], self.noise, self.noise_slot)

    def without(self, excluded_index: torch.Tensor) -> TokenSet:
        """The samples whose ``index`` is not in ``excluded_index`` (the retain set S_tr minus S_f)."""
        excluded = torch.as_tensor(excluded_index, dtype=torch.int64, device=self.device)
        return self.subset((~torch.isin(self.index, excluded)).nonzero().flatten())

    def only(self, included_index: torch.Tensor) -> TokenSet:
        """The samples whose ``index`` is in ``included_index`` (the forget set S_f)."""
        included = torch.as_tensor(included_index, dtype=torch.int64, device=self.device)
        return self.subset(torch.isin(self.index, included).nonzero().flatten())

    def union(self, other: TokenSet) -> TokenSet:
        """Both sets' samples (two subsets of one training set, e.g. retain and forget for BadT)."""
        if other.noise is not self.noise or other.noise_slot is not self.noise_slot:
            raise ValueError("only subsets of the same training set can be joined")
        return TokenSet(torch.cat([self.input_ids, other.input_ids]), torch.cat([self.attention_mask, other.attention_mask]),
                        torch.cat([self.labels, other.labels]), torch.cat([self.index, other.index]),
                        self.noise, self.noise_slot)

    def without_noise(self) -> TokenSet:
        """The same samples with their clean embeddings (what the Gaussian Unlearning Score differentiates at)."""
        return TokenSet(self.input_ids, self.attention_mask, self.labels, self.index)

    def noise_of(self, positions: torch.Tensor) -> torch.Tensor | None:
        """Embedding noise ``[len(positions), L, d]`` of the samples at ``positions`` (zeros for clean ones)."""
        if self.noise is None:
            return None
        slots = self.noise_slot[self.index[positions]]
        noise = torch.zeros((len(positions), *self.noise.shape[1:]), dtype=self.noise.dtype, device=self.noise.device)
        hit = slots >= 0
        noise[hit] = self.noise[slots[hit]]
        return noise

    def batch(self, positions: torch.Tensor) -> TokenBatch:
        """The samples at ``positions``, cut to the longest of them."""
        mask = self.attention_mask[positions]
        width = max(int(mask.sum(1).max()), 1) if len(positions) else 1
        noise = self.noise_of(positions)
        if noise is not None:
            noise = noise[:, :width] if bool((self.noise_slot[self.index[positions]] >= 0).any()) else None
        return TokenBatch(self.input_ids[positions, :width], mask[:, :width], noise)

    def batches(self, batch_size: int, steps: int,
                generator: torch.Generator) -> Iterator[tuple[TokenBatch, torch.Tensor, torch.Tensor]]:
        """``steps`` random batches ``(inputs, labels, index)`` from consecutive permutations."""
        for positions in sample_batches(len(self), batch_size, steps, generator, self.device):
            yield self.batch(positions), self.labels[positions], self.index[positions]


@torch.no_grad()
def predict_token_logits(model: torch.nn.Module, data: TokenSet, batch_size: int = 256,
                         autocast_bf16: bool = False) -> torch.Tensor:
    """Logits (float32) of every sample as it is trained on (noise included), in the set's order.

    Batches go through in order of length, so each is cut to texts of similar length; the result is
    put back in the set's order. The model runs in eval mode.
    """
    device = next(model.parameters()).device
    lengths = data.attention_mask.sum(1)
    order = torch.argsort(lengths, stable=True)
    was_training = model.training
    model.eval()
    outputs = []
    try:
        for start in range(0, len(data), batch_size):
            batch = data.batch(order[start:start + batch_size])
            with autocast(device, autocast_bf16):
                outputs.append(model(batch).float())
    finally:
        model.train(was_training)
    if not outputs:
        return torch.empty(0, 0, device=device)
    logits = torch.cat(outputs)
    return torch.empty_like(logits).index_copy_(0, order.to(logits.device), logits)
