"""The ``language`` family: a trigger-phrase backdoor and Gaussian embedding poisons in a fine-tuned
``transformers`` classifier, unlearned through the method registry and audited (Pawelczyk et al. 2025).

One notebook, ``08_language_models``, runs every stage; each is cached in the artifact store:
``lm-poison`` (the poisoned positions and forget sets), ``lm-original`` (the fine-tuned M_o as
safetensors), ``lm-audit`` (M_o's audits on each forget set: the "before") and ``lm-unlearn`` (one
per run). The run folder gets ``originals.csv`` and ``results.csv`` (one row per unlearning run, the
model picked per method and alpha marked ``selected``, as in the core series).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..config import ConfigError, check_range, from_dict, to_dict
from ..device import pick_device
from ..frontend import tqdm
from ..manipulations import forget_sets
from ..store import ArtifactStore, load_tensors, read_json, save_table, save_tensors, write_json
from ..text.datasets import TEXT_DATASETS, TextDataConfig, TextSplits
from ..text.experiment import (
    LanguageExperimentConfig,
    TrainedLanguageOriginal,
    load_and_manipulate,
    train_language_original,
)
from ..text.manipulations import TextManipulated, build_text_manipulation
from ..text.metrics import TextAudits, text_audits
from ..text.pipeline import predict_token_logits
from ..text.runner import text_unlearning_run
from ..text.training import TextTrainConfig
from ..unlearning import METHODS, Budget
from .families import Family, register_family
from .parameters import SeriesParameters, _expand
from .paths import output_root
from .schema import CommonParameters, canonical_manipulation, data_values, stage_field
from .stages import RUN_GROUP, mark_selected, tidy_runs

# The smoke set (the notebook's defaults): a 2-layer BERT trained from scratch on byte tokens, so the notebook
# runs in a couple of minutes on a CPU; lm-quick.yaml runs the pretrained MiniLM-L6.
SMOKE_TRAIN = {"steps": 80, "batch_size": 16, "lr": 2e-3, "log_every": 10}
SMOKE_MANIPULATIONS = [
    {"name": "trigger-phrase", "phrase": "cf mn", "position": "start", "target_class": 0, "fraction": 0.1, "seed": 0},
    {"name": "gaussian-embedding", "eps": 0.5, "fraction": 0.1, "seed": 0},
]
SMOKE_METHODS = {
    "cf": {}, "ga": {"lr": 2e-4}, "neggrad+": {"lr": 5e-4, "beta": 0.9}, "scrub": {"lr": 5e-4},
    "npo": {"lr": 5e-4, "beta": 0.1},
}


@dataclass(frozen=True)
class LanguageParameters(CommonParameters):
    """Everything the language-model notebook depends on; fields follow the stage that first uses them."""

    # poison: texts, attacks, identified fractions, seeds.
    dataset: str = stage_field("poison", "rotten-tomatoes")
    data_root: str | None = stage_field("poison", None)
    download: bool = stage_field("poison", True)
    val_size: int = stage_field("poison", 100)
    train_subset: int | None = stage_field("poison", 600)
    test_subset: int | None = stage_field("poison", 200)
    data_seed: int = stage_field("poison", 0)
    manipulations: list[dict[str, Any]] = stage_field("poison", factory=lambda: [dict(m) for m in SMOKE_MANIPULATIONS])
    alphas: list[float] = stage_field("poison", factory=lambda: [1.0])
    seeds: list[int] = stage_field("poison", factory=lambda: [0])
    # train: the fine-tuned original model M_o.
    model: str = stage_field("train", "tiny-bert")
    max_length: int = stage_field("train", 128)
    train: dict[str, Any] = stage_field("train", factory=lambda: dict(SMOKE_TRAIN))
    # unlearn: methods (a list sweeps, grid names a paper grid), budgets as shares of fine-tuning.
    methods: dict[str, Any] = stage_field("unlearn", factory=lambda: {k: dict(v) for k, v in SMOKE_METHODS.items()})
    budget_fraction: float | list[float] | None = stage_field("unlearn", 0.25)
    budget_steps: int | list[int] | None = stage_field("unlearn", None)
    # evaluate: model selection without test labels.
    min_relative_val_acc: float | None = stage_field("evaluate", None)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dataset.lower() not in TEXT_DATASETS:
            TEXT_DATASETS.get(self.dataset)
        if not self.manipulations:
            raise ConfigError("manipulations must list at least one manipulation")
        if not self.alphas or len(set(self.alphas)) != len(self.alphas):
            raise ConfigError(f"alphas must list distinct identified fractions, got {self.alphas}")
        for i, alpha in enumerate(self.alphas):
            check_range(f"alphas[{i}]", alpha, 0.0, 1.0, low_open=True)
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must list distinct seeds, got {self.seeds}")
        for i, seed in enumerate(self.seeds):
            check_range(f"seeds[{i}]", seed, 0)
        if self.min_relative_val_acc is not None:
            check_range("min_relative_val_acc", self.min_relative_val_acc, 0.0, 1.0)
        for index in range(len(self.manipulations)):
            self.experiment(index, self.seeds[0])
        self.budgets()
        if not self.methods:
            raise ConfigError("methods must name at least one unlearning method")
        for name in self.methods:
            if not METHODS.get(name).supports_text:
                raise ConfigError(f"methods.{name}: not available for language models (it needs image batches or "
                                  "a block-structured network)")
            self.method_points(name)

    def data_config(self) -> TextDataConfig:
        return from_dict(TextDataConfig, data_values(self), prefix="data.")

    def canonical_manipulation(self, index: int) -> dict[str, Any]:
        return canonical_manipulation(self.manipulations, index, build_text_manipulation)

    # The core series' rules for labels and budgets apply unchanged (they read only these fields).
    def manipulation_labels(self) -> list[str]:
        return SeriesParameters.manipulation_labels(self)

    def train_config(self, seed: int = 0) -> TextTrainConfig:
        return from_dict(TextTrainConfig, {**self.train, "seed": self.train.get("seed", 0) + seed}, prefix="train.")

    def experiment(self, index: int, seed: int) -> LanguageExperimentConfig:
        return LanguageExperimentConfig(data=self.data_config(), manipulation=self.canonical_manipulation(index),
                                        model=self.model, max_length=self.max_length, model_seed=seed,
                                        train=self.train_config(seed))

    def budgets(self) -> list[Budget | None]:
        return SeriesParameters.budgets(self)

    def budgets_for(self, method: str) -> list[Budget | None]:
        return SeriesParameters.budgets_for(self, method)

    def method_points(self, name: str) -> list[dict[str, Any]]:
        spec = self.methods[name]
        specs = spec if isinstance(spec, list) else [spec]
        points = []
        for index, entry in enumerate(specs):
            where = f"methods.{name}" + (f"[{index}]" if isinstance(spec, list) else "")
            if entry is not None and not isinstance(entry, dict):
                raise ConfigError(f"{where} must be a mapping of hyper-parameters, got {entry!r}")
            points += _expand(name, dict(entry or {}), where)
        return points


@dataclass
class PoisonedTexts:
    label: str
    seed: int
    splits: TextSplits
    manipulated: TextManipulated
    forget: dict[float, torch.Tensor]
    directory: Path
    cache_hit: bool

    def counts(self) -> dict[str, Any]:
        return {"manipulation": self.label, "seed": self.seed, "n_train": len(self.splits.train),
                "n_manipulated": self.manipulated.n_manipulated,
                **{f"n_forget@{alpha:g}": len(forget) for alpha, forget in self.forget.items()}}

    def examples(self, count: int = 4) -> pd.DataFrame:
        """The first poisoned training texts, clean and as trained on."""
        positions = self.manipulated.manipulated[:count].tolist()
        names = self.splits.info.class_names
        return pd.DataFrame({
            "clean text": [self.splits.train.texts[i] for i in positions],
            "clean label": [names[int(self.manipulated.clean_train_labels[i])] for i in positions],
            "as trained": [self.manipulated.train.texts[i] for i in positions],
            "trained label": [names[int(self.manipulated.train.labels[i])] for i in positions],
        })


@dataclass
class LanguageOriginal:
    label: str
    seed: int
    trained: TrainedLanguageOriginal
    val_acc: float


class LanguageSeries:
    """The cached stages of one language-model parameter set."""

    def __init__(self, params: LanguageParameters):
        self.params = params
        self.store = ArtifactStore(output_root(params.output_root), params.run_name)
        self.device = pick_device(params.device)

    @property
    def run_dir(self) -> Path:
        return self.store.run_dir

    def publish(self, figure, name: str):
        """Write ``figure`` to ``<run>/figures/name.html`` (and ``.png`` if possible); return it."""
        from .export import save_figure

        save_figure(figure, self.run_dir / "figures", name, png=self.params.export_png)
        return figure

    def _experiments(self):
        for index, label in enumerate(self.params.manipulation_labels()):
            for seed in self.params.seeds:
                yield index, label, seed

    # poison ------------------------------------------------------------------------------------

    def poisoned(self, force: bool = False) -> list[PoisonedTexts]:
        """Manipulate the training texts and draw the nested forget sets; indices recorded in the store."""
        results = []
        for index, label, seed in self._experiments():
            experiment = self.params.experiment(index, seed)
            splits, manipulated = load_and_manipulate(experiment)
            forget = forget_sets(manipulated.manipulated, self.params.alphas, seed)
            key = {"data": to_dict(experiment.data), "manipulation": experiment.manipulation,
                   "alphas": sorted(forget), "forget_seed": seed}

            def record(directory: Path, manipulated=manipulated, forget=forget) -> None:
                save_tensors(directory / "manipulated.safetensors", {
                    "positions": manipulated.manipulated, "clean_labels": manipulated.clean_train_labels[manipulated.manipulated],
                    "manipulated_labels": manipulated.train.labels[manipulated.manipulated]})
                save_tensors(directory / "forget_sets.safetensors", {f"alpha={a:g}": f for a, f in forget.items()})

            directory, hit = self.store.build("lm-poison", key, record, force=force)
            if hit and not torch.equal(load_tensors(directory / "manipulated.safetensors")["positions"],
                                       manipulated.manipulated):
                raise RuntimeError(f"{directory}: the recorded poisoned positions differ from the ones drawn now; "
                                   "rerun with force=True")
            results.append(PoisonedTexts(label, seed, splits, manipulated, forget, directory, hit))
        return results

    # train -------------------------------------------------------------------------------------

    def originals(self, force: bool = False) -> list[LanguageOriginal]:
        """Fine-tune (or load) M_o for every manipulation and seed."""
        results = []
        for index, label, seed in self._experiments():
            trained = train_language_original(self.params.experiment(index, seed), self.store, str(self.device),
                                              progress=self.params.progress, force=force)
            val = trained.data.val
            predictions = predict_token_logits(trained.model, val, autocast_bf16=trained.config.train.bf16).argmax(1)
            val_acc = (predictions == val.labels).double().mean().item()
            results.append(LanguageOriginal(label, seed, trained, val_acc))
        return results

    def originals_table(self, originals: list[LanguageOriginal]) -> pd.DataFrame:
        rows = []
        for original in originals:
            trained = original.trained
            manifest = read_json(trained.directory / "manifest.json")
            rows.append({"manipulation": original.label, "dataset": trained.data.splits.info.name,
                         "model": trained.config.model, "seed": original.seed,
                         "n_manipulated": trained.data.manipulated.n_manipulated, **trained.metrics,
                         "val_acc": original.val_acc, "train_steps": trained.config.train.steps,
                         "train_seconds": manifest.get("train_seconds"), "directory": trained.directory.name})
        table = pd.DataFrame.from_records(rows)
        save_table(self.run_dir / "originals.csv", table)
        return table

    # unlearn -----------------------------------------------------------------------------------

    def planned_runs(self) -> int:
        points = sum(len(self.params.method_points(name)) * len(self.params.budgets_for(name))
                     for name in self.params.methods)
        return len(self.params.manipulations) * len(self.params.seeds) * points * len(self.params.alphas)

    def original_audits(self, original: LanguageOriginal, alpha: float, forget: torch.Tensor,
                        force: bool = False) -> dict[str, float]:
        """M_o's audits on the forget set at ``alpha`` (the "before"), cached with its GUS scores."""
        trained = original.trained
        key = {"experiment": to_dict(trained.config), "alpha": alpha, "forget_seed": original.seed}

        def build(directory: Path) -> None:
            _write_audits(directory, text_audits(trained.model, trained.data, forget, trained.config.train.bf16))

        directory, _ = self.store.build("lm-audit", key, build, force=force)
        return read_json(directory / "audits.json")

    def unlearning_runs(self, force: bool = False, originals: list[LanguageOriginal] | None = None) -> pd.DataFrame:
        """Every method x setting x budget x alpha on every original, one cached stage per run."""
        originals = originals or self.originals()
        rows, hits = [], 0
        bar = tqdm(total=self.planned_runs(), desc="unlearning runs", disable=not self.params.progress)
        for original in originals:
            trained = original.trained
            sets = forget_sets(trained.data.manipulated.manipulated, self.params.alphas, original.seed)
            for alpha, forget in sets.items():
                before = self.original_audits(original, alpha, forget)
                for method in self.params.methods:
                    for point, given in itertools.product(self.params.method_points(method),
                                                          self.params.budgets_for(method)):
                        bar.set_postfix_str(f"{original.label} {method} alpha={alpha:g}")
                        key = {"experiment": to_dict(trained.config), "method": method, "params": point,
                               "alpha": alpha, "forget_seed": original.seed,
                               "budget": to_dict(given) if given else None, "seed": original.seed}
                        build = functools.partial(_unlearning_run, original=trained, method=method, params=point,
                                                  alpha=alpha, forget=forget, budget=given, seed=original.seed,
                                                  before=before)
                        directory, hit = self.store.build("lm-unlearn", key, build, force=force)
                        hits += hit
                        rows.append({**read_json(directory / "row.json"), "manipulation": original.label,
                                     "run": directory.name})
                        bar.update(1)
        bar.close()
        table = tidy_runs(rows)
        table.attrs["from_cache"] = hits
        save_table(self.run_dir / "unlearning_runs.csv", table)
        return table

    # evaluate ----------------------------------------------------------------------------------

    def results(self, runs: pd.DataFrame | None = None,
                originals: list[LanguageOriginal] | None = None) -> pd.DataFrame:
        """All runs with the model selected per (manipulation, seed, method, budget, alpha) marked
        (Goel et al.'s validation-only score); writes results.csv."""
        originals = originals or self.originals()
        runs = self.unlearning_runs(originals=originals) if runs is None else runs
        table = mark_selected(runs, originals, RUN_GROUP, self.params.min_relative_val_acc)
        save_table(self.run_dir / "results.csv", table)
        return table

    def gus_scores(self, results: pd.DataFrame, originals: list[LanguageOriginal]) -> pd.DataFrame:
        """Per-poison GUS scores ``I_z`` of M_o, of every selected run and of the control noise, long format."""
        frames = []
        for original in originals:
            for alpha in self.params.alphas:
                key = {"experiment": to_dict(original.trained.config), "alpha": alpha, "forget_seed": original.seed}
                directory = self.store.stage_dir("lm-audit", key)
                frames += _scores_frames(directory, original.label, original.seed, alpha, "M_o")
        selected = results[results["selected"]]
        for row in selected.itertuples():
            frames += _scores_frames(self.run_dir / row.run, row.manipulation, row.seed, row.alpha, row.method,
                                     with_control=False)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            columns=["manipulation", "seed", "alpha", "model", "score"])


def _write_audits(directory: Path, audits: TextAudits) -> None:
    write_json(directory / "audits.json", audits.summary())
    if audits.gus is not None:
        save_tensors(directory / "gus_scores.safetensors", {"scores": audits.gus.scores,
                                                            "control": audits.gus.control_scores})


def _scores_frames(directory: Path, manipulation: str, seed: int, alpha: float, label: str,
                   with_control: bool = True) -> list[pd.DataFrame]:
    path = directory / "gus_scores.safetensors"
    if not path.is_file():
        return []
    tensors = load_tensors(path)
    frames = [pd.DataFrame({"manipulation": manipulation, "seed": seed, "alpha": alpha, "model": label,
                            "score": tensors["scores"].numpy()})]
    if with_control:
        frames.append(pd.DataFrame({"manipulation": manipulation, "seed": seed, "alpha": alpha,
                                    "model": "control noise (never trained on)", "score": tensors["control"].numpy()}))
    return frames


def _unlearning_run(directory: Path, original: TrainedLanguageOriginal, method: str, params: dict[str, Any],
                    alpha: float, forget: torch.Tensor, budget: Budget | None, seed: int,
                    before: dict[str, float]) -> None:
    row, audits = text_unlearning_run(original, method, params, alpha, forget, budget, seed, before)
    write_json(directory / "row.json", row)
    _write_audits(directory, audits)


# Summary ---------------------------------------------------------------------------------------

def before_after_table(results: pd.DataFrame, originals: pd.DataFrame) -> pd.DataFrame:
    """Selected runs per manipulation, method and alpha: clean accuracy, ASR, GUS mean and MIA AUC,
    with M_o's values ("before") beside them."""
    selected = results[results["selected"]].copy()
    base = originals.set_index(["manipulation", "seed"])
    for metric in ("acc_clean", "asr"):
        selected[f"before_{metric}"] = [base.loc[(m, s), metric] for m, s in zip(selected["manipulation"],
                                                                                   selected["seed"])]
    columns = ["manipulation", "method", "alpha"]
    metrics = ["acc_clean", "asr", "gus_mean", "gus_tpr_at_1pct_fpr", "mia_auc", "mia_tpr_at_1pct_fpr"]
    keep = []
    for metric in metrics:
        if metric in selected and f"before_{metric}" in selected:
            keep += [f"before_{metric}", metric]
    return (selected.groupby(columns, sort=False)[keep].mean().reset_index())


def language_summary(run_dir: Path) -> str:
    """The terminal lines of ``unlearnkit run``: M_o, then each selected method, per manipulation."""
    run_dir = Path(run_dir)
    results, originals = pd.read_csv(run_dir / "results.csv"), pd.read_csv(run_dir / "originals.csv")
    table = before_after_table(results, originals)
    lines = []
    for manipulation, group in originals.groupby("manipulation", sort=False):
        gus = group["gus_mean"].mean() if "gus_mean" in group else np.nan
        lines.append(f"{manipulation}: M_o acc_clean {group['acc_clean'].mean():.3f}"
                     + ("" if np.isnan(group["asr"].mean()) else f", asr {group['asr'].mean():.3f}")
                     + ("" if np.isnan(gus) else f", GUS mean {gus:+.2f}")
                     + f", MIA AUC {group['mia_auc'].mean():.3f}")
        lines.append(f"  {'method':<10} {'alpha':>5} {'acc_clean':>9} {'asr':>6} {'GUS mean':>9} {'MIA AUC':>8}")
        for row in table[table["manipulation"] == manipulation].itertuples():
            gus = getattr(row, "gus_mean", np.nan)
            lines.append(f"  {row.method:<10} {row.alpha:>5g} {row.acc_clean:>9.3f} {row.asr:>6.3f} "
                         f"{gus:>+9.2f} {row.mia_auc:>8.3f}")
    return "\n".join(lines)


LANGUAGE = register_family(Family(
    name="language",
    parameters=LanguageParameters,
    notebooks={"08_language_models": ("common", "poison", "train", "unlearn", "evaluate")},
    summary=language_summary,
    description="language models: trigger-phrase backdoor and Gaussian embedding poisons in a fine-tuned "
                "transformers classifier, unlearning, GUS and MIA (Pawelczyk et al. 2025)",
))
