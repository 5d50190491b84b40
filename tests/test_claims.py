"""The paper's claims as functions of the tables, and the aggregation over seeds and alphas."""

from __future__ import annotations

import pandas as pd
import pytest

from unlearnkit.series import claims
from unlearnkit.series.aggregate import mean_pm_std, over_seeds, retain_change_over_alphas
from unlearnkit.series.claims import ClaimSettings
from unlearnkit.unlearning.importance_ratio import RatioDistribution

ALPHAS = [0.1, 0.3, 0.5, 0.8, 1.0]
ORIGINALS = {"badnet": 0.10, "interclass": 0.60}
# Poisoning as in the paper: the fine-tuning methods stay near M_o until 0.8, SSD is up at 0.1.
PAPER_POISONING = {
    "rewod": [0.10, 0.11, 0.12, 0.60, 0.90],
    "cf": [0.10, 0.10, 0.15, 0.55, 0.85],
    "scrub": [0.11, 0.12, 0.20, 0.50, 0.80],
    "badt": [0.10, 0.10, 0.10, 0.30, 0.60],
    "ssd": [0.80, 0.82, 0.85, 0.86, 0.88],
}
PAPER_CONFUSION = {"rewod": [0.60, 0.64, 0.68, 0.75, 0.80], "ssd": [0.60, 0.61, 0.59, 0.60, 0.61]}


def curves_of(*manipulations: tuple[str, dict[str, list[float]]]) -> pd.DataFrame:
    rows = [{"manipulation": label, "method": method, "budget_fraction": None, "budget_steps": None, "alpha": alpha,
             "acc_corr_mean": value}
            for label, methods in manipulations for method, values in methods.items()
            for alpha, value in zip(ALPHAS, values)]
    return pd.DataFrame(rows)


PAPER = curves_of(("badnet", PAPER_POISONING), ("interclass", PAPER_CONFUSION))


def with_method(label: str, method: str, values: list[float]) -> pd.DataFrame:
    table = PAPER[~((PAPER["manipulation"] == label) & (PAPER["method"] == method))]
    return pd.concat([table, curves_of((label, {method: values}))], ignore_index=True)


def test_fine_tuning_methods_restoring_late_is_checked_against_the_gap_to_rewod_at_one():
    claim = claims.fine_tuning_restores_late(PAPER, ORIGINALS, "badnet")
    assert claim.outcome == "holds", claim.evidence
    assert "cf: first restores at alpha 0.8" in claim.evidence and "badt: first restores at alpha 1" in claim.evidence
    early = claims.fine_tuning_restores_late(with_method("badnet", "cf", [0.1, 0.6, 0.7, 0.8, 0.9]), ORIGINALS, "badnet")
    assert early.outcome == "does not hold" and "cf: first restores at alpha 0.3" in early.evidence
    # 0.49 of the gap at 0.5 is not restored (half is), 0.51 is.
    assert claims.fine_tuning_restores_late(with_method("badnet", "cf", [0.1, 0.1, 0.49, 0.8, 0.9]), ORIGINALS,
                                            "badnet").outcome == "holds"
    assert claims.fine_tuning_restores_late(with_method("badnet", "cf", [0.1, 0.1, 0.51, 0.8, 0.9]), ORIGINALS,
                                            "badnet").outcome == "does not hold"


def test_claims_that_the_run_cannot_decide_are_not_tested():
    no_gap = with_method("badnet", "rewod", [0.10, 0.10, 0.10, 0.10, 0.11])
    assert claims.fine_tuning_restores_late(no_gap, ORIGINALS, "badnet").outcome == "not tested"
    no_reference = PAPER[PAPER["alpha"] < 1.0]
    assert claims.ssd_restores_early(no_reference, ORIGINALS, "badnet").outcome == "not tested"
    assert claims.fine_tuning_restores_late(PAPER, ORIGINALS, "gaussian").outcome == "not tested"
    only_late = PAPER[PAPER["alpha"] >= 0.8]
    assert claims.fine_tuning_restores_late(only_late, ORIGINALS, "badnet").outcome == "not tested"
    assert claims.rewod_improves_steadily(only_late, "interclass").outcome == "not tested"


def test_ssd_restoring_early_reads_the_smallest_alpha():
    assert claims.ssd_restores_early(PAPER, ORIGINALS, "badnet").outcome == "holds"
    late = with_method("badnet", "ssd", [0.20, 0.30, 0.70, 0.86, 0.88])
    claim = claims.ssd_restores_early(late, ORIGINALS, "badnet")
    assert claim.outcome == "does not hold" and "first restores at alpha 0.5" in claim.evidence


def test_rewod_improving_steadily_needs_a_rising_rank_order_and_a_gain():
    assert claims.rewod_improves_steadily(PAPER, "interclass").outcome == "holds"
    zigzag = with_method("interclass", "rewod", [0.60, 0.75, 0.58, 0.74, 0.62])
    assert claims.rewod_improves_steadily(zigzag, "interclass").outcome == "does not hold"
    flat = with_method("interclass", "rewod", [0.600, 0.601, 0.602, 0.603, 0.604])
    assert claims.rewod_improves_steadily(flat, "interclass").outcome == "does not hold", "a gain below the margin"


def test_ssd_beating_the_original_on_confusion_is_a_gain_beyond_the_margin():
    assert claims.ssd_never_beats_original(PAPER, ORIGINALS, "interclass").outcome == "holds"
    better = with_method("interclass", "ssd", [0.60, 0.61, 0.70, 0.60, 0.61])
    claim = claims.ssd_never_beats_original(better, ORIGINALS, "interclass")
    assert claim.outcome == "does not hold" and "+0.100 at alpha 0.5" in claim.evidence


def retain_table(changes: dict[tuple[str, str], float]) -> pd.DataFrame:
    return pd.DataFrame([{"manipulation": m, "method": method, "budget_fraction": None, "budget_steps": None,
                          "delta_acc_retain_pp": value, "delta_acc_retain_pp_std": 0.5, "alphas": 5}
                         for (m, method), value in changes.items()])


def test_table_one_claims_ssd_pays_utility_and_the_others_keep_it():
    paper = {("badnet", "ssd"): -8.9, ("badnet", "cf"): 0.97, ("badnet", "scrub"): 0.69, ("badnet", "rewod"): 0.75,
             ("interclass", "cf"): 0.79, ("interclass", "scrub"): -3.27, ("interclass", "badt"): 0.23}
    assert claims.ssd_costs_utility(retain_table(paper), "badnet").outcome == "holds"
    assert claims.others_keep_utility(retain_table(paper), "badnet", "interclass").outcome == "holds"
    mild = {**paper, ("badnet", "ssd"): -0.4}
    assert claims.ssd_costs_utility(retain_table(mild), "badnet").outcome == "does not hold"
    drifting = {**paper, ("badnet", "cf"): -2.5}
    claim = claims.others_keep_utility(retain_table(drifting), "badnet", "interclass")
    assert claim.outcome == "does not hold" and "cf@badnet -2.50" in claim.evidence
    wider = ClaimSettings(retain_band_pp=3.0)
    assert claims.others_keep_utility(retain_table(drifting), "badnet", "interclass", wider).outcome == "holds"


def distribution(max_finite: float, n_infinite: int = 0) -> RatioDistribution:
    return RatioDistribution(pd.DataFrame(columns=["left", "right", "count"]), 100, 0, 0, 0, n_infinite, 0,
                             max_finite, {})


def test_importance_outliers_compare_the_largest_ratios():
    paper = {"badnet": distribution(800.0), "interclass": distribution(190.0)}
    assert claims.importance_outliers(paper, "badnet", "interclass").outcome == "holds"
    reversed_ = {"badnet": distribution(150.0), "interclass": distribution(190.0)}
    assert claims.importance_outliers(reversed_, "badnet", "interclass").outcome == "does not hold"
    infinite_ic = {"badnet": distribution(800.0), "interclass": distribution(190.0, n_infinite=3)}
    assert claims.importance_outliers(infinite_ic, "badnet", "interclass").outcome == "does not hold"
    assert claims.importance_outliers({"badnet": distribution(800.0)}, "badnet", "interclass").outcome == "not tested"


def test_cost_order_wants_rewod_most_expensive_and_ssd_cheapest():
    costs = pd.DataFrame({"method": ["rewod", "cf", "ssd", "badt"], "seconds_mean": [49.9, 10.5, 1.8, 33.2]})
    assert claims.cost_order(costs).outcome == "holds"
    costs.loc[costs["method"] == "badt", "seconds_mean"] = 60.0
    assert claims.cost_order(costs).outcome == "does not hold"


def test_every_claim_is_reported_with_its_verdict():
    retain = retain_table({("badnet", "ssd"): -8.9, ("badnet", "cf"): 0.5})
    costs = pd.DataFrame({"method": ["rewod", "ssd"], "seconds_mean": [10.0, 1.0]})
    found = claims.corrective_claims(PAPER, ORIGINALS, retain, {"badnet": distribution(800.0),
                                                                  "interclass": distribution(100.0)},
                                     costs, "badnet", "interclass")
    assert [c.outcome for c in found] == ["holds"] * 8
    table = claims.claims_table(found)
    assert table["verdict"].eq("holds").all() and table["source"].str.startswith("Goel et al. 2024").all()
    assert found[0].line().startswith("[holds] Poisoning: RewoD, CF, SCRUB and BadT")
    with pytest.raises(ValueError, match="several budgets"):
        claims.curve(pd.concat([PAPER, PAPER]), "badnet", "cf")


# Aggregation ---------------------------------------------------------------------------------------

def results_table() -> pd.DataFrame:
    """Two seeds, two alphas, one method on two manipulations; a non-selected grid point at every place."""
    rows = []
    for manipulation, asr in (("badnet", 0.5), ("interclass", None)):
        for seed, shift in ((0, 0.0), (1, 0.1)):
            for alpha in (0.5, 1.0):
                for selected, acc in ((True, 0.5 + shift + alpha / 10), (False, 0.99)):
                    rows.append({"manipulation": manipulation, "method": "cf", "budget_fraction": None,
                                 "budget_steps": None, "alpha": alpha, "seed": seed, "selected": selected,
                                 "acc_corr": acc, "acc_retain": 0.8 + shift + alpha / 100, "acc_clean": 0.9,
                                 "asr": asr})
    return pd.DataFrame(rows)


def test_over_seeds_averages_only_the_selected_runs():
    table = over_seeds(results_table())
    first = table[(table["manipulation"] == "badnet") & (table["alpha"] == 0.5)].iloc[0]
    assert first["acc_corr_mean"] == pytest.approx(0.6) and first["acc_corr_std"] == pytest.approx(0.0707107, rel=1e-5)
    assert first["seeds"] == 2 and first["asr_std"] == 0.0
    ic = table[table["manipulation"] == "interclass"]
    assert ic["asr_mean"].isna().all() and ic["asr_std"].isna().all(), "no attack success without a target"
    single = over_seeds(results_table().query("seed == 0"))
    assert (single["acc_corr_std"] == 0).all() and (single["seeds"] == 1).all()


def test_retain_change_is_a_mean_and_std_over_alphas_of_the_seed_means():
    originals = pd.DataFrame({"manipulation": ["badnet", "badnet", "interclass", "interclass"], "seed": [0, 1, 0, 1],
                              "acc_retain": [0.8, 0.9, 0.8, 0.9]})
    table = retain_change_over_alphas(results_table(), originals).set_index("manipulation")
    # per alpha, seed mean of 100 * alpha / 100 = alpha pp: 0.5 and 1.0 -> mean 0.75, std 0.3536
    assert table.loc["badnet", "delta_acc_retain_pp"] == pytest.approx(0.75)
    assert table.loc["badnet", "delta_acc_retain_pp_std"] == pytest.approx(0.353553, rel=1e-5)
    assert table.loc["badnet", "alphas"] == 2
    shown = mean_pm_std(table.reset_index(), "delta_acc_retain_pp")
    assert shown.loc["cf", "badnet"] == "+0.75 ± 0.35"
