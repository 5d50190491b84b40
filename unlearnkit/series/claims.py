"""The headline claims of Goel et al. (2024), "Corrective Machine Unlearning" (TMLR), checked on a run.

Each function takes the aggregated tables of a sweep and returns a :class:`Claim`: the paper's
statement (its shape, not its digits), whether it ``holds``, ``does not hold`` here, or could
``not [be] tested`` here (a method, manipulation or alpha missing from the sweep), and the numbers
that decided it. What "restored" and "within about a point" mean is fixed in :class:`ClaimSettings`.

Acc_corr is judged against two references of the same manipulation, as in the paper's Figure 2: the
original model M_o (nothing unlearned) and RewoD at alpha = 1 (exact unlearning of all of S_m, the
gold standard). A method *restores* Acc_corr at alpha when it closes at least ``restore_share`` of
the gap between them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import pandas as pd

from ..config import check_range
from ..unlearning.importance_ratio import RatioDistribution

Outcome = Literal["holds", "does not hold", "not tested"]
SOURCE = "Goel et al. 2024"
FINE_TUNING = ("rewod", "cf", "scrub", "badt")
"""The methods the paper finds slow to correct poisoning: they all train on the retain set."""


@dataclass(frozen=True)
class ClaimSettings:
    restore_share: float = 0.5
    """Share of the gap from M_o to RewoD at alpha = 1 that counts as having restored Acc_corr."""
    late_alpha: float = 0.8
    """The paper's "until alpha ≥ ~0.8": alphas below it are early."""
    margin: float = 0.02
    """Acc_corr differences up to this (absolute) count as no difference."""
    retain_band_pp: float = 1.0
    """"Within about ±1" of Table 1, in percentage points of Acc_retain."""
    steady_rank_correlation: float = 0.7
    """"Improves steadily": Spearman correlation of Acc_corr with alpha at least this."""

    def __post_init__(self) -> None:
        check_range("restore_share", self.restore_share, 0.0, 1.0, low_open=True)
        check_range("late_alpha", self.late_alpha, 0.0, 1.0, low_open=True)
        check_range("margin", self.margin, 0.0, 1.0)
        check_range("retain_band_pp", self.retain_band_pp, 0.0)
        check_range("steady_rank_correlation", self.steady_rank_correlation, -1.0, 1.0)


@dataclass(frozen=True)
class Claim:
    name: str
    source: str
    statement: str
    outcome: Outcome
    evidence: str

    @property
    def verdict(self) -> str:
        return {"holds": "holds", "does not hold": "does not hold here", "not tested": "not tested here"}[self.outcome]

    def line(self) -> str:
        return f"[{self.verdict}] {self.statement} ({self.source}) — {self.evidence}"


def _claim(name: str, where: str, statement: str):
    """``claim(outcome, evidence)`` for the claim ``name`` made in ``where`` of the paper."""
    def claim(outcome: Outcome, evidence: str) -> Claim:
        return Claim(name, f"{SOURCE}, {where}", statement, outcome, evidence)
    return claim


def claims_table(claims: Sequence[Claim]) -> pd.DataFrame:
    return pd.DataFrame([{**asdict(claim), "verdict": claim.verdict} for claim in claims])


# Curves ---------------------------------------------------------------------------------------------

def curve(curves: pd.DataFrame, manipulation: str, method: str, metric: str = "acc_corr") -> pd.Series:
    """``<metric>_mean`` of ``method`` on ``manipulation`` indexed by alpha (empty when absent)."""
    rows = curves[(curves["manipulation"] == manipulation) & (curves["method"] == method)]
    if rows["alpha"].duplicated().any():
        raise ValueError(f"{manipulation}/{method}: several budgets per alpha; check claims on one budget at a time")
    return rows.set_index("alpha")[f"{metric}_mean"].sort_index()


def recovered_share(values: pd.Series, original: float, corrected: float) -> pd.Series:
    """Share of the gap from M_o's Acc_corr to RewoD's at alpha = 1 that ``values`` close."""
    return (values - original) / (corrected - original)


def _references(curves: pd.DataFrame, originals: Mapping[str, float], label: str,
                settings: ClaimSettings) -> tuple[float, float] | str:
    """``(M_o, RewoD@1)`` Acc_corr of ``label``, or why the claim cannot be tested."""
    if label not in originals or not len(curves[curves["manipulation"] == label]):
        return f"the sweep has no manipulation {label!r}"
    rewod = curve(curves, label, "rewod")
    if 1.0 not in rewod.index:
        return "needs RewoD at alpha = 1 (the gold standard)"
    original, corrected = originals[label], float(rewod[1.0])
    if corrected - original <= settings.margin:
        return (f"the manipulation did not lower Acc_corr here (M_o {original:.3f}, RewoD at alpha=1 "
                f"{corrected:.3f}): nothing to restore")
    return original, corrected


def _first_restoring_alpha(share: pd.Series, settings: ClaimSettings) -> str:
    restored = share[share >= settings.restore_share]
    return f"{restored.index[0]:g}" if len(restored) else "never"


def fine_tuning_restores_late(curves: pd.DataFrame, originals: Mapping[str, float], poisoning: str,
                              settings: ClaimSettings = ClaimSettings()) -> Claim:
    statement = (f"Poisoning: RewoD, CF, SCRUB and BadT do not restore Acc_corr until alpha ≥ ~{settings.late_alpha:g}")
    claim = _claim("fine_tuning_restores_late", "Figure 2", statement)
    references = _references(curves, originals, poisoning, settings)
    if isinstance(references, str):
        return claim("not tested", references)
    methods = [m for m in FINE_TUNING if len(curve(curves, poisoning, m))]
    if not methods:
        return claim("not tested", "none of RewoD, CF, SCRUB, BadT ran")
    early_alphas = sorted(a for a in curves.loc[curves["manipulation"] == poisoning, "alpha"].unique()
                          if a < settings.late_alpha)
    if not early_alphas:
        return claim("not tested", f"no alpha below {settings.late_alpha:g} in the sweep")
    parts, early_restored = [], []
    for method in methods:
        share = recovered_share(curve(curves, poisoning, method), *references)
        early = share[share.index < settings.late_alpha]
        if (early >= settings.restore_share).any():
            early_restored.append(method)
        parts.append(f"{method}: first restores at alpha {_first_restoring_alpha(share, settings)} "
                     f"(largest early share {early.max():.2f})")
    evidence = "; ".join(parts) + f" [restored = ≥ {settings.restore_share:g} of the gap M_o → RewoD@1]"
    return claim("does not hold" if early_restored else "holds", evidence)


def ssd_restores_early(curves: pd.DataFrame, originals: Mapping[str, float], poisoning: str,
                       settings: ClaimSettings = ClaimSettings()) -> Claim:
    claim = _claim("ssd_restores_early", "Figure 2",
                                    "Poisoning: SSD restores Acc_corr already at the smallest alpha (0.1)")
    references = _references(curves, originals, poisoning, settings)
    if isinstance(references, str):
        return claim("not tested", references)
    share = recovered_share(curve(curves, poisoning, "ssd"), *references)
    if not len(share):
        return claim("not tested", "the sweep has no SSD runs")
    smallest = share.index[0]
    if smallest >= settings.late_alpha:
        return claim("not tested", f"the smallest alpha in the sweep is {smallest:g}")
    evidence = (f"at alpha {smallest:g} SSD closes {share.iloc[0]:.2f} of the gap M_o → RewoD@1 "
                f"(first restores at alpha {_first_restoring_alpha(share, settings)})")
    return claim("holds" if share.iloc[0] >= settings.restore_share else "does not hold", evidence)


def rewod_improves_steadily(curves: pd.DataFrame, confusion: str, settings: ClaimSettings = ClaimSettings()) -> Claim:
    claim = _claim("rewod_improves_steadily", "Figure 2",
                                    "Interclass Confusion: RewoD improves Acc_corr steadily with alpha")
    values = curve(curves, confusion, "rewod")
    if len(values) < 3:
        return claim("not tested", f"needs RewoD on {confusion!r} at three alphas or more, has {len(values)}")
    alphas = pd.Series(values.index, index=values.index, dtype=float)
    correlation = float(alphas.rank().corr(values.rank()))
    gain = float(values.iloc[-1] - values.iloc[0])
    holds = correlation >= settings.steady_rank_correlation and gain > settings.margin
    evidence = (f"Acc_corr {values.iloc[0]:.3f} at alpha {values.index[0]:g} → {values.iloc[-1]:.3f} at "
                f"{values.index[-1]:g}, Spearman correlation with alpha {correlation:.2f} "
                f"(needs ≥ {settings.steady_rank_correlation:g} and a gain above {settings.margin:g})")
    return claim("holds" if holds else "does not hold", evidence)


def ssd_never_beats_original(curves: pd.DataFrame, originals: Mapping[str, float], confusion: str,
                             settings: ClaimSettings = ClaimSettings()) -> Claim:
    claim = _claim("ssd_never_beats_original", "Figure 2",
                                    "Interclass Confusion: SSD never beats the original model")
    values = curve(curves, confusion, "ssd")
    if not len(values) or confusion not in originals:
        return claim("not tested", f"needs SSD runs and M_o on {confusion!r}")
    gains = values - originals[confusion]
    evidence = (f"largest gain of SSD over M_o ({originals[confusion]:.3f}): {gains.max():+.3f} at alpha "
                f"{gains.idxmax():g} (a gain up to {settings.margin:g} counts as none)")
    return claim("holds" if gains.max() <= settings.margin else "does not hold", evidence)


# Table 1 -------------------------------------------------------------------------------------------

def _retain(retain: pd.DataFrame, manipulation: str, method: str) -> tuple[float, float] | None:
    rows = retain[(retain["manipulation"] == manipulation) & (retain["method"] == method)]
    if len(rows) > 1:
        raise ValueError(f"{manipulation}/{method}: several budgets; check claims on one budget at a time")
    return (float(rows["delta_acc_retain_pp"].iloc[0]), float(rows["delta_acc_retain_pp_std"].iloc[0])) \
        if len(rows) else None


def ssd_costs_utility(retain: pd.DataFrame, poisoning: str, settings: ClaimSettings = ClaimSettings()) -> Claim:
    claim = _claim("ssd_costs_utility", "Table 1",
                                    "Poisoning: SSD lowers Acc_retain clearly (−8.94 pp on CIFAR-10, −3.25 on CIFAR-100)")
    change = _retain(retain, poisoning, "ssd")
    if change is None:
        return claim("not tested", f"needs SSD runs on {poisoning!r}")
    evidence = (f"SSD: {change[0]:+.2f} ± {change[1]:.2f} pp over alphas "
                f"(clearly = below −{settings.retain_band_pp:g} pp)")
    return claim("holds" if change[0] < -settings.retain_band_pp else "does not hold", evidence)


def others_keep_utility(retain: pd.DataFrame, poisoning: str, confusion: str,
                        settings: ClaimSettings = ClaimSettings()) -> Claim:
    claim = _claim("others_keep_utility", "Table 1",
                                    "RewoD, CF, SCRUB and BadT keep Acc_retain within about ±1 pp "
                                    "(SCRUB on Interclass Confusion excepted: −3.27)")
    checked, outside = [], []
    for manipulation in (poisoning, confusion):
        for method in FINE_TUNING:
            if method == "scrub" and manipulation == confusion:
                continue
            change = _retain(retain, manipulation, method)
            if change is None:
                continue
            checked.append(f"{method}@{manipulation} {change[0]:+.2f}")
            if abs(change[0]) > settings.retain_band_pp:
                outside.append(method)
    if not checked:
        return claim("not tested", "none of these methods ran")
    evidence = ", ".join(checked) + f" pp (band ±{settings.retain_band_pp:g})"
    return claim("does not hold" if outside else "holds", evidence)


# Figure 3 and Table 3 --------------------------------------------------------------------------------

def importance_outliers(distributions: Mapping[str, RatioDistribution], poisoning: str, confusion: str) -> Claim:
    claim = _claim("importance_outliers", "Figure 3",
                                    "SSD importance ratios reach higher outliers for poisoning (~800) "
                                    "than for Interclass Confusion (< 200)")
    if poisoning not in distributions or confusion not in distributions:
        return claim("not tested", f"needs importance ratios of {poisoning!r} and {confusion!r}")
    poison, ic = distributions[poisoning], distributions[confusion]
    holds = poison.max_finite > ic.max_finite and poison.n_infinite >= ic.n_infinite
    evidence = (f"largest finite ratio {poison.max_finite:.4g} ({poison.n_infinite} infinite) for {poisoning} "
                f"vs {ic.max_finite:.4g} ({ic.n_infinite} infinite) for {confusion}")
    return claim("holds" if holds else "does not hold", evidence)


def cost_order(costs: pd.DataFrame) -> Claim:
    claim = _claim("cost_order", "Table 3",
                                    "RewoD is the most expensive method per run and SSD the cheapest "
                                    "(49.9 vs 1.8 minutes on an RTX 2080)")
    seconds = costs.set_index("method")["seconds_mean"]
    if "rewod" not in seconds or "ssd" not in seconds:
        return claim("not tested", "needs RewoD and SSD runs")
    order = seconds.sort_values(ascending=False)
    holds = order.index[0] == "rewod" and order.index[-1] == "ssd"
    evidence = "seconds per run: " + ", ".join(f"{method} {value:.2f}" for method, value in order.items())
    return claim("holds" if holds else "does not hold", evidence)


# All -------------------------------------------------------------------------------------------------

def corrective_claims(curves: pd.DataFrame, originals: Mapping[str, float], retain: pd.DataFrame,
                      distributions: Mapping[str, RatioDistribution], costs: pd.DataFrame, poisoning: str,
                      confusion: str, settings: ClaimSettings = ClaimSettings()) -> list[Claim]:
    """Every headline claim of the paper on one run (one budget)."""
    return [
        fine_tuning_restores_late(curves, originals, poisoning, settings),
        ssd_restores_early(curves, originals, poisoning, settings),
        rewod_improves_steadily(curves, confusion, settings),
        ssd_never_beats_original(curves, originals, confusion, settings),
        ssd_costs_utility(retain, poisoning, settings),
        others_keep_utility(retain, poisoning, confusion, settings),
        importance_outliers(distributions, poisoning, confusion),
        cost_order(costs),
    ]
