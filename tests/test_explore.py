"""The explorers' computations and their widget wiring, without a browser.

Widgets are built in this process (ipywidgets without a kernel sends its messages nowhere); a change
of a control must change what the explorer draws, exactly as a user's slider release would.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from unlearnkit.config import ConfigError
from unlearnkit.data import DataConfig
from unlearnkit.experiment import ExperimentConfig, TrainedOriginal
from unlearnkit.explore import (
    AlphaExplorer,
    SSDExplorer,
    SSDLab,
    SweepResults,
    TriggerDesigner,
    TriggerLab,
    explorer_mode,
    static_explorers,
)
from unlearnkit.explore.alpha import candidates_html, curves_figure
from unlearnkit.explore.base import MODE_ENV, Explorer
from unlearnkit.explore.ssd import explorer_figure, layer_of
from unlearnkit.manipulations import build_manipulation
from unlearnkit.metrics import evaluate
from unlearnkit.models import build_model
from unlearnkit.series.stages import IMPORTANCES_FILE, _importance_distribution, load_importances
from unlearnkit.store import ArtifactStore, read_json
from unlearnkit.training import TrainConfig
from unlearnkit.unlearning import dampen, make_task, ssd_importances
from unlearnkit.unlearning.importance_ratio import ratio_distribution

pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")


# Display mode -----------------------------------------------------------------------------------------------

def test_explorer_mode_follows_the_environment(monkeypatch):
    monkeypatch.setenv(MODE_ENV, "static")
    assert explorer_mode() == "static"
    monkeypatch.setenv(MODE_ENV, "interactive")
    assert explorer_mode() == "interactive"
    monkeypatch.delenv(MODE_ENV)
    assert explorer_mode() == "interactive"  # ipywidgets and anywidget are installed here
    monkeypatch.setenv(MODE_ENV, "sometimes")
    with pytest.raises(ValueError, match="UNLEARNKIT_EXPLORERS must be one of"):
        explorer_mode()
    monkeypatch.setenv(MODE_ENV, "interactive")
    with static_explorers():
        assert explorer_mode() == "static"
    assert explorer_mode() == "interactive"


def test_static_mode_draws_figures_and_interactive_mode_the_widget(monkeypatch):
    shown = []

    class Probe(Explorer):
        def static_figures(self):
            figure = type("F", (), {"show": lambda self: shown.append("figure")})()
            return [figure, figure]

        def build(self):
            return "the widget"

    monkeypatch.setattr("IPython.display.display", lambda value: shown.append(value))
    Probe().show("static")
    Probe().show("interactive")
    assert shown == ["figure", "figure", "the widget"]


# Alpha explorer ------------------------------------------------------------------------------------------

def sweep_table() -> pd.DataFrame:
    """Two manipulations, two methods with two settings each, two alphas, two seeds; known numbers."""
    rows = []
    for manipulation, asr in (("badnet", 0.9), ("interclass", float("nan"))):
        for seed in (0, 1):
            for method in ("cf", "ssd"):
                for alpha in (0.5, 1.0):
                    for setting in (1, 2):
                        better = setting == 2
                        rows.append({
                            "manipulation": manipulation, "dataset": "mnist", "model": "small-cnn", "seed": seed,
                            "method": method, "params": json.dumps({"lr": setting}), "budget_fraction": None,
                            "budget_steps": None, "alpha": alpha, "n_manipulated": 40, "n_forget": int(40 * alpha),
                            "acc_corr": alpha * (0.5 if method == "cf" else 0.8) + 0.01 * seed + 0.05 * better,
                            "acc_retain": 0.9, "asr": asr * (1 - alpha) if method == "cf" else asr * 0.1,
                            "val_acc": 0.9, "score": 0.5 + 0.1 * better, "selected": better,
                            "run": f"unlearn-{manipulation}{seed}{method}{alpha}{setting}",
                        })
    return pd.DataFrame(rows)


def test_sweep_results_views_follow_the_selected_runs():
    results = SweepResults(sweep_table())
    assert results.manipulations() == ["badnet", "interclass"]
    assert results.methods("badnet") == ["cf", "ssd"] and results.alphas("badnet") == [0.5, 1.0]
    assert results.metrics("badnet") == ["acc_corr", "acc_retain", "asr"]
    assert results.metrics("interclass") == ["acc_corr", "acc_retain"], "no attack success without a target"
    curves = results.curves("badnet", "acc_corr").set_index(["method", "alpha"])
    # selected = setting 2; mean over seeds 0 and 1 adds 0.005
    assert curves.loc[("ssd", 0.5), "mean"] == pytest.approx(0.8 * 0.5 + 0.05 + 0.005)
    assert curves.loc[("cf", 1.0), "n"] == 2 and curves.loc[("cf", 1.0), "std"] > 0
    candidates = results.candidates("badnet", "cf", 0.5)
    assert len(candidates) == 4 and candidates["selected"].sum() == 2
    assert candidates.iloc[0]["selected"], "the best score comes first within a seed"
    assert results.identified("badnet", 0.5) == (20, 40)
    at = results.selected_at("badnet", 1.0).set_index("method")
    assert at.loc["cf", "asr"] == pytest.approx(0.0) and at.loc["ssd", "asr"] == pytest.approx(0.09)
    html = candidates_html(candidates)
    assert html.count("<tr") == 5 and html.count("font-weight:bold") == 2
    with pytest.raises(ValueError, match="lack the columns"):
        SweepResults(sweep_table().drop(columns=["selected"]))
    with pytest.raises(KeyError, match="no runs of manipulation 'gaussian'"):
        results.curves("gaussian", "acc_corr")


def test_sweep_results_read_a_run_folder(tmp_path):
    sweep_table().to_csv(tmp_path / "results.csv", index=False)
    assert len(SweepResults.read(tmp_path).table) == len(sweep_table())
    assert SweepResults.read(tmp_path / "results.csv").table["selected"].dtype == bool


def test_alpha_explorer_moves_the_marker_and_highlights_the_method():
    explorer = AlphaExplorer(sweep_table(), method="cf", alpha=0.5)
    figure = curves_figure(explorer.results, "badnet", "cf", 0.5)
    assert len(figure.data) == 3 * 2 and len(figure.layout.shapes) == 3
    assert explorer.widget is not None  # builds the widgets
    assert "cf</b> at alpha = 0.5: 4 runs" in explorer.table.value
    explorer.alpha_slider.value = 1.0
    assert all(shape.x0 == 1.0 for shape in explorer.figure.layout.shapes)
    assert "alpha = 1 (40 of 40 manipulated samples identified)" in explorer.figure.layout.title.text
    assert "at alpha = 1: 4 runs" in explorer.table.value
    explorer.method_menu.value = "ssd"
    widths = {trace.name: trace.line.width for trace in explorer.figure.data}
    assert widths == {"cf": 1.5, "ssd": 4}
    explorer.manipulation_menu.value = "interclass"
    assert len(explorer.figure.data) == 2 * 2, "two panels: no attack success for interclass confusion"
    assert explorer.figure.layout.title.text.startswith("interclass, ssd at alpha = 1")


# SSD explorer --------------------------------------------------------------------------------------------

def untrained_original(splits) -> TrainedOriginal:
    config = ExperimentConfig(manipulation={"name": "badnet", "count": 12},
                              train=TrainConfig(steps=1, batch_size=16, bf16=False, channels_last=False))
    manipulated = build_manipulation(config.manipulation).apply(splits)
    model = build_model("small-cnn", splits.info.num_classes, splits.info.in_channels, seed=0).eval()
    metrics = evaluate(model, splits, manipulated)
    return TrainedOriginal(config, splits, manipulated, model, pd.DataFrame(), metrics, Path("."), False)


@pytest.fixture
def lab(tiny_splits) -> SSDLab:
    original = untrained_original(tiny_splits)
    forget = original.manipulated.manipulated[:6]
    return SSDLab("badnet", original, ssd_importances(make_task(original, forget), batch_size=16), forget)


def test_ssd_lab_selects_exactly_what_ssd_dampens(lab):
    forget, reference = lab.importances.forget, lab.importances.reference
    for a in (0.1, 1.0, 10.0, 1e4):
        expected = sum(int((forget[n] > a * reference[n]).sum()) for n in forget)
        assert lab.selected_share(a) == pytest.approx(expected / lab.n_parameters)
        layers = lab.layer_shares(a)
        assert layers["selected"].sum() == expected and layers["parameters"].sum() == lab.n_parameters
        assert set(layers["layer"]) == {layer_of(n) for n in forget}
    curve = lab.share_curve(np.array([0.1, 1.0, 10.0]))
    assert list(curve) == sorted(curve, reverse=True), "fewer parameters as a grows"
    assert curve == pytest.approx([lab.selected_share(a) for a in (0.1, 1.0, 10.0)], abs=2 / lab.n_parameters)
    model = copy.deepcopy(lab.original.model)
    counts = dampen(model, lab.importances, 1.0, 1.0)
    expected = evaluate(model, lab.original.splits, lab.original.manipulated, lab.forget)
    outcome = lab.outcome(1.0, 1.0)
    assert outcome["selected"] == sum(counts.values())
    for metric in ("acc_corr", "acc_retain", "asr", "acc_sf_clean"):
        assert outcome[metric] == pytest.approx(expected[metric]), metric
    assert lab.outcome(1.0, 1.0) is outcome, "each (a, lam) is evaluated once"
    assert torch.equal(next(lab.original.model.parameters()), next(untrained_original(
        lab.original.splits).model.parameters())), "the cached original model is never modified"


def test_ssd_lab_rejects_importances_of_another_model(lab):
    wrong = copy.copy(lab.importances)
    wrong.forget = {f"other.{name}": t for name, t in lab.importances.forget.items()}
    with pytest.raises(ValueError, match="do not belong"):
        SSDLab("x", lab.original, wrong)


def test_ssd_explorer_redraws_on_a_slider_release(lab):
    explorer = SSDExplorer(lab, a=10.0, lam=1.0)
    figure = explorer_figure(lab, 10.0, 1.0)
    assert [trace.type for trace in figure.data] == ["scatter", "scatter", "bar", "bar", "bar"]
    assert explorer.widget is not None
    before_title, before_status = explorer.figure.layout.title.text, explorer.status.value
    explorer.a_slider.value = 0.1
    assert explorer.figure.layout.title.text != before_title and explorer.status.value != before_status
    assert explorer.figure.data[1].x == (0.1,), "the marker moves to the new a"
    assert list(explorer.figure.data[2].y) == list(lab.layer_shares(0.1)["share"])
    assert (0.1, 1.0) in lab.outcomes
    assert explorer.figure.data[4].y[0] == pytest.approx(lab.outcome(0.1, 1.0)["acc_corr"])


def test_importance_stage_keeps_the_raw_importances_beside_the_same_histogram(tiny_splits, tmp_path):
    original = untrained_original(tiny_splits)
    forget = original.manipulated.manipulated[:6]
    _importance_distribution(tmp_path, original, forget, 16, "retain", [1.0, 10.0])
    expected = ssd_importances(make_task(original, forget), 16, "retain")
    stored = load_importances(tmp_path)
    assert (tmp_path / IMPORTANCES_FILE).is_file() and stored.batch_size == 16 and stored.reference_set == "retain"
    for name in expected.forget:
        assert torch.equal(stored.forget[name], expected.forget[name].contiguous())
        assert torch.equal(stored.reference[name], expected.reference[name].contiguous())
    histogram = pd.read_csv(tmp_path / "histogram.csv")
    pd.testing.assert_frame_equal(histogram, ratio_distribution(expected.ratio(), [1.0, 10.0]).histogram,
                                  check_dtype=False)
    assert set(read_json(tmp_path / "summary.json")) >= {"n_parameters", "share_above", "fit_sf_manipulated"}


# Trigger designer ----------------------------------------------------------------------------------------

TINY_DATA = DataConfig(name="mnist", train_subset=600, test_subset=200, val_size=100)
TINY_RECIPE = TrainConfig(steps=40, batch_size=64, lr=0.05, warmup_fraction=0.05, log_every=10)


def test_trigger_lab_designs_and_samples(tmp_path):
    lab = TriggerLab(TINY_DATA, train=TINY_RECIPE, store=ArtifactStore(tmp_path, "trigger"))
    assert lab.image_size == (28, 28)
    corner = lab.design(patch_size=4, row=24, col=24)
    assert corner.row is None and corner.col is None, "the bottom-right corner is spelled as BadNet's default"
    moved = lab.design(patch_size=4, row=2, col=5, value=0.6, target_class=7, fraction=0.05)
    samples = lab.samples(moved, count=5)
    level = round(0.6 * 255)
    assert (samples["train_labels"] == 7).all()
    assert (samples["train_images"][:, :, 2:6, 5:9] == level).all()
    assert (samples["test_images"][:, :, 2:6, 5:9] == level).all()
    assert samples["predictions"] is None
    assert lab.label(moved) == "4px (2,5) v=0.60 → 7, 5.0%"
    assert lab.experiment(moved).manipulation["row"] == 2 and not lab.is_trained(moved)
    with pytest.raises(ConfigError, match="manipulation.row must be at most 24"):
        lab.design(patch_size=4, row=25)
    with pytest.raises(ConfigError, match="target_class"):
        lab.design(target_class=10)


def test_trigger_designer_redraws_the_samples_when_a_slider_moves(tmp_path):
    designer = TriggerDesigner(TriggerLab(TINY_DATA, train=TINY_RECIPE, store=ArtifactStore(tmp_path, "t")), count=3)
    assert len(designer.static_figures()) == 1, "no outcome figure before anything is trained"
    assert designer.widget is not None
    first = np.asarray(designer.samples.data[0].z).copy()
    designer.patch_size.value = 6
    assert designer.row.max == 22 and designer.col.max == 22
    assert "6px (22,22)" in designer.samples.layout.title.text
    assert not np.array_equal(np.asarray(designer.samples.data[0].z), first)
    designer.row.value = 0
    assert (np.asarray(designer.samples.data[0].z)[0:6, 22:28] == 255).all(), "the patch moved to the top"
    assert "not trained yet" in designer.status.value


@pytest.mark.slow
def test_trigger_designer_trains_once_per_design_and_reports_the_attack(tmp_path):
    store = ArtifactStore(tmp_path, "t")
    designer = TriggerDesigner(TriggerLab(TINY_DATA, train=TINY_RECIPE, store=store), count=3, fraction=0.1)
    assert designer.widget is not None
    designer.train_button.click()
    outcome = designer.lab.outcomes[designer.lab.label(designer.current())]
    assert not outcome.cache_hit and 0 <= outcome.metrics["asr"] <= 1
    assert f"attack success {outcome.metrics['asr']:.3f}" in designer.status.value
    assert list(designer.outcomes.data[0].y) == [outcome.metrics["asr"]]
    assert "→" in designer.samples.layout.annotations[-1].text, "test images are titled with the prediction"
    again = TriggerDesigner(TriggerLab(TINY_DATA, train=TINY_RECIPE, store=store), count=3, fraction=0.1)
    reloaded = next(iter(again.lab.outcomes.values()))
    assert reloaded.cache_hit and reloaded.metrics == outcome.metrics, "a trained design loads from the store"
    assert len(again.static_figures()) == 2


def test_progress_bars_are_text_in_headless_runs(monkeypatch):
    """Executed notebooks of ``unlearnkit run`` must not hold widget progress bars nothing can draw; with a
    frontend the bar is tqdm.auto's (the notebook widget inside a kernel)."""
    from tqdm.std import tqdm as text_bar

    from unlearnkit import frontend

    class WidgetBar(text_bar):
        pass

    monkeypatch.setattr(frontend, "auto_bar", WidgetBar)
    monkeypatch.setenv(frontend.MODE_ENV, "static")
    with frontend.tqdm(total=1, disable=True) as bar:
        assert type(bar) is text_bar
    monkeypatch.setenv(frontend.MODE_ENV, "auto")
    with frontend.tqdm(total=1, disable=True) as bar:
        assert type(bar) is WidgetBar
