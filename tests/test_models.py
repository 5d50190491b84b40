"""Model registry, block structure, seeded construction and re-initialisation."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from unlearnkit.models import MODELS, BlockNet, build_model, reinitialise_, wide_resnet
from unlearnkit.registry import UnknownNameError

CHEAP_MODELS = ["mlp", "small-cnn", "resnet9", "resnet18"]
EXPECTED_BLOCKS = {"mlp": 3, "small-cnn": 4, "resnet9": 7, "resnet18": 10, "wideresnet28-10": 14}


def num_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def assert_same_state(a: nn.Module, b: nn.Module) -> None:
    state_a, state_b = a.state_dict(), b.state_dict()
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key


def test_registry_lists_every_architecture():
    assert set(MODELS.names()) == set(EXPECTED_BLOCKS)


@pytest.mark.parametrize("name", CHEAP_MODELS)
@pytest.mark.parametrize("in_channels, size, num_classes", [(1, 28, 10), (3, 32, 7)])
def test_logits_shape(name, in_channels, size, num_classes):
    model = build_model(name, num_classes, in_channels).eval()
    assert isinstance(model, BlockNet) and model.num_blocks == EXPECTED_BLOCKS[name]
    with torch.no_grad():
        logits = model(torch.randn(3, in_channels, size, size))
    assert logits.shape == (3, num_classes)
    assert torch.isfinite(logits).all()


def test_wideresnet_logits_shape_and_size():
    model = build_model("wideresnet28-10", 10, 3).eval()
    assert model.num_blocks == 14
    assert 36_000_000 <= num_parameters(model) <= 37_000_000
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_generic_wide_resnet_factory():
    model = wide_resnet(10, 1, num_classes=5, in_channels=1, dropout=0.1)
    assert model.num_blocks == 1 + 3 + 1
    assert model.eval()(torch.randn(2, 1, 28, 28)).shape == (2, 5)
    with pytest.raises(ValueError, match="depth"):
        wide_resnet(27, 10, 10, 3)


@pytest.mark.parametrize("name, low, high", [("mlp", 660_000, 680_000), ("small-cnn", 10_000, 150_000), ("resnet9", 2_200_000, 2_500_000),
                                             ("resnet18", 11_000_000, 11_300_000)])
def test_parameter_counts(name, low, high):
    assert low <= num_parameters(build_model(name, 10, 3)) <= high


@pytest.mark.parametrize("name", CHEAP_MODELS)
def test_channels_last_and_bf16_autocast(name):
    model = build_model(name, 10, 3).to(memory_format=torch.channels_last)
    inputs = torch.randn(2, 3, 32, 32).to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(inputs)
    assert logits.shape == (2, 10)
    logits.float().sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_build_model_is_seeded_and_leaves_global_rng_alone():
    before = torch.get_rng_state()
    a = build_model("resnet9", 10, 3, seed=1)
    b = build_model("resnet9", 10, 3, seed=1)
    c = build_model("resnet9", 10, 3, seed=2)
    assert torch.equal(torch.get_rng_state(), before)
    assert_same_state(a, b)
    assert not torch.equal(a.blocks[0][0].weight, c.blocks[0][0].weight)


def test_last_and_prefix_blocks():
    model = build_model("small-cnn", 10, 1)
    blocks = list(model.blocks)
    assert model.last_blocks(1) == blocks[-1:]
    assert model.last_blocks(3) == blocks[1:]
    assert model.last_blocks(4) == blocks
    assert model.prefix_blocks(3) == blocks[:1]
    assert model.prefix_blocks(4) == []
    assert all(x is y for x, y in zip(model.prefix_blocks(1) + model.last_blocks(1), blocks))
    for bad in (0, 5, -1):
        with pytest.raises(ValueError, match=rf"k={bad}\b") as error:
            model.last_blocks(bad)
        assert "4" in str(error.value)
        with pytest.raises(ValueError, match=rf"k={bad}\b"):
            model.prefix_blocks(bad)


def test_forward_is_the_blocks_in_order():
    model = build_model("resnet9", 4, 1).eval()
    x = torch.randn(2, 1, 28, 28)
    expected = x
    for block in model.blocks:
        expected = block(expected)
    assert torch.equal(model(x), expected)


def perturbed(model: nn.Module) -> nn.Module:
    """A copy that looks trained: shifted weights and non-trivial BatchNorm statistics."""
    model = copy.deepcopy(model).train()
    generator = torch.Generator().manual_seed(123)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator))
        model(torch.randn(8, 1, 28, 28, generator=generator) * 3 + 1)
    return model


def test_reinitialise_is_deterministic_and_resets_batchnorm():
    trained = perturbed(build_model("small-cnn", 10, 1))
    bn = trained.blocks[0][1]
    assert not torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
    assert bn.num_batches_tracked.item() == 1

    before = torch.get_rng_state()
    first = reinitialise_(copy.deepcopy(trained), generator_seed=5)
    second = reinitialise_(copy.deepcopy(trained), generator_seed=5)
    other = reinitialise_(copy.deepcopy(trained), generator_seed=6)
    assert torch.equal(torch.get_rng_state(), before)

    assert_same_state(first, second)
    conv_weight = "blocks.0.0.weight"
    assert not torch.equal(first.state_dict()[conv_weight], trained.state_dict()[conv_weight])
    assert not torch.equal(first.state_dict()[conv_weight], other.state_dict()[conv_weight])
    for module in first.modules():
        if isinstance(module, nn.BatchNorm2d):
            assert torch.equal(module.running_mean, torch.zeros_like(module.running_mean))
            assert torch.equal(module.running_var, torch.ones_like(module.running_var))
            assert module.num_batches_tracked.item() == 0
            assert torch.equal(module.weight, torch.ones_like(module.weight))


def test_reinitialise_part_of_a_model_leaves_the_rest():
    trained = perturbed(build_model("small-cnn", 10, 1))
    model = copy.deepcopy(trained)
    for block in model.last_blocks(1):
        reinitialise_(block, generator_seed=0)
    for kept, original in zip(model.prefix_blocks(1), trained.prefix_blocks(1)):
        assert_same_state(kept, original)
    assert not torch.equal(model.blocks[-1][-1].weight, trained.blocks[-1][-1].weight)


def test_unknown_model_name_lists_known_names():
    with pytest.raises(UnknownNameError) as error:
        build_model("resnet-9", 10, 3)
    message = str(error.value)
    for name in EXPECTED_BLOCKS:
        assert name in message
    assert "resnet9" in message.split("Did you mean")[-1]


def test_build_model_rejects_bad_sizes():
    with pytest.raises(ValueError, match="num_classes"):
        build_model("small-cnn", 0, 3)
    with pytest.raises(ValueError, match="in_channels"):
        build_model("small-cnn", 10, 0)
