"""No effect found must tie exactly: an uplift of exactly 0 (not rounding noise around it), a
gate that sees it rank as risk does in every bootstrap draw (no switch to uplift on rounding),
and a list that then keeps the default order, risk × value."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churn.features.labels import LABEL
from churn.jobs.uplift import qini_curves
from churn.modeling.uplift import PROPENSITY, TREATED, UpliftSettings, evaluate_uplift, fit_uplift, uplift_gate
from churn.outreach.policy import policy_columns, policy_ranks
from tests.uplift_support import experiment_rows


def no_effect_experiment(seed: int, n: int = 3_000) -> pd.DataFrame:
    """Churn rises with ``x``; calls (half the rows, at random) change nothing."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    treated = rng.random(n) < 0.5
    churned = rng.random(n) < 1.0 / (1.0 + np.exp(2.0 - x))
    return experiment_rows(rng, x, treated, 0.5, churned)


def test_no_effect_found_gives_an_uplift_of_exactly_zero() -> None:
    """The common shift within two standard errors of 0 and no departure kept: every uplift is
    exactly 0 — ties, so the list keeps the default order — not p₀ − sigmoid(logit p₀), whose
    rounding (±1e-17) ordered the list by noise and made the negative ones "sleeping dogs"
    the policy never calls."""
    model = fit_uplift(no_effect_experiment(9))
    assert model.metadata["common_shift"] == 0.0, "no effect planted: the shift is taken as 0"
    uplift = model.predict(no_effect_experiment(10, 2_000))["uplift"].to_numpy()
    assert (uplift == 0.0).all(), f"{(uplift < 0).sum()} accounts with a negative uplift, {len(np.unique(uplift))} distinct values"


def test_no_effect_found_never_passes_the_gate_on_tied_risks() -> None:
    """Every uplift 0: the uplift ranking *is* the risk ranking, so the Qini difference is 0 in
    every bootstrap draw — also when many accounts share a risk (resampled duplicates of equal
    score were once ordered differently in the two rankings: ~1e-10 above zero in every draw,
    and the gate passed on rounding)."""
    rng = np.random.default_rng(11)
    n = 3_000
    risk = np.round(rng.uniform(0.02, 0.4, n), 2)  # few distinct values: many ties
    treated = rng.random(n) < 0.7
    rows = pd.DataFrame({TREATED: treated, PROPENSITY: 0.7, LABEL: (rng.random(n) < risk).astype("int8")})
    evaluation = evaluate_uplift(rows, np.zeros(n), risk, capacity=300, settings=UpliftSettings(n_bootstrap=100))
    assert evaluation["qini_difference_low"] == 0.0 and evaluation["qini_difference_high"] == 0.0, (evaluation["qini_difference_low"], evaluation["qini_difference_high"])
    assert not uplift_gate(evaluation)[0]


def test_with_no_effect_found_the_reports_two_qini_curves_are_one() -> None:
    """The report's chart (``uplift_evaluation.json``'s ``qini_curve``) orders both rankings as
    the evaluation does: with every uplift 0 the uplift ranking's curve *is* the risk ranking's
    (it followed row order on ties, and the chart showed two curves where the gate saw one)."""
    rng = np.random.default_rng(12)
    n = 2_000
    risk = np.round(rng.uniform(0.02, 0.4, n), 2)
    rows = pd.DataFrame({TREATED: rng.random(n) < 0.7, PROPENSITY: 0.7, LABEL: (rng.random(n) < risk).astype("int8")})
    curves = qini_curves(rows, np.zeros(n), risk)
    assert curves["uplift_ranking"] == curves["risk_ranking"]


def test_with_no_effect_found_the_uplift_list_is_the_value_list_offers_last() -> None:
    """Every uplift 0: the expected value of a call is minus its costs for everyone, so the list
    keeps the default ranking's order (revenue at risk — the order the expected value tends to as
    a small common effect goes to 0), with the accounts that would need an offer after the
    others (an offer costs more); not the risk order, which a tiny common effect never gives."""
    rng = np.random.default_rng(3)
    n = 200
    frame = pd.DataFrame({"account_id": [f"A{i:03d}" for i in range(n)], "churn_probability": rng.uniform(0.02, 0.4, n), "annual_value": rng.lognormal(6.5, 0.8, n)})
    frame["revenue_at_risk"] = frame["churn_probability"] * frame["annual_value"]
    frame["offer"] = rng.random(n) < 0.2
    frame = frame.join(policy_columns(frame, pd.DataFrame({"uplift": np.zeros(n)}, index=frame.index)))
    uplift_ranks, ok = policy_ranks(frame, "uplift")
    value_ranks, _ = policy_ranks(frame, "value")
    assert ok.all(), "an uplift of 0 is not a sleeping dog"
    offer = frame["offer"].to_numpy()
    assert uplift_ranks[~offer].max() < uplift_ranks[offer].min(), "an offer costs more: those accounts come last"
    for group in (~offer, offer):
        assert (np.argsort(uplift_ranks[group]) == np.argsort(value_ranks[group])).all(), "within equal costs, the value list's order"
