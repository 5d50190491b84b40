"""Expanding the identified set: exact precision / recall, sizes, scorers on a planted case, and the
expand-then-unlearn wrapper (what the method receives, and never the test set)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest
import torch

from unlearnkit.config import ConfigError
from unlearnkit.data import DatasetInfo, DataSplits, ImageSet
from unlearnkit.expansion import (
    SCORERS,
    ExpansionContext,
    ExpansionPolicy,
    ExpansionSize,
    expand,
    expand_then_unlearn,
    expansion_quality,
    ranking_curve,
    score_candidates,
)
from unlearnkit.experiment import ExperimentConfig, TrainedOriginal
from unlearnkit.manipulations import build_manipulation, forget_sets, related_positions
from unlearnkit.models import build_model
from unlearnkit.training import TrainConfig, train
from unlearnkit.unlearning import METHODS, Budget, Method, UnlearningResult

# Exact numbers on hand-made cases ----------------------------------------------------------------

def test_precision_and_recall_count_only_what_was_still_to_be_found():
    forget = torch.tensor([0, 1])
    target = torch.tensor([0, 1, 2, 3, 4, 10, 11])  # S_m = 0..4, near-duplicates 10 and 11
    added = torch.tensor([2, 5, 10, 6])
    quality = expansion_quality(added, forget, target, duplicates=torch.tensor([10, 11]))
    assert quality == {"n_added": 4, "n_to_find": 5, "precision": 0.5, "recall": 0.4,
                       "recall_sm": pytest.approx(1 / 3), "recall_duplicates": 0.5}
    nothing_left = expansion_quality(torch.tensor([7, 8]), torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2]))
    assert nothing_left["precision"] == 0.0 and nothing_left["recall"] != nothing_left["recall"]  # NaN
    none_added = expansion_quality(torch.tensor([], dtype=torch.int64), forget, target)
    assert none_added["precision"] != none_added["precision"] and none_added["recall"] == 0.0
    assert none_added["recall_duplicates"] != none_added["recall_duplicates"], "no near-duplicates: NaN"


def test_sizes_pick_the_best_scores_first_with_stable_ties():
    scores = torch.tensor([0.1, 0.9, 0.5, 0.9, 0.3], dtype=torch.float64)
    assert ExpansionSize(multiple=1.0).pick(scores, n_forget=2).tolist() == [1, 3]
    assert ExpansionSize(multiple=0.5).pick(scores, n_forget=5).tolist() == [1, 3, 2]  # round(2.5) = 3
    assert ExpansionSize(count=10).pick(scores, n_forget=2).tolist() == [1, 3, 2, 4, 0]
    assert ExpansionSize(threshold=0.4).pick(scores, n_forget=2).tolist() == [1, 3, 2]
    assert ExpansionSize(threshold=0.95).pick(scores, n_forget=2).tolist() == []
    assert ExpansionSize(multiple=2.0).label == "+2x|S_f|" and ExpansionSize(count=5).label == "+5"


def test_ranking_curve_is_precision_and_recall_at_every_depth():
    candidates = torch.tensor([2, 3, 4, 5])
    scores = torch.tensor([0.2, 0.9, 0.1, 0.5], dtype=torch.float64)  # ranking: 3, 5, 2, 4
    curve = ranking_curve(candidates, scores, forget=torch.tensor([0, 1]), target=torch.tensor([0, 1, 3, 4]))
    assert curve["n_added"].tolist() == [1, 2, 3, 4]
    assert curve["multiple"].tolist() == [0.5, 1.0, 1.5, 2.0]
    assert curve["precision"].tolist() == pytest.approx([1.0, 0.5, 1 / 3, 0.5])
    assert curve["recall"].tolist() == pytest.approx([0.5, 0.5, 0.5, 1.0])


@pytest.mark.parametrize("values, message", [
    ({}, "exactly one of 'count', 'multiple' and 'threshold', got none"),
    ({"count": 3, "multiple": 1.0}, "exactly one.*\\['count', 'multiple'\\]"),
    ({"count": 0}, "expansion.count must be in"),
    ({"multiple": -1.0}, "expansion.multiple must be in"),
])
def test_bad_sizes_are_named(values, message):
    with pytest.raises(ConfigError, match=message):
        ExpansionSize(**values)


@pytest.mark.parametrize("scorer, params, message", [
    ("nearest", {}, "unknown expansion scorer 'nearest'"),
    ("features", {"k": 0}, "scorers.features.k must be in"),
    ("features", {"neighbours": 3}, "unknown key scorers.features.'neighbours'"),
    ("gradient", {"blocks": 0}, "scorers.gradient.blocks"),
    ("loss_change", {"step": -0.1}, "scorers.loss_change.step"),
])
def test_bad_scorer_parameters_are_named(scorer, params, message):
    with pytest.raises(ConfigError, match=message):
        ExpansionPolicy(scorer, params)


def test_an_empty_forget_set_cannot_be_expanded(tiny_splits):
    training_set = build_manipulation({"name": "badnet", "count": 4}).apply(tiny_splits).train
    context = ExpansionContext(build_model("small-cnn", 4, 3), training_set, tiny_splits.info)
    with pytest.raises(ConfigError, match="empty"):
        score_candidates(context, torch.tensor([], dtype=torch.int64), "random")


# A planted case: the manipulated samples share an obvious feature ---------------------------------

PLANTED_INFO = DatasetInfo(name="planted", num_classes=4, class_names=("a", "b", "c", "d"), mean=(0.3,), std=(0.3,),
                           hflip=False, crop_padding=0)


def planted_set(n: int, seed: int) -> ImageSet:
    """12x12 noise with a bright bar whose row says the class: an easy task to learn."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 4
    images = torch.randint(0, 60, (n, 1, 12, 12), dtype=torch.uint8, generator=generator)
    for label in range(4):
        images[labels == label, :, 1 + 2 * label:3 + 2 * label, 1:7] = 200
    return ImageSet(images, labels)


@dataclass
class Planted:
    original: TrainedOriginal
    context: ExpansionContext
    forget: torch.Tensor
    target: torch.Tensor


@pytest.fixture(scope="module")
def planted() -> Planted:
    """BadNet on the planted task: 40 of 400 samples get a white 3x3 corner and label 0; M_o learns both."""
    torch.manual_seed(0)
    splits = DataSplits(PLANTED_INFO, planted_set(400, 0), planted_set(40, 1), planted_set(80, 2))
    config = ExperimentConfig(manipulation={"name": "badnet", "count": 40, "patch_size": 3},
                              train=TrainConfig(steps=120, batch_size=64, lr=0.05, warmup_fraction=0.05,
                                                augment=False, bf16=False, log_every=40))
    manipulated = build_manipulation(config.manipulation).apply(splits)
    model = build_model("small-cnn", 4, 1, seed=0)
    train(model, manipulated.train, PLANTED_INFO, config.train, progress=False)
    original = TrainedOriginal(config, splits, manipulated, model.eval(), pd.DataFrame(), {}, Path("."), False)
    forget = forget_sets(manipulated.manipulated, [0.25], seed=0)[0.25]
    return Planted(original, ExpansionContext.of(original, batch_size=128), forget,
                   related_positions(manipulated))


@pytest.mark.slow
@pytest.mark.parametrize("scorer", ["features", "gradient", "loss_change"])
def test_scorers_find_the_planted_manipulation(planted, scorer):
    to_find = len(planted.target) - len(planted.forget)  # 30
    expansion = expand(planted.context, planted.forget, ExpansionPolicy(scorer, {}, ExpansionSize(count=to_find)))
    quality = expansion_quality(expansion.added, planted.forget, planted.target)
    assert quality["n_added"] == to_find and quality["n_to_find"] == to_find
    assert quality["recall"] >= 0.8 and quality["precision"] == quality["recall"]
    assert not torch.isin(expansion.added, planted.forget).any(), "never adds S_f itself"


@pytest.mark.slow
def test_random_scoring_stays_at_chance_and_is_seeded(planted):
    to_find = len(planted.target) - len(planted.forget)
    policy = ExpansionPolicy("random", {}, ExpansionSize(count=to_find))
    first = expand(planted.context, planted.forget, policy, seed=1)
    assert torch.equal(first.added, expand(planted.context, planted.forget, policy, seed=1).added)
    assert expansion_quality(first.added, planted.forget, planted.target)["recall"] < 0.4


@pytest.mark.slow
def test_scores_are_deterministic_and_cover_every_candidate(planted):
    for scorer in SCORERS.names():
        candidates, scores = score_candidates(planted.context, planted.forget, scorer)
        fresh = ExpansionContext.of(planted.original, batch_size=32)  # other chunking, nothing remembered
        again_candidates, again = score_candidates(fresh, planted.forget, scorer)
        assert torch.equal(candidates, again_candidates) and len(candidates) == 400 - len(planted.forget)
        torch.testing.assert_close(scores, again, rtol=1e-4, atol=1e-5)


# The wrapper ---------------------------------------------------------------------------------------

class Tripwire:
    """Stands in for the test set: any use of it fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the test set was used ({name})")

    def __len__(self):
        raise AssertionError("the test set was used (len)")


@dataclass(frozen=True)
class NoParams:
    pass


class Recorder(Method):
    """Records the task it is given and returns the original model unchanged."""

    name: ClassVar[str] = "recorder"
    Params: ClassVar[type] = NoParams
    received: ClassVar[list] = []

    def unlearn(self, task, params, steps, seed) -> UnlearningResult:
        Recorder.received.append(task)
        return UnlearningResult(copy.deepcopy(task.original), steps, 0.0, 0)


def without_test_set(original: TrainedOriginal) -> TrainedOriginal:
    splits = DataSplits(original.splits.info, original.splits.train, original.splits.val, Tripwire())
    manipulated = copy.copy(original.manipulated)
    manipulated.affected_test = Tripwire()
    manipulated.retain_test_mask = Tripwire()
    return TrainedOriginal(original.config, splits, manipulated, original.model, original.history, {},
                           original.directory, False)


@pytest.mark.slow
@pytest.mark.parametrize("scorer", ["features", "loss_change"])
def test_the_wrapper_hands_the_method_the_expanded_set_and_never_the_test_set(planted, monkeypatch, scorer):
    monkeypatch.setitem(METHODS._entries, "recorder", Recorder)
    test_images = planted.original.splits.test.images
    policy = ExpansionPolicy(scorer, {}, ExpansionSize(multiple=2.0))
    candidates, scores = score_candidates(ExpansionContext.of(planted.original), planted.forget, scorer)
    expected = torch.cat([planted.forget, candidates[policy.size.pick(scores, len(planted.forget))]]).sort().values

    run = expand_then_unlearn(without_test_set(planted.original), "recorder", None, planted.forget, policy)
    task = Recorder.received[-1]
    assert torch.equal(task.forget.index, expected) and len(expected) == 3 * len(planted.forget)
    assert torch.equal(run.expansion.expanded, expected)
    everything = torch.arange(len(planted.original.manipulated.train))
    assert torch.equal(task.retain.index, everything[~torch.isin(everything, expected)])
    assert task.validation is planted.original.splits.val
    for images in (task.retain.images, task.forget.images, task.validation.images):
        assert images.data_ptr() != test_images.data_ptr()
        assert not (images.flatten(1).unsqueeze(1) == test_images.flatten(1).unsqueeze(0)).all(2).any(), \
            "no test image reaches the method"


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS.names())
def test_every_registered_method_runs_on_the_expanded_set(planted, method):
    policy = ExpansionPolicy("features", {}, ExpansionSize(multiple=1.0))
    run = expand_then_unlearn(without_test_set(planted.original), method, None, planted.forget, policy,
                              budget=Budget(steps=2), context=planted.context)
    assert len(run.task.forget) == 2 * len(planted.forget)
    assert torch.equal(run.task.forget.index, run.expansion.expanded)
    assert run.result.model is not planted.original.model
    without = expand_then_unlearn(without_test_set(planted.original), method, None, planted.forget, None,
                                  budget=Budget(steps=2))
    assert torch.equal(without.task.forget.index, planted.forget), "no policy: S_f alone"
