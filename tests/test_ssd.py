"""SSD (Foster et al. 2023) on tiny hand-built models whose importances can be computed by hand.

The references below never call the library's importance code: a closed form for a single linear
layer, and a plain ``loss.backward()`` loop in float64 for a conv + batch-norm + linear network.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from unlearnkit.data import DatasetInfo, ImageSet
from unlearnkit.data.pipeline import TrainingSet
from unlearnkit.models import BlockNet
from unlearnkit.training import TrainConfig
from unlearnkit.unlearning import Budget, UnlearningTask, importance, ssd_importances, unlearn

INFO = DatasetInfo(name="tiny-2x2", num_classes=3, class_names=("a", "b", "c"), mean=(0.5,), std=(0.25,),
                   hflip=False, crop_padding=0)
RECIPE = TrainConfig(steps=10, batch_size=8, lr=0.05, warmup_fraction=0.0, bf16=False, channels_last=False)
N = 60
FORGET = torch.tensor([3, 7, 11, 19, 23, 31, 37, 41, 47, 53])  # 10 samples: batches of 8 and 2
TRIGGER_VALUE = 1.0


def trigger_hook(poisoned: torch.Tensor):
    """Stamp the bottom-right pixel of the poisoned samples (a 1-pixel BadNet)."""

    def hook(images01: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        rows = torch.isin(index, poisoned)
        images01[rows, :, 1, 1] = TRIGGER_VALUE
        return images01

    return hook


def full_training_set() -> TrainingSet:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (N, 1, 2, 2), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 3, (N,), generator=generator)
    labels[FORGET] = 0  # the manipulated label
    return TrainingSet(images, labels, torch.arange(N), trigger_hook(FORGET))


def seeded(seed: int, build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def linear_model(seed: int) -> BlockNet:
    return seeded(seed, lambda: BlockNet([nn.Sequential(nn.Flatten(), nn.Linear(4, 3))]))


def conv_bn_linear(seed: int) -> BlockNet:
    def build() -> BlockNet:
        model = BlockNet([
            nn.Sequential(nn.Conv2d(1, 2, 1, bias=False), nn.BatchNorm2d(2), nn.ReLU()),
            nn.Sequential(nn.Flatten(), nn.Linear(8, 3)),
        ])
        bn = model.blocks[0][1]
        with torch.no_grad():  # non-trivial affine parameters and running statistics
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
            bn.running_mean.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
            bn.num_batches_tracked.fill_(17)
        return model

    return seeded(seed, build)


def make_tiny_task(factory, recipe: TrainConfig = RECIPE) -> UnlearningTask:
    data = full_training_set()
    validation = ImageSet(data.images[:6].clone(), data.labels[:6].clone())
    return UnlearningTask(original=factory(0), info=INFO, retain=data.without(FORGET), forget=data.only(FORGET),
                          validation=validation, recipe=recipe, new_model=factory)


def model_inputs(data: TrainingSet, hook: bool = True) -> torch.Tensor:
    """Independent re-implementation of "as trained on": [0, 1] pixels, trigger hook, normalisation."""
    x = data.images.double() / 255.0
    if hook and data.post_augment is not None:
        rows = torch.isin(data.index, FORGET)
        x[rows, :, 1, 1] = TRIGGER_VALUE
    return (x - 0.5) / 0.25


def closed_form_linear_importance(model: BlockNet, data: TrainingSet, batch_size: int) -> dict[str, torch.Tensor]:
    """For logits z = W x + b and the batch-mean CE: dL/dW = (softmax(z) - onehot)^T x / B."""
    linear = model.blocks[0][1]
    weight, bias = linear.weight.detach().double(), linear.bias.detach().double()
    x = model_inputs(data).flatten(1)
    squares_w, squares_b, batches = torch.zeros_like(weight), torch.zeros_like(bias), 0
    for start in range(0, len(data), batch_size):
        xb, yb = x[start:start + batch_size], data.labels[start:start + batch_size]
        residual = torch.softmax(xb @ weight.T + bias, dim=1) - nn.functional.one_hot(yb, 3).double()
        squares_w += (residual.T @ xb / len(yb)) ** 2
        squares_b += residual.mean(0) ** 2
        batches += 1
    return {"blocks.0.1.weight": squares_w / batches, "blocks.0.1.bias": squares_b / batches}


def backward_loop_importance(model: nn.Module, data: TrainingSet, batch_size: int) -> dict[str, torch.Tensor]:
    """Plain autograd in float64: mean over batches of the squared .grad of the batch-mean loss."""
    reference = copy.deepcopy(model).double().eval()
    x = model_inputs(data)
    squares = {name: torch.zeros_like(p) for name, p in reference.named_parameters()}
    starts = list(range(0, len(data), batch_size))
    for start in starts:
        reference.zero_grad()
        loss = nn.functional.cross_entropy(reference(x[start:start + batch_size]), data.labels[start:start + batch_size])
        loss.backward()
        for name, p in reference.named_parameters():
            squares[name] += p.grad ** 2
    return {name: square / len(starts) for name, square in squares.items()}


def assert_importances_close(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    for name in expected:
        assert actual[name].dtype == torch.float32
        torch.testing.assert_close(actual[name].double(), expected[name], rtol=1e-4, atol=1e-10, msg=name)


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def gap_threshold(ratios: torch.Tensor) -> float:
    """A selection weighting in the middle of the widest (log-)gap between the ratios, so float
    round-off in either importance estimate cannot move a parameter across it."""
    values = ratios[torch.isfinite(ratios) & (ratios > 0)].double().sort().values.log()
    gaps = values[1:] - values[:-1]
    # Keep at least two parameters on each side.
    gaps[:1] = -1
    gaps[-1:] = -1
    i = int(gaps.argmax())
    assert gaps[i] > 0.05, "ratios too crowded for a robust threshold"
    return math.exp((values[i] + values[i + 1]).item() / 2)


# --- importance ------------------------------------------------------------------------------------

def test_importance_of_a_linear_layer_matches_the_closed_form():
    task = make_tiny_task(linear_model)
    for data in (task.forget, task.retain):
        for batch_size in (8, 50, 3):
            assert_importances_close(importance(task.original, data, INFO, batch_size, channels_last=False),
                                     closed_form_linear_importance(task.original, data, batch_size))


def test_importance_of_conv_bn_linear_matches_a_plain_backward_loop_in_eval_mode():
    task = make_tiny_task(conv_bn_linear)
    before = state(task.original)
    task.original.train()
    for data in (task.forget, task.retain):
        got = importance(task.original, data, INFO, 8, channels_last=True)
        # The reference is in eval mode (running statistics), so a train-mode importance would differ.
        assert_importances_close(got, backward_loop_importance(task.original, data, 8))
    assert task.original.training, "importance() must restore the training flag"
    for name, tensor in state(task.original).items():
        assert torch.equal(tensor, before[name]), f"{name} changed while estimating importances"


def test_importance_sees_samples_as_trained_on_and_depends_on_the_batch_size():
    task = make_tiny_task(linear_model)
    with_hook = importance(task.original, task.forget, INFO, 8, channels_last=False)
    no_hook = TrainingSet(task.forget.images, task.forget.labels, task.forget.index, None)
    without_hook = importance(task.original, no_hook, INFO, 8, channels_last=False)
    assert not torch.allclose(with_hook["blocks.0.1.weight"], without_hook["blocks.0.1.weight"])
    one_batch = importance(task.original, task.forget, INFO, 10, channels_last=False)
    assert not torch.allclose(with_hook["blocks.0.1.weight"], one_batch["blocks.0.1.weight"])


def test_ssd_importances_and_ratio():
    task = make_tiny_task(conv_bn_linear)
    importances = ssd_importances(task, batch_size=8)
    assert importances.batch_size == 8 and importances.reference_set == "retain"
    assert_importances_close(importances.forget, backward_loop_importance(task.original, task.forget, 8))
    assert_importances_close(importances.reference, backward_loop_importance(task.original, task.retain, 8))
    ratio = importances.ratio()
    assert ratio.keys() == importances.forget.keys()
    for name in ratio:
        torch.testing.assert_close(ratio[name], importances.forget[name] / importances.reference[name], rtol=0, atol=0)
    assert ssd_importances(task).batch_size == RECIPE.batch_size


def test_full_reference_set_is_retain_union_forget():
    task = make_tiny_task(conv_bn_linear)
    everything = full_training_set()
    # One batch covering all of S_tr makes the estimate independent of the order of the union.
    full = ssd_importances(task, batch_size=N, reference_set="full")
    assert full.reference_set == "full"
    assert_importances_close(full.reference, backward_loop_importance(task.original, everything, N))
    retain_only = ssd_importances(task, batch_size=N, reference_set="retain")
    assert_importances_close(retain_only.reference, backward_loop_importance(task.original, task.retain, N))
    assert not torch.allclose(full.reference["blocks.1.1.weight"], retain_only.reference["blocks.1.1.weight"])


# --- selection and dampening -----------------------------------------------------------------------

@pytest.mark.parametrize("factory", [linear_model, conv_bn_linear])
@pytest.mark.parametrize("lam_over_a", [0.1, 1.0, 5.0])
def test_ssd_selects_and_dampens_exactly_as_specified(factory, lam_over_a):
    task = make_tiny_task(factory)
    original = state(task.original)
    reference = backward_loop_importance(task.original, task.forget, 8), \
        backward_loop_importance(task.original, task.retain, 8)
    hand_forget, hand_retain = reference
    ratios = torch.cat([(hand_forget[n] / hand_retain[n]).flatten() for n in hand_forget])
    a = gap_threshold(ratios)
    lam = lam_over_a * a

    result = unlearn("ssd", task, {"selection_weighting": a, "dampening": lam, "batch_size": 8}, seed=0)
    importances = ssd_importances(task, batch_size=8)  # deterministic: the very values SSD used
    unlearned = dict(result.model.named_parameters())
    selected_total = clamped = 0
    for name, theta in task.original.named_parameters():
        forget, retain = importances.forget[name], importances.reference[name]
        selected = forget > a * retain
        assert torch.equal(selected, hand_forget[name] > a * hand_retain[name]), name
        factor = torch.minimum(lam * retain / forget, torch.ones_like(forget))
        expected = torch.where(selected, factor * theta.detach(), theta.detach())
        assert torch.equal(unlearned[name].detach(), expected), name
        assert torch.equal(unlearned[name].detach()[~selected], original[name][~selected]), name
        selected_total += int(selected.sum())
        clamped += int((selected & (lam * retain >= forget)).sum())
    total = sum(p.numel() for p in task.original.parameters())
    assert 0 < selected_total < total
    assert result.details["selected_parameters"] == selected_total
    assert result.details["selected_share"] == pytest.approx(selected_total / total)
    if lam_over_a <= 1.0:
        assert clamped == 0  # selected means I_f > a I_r >= lam I_r
    # Running statistics are buffers: bitwise untouched, and the original model is not modified.
    for name, buffer in result.model.named_buffers():
        assert torch.equal(buffer, original[name]), name
    for name, tensor in state(task.original).items():
        assert torch.equal(tensor, original[name]), name
    assert result.steps == 0 and result.seconds > 0
    assert result.samples_seen == len(task.forget) + len(task.retain)
    assert not result.model.training


def test_ssd_zeroes_parameters_only_the_forget_set_moves():
    """I_r = 0 < I_f: selected for any a, and min(lam * 0 / I_f, 1) = 0."""
    task = make_tiny_task(linear_model)
    # On the retain set the trigger pixel sits exactly at the normalisation mean, so its input is 0
    # and the weights reading it get no retain gradient; the triggered forget set still moves them.

    def retain_hook(images01: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        images01[:, :, 1, 1] = 0.5
        return images01

    retain = TrainingSet(task.retain.images, task.retain.labels, task.retain.index, retain_hook)
    task = UnlearningTask(task.original, INFO, retain, task.forget, task.validation, RECIPE, linear_model)
    result = unlearn("ssd", task, {"selection_weighting": 1e6, "dampening": 1.0, "batch_size": 8})
    importances = ssd_importances(task, batch_size=8)
    weight_name = "blocks.0.1.weight"
    assert torch.all(importances.reference[weight_name][:, 3] == 0)
    assert torch.all(importances.forget[weight_name][:, 3] > 0)
    assert torch.all(torch.isinf(importances.ratio()[weight_name][:, 3]))
    new_weight = result.model.blocks[0][1].weight.detach()
    assert torch.all(new_weight[:, 3] == 0)
    assert torch.equal(new_weight[:, :3], task.original.blocks[0][1].weight.detach()[:, :3])


def test_ssd_records_batch_size_and_reference_set():
    task = make_tiny_task(conv_bn_linear)
    default = unlearn("ssd", task, {})
    assert default.details["batch_size"] == RECIPE.batch_size
    assert default.details["reference_set"] == "retain"
    explicit = unlearn("ssd", task, {"batch_size": 5, "reference_set": "full"}, Budget(steps=3))
    assert explicit.details["batch_size"] == 5
    assert explicit.details["reference_set"] == "full"
    assert explicit.steps == 0  # training-free: a steps budget does not apply
    assert explicit.samples_seen == len(task.forget) + len(task.retain) + len(task.forget)
