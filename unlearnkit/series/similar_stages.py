"""The cached stages of the ``similar`` family, on top of the core series' ``poison`` and ``original``.

``reference`` (per original: retrain without S_m and its near-duplicates) -> ``expansion`` (per
original, alpha and scorer: every candidate's score) -> ``expand-unlearn`` (per method, setting,
budget, alpha and expansion: one unlearning run) -> results with model selection, the alpha at which
Acc_corr recovers, and the influence left on S_f. Each stage loads from the store or builds, so the
notebook runs alone and an interrupted run resumes.
"""

from __future__ import annotations

import functools
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..config import to_dict
from ..expansion import (
    ExpansionContext,
    ExpansionPolicy,
    expand_unlearn_and_evaluate,
    expansion_quality,
    ranking_curve,
    score_candidates,
)
from ..expansion.base import scores_key
from ..experiment import TrainedOriginal, new_model
from ..frontend import tqdm
from ..manipulations import NearDuplicated, forget_sets, related_positions
from ..metrics import evaluate
from ..store import load_model_weights, load_tensors, read_json, save_model, save_table, save_tensors, write_json
from ..unlearning import Budget, make_task, unlearn
from .similar import SimilarParameters
from .similar_tables import recovery_table
from .stages import RUN_GROUP, Original, Series, mark_selected, tidy_runs

SIMILAR_GROUP = [*RUN_GROUP, "expansion"]
"""One selected model per group: selection picks among hyper-parameter settings only."""
REFERENCE_KEY = "retrain from scratch without S_m and its near-duplicates"


@dataclass
class Reference:
    """The model that never saw S_m or any near-duplicate of it (Goel et al.'s U*_corr)."""

    label: str
    seed: int
    model: torch.nn.Module
    metrics: dict[str, float]
    n_removed: int
    directory: Path
    cache_hit: bool


class SimilarSeries:
    """The stages of one ``similar`` parameter set; the core stages come from a :class:`Series`."""

    def __init__(self, params: SimilarParameters):
        self.params = params
        self.series = Series(params)
        self.store = self.series.store
        self._contexts: dict[tuple[str, int], ExpansionContext] = {}

    @property
    def run_dir(self) -> Path:
        return self.series.run_dir

    @property
    def device(self) -> torch.device:
        return self.series.device

    def publish(self, figure, name: str):
        return self.series.publish(figure, name)

    def poisoned(self, force: bool = False):
        """The core series' ``poison`` stage (manipulated sets and forget sets)."""
        return self.series.poisoned(force)

    def originals(self, force: bool = False) -> list[Original]:
        """The core series' ``original`` stage; also writes ``originals.csv``."""
        originals = self.series.originals(force)
        self.series.originals_table(originals)
        return originals

    def context(self, original: Original) -> ExpansionContext:
        """The expansion context of an original model, shared by every stage of this object."""
        key = (original.label, original.seed)
        if key not in self._contexts:
            self._contexts[key] = ExpansionContext.of(original.trained)
        return self._contexts[key]

    def forget_sets(self, original: Original) -> dict[float, torch.Tensor]:
        return forget_sets(original.trained.manipulated.manipulated, self.params.alphas, original.seed)

    # reference ---------------------------------------------------------------------------------

    def references(self, originals: list[Original], force: bool = False) -> list[Reference]:
        """Train (or load) one reference model per original: the recipe, from scratch, without S_m and
        every near-duplicate of it."""
        results = []
        for original in originals:
            trained = original.trained
            key = {"experiment": to_dict(trained.config), "reference": REFERENCE_KEY, "seed": original.seed}
            build = functools.partial(_train_reference, original=trained, seed=original.seed)
            directory, hit = self.store.build("reference", key, build, force=force)
            model = new_model(trained.config, trained.splits, self.device)
            load_model_weights(directory / "model.safetensors", model)
            if trained.config.train.channels_last:
                model = model.to(memory_format=torch.channels_last)
            manifest = read_json(directory / "manifest.json")
            results.append(Reference(original.label, original.seed, model.eval(), read_json(directory / "metrics.json"),
                                     manifest["n_removed"], directory, hit))
        return results

    def references_table(self, references: list[Reference]) -> pd.DataFrame:
        table = pd.DataFrame.from_records([
            {"manipulation": r.label, "seed": r.seed, "n_removed": r.n_removed, **r.metrics,
             "directory": r.directory.name} for r in references])
        save_table(self.run_dir / "references.csv", table)
        return table

    # expand ------------------------------------------------------------------------------------

    def expansions(self, originals: list[Original], force: bool = False) -> pd.DataFrame:
        """Precision and recall of every scorer x size at every alpha; writes ``expansion.csv``.

        The scores of every candidate are cached per original, alpha and scorer (``expansion-<hash>``),
        so sizes can change without rescoring and the unlearning runs reuse the very same ranking.
        """
        rows = []
        for original in originals:
            context = self.context(original)
            manipulated = original.trained.manipulated
            target = related_positions(manipulated)
            duplicates = manipulated.duplicates if isinstance(manipulated, NearDuplicated) else None
            for alpha, forget in self.forget_sets(original).items():
                for scorer, values in self.params.scorers.items():
                    candidates, scores, directory = self._scores(original, context, alpha, forget, scorer, values, force)
                    for size in self.params.sizes():
                        added = candidates[size.pick(scores, len(forget)).to(candidates.device)]
                        quality = expansion_quality(added, forget, target, duplicates)
                        rows.append({"manipulation": original.label, "seed": original.seed, "alpha": alpha,
                                     "n_manipulated": manipulated.n_manipulated, "n_forget": len(forget),
                                     "scorer": scorer, "scorer_params": json.dumps(values or {}, sort_keys=True),
                                     "size": size.label, **quality, "run": directory.name})
        table = pd.DataFrame.from_records(rows)
        save_table(self.run_dir / "expansion.csv", table)
        return table

    def _scores(self, original: Original, context: ExpansionContext, alpha: float, forget: torch.Tensor,
                scorer: str, values: dict[str, Any] | None, force: bool) -> tuple[torch.Tensor, torch.Tensor, Path]:
        policy = ExpansionPolicy(scorer, values)
        key = {"experiment": to_dict(original.trained.config), "alpha": alpha, "forget_seed": original.seed,
               "scorer": scorer, "params": to_dict(policy.params), "seed": original.seed}

        def build(directory: Path) -> None:
            candidates, scores = score_candidates(context, forget, scorer, policy.params, original.seed)
            save_tensors(directory / "scores.safetensors", {"candidates": candidates, "scores": scores})

        directory, _ = self.store.build("expansion", key, build, force=force)
        stored = load_tensors(directory / "scores.safetensors")
        candidates, scores = stored["candidates"].to(forget.device), stored["scores"]
        # The unlearning runs of this object expand with exactly the stored ranking.
        context.remember(scores_key(forget, scorer, policy.params, original.seed), lambda: (candidates, scores))
        return candidates, scores, directory

    def ranking_curves(self, originals: list[Original], alpha: float | None = None, up_to: float = 3.0
                       ) -> pd.DataFrame:
        """Precision and recall of adding the top-n candidates of every scorer, for n up to ``up_to``
        times the number still to be found, at ``alpha`` (default: the smallest), first seed only."""
        alpha = min(self.params.alphas) if alpha is None else alpha
        frames = []
        for original in originals:
            if original.seed != self.params.seeds[0]:
                continue
            forget = self.forget_sets(original)[float(alpha)]
            target = related_positions(original.trained.manipulated)
            to_find = int((~torch.isin(target, forget.to(target.device))).sum())
            for scorer, values in self.params.scorers.items():
                candidates, scores, _ = self._scores(original, self.context(original), alpha, forget, scorer,
                                                     values, False)
                curve = ranking_curve(candidates, scores, forget, target)
                curve = curve[curve["n_added"] <= max(1, int(up_to * max(to_find, len(forget))))]
                frames.append(curve.assign(manipulation=original.label, scorer=scorer, alpha=alpha,
                                           n_to_find=to_find))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    # expand-then-unlearn ------------------------------------------------------------------------

    def planned_runs(self) -> int:
        points = sum(len(self.params.method_points(name)) * len(self.params.budgets_for(name))
                     for name in self.params.methods)
        return (len(self.params.manipulations) * len(self.params.seeds) * len(self.params.alphas) * points
                * len(self.params.unlearning_policies()))

    def unlearning_runs(self, originals: list[Original], references: list[Reference],
                        force: bool = False) -> pd.DataFrame:
        """Every method x setting x budget x alpha x expansion (none first), one cached stage per run."""
        reference_of = {(r.label, r.seed): r for r in references}
        rows, hits = [], 0
        bar = tqdm(total=self.planned_runs(), desc="expand-then-unlearn", disable=not self.params.progress)
        for original in originals:
            trained, context = original.trained, self.context(original)
            reference = reference_of[(original.label, original.seed)]
            for alpha, forget in self.forget_sets(original).items():
                for policy in self.params.unlearning_policies():
                    if policy is not None:  # load (or build) the cached ranking this expansion uses
                        self._scores(original, context, alpha, forget, policy.scorer, self.params.scorers[policy.scorer],
                                     False)
                    for method in self.params.methods:
                        for point, given in itertools.product(self.params.method_points(method),
                                                              self.params.budgets_for(method)):
                            label = policy.label if policy else "no expansion"
                            bar.set_postfix_str(f"{original.label} {method} alpha={alpha:g} {label}")
                            key = {"experiment": to_dict(trained.config), "method": method, "params": point,
                                   "alpha": alpha, "forget_seed": original.seed,
                                   "budget": to_dict(given) if given else None, "seed": original.seed,
                                   "expansion": policy.as_dict() if policy else None, "reference": REFERENCE_KEY}
                            build = functools.partial(
                                _expand_unlearn_run, original=trained, method=method, params=point, alpha=alpha,
                                forget=forget, policy=policy, reference=reference.model, budget=given,
                                seed=original.seed, context=context)
                            directory, hit = self.store.build("expand-unlearn", key, build, force=force)
                            hits += hit
                            row = read_json(directory / "row.json")
                            rows.append({**row, "manipulation": original.label, "run": directory.name})
                            bar.update(1)
        bar.close()
        table = tidy_runs(rows)
        table.attrs["from_cache"] = hits
        return table

    def results(self, runs: pd.DataFrame, originals: list[Original]) -> pd.DataFrame:
        """All runs with the selected model per (manipulation, seed, method, budget, alpha, expansion)
        marked (validation score of Goel et al., never the test set); writes ``results.csv``."""
        table = mark_selected(runs, originals, SIMILAR_GROUP, self.params.min_relative_val_acc)
        save_table(self.run_dir / "results.csv", table)
        return table

    def recovery(self, results: pd.DataFrame, references: pd.DataFrame) -> pd.DataFrame:
        """:func:`~unlearnkit.series.similar_tables.recovery_table` at ``recovery_fraction``; writes ``recovery.csv``."""
        table = recovery_table(results, references, self.params.recovery_fraction)
        save_table(self.run_dir / "recovery.csv", table)
        return table


def _train_reference(directory: Path, original: TrainedOriginal, seed: int) -> dict[str, Any]:
    """RewoD with the full recipe on the training set minus S_m and its near-duplicates."""
    removed = related_positions(original.manipulated)
    result = unlearn("rewod", make_task(original, removed), seed=seed)
    save_model(directory / "model.safetensors", result.model)
    write_json(directory / "metrics.json", evaluate(result.model, original.splits, original.manipulated,
                                                    autocast_bf16=original.config.train.bf16))
    return {"train_seconds": result.seconds, "n_removed": len(removed)}


def _expand_unlearn_run(directory: Path, original: TrainedOriginal, method: str, params: dict[str, Any],
                        alpha: float, forget: torch.Tensor, policy: ExpansionPolicy | None,
                        reference: torch.nn.Module, budget: Budget | None, seed: int,
                        context: ExpansionContext) -> None:
    row = expand_unlearn_and_evaluate(original, method, params, alpha, forget, policy, reference, budget, seed,
                                      context)
    row["expansion_params"] = json.dumps(row["expansion_params"], sort_keys=True)
    write_json(directory / "row.json", row)
