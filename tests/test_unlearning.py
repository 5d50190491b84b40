"""The unlearning methods: what each may touch, what each must change, cost, determinism, errors.

Most tests run on a tiny hand-built task (2x2 images, a 4-block network with batch norm) where a
whole method takes milliseconds; the ``slow`` ones run every method end to end on embedded MNIST
with a BadNet original. SSD's arithmetic is checked in ``test_ssd.py``.
"""

from __future__ import annotations

import copy
import math
import re
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from unlearnkit.config import ConfigError
from unlearnkit.data import DatasetInfo, ImageSet
from unlearnkit.data.pipeline import TrainingSet
from unlearnkit.experiment import ExperimentConfig, train_original
from unlearnkit.manipulations import forget_sets
from unlearnkit.metrics import evaluate
from unlearnkit.models import BlockNet
from unlearnkit.registry import UnknownNameError
from unlearnkit.store import ArtifactStore
from unlearnkit.training import TrainConfig, train
from unlearnkit.unlearning import (
    METHODS,
    Budget,
    UnlearningTask,
    make_task,
    named_grid,
    select_best,
    selection_score,
    unlearn,
)
from unlearnkit.unlearning.badt import incompetent_teacher
from unlearnkit.unlearning.selection import forget_predictions

# --- a tiny task -----------------------------------------------------------------------------------

INFO = DatasetInfo(name="tiny-2x2", num_classes=3, class_names=("a", "b", "c"), mean=(0.5,), std=(0.25,),
                   hflip=False, crop_padding=1)
RECIPE = TrainConfig(steps=30, batch_size=8, lr=0.05, warmup_fraction=0.0, bf16=False, channels_last=False)
N = 80
FORGET = torch.tensor([2, 5, 9, 14, 21, 30, 33, 42, 47, 58, 66, 71])  # 12 > batch size: order is random
BUDGET = Budget(steps=6)
# Small, valid hyper-parameters per method (a method missing here runs with its defaults).
FAST = {"eu": {"k": 2}, "cf": {"k": 2}, "scrub": {"msteps": 3}, "ssd": {"batch_size": 8}}


def trigger(images01: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    images01[torch.isin(index, FORGET), :, 1, 1] = 1.0
    return images01


def tiny_model(seed: int) -> BlockNet:
    """4 blocks; blocks 1 and 2 have the same architecture (so a shared init would be visible)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return BlockNet([
            nn.Sequential(nn.Conv2d(1, 2, 1, bias=False), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten()),
            nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.ReLU()),
            nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.ReLU()),
            nn.Linear(8, 3),
        ])


def full_training_set() -> TrainingSet:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (N, 1, 2, 2), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 3, (N,), generator=generator)
    labels[FORGET] = 0
    return TrainingSet(images, labels, torch.arange(N), trigger)


@pytest.fixture(scope="module")
def tiny_original() -> BlockNet:
    model = tiny_model(0)
    train(model, full_training_set(), INFO, RECIPE, progress=False)
    return model


class Recorder:
    """A post_augment hook that logs (stream, sample indices) of every batch, then applies ``hook``."""

    def __init__(self, stream: str, log: list[tuple[str, torch.Tensor]], hook=trigger) -> None:
        self.stream, self.log, self.hook = stream, log, hook

    def __call__(self, images01: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        self.log.append((self.stream, index.clone()))
        return self.hook(images01, index)


class Probe:
    """A tiny task whose hooks, original model and model factory record every use."""

    def __init__(self, original: nn.Module, forget: torch.Tensor = FORGET, recipe: TrainConfig = RECIPE) -> None:
        self.log: list[tuple[str, torch.Tensor]] = []
        self.new_models = 0
        self.forwards = 0
        original = copy.deepcopy(original)
        original.register_forward_pre_hook(self._count_forward)
        data = full_training_set()
        retain, forget_set = data.without(forget), data.only(forget)
        retain.post_augment, forget_set.post_augment = Recorder("retain", self.log), Recorder("forget", self.log)
        validation = ImageSet(data.images[:10].clone(), data.labels[:10].clone())
        self.task = UnlearningTask(original=original, info=INFO, retain=retain, forget=forget_set,
                                   validation=validation, recipe=recipe, new_model=self._new_model)

    def _count_forward(self, *_) -> None:
        self.forwards += 1

    def _new_model(self, seed: int) -> nn.Module:
        self.new_models += 1
        return tiny_model(seed)

    def indices(self, stream: str) -> torch.Tensor:
        seen = [index for name, index in self.log if name == stream]
        return torch.cat(seen) if seen else torch.empty(0, dtype=torch.int64)

    def untouched(self) -> bool:
        return not self.log and self.new_models == 0 and self.forwards == 0


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def block_state(model: BlockNet, blocks: range) -> dict[str, torch.Tensor]:
    return {name: tensor for name, tensor in state(model).items() if int(name.split(".")[1]) in blocks}


def same_state(first: nn.Module | dict, second: nn.Module | dict) -> bool:
    first = first if isinstance(first, dict) else state(first)
    second = second if isinstance(second, dict) else state(second)
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def forget_loss(model: nn.Module, task: UnlearningTask) -> float:
    """Mean CE on S_f as trained on (trigger stamped, no augmentation), model in eval mode."""
    model.eval()
    x = trigger(task.forget.images.float() / 255.0, task.forget.index)
    with torch.no_grad():
        return nn.functional.cross_entropy(model((x - 0.5) / 0.25), task.forget.labels).item()


class StepCounter:
    """Counts optimiser steps of any optimiser (a global post-step hook)."""

    def __enter__(self) -> StepCounter:
        self.steps = 0
        self.handle = register_optimizer_step_post_hook(self._count)
        return self

    def _count(self, *_) -> None:
        self.steps += 1

    def __exit__(self, *_) -> None:
        self.handle.remove()


def run_and_check_cost(name: str, task: UnlearningTask, log: list, params: dict, budget: Budget, seed: int = 0):
    """Run ``name`` and check its reported cost against what actually happened."""
    start = len(log)
    with StepCounter() as counter:
        result = unlearn(name, task, params, budget, seed)
    presented = sum(len(index) for _, index in log[start:])
    assert result.steps == counter.steps, f"{name}: reported {result.steps} optimiser steps, ran {counter.steps}"
    assert result.samples_seen == presented, f"{name}: reported {result.samples_seen} samples, presented {presented}"
    assert result.seconds > 0 and math.isfinite(result.seconds)
    if not METHODS.get(name).uses_budget:
        assert result.steps == 0
    elif name == "scrub":  # a max step on S_f precedes each of the first msteps min steps
        assert result.details["descent_steps"] == budget.steps
        assert result.steps == budget.steps + result.details["ascent_steps"]
    else:
        assert result.steps == budget.steps, name
    return result


# --- EU-k / CF-k -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["eu", "cf"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_last_k_methods_freeze_the_prefix_bitwise_and_change_the_suffix(tiny_original, name, k):
    probe = Probe(tiny_original)
    before = state(tiny_original)
    result = unlearn(name, probe.task, {"k": k}, BUDGET, seed=0)
    prefix, suffix = range(0, 4 - k), range(4 - k, 4)
    # Prefix: parameters and batch-norm buffers (running stats, num_batches_tracked) bitwise equal.
    assert same_state(block_state(result.model, prefix), {n: t for n, t in before.items()
                                                          if int(n.split(".")[1]) in prefix})
    after_suffix = block_state(result.model, suffix)
    for parameter_name, _ in result.model.named_parameters():
        if parameter_name in after_suffix:
            assert not torch.equal(after_suffix[parameter_name], before[parameter_name]), parameter_name
    for buffer_name, buffer in result.model.named_buffers():
        if buffer_name.endswith("num_batches_tracked") and buffer_name in after_suffix:
            # EU-k resets the statistics then trains; CF-k keeps counting on top of M_o's.
            expected = BUDGET.steps + (0 if name == "eu" else int(before[buffer_name]))
            assert int(buffer) == expected, buffer_name
    assert all(p.requires_grad for p in result.model.parameters())
    assert same_state(probe.task.original, before)


def test_eu_suffix_is_a_fresh_initialisation(tiny_original):
    # Whatever M_o's last k blocks hold is overwritten: perturbing them changes nothing for EU-k
    # (everything is a function of the frozen prefix, the seed and the data), but changes CF-k.
    perturbed = copy.deepcopy(tiny_original)
    with torch.no_grad():
        for block in perturbed.last_blocks(2):
            for parameter in block.parameters():
                parameter.add_(0.5)
            for buffer in block.buffers():
                if buffer.is_floating_point():
                    buffer.mul_(3.0)
    for name, expect_same in (("eu", True), ("cf", False)):
        first = unlearn(name, Probe(tiny_original).task, {"k": 2}, BUDGET, seed=4)
        second = unlearn(name, Probe(perturbed).task, {"k": 2}, BUDGET, seed=4)
        assert same_state(first.model, second.model) is expect_same, name

    # With a negligible learning rate the suffix stays at its initialisation: far from M_o, inside
    # the default init range of nn.Linear (|w| <= 1/sqrt(fan_in)), and drawn independently for the
    # two blocks of identical architecture.
    result = unlearn("eu", Probe(tiny_original).task, {"k": 3, "lr": 1e-30}, Budget(steps=2), seed=0)

    def linears(model: BlockNet) -> list[nn.Linear]:
        return [model.blocks[1][0], model.blocks[2][0], model.blocks[3]]

    for fresh, trained in zip(linears(result.model), linears(tiny_original)):
        weight = fresh.weight.detach()
        assert weight.abs().max() <= 1 / math.sqrt(fresh.in_features) + 1e-6
        assert not torch.allclose(weight, trained.weight.detach(), atol=1e-2)
    for i in (1, 2):  # batch-norm affine back to (1, 0)
        assert torch.equal(result.model.blocks[i][1].weight.detach(), torch.ones(8))
    first, second, _ = linears(result.model)
    assert not torch.allclose(first.weight, second.weight, atol=1e-3), "same-architecture blocks got the same init"
    other_seed = unlearn("eu", Probe(tiny_original).task, {"k": 3, "lr": 1e-30}, Budget(steps=2), seed=1)
    assert not torch.allclose(linears(other_seed.model)[2].weight, linears(result.model)[2].weight, atol=1e-3)


@pytest.mark.parametrize("name", ["eu", "cf"])
@pytest.mark.parametrize("k", [0, 5, -1])
def test_k_out_of_range_is_a_config_error_before_any_compute(tiny_original, name, k):
    probe = Probe(tiny_original)
    with pytest.raises(ConfigError, match=rf"methods\.{name}\.k"):
        unlearn(name, probe.task, {"k": k}, BUDGET)
    assert probe.untouched()


# --- which samples each method sees ----------------------------------------------------------------

@pytest.mark.parametrize("name", [m for m in METHODS.names() if m != "badt"])
def test_retain_streams_never_contain_a_forget_sample(tiny_original, name):
    probe = Probe(tiny_original)
    result = run_and_check_cost(name, probe.task, probe.log, FAST.get(name, {}), BUDGET)
    retain_seen, forget_seen = probe.indices("retain"), probe.indices("forget")
    assert not torch.isin(retain_seen, FORGET).any(), f"{name} trained on S_f through the retain set"
    assert torch.isin(forget_seen, FORGET).all()
    uses_retain = name not in ("ga", "npo")  # NPO touches the retain set only with retain_weight > 0
    assert (len(retain_seen) > 0) is uses_retain, name
    assert torch.isin(retain_seen, probe.task.retain.index).all()
    assert result.model is not probe.task.original


def test_badt_streams_the_union_and_its_teacher_is_fresh(tiny_original):
    probe = Probe(tiny_original)
    run_and_check_cost("badt", probe.task, probe.log, {}, Budget(steps=20), seed=2)
    seen = probe.indices("retain")  # the union is drawn through the retain set's hook
    assert torch.isin(seen, FORGET).any() and (~torch.isin(seen, FORGET)).any()

    teacher = incompetent_teacher(probe.task, seed=2)
    assert same_state(teacher, tiny_model(3))
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    differs = [not torch.equal(a, b) for a, b in zip(teacher.parameters(), tiny_original.parameters())]
    assert all(differs)


def test_make_task_splits_at_the_forget_set():
    data = full_training_set()
    positions = torch.tensor([5, 9, 2])

    original = SimpleNamespace(  # the parts of a TrainedOriginal that make_task reads
        config=ExperimentConfig(model="small-cnn", train=RECIPE),
        splits=SimpleNamespace(info=INFO, val=ImageSet(data.images[:4], data.labels[:4])),
        manipulated=SimpleNamespace(train=data), model=tiny_model(0))
    task = make_task(original, positions)
    assert torch.equal(task.forget.index, torch.tensor([2, 5, 9]))
    assert len(task.retain) == N - 3 and not torch.isin(task.retain.index, positions).any()
    assert torch.equal(torch.cat([task.retain.index, task.forget.index]).sort().values, torch.arange(N))
    assert torch.equal(task.forget.labels, data.labels[[2, 5, 9]])


def test_task_rejects_overlapping_retain_and_forget():
    data = full_training_set()
    overlapping = data.only(torch.arange(0, 40))
    with pytest.raises(ValueError, match="retain set contains samples of the forget set"):
        UnlearningTask(tiny_model(0), INFO, overlapping, data.only(torch.tensor([3, 50])),
                       ImageSet(data.images[:4], data.labels[:4]), RECIPE, tiny_model)


# --- method-specific behaviour ---------------------------------------------------------------------

def test_ga_raises_the_forget_loss(tiny_original):
    probe = Probe(tiny_original)
    before = forget_loss(copy.deepcopy(tiny_original), probe.task)
    result = run_and_check_cost("ga", probe.task, probe.log, {"lr": 0.05}, Budget(steps=10))
    assert forget_loss(result.model, probe.task) > before + 0.5
    assert len(probe.indices("retain")) == 0


@pytest.mark.parametrize("msteps, steps", [(3, 7), (0, 5), (9, 4)])
def test_scrub_ascends_only_in_its_first_msteps(tiny_original, msteps, steps):
    probe = Probe(tiny_original)
    result = run_and_check_cost("scrub", probe.task, probe.log, {"msteps": msteps}, Budget(steps=steps))
    ascents = min(msteps, steps)
    assert result.details["ascent_steps"] == ascents
    order = [stream for stream, _ in probe.log]
    assert order == ["forget", "retain"] * ascents + ["retain"] * (steps - ascents)


def test_scrub_ascends_in_the_first_fifth_by_default(tiny_original):
    probe = Probe(tiny_original)
    result = run_and_check_cost("scrub", probe.task, probe.log, {}, Budget(steps=10))
    assert result.details["ascent_steps"] == 2
    assert [stream for stream, _ in probe.log] == ["forget", "retain"] * 2 + ["retain"] * 8


def test_ngd_without_noise_is_cf_and_with_noise_is_not(tiny_original):
    task = Probe(tiny_original).task
    cf = unlearn("cf", task, {"lr": 0.02}, BUDGET, seed=5)
    silent = unlearn("ngd", task, {"lr": 0.02, "noise_variance": 0.0}, BUDGET, seed=5)
    noisy = unlearn("ngd", task, {"lr": 0.02, "noise_variance": 1e-4}, BUDGET, seed=5)
    assert same_state(cf.model, silent.model)
    assert not same_state(cf.model, noisy.model)


def test_rewod_starts_from_a_fresh_model(tiny_original):
    probe = Probe(tiny_original)
    result = run_and_check_cost("rewod", probe.task, probe.log, {}, Budget(steps=3), seed=7)
    assert probe.new_models == 1 and probe.forwards == 0  # M_o is never run
    assert not any(torch.allclose(a, b, atol=1e-3) for a, b in zip(result.model.parameters(),
                                                                    tiny_original.parameters()))


# --- determinism -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", METHODS.names())
def test_same_seed_same_weights_different_seed_different(tiny_original, name):
    task = Probe(tiny_original).task
    params = FAST.get(name, {})
    first = unlearn(name, task, params, BUDGET, seed=11)
    again = unlearn(name, task, params, BUDGET, seed=11)
    other = unlearn(name, task, params, BUDGET, seed=12)
    assert same_state(first.model, again.model)
    stochastic = METHODS.get(name).uses_budget
    assert same_state(first.model, other.model) is not stochastic
    assert same_state(task.original, tiny_original), "a method modified M_o in place"


# --- configuration errors come before any compute --------------------------------------------------

def test_unknown_method_lists_the_registered_names(tiny_original):
    probe = Probe(tiny_original)
    with pytest.raises(UnknownNameError) as error:
        unlearn("retrain", probe.task)
    for name in METHODS.names():
        assert name in str(error.value)
    assert probe.untouched()


@pytest.mark.parametrize("name", METHODS.names())
def test_unknown_hyper_parameter_names_the_key(tiny_original, name):
    probe = Probe(tiny_original)
    with pytest.raises(ConfigError, match=rf"methods\.{re.escape(name)}\.'?learning_rate"):
        unlearn(name, probe.task, {"learning_rate": 0.1}, BUDGET)
    assert probe.untouched()


@pytest.mark.parametrize("name, key, value", [
    ("cf", "lr", -1.0), ("cf", "lr", "fast"), ("ngd", "noise_variance", -1e-7), ("ngd", "lr", 0.0),
    ("eu", "k", 0), ("eu", "k", 1.5), ("eu", "lr", -0.1), ("ga", "lr", 0.0), ("neggrad+", "beta", 1.5),
    ("neggrad+", "lr", -1.0), ("scrub", "msteps", -1), ("scrub", "alpha", -1.0), ("scrub", "temperature", 0.0),
    ("scrub", "forget_loss", "mse"), ("badt", "temperature", 0.0), ("badt", "lr", -1.0),
    ("ssd", "selection_weighting", 0.0), ("ssd", "dampening", -1.0), ("ssd", "batch_size", 0),
    ("ssd", "reference_set", "all"),
])
def test_out_of_range_hyper_parameter_names_the_key(tiny_original, name, key, value):
    probe = Probe(tiny_original)
    with pytest.raises(ConfigError, match=rf"methods\.{re.escape(name)}\.{key}"):
        unlearn(name, probe.task, {key: value}, BUDGET)
    assert probe.untouched()


def test_empty_forget_set_is_an_error():
    data = full_training_set()
    with pytest.raises(ConfigError, match="empty"):
        UnlearningTask(tiny_model(0), INFO, data, data.only(torch.tensor([], dtype=torch.int64)),
                       ImageSet(data.images[:4], data.labels[:4]), RECIPE, tiny_model)


def test_budget_errors():
    with pytest.raises(ConfigError, match="steps.*fraction"):
        Budget(steps=10, fraction=0.1)
    with pytest.raises(ConfigError, match="budget.steps"):
        Budget(steps=0)
    with pytest.raises(ConfigError, match="budget.fraction"):
        Budget(fraction=0.0)
    assert Budget(fraction=0.25).resolve(4000, 1000) == 1000
    assert Budget(fraction=1e-9).resolve(4000, 1000) == 1
    assert Budget().resolve(4000, 123) == 123


def test_fraction_budget_counts_against_the_original_training(tiny_original):
    probe = Probe(tiny_original)
    result = unlearn("cf", probe.task, {}, Budget(fraction=0.1))
    assert result.steps == round(0.1 * RECIPE.steps)


# --- model selection and grids ---------------------------------------------------------------------

def pixel_model() -> BlockNet:
    """Predicts class 0 when the bottom-right pixel is brighter than 0.5, else class 1."""
    model = BlockNet([nn.Sequential(nn.Flatten(), nn.Linear(4, 3))])
    with torch.no_grad():
        model.blocks[0][1].weight.zero_()
        model.blocks[0][1].weight[0, 3] = 10.0
        model.blocks[0][1].bias.copy_(torch.tensor([0.0, 0.0, -100.0]))
    return model


def test_selection_score_is_half_val_accuracy_plus_half_changed_forget_predictions():
    bright, dark = 230, 20
    val_images = torch.full((10, 1, 2, 2), dark, dtype=torch.uint8)
    val_images[:4, :, 1, 1] = bright  # predicted 0; the other six predicted 1
    val_labels = torch.tensor([0, 0, 0, 1, 1, 1, 1, 1, 2, 2])  # 3 + 4 correct of 10
    forget_index = torch.tensor([3, 8, 13, 21, 34, 55, 60, 61])
    forget = TrainingSet(torch.full((8, 1, 2, 2), dark, dtype=torch.uint8), torch.zeros(8, dtype=torch.int64),
                         forget_index, lambda images01, index: trigger_all(images01))
    model = pixel_model()
    # Presented as trained on, the trigger makes every forget prediction 0.
    assert torch.equal(forget_predictions(model, forget, INFO), torch.zeros(8, dtype=torch.int64))
    original = torch.tensor([0, 0, 0, 1, 1, 2, 0, 0])  # 3 of 8 differ from 0
    score = selection_score(model, ImageSet(val_images, val_labels), forget, INFO, original)
    assert score.val_acc == pytest.approx(0.7)
    assert score.forget_changed == pytest.approx(3 / 8)
    assert score.score == pytest.approx(0.5 * 0.7 + 0.5 * 3 / 8)


def trigger_all(images01: torch.Tensor) -> torch.Tensor:
    images01[:, :, 1, 1] = 1.0
    return images01


RUNS = pd.DataFrame({
    "method": ["ssd"] * 5,
    "alpha": [0.1, 0.1, 0.1, 0.5, 0.5],
    "run": ["collapsed", "good", "fine", "d", "e"],
    "score": [0.9, 0.8, 0.7, 0.6, 0.65],
    "val_acc": [0.3, 0.95, 0.96, 0.9, 0.92],
})


def test_select_best_takes_the_highest_score_per_group_and_flags_collapse():
    best = select_best(RUNS, ["method", "alpha"], original_val_acc=0.97)
    assert list(best["run"]) == ["collapsed", "e"]
    assert list(best["flag_low_val_acc"]) == [True, False]


def test_select_best_guard_drops_low_validation_accuracy():
    best = select_best(RUNS, ["alpha"], original_val_acc=0.97, min_relative_val_acc=0.8)
    assert list(best["run"]) == ["good", "e"]
    assert not best["flag_low_val_acc"].any()
    with pytest.raises(ValueError, match="original_val_acc"):
        select_best(RUNS, ["alpha"], min_relative_val_acc=0.8)
    unflagged = select_best(RUNS, ["alpha"])
    assert not unflagged["flag_low_val_acc"].any()


def test_select_best_on_concatenated_sweeps_with_repeated_index_labels():
    # Sweep tables are routinely stacked with pd.concat, which keeps each table's 0..n-1 index.
    stacked = pd.concat([RUNS[RUNS["alpha"] == 0.1].reset_index(drop=True),
                         RUNS[RUNS["alpha"] == 0.5].reset_index(drop=True)])
    assert stacked.index.has_duplicates
    best = select_best(stacked, ["alpha"], original_val_acc=0.97, min_relative_val_acc=0.8)
    assert list(best["run"]) == ["good", "e"]


def test_goel_grids():
    method, points = named_grid("ssd-goel")
    assert method == "ssd" and len(points) == 50
    pairs = {(p["selection_weighting"], p["dampening"]) for p in points}
    assert len(pairs) == 50
    assert {p["selection_weighting"] for p in points} == {0.1, 1, 10, 50, 100, 500, 1e3, 1e4, 1e5, 1e6}
    for a in {p["selection_weighting"] for p in points}:
        ratios = sorted(lam / a for s, lam in pairs if s == a)
        assert ratios == pytest.approx([0.1, 0.5, 1, 5, 10])
    method, points = named_grid("scrub-goel")
    assert method == "scrub"
    assert [p["alpha"] for p in points] == [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10]
    with pytest.raises(ConfigError, match="ssd-goel"):
        named_grid("ssd-foster")


def test_grid_points_are_valid_parameters(tiny_original):
    task = Probe(tiny_original).task
    for grid in ("ssd-goel", "scrub-goel"):
        method, points = named_grid(grid)
        for point in points[::7]:
            unlearn(method, task, {**point, **({"msteps": 1} if method == "scrub" else {})}, Budget(steps=1))


# --- end to end on embedded MNIST ------------------------------------------------------------------

MNIST_CONFIG = ExperimentConfig.from_mapping({
    "data": {"name": "mnist", "train_subset": 4000, "test_subset": 500, "val_size": 500},
    "manipulation": {"name": "badnet", "target_class": 0, "patch_size": 3, "count": 80, "seed": 0},
    "model": "small-cnn",
    # fp32: bf16 autocast on a CPU without AMX is several times slower than fp32.
    "train": {"steps": 200, "batch_size": 128, "lr": 0.05, "warmup_fraction": 0.05, "log_every": 25,
              "bf16": False},
})
E2E_BUDGET = {"rewod": Budget(steps=40)}


@pytest.fixture(scope="module")
def mnist_original(tmp_path_factory):
    return train_original(MNIST_CONFIG, ArtifactStore(tmp_path_factory.mktemp("outputs"), "unlearning"),
                          device="cpu", progress=False)


@pytest.mark.slow
def test_make_task_on_mnist_keeps_unidentified_poisons_in_the_retain_set(mnist_original):
    poisoned = mnist_original.manipulated.manipulated
    sets = forget_sets(poisoned, [0.1, 1.0], seed=0)
    assert len(sets[0.1]) == 8 and len(sets[1.0]) == 80
    task = make_task(mnist_original, sets[0.1])
    assert torch.equal(task.forget.index, sets[0.1])
    assert not torch.isin(task.retain.index, sets[0.1]).any()
    assert torch.isin(poisoned, task.retain.index).sum() == 72  # S_m \ S_f stays
    assert len(task.retain) + len(task.forget) == len(mnist_original.manipulated.train)
    assert len(task.validation) == 500


@pytest.mark.slow
@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_end_to_end_on_mnist_badnet(mnist_original, name):
    assert mnist_original.metrics["asr"] > 0.8, mnist_original.metrics
    sets = forget_sets(mnist_original.manipulated.manipulated, [0.1, 1.0], seed=0)
    for alpha, forget in sets.items():
        task = make_task(mnist_original, forget)
        log: list = []
        task.retain.post_augment = Recorder("retain", log, task.retain.post_augment)
        task.forget.post_augment = Recorder("forget", log, task.forget.post_augment)
        budget = E2E_BUDGET.get(name, Budget(steps=20))
        result = run_and_check_cost(name, task, log, {}, budget, seed=0)
        if name != "badt":
            retain_seen = torch.cat([index for stream, index in log if stream == "retain"] or [torch.empty(0, dtype=torch.int64)])
            assert not torch.isin(retain_seen, forget).any()
        metrics = evaluate(result.model, mnist_original.splits, mnist_original.manipulated, forget=forget)
        keys = ["acc_corr", "acc_retain", "asr", "acc_clean", "acc_sf_clean", "fit_sf_manipulated"]
        if alpha < 1.0:
            keys.append("acc_sm_minus_sf_clean")
        else:  # every manipulated sample is identified: S_m \ S_f is empty
            assert math.isnan(metrics["acc_sm_minus_sf_clean"])
        for key in keys:
            value = metrics[key]
            assert math.isfinite(value) and 0.0 <= value <= 1.0, (name, alpha, key, value)
        if name == "rewod" and alpha == 1.0:
            # Retrained without a single poisoned sample: the trigger means nothing to it.
            assert metrics["asr"] < 0.5, metrics

