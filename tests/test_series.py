"""The notebook series: parameter files, notebook declarations, tables, and ``unlearnkit run`` end to end."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import nbformat
import pandas as pd
import papermill
import pytest
import torch
import yaml

from unlearnkit.cli import main
from unlearnkit.config import ConfigError
from unlearnkit.series import FAMILIES, Family, Series
from unlearnkit.series.execute import SeriesRun, run_series, series_notebooks
from unlearnkit.series.families import family_of_notebook, load_parameter_file, notebook_parameter_names
from unlearnkit.series.parameters import CORE, SeriesParameters
from unlearnkit.series.paths import output_root
from unlearnkit.series.schema import CommonParameters, stage_field
from unlearnkit.series.tables import cost_table, retain_change_table
from unlearnkit.unlearning.importance_ratio import ratio_distribution

ROOT = Path(__file__).resolve().parents[1]
PARAMETERS = ROOT / "parameters"
NOTEBOOKS = ROOT / "notebooks"
REQUIRED_COLUMNS = ["manipulation", "dataset", "model", "seed", "method", "params", "alpha", "n_manipulated",
                    "n_forget", "acc_corr", "acc_retain", "acc_clean", "asr", "unlearn_seconds", "unlearn_steps"]


def write_yaml(path: Path, values: dict) -> Path:
    path.write_text(yaml.safe_dump(values))
    return path


# Parameter files and notebook declarations --------------------------------------------------------

ALL_NOTEBOOKS = [notebook for name in FAMILIES for notebook in FAMILIES.get(name).notebooks]


@pytest.mark.parametrize("path", sorted(PARAMETERS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_parameter_file_is_valid(path):
    params, values = load_parameter_file(path)
    assert values["run_name"] == path.stem
    for name in getattr(params, "methods", {}):
        assert params.method_points(name)


def test_every_notebook_in_the_folder_belongs_to_a_series():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(ALL_NOTEBOOKS)


def test_smoke_file_spells_out_the_notebook_defaults():
    _, values = load_parameter_file(PARAMETERS / "smoke.yaml")
    defaults = dataclasses.asdict(SeriesParameters())
    for key, value in values.items():
        assert defaults[key] == value, key


@pytest.mark.parametrize("notebook", ALL_NOTEBOOKS)
def test_each_notebook_declares_its_stages_parameters_with_the_schema_defaults(notebook):
    declared = papermill.inspect_notebook(str(NOTEBOOKS / f"{notebook}.ipynb"))
    assert sorted(declared) == sorted(notebook_parameter_names(notebook))
    defaults = family_of_notebook(notebook).parameters()
    for name, spec in declared.items():
        assert eval(spec["default"]) == getattr(defaults, name), name  # literals written by us


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip outputs"
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1


def test_pipeline_paper_sets_follow_the_corrective_recipe():
    params, _ = load_parameter_file(PARAMETERS / "cifar10-badnet.yaml")
    assert params.dataset == "cifar10" and params.model == "resnet9"
    assert params.train_config().steps == 4000 and params.train_config().batch_size == 512
    assert params.alphas == [round(0.1 * i, 1) for i in range(1, 11)]
    assert len(params.method_points("ssd")) == 50 and len(params.method_points("scrub")) == 8
    cifar100, _ = load_parameter_file(PARAMETERS / "cifar100-ic.yaml")
    assert cifar100.model == "wideresnet28-10" and cifar100.train_config().steps == 6000
    assert cifar100.canonical_manipulation(0)["class_a"] == 47 and cifar100.canonical_manipulation(0)["class_b"] == 52


@pytest.mark.parametrize("values, message", [
    ({"alpha": [0.5]}, "unknown parameter 'alpha'.*Did you mean 'alphas' \\(accepted by 01_poison, 02_train"),
    ({"seeds": "zero"}, "seeds must be a list"),
    ({"train": {"steps": "many"}}, "train.steps must be an integer"),
    ({"train": {"stpes": 10}}, "stpes.*Did you mean.*steps"),
    ({"alphas": [0.0, 1.0]}, "alphas\\[0\\] must be in \\(0.0, 1.0\\]"),
    ({"methods": {"ssd": {"selection_weightin": 3}}}, "methods.ssd.*selection_weightin"),
    ({"methods": {"forgetful": {}}}, "forgetful"),
    ({"manipulations": [{"name": "badnet", "fraction": 2.0}]}, "manipulations\\[0\\].*fraction"),
    ({"methods": {"ssd": {"grid": "scrub-goel"}}}, "grid of 'scrub'"),
])
def test_bad_parameter_files_fail_before_any_compute_naming_the_key(tmp_path, capsys, values, message):
    path = write_yaml(tmp_path / "bad.yaml", {"run_name": "bad", **values})
    with pytest.raises(ConfigError, match=message):
        load_parameter_file(path)
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 2
    assert "error" in capsys.readouterr().err
    assert not out.exists(), "nothing may be computed or written"


def test_a_parameter_file_chooses_its_series_and_keys_of_another_series_are_named(tmp_path, monkeypatch):
    @dataclasses.dataclass(frozen=True)
    class OtherParameters(CommonParameters):
        widgets: int = stage_field("widgets", 1)

    other = Family("other", OtherParameters, {"99_other": ("common", "widgets")}, summary=lambda run_dir: "")
    monkeypatch.setitem(FAMILIES._entries, "other", other)
    with pytest.raises(ConfigError, match="'widgets'.*belongs to the series 'other' \\(99_other\\).*series: other"):
        load_parameter_file(write_yaml(tmp_path / "core.yaml", {"run_name": "core", "widgets": 2}))
    params, _ = load_parameter_file(write_yaml(tmp_path / "o.yaml", {"series": "other", "run_name": "o", "widgets": 2}))
    assert params == OtherParameters(run_name="o", widgets=2)
    with pytest.raises(ConfigError, match="unknown parameter 'alphas': no notebook of the series 'other'"):
        load_parameter_file(write_yaml(tmp_path / "x.yaml", {"series": "other", "alphas": [1.0]}))
    with pytest.raises(ConfigError, match="series must be one of .*core.*got 'nosuch'"):
        load_parameter_file(write_yaml(tmp_path / "n.yaml", {"series": "nosuch"}))


def test_a_series_accepts_only_the_fields_its_notebooks_declare(tmp_path, monkeypatch):
    partial = Family("partial", SeriesParameters, {"99_partial": ("common", "poison")}, summary=lambda run_dir: "")
    monkeypatch.setitem(FAMILIES._entries, "partial", partial)
    assert "alphas" in partial.accepted() and "model" not in partial.accepted()
    with pytest.raises(ConfigError, match="'model': no notebook of the series 'partial'.*belongs to the series 'core'"):
        load_parameter_file(write_yaml(tmp_path / "p.yaml", {"series": "partial", "model": "resnet9"}))


def test_a_missing_or_malformed_parameter_file_is_reported(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nowhere.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_parameter_file(tmp_path / "list.yaml")


def test_method_entries_sweep_lists_grids_and_lists_of_settings():
    params = SeriesParameters(methods={
        "scrub": {"alpha": [0.1, 1.0], "msteps": [5, 10]},
        "ssd": [{"selection_weighting": 10.0, "dampening": 10.0}, {"grid": "ssd-goel"}],
        "cf": None,
    })
    scrub = params.method_points("scrub")
    assert [(p["alpha"], p["msteps"]) for p in scrub] == [(0.1, 5), (0.1, 10), (1.0, 5), (1.0, 10)]
    ssd = params.method_points("ssd")
    assert len(ssd) == 51 and ssd[0]["selection_weighting"] == 10.0 and ssd[0]["dampening"] == 10.0
    assert len(params.method_points("cf")) == 1


def test_budgets_sweep_for_approximate_methods_only():
    from unlearnkit.unlearning import Budget

    params = SeriesParameters(budget_fraction=[0.02, 0.1])
    assert params.budgets() == [Budget(fraction=0.02), Budget(fraction=0.1)]
    assert params.budgets_for("cf") == params.budgets()
    assert params.budgets_for("rewod") == [None] and params.budgets_for("ssd") == [None]
    assert SeriesParameters(budget_steps=7).budgets() == [Budget(steps=7)]
    assert SeriesParameters().budgets() == [None]
    smoke_points = sum(len(params.method_points(m)) for m in params.methods)
    # rewod and ssd (2 settings) run once, the 7 other methods once per budget
    assert smoke_points == 10
    assert Series(params).planned_runs() == 2 * 2 * (3 + 7 * 2)
    for values, message in [({"budget_fraction": [0.1, 0.1]}, "distinct"),
                            ({"budget_fraction": [0.1, -1.0]}, "budget_fraction\\[1\\].*budget.fraction"),
                            ({"budget_fraction": 0.1, "budget_steps": 3}, "only one of budget_fraction"),
                            ({"budget_steps": [2.5]}, "budget_steps")]:
        with pytest.raises(ConfigError, match=message):
            SeriesParameters.from_mapping(values)


def test_equivalent_manipulation_spellings_share_one_cache_key():
    short = SeriesParameters(manipulations=[{"name": "badnet"}])
    spelled = SeriesParameters(manipulations=[{"name": "badnet", "target_class": 0, "patch_size": 3, "seed": 0}])
    assert short.experiment(0, 0) == spelled.experiment(0, 0)
    assert SeriesParameters(manipulations=[{"name": "badnet"}, {"name": "badnet", "seed": 1}]).manipulation_labels() \
        == ["badnet#1", "badnet#2"]


# Tables ---------------------------------------------------------------------------------------------

def test_ratio_distribution_counts_every_parameter_once_and_shares_are_exact():
    ratios = {"w": torch.tensor([0.0, 1e-20, 0.5, 5.0, 50.0, 1e30, float("inf"), float("nan")])}
    d = ratio_distribution(ratios, [1.0, 10.0, 100.0])
    assert d.n_parameters == 8 and d.n_zero == 1 and d.n_below_range == 1 and d.n_above_range == 1
    assert d.n_infinite == 1 and d.n_undefined == 1 and int(d.histogram["count"].sum()) == 3
    assert d.share_above == {1.0: 4 / 8, 10.0: 3 / 8, 100.0: 2 / 8}
    assert d.max_finite == pytest.approx(1e30, rel=1e-6)


def test_retain_change_and_cost_tables_follow_their_definitions():
    originals = pd.DataFrame({"manipulation": ["badnet"], "seed": [0], "acc_retain": [0.9]})
    results = pd.DataFrame({
        "manipulation": "badnet", "seed": 0, "method": ["rewod", "rewod", "ssd", "ssd", "ssd"],
        "alpha": [0.5, 1.0, 0.5, 1.0, 1.0], "acc_retain": [0.92, 0.90, 0.80, 0.70, 0.1],
        "selected": [True, True, True, True, False], "run": list("abcde"),
        "unlearn_seconds": [10.0, 10.0, 1.0, 1.0, 1.0], "unlearn_steps": [100, 100, 0, 0, 0],
    })
    retain = retain_change_table(results, originals).set_index("method")["delta_acc_retain_pp"]
    assert retain["rewod"] == pytest.approx(1.0) and retain["ssd"] == pytest.approx(-15.0)
    cost = cost_table(results).set_index("method")
    assert cost.loc["ssd", "runs"] == 3 and cost.loc["ssd", "relative_to_rewod"] == pytest.approx(0.1)


# End to end -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory) -> tuple[SeriesRun, SeriesRun, str]:
    # The session's outputs folder (a temporary one, see conftest.py) and the notebooks' default run: the
    # smoke set is the notebooks' defaults, so nbval's runs of notebooks 01-05 later find every stage cached.
    # The first run must build, so an outputs folder that has the run already is not reused.
    out = output_root() / "smoke"
    if out.exists():
        out = tmp_path_factory.mktemp("series") / "smoke"
    first = run_series(PARAMETERS / "smoke.yaml", out=out, progress=False)
    second = run_series(PARAMETERS / "smoke.yaml", out=out, progress=False)
    return first, second, str(out)


@pytest.mark.slow
def test_run_writes_a_tidy_results_table(smoke_runs):
    first, _, out = smoke_runs
    params, _ = load_parameter_file(PARAMETERS / "smoke.yaml")
    results = pd.read_csv(Path(out) / "results.csv")
    assert set(REQUIRED_COLUMNS) <= set(results.columns)
    points = sum(len(params.method_points(m)) for m in params.methods)
    assert len(results) == len(params.manipulations) * len(params.seeds) * points * len(params.alphas)
    for column in ["acc_corr", "acc_retain", "acc_clean", "val_acc", "score"]:
        assert results[column].between(0, 1).all(), column
    badnet = results["manipulation"] == "badnet"
    assert results.loc[badnet, "asr"].between(0, 1).all() and results.loc[~badnet, "asr"].isna().all()
    assert (results["unlearn_seconds"] > 0).all() and (results["unlearn_steps"] >= 0).all()
    assert set(results["method"]) == set(params.methods)
    assert all(json.loads(p) is not None for p in results["params"])
    assert results.groupby(["manipulation", "seed", "method", "alpha"])["selected"].sum().eq(1).all()
    assert first.built == len(results) + len(params.manipulations) and first.reused == 0


@pytest.mark.slow
def test_run_writes_executed_notebooks_and_figures(smoke_runs):
    from unlearnkit.series.export import png_available

    first, _, out = smoke_runs
    executed = [nbformat.read(path, as_version=4) for path in first.executed]
    assert [p.name for p in first.executed] == [p.name for p in series_notebooks(CORE)]
    for notebook in executed:
        assert any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
        mimes = {mime for cell in notebook.cells for output in cell.get("outputs", []) for mime in output.get("data", {})}
        assert "application/vnd.jupyter.widget-view+json" not in mimes, "headless runs draw explorers statically"
    explorers = [cell for cell in executed[-1].cells if "SSDExplorer.from_series" in cell.source]
    assert explorers and any("application/vnd.plotly.v1+json" in output.get("data", {})
                             for output in explorers[0].outputs), "the SSD explorer's static figure is in 05"
    figures = Path(out) / "figures"
    expected = ["01_samples_badnet", "01_samples_interclass", "01_counts", "02_training_curves",
                "02_original_metrics", "03_cost", "04_acc_corr_vs_alpha", "04_retain_change", "04_asr_vs_alpha",
                "04_cost", "05_importance_histogram"]
    for name in expected:
        assert (figures / f"{name}.html").is_file(), name
        if png_available():
            assert (figures / f"{name}.png").stat().st_size > 1000, name


@pytest.mark.slow
def test_a_second_run_is_served_from_the_cache(smoke_runs):
    first, second, _ = smoke_runs
    assert second.built == 0 and second.reused == first.built
    pd.testing.assert_frame_equal(first.results, second.results)
    assert "reused from the cache: " + str(first.built) in second.summary()


def test_a_relative_data_root_is_read_from_the_project_folder(monkeypatch):
    monkeypatch.chdir(NOTEBOOKS)  # where JupyterLab runs a notebook
    assert SeriesParameters(data_root="data").data_config().root == str(ROOT / "data")


@pytest.mark.slow
def test_a_paper_scale_set_runs_every_stage_on_cifar_files(tmp_path, monkeypatch):
    """cifar10-badnet.yaml with only its sizes shrunk: torchvision's CIFAR files, ResNet-9, the named
    grids (first points), every stage of the series."""
    from test_torchvision_loaders import write_cifar10

    write_cifar10(tmp_path / "data", monkeypatch, n_train=120, n_test=40)
    _, values = load_parameter_file(PARAMETERS / "cifar10-badnet.yaml")
    values.update(output_root=str(tmp_path / "out"), data_root=str(tmp_path / "data"), download=False,
                  val_size=20, alphas=[0.5, 1.0], seeds=[0], progress=False, export_png=False,
                  train={**values["train"], "steps": 3, "batch_size": 16},
                  manipulations=[{"name": "badnet", "fraction": 0.1}], budget_steps=2,
                  methods={"rewod": {}, "cf": {}, "scrub": {"alpha": 0.001}, "ssd": {"selection_weighting": 0.1}})
    series = Series(SeriesParameters.from_mapping(values))
    assert [p.manipulated.n_manipulated for p in series.poisoned()] == [10]
    originals = series.originals()
    assert originals[0].trained.config.model == "resnet9"
    results = series.results(series.unlearning_runs(originals=originals), originals)
    assert len(results) == 4 * 2 and set(results["dataset"]) == {"cifar10"}
    assert results.loc[results["method"] == "rewod", "unlearn_steps"].eq(3).all(), "RewoD retrains fully"
    assert results.loc[results["method"] == "cf", "unlearn_steps"].eq(2).all()
    importance = series.importances(originals=originals)[0]
    assert importance.distribution.n_parameters == sum(p.numel() for p in originals[0].trained.model.parameters())
    stored = importance.tensors()
    assert {name: t.shape for name, t in stored.forget.items()} == \
        {name: p.shape for name, p in originals[0].trained.model.named_parameters()}


@pytest.mark.slow
def test_papermill_alone_runs_a_notebook_on_a_whole_parameter_file(tmp_path):
    """``papermill notebooks/01_poison.ipynb out.ipynb -f parameters/smoke.yaml``: keys the notebook does
    not declare are injected too and must not break it."""
    values = yaml.safe_load((PARAMETERS / "smoke.yaml").read_text())
    papermill.execute_notebook(str(NOTEBOOKS / "01_poison.ipynb"), str(tmp_path / "out.ipynb"),
                               parameters={**values, "output_root": str(tmp_path / "outputs"), "export_png": False},
                               progress_bar=False)
    assert (tmp_path / "outputs" / "smoke" / "figures" / "01_counts.html").is_file()
    assert len(list((tmp_path / "outputs" / "smoke").glob("poison-*"))) == 2
