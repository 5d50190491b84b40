"""The near-duplicates manipulation: counts, sources, labels, triggers and the configured similarity."""

from __future__ import annotations

import math

import pytest
import torch

from unlearnkit.config import ConfigError
from unlearnkit.manipulations import (
    NearDuplicated,
    build_manipulation,
    duplicate_similarity,
    forget_sets,
    related_positions,
)
from unlearnkit.manipulations.near_duplicates import NearDuplicates, near_duplicate_images, psnr_and_cosine
from unlearnkit.metrics import evaluate
from unlearnkit.models import build_model


def test_copies_of_a_base_manipulation_are_appended_with_its_labels_trigger_and_sources(tiny_splits):
    n = len(tiny_splits.train)
    result = build_manipulation({"name": "near_duplicates", "base": {"name": "badnet", "count": 10, "patch_size": 2},
                                 "copies": 3}).apply(tiny_splits)
    base = build_manipulation({"name": "badnet", "count": 10, "patch_size": 2}).apply(tiny_splits)
    assert isinstance(result, NearDuplicated)
    assert len(result.train) == n + 30 and torch.equal(result.manipulated, base.manipulated), "S_m = the originals"
    assert torch.equal(result.duplicates, torch.arange(n, n + 30))
    assert torch.equal(result.duplicate_of, base.manipulated.repeat_interleave(3))
    assert torch.equal(result.source[n:], base.manipulated.repeat_interleave(3)), "copies map back to their originals"
    assert torch.equal(result.sample_ids(tiny_splits, result.duplicates), tiny_splits.train.ids[result.duplicate_of])
    assert (result.train.labels[result.duplicates] == 0).all(), "copies of poisons carry the target label"
    assert torch.equal(result.clean_train_labels[result.duplicates], tiny_splits.train.labels[result.duplicate_of])
    pixels, _ = result.as_trained(result.duplicates)
    assert (pixels[..., -2:, -2:] == 255).all(), "the base's trigger is stamped on the copies too"
    clean_pixels, _ = result.as_trained(torch.arange(n)[~torch.isin(torch.arange(n), base.manipulated)][:20])
    assert not (clean_pixels[..., -2:, -2:] == 255).all(dim=(1, 2, 3)).any()
    assert torch.equal(related_positions(result), torch.cat([base.manipulated, result.duplicates]).sort().values)
    forget = forget_sets(result.manipulated, [0.5], seed=0)[0.5]
    assert not torch.isin(forget, result.duplicates).any(), "the forget set is drawn from the originals only"
    row = evaluate(build_model("small-cnn", 4, 3), tiny_splits, result, forget)
    assert 0 <= row["acc_sf_clean"] <= 1 and 0 <= row["asr"] <= 1


def test_without_a_base_a_random_clean_subset_gets_the_copies(tiny_splits):
    result = build_manipulation({"name": "near_duplicates", "count": 8, "copies": 2, "seed": 4}).apply(tiny_splits)
    assert result.n_manipulated == 8 and len(result.duplicates) == 16
    assert torch.equal(result.train.labels[result.duplicates], tiny_splits.train.labels[result.duplicate_of])
    assert torch.equal(result.train.labels[:200], tiny_splits.train.labels), "no label is changed"
    assert len(result.affected_test) == 0 and result.train.post_augment is None
    again = build_manipulation({"name": "near_duplicates", "count": 8, "copies": 2, "seed": 4}).apply(tiny_splits)
    assert torch.equal(result.train.images, again.train.images), "seeded"
    other = build_manipulation({"name": "near_duplicates", "count": 8, "copies": 2, "seed": 5}).apply(tiny_splits)
    assert not torch.equal(result.train.images[200:], other.train.images[200:])


@pytest.mark.parametrize("transforms", [("noise",), ("shift", "noise"), ("blur", "noise"), ("jpeg", "noise")])
@pytest.mark.parametrize("psnr", [18.0, 30.0])
def test_copies_have_the_configured_psnr(tiny_splits, transforms, psnr):
    config = NearDuplicates(count=40, copies=2, transforms=transforms, noise_std=0.5, psnr=psnr)
    result = config.apply(tiny_splits)
    similarity = duplicate_similarity(result)
    assert len(similarity) == 80
    assert similarity["psnr"].sub(psnr).abs().max() < 0.1, similarity["psnr"].describe()
    assert similarity["cosine"].between(0, 1).all()
    assert similarity["cosine"].min() > (0.9 if psnr == 30.0 else 0.5)


def test_without_a_target_psnr_copies_are_the_transforms_at_full_strength():
    originals = torch.full((20, 1, 64, 64), 128, dtype=torch.uint8)
    copies = near_duplicate_images(originals, NearDuplicates(transforms=("noise",), noise_std=0.05))
    psnr, _ = psnr_and_cosine(originals, copies)
    expected = -10 * math.log10(0.05 ** 2)  # 26 dB: the noise stays inside [0, 1] around mid-grey
    assert psnr.sub(expected).abs().max() < 0.3
    # A transform already closer than the target is kept as it is (t = 1), never made less similar.
    quantised = near_duplicate_images(originals, NearDuplicates(transforms=("quantise",), quantise_levels=256, psnr=20))
    assert torch.equal(quantised, originals)


def test_shift_moves_the_whole_image_and_never_by_zero():
    image = torch.zeros(1, 1, 9, 9, dtype=torch.uint8)
    image[0, 0, 4, 4] = 255
    copies = near_duplicate_images(image.repeat(200, 1, 1, 1), NearDuplicates(transforms=("shift",), shift_pixels=1))
    offsets = {tuple((c[0].nonzero()[0] - 4).tolist()) for c in copies}
    assert offsets == {(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)} - {(0, 0)}


@pytest.mark.parametrize("values, message", [
    ({"base": {"name": "badnet"}, "fraction": 0.1}, "not both"),
    ({"base": {"name": "near_duplicates"}}, "base cannot itself be near_duplicates"),
    ({"base": {"name": "badnet", "patch": 3}}, "manipulation.base.*patch"),
    ({"base": {"name": "nosuch"}}, "manipulation.base.*unknown manipulation"),
    ({"copies": 0}, "manipulation.copies"),
    ({"transforms": ["warp"]}, "transforms\\[0\\] must be one of"),
    ({"transforms": []}, "at least one transform"),
    ({"psnr": -3.0}, "manipulation.psnr"),
    ({"jpeg_quality": 0}, "manipulation.jpeg_quality"),
    ({"quantise_levels": 1}, "manipulation.quantise_levels"),
    ({"fraction": 1.5}, "manipulation.fraction"),
])
def test_bad_near_duplicate_parameters_are_named(values, message):
    with pytest.raises(ConfigError, match=message):
        build_manipulation({"name": "near_duplicates", **values})


def test_equivalent_base_spellings_share_one_config():
    short = build_manipulation({"name": "near_duplicates", "base": {"name": "badnet"}})
    spelled = build_manipulation({"name": "near_duplicates",
                                  "base": {"name": "badnet", "target_class": 0, "patch_size": 3, "seed": 0}})
    assert short == spelled
