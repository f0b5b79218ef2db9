"""Monitoring: drift that does not cry wolf, data quality, realized performance, alerts, verdict."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from churn.cli.commands import app
from churn.data.contract import TableReport
from churn.data.synthetic import generate, write
from churn.features.build import build_features
from churn.features.spec import FeatureSpec
from churn.modeling.model import save_bundle
from churn.modeling.profile import reference_profile
from churn.monitoring.alerts import risk_alerts
from churn.monitoring.drift import DRIFT_COLUMNS, feature_drift, holm, prediction_drift, psi, psi_noise
from churn.monitoring.performance import ap_interval, auc_interval, expected_churn, past_performance, realized_performance, wilson
from churn.monitoring.quality import DQ_COLUMNS, daily_event_counts, data_quality, event_volume
from churn.monitoring.run import came_from_mlflow, log_monitoring, read_monitoring_history
from churn.monitoring.settings import FAIL_EXIT_CODE, MonitorConfig
from churn.monitoring.verdict import drift_onset, monitoring_document, verdict
from tests.browser_support import rendered_dom

AS_OF = pd.Timestamp("2024-03-01", tz="UTC")
WAIT_FEATURES = {"long_waits_30d", "long_waits_90d", "wait_mean_90d", "wait_p90_90d", "wait_max_90d"}


@pytest.fixture(scope="module")
def business():  # type: ignore[no-untyped-def]
    """4,000 accounts over 15 months; features at AS_OF as they are, and with every wait of
    the scoring month tripled (a new support tool that made queues longer)."""
    data = generate(4_000, start="2023-01-01", months=15, seed=3)
    spec = FeatureSpec.from_data(data.accounts, data.interactions)
    features = build_features(data.accounts, data.interactions, as_of=AS_OF, spec=spec)
    slower = data.interactions.copy()
    month = (slower["occurred_at"] >= AS_OF - pd.Timedelta(days=30)) & (slower["occurred_at"] < AS_OF)
    slower.loc[month, "wait_seconds"] *= 3
    shifted = build_features(data.accounts, slower, as_of=AS_OF, spec=spec)
    return data, features, shifted


def model_columns(features: pd.DataFrame) -> tuple[list[str], list[str]]:
    columns = [c for c in features.columns if c not in ("account_id", "as_of")]
    return columns, [c for c in columns if isinstance(features[c].dtype, pd.CategoricalDtype)]


def halves(features: pd.DataFrame, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(len(features)) < 0.5


# --------------------------------------------------------------------------- reference and statistics


def test_reference_profile_is_a_json_summary_without_rows(business) -> None:  # type: ignore[no-untyped-def]
    _, features, _ = business
    columns, categorical = model_columns(features)
    p = np.random.default_rng(0).beta(1, 12, len(features))
    ref = reference_profile(features, columns, categorical, p)
    text = json.dumps(ref, allow_nan=False)  # strict JSON: no NaN
    assert features["account_id"].iloc[0] not in text and ref["n"] == len(features)
    assert set(ref["features"]) == set(columns)
    for name, prof in ref["features"].items():
        total = sum(prof["shares"]) + prof["missing"]
        assert total == pytest.approx(1.0), name
        if prof["kind"] == "numeric" and prof["edges"]:
            assert set(prof["edges"]) <= set(prof["grid"]) and len(prof["shares"]) == len(prof["edges"]) + 1
            assert np.all(np.diff(prof["cdf"]) >= 0) and prof["cdf"][-1] <= 1
    assert ref["features"]["plan"]["categories"] == ["basic", "premium", "standard"]
    bands = ref["score"]["bands"]
    assert bands["thresholds"] == [0.10, 0.25] and sum(bands["shares"].values()) == pytest.approx(1.0)
    assert bands["shares"]["high"] == pytest.approx(np.mean(p >= 0.25))


def test_a_week_like_the_training_data_scored_by_the_deployed_model_shows_no_prediction_drift(trained_by_seed) -> None:  # type: ignore[no-untyped-def]
    """New accounts of the same business (another draw of the generator) at the latest training
    cutoff, scored by the deployed model of each of three trainings: against the stored
    reference — the deployed model's out-of-fold scores — nothing drifts, and the PSI is below
    the one against the evaluation model's scores (what the reference used to hold: the
    difference between two models, read as drift)."""
    for seed, result in trained_by_seed.items():
        model = result.model
        as_of = pd.Timestamp(model.metadata["cutoffs"][-1], tz="UTC")
        fresh = generate(8_000, start="2023-01-01", months=18, seed=100 + seed)
        p = model.predict_proba(build_features(fresh.accounts, fresh.interactions, as_of=as_of, spec=model.spec, history=fresh.attribute_history))
        bands = np.select([p >= 0.25, p >= 0.10], ["high", "medium"], "low")
        stored = prediction_drift(model.metadata["monitoring_reference"], p, bands, thresholds=(0.10, 0.25))
        evaluation_scores = result.evaluation.main.scores["model"]
        before = prediction_drift(reference_profile(pd.DataFrame(index=range(len(evaluation_scores))), [], [], evaluation_scores), p, bands, thresholds=(0.10, 0.25))
        assert list(stored["status"]) == ["ok", "ok"], (seed, stored[["feature", "value", "threshold", "p_adjusted"]])
        assert stored["value"].iloc[0] < before["value"].iloc[0], (seed, stored["value"].iloc[0], before["value"].iloc[0])


def test_psi_and_its_noise_level_hand_computed() -> None:
    # (0.25 − 0.5)·ln(0.25/0.5) + (0.75 − 0.5)·ln(0.75/0.5)
    assert psi(np.array([0.5, 0.5]), np.array([0.25, 0.75])) == pytest.approx(0.25 * np.log(2) + 0.25 * np.log(1.5))
    assert psi(np.array([0.2, 0.8]), np.array([0.2, 0.8])) == 0.0
    assert psi_noise(1000, 1000, 11) == pytest.approx(0.002 * stats.chi2.ppf(0.999, 10))
    assert psi_noise(200, 200, 11) == pytest.approx(5 * psi_noise(1000, 1000, 11))  # small samples, higher bar
    # and the approximation it rests on: PSI of two samples of one distribution ≈ (1/n + 1/m)·χ²(bins − 1)
    rng = np.random.default_rng(1)
    values = []
    for _ in range(300):
        ref = reference_profile(pd.DataFrame({"x": rng.normal(size=500)}), ["x"], [])
        values.append(feature_drift(ref, pd.DataFrame({"x": rng.normal(size=400)}))["value"].iloc[0])
    expected_mean = (1 / 500 + 1 / 400) * 9  # 10 bins with data (the missing bin is empty on both sides)
    assert np.mean(values) == pytest.approx(expected_mean, rel=0.15)
    assert np.quantile(values, 0.99) < psi_noise(500, 400, 10, 0.999)


def test_holm_equals_statsmodels() -> None:
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(5).random(40) ** 3
    np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1])
    assert holm(np.array([])).size == 0


def test_feature_drift_hand_computed_on_a_small_categorical_case() -> None:
    reference = reference_profile(pd.DataFrame({"plan": pd.Categorical(["a"] * 60 + ["b"] * 40)}), ["plan"], ["plan"])
    current = pd.DataFrame({"plan": pd.Categorical(["a"] * 30 + ["b"] * 60 + [None] * 10, categories=["a", "b"])})
    row = feature_drift(reference, current).iloc[0]
    assert row["value"] == pytest.approx(psi(np.array([0.6, 0.4, 0.0]), np.array([0.3, 0.6, 0.1])))
    expected = stats.chi2_contingency(np.array([[60, 40, 0], [30, 60, 10]]), correction=False)
    assert row["chi2_p_value"] == pytest.approx(expected.pvalue) and row["p_adjusted"] == pytest.approx(expected.pvalue)
    assert row["missing_reference"] == 0 and row["missing_current"] == pytest.approx(0.1)
    assert row["status"] == "alert"  # PSI 0.50 > 0.25 + noise, p ≈ 1e-7


def test_shift_is_in_reference_spreads() -> None:
    rng = np.random.default_rng(2)
    ref = reference_profile(pd.DataFrame({"x": rng.normal(size=20_000)}), ["x"], [])
    moved = feature_drift(ref, pd.DataFrame({"x": rng.normal(0.5, 1, size=20_000)})).iloc[0]
    assert moved["shift"] == pytest.approx(0.5, abs=0.05)  # half a standard deviation
    assert moved["status"] == "alert" and moved["ks_statistic"] == pytest.approx(stats.norm.cdf(0.25) - stats.norm.cdf(-0.25), abs=0.02)


@pytest.mark.parametrize("seed", range(5))
def test_a_no_change_split_raises_nothing(business, seed: int) -> None:  # type: ignore[no-untyped-def]
    _, features, _ = business
    columns, categorical = model_columns(features)
    a = halves(features, seed)
    drift = feature_drift(reference_profile(features[a], columns, categorical), features[~a])
    assert len(drift) == len(columns)
    assert (drift["status"] == "ok").all(), drift.loc[drift["status"] != "ok", ["feature", "value", "shift", "p_adjusted"]]
    # and on small samples, where PSI from chance alone is largest: 150 accounts against 150
    small = feature_drift(reference_profile(features[a].head(150), columns, categorical), features[~a].head(150))
    assert (small["status"] == "ok").all()
    assert (small["warn_threshold"] > drift["warn_threshold"].max()).all()  # the bar rose with the noise


@pytest.mark.parametrize("seed", range(3))
def test_tripled_waits_alert_on_the_wait_features_only(business, seed: int) -> None:  # type: ignore[no-untyped-def]
    _, features, shifted = business
    columns, categorical = model_columns(features)
    a = halves(features, seed)
    drift = feature_drift(reference_profile(features[a], columns, categorical), shifted[~a])
    flagged = set(drift.loc[drift["status"] != "ok", "feature"])
    alerted = set(drift.loc[drift["status"] == "alert", "feature"])
    assert flagged == WAIT_FEATURES, flagged ^ WAIT_FEATURES  # every wait feature, nothing unrelated
    assert "wait_mean_90d" in alerted
    decision = verdict(features=drift, prediction=pd.DataFrame(columns=DRIFT_COLUMNS), data_quality=pd.DataFrame(columns=DQ_COLUMNS), performance=[])
    assert decision["verdict"] == "alert" and decision["retrain_recommended"]
    assert "wait_" in decision["reasons"][0]


def test_prediction_drift_of_scores_and_bands() -> None:
    rng = np.random.default_rng(3)
    before = rng.beta(1, 12, 5_000)
    reference = reference_profile(pd.DataFrame({"x": before}), ["x"], [], before, thresholds=(0.10, 0.25))
    bands = lambda p, t=(0.10, 0.25): np.where(p >= t[1], "high", np.where(p >= t[0], "medium", "low"))  # noqa: E731
    same = rng.beta(1, 12, 3_000)
    calm = prediction_drift(reference, same, bands(same), thresholds=(0.10, 0.25))
    assert list(calm["feature"]) == ["churn_probability", "risk_band"] and (calm["status"] == "ok").all()
    riskier = rng.beta(2, 8, 3_000)
    drift = prediction_drift(reference, riskier, bands(riskier), thresholds=(0.10, 0.25)).set_index("feature")
    assert (drift["status"] == "alert").all()
    assert drift.loc["churn_probability", "current_mean"] == pytest.approx(riskier.mean())
    assert "high" in drift.loc["risk_band", "detail"]
    moved = prediction_drift(reference, same, bands(same, (0.05, 0.20)), thresholds=(0.05, 0.20)).set_index("feature")
    assert "read off the score percentiles" in moved.loc["risk_band", "detail"] and moved.loc["risk_band", "status"] == "ok"


# --------------------------------------------------------------------------- data quality


@pytest.mark.parametrize("as_of", ["2024-04-01", "2024-03-01", "2024-01-02", "2023-12-17"])
def test_volume_is_quiet_on_normal_data_including_billing_cycles(business, as_of: str) -> None:  # type: ignore[no-untyped-def]
    # invoices go out on days 1–28: a 31-day month ends with three days without any (2024-04-01)
    data, _, _ = business
    volume = event_volume(data.interactions, as_of=pd.Timestamp(as_of, tz="UTC"))
    assert volume.loc[volume["subject"] == "invoice, last 2 days", "detail"].str.contains("from the 84 days before").all()
    assert set(volume["subject"]) >= {"invoice, last 2 days", "all events, last 7 days"}
    assert (volume["status"] == "ok").all(), volume.loc[volume["status"] != "ok", "detail"].tolist()


@pytest.mark.parametrize("unit", ["ns", "us", "s"])
def test_daily_counts_by_calendar_day_whatever_the_timestamp_unit(unit: str) -> None:
    stamps = ["2024-02-29T00:00:00", "2024-02-29T23:59:59", "2024-02-28T23:59:59", "2024-03-01T00:00:00", "2024-02-27T12:00:00"]
    events = pd.DataFrame({"occurred_at": pd.to_datetime(stamps, utc=True).as_unit(unit), "event_type": ["login", "login", "invoice", "login", "login"]})
    counts = daily_event_counts(events, as_of=AS_OF, days=3)
    assert [f"{d:%m-%d}" for d in counts.index] == ["02-27", "02-28", "02-29"]  # the event at as_of is not before it
    assert counts["login"].tolist() == [1, 0, 2] and counts["invoice"].tolist() == [0, 1, 0]
    assert counts["all events"].tolist() == [1, 1, 2]


def test_a_feed_that_loses_half_its_events_on_the_last_days_is_flagged(business) -> None:  # type: ignore[no-untyped-def]
    data, _, _ = business
    events = data.interactions
    last_days = (events["occurred_at"] >= AS_OF - pd.Timedelta(days=3)) & (events["occurred_at"] < AS_OF)
    broken = events[~(last_days & (np.random.default_rng(1).random(len(events)) < 0.5))]
    quality = data_quality(as_of=AS_OF, interactions=broken).set_index("subject")
    assert quality.loc["all events, last 2 days", "status"] == "alert"
    assert quality.loc["login, last 2 days", "status"] == "alert"
    assert "-4" in quality.loc["all events, last 2 days", "detail"]  # −45…−50 %
    assert quality.loc["interactions", "status"] == "ok"  # fresh: the feed still delivers
    decision = verdict(features=pd.DataFrame(columns=DRIFT_COLUMNS), prediction=pd.DataFrame(columns=DRIFT_COLUMNS), data_quality=quality.reset_index(), performance=[])
    assert decision["verdict"] == "alert" and not decision["retrain_recommended"]


def test_missing_values_new_categories_rejected_rows_and_freshness(business) -> None:  # type: ignore[no-untyped-def]
    data, features, _ = business
    events = data.interactions.copy()
    week = (events["occurred_at"] >= AS_OF - pd.Timedelta(days=7)) & (events["event_type"] == "support_contact")
    events.loc[week, "wait_seconds"] = np.nan
    accounts = data.accounts.copy()
    accounts.loc[accounts.index[:300], "region"] = "mars"  # 7.5 % of accounts
    reports = [TableReport("interactions", "interactions.parquet", 1_000, accepted=850, rejected={"wait_seconds < 0": 150})]
    known = {"event_type": ["login", "feature_use", "support_contact", "survey", "invoice"], "region": ["apac", "emea", "latam", "na"]}
    quality = data_quality(as_of=AS_OF, interactions=events, accounts=accounts, reports=reports, known=known)
    assert list(quality.columns) == DQ_COLUMNS
    by = quality.set_index(["check", "subject"])
    assert by.loc[("missing", "support_contact · wait_seconds"), "status"] == "alert"
    others = quality[(quality["check"] == "missing") & (quality["subject"] != "support_contact · wait_seconds")]
    assert len(others) >= 5 and (others["status"] == "ok").all()
    assert by.loc[("new_category", "region"), "status"] == "warn" and "mars (300)" in by.loc[("new_category", "region"), "detail"]
    assert by.loc[("new_category", "event_type"), "status"] == "ok"
    assert by.loc[("rejected_rows", "interactions"), "value"] == pytest.approx(0.15) and by.loc[("rejected_rows", "interactions"), "status"] == "alert"
    stale = data_quality(as_of=AS_OF + pd.Timedelta(days=40), interactions=data.interactions[data.interactions["occurred_at"] < AS_OF])
    fresh = stale[stale["check"] == "freshness"].iloc[0]
    assert fresh["value"] == pytest.approx(40, abs=0.1) and fresh["status"] == "alert"


# --------------------------------------------------------------------------- realized performance


def test_realized_performance_equals_a_hand_computation() -> None:
    risk = pd.DataFrame(
        {
            "account_id": list("abcdefgh"),
            "churn_probability": [0.60, 0.50, 0.40, 0.30, 0.20, 0.15, 0.05, 0.02],
            "risk_band": ["high", "high", "high", "high", "medium", "medium", "low", "low"],
            "outreach": [True, False, False, False, False, False, False, False],
            "control": [False, True, True, False, False, False, False, False],
        }
    )
    labels = pd.DataFrame({"account_id": list("abcdefgh"), "churned": [1, 1, 0, 1, 0, 1, 0, 0]})
    perf = realized_performance(risk, labels, training={"roc_auc": 0.70})
    # a was called: left out. Judged b…h — churners b (.50), d (.30), f (.15); others c (.40), e, g, h
    assert (perf["accounts"], perf["evaluated"], perf["excluded_outreach"], perf["churners"]) == (8, 7, 1, 3)
    # ROC-AUC: b beats 4 non-churners, d beats 3 (not c), f beats 2 → 9 of 12 pairs
    assert perf["roc_auc"] == pytest.approx(9 / 12)
    # PR-AUC (average precision): hits at ranks 1, 3, 5 → (1 + 2/3 + 3/5) / 3
    assert perf["pr_auc"] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    # precision at capacity = the control group b, c: one churner in two
    assert perf["precision_at_capacity"] == 0.5 and "control group (2" in perf["precision_basis"]
    low, high = stats.binomtest(1, 2).proportion_ci(method="wilson")
    assert (perf["precision_low"], perf["precision_high"]) == pytest.approx((low, high))
    assert perf["expected_rate"] == pytest.approx(1.62 / 7) and perf["actual_rate"] == pytest.approx(3 / 7)
    assert perf["brier"] == pytest.approx((0.25 + 0.16 + 0.49 + 0.04 + 0.7225 + 0.0025 + 0.0004) / 7)
    bands = {b["band"]: b for b in perf["bands"]}
    assert (bands["high"]["accounts"], bands["high"]["churned"]) == (3, 2) and bands["high"]["expected"] == pytest.approx(0.4)
    assert bands["medium"]["actual"] == 0.5 and bands["low"]["actual"] == 0.0
    # Hanley–McNeil by hand: Q1 = .75/1.25, Q2 = 2·.75²/1.75
    var = (0.75 * 0.25 + 2 * (0.6 - 0.5625) + 3 * (2 * 0.5625 / 1.75 - 0.5625)) / 12
    assert perf["roc_auc_low"] == pytest.approx(0.75 - 1.959964 * np.sqrt(var)) and perf["roc_auc_high"] == 1.0
    assert perf["status"] == "ok" and perf["training"] == {"roc_auc": 0.70}


def test_expected_roc_auc_by_pairs() -> None:
    """Every churner–stayer pair weighted by p_i·(1 − p_j): a win when p_i > p_j, half on a tie."""
    from churn.monitoring.performance import expected_roc_auc

    p = np.array([0.5, 0.2, 0.2])
    # pairs (i, j), weight p_i(1 − p_j): (.5,.2)×2 = .4 each win; (.2,.5) = .1 loss; (.2,.2) = .16 ×2 ties
    wins, pairs = 2 * 0.4 + 2 * 0.16 * 0.5, 2 * 0.4 + 2 * 0.1 + 2 * 0.16
    assert expected_roc_auc(p) == pytest.approx(wins / pairs)
    assert np.isnan(expected_roc_auc(np.array([0.3])))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_model_that_works_raises_nothing_once_the_called_accounts_are_left_out(seed: int) -> None:
    """Outcomes drawn from the model's own probabilities: the model works exactly as trained.
    Leaving out the called top of the list lowers the ROC-AUC of the rest well below the
    full-population figure; the judgement must not call that a failing model."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    n = 20_000
    p = rng.beta(0.3, 3.0, n)
    churned = (rng.random(n) < p).astype(int)
    order = np.argsort(-p)
    outreach = np.zeros(n, dtype=bool)
    outreach[order[:3_000]] = True
    control = np.zeros(n, dtype=bool)
    control[order[:3_000][::10]] = True
    outreach &= ~control
    risk = pd.DataFrame({"account_id": np.arange(n).astype(str), "churn_probability": p, "risk_band": "low", "outreach": outreach, "control": control})
    labels = pd.DataFrame({"account_id": risk["account_id"], "churned": churned})
    training_auc = roc_auc_score(churned, p)
    perf = realized_performance(risk, labels, training={"roc_auc": training_auc})
    assert perf["roc_auc_high"] < training_auc  # the rest of the list is harder to rank: against training alone, a warning…
    assert perf["roc_auc_low"] <= perf["expected_roc_auc"] <= perf["roc_auc_high"]  # …but just as the probabilities promise
    assert perf["status"] == "ok", perf["detail"]


def test_past_lists_are_judged_once_with_their_own_definition(tmp_path: Path) -> None:
    from churn.outreach.runs import run_dir, write_run

    accounts = pd.DataFrame(
        {
            "account_id": list("abcd"),
            "signup_at": pd.to_datetime(["2023-01-01"] * 4, utc=True),
            "churned_at": pd.to_datetime(["2024-01-10", None, "2024-02-20", None], utc=True),
        }
    )
    risk = pd.DataFrame(
        {"account_id": list("abcd"), "churn_probability": [0.6, 0.4, 0.3, 0.1], "risk_band": ["high", "high", "high", "medium"], "outreach": False, "control": [True, True, False, False]}
    )
    for as_of, horizon in (("2024-01-01", 30), ("2024-02-01", 60)):
        record = {"run_id": f"r{as_of[5:7]}", "as_of": as_of, "scored_at": as_of, "model": "m", "churn": {"horizon_days": horizon, "kind": "subscription"}}
        write_run(tmp_path, risk, record)
    end = pd.Timestamp("2024-03-15", tz="UTC")
    perf, expected = past_performance(tmp_path, accounts=accounts, interactions=pd.DataFrame(columns=["account_id", "occurred_at"]), data_end=end, training=None)
    # January (30 days) has matured: a churned on 10 January; February's 60-day horizon has not
    assert [p["run_id"] for p in perf] == ["r01"] and perf[0]["churners"] == 1 and perf[0]["precision_at_capacity"] == 0.5
    assert [(e["run_id"], e["matured"], e["matures_on"]) for e in expected] == [("r01", True, "2024-01-31"), ("r02", False, "2024-04-01")]
    assert expected[1]["expected_flagged_rate"] == pytest.approx(0.5)
    # the next week: nothing is reloaded that was judged or listed before
    for run in ("r01", "r02"):
        (run_dir(tmp_path, run) / "risk_list.parquet").unlink()
    again = past_performance(tmp_path, accounts=accounts, interactions=pd.DataFrame(columns=["account_id", "occurred_at"]), data_end=end, training=None, earlier={"performance": perf, "expected": expected})
    assert again == (perf, expected)


def test_controls_held_over_from_an_earlier_run_do_not_count_as_this_lists_controls() -> None:
    """February's list flags 10 accounts: 6 called, 4 held out (2 churn: precision 0.5). Six
    controls January still holds out sit low on February's list and stay (churn 0): they are
    January's experiment, not February's top, and must change none of February's figures."""
    feb, jan = pd.Timestamp("2024-02-01", tz="UTC"), pd.Timestamp("2024-01-01", tz="UTC")
    n = 40
    rank = np.arange(1, n + 1)
    own = pd.DataFrame(
        {
            "account_id": [f"a{i:02d}" for i in rank],
            "as_of": feb,
            "churn_probability": np.linspace(0.6, 0.01, n),
            "risk_band": np.where(rank <= 10, "high", np.where(rank <= 20, "medium", "low")),
            "outreach": np.isin(rank, [1, 2, 4, 5, 7, 8]),
            "control": np.isin(rank, [3, 6, 9, 10]),
            "assigned_as_of": pd.Series([feb if r <= 10 else pd.NaT for r in rank], dtype="datetime64[ns, UTC]"),
        }
    )
    churned = np.isin(rank, [1, 3, 6, 12, 15, 30]).astype(int)  # controls 3 and 6 churn
    held = np.isin(rank, [25, 28, 31, 34, 37, 40])
    with_held = own.assign(control=own["control"] | held, assigned_as_of=own["assigned_as_of"].where(~held, jan))
    labels = pd.DataFrame({"account_id": own["account_id"], "churned": churned})
    alone = realized_performance(own[~held], labels, training={"roc_auc": 0.7})
    mixed = realized_performance(with_held, labels, training={"roc_auc": 0.7})
    assert alone["precision_at_capacity"] == mixed["precision_at_capacity"] == 0.5  # 2 of its own 4 controls; 2 of 10 with January's
    assert "control group (4 " in mixed["precision_basis"] and mixed["excluded_held_controls"] == 6
    for key in ("evaluated", "churners", "roc_auc", "pr_auc", "actual_rate", "expected_rate", "flagged_expected"):
        assert mixed[key] == alone[key], key
    assert mixed["evaluated"] == n - 6 - 6  # neither the called nor January's controls
    assert expected_churn(with_held)["flagged"] == expected_churn(own)["flagged"] == 10
    assert expected_churn(with_held)["expected_flagged_rate"] == pytest.approx(own["churn_probability"].head(10).mean())


def test_accounts_called_by_an_earlier_run_are_not_this_lists_not_contacted(tmp_path: Path) -> None:
    """January (60-day horizon) calls x and y; February is scored while January's calls run.
    x is on February's list as January's assignment (``assigned_as_of``), below capacity; y
    is not recorded at all — January was re-run after February with a new draw — and is found
    in January's list. Both stayed (the call worked) with a high score; counting them as
    untouched accounts would make the model look worse than it is."""
    from churn.outreach.runs import write_run

    jan, feb = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-02-01", tz="UTC")
    ids = ["x", "y", "c1", "c2", "a", "b", "c", "d", "e", "f"]
    accounts = pd.DataFrame({"account_id": ids, "signup_at": pd.Timestamp("2023-01-01", tz="UTC")})
    accounts["churned_at"] = pd.to_datetime([None, None, "2024-02-20", None, "2024-03-01", None, "2024-02-10", None, None, None], utc=True)
    utc = "datetime64[ns, UTC]"
    february = pd.DataFrame(
        {
            "account_id": ids,
            "as_of": feb,
            "churn_probability": [0.50, 0.45, 0.60, 0.55, 0.40, 0.35, 0.30, 0.20, 0.10, 0.05],
            "risk_band": ["high"] * 4 + ["medium"] * 3 + ["low"] * 3,
            "outreach": False,
            "control": [False, False, True, True] + [False] * 6,
            "assigned_as_of": pd.Series([jan, pd.NaT, feb, feb] + [pd.NaT] * 6, dtype=utc),
        }
    )
    january = pd.DataFrame({"account_id": ["x", "y"], "as_of": jan, "churn_probability": 0.5, "risk_band": "high", "outreach": True, "control": False, "assigned_as_of": pd.Series([jan, jan], dtype=utc)})
    churn = {"horizon_days": 60, "kind": "subscription"}
    write_run(tmp_path, january.assign(outreach=[True, False]), {"run_id": "jan1", "as_of": "2024-01-01", "scored_at": "2024-01-01 08:00:00 UTC", "model": "m", "churn": churn})
    write_run(tmp_path, february, {"run_id": "feb", "as_of": "2024-02-01", "scored_at": "2024-02-01 08:00:00 UTC", "model": "m", "churn": churn})
    write_run(tmp_path, january, {"run_id": "jan2", "as_of": "2024-01-01", "scored_at": "2024-02-02 08:00:00 UTC", "model": "m", "churn": churn})
    events = pd.DataFrame(columns=["account_id", "occurred_at"])
    perf, _ = past_performance(tmp_path, accounts=accounts, interactions=events, data_end=pd.Timestamp("2024-05-01", tz="UTC"), training=None)
    february_perf = next(p for p in perf if p["as_of"] == "2024-02-01")
    rest = february[~february["account_id"].isin(["x", "y"])]  # controls c1, c2 and a…f
    labels = rest["account_id"].isin(["c1", "a", "c"]).astype(int)
    from sklearn.metrics import roc_auc_score

    assert february_perf["evaluated"] == 8 and february_perf["excluded_contacted_earlier"] == 2
    assert february_perf["roc_auc"] == pytest.approx(roc_auc_score(labels, rest["churn_probability"]))
    assert february_perf["actual_rate"] == pytest.approx(3 / 8)


def test_intervals_and_a_model_that_stopped_working() -> None:
    lo, hi = auc_interval(0.8, 100, 900)
    assert lo < 0.8 < hi and hi - lo < auc_interval(0.8, 10, 90)[1] - auc_interval(0.8, 10, 90)[0]
    lo, hi = ap_interval(0.3, 50)
    assert 0 < lo < 0.3 < hi < 1
    low, high = wilson(np.array([0, 5]), np.array([0, 10]))
    assert np.isnan(low[0]) and low[1] == pytest.approx(stats.binomtest(5, 10).proportion_ci(method="wilson").low)
    rng = np.random.default_rng(4)
    n = 3_000
    risk = pd.DataFrame(
        {"account_id": np.arange(n).astype(str), "churn_probability": rng.random(n) * 0.2, "risk_band": "low", "outreach": False, "control": False}
    )
    labels = pd.DataFrame({"account_id": risk["account_id"], "churned": (rng.random(n) < 0.3).astype(int)})  # unrelated to the score
    perf = realized_performance(risk, labels, training={"roc_auc": 0.80})
    assert perf["roc_auc_high"] < 0.75 and perf["status"] == "alert"
    assert "recalibrate" in perf["detail"]  # 30 % churn where 10 % was predicted


# --------------------------------------------------------------------------- alerts, verdict, history


def test_risk_alerts_name_the_reasons_that_changed() -> None:
    reasons = {"w": "5 long waits", "r": "3 repeat contacts", "p": "price rose 20 %", "c": "contract is monthly"}

    def frame(rows: list[tuple[str, float, str, str]]) -> pd.DataFrame:
        out = pd.DataFrame(rows, columns=["account_id", "churn_probability", "risk_band", "reason_features"])
        texts = out["reason_features"].str.split(",").map(lambda names: [reasons[n] for n in names if n] + ["", "", ""])
        for i in range(3):
            out[f"reason_{i + 1}"] = texts.str[i]
        return out.assign(rank=np.arange(1, len(out) + 1), outreach=False, control=False)

    previous = frame([("a", 0.05, "low", "w,r"), ("b", 0.20, "medium", "c"), ("c", 0.30, "high", "w"), ("d", 0.10, "medium", "r")])
    current = frame([("a", 0.30, "high", "w,p"), ("b", 0.26, "high", "c"), ("c", 0.45, "high", "w,c"), ("d", 0.12, "medium", "r"), ("e", 0.90, "high", "p")])
    alerts = risk_alerts(current, previous).set_index("account_id")
    assert list(alerts.index) == ["a", "b", "c"]  # d rose 2 points; e is new, not a jump
    assert alerts.loc["a", "alert"] == "band low → high; risk +25 points"
    assert alerts.loc["b", "alert"] == "band medium → high" and alerts.loc["c", "alert"] == "risk +15 points"
    assert alerts.loc["a", "new_reasons"] == "price rose 20 %" and alerts.loc["a", "dropped_reasons"] == "3 repeat contacts"
    assert alerts.loc["b", "new_reasons"] == "" and alerts.loc["c", "new_reasons"] == "contract is monthly"
    assert alerts.loc["a", "probability_change"] == pytest.approx(0.25)
    assert risk_alerts(current, None).empty


def drift_row(feature: str, status: str, importance: float | None, value: float = 0.5) -> dict[str, object]:
    return {"feature": feature, "status": status, "importance": importance, "value": value, "threshold": 0.3, "warn_threshold": 0.15, "detail": ""}


def test_verdict_rules() -> None:
    empty_dq = pd.DataFrame(columns=DQ_COLUMNS)
    no_prediction = pd.DataFrame(columns=[*DRIFT_COLUMNS, "detail"])
    important = pd.DataFrame([drift_row("wait_mean_90d", "alert", 0.08), drift_row("mrr", "ok", 0.2, 0.01)])
    minor = pd.DataFrame([drift_row("n_survey_365d", "alert", 0.001)])
    # correlated features the model uses a little each, but together enough: 5 × 1.2 % ≥ 5 %
    group = pd.DataFrame([drift_row(f"wait_{i}", "alert", 0.012) for i in range(5)])
    calm = verdict(features=minor.assign(status="ok"), prediction=no_prediction, data_quality=empty_dq, performance=[])
    assert calm == {"verdict": "ok", "retrain_recommended": False, "reasons": ["all checks within their thresholds"], "retrain_reasons": []}
    little = verdict(features=minor, prediction=no_prediction, data_quality=empty_dq, performance=[])
    assert little["verdict"] == "warn" and not little["retrain_recommended"] and "0.1 % of the model's gain" in little["reasons"][0]
    drifting = verdict(features=important, prediction=no_prediction, data_quality=empty_dq, performance=[])
    assert drifting["verdict"] == "alert" and drifting["retrain_recommended"] and "wait_mean_90d (alert, PSI 0.50)" in drifting["retrain_reasons"][0]
    together = verdict(features=group, prediction=no_prediction, data_quality=empty_dq, performance=[])
    assert together["verdict"] == "alert" and "6 % of the model's gain" in together["reasons"][0]
    broken = pd.DataFrame([{"check": "volume", "subject": "login, last 2 days", "value": 1, "expected": 2, "threshold": 0.4, "status": "alert", "detail": "half the logins"}])
    both = verdict(features=important, prediction=no_prediction, data_quality=broken, performance=[])
    assert both["verdict"] == "alert" and not both["retrain_recommended"] and "fixed" in both["reasons"][-1]
    worse = [{"as_of": "2024-01-01", "status": "alert", "detail": "ROC-AUC 0.55 is clearly below the training 0.78"}]
    decayed = verdict(features=minor.assign(status="ok"), prediction=no_prediction, data_quality=empty_dq, performance=worse)
    assert decayed["verdict"] == "alert" and decayed["retrain_recommended"]


def test_drift_onset_is_the_start_of_the_current_streak() -> None:
    runs = pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"], utc=True)
    statuses = {"a": ["ok", "warn", "alert", "alert"], "b": ["warn", "ok", "ok", "warn"], "c": ["warn", "warn", "ok", "ok"], "d": ["ok"] * 4}
    history = pd.DataFrame(
        [{"as_of": t, "feature": f, "status": s, "value": 0.1 * (i + 1)} for f, ss in statuses.items() for i, (t, s) in enumerate(zip(runs, ss))]
    )
    onset = drift_onset(history).set_index("feature")
    assert list(onset.index) == ["a", "b"]  # c recovered, d never drifted
    assert onset.loc["a", "since"] == runs[1] and onset.loc["a", "runs"] == 3 and onset.loc["a", "worst_psi"] == pytest.approx(0.4)
    assert onset.loc["b", "since"] == runs[3]


def minimal_document(verdict_level: str = "warn") -> dict[str, object]:
    features = pd.DataFrame([drift_row("wait_mean_90d", verdict_level, 0.1)])
    doc = monitoring_document(
        record={"run_id": "r1", "as_of": "2024-03-01", "model": "churn v1 (models:/churn@champion)"},
        features=features.reindex(columns=DRIFT_COLUMNS), prediction=pd.DataFrame(columns=DRIFT_COLUMNS), data_quality=pd.DataFrame(columns=DQ_COLUMNS),
        performance=[], expected=[], alerts=pd.DataFrame(columns=["account_id"]),
    )  # fmt: skip
    json.dumps(doc, allow_nan=False)
    return doc


def test_metrics_go_to_mlflow_and_an_unreachable_store_is_only_a_note(mlflow_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow import MlflowClient

    doc = minimal_document()
    logged = log_monitoring(doc)
    assert logged["logged"], logged
    run = MlflowClient().get_run(logged["run_id"])
    assert run.data.metrics["verdict_level"] == 1.0 and run.data.metrics["psi.wait_mean_90d"] == 0.5
    assert run.data.tags["verdict"] == "warn"
    import mlflow

    def unreachable(name: str) -> None:
        raise ConnectionError("store unreachable")

    monkeypatch.setattr(mlflow, "get_experiment_by_name", unreachable)
    failed = log_monitoring(doc)
    assert failed == {"logged": False, "error": "ConnectionError: store unreachable"}


def test_metrics_are_logged_only_for_models_from_mlflow() -> None:
    assert came_from_mlflow("churn v3 (models:/churn@champion)") and came_from_mlflow("runs:/0a1b/model")
    assert not came_from_mlflow("models/churn_champion.joblib (3)")


def test_monitor_config_is_validated() -> None:
    with pytest.raises(ValueError):
        MonitorConfig(psi_warn=0.3, psi_alert=0.2)
    with pytest.raises(ValueError):
        MonitorConfig(volume_windows_days=())


# --------------------------------------------------------------------------- the CLI: score → monitor


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory, trained, business):  # type: ignore[no-untyped-def]
    """A model with its monitoring reference, three monthly runs — the last one on a feed
    that lost half its events in its final days — then `churn monitor --data`."""
    data, _, _ = business
    root = tmp_path_factory.mktemp("monitor")
    write(data, str(root / "raw"))
    model = trained.model  # training stored its reference: the latest cutoff, scored out of fold by the deployed settings
    assert model.metadata["monitoring_reference"]["n"] == len(trained.y_test)
    bundle = root / "model.joblib"
    save_bundle(model, bundle)
    save_bundle(replace(model, metadata={k: v for k, v in model.metadata.items() if k != "monitoring_reference"}), root / "bare.joblib")
    events = pd.read_parquet(root / "raw" / "interactions.parquet")
    last_days = (events["occurred_at"] >= AS_OF - pd.Timedelta(days=2)) & (events["occurred_at"] < AS_OF)
    (root / "broken").mkdir()
    events[~(last_days & (np.random.default_rng(0).random(len(events)) < 0.5))].to_parquet(root / "broken" / "interactions.parquet")
    for name in ("accounts.parquet", "attribute_history.parquet", "churn.toml"):
        shutil.copy(root / "raw" / name, root / "broken" / name)
    runner = CliRunner()
    common = ["--capacity", "100", "--model", str(bundle), "--out", str(root / "scores")]
    results = {
        "jan": runner.invoke(app, ["score", "--data", str(root / "raw"), "--as-of", "2024-01-01", *common]),
        "feb": runner.invoke(app, ["score", "--data", str(root / "raw"), "--as-of", "2024-02-01", *common]),
        "mar": runner.invoke(app, ["score", "--data", str(root / "broken"), "--as-of", "2024-03-01", "--fail-on", "alert", *common]),
    }
    results["mar_doc"] = json.loads((root / "scores" / "monitoring.json").read_text())
    results["mar_html"] = (root / "scores" / "report.html").read_text()
    results["monitor"] = runner.invoke(app, ["monitor", "--scores", str(root / "scores"), "--data", str(root / "raw")])
    results["bare"] = runner.invoke(app, ["score", "--data", str(root / "raw"), "--as-of", "2024-01-01", "--model", str(root / "bare.joblib"), "--out", str(root / "bare")])
    return root, results


def test_score_writes_monitoring_and_fails_on_alert(scored, trained) -> None:  # type: ignore[no-untyped-def]
    root, results = scored
    assert results["jan"].exit_code == 0, results["jan"].output
    assert results["feb"].exit_code == 0 and "Monitoring:" in results["feb"].output
    assert results["mar"].exit_code == FAIL_EXIT_CODE, results["mar"].output
    assert "Traceback" not in results["mar"].output and "exit code 3" in results["mar"].output
    doc = results["mar_doc"]
    assert {"verdict", "retrain_recommended", "features", "data_quality", "performance", "alerts"} <= set(doc)
    assert doc["verdict"] == "alert" and not doc["retrain_recommended"]  # the feed is broken: fix it first
    flagged = {q["subject"] for q in doc["data_quality"] if q["status"] == "alert"}
    assert "all events, last 2 days" in flagged
    assert len(doc["features"]) == len(trained.model.feature_names)  # one row per model feature
    assert {"feature", "statistic", "value", "threshold", "status"} <= set(doc["features"][0])
    assert [p["feature"] for p in doc["prediction"]] == ["churn_probability", "risk_band"]
    # before labels mature: the expected churn among flagged accounts, from the probabilities
    assert [(e["as_of"], e["matured"]) for e in doc["expected"]] == [("2024-01-01", True), ("2024-02-01", False), ("2024-03-01", False)]
    risk = pd.read_parquet(root / "scores" / "risk_list.parquet")
    held = risk["control"] & (risk["assigned_as_of"] < risk["as_of"])
    flagged = risk[(risk["outreach"] | risk["control"]) & ~held]
    # flagged = this list's calls + its own controls, not the controls earlier runs still hold out
    assert held.any() and doc["expected"][-1]["flagged"] == len(flagged) == 100
    assert doc["expected"][-1]["expected_flagged_rate"] == pytest.approx(flagged["churn_probability"].mean())
    assert [p["as_of"] for p in doc["performance"]] == ["2024-01-01"]  # only January's horizon has passed by March
    alerts = pd.read_csv(root / "scores" / "alerts.csv")
    assert list(alerts.columns[:3]) == ["account_id", "rank", "churn_probability"] and len(alerts) == doc["summary"]["account_alerts"]
    assert len(list((root / "scores" / "runs").glob("*/monitoring.json"))) == 3  # one per run, in its folder
    html = results["mar_html"]
    assert 'id="monitoring"' in html and 'id="drift-chart"' in html and 'id="quality-table"' in html


def test_monitor_rejudges_with_new_outcomes(scored) -> None:  # type: ignore[no-untyped-def]
    root, results = scored
    assert results["monitor"].exit_code == 0, results["monitor"].output
    doc = json.loads((root / "scores" / "monitoring.json").read_text())
    # the data runs to 2024-04-01: all three lists have matured, each judged with its own definition
    assert [p["as_of"] for p in doc["performance"]] == ["2024-01-01", "2024-02-01", "2024-03-01"]
    assert all(0.5 < p["roc_auc"] < 1 and p["roc_auc_low"] < p["roc_auc"] < p["roc_auc_high"] for p in doc["performance"])
    assert doc["features"] == results["mar_doc"]["features"]  # drift kept from scoring time
    # checked on the full data now: the March window is intact
    assert not [q for q in doc["data_quality"] if q["check"] == "volume" and q["status"] != "ok"]
    assert "Realized performance of matured lists" in results["monitor"].output
    history = read_monitoring_history(root / "scores")
    assert history["as_of"].nunique() == 3 and set(history["status"]) <= {"ok", "warn", "alert"}


def test_monitor_usage_errors_and_a_model_without_reference(scored, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, results = scored
    runner = CliRunner()
    empty = runner.invoke(app, ["monitor", "--scores", str(tmp_path)])
    assert empty.exit_code == 2 and "holds no scoring run" in empty.output
    wrong = runner.invoke(app, ["monitor", "--scores", str(root / "scores"), "--fail-on", "panic"])
    assert wrong.exit_code == 2
    assert results["bare"].exit_code == 0, results["bare"].output
    bare = json.loads((root / "bare" / "monitoring.json").read_text())
    assert bare["features"] == [] and any("no monitoring reference" in n for n in bare["notes"])


def test_fail_on_exit_codes_follow_planted_conditions(scored, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The expected exit codes are fixed by what is planted, not read back from the run: a
    stored judgement with every check ok, the same with one feature at warning level, and the
    feed that lost half its events in the last two days (a data-quality alert)."""
    from churn.outreach.runs import latest_run, run_dir

    root, _ = scored
    scores = tmp_path / "scores"
    shutil.copytree(root / "scores", scores, symlinks=True)
    stored = run_dir(scores, latest_run(scores)["run_id"]) / "monitoring.json"
    original = json.loads(stored.read_text())
    runner = CliRunner()

    def plant(feature_status: str) -> None:
        doc = json.loads(json.dumps(original))
        for part in ("features", "prediction", "data_quality"):
            for row in doc[part]:
                row["status"] = "ok"
        doc["performance"] = []
        doc["features"][0]["status"] = feature_status
        stored.write_text(json.dumps(doc))

    def exit_code(fail_on: str, *data: str) -> int:
        result = runner.invoke(app, ["monitor", "--scores", str(scores), *data, "--fail-on", fail_on])
        assert "Traceback" not in result.output, result.output
        return result.exit_code

    plant("ok")
    assert exit_code("warn") == 0
    assert json.loads((scores / "monitoring.json").read_text())["verdict"] == "ok"
    plant("warn")
    assert exit_code("alert") == 0
    assert exit_code("warn") == FAIL_EXIT_CODE
    plant("ok")
    assert exit_code("alert", "--data", str(root / "broken")) == FAIL_EXIT_CODE
    assert exit_code("warn", "--data", str(root / "broken")) == FAIL_EXIT_CODE


@pytest.mark.browser
def test_monitoring_section_renders_in_headless_chromium(scored, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, _ = scored
    dom, console = rendered_dom(root / "scores" / "report.html", tmp_path / "profile")
    assert console == []
    for element in ("monitoring", "verdict", "drift-chart", "realized-chart", "volume-chart", "drift-table", "performance-table", "alerts-table"):
        assert f'id="{element}"' in dom, element


def test_data_quality_judges_the_accounts_on_the_list_not_a_date_rule() -> None:
    """Transactional data has no churned_at: a lapsed account is signed up and "not churned" by
    date, yet no customer and not on the list. Its attribute values must not count as the
    scored population's (a category only lapsed accounts have would read as new)."""
    from churn.monitoring.run import scored_accounts

    accounts = pd.DataFrame(
        {
            "account_id": ["a1", "a2", "lapsed"],
            "signup_at": pd.to_datetime(["2024-01-01"] * 3, utc=True),
            "plan": ["basic", "pro", "legacy"],
        }
    )
    risk = pd.DataFrame({"account_id": ["a2", "a1"], "churn_probability": [0.2, 0.1]})
    assert scored_accounts(accounts, risk)["account_id"].tolist() == ["a1", "a2"]
    assert scored_accounts(accounts.astype({"account_id": "category"}), risk)["plan"].tolist() == ["basic", "pro"]
