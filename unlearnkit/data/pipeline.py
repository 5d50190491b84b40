"""The device-resident batch pipeline: sampling, augmentation, manipulation hooks, normalisation.

The whole training set stays on the compute device as uint8; each step gathers a batch, crops and
flips it with vectorised tensor ops, applies the manipulation hook (e.g. the BadNet trigger, which
must be stamped *after* augmentation so it never moves), and normalises — no per-sample Python.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from .core import DatasetInfo, ImageSet

PostAugment = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``hook(images01, sample_index) -> images01``: edits a float batch in [0, 1] after augmentation."""


@dataclass
class TrainingSet:
    """What a training loop draws from: images, the labels to train on, and each sample's index.

    ``index`` holds positions in the full (manipulated) training set, so a subset such as the retain
    set still tells ``post_augment`` which samples carry a trigger.
    """

    images: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor
    post_augment: PostAugment | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, positions: torch.Tensor) -> TrainingSet:
        """The samples at ``positions`` of *this* set."""
        positions = torch.as_tensor(positions, dtype=torch.int64, device=self.images.device)
        return TrainingSet(self.images[positions], self.labels[positions], self.index[positions], self.post_augment)

    def without(self, excluded_index: torch.Tensor) -> TrainingSet:
        """The samples whose ``index`` is not in ``excluded_index`` (e.g. the retain set S_tr minus S_f)."""
        excluded = torch.as_tensor(excluded_index, dtype=torch.int64, device=self.index.device)
        keep = ~torch.isin(self.index, excluded)
        return self.subset(keep.nonzero().flatten())

    def only(self, included_index: torch.Tensor) -> TrainingSet:
        """The samples whose ``index`` is in ``included_index`` (e.g. the forget set S_f)."""
        included = torch.as_tensor(included_index, dtype=torch.int64, device=self.index.device)
        return self.subset(torch.isin(self.index, included).nonzero().flatten())


def normalise(images01: torch.Tensor, info: DatasetInfo) -> torch.Tensor:
    mean = torch.tensor(info.mean, device=images01.device, dtype=images01.dtype).view(1, -1, 1, 1)
    std = torch.tensor(info.std, device=images01.device, dtype=images01.dtype).view(1, -1, 1, 1)
    return (images01 - mean) / std


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``padding`` and take one random ``H x W`` window per image, in a single gather."""
    if padding == 0:
        return images
    batch, _, height, width = images.shape
    padded = torch.nn.functional.pad(images, (padding,) * 4)
    device = images.device
    top = torch.randint(0, 2 * padding + 1, (batch, 1), device=device, generator=generator)
    left = torch.randint(0, 2 * padding + 1, (batch, 1), device=device, generator=generator)
    rows = (top + torch.arange(height, device=device)).unsqueeze(2)  # [B, H, 1]
    cols = (left + torch.arange(width, device=device)).unsqueeze(1)  # [B, 1, W]
    batch_index = torch.arange(batch, device=device).view(batch, 1, 1)
    # Advanced indexing puts the channel axis last: [B, H, W, C]; the permute keeps NHWC strides,
    # which is the channels_last layout the models run fastest in.
    return padded.permute(0, 2, 3, 1)[batch_index, rows, cols].permute(0, 3, 1, 2)


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = torch.rand(images.shape[0], device=images.device, generator=generator) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(3), images)


def augment(images: torch.Tensor, info: DatasetInfo, generator: torch.Generator) -> torch.Tensor:
    """Random crop with the dataset's padding, plus a horizontal flip where it preserves the label."""
    images = random_crop(images, info.crop_padding, generator)
    return random_flip(images, generator) if info.hflip else images


def prepare(images_uint8: torch.Tensor, index: torch.Tensor, info: DatasetInfo,
            post_augment: PostAugment | None, channels_last: bool) -> torch.Tensor:
    """uint8 batch -> normalised float batch, with the manipulation hook applied in between."""
    images01 = images_uint8.float().div_(255.0)
    if post_augment is not None:
        images01 = post_augment(images01, index)
    batch = normalise(images01, info)
    return batch.contiguous(memory_format=torch.channels_last) if channels_last else batch


def sample_batches(size: int, batch_size: int, steps: int, generator: torch.Generator,
                   device: torch.device) -> Iterator[torch.Tensor]:
    """``steps`` index batches from consecutive random permutations (each epoch's tail is dropped)."""
    batch_size = min(batch_size, size)
    per_epoch = size // batch_size
    produced = 0
    while produced < steps:
        order = torch.randperm(size, device=device, generator=generator)
        for start in range(0, per_epoch * batch_size, batch_size):
            if produced == steps:
                return
            yield order[start:start + batch_size]
            produced += 1


def batch_stream(data: TrainingSet, info: DatasetInfo, batch_size: int, steps: int,
                 generator: torch.Generator, augment_batches: bool = True,
                 channels_last: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield ``steps`` batches ``(inputs, labels, index)`` ready for the model.

    A training set that batches itself (``data.batches(batch_size, steps, generator)``, e.g. the
    tokenised texts of :mod:`unlearnkit.text`) yields its own batches; the image arguments do not apply.
    """
    own = getattr(data, "batches", None)
    if own is not None:
        yield from own(batch_size, steps, generator)
        return
    for positions in sample_batches(len(data), batch_size, steps, generator, data.images.device):
        images = data.images[positions]
        if augment_batches:
            images = augment(images, info, generator)
        index = data.index[positions]
        yield prepare(images, index, info, data.post_augment, channels_last), data.labels[positions], index


@torch.no_grad()
def predict_logits(model: torch.nn.Module, images: ImageSet | torch.Tensor, info: DatasetInfo,
                   batch_size: int = 1024, post_augment: PostAugment | None = None,
                   index: torch.Tensor | None = None, autocast_bf16: bool = False,
                   channels_last: bool = True) -> torch.Tensor:
    """Logits (float32) for every image, in input order, with the model in eval mode.

    ``post_augment`` with ``index`` presents training images as they were trained on (e.g. with the
    BadNet trigger) without any random augmentation.
    """
    from ..device import autocast

    pixels = images.images if isinstance(images, ImageSet) else images
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outputs = []
    try:
        for start in range(0, len(pixels), batch_size):
            chunk = pixels[start:start + batch_size].to(device)
            chunk_index = None if index is None else index[start:start + batch_size].to(device)
            inputs = prepare(chunk, chunk_index, info, post_augment if index is not None else None, channels_last)
            with autocast(device, autocast_bf16):
                outputs.append(model(inputs).float())
    finally:
        model.train(was_training)
    if not outputs:
        return torch.empty(0, info.num_classes, device=device)
    return torch.cat(outputs)
