"""Whom to call: the uplift learner, the weights, the policy's never-call rule, the gate, the simulation.

Small planted experiments (a few thousand rows, no generator) for the learner and the gate;
one tiny closed-loop simulation, shared by the reproducibility tests.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churn.config import TrainConfig
from churn.features.labels import LABEL
from churn.modeling.uplift import PROPENSITY, TREATED, UpliftSettings, evaluate_uplift, fit_uplift, uplift_gate
from churn.outreach.experiment import assign_controls
from churn.outreach.policy import callable_capacity, choose_ranking, policy_ranks
from tests.uplift_support import experiment_rows

SEEDS = (0, 1, 2)
QUICK = UpliftSettings(n_bootstrap=100)


def planted_experiment(seed: int, n: int = 4_000, effect: float = 0.15, propensity: float = 0.5) -> pd.DataFrame:
    """Accounts of two kinds: kind "helped" (x > 0) churn 25 % and a call cuts that by
    ``effect``; kind "dog" (x <= 0) churn 10 % and a call *adds* ``effect`` / 2. Calls are
    randomised with the given propensity; a noise column the learner should not need."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    treated = rng.random(n) < propensity
    helped = x > 0
    base = np.where(helped, 0.25, 0.10)
    shift = np.where(helped, -effect, effect / 2)
    churned = rng.random(n) < base + treated * shift
    return experiment_rows(rng, x, treated, propensity, churned)


@pytest.mark.parametrize("seed", SEEDS)
def test_learner_recovers_the_planted_sign(seed: int) -> None:
    rows = planted_experiment(seed)
    fresh = planted_experiment(seed + 100)
    uplift = fit_uplift(rows).predict(fresh)["uplift"].to_numpy()
    helped = fresh["x"].to_numpy() > 0
    assert uplift[helped].mean() > 0.05, "a call cuts churn among the helped accounts"
    assert uplift[~helped].mean() < -0.02, "a call raises churn among the sleeping dogs"


def test_negative_effect_is_never_called_whatever_the_capacity() -> None:
    rng = np.random.default_rng(3)
    n = 200
    frame = pd.DataFrame(
        {
            "account_id": [f"A{i:03d}" for i in range(n)],
            "as_of": pd.Timestamp("2024-01-01", tz="UTC"),
            "churn_probability": rng.uniform(0.05, 0.6, n),
            "annual_value": rng.uniform(100, 2_000, n),
            "uplift": np.where(np.arange(n) % 3 == 0, -0.05, rng.uniform(0.0, 0.2, n)),
        }
    )
    frame["revenue_at_risk"] = frame["churn_probability"] * frame["annual_value"]  # as every risk list has
    frame["expected_saved_value"] = frame["uplift"] * frame["annual_value"]
    ranks, ok = policy_ranks(frame, "uplift")
    held = np.zeros(n, dtype=bool)
    capacity = callable_capacity(n, ok, held)  # more capacity than positive accounts
    flags = assign_controls(frame.assign(rank=ranks), None, as_of=frame["as_of"].iloc[0], capacity=capacity, share=0.1, seed=7)
    called = flags["outreach"].to_numpy() | flags["control"].to_numpy()
    assert called.sum() == int((frame["uplift"] >= 0).sum())
    assert (frame.loc[called, "uplift"] >= 0).all()


def test_the_gate_never_switches_on_no_effect_but_does_on_a_real_one() -> None:
    for seed in SEEDS:
        none = planted_experiment(seed, effect=0.0)
        test = planted_experiment(seed + 50, effect=0.0)
        risk = np.where(test["x"] > 0, 0.25, 0.10) + np.random.default_rng(seed).normal(0, 0.01, len(test))
        evaluation = evaluate_uplift(test, fit_uplift(none).predict(test)["uplift"].to_numpy(), risk, capacity=500, settings=QUICK)
        assert not uplift_gate(evaluation)[0], f"seed {seed}: no effect, yet the gate passed: {uplift_gate(evaluation)[1]}"
    # the same gate does pass where uplift ranking is really better than risk (dogs are high-x-risk here)
    rows, test = planted_experiment(0, effect=0.2), planted_experiment(50, effect=0.2)
    risk = np.where(test["x"] > 0, 0.10, 0.25)  # risk ranks the sleeping dogs first
    evaluation = evaluate_uplift(test, fit_uplift(rows).predict(test)["uplift"].to_numpy(), risk, capacity=500, settings=QUICK)
    assert uplift_gate(evaluation)[0], uplift_gate(evaluation)[1]
    assert choose_ranking(None, uplift_gate(evaluation))[0] == "uplift"
    assert choose_ranking(None, None)[0] == "value"


def test_estimates_weight_by_the_recorded_propensity() -> None:
    """Two strata, no effect at all: the high-risk one was called 90 % of the time, the
    low-risk one 10 %. Unweighted, the called look worse (−0.2); weighted, no effect."""
    rng = np.random.default_rng(5)
    n = 20_000
    high = rng.random(n) < 0.5
    p = np.where(high, 0.9, 0.1)
    treated = rng.random(n) < p
    churned = rng.random(n) < np.where(high, 0.30, 0.05)
    rows = pd.DataFrame({TREATED: treated, PROPENSITY: p, LABEL: churned.astype("int8")})
    flat = np.zeros(n)
    evaluation = evaluate_uplift(rows, flat, flat, capacity=n, settings=UpliftSettings(n_bootstrap=1))
    assert abs(evaluation["uplift_at_capacity"]) < 0.03
    naive = churned[~treated].mean() - churned[treated].mean()
    assert naive < -0.1  # what ignoring the weights would say


# --------------------------------------------------------------------------- the simulation


#: No retrain within 3 cycles and a small churn model: one quick fit per run, all the weekly steps.
TINY = {
    "accounts": 700, "cycles": 3, "capacity": 25, "retrain_every": 4, "explore_share": 0.2, "policies": ("risk", "uplift"),
    "train": TrainConfig(n_jobs=1, n_estimators=60, early_stopping_rounds=10, calibration_folds=2),
}  # fmt: skip


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, dict]:
    """The same tiny simulation twice (seed 3), the first as written to simulation.json, and once with seed 4."""
    from churn.jobs.simulate import SimulationConfig, simulate, write_simulation

    path = write_simulation(simulate(SimulationConfig(seed=3, **TINY)), tmp_path_factory.mktemp("sim"))  # type: ignore[arg-type]
    first = json.loads(path.read_text())
    again = simulate(SimulationConfig(seed=3, **TINY))  # type: ignore[arg-type]
    other = simulate(SimulationConfig(seed=4, **TINY))  # type: ignore[arg-type]
    return first, json.loads(json.dumps(again, default=str)), json.loads(json.dumps(other, default=str))


def test_simulate_is_reproducible_by_seed(tiny_runs: tuple[dict, dict, dict]) -> None:
    first, again, other = tiny_runs
    strip = lambda r: {k: v for k, v in r.items() if k != "seconds"}  # noqa: E731
    assert strip(first) == strip(again)
    assert strip(first) != strip(other)


def test_simulation_json_has_what_the_issue_asks(tiny_runs: tuple[dict, dict, dict]) -> None:
    first, _, _ = tiny_runs
    assert {"cycles", "seed", "planted_response_shares", "policies"} <= set(first)
    assert [p["policy"] for p in first["policies"]] == ["risk", "uplift"]
    for p in first["policies"]:
        assert {"policy", "customers_saved", "revenue_retained", "calls", "cost"} <= set(p)
        assert p["calls"] > 0
    assert abs(sum(first["planted_response_shares"].values()) - 1) < 1e-3


def test_simulate_refuses_an_unknown_policy() -> None:
    from churn.cli import app

    result = CliRunner().invoke(app, ["simulate", "--policy", "risk,psychic"])
    assert result.exit_code == 2
    assert "psychic" in result.output and "Traceback" not in result.output


def test_uplift_evaluations_are_tracked_in_mlflow(mlflow_root) -> None:  # type: ignore[no-untyped-def]
    import mlflow

    from churn.modeling.tracking import configure, log_uplift_evaluations

    rows = planted_experiment(0)
    evaluation = evaluate_uplift(rows, rows["x"].to_numpy(), -rows["x"].to_numpy(), capacity=100, settings=UpliftSettings(n_bootstrap=5))
    configure(mlflow_root)
    run_id = log_uplift_evaluations([{"cycle": 8, **evaluation, "gate_passed": True}], root=mlflow_root, params={"seed": 0}, run_name="t")
    run = mlflow.get_run(run_id)
    assert run.data.metrics["qini"] == pytest.approx(evaluation["qini"])
    assert run.data.metrics["gate_passed"] == 1.0


def test_risk_list_says_which_ranking_and_carries_the_effect(trained, latest_features) -> None:  # type: ignore[no-untyped-def]
    from churn.config import ScoreConfig
    from churn.outreach.score import build_risk_list

    config = ScoreConfig(capacity=50, max_exact_reasons=0)
    plain, notes = build_risk_list(latest_features, trained.model, config=config)
    assert notes["ranking"] == "value" and "no uplift model" in str(notes["ranking_reason"])
    assert plain[["uplift", "churn_if_called", "expected_saved_value"]].isna().all().all()

    p = trained.model.predict_proba(latest_features)
    effect = pd.DataFrame({"uplift": np.where(np.arange(len(p)) % 2 == 0, -0.05, 0.3 * p)})
    risk, notes = build_risk_list(latest_features, trained.model, config=config, uplift=effect, gate=(True, "uplift ranking: the gate passed"))
    assert notes["ranking"] == "uplift" and notes["ranking_reason"] == "uplift ranking: the gate passed"
    flagged = risk[risk["outreach"] | risk["control"]]
    assert len(flagged) == 50 and (flagged["uplift"] > 0).all()
    assert np.allclose(risk["churn_if_called"], (risk["churn_probability"] - risk["uplift"]).clip(0, 1))
    assert np.allclose(risk["expected_saved_value"], risk["uplift"] * risk["annual_value"])
    _, notes = build_risk_list(latest_features, trained.model, config=config, uplift=effect, gate=(False, "the interval includes zero"))
    assert notes["ranking"] == "value"


# --------------------------------------------------------------------------- the planted worlds


def test_planted_world_puts_non_responders_at_the_top_of_risk_and_aligned_does_not() -> None:
    """The issue's premise (Ascarza 2018): among the riskiest accounts most are already decided;
    the strongest responders sit lower. The aligned world is the opposite (risk is right there)."""
    from churn.data.responding import logit_shift, responses, window_churn
    from churn.data.synthetic import generate

    data = generate(2_500, start="2023-01-01", months=9, seed=11)
    month = data.causes[data.causes["month_start"] == data.causes["month_start"].max()].reset_index(drop=True)
    top = month["hazard"].to_numpy() >= np.quantile(month["hazard"], 0.9)
    h = month["hazard"].to_numpy()
    for effect, top_responds in (("planted", False), ("aligned", True)):
        shift = logit_shift(responses(month, 11, effect), effect)  # type: ignore[arg-type]
        gain = window_churn(h, 0.0, 30) - window_churn(h, shift, 30)
        responders = float((shift[top] <= -1.0).mean())  # a callback or an offer: the strong responders
        assert (responders > 0.5) == top_responds, f"{effect}: {responders:.0%} of the top risk decile respond strongly"
        k = int(0.03 * len(h))  # the simulation's capacity: 300 calls a week among ~10,000 customers
        by_risk, best = gain[np.argsort(-h)[:k]].mean(), np.sort(gain)[::-1][:k].mean()
        assert (by_risk > 0.5 * best) == top_responds, f"{effect}: calling the riskiest 3 % saves {by_risk:.3f} each, the best 3 % {best:.3f}"


def test_x_learner_recovers_the_sign_with_arms_unbalanced_both_ways() -> None:
    """As in the closed loop: nearly all called at the top of the list (a tenth held out),
    a few explored calls below it. The X-learner (an option; the T-learner is the default) still finds helped vs dogs on
    both sides of the cut — the helped accounts, and the dogs below the helped; ``baseline`` rows
    (before any call) join the no-call model only."""
    rows = planted_experiment(7, n=8_000)
    rng = np.random.default_rng(7)
    top = rows["x"].to_numpy() > 0.5
    p = np.where(top, 0.9, 0.05)
    treated = rng.random(len(rows)) < p
    base, shift = np.where(rows["x"] > 0, 0.25, 0.10), np.where(rows["x"] > 0, -0.15, 0.075)
    rows = rows.assign(**{TREATED: treated, PROPENSITY: p, LABEL: (rng.random(len(rows)) < base + treated * shift).astype("int8")})
    before = planted_experiment(8, n=4_000, effect=0.0).drop(columns=[TREATED, PROPENSITY])
    model = fit_uplift(rows, UpliftSettings(learner="x"), baseline=before)
    assert model.metadata["learner"] == "x" and model.metadata["baseline_rows"] == 4_000
    fresh = planted_experiment(107)
    uplift = model.predict(fresh)["uplift"].to_numpy()
    x = fresh["x"].to_numpy()
    top_, helped, dogs = (uplift[r].mean() for r in (x > 0.5, (x > 0) & (x <= 0.5), x <= 0))  # planted +0.15, +0.15, −0.075
    assert top_ > 0.05 and helped > 0.05, f"helped accounts: {top_:+.3f} at the top, {helped:+.3f} below the cut"
    assert dogs < helped - 0.05, f"the dogs below the cut ({dogs:+.3f}) must rank below the helped ({helped:+.3f})"
    t_model = fit_uplift(rows, UpliftSettings(learner="t"))
    assert t_model.effect_models is None and t_model.metadata["learner"] == "t"
