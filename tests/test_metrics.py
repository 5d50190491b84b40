import math

import pytest
import torch

from unlearnkit.data import ImageSet
from unlearnkit.data.pipeline import TrainingSet
from unlearnkit.manipulations.base import Manipulated
from unlearnkit.metrics import Predictions, acc_corr, acc_retain, accuracy, attack_success_rate, corrective_metrics

T = torch.tensor


def test_accuracy_and_domain_metrics_on_hand_made_predictions():
    assert accuracy(T([0, 1, 2, 3]), T([0, 1, 0, 0])) == 0.5
    assert math.isnan(accuracy(T([], dtype=torch.int64), T([], dtype=torch.int64)))
    assert acc_corr(T([3, 5, 5, 3]), T([3, 5, 3, 3])) == 0.75
    labels, predictions = T([0, 1, 2, 3, 4]), T([0, 1, 9, 9, 4])
    assert acc_retain(predictions, labels, T([True, False, True, False, True])) == pytest.approx(2 / 3)
    # ASR counts only non-target classes: the two target-class images are ignored
    triggered, clean = T([0, 0, 0, 1, 0, 2]), T([0, 0, 1, 1, 2, 3])
    assert attack_success_rate(triggered, clean, target_class=0) == 0.5
    with pytest.raises(ValueError):
        accuracy(T([1, 2]), T([1]))


def test_corrective_metrics_split_sm_into_forget_and_rest(tiny_splits):
    splits = tiny_splits
    clean = splits.train.labels
    manipulated_positions = T([0, 1, 2, 3, 4, 5])
    labels = clean.clone()
    labels[manipulated_positions] = 0
    manipulated = Manipulated(
        name="hand", train=TrainingSet(splits.train.images, labels, torch.arange(200)),
        clean_train_labels=clean, manipulated=manipulated_positions,
        affected_test=ImageSet(splits.test.images, splits.test.labels),
        retain_test_mask=splits.test.labels != 3, target_class=0,
    )
    # clean labels of positions 0..5 are 0,1,2,3,0,1
    predictions = Predictions(
        test=splits.test.labels.clone(),
        affected=torch.zeros(40, dtype=torch.int64),
        manipulated_train=T([0, 1, 0, 0, 0, 1]),
    )
    row = corrective_metrics(predictions, splits, manipulated, forget=T([1, 2, 3]))
    assert row["acc_clean"] == 1.0 and row["acc_retain"] == 1.0
    assert row["acc_corr"] == pytest.approx(10 / 40)
    assert row["asr"] == 1.0
    assert row["acc_sm_clean"] == pytest.approx(4 / 6)
    assert row["acc_sf_clean"] == pytest.approx(1 / 3)  # positions 1,2,3 -> preds 1,0,0 vs 1,2,3
    assert row["acc_sm_minus_sf_clean"] == 1.0  # positions 0,4,5 -> 0,0,1 vs 0,0,1
    assert row["fit_sm_manipulated"] == pytest.approx(4 / 6)
    assert row["fit_sf_manipulated"] == pytest.approx(2 / 3)
