"""The champion gate's comparison branches, on evaluations built by hand: the outcome of each
case is fixed by construction (who is ranked where, and what they are worth), not by a
trained model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.config import ChurnDefinition
from churn.modeling.evaluate import classification_metrics, customer_value, metrics_table
from churn.modeling.gate import ChampionView, judge
from churn.modeling.results import Evaluation, FitInfo, FoldResult
from churn.modeling.splits import Fold

CAPACITY = 20
T = pd.Timestamp("2024-03-01", tz="UTC")
DEFINITION = ChurnDefinition(horizon_days=30, kind="subscription").as_dict()

# one test slice of 1,000 accounts: 40 small churners (10 a month), 20 large churners
# (1,000 a month), 940 who stay (50 a month)
SMALL, LARGE, STAY = np.arange(0, 40), np.arange(40, 60), np.arange(60, 1000)
Y = np.r_[np.ones(60), np.zeros(940)].astype(int)
MRR = np.r_[np.full(40, 10.0), np.full(20, 1000.0), np.full(940, 50.0)]


def ranking(*groups: np.ndarray) -> np.ndarray:
    """Scores that put the accounts in this order (first = highest risk), the rest after."""
    order = np.concatenate([*groups, np.setdiff1d(np.arange(len(Y)), np.concatenate(groups))])
    scores = np.empty(len(Y))
    scores[order] = np.linspace(0.99, 0.01, len(Y))
    return scores


#: Large churners first, then small ones: all 20 called churn, and they are the valuable ones.
BEST = ranking(LARGE, SMALL)
#: Small churners first, large ones last: all 20 called churn, but the valuable ones are never reached.
CHEAP_FIRST = ranking(SMALL, STAY, LARGE)
#: The champion: 10 large churners and 10 who stay in its top 20 (precision 0.5).
CHAMPION = ranking(LARGE[:10], STAY[:10], LARGE[10:], SMALL)
#: The baselines: a random order (precision at 20 about 0.06).
RANDOM = np.random.default_rng(0).permutation(np.linspace(0.01, 0.99, len(Y)))


def fold(challenger: np.ndarray, cutoff: pd.Timestamp) -> FoldResult:
    test = pd.DataFrame({"account_id": [f"a{i}" for i in range(len(Y))], "as_of": cutoff, "mrr": MRR})
    scores = {"model": challenger, "logistic": RANDOM, "rule": RANDOM[::-1].copy()}
    clv = customer_value(test)
    metrics = metrics_table({name: classification_metrics(Y, p, capacity=CAPACITY, clv=clv) for name, p in scores.items()})
    return FoldResult(Fold(np.arange(0), np.arange(len(Y)), "by hand", cutoff), Y, scores, metrics, FitInfo(0, 1, 1, "isotonic", {}), test)


def evaluation(challenger: np.ndarray) -> Evaluation:
    return Evaluation("time", "two slices by hand", [fold(challenger, T), fold(challenger, T + pd.Timedelta(days=30))])


def champion(scores: np.ndarray) -> ChampionView:
    """A champion trained up to two months before the first slice: both slices are later."""
    return ChampionView("1", DEFINITION, T - pd.Timedelta(days=60), {0: scores, 1: scores})


def test_constructed_rankings_are_what_the_cases_need() -> None:
    p_at = {name: classification_metrics(Y, s, capacity=CAPACITY, clv=12 * MRR) for name, s in (("best", BEST), ("cheap", CHEAP_FIRST), ("champion", CHAMPION))}
    assert [p_at[n]["precision_at_capacity"] for n in ("best", "cheap", "champion")] == [1.0, 1.0, 0.5]
    assert p_at["best"]["emp"] > p_at["champion"]["emp"] > p_at["cheap"]["emp"]


def test_a_challenger_better_on_precision_and_profit_beats_the_champion() -> None:
    decision = judge(evaluation(BEST), "2", champion(CHAMPION), definition=DEFINITION, capacity=CAPACITY, has_value=True)
    assert decision.promoted and decision.version == "2" and decision.previous_champion == "1"
    assert decision.reason.startswith("beats the champion: precision at capacity 1.000 vs champion v1 0.500 on 2 later slice(s) (2024-03-01, 2024-03-31); EMP ")
    assert decision.comparison["challenger_precision_at_capacity"].tolist() == [1.0, 1.0]
    assert decision.comparison["champion_precision_at_capacity"].tolist() == [0.5, 0.5]
    assert (decision.comparison["challenger_emp"] > decision.comparison["champion_emp"]).all()


def test_a_challenger_better_on_precision_but_lower_expected_profit_is_not_promoted() -> None:
    decision = judge(evaluation(CHEAP_FIRST), "2", champion(CHAMPION), definition=DEFINITION, capacity=CAPACITY, has_value=True)
    assert not decision.promoted and decision.previous_champion == "1"
    assert decision.reason.startswith("lower expected profit (1% required): precision at capacity 1.000 vs champion v1 0.500")
    emp = decision.comparison[["challenger_emp", "champion_emp"]].mean()
    assert f"EMP {emp['challenger_emp']:.2f} vs {emp['champion_emp']:.2f}" in decision.reason
    assert emp["challenger_emp"] < emp["champion_emp"]
    # without a value column profit is not judged: the same challenger wins on precision alone
    plain = judge(evaluation(CHEAP_FIRST), "2", champion(CHAMPION), definition=DEFINITION, capacity=CAPACITY, has_value=False)
    assert plain.promoted and plain.reason.startswith("beats the champion") and "EMP" not in plain.reason


@pytest.mark.parametrize("margin", [0.0, 0.01])
def test_a_challenger_equal_to_the_champion_is_not_better_by_the_margin(margin: float) -> None:
    decision = judge(evaluation(CHAMPION), "2", champion(CHAMPION), definition=DEFINITION, capacity=CAPACITY, margin=margin, has_value=True)
    assert not decision.promoted
    assert decision.reason.startswith(f"not better by the margin ({margin:.0%} required): precision at capacity 0.500 vs champion v1 0.500")


def test_the_margin_is_relative_to_the_champion() -> None:
    """Precision 1.0 against 0.5 is 100 % better: promoted with a 99 % margin, not with 101 %."""
    assert judge(evaluation(BEST), "2", champion(CHAMPION), definition=DEFINITION, capacity=CAPACITY, margin=0.99).promoted
    assert not judge(evaluation(BEST), "2", champion(CHAMPION), definition=DEFINITION, capacity=CAPACITY, margin=1.01).promoted
