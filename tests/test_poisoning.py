"""Indiscriminate and targeted poisoning: label flipping, Gradient Canceling, Witches' Brew, and the
cache of crafted attacks."""

from __future__ import annotations

import math

import pytest
import torch

from unlearnkit.config import ConfigError
from unlearnkit.crafting import CLEAN_STAGE, CRAFT_STAGE, clean_training_set, craft
from unlearnkit.data import DataConfig
from unlearnkit.data.pipeline import TrainingSet, predict_logits
from unlearnkit.manipulations import (
    CraftContext,
    GradientCanceling,
    LabelFlip,
    WitchesBrew,
    build_manipulation,
    forget_sets,
)
from unlearnkit.manipulations.gradients import loss_gradient
from unlearnkit.manipulations.witches_brew import gradient_alignment, quantise_within
from unlearnkit.metrics import Predictions, accuracy, corrective_metrics
from unlearnkit.models import build_model
from unlearnkit.store import ArtifactStore
from unlearnkit.training import TrainConfig, train

TINY_RECIPE = TrainConfig(steps=30, batch_size=50, lr=0.05, bf16=False, channels_last=False)


def tiny_context(splits, recipe=TINY_RECIPE, calls=None):
    def clean_model(seed):
        if calls is not None:
            calls.append(seed)
        model = build_model("small-cnn", splits.info.num_classes, splits.info.in_channels, seed)
        train(model, clean_training_set(splits), splits.info, recipe, progress=False)
        return model.eval()

    return CraftContext(splits, "small-cnn", recipe, clean_model, progress=False)


# Label flipping ---------------------------------------------------------------------------------

@pytest.mark.parametrize("append", [True, False])
def test_label_flip_flips_exactly_the_configured_share(tiny_splits, append):
    manipulated = LabelFlip(fraction=0.1, append=append, seed=3).apply(tiny_splits)
    n = round(0.1 * len(tiny_splits.train))
    positions = manipulated.manipulated
    assert len(positions) == n == len(positions.unique())
    train_labels = manipulated.train.labels
    assert (train_labels[positions] != manipulated.clean_train_labels[positions]).all(), "every chosen label changes"
    others = torch.ones(len(manipulated.train), dtype=torch.bool)
    others[positions] = False
    assert torch.equal(train_labels[others], manipulated.clean_train_labels[others]), "no other label changes"
    clean_sources = manipulated.source_positions(positions)
    assert torch.equal(manipulated.clean_train_labels[positions], tiny_splits.train.labels[clean_sources])
    assert torch.equal(manipulated.train.images[positions], tiny_splits.train.images[clean_sources]), "pixels kept"
    assert len(manipulated.train) == len(tiny_splits.train) + (n if append else 0)
    assert len(manipulated.affected_test) == len(tiny_splits.test), "indiscriminate: D_m is the whole test set"
    flipped_to = train_labels[positions] - manipulated.clean_train_labels[positions]
    assert len((flipped_to % 4).unique()) > 1, "the wrong label is drawn, not a fixed shift"


def test_label_flip_is_seeded(tiny_splits):
    first, again = (LabelFlip(count=30, seed=1).apply(tiny_splits) for _ in range(2))
    other = LabelFlip(count=30, seed=2).apply(tiny_splits)
    assert torch.equal(first.train.labels, again.train.labels) and torch.equal(first.source, again.source)
    assert not torch.equal(first.source, other.source)


# Bad parameters ---------------------------------------------------------------------------------

@pytest.mark.parametrize("values, message", [
    ({"name": "gradient-canceling", "fraction": 0.0}, "manipulation.fraction must be in \\(0.0, 1.0\\]"),
    ({"name": "gradient-canceling", "fraction": -0.1}, "manipulation.fraction"),
    ({"name": "gradient-canceling", "count": 0}, "manipulation.count"),
    ({"name": "gradient-canceling", "target_accuracy": 1.0}, "manipulation.target_accuracy"),
    ({"name": "gradient-canceling", "lr": 0.0}, "manipulation.lr"),
    ({"name": "label-flip", "fraction": 1.5}, "manipulation.fraction"),
    ({"name": "witches-brew", "budget": 1.5}, "manipulation.budget must be in \\(0.0, 1.0\\]"),
    ({"name": "witches-brew", "budget": 0.0}, "manipulation.budget"),
    ({"name": "witches-brew", "eps": 0.0}, "manipulation.eps"),
    ({"name": "witches-brew", "eps": 0.5 / 255}, "manipulation.eps must allow at least one grey level"),
    ({"name": "witches-brew", "adversarial_class": -1}, "manipulation.adversarial_class"),
    ({"name": "witches-brew", "adversarial_class": 2, "target_class": 2}, "must differ"),
    ({"name": "witches-brew", "restarts": 0}, "manipulation.restarts"),
    ({"name": "witches-brew", "targets": 0}, "manipulation.targets"),
])
def test_bad_parameters_are_named_config_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        build_manipulation(values)


@pytest.mark.parametrize("manipulation, message", [
    (WitchesBrew(adversarial_class=4), "manipulation.adversarial_class must be a class in \\[0, 3\\], got 4"),
    (WitchesBrew(adversarial_class=1, target_class=7), "manipulation.target_class must be a class in \\[0, 3\\]"),
    (WitchesBrew(adversarial_class=1, budget=0.5), "asks for 100 training images of class 1.*only 50"),
    (WitchesBrew(adversarial_class=1, target_class=0, targets=11), "targets=11.*only 10"),
    (GradientCanceling(count=500), "manipulation.count must be in \\[1, 200\\]"),
])
def test_data_dependent_errors_come_before_any_training(tiny_splits, manipulation, message):
    calls = []
    with pytest.raises(ConfigError, match=message):
        manipulation.craft(tiny_context(tiny_splits, calls=calls))
    assert calls == [], "no surrogate may be trained before the parameters are checked"


# Witches' Brew ----------------------------------------------------------------------------------

def test_quantised_poisons_stay_in_the_ball_and_the_pixel_range():
    clean = torch.tensor([0, 3, 128, 250, 255, 100], dtype=torch.uint8)
    wanted = torch.tensor([-0.5, 0.5, 0.9, 1.2, 1.0, 100 / 255 + 16 / 255 + 1e-4])
    poisoned = quantise_within(clean, wanted, 16 / 255)
    assert poisoned.tolist() == [0, 19, 144, 255, 255, 116]


@pytest.mark.slow
def test_gradient_matching_raises_alignment_respects_the_bound_and_keeps_labels(mnist_small):
    splits = small_mnist(mnist_small)
    brew = WitchesBrew(adversarial_class=8, target_class=3, targets=2, budget=0.02, restarts=2, steps=30, seed=0)
    crafted = brew.craft(tiny_context(splits, TrainConfig(steps=40, batch_size=64, lr=0.05, bf16=False)))
    summary = crafted.summary
    # A barely trained surrogate already aligns "predict class 8" gradients well; brewing must remove a
    # good share of what misalignment is left (1 - cos), in float and in the stored uint8 poisons.
    assert 1 - summary["alignment_after"] < 0.7 * (1 - summary["alignment_before"]), summary
    assert 1 - summary["alignment_stored"] < 0.7 * (1 - summary["alignment_before"]), "uint8 keeps the alignment"
    assert summary["alignment_after"] == max(summary["alignment_restarts"]), "the best restart is kept"

    manipulated = brew.apply(splits, crafted)
    positions = manipulated.manipulated
    assert len(positions) == round(0.02 * len(splits.train))
    clean = manipulated.clean_pixels(splits, positions).int()
    poisoned = manipulated.train.images[positions].int()
    assert (poisoned - clean).abs().max().item() <= 16, "l_inf bound of 16/255, exactly, in stored grey levels"
    assert (poisoned != clean).float().mean() > 0.2, "the perturbation uses the budget"
    assert torch.equal(manipulated.train.labels, splits.train.labels), "clean-label: no label changes"
    assert (splits.train.labels[positions] == 8).all(), "only images of the adversarial class are poisoned"
    untouched = torch.ones(len(splits.train), dtype=torch.bool)
    untouched[positions] = False
    assert torch.equal(manipulated.train.images[untouched], splits.train.images[untouched])
    assert (manipulated.affected_test.labels == 3).all() and len(manipulated.affected_test) == 2
    assert (manipulated.adversarial_labels == 8).all()
    assert int((~manipulated.retain_test_mask).sum()) == 2


def test_gradient_alignment_is_the_cosine_of_summed_gradients(tiny_splits):
    model = build_model("small-cnn", 4, 3, 0).eval()
    images = tiny_splits.train.images[:6].float() / 255
    labels = tiny_splits.train.labels[:6]
    summed = loss_gradient(model, images, labels, tiny_splits.info, scale=6)
    assert gradient_alignment(model, summed, images, labels, tiny_splits.info, batch_size=4) == pytest.approx(1.0)
    negated = [-g for g in summed]
    assert gradient_alignment(model, negated, images, labels, tiny_splits.info, batch_size=4) == pytest.approx(-1.0)


def test_poison_success_is_measured_on_every_row_and_nan_without_targets(tiny_splits):
    brew = WitchesBrew(adversarial_class=1, target_class=0, targets=4, budget=0.05)
    adversarial, targets, positions = brew.selection(tiny_splits)
    from unlearnkit.manipulations import Crafted

    crafted = Crafted({"positions": positions, "poisons": tiny_splits.train.images[positions], "targets": targets,
                       "adversarial_labels": torch.full((4,), adversarial)})
    manipulated = brew.apply(tiny_splits, crafted)
    test_predictions = tiny_splits.test.labels.clone()
    affected = torch.tensor([1, 1, 0, 2])
    predictions = Predictions(test_predictions, affected, manipulated.train.labels[manipulated.manipulated])
    row = corrective_metrics(predictions, tiny_splits, manipulated)
    assert row["poison_success"] == 0.5 and row["acc_corr"] == 0.25
    flipped = LabelFlip(count=10).apply(tiny_splits)
    other = corrective_metrics(Predictions(test_predictions, test_predictions, flipped.train.labels[flipped.manipulated]),
                               tiny_splits, flipped)
    assert math.isnan(other["poison_success"]) and other["acc_corr"] == other["acc_clean"] == 1.0


# Gradient Canceling -----------------------------------------------------------------------------

def small_mnist(mnist_small, size: int = 1000):
    from unlearnkit.data import DataSplits

    return DataSplits(mnist_small.info, mnist_small.train.subset(torch.arange(size)), mnist_small.val,
                      mnist_small.test.subset(torch.arange(500)))


GC_RECIPE = TrainConfig(steps=100, batch_size=64, lr=0.05, bf16=False, channels_last=False)
GC_ATTACK = GradientCanceling(fraction=0.1, target_accuracy=0.5, corruption_step=0.01, steps=40, lr=0.05, seed=1)


@pytest.fixture(scope="module")
def gc_crafted(mnist_small):
    """Gradient Canceling crafted once for this module on 1000 MNIST images (the surrogate: attack seed 1)."""
    splits = small_mnist(mnist_small)
    return splits, GC_ATTACK.craft(tiny_context(splits, GC_RECIPE))


@pytest.mark.slow
def test_gradient_canceling_lowers_the_gradient_norm_it_minimises(gc_crafted):
    splits, crafted = gc_crafted
    summary = crafted.summary
    assert summary["target_train_accuracy"] <= 0.5
    assert summary["gradient_norm_stored"] < 0.9 * summary["gradient_norm_before"], summary
    assert summary["gradient_norm_after"] <= min(summary["gradient_norm_history"]) + 1e-6
    poisons = crafted.tensors["poisons"]
    assert poisons.dtype == torch.uint8 and len(poisons) == 100
    manipulated = GC_ATTACK.apply(splits, crafted)
    assert len(manipulated.train) == 1100 and torch.equal(manipulated.manipulated, torch.arange(1000, 1100))
    sources = crafted.tensors["sources"]
    assert (manipulated.train.labels[1000:] != splits.train.labels[sources]).all(), "label-flipped start"
    assert torch.equal(manipulated.clean_train_labels[1000:], splits.train.labels[sources]), "clean = the sources'"
    assert torch.equal(manipulated.source_positions(manipulated.manipulated), sources)
    assert not torch.equal(poisons, splits.train.images[sources]), "the inputs were optimised"
    retain = forget_sets(manipulated.manipulated, [1.0], 0)[1.0]
    assert torch.equal(manipulated.train.without(retain).images, splits.train.images), "alpha=1 leaves D_clean"


@pytest.mark.slow
def test_gradient_canceling_lowers_clean_accuracy_against_the_same_model_trained_clean(gc_crafted):
    """The victim (model seed 0, batch order seed 0: not the surrogate's) trained on D_clean u D_p against the
    very same model and recipe on D_clean alone. The crafting's starting point, unoptimised copies of the
    sources with the same flipped labels (the label-flipping baseline), is the control: the optimised
    pixels must cost clearly more accuracy than the flipped labels alone."""
    splits, crafted = gc_crafted
    manipulated = GC_ATTACK.apply(splits, crafted)
    sources = crafted.tensors["sources"]
    copies = TrainingSet(torch.cat([splits.train.images, splits.train.images[sources]]),
                         manipulated.train.labels, manipulated.train.index)

    def test_accuracy(training_set):
        model = build_model("small-cnn", splits.info.num_classes, splits.info.in_channels, 0)
        train(model, training_set, splits.info, GC_RECIPE, progress=False)
        return accuracy(predict_logits(model.eval(), splits.test, splits.info).argmax(1), splits.test.labels)

    clean, poisoned, control = (test_accuracy(s) for s in (clean_training_set(splits), manipulated.train, copies))
    assert clean > 0.65, ("the clean model learns", clean)
    assert clean - poisoned > 0.04, (clean, poisoned)
    assert control - poisoned > 0.02, (control, poisoned)  # measured: 0.742 clean, 0.708 control, 0.664 GC


# The crafting cache -----------------------------------------------------------------------------

def test_crafting_runs_once_per_key_and_later_uses_hit_the_cache(tmp_path, tiny_splits, monkeypatch):
    calls = []
    original_craft = WitchesBrew.craft

    def counting(self, context):
        calls.append(self)
        return original_craft(self, context)

    monkeypatch.setattr(WitchesBrew, "craft", counting)
    store = ArtifactStore(tmp_path, "cache")
    data = DataConfig(name="mnist", train_subset=200, val_size=20)  # names the data in the key
    brew = WitchesBrew(adversarial_class=1, target_class=0, targets=1, budget=0.05, restarts=1, steps=3)
    first, directory, hit = craft(brew, data, tiny_splits, "small-cnn", TINY_RECIPE, store, progress=False)
    assert not hit and directory.name.startswith(f"{CRAFT_STAGE}-") and len(calls) == 1
    again, directory_again, hit_again = craft(brew, data, tiny_splits, "small-cnn", TINY_RECIPE, store, progress=False)
    assert hit_again and directory_again == directory and len(calls) == 1, "the second use is read from the store"
    for key, tensor in first.tensors.items():
        assert torch.equal(tensor, again.tensors[key])
    assert again.summary == first.summary
    clean_stages = sorted(p.name for p in store.run_dir.iterdir() if p.name.startswith(f"{CLEAN_STAGE}-"))
    assert len(clean_stages) == 1, "the surrogate is a cached clean model"

    # The victim's seed is not part of the key; the attack's settings are, and a new setting reuses the surrogate.
    import dataclasses

    craft(brew, data, tiny_splits, "small-cnn", dataclasses.replace(TINY_RECIPE, seed=5), store, progress=False)
    assert len(calls) == 1
    craft(dataclasses.replace(brew, steps=4), data, tiny_splits, "small-cnn", TINY_RECIPE, store, progress=False)
    assert len(calls) == 2
    assert sorted(p.name for p in store.run_dir.iterdir() if p.name.startswith(f"{CLEAN_STAGE}-")) == clean_stages


def test_crafting_is_deterministic(tmp_path, tiny_splits):
    data = DataConfig(name="mnist", train_subset=200, val_size=20)
    brew = WitchesBrew(adversarial_class=2, target_class=1, targets=1, budget=0.05, restarts=1, steps=3, seed=4)
    runs = [craft(brew, data, tiny_splits, "small-cnn", TINY_RECIPE, ArtifactStore(tmp_path, f"run{i}"),
                  progress=False)[0] for i in range(2)]
    for key in runs[0].tensors:
        assert torch.equal(runs[0].tensors[key], runs[1].tensors[key]), key
