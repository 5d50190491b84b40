"""The reproduce family: its parameter sets, sweep specs that fail before any compute, its summary."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from unlearnkit.cli import main
from unlearnkit.config import ConfigError
from unlearnkit.series import Series
from unlearnkit.series.families import load_parameter_file
from unlearnkit.series.reproduce import ReproduceParameters, reproduce_summary

PARAMETERS = Path(__file__).resolve().parents[1] / "parameters"


def quick_values() -> dict:
    return yaml.safe_load((PARAMETERS / "reproduce-quick.yaml").read_text())


@pytest.mark.parametrize("methods, message", [
    ({"rewod": {}, "forgetful": {}}, r"methods\.forgetful: unknown unlearning method 'forgetful'"),
    ({"scrub": {"alhpa": [0.1, 1.0]}}, r"unknown key methods\.scrub\.'alhpa'.*Did you mean methods\.scrub\.'alpha'"),
    ({"ssd": {"grid": "ssd-goal"}}, r"methods\.ssd\.grid: unknown grid 'ssd-goal'; known: scrub-goel, ssd-goel"),
    ({"ssd": {"selection_weighting": []}}, r"methods\.ssd\.selection_weighting is an empty list"),
    ({"cf": []}, r"methods\.cf is an empty list of settings"),
    ({"ssd": [{"grid": "scrub-goel"}]}, r"methods\.ssd\[0\]\.grid is a grid of 'scrub'"),
    ({}, r"methods must name at least one unlearning method"),
])
def test_a_bad_sweep_spec_fails_before_any_compute_naming_the_problem(tmp_path, capsys, methods, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**quick_values(), "run_name": "bad", "methods": methods}))
    with pytest.raises(ConfigError, match=message):
        load_parameter_file(path)
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 2
    assert "error" in capsys.readouterr().err
    assert not out.exists(), "nothing may be computed or written"


@pytest.mark.parametrize("changes, message", [
    ({"budget_fraction": [0.05, 0.1]}, "compares methods at one budget"),
    ({"restore_share": 0.0}, "restore_share must be in"),
    ({"late_alpha": 1.5}, "late_alpha must be in"),
    ({"retain_band_pp": -1.0}, "retain_band_pp must be in"),
])
def test_reproduction_settings_are_checked(changes, message):
    with pytest.raises(ConfigError, match=message):
        ReproduceParameters.from_mapping(changes)


def test_the_ray_sets_need_ray_and_say_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r"executor 'ray' needs Ray.*pip install unlearnkit\[ray\]"):
        load_parameter_file(PARAMETERS / "reproduce-cifar10.yaml")


def test_the_paper_scale_sets_hold_the_paper_sweep():
    pytest.importorskip("ray")  # they run on the ray executor
    params, _ = load_parameter_file(PARAMETERS / "reproduce-cifar10.yaml")
    assert isinstance(params, ReproduceParameters) and params.executor == "ray"
    assert [m["name"] for m in params.manipulations] == ["badnet", "interclass"]
    assert params.canonical_manipulation(0)["fraction"] == 0.01 and params.canonical_manipulation(1)["fraction"] == 0.1
    assert params.alphas == [round(0.1 * i, 1) for i in range(1, 11)] and params.seeds == [0, 1, 2]
    assert params.model == "resnet9" and params.train_config().steps == 4000 and params.train_config().batch_size == 512
    per_alpha = {name: len(params.method_points(name)) for name in params.methods}
    assert per_alpha == {"rewod": 1, "cf": 1, "badt": 1, "scrub": 8, "ssd": 50}
    assert Series(params).planned_runs() == 2 * 10 * 3 * 61
    cifar100, _ = load_parameter_file(PARAMETERS / "reproduce-cifar100.yaml")
    assert cifar100.model == "wideresnet28-10" and cifar100.train_config().steps == 6000
    assert (cifar100.canonical_manipulation(1)["class_a"], cifar100.canonical_manipulation(1)["class_b"]) == (47, 52)


def test_the_quick_set_is_the_same_experiment_on_the_embedded_data():
    params, _ = load_parameter_file(PARAMETERS / "reproduce-quick.yaml")
    assert params.dataset == "mnist" and params.data_root is None and params.executor == "local"
    assert [m["name"] for m in params.manipulations] == ["badnet", "interclass"]
    assert len(params.seeds) == 3 and min(params.alphas) == 0.1 and 1.0 in params.alphas
    assert set(params.methods) == {"rewod", "cf", "scrub", "badt", "ssd"}


def test_the_summary_prints_every_claim_with_its_verdict(tmp_path):
    originals = pd.DataFrame({"manipulation": ["badnet"], "seed": [0], "acc_clean": [0.9], "acc_corr": [0.1],
                              "acc_retain": [0.9], "asr": [0.95]})
    results = pd.DataFrame({"manipulation": "badnet", "seed": 0, "method": ["rewod", "ssd"], "alpha": [1.0, 1.0],
                            "acc_corr": [0.9, 0.8], "acc_retain": [0.9, 0.85], "selected": True, "run": ["a", "b"],
                            "unlearn_seconds": [10.0, 1.0], "unlearn_steps": [100, 0]})
    claims = pd.DataFrame({"statement": ["RewoD is the most expensive", "SSD never beats M_o"],
                           "verdict": ["holds", "not tested here"]})
    for name, table in (("originals", originals), ("results", results), ("claims", claims)):
        table.to_csv(tmp_path / f"{name}.csv", index=False)
    text = reproduce_summary(tmp_path)
    assert "badnet: M_o acc_clean 0.900" in text
    assert text.endswith("  [holds] RewoD is the most expensive\n  [not tested here] SSD never beats M_o")
