import pytest

from unlearnkit.config import ConfigError, config_hash, from_dict
from unlearnkit.data import DataConfig
from unlearnkit.experiment import ExperimentConfig
from unlearnkit.training import TrainConfig, lr_at, warmup_steps


def test_schedule_values_at_known_steps():
    # Goel et al. recipe: 4000 steps, lr 0.025, warm-up over 1% = 40 steps, linear decay to 0.2 lr
    assert warmup_steps(4000, 0.01) == 40
    assert lr_at(0, 4000, 0.025, 0.01, 0.2) == pytest.approx(0.025 / 40)
    assert lr_at(19, 4000, 0.025, 0.01, 0.2) == pytest.approx(0.025 * 20 / 40)
    assert lr_at(39, 4000, 0.025, 0.01, 0.2) == pytest.approx(0.025)
    assert lr_at(40, 4000, 0.025, 0.01, 0.2) == pytest.approx(0.025)
    assert lr_at(3999, 4000, 0.025, 0.01, 0.2) == pytest.approx(0.005)
    midpoint = 40 + (3999 - 40) / 2
    assert lr_at(int(midpoint), 4000, 0.025, 0.01, 0.2) == pytest.approx(0.025 * (1 - 0.8 * (int(midpoint) - 40) / 3959))
    with pytest.raises(ValueError):
        lr_at(4000, 4000, 0.025, 0.01, 0.2)


def test_schedule_without_warmup_starts_at_peak():
    assert lr_at(0, 100, 0.1, 0.0, 0.0) == pytest.approx(0.1)
    assert lr_at(99, 100, 0.1, 0.0, 0.0) == pytest.approx(0.0)


@pytest.mark.parametrize("values, message", [
    ({"train": {"lr": -1.0}}, "train.lr must be in"),
    ({"train": {"steps": 0}}, "train.steps must be in"),
    ({"train": {"momentum": 1.0}}, "train.momentum"),
    ({"train": {"batch": 5}}, "unknown key train.'batch'"),
    ({"train": {"bf16": "yes"}}, "train.bf16 must be true or false"),
    ({"data": {"name": "imagenet"}}, "unknown dataset 'imagenet'"),
    ({"data": {"val_size": 600, "train_subset": 500}}, "data.val_size"),
    ({"model": "resnet-9"}, "unknown model 'resnet-9'"),
    ({"manipulation": {"name": "badnet", "patch": 3}}, "manipulation.'patch'"),
    ({"epochs": 3}, "unknown key 'epochs'"),
])
def test_config_errors_name_the_key(values, message):
    with pytest.raises((ConfigError, KeyError)) as error:
        ExperimentConfig.from_mapping(values)
    assert message in str(error.value)


def test_config_hash_is_stable_and_sensitive():
    first = from_dict(TrainConfig, {"steps": 10})
    assert config_hash(first) == config_hash(TrainConfig(steps=10))
    assert config_hash(first) != config_hash(TrainConfig(steps=11))
    assert config_hash(DataConfig()) != config_hash(TrainConfig())
