"""Expanding the identified set S_f: rank the rest of the training set by how likely each sample belongs
with S_f, then add the top of the ranking.

Goel et al. ("Corrective Machine Unlearning", TMLR 2024, Sec. 2.3 and 5) point out that when only a
fraction alpha of the manipulated set S_m is identified, the unidentified S_m \\ S_f keeps the damage
alive, and ask whether the identified subset can be used to find more of it. A *scorer* (registered in
:data:`SCORERS`) gives every candidate (the training set minus S_f) a score, higher meaning "more like
S_f"; an :class:`ExpansionSize` picks how many to add (a count, a multiple of |S_f|, or a score
threshold). In experiments the true S_m is known, so :func:`expansion_quality` reports the precision
and recall of what was added.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd
import torch

from ..config import ConfigError, check_range, from_dict, to_dict
from ..registry import Registry
from .context import ExpansionContext


class Scorer:
    """Base class: subclasses set ``name``, ``Params`` (a frozen dataclass) and implement ``score``."""

    name: ClassVar[str]
    Params: ClassVar[type]

    def score(self, context: ExpansionContext, forget: torch.Tensor, candidates: torch.Tensor, params: Any,
              seed: int) -> torch.Tensor:
        """One score per candidate position (float64, CPU); higher = more likely to belong with ``forget``."""
        raise NotImplementedError


SCORERS: Registry[type[Scorer]] = Registry("expansion scorer")


def scorer_params(name: str, values: Mapping[str, Any] | None = None) -> Any:
    """Validated parameters of scorer ``name`` (unknown keys and bad values are errors)."""
    return from_dict(SCORERS.get(name).Params, values or {}, prefix=f"scorers.{name}.")


@dataclass(frozen=True)
class ExpansionSize:
    """How many candidates to add: ``count``, ``multiple`` of |S_f|, or all scoring at least ``threshold``."""

    count: int | None = None
    multiple: float | None = None
    threshold: float | None = None

    def __post_init__(self) -> None:
        given = [key for key in ("count", "multiple", "threshold") if getattr(self, key) is not None]
        if len(given) != 1:
            raise ConfigError(f"expansion size: give exactly one of 'count', 'multiple' and 'threshold', "
                              f"got {given or 'none'}")
        if self.count is not None:
            check_range("expansion.count", self.count, 1)
        if self.multiple is not None:
            check_range("expansion.multiple", self.multiple, 0.0, low_open=True)

    @property
    def label(self) -> str:
        if self.count is not None:
            return f"+{self.count}"
        if self.multiple is not None:
            return f"+{self.multiple:g}x|S_f|"
        return f"score>={self.threshold:g}"

    def pick(self, scores: torch.Tensor, n_forget: int) -> torch.Tensor:
        """Indices into ``scores`` of the candidates to add, best first (ties: lower index first)."""
        order = torch.argsort(scores, descending=True, stable=True)
        if self.threshold is not None:
            return order[scores[order] >= self.threshold]
        size = self.count if self.count is not None else int(self.multiple * n_forget + 0.5)
        return order[:min(size, len(scores))]


@dataclass(frozen=True)
class ExpansionPolicy:
    """A scorer with its parameters and a size: everything that decides which samples are added."""

    scorer: str
    params: Any = None
    size: ExpansionSize = field(default_factory=lambda: ExpansionSize(multiple=1.0))

    def __post_init__(self) -> None:
        if self.params is None or isinstance(self.params, Mapping):
            object.__setattr__(self, "params", scorer_params(self.scorer, self.params))
        if isinstance(self.size, Mapping):
            object.__setattr__(self, "size", from_dict(ExpansionSize, self.size, prefix="expansion."))

    @property
    def label(self) -> str:
        return f"{self.scorer} {self.size.label}"

    def as_dict(self) -> dict[str, Any]:
        return {"scorer": self.scorer, "params": to_dict(self.params), "size": to_dict(self.size)}


@dataclass
class Expansion:
    """S_f and the samples an expansion adds to it (positions in the training set)."""

    forget: torch.Tensor
    added: torch.Tensor
    """Added positions, best score first."""
    policy: ExpansionPolicy | None = None

    @property
    def expanded(self) -> torch.Tensor:
        return torch.cat([self.forget, self.added.to(self.forget.device)]).sort().values


def candidates_for(context: ExpansionContext, forget: torch.Tensor) -> torch.Tensor:
    """Every training position outside S_f, in order: what a scorer ranks."""
    everything = torch.arange(len(context.train), device=forget.device)
    return everything[~torch.isin(everything, forget)]


def score_candidates(context: ExpansionContext, forget: torch.Tensor, scorer: str, params: Any = None,
                     seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(candidates, scores)``: every position outside S_f and its score under ``scorer``.

    The result is remembered by ``context`` (per S_f, scorer, parameters and seed), so methods that
    unlearn the same expansion one after the other score the candidates once.
    """
    if len(forget) == 0:
        raise ConfigError("the forget set S_f is empty: nothing to expand from")
    if params is None or isinstance(params, Mapping):
        params = scorer_params(scorer, params)

    def compute() -> tuple[torch.Tensor, torch.Tensor]:
        candidates = candidates_for(context, forget)
        scores = SCORERS.get(scorer)().score(context, forget, candidates, params, seed)
        if scores.shape != (len(candidates),):
            raise RuntimeError(f"scorer {scorer!r} returned {tuple(scores.shape)} scores for "
                               f"{len(candidates)} candidates")
        return candidates, scores.double().cpu()

    return context.remember(scores_key(forget, scorer, params, seed), compute)


def scores_key(forget: torch.Tensor, scorer: str, params: Any, seed: int) -> str:
    """Identifies one scoring of the candidates of S_f (see :meth:`ExpansionContext.remember`)."""
    digest = hashlib.sha1(forget.cpu().numpy().tobytes()).hexdigest()
    return f"scores:{scorer}:{to_dict(params)}:{seed}:{digest}"


def expand(context: ExpansionContext, forget: torch.Tensor, policy: ExpansionPolicy, seed: int = 0) -> Expansion:
    """Score the candidates with ``policy.scorer`` and add the ones ``policy.size`` picks to S_f."""
    candidates, scores = score_candidates(context, forget, policy.scorer, policy.params, seed)
    added = candidates[policy.size.pick(scores, len(forget)).to(candidates.device)]
    return Expansion(forget, added, policy)


def expansion_quality(added: torch.Tensor, forget: torch.Tensor, target: torch.Tensor,
                      duplicates: torch.Tensor | None = None) -> dict[str, float]:
    """Precision and recall of the added samples against the samples still to be found.

    ``target`` is what should be removed (S_m, plus the near-duplicates of its samples where there are
    any); what is still to be found is ``target \\ S_f``. Precision = share of the added samples that
    are in it (NaN when nothing was added); recall = share of it that was added (NaN when it is empty,
    e.g. alpha = 1 without near-duplicates). ``recall_duplicates`` is the recall on the near-duplicates
    alone, ``recall_sm`` on the unidentified S_m \\ S_f alone.
    """
    device = forget.device
    added, target = added.to(device), target.to(device)
    missing = target[~torch.isin(target, forget)]
    hits = torch.isin(added, missing)

    def share(numerator: int, denominator: int) -> float:
        return numerator / denominator if denominator else float("nan")

    copies = (torch.empty(0, dtype=torch.int64, device=device) if duplicates is None
              else duplicates.to(device)[~torch.isin(duplicates.to(device), forget)])
    unidentified = missing[~torch.isin(missing, copies)]
    return {
        "n_added": len(added),
        "n_to_find": len(missing),
        "precision": share(int(hits.sum()), len(added)),
        "recall": share(int(hits.sum()), len(missing)),
        "recall_sm": share(int(torch.isin(unidentified, added).sum()), len(unidentified)),
        "recall_duplicates": share(int(torch.isin(copies, added).sum()), len(copies)),
    }


def ranking_curve(candidates: torch.Tensor, scores: torch.Tensor, forget: torch.Tensor,
                  target: torch.Tensor) -> pd.DataFrame:
    """Precision and recall of adding the top ``n`` candidates, for every ``n`` (one row per ``n``)."""
    order = torch.argsort(scores, descending=True, stable=True)
    missing = target.to(forget.device)[~torch.isin(target.to(forget.device), forget)]
    hit = torch.isin(candidates[order.to(candidates.device)], missing).cpu().double()
    found = hit.cumsum(0)
    n = torch.arange(1, len(hit) + 1, dtype=torch.float64)
    recall = found / len(missing) if len(missing) else torch.full_like(found, float("nan"))
    return pd.DataFrame({"n_added": n.long().numpy(), "multiple": (n / len(forget)).numpy(),
                         "precision": (found / n).numpy(), "recall": recall.numpy()})
