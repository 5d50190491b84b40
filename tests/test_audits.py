"""Audits: detection rates, loss-threshold membership inference, the Gaussian Unlearning Score, and the
Gaussian poisoning they audit."""

from __future__ import annotations

import math

import pytest
import torch

from unlearnkit.audits import (
    GaussianUnlearningScore,
    MembershipInference,
    audit_model,
    gaussian_unlearning_score,
    input_gradients,
    roc_auc,
    tpr_at_fpr,
    two_sided_p_value,
    unlearning_scores,
)
from unlearnkit.config import ConfigError
from unlearnkit.manipulations import GaussianPoisoning, build_manipulation
from unlearnkit.manipulations.gaussian import gaussian_noise, stream_seed
from unlearnkit.metrics import Predictions
from unlearnkit.models import build_model

T = torch.tensor


# Detection rates on hand-made scores -----------------------------------------------------------------

def test_tpr_at_fpr_flags_at_most_the_allowed_negatives():
    negatives = torch.arange(100.0)  # 0 ... 99
    # 1% of 100 negatives: one may lie above the threshold, so the threshold is 98 (flag > 98)
    assert tpr_at_fpr(T([98.5, 99.5, 10.0, 98.0]), negatives, 0.01) == 0.5
    # 5%: five negatives above, threshold 94
    assert tpr_at_fpr(T([94.0, 94.5, 95.0, 0.0]), negatives, 0.05) == 0.5
    # fewer negatives than 1/fpr: nothing may be flagged, the threshold is the largest negative
    assert tpr_at_fpr(T([99.0, 99.5]), negatives[:50], 0.01) == 1.0
    assert tpr_at_fpr(T([49.0, 48.0]), negatives[:50], 0.01) == 0.0
    assert tpr_at_fpr(T([-5.0]), negatives, 1.0) == 1.0
    assert math.isnan(tpr_at_fpr(T([]), negatives))
    with pytest.raises(ValueError, match="fpr"):
        tpr_at_fpr(T([1.0]), negatives, 1.5)


def test_tpr_at_fpr_never_flags_more_than_fpr_of_the_negatives_with_ties():
    negatives = torch.cat([torch.zeros(95), torch.ones(5)])
    # the 2nd largest negative is 1: flagging scores > 1 flags no negative (ties at the threshold)
    assert tpr_at_fpr(T([1.0, 1.5]), negatives, 0.01) == 0.5


def test_roc_auc_is_the_probability_a_positive_outranks_a_negative_with_half_ties():
    assert roc_auc(T([3.0, 4.0]), T([1.0, 2.0])) == 1.0
    assert roc_auc(T([1.0, 2.0]), T([3.0, 4.0])) == 0.0
    # pairs: (2 vs 1) win, (2 vs 2) tie, (2 vs 3) loss, (0 vs all) loss -> (1 + 0.5) / 6
    assert roc_auc(T([2.0, 0.0]), T([1.0, 2.0, 3.0])) == pytest.approx(1.5 / 6)
    assert roc_auc(torch.ones(4), torch.ones(7)) == 0.5
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(300, generator=generator) + 0.5, torch.randn(200, generator=generator)
    brute = ((a[:, None] > b[None]).double() + 0.5 * (a[:, None] == b[None]).double()).mean().item()
    assert roc_auc(a, b) == pytest.approx(brute)


def test_loss_threshold_mia_on_hand_made_losses():
    nonmembers = torch.linspace(0.5, 5.0, 200)  # unseen points: losses 0.5 ... 5
    members = torch.cat([torch.full((30,), 0.01), torch.linspace(0.6, 5.0, 70)])  # 30 memorised
    mia = MembershipInference(members, nonmembers)
    # 1% of 200 non-members may be flagged: the two lowest losses; only members below them count
    assert mia.tpr_at_fpr(0.01) == pytest.approx(0.30)
    assert mia.summary()["mia_tpr_at_1pct_fpr"] == pytest.approx(0.30)
    assert 0.6 < mia.auc < 0.7
    same = MembershipInference(nonmembers[::2].clone(), nonmembers[1::2].clone())
    assert same.tpr_at_fpr(0.01) <= 0.02 and abs(same.auc - 0.5) < 0.01
    swapped = MembershipInference(nonmembers + 10, nonmembers)  # members worse than unseen: no membership
    assert swapped.tpr_at_fpr(0.01) == 0.0 and swapped.auc == 0.0


# The Gaussian Unlearning Score ------------------------------------------------------------------------

def test_scores_follow_the_formula_and_the_p_value_is_the_two_sided_z_test():
    gradients = T([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]])
    noise = T([[0.5, 0.5], [1.0, 1.0], [-0.2, 7.0]])
    scores = unlearning_scores(gradients, noise, eps=0.5)
    assert scores.tolist() == pytest.approx([(1.5 + 2.0) / (0.5 * 5.0), 0.0, -0.2 / 0.5])
    assert two_sided_p_value(torch.full((100,), 0.196)) == pytest.approx(0.05, abs=1e-3)
    assert two_sided_p_value(torch.full((100,), -0.196)) == pytest.approx(0.05, abs=1e-3)
    assert two_sided_p_value(torch.zeros(9)) == 1.0


def test_subset_keeps_each_poisons_own_controls():
    score = GaussianUnlearningScore(T([1.0, 2.0, 3.0]), T([10.0, 20.0, 30.0, 11.0, 21.0, 31.0]))
    part = score.subset(T([True, False, True]))
    assert part.scores.tolist() == [1.0, 3.0] and part.control_scores.tolist() == [10.0, 30.0, 11.0, 31.0]


@pytest.fixture(scope="module")
def noised_mnist(mnist_small):
    """2000 MNIST training images with their Gaussian noise (eps = 0.3)."""
    poisoning = GaussianPoisoning(eps=0.3, count=2000, seed=5)
    return mnist_small, poisoning.apply(mnist_small), poisoning


def test_gus_under_the_null_is_standard_normal(noised_mnist):
    """A model that never saw the noise gives I_z ~ N(0, 1) over 2000 poisons, and so do the controls."""
    splits, manipulated, poisoning = noised_mnist
    model = build_model("small-cnn", 10, 1, seed=0)  # trained on nothing: independent of the noise
    positions = manipulated.manipulated
    clean = splits.train.images[positions].float() / 255
    gus = gaussian_unlearning_score(model, clean, splits.train.labels[positions], manipulated.noise,
                                    poisoning.eps, splits.info, control_seed=1)
    assert len(gus.scores) == 2000 and len(gus.control_scores) == 10 * 2000
    assert abs(gus.mean) < 0.15 and 0.85 < gus.std < 1.15
    assert abs(gus.control_scores.mean().item()) < 0.05 and 0.95 < gus.control_scores.std().item() < 1.05
    assert gus.p_value > 0.001 and abs(gus.auc - 0.5) < 0.05 and gus.tpr_at_fpr(0.01) < 0.03


@pytest.mark.slow
def test_gus_of_a_model_trained_on_the_poisons_is_clearly_shifted(mnist_small):
    """The MLP trained on 1000 MNIST images of which 200 carry noise (eps = 0.3) memorises the noise:
    I_z of the poisons shifts far below 0, while the same model trained without the noise stays null."""
    from unlearnkit.data import DataSplits
    from unlearnkit.training import TrainConfig, train

    splits = DataSplits(mnist_small.info, mnist_small.train.subset(torch.arange(1000)), mnist_small.val,
                        mnist_small.test)
    poisoning = GaussianPoisoning(eps=0.3, count=200, seed=0)
    manipulated = poisoning.apply(splits)
    recipe = TrainConfig(steps=150, batch_size=64, lr=0.05, warmup_fraction=0.05, bf16=False, channels_last=False)
    positions = manipulated.manipulated
    clean = splits.train.images[positions].float() / 255
    labels = splits.train.labels[positions]

    def score(training_set) -> GaussianUnlearningScore:
        model, _ = train(build_model("mlp", 10, 1, seed=0), training_set, splits.info, recipe, progress=False)
        return gaussian_unlearning_score(model, clean, labels, manipulated.noise, poisoning.eps, splits.info,
                                         control_seed=stream_seed(0, "gaussian-control"))

    poisoned = score(manipulated.train)
    assert poisoned.mean < -1.0 and poisoned.p_value < 1e-10
    assert poisoned.tpr_at_fpr(0.01) > 0.15 and poisoned.auc > 0.7
    without_noise = score(type(manipulated.train)(manipulated.train.images, manipulated.train.labels,
                                                  manipulated.train.index))
    assert abs(without_noise.mean) < 0.25 and without_noise.p_value > 0.001
    assert abs(without_noise.auc - 0.5) < 0.06


def test_input_gradients_are_per_sample_and_batch_size_free(noised_mnist):
    splits, manipulated, _ = noised_mnist
    model = build_model("small-cnn", 10, 1, seed=0)
    x = splits.train.images[:20].float() / 255
    y = splits.train.labels[:20]
    whole = input_gradients(model, x, y, splits.info, batch_size=20)
    chunked = input_gradients(model, x, y, splits.info, batch_size=3)
    alone = input_gradients(model, x[7:8], y[7:8], splits.info)
    assert torch.allclose(whole, chunked, atol=1e-6) and torch.allclose(whole[7:8], alone, atol=1e-6)
    assert model.training, "the model's mode is restored"


# Gaussian poisoning -----------------------------------------------------------------------------------

def test_gaussian_poisoning_adds_exactly_its_noise_and_keeps_labels(tiny_splits):
    manipulated = build_manipulation({"name": "gaussian", "eps": 0.1, "count": 30, "seed": 2}).apply(tiny_splits)
    train, positions = manipulated.train, manipulated.manipulated
    assert len(positions) == 30 and len(positions.unique()) == 30
    assert torch.equal(positions, positions.sort().values)
    assert torch.equal(train.labels, tiny_splits.train.labels), "labels are kept"
    assert manipulated.noise.shape == (30, 3, 8, 8) and manipulated.noise_scale == 0.1
    images01 = train.images.float() / 255
    noised = train.post_augment(images01.clone(), train.index)
    poisoned = torch.zeros(200, dtype=torch.bool)
    poisoned[positions] = True
    assert torch.equal(noised[~poisoned], images01[~poisoned])
    assert torch.allclose(noised[positions] - images01[positions], manipulated.noise, atol=1e-6)
    assert noised[positions].max() > 1 or noised[positions].min() < 0, "no clipping: x + xi exactly"
    assert abs(manipulated.noise.std().item() - 0.1) < 0.01 and abs(manipulated.noise.mean().item()) < 0.01
    assert len(manipulated.affected_test) == 0 and manipulated.retain_test_mask.all()


def test_gaussian_noise_is_rederived_from_the_seed_and_grows_with_k(tiny_splits):
    small = GaussianPoisoning(eps=0.2, count=10, seed=4).apply(tiny_splits)
    again = GaussianPoisoning(eps=0.2, count=10, seed=4).apply(tiny_splits)
    assert torch.equal(small.noise, again.noise) and torch.equal(small.manipulated, again.manipulated)
    drawn = torch.randperm(200, generator=torch.Generator().manual_seed(4))[:10]
    rederived = gaussian_noise((10, 3, 8, 8), 0.2, stream_seed(4, "gaussian-noise"))[drawn.argsort()]
    assert torch.equal(small.noise, rederived)
    larger = GaussianPoisoning(eps=0.2, count=25, seed=4).apply(tiny_splits)
    slot = {int(p): i for i, p in enumerate(larger.manipulated)}
    for i, position in enumerate(small.manipulated.tolist()):
        assert torch.equal(larger.noise[slot[position]], small.noise[i]), "a larger k keeps every point's noise"
    other = GaussianPoisoning(eps=0.2, count=10, seed=5).apply(tiny_splits)
    assert not torch.equal(other.noise, small.noise)
    assert stream_seed(4, "gaussian-noise") != stream_seed(4, "gaussian-control")


@pytest.mark.parametrize("values, message", [
    ({"eps": 0.0}, "manipulation.eps must be in \\(0.0, inf\\]"),
    ({"eps": -0.3}, "manipulation.eps"),
    ({"fraction": 1.5}, "manipulation.fraction"),
    ({"fraction": 0.1, "count": 3}, "only one of 'count' and 'fraction'"),
    ({"count": 0}, "manipulation.count"),
    ({"sigma": 0.3}, "sigma"),
])
def test_bad_gaussian_parameters_are_named_config_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        build_manipulation({"name": "gaussian", **values})


def test_gaussian_count_larger_than_the_training_set_is_a_config_error(tiny_splits):
    with pytest.raises(ConfigError, match="manipulation.count"):
        GaussianPoisoning(count=201).apply(tiny_splits)


# The audit of a model ----------------------------------------------------------------------------------

def test_audit_reuses_predictions_and_splits_forget_from_unidentified(tiny_splits):
    manipulated = GaussianPoisoning(eps=0.2, count=40, seed=1).apply(tiny_splits)
    model = build_model("small-cnn", 4, 3, seed=0).eval()
    forget = manipulated.manipulated[:25]
    fresh = audit_model(model, tiny_splits, manipulated, forget)
    reused = audit_model(model, tiny_splits, manipulated, forget, Predictions.of(model, tiny_splits, manipulated))
    assert fresh.row() == pytest.approx(reused.row())
    assert int(fresh.in_forget.sum()) == 25 and len(fresh.mia.member_losses) == 25
    assert len(fresh.mia.nonmember_losses) == len(tiny_splits.test)
    assert len(fresh.gus_forget.scores) == 25 and len(fresh.gus_unidentified.scores) == 15
    row = fresh.row()
    assert {"mia_tpr_at_1pct_fpr", "mia_auc", "gus_mean", "gus_p_value", "gus_tpr_at_1pct_fpr", "gus_auc",
            "gus_unidentified_mean"} <= set(row)
    restored = type(fresh).from_tensors(fresh.tensors())
    assert restored.row() == pytest.approx(row)
    badnet = build_manipulation({"name": "badnet", "count": 10}).apply(tiny_splits)
    plain = audit_model(model, tiny_splits, badnet).row()
    assert set(plain) == {"mia_tpr_at_1pct_fpr", "mia_auc"}, "GUS only where the manipulation carries noise"
