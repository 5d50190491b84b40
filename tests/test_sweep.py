"""Sweeps of the series: resuming after an interruption, the Ray executor, validation-only selection."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pandas as pd
import pytest

from unlearnkit.config import ConfigError
from unlearnkit.series import Series, SeriesParameters, stages
from unlearnkit.series.stages import RUN_GROUP
from unlearnkit.store import MANIFEST, read_json

# A sweep small enough for a test: one original (40 steps), CF at two learning rates and SSD on a
# 2 x 2 grid, at two alphas: 12 unlearning cells. One thread per run, so that the local and the Ray
# executor compute with the same CPU kernels.
TINY = dict(
    train_subset=1000, test_subset=300, val_size=100, progress=False, export_png=False,
    manipulations=[{"name": "badnet", "fraction": 0.05}], alphas=[0.5, 1.0],
    train={"steps": 40, "batch_size": 64, "lr": 0.1, "warmup_fraction": 0.1},
    methods={"cf": {"lr": [0.002, 0.1]}, "ssd": {"selection_weighting": [1.0, 30.0], "dampening": [1.0, 30.0]}},
    cpus_per_run=1,
)
PLANNED = 12
WALL_CLOCK = ["unlearn_seconds", "train_seconds"]
TEST_METRICS = ["acc_clean", "acc_corr", "acc_retain", "asr", "acc_sm_clean", "fit_sm_manipulated", "acc_sf_clean",
                "acc_sm_minus_sf_clean", "fit_sf_manipulated"]
"""Every column computed with labels the developer does not have (test set, clean labels of S_m)."""


def tiny_series(root, run_name: str, **changes) -> Series:
    return Series(SeriesParameters(run_name=run_name, output_root=str(root), **{**TINY, **changes}))


def without_wall_clock(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=[c for c in WALL_CLOCK if c in table.columns]).reset_index(drop=True)


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    series = tiny_series(tmp_path_factory.mktemp("sweeps"), "local")
    originals = series.originals()
    runs = series.unlearning_runs(originals=originals)
    return series, originals, series.results(runs, originals)


def stage_times(series: Series, runs) -> dict[str, float]:
    return {run: read_json(series.run_dir / run / MANIFEST)["created"] for run in runs}


@pytest.mark.slow
def test_an_interrupted_sweep_resumes_without_losing_or_duplicating_rows(local_sweep, tmp_path, monkeypatch):
    reference_series, reference_originals, reference = local_sweep
    series = tiny_series(tmp_path, "resumed")
    trained = reference_originals[0].trained.directory
    shutil.copytree(trained, series.run_dir / trained.name)  # the same M_o: only unlearning cells run here
    originals = series.originals()

    real_run = stages._unlearning_run
    built = []

    def interrupted_after_three(directory, **kwargs):
        if len(built) == 3:
            raise KeyboardInterrupt("simulated Ctrl-C in the fourth run")
        built.append(kwargs["method"])
        real_run(directory, **kwargs)

    monkeypatch.setattr(stages, "_unlearning_run", interrupted_after_three)
    with pytest.raises(KeyboardInterrupt):
        series.unlearning_runs(originals=originals)
    ledger = series.ledger("unlearn")
    assert len(ledger) == 3 and len(ledger.path.read_text().splitlines()) == 3
    finished = list(ledger.rows())
    before = stage_times(series, finished)
    # The process also died after building a stage but before recording it, and in the middle of
    # writing a line: drop the last row and leave a torn line.
    lines = ledger.path.read_text().splitlines(keepends=True)
    ledger.path.write_text("".join(lines[:2]) + '{"cell": "unlearn-0123')

    resumed = []

    def counted(directory, **kwargs):
        resumed.append(kwargs["method"])
        return real_run(directory, **kwargs)

    monkeypatch.setattr(stages, "_unlearning_run", counted)
    runs = series.unlearning_runs(originals=originals)
    assert len(resumed) == PLANNED - 3, "only the unfinished cells are computed"
    assert runs.attrs["from_cache"] == 3, "two rows from the ledger, one from its finished stage"
    assert len(runs) == PLANNED and runs["run"].is_unique
    stored = ledger.path.read_text().splitlines()
    assert len(stored) == PLANNED and len({line.split('"row"')[0] for line in stored}) == PLANNED
    assert stage_times(series, finished) == before, "finished cells were not recomputed"
    reference_runs = reference.drop(columns=["selected", "flag_low_val_acc"])
    pd.testing.assert_frame_equal(without_wall_clock(runs), without_wall_clock(reference_runs))

    again = series.unlearning_runs(originals=originals)
    assert len(resumed) == PLANNED - 3 and again.attrs["from_cache"] == PLANNED
    assert len(ledger.path.read_text().splitlines()) == PLANNED


@pytest.mark.slow
def test_selection_uses_the_validation_score_never_test_metrics(local_sweep):
    series, originals, results = local_sweep
    differing = 0
    for _, group in results.groupby(RUN_GROUP, dropna=False):
        picked = group[group["selected"]]
        assert len(picked) == 1 and picked["score"].item() == group["score"].max()
        differing += picked["acc_corr"].item() < group["acc_corr"].max()
    assert differing >= 1, "this sweep has a group whose test-best point is not its validation-best"

    # Reverse every test metric within each group: the test-best point becomes the worst and vice
    # versa; the selection must not move.
    scrambled = results.drop(columns=["selected", "flag_low_val_acc"])
    for column in TEST_METRICS:
        scrambled[column] = 1.0 - scrambled[column]
    again = series.results(scrambled, originals)
    assert again["selected"].tolist() == results["selected"].tolist()


def start_local_ray(ray) -> None:
    """Ray on one local CPU (light on a shared machine). Its raylet must register within a fixed 30 s, which a heavily loaded
    machine can miss once; a second start then usually succeeds."""
    try:
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    except Exception:
        ray.shutdown()
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)


@pytest.mark.slow
def test_ray_and_local_executors_give_identical_tables(local_sweep, tmp_path):
    ray = pytest.importorskip("ray")
    _, local_originals, local = local_sweep
    start_local_ray(ray)
    try:
        series = tiny_series(tmp_path, "ray", executor="ray")
        originals = series.originals()  # trained on a Ray worker
        runs = series.unlearning_runs(originals=originals)
    finally:
        ray.shutdown()
    assert originals[0].trained.directory.name == local_originals[0].trained.directory.name
    local_table = series.originals_table(local_originals)
    pd.testing.assert_frame_equal(without_wall_clock(series.originals_table(originals)).drop(columns="directory"),
                                  without_wall_clock(local_table).drop(columns="directory"))
    local_runs = local.drop(columns=["selected", "flag_low_val_acc"])
    pd.testing.assert_frame_equal(without_wall_clock(runs), without_wall_clock(local_runs))
    assert runs.attrs["from_cache"] == 0 and np.isfinite(runs["score"]).all()


def test_ray_without_ray_installed_is_a_config_error_saying_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # how Python marks a module as not importable
    with pytest.raises(ConfigError, match=r"pip install unlearnkit\[ray\]"):
        SeriesParameters(executor="ray")


@pytest.mark.parametrize("values, message", [
    ({"executor": "dask"}, "unknown executor 'dask'"),
    ({"ray_address": "auto"}, "ray_address applies to executor 'ray' only"),
    ({"gpus_per_run": 0.5}, "gpus_per_run applies to executor 'ray' only"),
    ({"cpus_per_run": 0}, "cpus_per_run must be in"),
])
def test_executor_options_are_checked_before_any_compute(values, message):
    with pytest.raises(ConfigError, match=message):
        SeriesParameters.from_mapping(values)
