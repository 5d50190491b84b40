"""The ``similar`` family: its parameters, its tables, and ``unlearnkit run`` end to end."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from unlearnkit.cli import main
from unlearnkit.config import ConfigError
from unlearnkit.series.execute import run_series
from unlearnkit.series.families import load_parameter_file
from unlearnkit.series.similar import SimilarParameters
from unlearnkit.series.similar_tables import recovery_overview, recovery_table

ROOT = Path(__file__).resolve().parents[1]


def write_yaml(path: Path, values: dict) -> Path:
    path.write_text(yaml.safe_dump({"series": "similar", **values}))
    return path


@pytest.mark.parametrize("values, message", [
    ({"scorers": {"nearest": {}}}, "unknown expansion scorer 'nearest'"),
    ({"scorers": {"features": {"k": 0}}}, "scorers.features.k must be in"),
    ({"scorers": {}}, "at least one expansion scorer"),
    ({"expansion_sizes": [{"multiple": 1.0, "count": 2}]}, "expansion_sizes\\[0\\].*exactly one"),
    ({"expansion_sizes": [{"multiple": 2.0}, {"multiple": 2.0}]}, "repeated sizes"),
    ({"expansion_sizes": [{"muliple": 2.0}]}, "expansion_sizes\\[0\\].*muliple"),
    ({"expand_with": ["gradient"], "scorers": {"features": {}}}, "expand_with names 'gradient'"),
    ({"recovery_fraction": 0.0}, "recovery_fraction must be in"),
    ({"manipulations": [{"name": "near_duplicates", "copies": 0}]}, "manipulations\\[0\\].*copies"),
    ({"importance_alpha": 0.5}, "unknown parameter 'importance_alpha': no notebook of the series 'similar'"),
])
def test_bad_similar_parameters_fail_before_any_compute_naming_the_key(tmp_path, capsys, values, message):
    path = write_yaml(tmp_path / "bad.yaml", {"run_name": "bad", **values})
    with pytest.raises(ConfigError, match=message):
        load_parameter_file(path)
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 2
    assert not out.exists(), "nothing may be computed or written"


def test_unlearning_policies_are_none_then_each_expansion():
    params = SimilarParameters(scorers={"features": {"k": 3}, "random": {}}, expand_with=["features"],
                               expansion_sizes=[{"multiple": 1.0}, {"count": 7}])
    policies = params.unlearning_policies()
    assert policies[0] is None and [p.label for p in policies[1:]] == ["features +1x|S_f|", "features +7"]
    assert policies[1].params.k == 3
    assert len(params.policies()) == 4
    assert SimilarParameters(expand_with=[]).unlearning_policies() == [None]


def test_recovery_alpha_is_where_acc_corr_stays_above_the_threshold():
    results = pd.DataFrame({
        "manipulation": "badnet", "seed": 0, "method": "rewod", "selected": True,
        "expansion": ["none"] * 4 + ["features +2x|S_f|"] * 4 + ["never"] * 4,
        "alpha": [0.2, 0.4, 0.6, 1.0] * 3,
        "acc_corr": [0.5, 0.95, 0.6, 0.95,    0.5, 0.92, 0.95, 0.99,    0.1, 0.2, 0.3, 0.8],
    })
    references = pd.DataFrame({"manipulation": ["badnet"], "seed": [0], "acc_corr": [1.0]})
    table = recovery_table(results, references, fraction=0.9).set_index("expansion")
    assert table.loc["none", "recovery_alpha"] == 1.0, "a dip at 0.6 means 0.4 did not stay corrected"
    assert table.loc["features +2x|S_f|", "recovery_alpha"] == 0.4
    assert math.isnan(table.loc["never", "recovery_alpha"])
    assert table.loc["none", "threshold"] == pytest.approx(0.9)
    overview = recovery_overview(table.reset_index())
    assert overview.loc[("badnet", "rewod"), "never"] == "never"
    assert overview.loc[("badnet", "rewod"), "features +2x|S_f|"] == "0.4"
    empty = recovery_table(results.assign(acc_corr=float("nan")), references)
    assert empty.empty and "recovery_alpha" in empty.columns


@pytest.mark.slow
def test_unlearnkit_run_executes_the_similar_family(tmp_path):
    """A shrunk run of the family: near-duplicates of BadNet poisons, one scorer, RewoD and CF."""
    path = write_yaml(tmp_path / "tiny.yaml", {
        "run_name": "tiny", "train_subset": 1200, "val_size": 200, "test_subset": 300, "export_png": False,
        "progress": False,
        "manipulations": [{"name": "near_duplicates", "base": {"name": "badnet", "fraction": 0.05}, "copies": 2}],
        "alphas": [0.5, 1.0], "train": {"steps": 40, "batch_size": 64, "lr": 0.05},
        "methods": {"rewod": {}, "cf": {}}, "budget_steps": 5,
        "scorers": {"features": {}, "random": {}}, "expansion_sizes": [{"multiple": 2.0}], "expand_with": ["features"],
    })
    out = tmp_path / "out" / "tiny"
    first = run_series(path, out=out, progress=False)
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 2 * 2 * 2 == len(first.results)
    assert {"expansion_precision", "expansion_recall", "influence_remaining", "mia_auc"} <= set(results.columns)
    grown = results[results["expansion"] == "features +2x|S_f|"]
    assert (grown["n_added"] == 2 * grown["n_forget"]).all()
    assert grown["expansion_precision"].between(0, 1).all()
    expansion = pd.read_csv(out / "expansion.csv")
    assert len(expansion) == 2 * 2 and set(expansion["scorer"]) == {"features", "random"}
    assert "alpha from which Acc_corr stays" in first.summary()
    assert (out / "notebooks" / "10_similar_samples.ipynb").is_file()
    second = run_series(path, out=out, progress=False)
    assert second.built == 0 and second.reused == first.built
    pd.testing.assert_frame_equal(first.results, second.results)


def test_the_shipped_similar_sets_use_the_family():
    quick, _ = load_parameter_file(ROOT / "parameters" / "similar-quick.yaml")
    assert isinstance(quick, SimilarParameters) and quick.dataset == "mnist" and quick.data_root is None
    gpu, _ = load_parameter_file(ROOT / "parameters" / "similar-cifar10.yaml")
    assert gpu.dataset == "cifar10" and gpu.model == "resnet9" and gpu.train_config().steps == 4000
    assert len(gpu.alphas) == 10
