"""The gaussian family: parameters, audit tables and verdicts, the budget figure, and ``unlearnkit run``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from unlearnkit.config import ConfigError
from unlearnkit.series import FAMILIES, GaussianParameters
from unlearnkit.series.audit_tables import audit_overview, audit_verdicts, largest_budget_runs, mia_detects
from unlearnkit.series.execute import run_series
from unlearnkit.series.families import load_parameter_file
from unlearnkit.series.figures import budget_share, metric_vs_budget

ROOT = Path(__file__).resolve().parents[1]
PARAMETERS = ROOT / "parameters"


def test_the_paper_scale_set_follows_pawelczyk_et_al():
    params, _ = load_parameter_file(PARAMETERS / "gaussian-cifar10.yaml")
    assert isinstance(params, GaussianParameters)
    assert params.dataset == "cifar10" and params.model == "resnet18" and params.alphas == [1.0]
    assert params.canonical_manipulation(0)["count"] == 750 and params.canonical_manipulation(0)["eps"] > 0
    train = params.train_config()
    epochs = train.steps * train.batch_size / (50000 - params.val_size)
    assert epochs == pytest.approx(100, abs=0.5)
    assert params.budget_fraction == [0.02, 0.04, 0.06, 0.08, 0.1]
    assert params.budgets_for("rewod") == [None] and len(params.budgets_for("cf")) == 5
    quick, _ = load_parameter_file(PARAMETERS / "gaussian-quick.yaml")
    assert quick.dataset == "mnist" and quick.budget_fraction == [0.02, 0.04, 0.06, 0.08, 0.1]


@pytest.mark.parametrize("values, message", [
    ({"significance": 0.0}, "significance must be in \\(0.0, 1.0\\)"),
    ({"significance": 1.0}, "significance"),
    ({"manipulations": [{"name": "gaussian", "eps": 0.0}]}, "manipulations\\[0\\].*manipulation.eps"),
    ({"manipulations": [{"name": "gaussian", "eps": -1.0}]}, "manipulation.eps"),
    ({"budget_fraction": [0.02, -0.1]}, "budget_fraction\\[1\\]"),
    ({"importance_alpha": 0.5}, "unknown parameter 'importance_alpha': no notebook of the series 'gaussian'"),
])
def test_bad_gaussian_parameters_are_named_before_any_compute(tmp_path, values, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"series": "gaussian", "run_name": "bad", **values}))
    with pytest.raises(ConfigError, match=message):
        load_parameter_file(path)


def test_the_gaussian_notebook_declares_the_audit_level_but_not_ssd_importance():
    names = FAMILIES.get("gaussian").notebook_parameter_names("06_gaussian_poisoning")
    assert "significance" in names and "budget_fraction" in names and "importance_alpha" not in names
    assert GaussianParameters().run_name != "smoke", "its own run folder: never mixed with the core smoke run"


# Tables and verdicts on hand-made rows ------------------------------------------------------------------

def hand_made() -> tuple[pd.DataFrame, pd.DataFrame]:
    originals = pd.DataFrame({"manipulation": ["gaussian"], "seed": [0], "n_manipulated": [200], "train_steps": [100],
                              "acc_clean": [0.9], "gus_mean": [-2.0], "gus_p_value": [1e-30],
                              "gus_tpr_at_1pct_fpr": [0.5], "mia_tpr_at_1pct_fpr": [0.2], "mia_auc": [0.9]})
    results = pd.DataFrame({
        "manipulation": "gaussian", "seed": 0, "alpha": 1.0, "n_forget": 200, "selected": True,
        "method": ["rewod", "cf", "cf", "ssd", "ga", "ga"],
        "budget_fraction": [np.nan, 0.02, 0.1, np.nan, 0.1, 0.1],
        "unlearn_steps": [100, 2, 10, 0, 10, 10],
        "acc_clean": [0.91, 0.9, 0.9, 0.88, 0.5, 0.6],
        "gus_mean": [0.05, -1.9, -1.5, -2.0, -1.8, -1.0],
        "gus_p_value": [0.5, 1e-20, 1e-10, 1e-30, 1e-15, 1e-5],
        "gus_tpr_at_1pct_fpr": [0.01, 0.4, 0.3, 0.5, 0.35, 0.2],
        "mia_tpr_at_1pct_fpr": [0.01, 0.15, 0.1, 0.2, 0.005, 0.02],
        "mia_auc": [0.45, 0.88, 0.85, 0.9, 0.3, 0.4],
        "run": list("abcdef"),
    })
    results.loc[5, "selected"] = False
    return results, originals


def test_mia_detection_is_a_binomial_test_against_the_false_positive_rate():
    assert mia_detects(0.05, 200) and not mia_detects(0.015, 200) and not mia_detects(0.0, 200)
    assert not mia_detects(0.05, 20), "1 of 20 flagged is no evidence at 1% FPR"
    assert mia_detects(0.1, 20)
    assert not mia_detects(float("nan"), 200) and not mia_detects(0.5, 0)


def test_verdicts_mark_where_the_mia_says_unlearned_and_gus_does_not():
    results, _ = hand_made()
    verdicts = audit_verdicts(results).set_index("run")
    assert verdicts.loc["a", ["mia_detects", "gus_detects"]].tolist() == [False, False]  # RewoD: both say unlearned
    assert verdicts.loc["b", ["mia_detects", "gus_detects", "mia_misses_gus_detects"]].tolist() == [True, True, False]
    assert verdicts.loc["e", "mia_misses_gus_detects"] and verdicts.loc["f", "mia_misses_gus_detects"]
    assert verdicts["mia_misses_gus_detects"].sum() == 2


def test_overview_puts_the_original_first_and_each_selected_run_at_its_budget():
    results, originals = hand_made()
    overview = audit_overview(results, originals)
    assert overview["method"].tolist() == ["original M_o", "rewod", "cf", "cf", "ssd", "ga"]
    assert overview["budget_share"].tolist()[1:] == [1.0, 0.02, 0.1, 0.0, 0.1]
    assert overview.loc[0, "mia_detects"] and overview.loc[0, "gus_detects"]
    assert overview.set_index("method").loc["ga", "mia_misses_gus_detects"]
    largest = largest_budget_runs(results, originals).set_index("method")
    assert largest.loc["cf", "run"] == "c" and largest.loc["ga", "run"] == "e" and len(largest) == 4


def test_budget_share_is_the_requested_fraction_else_steps_over_training_steps():
    results, originals = hand_made()
    assert budget_share(results, originals).tolist() == [1.0, 0.02, 0.1, 0.0, 0.1, 0.1]


def test_metric_against_budget_draws_each_method_with_retraining_and_the_original_as_references():
    results, originals = hand_made()
    figure = metric_vs_budget(results, originals, "gus_mean", ideal=0.0)
    traces = {trace.name: trace for trace in figure.data}
    assert set(traces) == {"cf", "ga", "ssd (no training)"}, "RewoD is a reference line, not a curve"
    assert list(traces["cf"].x) == [0.02, 0.1] and list(traces["cf"].y) == [-1.9, -1.5]
    assert list(traces["ga"].y) == [-1.8], "only the selected run of each budget"
    assert list(traces["ssd (no training)"].x) == [0.0]
    lines = {(shape.line.dash, shape.y0) for shape in figure.layout.shapes}
    assert ("dot", 0.05) in lines, "retraining is the reference"
    assert ("dash", -2.0) in lines, "the original model"
    assert any(a.text.startswith("retrain (rewod, 100%") for a in figure.layout.annotations)
    low, high = figure.layout.yaxis.range
    assert low < -2.0 and high > 0.05, "the reference lines are inside the plotted range"


# End to end -------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_unlearnkit_run_executes_the_gaussian_family_and_writes_the_audit_columns(tmp_path):
    values = {"series": "gaussian", "run_name": "tiny", "train_subset": 400, "test_subset": 300, "val_size": 100,
              "manipulations": [{"name": "gaussian", "eps": 0.3, "count": 80}], "export_png": False, "progress": False,
              "train": {"steps": 40, "batch_size": 32, "lr": 0.05, "channels_last": False, "log_every": 10},
              "methods": {"rewod": {}, "cf": {}, "ssd": {}}, "budget_fraction": [0.05, 0.1]}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(values))
    run = run_series(path, out=tmp_path / "out" / "tiny", progress=False)
    results = pd.read_csv(run.run_dir / "results.csv")
    assert len(results) == 1 + 2 + 1
    for column in ["gus_mean", "gus_p_value", "gus_tpr_at_1pct_fpr", "gus_auc", "mia_tpr_at_1pct_fpr", "mia_auc",
                   "budget_fraction", "budget_steps", "run"]:
        assert column in results, column
    assert results["gus_p_value"].between(0, 1).all() and results["mia_auc"].between(0, 1).all()
    for run_folder in results["run"]:
        assert (run.run_dir / run_folder / "audit.safetensors").is_file()
    originals = pd.read_csv(run.run_dir / "originals.csv")
    assert {"gus_mean", "mia_auc", "directory"} <= set(originals.columns)
    assert (run.run_dir / "figures" / "06_gus_histograms_gaussian.html").is_file()
    assert "GUS mean" in run.summary() and "original M_o" in run.summary()
