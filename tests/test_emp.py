"""EMP computed by the product (churn.modeling.emp) equals empulse's empc_score, the reference
implementation, to 1e-6 — EMP and the profit-optimal share alike. empulse (AGPL-3.0) is in the
test extra only, so it is imported here and nowhere in src/."""

from __future__ import annotations

import numpy as np
import pytest

from churn.config import ProfitConfig
from churn.modeling.emp import expected_max_profit_churn, roc_convex_hull
from churn.modeling.evaluate import expected_max_profit

TOL = 1e-6


def _reference(y: np.ndarray, scores: np.ndarray, **params: object) -> tuple[float, float]:
    from empulse.metrics import empc_score

    return float(empc_score(y, scores, **params)), float(empc_score.optimal_rate(y, scores, **params))


def _assert_equal(y: np.ndarray, scores: np.ndarray, **params: object) -> None:
    ours = expected_max_profit_churn(y, scores, **params)  # type: ignore[arg-type]
    emp, share = _reference(y, scores, **params)
    assert ours.emp == pytest.approx(emp, abs=TOL), (params, len(y))
    assert ours.share == pytest.approx(share, abs=TOL), (params, len(y))


def _random_case(seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """Labels, scores (rounded to 1–3 decimals, so ties are common) and campaign parameters."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 2_000))
    y = (rng.random(n) < rng.uniform(0.02, 0.5)).astype(int)
    scores = np.round(rng.random(n) + y * rng.uniform(0.0, 1.5), int(rng.integers(1, 4)))
    params = {
        "alpha": float(rng.uniform(1, 10)),
        "beta": float(rng.uniform(1, 20)),
        "clv": float(rng.uniform(20, 400)),
        "incentive_cost": float(rng.uniform(0, 30)),
        "contact_cost": float(rng.uniform(0, 5)),
    }
    return y, scores, params


@pytest.mark.parametrize("seed", range(12))
def test_equals_empulse_on_random_scores_and_parameters(seed: int) -> None:
    y, scores, params = _random_case(seed)
    _assert_equal(y, scores, **params)


def test_equals_empulse_with_default_parameters() -> None:
    """The defaults are empulse's: alpha 6, beta 14, CLV 200, incentive 10, contact 1."""
    rng = np.random.default_rng(7)
    y = (rng.random(500) < 0.1).astype(int)
    scores = rng.random(500) + 0.3 * y
    ours = expected_max_profit_churn(y, scores)
    assert (ours.emp, ours.share) == pytest.approx(_reference(y, scores), abs=TOL)


@pytest.mark.parametrize(
    "scores",
    [
        pytest.param(lambda y: y.astype(float), id="perfect"),
        pytest.param(lambda y: 1.0 - y, id="reversed"),
        pytest.param(lambda y: np.full(len(y), 0.5), id="all-tied"),
        pytest.param(lambda y: np.where(np.arange(len(y)) % 3 == 0, 0.9, 0.1), id="two-values"),
    ],
)
def test_equals_empulse_on_edge_rankings(scores) -> None:  # type: ignore[no-untyped-def]
    y = (np.random.default_rng(3).random(300) < 0.2).astype(int)
    _assert_equal(y, scores(y))
    _assert_equal(y, scores(y), alpha=2.0, beta=3.0, clv=50.0, incentive_cost=5.0, contact_cost=2.0)


@pytest.mark.parametrize("label", [0, 1])
def test_equals_empulse_with_one_class_only(label: int) -> None:
    """empulse defines EMP on one class (contact nobody or everybody); so does the product."""
    y = np.full(50, label)
    scores = np.linspace(0, 1, 50)
    _assert_equal(y, scores)
    _assert_equal(y, scores, alpha=3.0, beta=2.0, clv=30.0, incentive_cost=2.0, contact_cost=1.0)


def test_unprofitable_incentive_contacts_nobody() -> None:
    """An incentive worth more than the customer: no threshold pays, EMP 0 at share 0, as empulse."""
    y, scores, _ = _random_case(1)
    _assert_equal(y, scores, clv=20.0, incentive_cost=30.0, contact_cost=1.0)
    assert expected_max_profit_churn(y, scores, clv=20.0, incentive_cost=30.0).share == 0.0


def test_per_customer_values_enter_through_their_mean() -> None:
    """As in empulse, an array of CLVs gives the EMP of its mean — what evaluate passes."""
    y, scores, _ = _random_case(5)
    clv = np.random.default_rng(5).lognormal(5, 1, len(y))
    _assert_equal(y, scores, clv=clv)
    config = ProfitConfig()
    assert expected_max_profit(y, scores, clv, config) == pytest.approx(_reference(y, scores, clv=clv), abs=TOL)


def test_hull_keeps_only_vertices() -> None:
    """Collinear and below-hull points of the ROC curve are dropped; ties are one threshold."""
    y = np.array([1, 0, 1, 0, 1, 0])
    scores = np.array([0.9, 0.9, 0.5, 0.5, 0.1, 0.1])  # three tied pairs: the diagonal
    tpr, fpr = roc_convex_hull(y, scores)
    assert tpr.tolist() == [0.0, 1.0] and fpr.tolist() == [0.0, 1.0]
