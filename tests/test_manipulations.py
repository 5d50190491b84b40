import pytest
import torch

from unlearnkit.config import ConfigError
from unlearnkit.data.pipeline import prepare
from unlearnkit.manipulations import build_manipulation, forget_sets, forget_size, stamp_trigger


def test_badnet_relabels_exactly_the_drawn_samples(tiny_splits):
    manipulated = build_manipulation({"name": "badnet", "count": 12, "target_class": 2, "seed": 3}).apply(tiny_splits)
    positions = manipulated.manipulated
    assert len(positions) == 12 and len(positions.unique()) == 12
    assert (manipulated.train.labels[positions] == 2).all()
    untouched = torch.ones(200, dtype=torch.bool)
    untouched[positions] = False
    assert torch.equal(manipulated.train.labels[untouched], tiny_splits.train.labels[untouched])
    assert torch.equal(manipulated.clean_train_labels, tiny_splits.train.labels)
    # drawn from the whole training set, not only from non-target classes
    other = build_manipulation({"name": "badnet", "count": 12, "target_class": 2, "seed": 4}).apply(tiny_splits)
    assert not torch.equal(other.manipulated, positions)


def test_badnet_trigger_pixels_exact_after_augmentation(tiny_splits):
    manipulated = build_manipulation({"name": "badnet", "count": 10, "patch_size": 3}).apply(tiny_splits)
    train = manipulated.train
    batch = torch.arange(200)
    images01 = train.images.float() / 255
    stamped = train.post_augment(images01.clone(), train.index[batch])
    poisoned = torch.zeros(200, dtype=torch.bool)
    poisoned[manipulated.manipulated] = True
    # every channel of the bottom-right 3x3 patch is white on poisoned samples only
    assert (stamped[poisoned][:, :, -3:, -3:] == 1.0).all()
    assert torch.equal(stamped[~poisoned], images01[~poisoned])
    assert torch.equal(stamped[poisoned][:, :, :-3, :], images01[poisoned][:, :, :-3, :])
    assert torch.equal(stamped[poisoned][:, :, :, :-3], images01[poisoned][:, :, :, :-3])
    # the pipeline stamps after augmentation: even a shifted image has the patch in place
    shifted = torch.roll(train.images[manipulated.manipulated], shifts=(2, 2), dims=(2, 3))
    prepared = prepare(shifted, manipulated.manipulated, tiny_splits.info, train.post_augment, channels_last=False)
    white = (1.0 - 0.5) / 0.25
    assert torch.allclose(prepared[:, :, -3:, -3:], torch.full_like(prepared[:, :, -3:, -3:], white))


def test_badnet_test_domain_is_triggered_test_set(tiny_splits):
    manipulated = build_manipulation({"name": "badnet", "count": 10, "patch_size": 2}).apply(tiny_splits)
    affected = manipulated.affected_test
    assert torch.equal(affected.labels, tiny_splits.test.labels)
    assert (affected.images[:, :, -2:, -2:] == 255).all()
    assert torch.equal(affected.images[:, :, :-2, :], tiny_splits.test.images[:, :, :-2, :])
    assert manipulated.retain_test_mask.all() and manipulated.target_class == 0
    assert torch.equal(stamp_trigger(tiny_splits.test.images, 2, 255), affected.images)


def test_badnet_trigger_can_be_moved_and_dimmed_identically_in_train_and_test(tiny_splits):
    manipulated = build_manipulation({"name": "badnet", "count": 10, "patch_size": 2, "row": 1, "col": 4,
                                      "value": 0.5}).apply(tiny_splits)
    level = round(0.5 * 255)
    trained, _ = manipulated.as_trained(manipulated.manipulated)
    clean = tiny_splits.train.images[manipulated.manipulated]
    inside = torch.zeros(8, 8, dtype=torch.bool)
    inside[1:3, 4:6] = True
    assert (trained[:, :, inside] == level).all()
    assert torch.equal(trained[:, :, ~inside], clean[:, :, ~inside])
    affected = manipulated.affected_test.images
    assert (affected[:, :, inside] == level).all()
    assert torch.equal(affected[:, :, ~inside], tiny_splits.test.images[:, :, ~inside])
    assert torch.equal(stamp_trigger(tiny_splits.test.images, 2, level, row=1, col=4), affected)


def test_interclass_swaps_half_each_way(tiny_splits):
    manipulated = build_manipulation({"name": "interclass", "class_a": 1, "class_b": 3, "count": 20, "seed": 1}).apply(tiny_splits)
    positions = manipulated.manipulated
    clean, labels = tiny_splits.train.labels, manipulated.train.labels
    assert len(positions) == 20
    assert ((clean[positions] == 1) & (labels[positions] == 3)).sum() == 10
    assert ((clean[positions] == 3) & (labels[positions] == 1)).sum() == 10
    changed = (labels != clean).nonzero().flatten()
    assert torch.equal(changed, positions)
    test_labels = tiny_splits.test.labels
    assert set(manipulated.affected_test.labels.tolist()) == {1, 3}
    assert torch.equal(manipulated.retain_test_mask, (test_labels != 1) & (test_labels != 3))
    assert manipulated.train.post_augment is None and manipulated.target_class is None


def test_interclass_pairs_are_random_not_the_first_indices(tiny_splits):
    first = build_manipulation({"name": "interclass", "class_a": 1, "class_b": 3, "count": 10, "seed": 0}).apply(tiny_splits)
    class_one = (tiny_splits.train.labels == 1).nonzero().flatten()
    assert not torch.equal(first.manipulated[:5], class_one[:5])


def test_fraction_resolves_to_rounded_count(tiny_splits):
    manipulated = build_manipulation({"name": "badnet", "fraction": 0.025}).apply(tiny_splits)
    assert manipulated.n_manipulated == 5


@pytest.mark.parametrize("values, message", [
    ({"name": "badnet", "target_class": 4}, "manipulation.target_class"),
    ({"name": "badnet", "patch_size": 9}, "manipulation.patch_size"),
    ({"name": "badnet", "patch_size": 0}, "manipulation.patch_size"),
    ({"name": "badnet", "count": 201}, "manipulation.count"),
    ({"name": "badnet", "count": 5, "fraction": 0.1}, "only one of 'count' and 'fraction'"),
    ({"name": "badnet", "fraction": 1.5}, "manipulation.fraction"),
    ({"name": "badnet", "trigger": 3}, "unknown key manipulation.'trigger'"),
    ({"name": "badnet", "count": "ten"}, "manipulation.count must be an integer"),
    ({"name": "badnet", "patch_size": 3, "row": 6}, "manipulation.row must be at most 5"),
    ({"name": "badnet", "col": -1}, "manipulation.col"),
    ({"name": "badnet", "value": 1.5}, "manipulation.value"),
    ({"name": "interclass", "class_a": 1, "class_b": 3, "count": 11}, "must be even"),
    ({"name": "interclass", "class_a": 1, "class_b": 3, "count": 102}, "needs 51 samples of class"),
    ({"name": "interclass", "class_a": 2, "class_b": 2}, "must differ"),
    ({"name": "interclass", "class_a": 1, "class_b": 7}, "manipulation.class_b"),
    ({"name": "badnett"}, "Did you mean 'badnet'"),
])
def test_bad_parameters_name_the_parameter(tiny_splits, values, message):
    with pytest.raises((ConfigError, KeyError)) as error:
        build_manipulation(values).apply(tiny_splits)
    assert message in str(error.value)


def test_forget_sets_sizes_nesting_and_seed():
    manipulated = torch.arange(1000, 1050)
    alphas = [round(0.1 * k, 1) for k in range(1, 11)]
    sets = forget_sets(manipulated, alphas, seed=7)
    for alpha in alphas:
        assert len(sets[alpha]) == forget_size(alpha, 50) == round(alpha * 50)
        assert torch.isin(sets[alpha], manipulated).all()
        assert len(sets[alpha].unique()) == len(sets[alpha])
    for smaller, larger in zip(alphas, alphas[1:]):
        assert torch.isin(sets[smaller], sets[larger]).all()
    assert torch.equal(sets[1.0], manipulated)
    again = forget_sets(manipulated, alphas, seed=7)
    assert all(torch.equal(sets[a], again[a]) for a in alphas)
    assert not torch.equal(forget_sets(manipulated, [0.1], seed=8)[0.1], sets[0.1])


def test_forget_size_rounds_halves_up():
    assert forget_size(0.1, 25) == 3  # 2.5 -> 3, not banker's 2
    assert forget_size(0.3, 50) == 15


def test_forget_sets_reject_bad_alpha():
    with pytest.raises(ConfigError, match="alphas must be in"):
        forget_sets(torch.arange(10), [0.0], seed=0)
    with pytest.raises(ConfigError, match="empty forget set"):
        forget_sets(torch.arange(4), [0.1], seed=0)


def test_appended_samples_map_back_to_their_clean_sources(tiny_splits):
    """A manipulation may append crafted copies of clean samples (poisons, near-duplicates) after
    ``splits.train``; ``source`` ties each back to its clean original for ids and clean pixels."""
    from unlearnkit.data.pipeline import TrainingSet
    from unlearnkit.manipulations.base import Manipulated
    from unlearnkit.metrics import evaluate
    from unlearnkit.models import build_model

    train, n = tiny_splits.train, len(tiny_splits.train)
    origins = torch.tensor([7, 7, 42])
    copies = (train.images[origins].int() + 30).clamp(max=255).to(torch.uint8)
    images = torch.cat([train.images, copies])
    labels = torch.cat([train.labels, torch.tensor([1, 1, 2])])
    clean_labels = torch.cat([train.labels, train.labels[origins]])
    source = torch.cat([torch.arange(n), origins])
    appended = Manipulated(
        name="appended", train=TrainingSet(images, labels, torch.arange(n + 3)), clean_train_labels=clean_labels,
        manipulated=torch.arange(n, n + 3), affected_test=tiny_splits.test, retain_test_mask=torch.ones(40, dtype=torch.bool),
        source=source)
    assert torch.equal(appended.sample_ids(tiny_splits, appended.manipulated), train.ids[origins])
    assert torch.equal(appended.clean_pixels(tiny_splits, appended.manipulated), train.images[origins])
    assert torch.equal(appended.as_trained(appended.manipulated)[0], copies)
    model = build_model("small-cnn", 4, 3, seed=0)
    row = evaluate(model, tiny_splits, appended, forget=torch.tensor([n, n + 2]))
    assert 0 <= row["fit_sm_manipulated"] <= 1 and 0 <= row["acc_sf_clean"] <= 1
    with pytest.raises(ValueError, match="clean_train_labels has 200 entries for 203"):
        Manipulated(name="bad", train=appended.train, clean_train_labels=train.labels, manipulated=appended.manipulated,
                    affected_test=tiny_splits.test, retain_test_mask=appended.retain_test_mask)
