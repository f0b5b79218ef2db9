"""The informed policy's estimate (benchmark only): the uplift policy told each row's planted
response group, the effect per group learned from the experiment's outcomes alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.jobs.informed import GROUP, fit_informed, shrink
from churn.modeling.uplift import TREATED, UpliftSettings
from tests.uplift_support import experiment_rows

#: Planted call shifts per group (log-odds), in the order the estimate must recover; ``fed_up``
#: is also riskier than its feature says (+1.0), which must not pass for a call that hurts.
SHIFTS = {"callback": -1.8, "offer": -0.9, "fed_up": 0.0, "sleeping_dog": 1.2}
HIDDEN_RISK = {"callback": 0.0, "offer": 0.0, "fed_up": 1.0, "sleeping_dog": -0.5}


def grouped_world(seed: int, n: int, called_share: float) -> pd.DataFrame:
    """Accounts with churn log-odds −2.5 + x + the group's hidden risk, a call shifting it by
    the group's planted shift; groups drawn at random, calls at ``called_share``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    group = rng.choice(list(SHIFTS), size=n)
    treated = rng.random(n) < called_share
    hidden = np.array([HIDDEN_RISK[g] for g in group])
    z = -2.5 + x + hidden + treated * np.array([SHIFTS[g] for g in group])
    churned = rng.random(n) < 1.0 / (1.0 + np.exp(-z))
    return experiment_rows(rng, x, treated, called_share, churned).assign(**{GROUP: group})


@pytest.mark.parametrize("seed", (0, 1, 2))
def test_informed_estimate_recovers_the_order_of_the_planted_group_shifts(seed: int) -> None:
    rows = grouped_world(seed, 12_000, 0.5)
    baseline = grouped_world(seed + 100, 8_000, 0.0).drop(columns=[TREATED, "propensity", GROUP])
    model = fit_informed(rows, UpliftSettings(seed=seed), baseline=baseline)
    estimated = [model.shifts[g] for g in SHIFTS]
    assert estimated == sorted(estimated) and len(set(estimated)) == len(estimated), f"seed {seed}: {model.shifts}"
    # the fed-up are riskier than their feature says; calibrated per group, that is not a call effect
    assert abs(model.shifts["fed_up"]) < 0.35, f"seed {seed}: fed_up {model.shifts['fed_up']:+.2f}, calibration {model.calibration}"
    # and the uplift the list ranks by follows: a callback account gains most, a sleeping dog loses
    fresh = grouped_world(seed + 200, 4_000, 0.0)
    uplift = model.predict(fresh).groupby(fresh[GROUP].to_numpy())["uplift"].mean()
    assert uplift["callback"] > uplift["offer"] > 0 > uplift["sleeping_dog"]


def test_shrink_pulls_a_group_with_little_evidence_towards_the_centre() -> None:
    # spread no larger than the standard errors explain: every group takes the centre
    assert shrink(np.array([-0.1, 0.1, 0.0]), np.array([0.3, 0.3, 0.3]), 0.05) == pytest.approx([0.05] * 3)
    # real spread: well-measured groups keep their estimates, a thin one (se 2) moves most of the way
    out = shrink(np.array([-1.5, 0.0, 1.0, -3.0, np.nan]), np.array([0.05, 0.05, 0.05, 2.0, np.inf]), -0.2)
    assert out[:3] == pytest.approx([-1.5, 0.0, 1.0], abs=0.01)
    assert -0.2 > out[3] > -1.0 and out[4] == -0.2


def test_informed_policy_ranks_by_its_estimate_from_the_week_the_first_cohort_matures() -> None:
    """In the closed loop the informed policy follows the uplift policy's schedule: risk × value
    until a cohort has matured (30 days: cycle 5), then its own estimate, refitted weekly (the
    monthly retrain is set beyond the run, so only the weekly refit can give it a model)."""
    from churn.config import TrainConfig
    from churn.jobs.simulate import SimulationConfig, simulate

    train = TrainConfig(n_jobs=1, n_estimators=60, early_stopping_rounds=10, calibration_folds=2)
    config = SimulationConfig(accounts=700, cycles=7, capacity=25, retrain_every=10, explore_share=0.2, policies=("informed",), seed=3, train=train)
    record = simulate(config)["policies"][0]  # type: ignore[index]
    assert [r["ranking"] for r in record["rankings"]] == ["value"] * 5 + ["uplift"] * 2
    assert record["calls"] > 0
