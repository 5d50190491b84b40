"""Near-duplicates of the forget set left in the retain set ("Forgetting Similar Samples", Xu et al.,
arXiv 2601.06938, 2026).

Xu et al. find that unlearning, even retraining from scratch without the forget set, leaves the forget
samples' influence in the model when near-duplicates of them stay in the training data. This
manipulation builds that situation: every sample of a chosen set S_m gets ``copies`` near-duplicates
appended to the training set. S_m is either

* the manipulated set of a ``base`` manipulation (e.g. BadNet poisons: the copies then carry the same
  trigger and label, as re-uploaded copies of a poison would), or
* without a base, a uniformly drawn subset of the clean training set (``count`` / ``fraction``): the
  privacy-style deletion setting of Xu et al.

Only S_m is "the forget set" (the identified S_f is drawn from it, as for every manipulation); the
copies stay in the retain set, unknown to the unlearner. A copy is its original passed through
``transforms`` in order (integer shift, Gaussian blur, JPEG re-encoding, quantisation, additive
Gaussian noise), each with its own knob. ``psnr`` makes the similarity the knob instead: each copy is
then ``x + t * (T(x) - x)`` with ``t`` chosen per copy so that its PSNR against the original is the
target (copies whose full transform is already closer keep ``t = 1``). The measured PSNR and pixel
cosine similarity of every copy are given by :func:`duplicate_similarity`.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..config import ConfigError, check_range, to_dict
from ..data.core import DataSplits, ImageSet
from ..data.pipeline import PostAugment, TrainingSet
from .base import MANIPULATIONS, Manipulated, build_manipulation, check_size, count_from, unchanged_training_set

Transform = Literal["shift", "blur", "jpeg", "quantise", "noise"]
DEFAULT_FRACTION = 0.01


@dataclass
class NearDuplicated(Manipulated):
    """A manipulated training set whose S_m samples have near-duplicate copies appended to it."""

    duplicates: torch.Tensor | None = None
    """Positions in ``train`` of the appended copies (never in S_m: they stay in the retain set)."""
    duplicate_of: torch.Tensor | None = None
    """Position in ``train`` of the S_m sample each copy was made from (aligned with ``duplicates``); the
    ``copies`` copies of one sample are consecutive, in the order of ``manipulated``."""


def related_positions(manipulated: Manipulated) -> torch.Tensor:
    """S_m together with every near-duplicate of its samples: everything that carries S_m's influence."""
    if isinstance(manipulated, NearDuplicated):
        return torch.cat([manipulated.manipulated, manipulated.duplicates.to(manipulated.manipulated.device)]).sort().values
    return manipulated.manipulated


@MANIPULATIONS.register("near_duplicates")
@dataclass(frozen=True)
class NearDuplicates:
    name: ClassVar[str] = "near_duplicates"
    base: dict[str, Any] | None = None
    """Another manipulation whose S_m gets the copies (e.g. ``{name: badnet}``); None: a random subset."""
    fraction: float | None = None
    """Size of the random subset without a base (default 1% of the training set)."""
    count: int | None = None
    copies: int = 4
    """Near-duplicates appended per sample of S_m."""
    transforms: tuple[Transform, ...] = ("shift", "noise")
    shift_pixels: int = 2
    """Largest translation in each direction (zero fill); never (0, 0)."""
    blur_sigma: float = 1.0
    jpeg_quality: int = 40
    quantise_levels: int = 8
    noise_std: float = 0.1
    """Standard deviation of the additive noise in [0, 1] pixel units."""
    psnr: float | None = None
    """Target PSNR in dB of each copy against its original (None: transforms at full strength)."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.base is not None:
            if self.fraction is not None or self.count is not None:
                raise ConfigError("manipulation: near_duplicates takes its set from 'base' or from "
                                  "'count' / 'fraction', not both")
            if str(self.base.get("name", "")).lower() == self.name:
                raise ConfigError("manipulation.base cannot itself be near_duplicates")
            try:
                config = build_manipulation(self.base)
            except ConfigError as err:
                raise ConfigError(f"manipulation.base: {err}") from err
            # Spell out the base's defaults so equivalent spellings share one cache key.
            object.__setattr__(self, "base", {"name": config.name, **to_dict(config)})
        check_size("manipulation", self.count, self.fraction)
        check_range("manipulation.copies", self.copies, 1)
        if not self.transforms:
            raise ConfigError("manipulation.transforms must list at least one transform")
        check_range("manipulation.shift_pixels", self.shift_pixels, 1)
        check_range("manipulation.blur_sigma", self.blur_sigma, 0.0, low_open=True)
        check_range("manipulation.jpeg_quality", self.jpeg_quality, 1, 100)
        check_range("manipulation.quantise_levels", self.quantise_levels, 2, 256)
        check_range("manipulation.noise_std", self.noise_std, 0.0, low_open=True)
        if self.psnr is not None:
            check_range("manipulation.psnr", self.psnr, 0.0, low_open=True)

    def apply(self, splits: DataSplits) -> NearDuplicated:
        base = self._base(splits)
        n_base = len(base.train)
        if not torch.equal(base.train.index.cpu(), torch.arange(n_base)):
            raise ConfigError(f"manipulation.base {self.base['name']!r} does not index its training set by position")
        device = base.train.images.device
        duplicate_of = base.manipulated.repeat_interleave(self.copies)
        copies = near_duplicate_images(base.train.images[duplicate_of].cpu(), self).to(device)
        duplicates = torch.arange(n_base, n_base + len(duplicate_of), device=device)
        base_position = torch.cat([torch.arange(n_base, device=device), duplicate_of])
        train = TrainingSet(torch.cat([base.train.images, copies]),
                            torch.cat([base.train.labels, base.train.labels[duplicate_of]]),
                            torch.arange(len(base_position), device=device),
                            _through_base(base.train.post_augment, base_position))
        return NearDuplicated(
            name=self.name,
            train=train,
            clean_train_labels=torch.cat([base.clean_train_labels, base.clean_train_labels[duplicate_of]]),
            manipulated=base.manipulated,
            affected_test=base.affected_test,
            retain_test_mask=base.retain_test_mask,
            target_class=base.target_class,
            noise=base.noise,
            source=base.source_positions(base_position),
            duplicates=duplicates,
            duplicate_of=duplicate_of,
        )

    def _base(self, splits: DataSplits) -> Manipulated:
        if self.base is not None:
            return build_manipulation(self.base).apply(splits)
        train, test = splits.train, splits.test
        n = count_from("manipulation", self.count, self.fraction, DEFAULT_FRACTION, len(train))
        chosen = torch.randperm(len(train), generator=torch.Generator().manual_seed(self.seed))[:n]
        empty = ImageSet(test.images[:0], test.labels[:0], test.ids[:0])
        return Manipulated(name=self.name, train=unchanged_training_set(splits, train.labels.clone(), None),
                           clean_train_labels=train.labels, manipulated=chosen.sort().values.to(train.images.device),
                           affected_test=empty,
                           retain_test_mask=torch.ones(len(test), dtype=torch.bool, device=test.images.device))


def _through_base(hook: PostAugment | None, base_position: torch.Tensor) -> PostAugment | None:
    """The base's post-augmentation hook, applied to each copy as to its original (e.g. the trigger)."""
    if hook is None:
        return None

    def copies_as_their_originals(images01: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return hook(images01, base_position[index.to(base_position.device)])

    return copies_as_their_originals


# The copies ------------------------------------------------------------------------------------------

def near_duplicate_images(originals: torch.Tensor, config: NearDuplicates) -> torch.Tensor:
    """uint8 copies of ``originals`` (``[N, C, H, W]`` uint8, on the CPU) made as ``config`` describes.

    Every random draw (shift offsets, noise) comes from one generator seeded from ``config.seed``
    (a different stream from the base's index draw).
    """
    generator = torch.Generator().manual_seed(config.seed + 1)
    x = originals.float() / 255
    y = x
    for transform in config.transforms:
        y = _TRANSFORMS[transform](y, config, generator)
    y = y.clamp(0, 1)
    if config.psnr is not None:
        y = _blend_to_psnr(x, y, config.psnr)
    return (y * 255).round().clamp(0, 255).to(torch.uint8)


def _shift(images: torch.Tensor, config: NearDuplicates, generator: torch.Generator) -> torch.Tensor:
    s = config.shift_pixels
    offsets = torch.tensor([(dy, dx) for dy in range(-s, s + 1) for dx in range(-s, s + 1) if (dy, dx) != (0, 0)])
    dy, dx = offsets[torch.randint(len(offsets), (len(images),), generator=generator)].unbind(1)
    batch, _, height, width = images.shape
    padded = F.pad(images, (s, s, s, s))
    rows = (s - dy).view(batch, 1, 1) + torch.arange(height).view(1, height, 1)
    cols = (s - dx).view(batch, 1, 1) + torch.arange(width).view(1, 1, width)
    # Advanced indexing moves the channel axis last: [B, H, W, C].
    return padded.permute(0, 2, 3, 1)[torch.arange(batch).view(batch, 1, 1), rows, cols].permute(0, 3, 1, 2)


def _blur(images: torch.Tensor, config: NearDuplicates, generator: torch.Generator) -> torch.Tensor:
    sigma = config.blur_sigma
    # Reflect padding needs the radius below the image size; three sigmas hold 99.7% of the weight.
    radius = max(1, min(math.ceil(3 * sigma), images.shape[-1] - 1, images.shape[-2] - 1))
    taps = torch.arange(-radius, radius + 1, dtype=images.dtype)
    kernel = torch.exp(-taps ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    horizontal = kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    vertical = kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    out = F.conv2d(F.pad(images, (radius, radius, 0, 0), mode="reflect"), horizontal, groups=channels)
    return F.conv2d(F.pad(out, (0, 0, radius, radius), mode="reflect"), vertical, groups=channels)


def _jpeg(images: torch.Tensor, config: NearDuplicates, generator: torch.Generator) -> torch.Tensor:
    """Encode and decode each image as a JPEG of ``jpeg_quality`` (Pillow, baseline, 4:2:0 for colour)."""
    from PIL import Image

    pixels = (images * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    decoded = []
    for image in pixels:
        buffer = io.BytesIO()
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, "JPEG",
                                                                               quality=config.jpeg_quality)
        decoded.append(torch.from_numpy(np.array(Image.open(buffer))).reshape(image.shape))
    return torch.stack(decoded).permute(0, 3, 1, 2).float() / 255


def _quantise(images: torch.Tensor, config: NearDuplicates, generator: torch.Generator) -> torch.Tensor:
    top = config.quantise_levels - 1
    return (images * top).round() / top


def _noise(images: torch.Tensor, config: NearDuplicates, generator: torch.Generator) -> torch.Tensor:
    return images + torch.randn(images.shape, generator=generator) * config.noise_std


_TRANSFORMS = {"shift": _shift, "blur": _blur, "jpeg": _jpeg, "quantise": _quantise, "noise": _noise}


def _blend_to_psnr(original: torch.Tensor, transformed: torch.Tensor, psnr: float) -> torch.Tensor:
    """``x + t (T(x) - x)`` per sample with the largest ``t <= 1`` whose PSNR is at least ``psnr``.

    The squared error of the blend is ``t^2`` times that of ``T(x)``, so ``t`` has a closed form; the
    uint8 rounding that follows moves the PSNR by a few hundredths of a dB at most.
    """
    full = (transformed - original).flatten(1).pow(2).mean(1)
    target = 10 ** (-psnr / 10)
    t = torch.where(full > target, (target / full.clamp_min(1e-30)).sqrt(), torch.ones_like(full))
    return original + t.view(-1, 1, 1, 1) * (transformed - original)


def psnr_and_cosine(originals: torch.Tensor, copies: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """PSNR (dB, pixels in [0, 1]; inf for identical images) and cosine similarity of the pixel vectors."""
    x = originals.flatten(1).double() / 255
    y = copies.flatten(1).double() / 255
    mse = (x - y).pow(2).mean(1)
    psnr = torch.where(mse > 0, -10 * torch.log10(mse.clamp_min(1e-300)), torch.full_like(mse, math.inf))
    return psnr, F.cosine_similarity(x, y, dim=1, eps=1e-12)


def duplicate_similarity(manipulated: Manipulated) -> pd.DataFrame:
    """One row per near-duplicate: its position, its original's position, PSNR and pixel cosine similarity.

    Pixels are compared as stored, before the manipulation hook (a trigger is on both or on neither).
    Empty for a manipulation without near-duplicates.
    """
    if not isinstance(manipulated, NearDuplicated):
        return pd.DataFrame(columns=["position", "duplicate_of", "psnr", "cosine"])
    images = manipulated.train.images
    psnr, cosine = psnr_and_cosine(images[manipulated.duplicate_of].cpu(), images[manipulated.duplicates].cpu())
    return pd.DataFrame({"position": manipulated.duplicates.cpu().numpy(),
                         "duplicate_of": manipulated.duplicate_of.cpu().numpy(),
                         "psnr": psnr.numpy(), "cosine": cosine.numpy()})
