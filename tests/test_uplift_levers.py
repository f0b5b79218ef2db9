"""The uplift policy's experiment design: the log-odds ("shift") learner that borrows strength
from the risk model, skipping accounts already in outreach, exploration stratified by risk,
and the oracle the simulation measures the ceiling with."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.jobs.simulate import _explore
from churn.modeling.uplift import PROPENSITY, TREATED, UpliftSettings, common_shift, evaluate_uplift, fit_uplift, uplift_gate
from churn.outreach.policy import callable_capacity, policy_ranks
from tests.uplift_support import experiment_rows

SEEDS = (0, 1, 2)


def logit_world(seed: int, n: int, shift: np.ndarray | float, propensity: np.ndarray | float = 0.5) -> pd.DataFrame:
    """Accounts whose churn log-odds is −3 + 1.2·x (x ~ N(0, 1): risk rises with x), a call
    moving it by ``shift`` (per row or common), calls randomised at ``propensity``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    treated = rng.random(n) < propensity
    z = -3.0 + 1.2 * x + treated * np.asarray(shift, dtype=float)
    churned = rng.random(n) < 1.0 / (1.0 + np.exp(-z))
    return experiment_rows(rng, x, treated, propensity, churned)


def before_any_call(seed: int, n: int = 20_000) -> pd.DataFrame:
    """Rows from before any call (the product's history; the simulation's warm-up cutoffs): the
    no-call model learns from them too, as the closed loop's does."""
    return logit_world(seed + 200, n, 0.0, 0.0).drop(columns=[TREATED, PROPENSITY])


@pytest.mark.parametrize("seed", SEEDS)
def test_common_shift_recovers_the_planted_log_odds_shift(seed: int) -> None:
    rng = np.random.default_rng(seed)
    offset = rng.normal(-2.0, 1.0, 20_000)
    y = rng.random(len(offset)) < 1.0 / (1.0 + np.exp(-(offset - 0.7)))
    delta, se = common_shift(y, offset)
    assert delta == pytest.approx(-0.7, abs=3 * se) and 0.01 < se < 0.1


@pytest.mark.parametrize("seed", SEEDS)
def test_shift_learner_with_a_homogeneous_effect_ranks_as_risk_does(seed: int) -> None:
    """Every call shifts the log-odds by −0.6: the uplift (absolute reduction) then rises with
    the risk, and the shift learner's ranking follows the risk's, where the T-learner's two noisy
    fits do not."""
    rows = logit_world(seed, 6_000, -0.6)
    fresh = logit_world(seed + 100, 3_000, 0.0)
    settings = UpliftSettings(learner="shift", seed=seed)
    uplift = fit_uplift(rows, settings, baseline=before_any_call(seed)).predict(fresh)["uplift"].to_numpy()
    x = fresh["x"].to_numpy()
    shift_corr = np.corrcoef(pd.Series(uplift).rank(), pd.Series(x).rank())[0, 1]
    t_uplift = fit_uplift(rows, UpliftSettings(learner="t", seed=seed), baseline=before_any_call(seed)).predict(fresh)["uplift"].to_numpy()
    t_corr = np.corrcoef(pd.Series(t_uplift).rank(), pd.Series(x).rank())[0, 1]
    assert shift_corr > 0.8, f"seed {seed}: shift learner's uplift vs risk Spearman {shift_corr:.2f}"
    assert shift_corr > t_corr, f"seed {seed}: shift {shift_corr:.2f} vs T-learner {t_corr:.2f}"
    assert (uplift > 0).mean() > 0.95


@pytest.mark.parametrize("seed", SEEDS)
def test_shift_learner_finds_a_subgroup_that_does_not_respond(seed: int) -> None:
    """The planted world's premise in miniature: the riskiest accounts (x > 1) are fed up (no
    effect), the others respond (−1.5 on the log-odds). The learned uplift of the fed up must
    fall below that of the responders just under them, though their risk is higher."""
    n = 12_000
    x = np.random.default_rng(seed).normal(size=n)
    rows = logit_world(seed, n, np.where(x > 1.0, 0.0, -1.5))  # logit_world draws the same x from the same seed
    fresh = logit_world(seed + 100, 4_000, 0.0)
    model = fit_uplift(rows, UpliftSettings(learner="shift", seed=seed), baseline=before_any_call(seed))
    assert model.metadata["departure_rounds"] > 0, "the evidence is there: departures from the common shift are kept"
    uplift = model.predict(fresh)["uplift"].to_numpy()
    fx = fresh["x"].to_numpy()
    fed_up, responders = uplift[fx > 1.2].mean(), uplift[(fx > 0.3) & (fx < 0.9)].mean()
    assert fed_up < responders, f"seed {seed}: fed up {fed_up:+.4f} vs responders below them {responders:+.4f}"


def test_uplift_ranking_skips_accounts_already_in_outreach() -> None:
    """An account an earlier run flagged, whose window still runs, is not callable under the
    uplift ranking (the effect of a second call is unknown); risk and value keep calling it."""
    rng = np.random.default_rng(4)
    n = 100
    frame = pd.DataFrame(
        {
            "account_id": [f"A{i:03d}" for i in range(n)],
            "churn_probability": rng.uniform(0.05, 0.6, n),
            "annual_value": rng.uniform(100, 2_000, n),
            "uplift": rng.uniform(0.05, 0.2, n),
        }
    )
    frame["revenue_at_risk"] = frame["churn_probability"] * frame["annual_value"]
    frame["expected_saved_value"] = frame["uplift"] * frame["annual_value"]
    in_outreach = np.arange(n) % 2 == 0
    ranks, ok = policy_ranks(frame, "uplift", in_outreach=in_outreach)
    assert not ok[in_outreach].any() and ok[~in_outreach].all()
    assert ranks[~in_outreach].max() < ranks[in_outreach].min(), "accounts in outreach rank after every callable one"
    assert callable_capacity(80, ok, np.zeros(n, dtype=bool)) == 50
    for ranking in ("risk", "value"):
        assert policy_ranks(frame, ranking, in_outreach=in_outreach)[1].all()  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", SEEDS)
def test_exploration_by_risk_records_the_probability_it_draws_with(seed: int) -> None:
    """Stratified by risk, riskier accounts below the cut are explored more often, and the
    recorded probability is the frequency with which each is drawn (so IPW estimates are right)."""
    rng = np.random.default_rng(seed)
    risk = rng.uniform(0.01, 0.3, 400)
    pool = np.arange(100, 400)
    draws = np.array([_explore(risk, pool, 30, "risk", np.random.default_rng([seed, k]))[0] for k in range(2_000)])
    prob = _explore(risk, pool, 30, "risk", rng)[1]
    assert not draws[:, :100].any() and (prob[:100] == 0).all(), "only the pool is explored"
    assert np.abs(draws.mean(axis=0)[pool] - prob[pool]).max() < 0.035
    assert draws.sum(axis=1).mean() == pytest.approx(30, abs=1)
    high, low = pool[risk[pool] > 0.2], pool[risk[pool] < 0.1]
    assert draws[:, high].mean() > 2 * draws[:, low].mean()


@pytest.mark.parametrize("seed", SEEDS)
def test_an_effect_found_nowhere_is_evaluated_as_the_list_orders_it_by_risk(seed: int) -> None:
    """Uplift 0 everywhere (no evidence yet): the list orders by risk (ties), so the evaluation
    must too — its Qini equals the risk ranking's and the gate cannot pass, whatever the rows'
    order (here: shuffled, with risk unrelated to the row order)."""
    rows = logit_world(seed, 3_000, -0.6)
    risk = 1.0 / (1.0 + np.exp(-(-3.0 + 1.2 * rows["x"].to_numpy())))
    evaluation = evaluate_uplift(rows, np.zeros(len(rows)), risk, capacity=300, settings=UpliftSettings(n_bootstrap=50, seed=seed))
    assert evaluation["qini"] == pytest.approx(evaluation["qini_risk"])
    assert evaluation["qini_difference_low"] == pytest.approx(0.0) and not uplift_gate(evaluation)[0]


def test_a_statistic_undefined_in_every_draw_stays_nan_without_a_warning() -> None:
    """Every row called: the uplift at capacity has no control to compare with in any bootstrap
    draw; the evaluation says NaN for it (and its interval) instead of raising a warning."""
    rows = logit_world(0, 400, -0.6, 1.0)
    evaluation = evaluate_uplift(rows, np.zeros(len(rows)), rows["x"].to_numpy(), capacity=50, settings=UpliftSettings(n_bootstrap=20))
    assert np.isnan(evaluation["uplift_at_capacity"]) and np.isnan(evaluation["uplift_at_capacity_low"])


def test_the_uplift_policy_ranks_by_a_model_as_soon_as_a_cohort_has_matured() -> None:
    """The 30-day window of the first weekly cohort has closed by week 5: the uplift policy
    refits its model on it then, instead of waiting for the monthly retrain (here none within
    7 cycles), so weeks 5 and 6 are ranked by uplift; without the weekly refit, by value."""
    from churn.config import TrainConfig
    from churn.jobs.simulate import SimulationConfig, simulate

    tiny = {"accounts": 700, "cycles": 7, "capacity": 25, "retrain_every": 8, "explore_share": 0.2, "policies": ("uplift",), "seed": 3,
            "train": TrainConfig(n_jobs=1, n_estimators=60, early_stopping_rounds=10, calibration_folds=2)}  # fmt: skip
    rankings = [r["ranking"] for r in simulate(SimulationConfig(**tiny))["policies"][0]["rankings"]]  # type: ignore[arg-type, index]
    assert rankings[:5] == ["value"] * 5 and rankings[5:] == ["uplift", "uplift"], rankings
