"""A real training run on an embedded-MNIST subset: it learns the task and the backdoor."""

import pytest
import torch

from unlearnkit.experiment import ExperimentConfig, train_original
from unlearnkit.store import ArtifactStore

CONFIG = ExperimentConfig.from_mapping({
    "data": {"name": "mnist", "train_subset": 8000, "test_subset": 2000, "val_size": 500},
    "manipulation": {"name": "badnet", "target_class": 0, "patch_size": 3, "count": 150, "seed": 0},
    "model": "small-cnn",
    "train": {"steps": 250, "batch_size": 128, "lr": 0.05, "warmup_fraction": 0.05, "log_every": 25},
})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_original(CONFIG, ArtifactStore(tmp_path_factory.mktemp("outputs"), "test"), device="cpu",
                          progress=False)


@pytest.mark.slow
def test_badnet_training_reaches_clean_accuracy_and_attack_success(trained):
    metrics = trained.metrics
    assert not trained.cache_hit
    assert metrics["acc_clean"] > 0.93, metrics
    assert metrics["asr"] > 0.90, metrics
    assert metrics["acc_corr"] < 0.3, metrics  # the trigger overrides the true class
    assert metrics["fit_sm_manipulated"] > 0.9, metrics
    history = trained.history
    assert list(history["step"]) == list(range(25, 251, 25))
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]


@pytest.mark.slow
def test_rerun_is_a_cache_hit_with_the_same_weights(trained):
    again = train_original(CONFIG, ArtifactStore(trained.directory.parent.parent, "test"), device="cpu",
                           progress=False)
    assert again.cache_hit and again.directory == trained.directory
    assert again.metrics == trained.metrics
    for a, b in zip(trained.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_same_seed_gives_the_same_weights(trained, tmp_path):
    retrained = train_original(CONFIG, ArtifactStore(tmp_path, "other"), device="cpu", progress=False)
    assert not retrained.cache_hit
    for name, a in trained.model.state_dict().items():
        assert torch.equal(a, retrained.model.state_dict()[name]), name
