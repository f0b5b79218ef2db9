"""Time to churn: outcomes from the one lapse rule (censoring, transactional data, the lapsed),
the person-month expansion, remaining value by hand, and the survival measures against hand
computations and reference implementations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.config import ChurnDefinition, ScoreConfig, TrainConfig
from churn.data.population import is_customer
from churn.data.synthetic import generate
from churn.features.labels import build_training_table
from churn.features.spec import FeatureSpec
from churn.modeling.model import load_bundle, model_columns, save_bundle
from churn.modeling.survival import (
    MAX_MONTHS,
    MONTH,
    CurveCalibrator,
    HazardCalibrator,
    SurvivalConfig,
    evaluate_survival,
    feature_matrix,
    hazard_rows,
    remaining_value,
    survival_columns,
    time_slice,
    time_to_lapse,
    train_time_to_churn,
    value_if_kept,
)
from churn.modeling.survival_metrics import CoxModel, brier_scores, calibration_by_decile, integrated_brier, kaplan_meier, uno_c_index
from churn.modeling.train import fit_churn_model
from churn.outreach.score import build_risk_list

UTC = "UTC"


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=UTC)


# --------------------------------------------------------------------------- remaining value by hand


def test_remaining_value_of_two_accounts_by_hand() -> None:
    """Account A: certain to stay 24 months, 100 a month. Account B: 50 a month, half of it gone
    each month (S(m) = 0.5^m). At 10 % a year, month m is worth 1.1^(−m/12) of today's money."""
    curves = np.vstack([np.ones(24), 0.5 ** np.arange(1, 25)])
    monthly = np.array([100.0, 50.0])
    q = 1.1 ** (-1 / 12)  # one month's discount
    a = 100.0 * q * (1 - q**24) / (1 - q)  # geometric series: 2,176.46
    b = 50.0 * (0.5 * q) * (1 - (0.5 * q) ** 24) / (1 - 0.5 * q)  # 49.21
    got = remaining_value(curves, monthly, 0.10)
    assert got == pytest.approx([a, b], rel=1e-12)
    assert got[0] == pytest.approx(2176.46, abs=0.01) and got[1] == pytest.approx(49.21, abs=0.01)
    cols = survival_columns(curves, monthly, 0.10)
    assert cols.loc[1, ["survival_1m", "survival_3m", "survival_6m", "survival_12m"]].tolist() == [0.5, 0.125, 0.5**6, 0.5**12]
    assert cols["expected_months_24"].tolist() == pytest.approx([24.0, sum(0.5**m for m in range(1, 25))])
    # kept past a one-month horizon, B's months count from there on: S(m) / S(1), capped at 1
    kept = value_if_kept(curves, monthly, horizon_days=30, discount_rate=0.10)
    assert kept[1] == pytest.approx(sum(50.0 * min(1.0, 0.5 ** (m - 1)) * 1.1 ** (-m / 12) for m in range(1, 25)))
    assert kept[0] == pytest.approx(a)


# --------------------------------------------------------------------------- outcomes and censoring


def _subscription() -> tuple[pd.DataFrame, pd.DataFrame]:
    accounts = pd.DataFrame(
        {
            "account_id": ["lapses", "stays", "scheduled", "gone_before"],
            "signup_at": [ts("2024-01-01")] * 4,
            # stays: still a customer at the end (censored); scheduled: a cancellation dated after
            # the end of the data is not an observed lapse (censored too); gone_before: not a customer at T
            "churned_at": [ts("2024-05-16"), pd.NaT, ts("2025-03-01"), ts("2024-02-01")],
        }
    )
    accounts["churned_at"] = accounts["churned_at"].astype("datetime64[ns, UTC]")
    interactions = pd.DataFrame({"account_id": ["lapses"], "occurred_at": [ts("2024-02-10")], "event_type": ["login"]})
    return accounts, interactions


def test_censored_and_lapsed_accounts_from_the_lapse_rule() -> None:
    accounts, interactions = _subscription()
    t, end = ts("2024-03-01"), ts("2024-09-01")
    rows = pd.DataFrame({"account_id": accounts["account_id"], "as_of": [t] * 4})
    out = time_to_lapse(accounts, interactions, rows, ChurnDefinition(), end)
    observed = (end - t) / MONTH
    assert out["months"].iloc[0] == pytest.approx((ts("2024-05-16") - t) / MONTH)  # 2.5 months: lapses in month 3
    assert out["event"].tolist()[:3] == [True, False, False]
    assert out["months"].iloc[1] == pytest.approx(observed) and out["months"].iloc[2] == pytest.approx(observed)
    assert np.isnan(out["months"].iloc[3]) and not out["event"].iloc[3]  # not a customer: no remaining lifetime
    source, period, lapsed = hazard_rows(out["months"].to_numpy(), out["event"].to_numpy())
    # the lapser: months 1, 2 survived and 3 lapsed; the censored: only their 6 whole months
    # observed (6.0 months from 1 March to 1 September), never a lapse; the gone: nothing
    assert period[source == 0].tolist() == [1, 2, 3] and lapsed[source == 0].tolist() == [0, 0, 1]
    assert period[source == 1].tolist() == [1, 2, 3, 4, 5, 6] and lapsed[source == 1].sum() == 0
    assert lapsed[source == 2].sum() == 0 and (source == 3).sum() == 0


def test_transactional_outcomes_follow_the_inactivity_lapse() -> None:
    """No churned_at: an account lapses at its last activity + horizon; a later purchase is a
    new spell and does not undo the lapse; an account not active in the horizon before T is on
    the win-back list and gets no remaining lifetime."""
    accounts = pd.DataFrame({"account_id": ["a", "b", "c"], "signup_at": [ts("2024-01-01")] * 3})
    buys = [("a", "2024-02-20"), ("a", "2024-03-05"), ("a", "2024-06-01"), ("b", "2024-02-25"), ("b", "2024-03-20"), ("b", "2024-04-15"), ("c", "2024-01-10")]
    for day in pd.date_range("2024-04-15", "2024-08-25", freq="20D"):
        buys.append(("b", f"{day:%Y-%m-%d}"))
    interactions = pd.DataFrame({"account_id": [a for a, _ in buys], "occurred_at": [ts(d) for _, d in buys], "event_type": "purchase"})
    definition = ChurnDefinition(horizon_days=30).resolved(accounts)
    assert definition.kind == "inactivity"
    t, end = ts("2024-03-10"), ts("2024-09-01")
    rows = pd.DataFrame({"account_id": ["a", "b", "c"], "as_of": [t] * 3})
    out = time_to_lapse(accounts, interactions, rows, definition, end)
    assert out["event"].iloc[0] and out["months"].iloc[0] == pytest.approx((ts("2024-04-04") - t) / MONTH)  # 5 March + 30 days
    assert not out["event"].iloc[1] and out["months"].iloc[1] == pytest.approx((end - t) / MONTH)  # still buying: censored
    assert np.isnan(out["months"].iloc[2])  # lapsed on 9 February: the win-back list, never a lifetime
    customers = is_customer(accounts, interactions, t, definition)
    assert np.isfinite(out["months"].to_numpy()).tolist() == customers.tolist()


@pytest.fixture(scope="module")
def transactional_table():  # type: ignore[no-untyped-def]
    """A tiny generated business with its churn dates removed: transactional data."""
    data = generate(300, start="2023-01-01", months=16, seed=5)
    accounts = data.accounts.drop(columns=["churned_at"])
    definition = ChurnDefinition(horizon_days=30).resolved(accounts)
    cutoffs = [ts("2023-06-01"), ts("2023-09-01"), ts("2023-12-01"), ts("2024-03-01")]
    end = ts("2024-05-01")
    spec = FeatureSpec.from_data(accounts, data.interactions, before=max(cutoffs))
    table = build_training_table(accounts, data.interactions, cutoffs=cutoffs, definition=definition, spec=spec, data_end=end)
    return accounts, data.interactions, definition, end, table


@pytest.fixture(scope="module")
def transactional_survival(transactional_table):  # type: ignore[no-untyped-def]
    """The time-to-churn model, evaluated and fitted once on the tiny transactional table."""
    accounts, interactions, definition, end, table = transactional_table
    outcomes = time_to_lapse(accounts, interactions, table, definition, end)
    evaluation, model = train_time_to_churn(
        table, outcomes, model_columns(table), config=TrainConfig(n_jobs=1), survival=SurvivalConfig(n_estimators=60)
    )  # fmt: skip
    return outcomes, evaluation, model


def test_transactional_data_trains_a_survival_model_on_customers_only(transactional_table, transactional_survival) -> None:  # type: ignore[no-untyped-def]
    accounts, interactions, definition, end, table = transactional_table
    outcomes, evaluation, model = transactional_survival
    assert outcomes["months"].notna().all()  # the training table holds customers only: every row has a lifetime
    assert outcomes["event"].any() and not outcomes["event"].all()
    lapsed_rows = pd.DataFrame({"account_id": accounts["account_id"], "as_of": ts("2024-03-01")})
    lapsed = ~is_customer(accounts, interactions, ts("2024-03-01"), definition) & (accounts["signup_at"] < ts("2024-03-01")).to_numpy()
    assert lapsed.any()
    assert time_to_lapse(accounts, interactions, lapsed_rows, definition, end)["months"][lapsed].isna().all()
    assert set(evaluation.metrics.index) == {"model", "cox", "kaplan_meier"}
    assert np.isfinite(evaluation.metrics.to_numpy()).all()
    curves = model.curves(feature_matrix(table.head(20), model_columns(table))[0])
    assert curves.shape == (20, 24)
    assert (np.diff(curves, axis=1) <= 1e-12).all() and (curves > 0).all() and (curves <= 1).all()


def test_risk_list_and_bundle_carry_the_survival_columns(transactional_table, transactional_survival, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The deployed model scores the curves (saved in its bundle); the risk list shows them, the
    remaining value at the chosen discount rate and revenue at risk = probability × the value
    kept past the horizon. Only customers are scored: the lapsed are not on the list."""
    accounts, interactions, definition, end, table = transactional_table
    latest = table[table["as_of"] == table["as_of"].max()].reset_index(drop=True)
    churn_model, _ = fit_churn_model(table, spec=FeatureSpec.from_data(accounts, interactions), definition=definition, config=TrainConfig(n_jobs=1, n_estimators=40))
    churn_model.survival = transactional_survival[2]
    save_bundle(churn_model, tmp_path / "m.joblib")
    loaded = load_bundle(tmp_path / "m.joblib")
    curves = loaded.survival_curves(latest)
    assert curves is not None and np.allclose(curves, churn_model.survival_curves(latest))  # type: ignore[arg-type]
    risk, notes = build_risk_list(latest, loaded, config=ScoreConfig(discount_rate=0.25), accounts=accounts)
    risk = risk.set_index("account_id").loc[latest["account_id"]]
    monthly = risk["annual_value"].to_numpy() / 12
    assert risk["remaining_value"].to_numpy() == pytest.approx(remaining_value(curves, monthly, 0.25))
    assert risk["survival_12m"].to_numpy() == pytest.approx(curves[:, 11])
    kept = value_if_kept(curves, monthly, definition.horizon_days, 0.25)
    assert risk["revenue_at_risk"].to_numpy() == pytest.approx(risk["churn_probability"].to_numpy() * kept)
    assert "remaining value" in str(notes["value"])
    churn_model.survival = None  # a model trained without --survival: the old revenue at risk, empty columns
    plain, _ = build_risk_list(latest, churn_model, accounts=accounts)
    assert plain["remaining_value"].isna().all() and (plain["revenue_at_risk"] == plain["churn_probability"] * plain["annual_value"]).all()


# --------------------------------------------------------------------------- measures


def _brute_uno(times: np.ndarray, events: np.ndarray, risk: np.ndarray, tau: float) -> float:
    """Uno's C by its definition, pair by pair, with G from a hand-rolled censoring Kaplan–Meier."""
    order = np.unique(times)

    def g_left(t: float) -> float:
        s = 1.0
        for u in order[order < t]:
            at_risk = np.sum(times >= u)
            censored = np.sum((times == u) & ~events)
            s *= 1 - censored / at_risk
        return max(s, 1e-3)

    num = den = 0.0
    for i in range(len(times)):
        if not events[i] or times[i] >= tau:
            continue
        w = g_left(times[i]) ** -2
        for j in range(len(times)):
            if times[i] < times[j]:
                den += w
                num += w * (1.0 if risk[i] > risk[j] else 0.5 if risk[i] == risk[j] else 0.0)
    return num / den


def test_uno_c_index_by_hand_and_against_its_definition() -> None:
    # no censoring: Harrell's C. Lapses at 1, 2, 3, 4 months; risks 0.9, 0.5, 0.7, 0.1.
    # Pairs (earlier first): (1,2) ✓ (1,3) ✓ (1,4) ✓ (2,3) ✗ (2,4) ✓ (3,4) ✓ → 5 of 6
    t, e = np.array([1.0, 2.0, 3.0, 4.0]), np.ones(4, dtype=bool)
    assert uno_c_index(t, e, np.array([0.9, 0.5, 0.7, 0.1]), tau=12) == pytest.approx(5 / 6)
    assert uno_c_index(t, e, np.array([0.9, 0.5, 0.5, 0.1]), tau=12) == pytest.approx(5.5 / 6)  # a tie counts half
    rng = np.random.default_rng(0)
    times = np.round(rng.exponential(6, 150), 1) + 0.1
    events = rng.random(150) < 0.6
    risk = np.round(rng.normal(size=150) - 0.1 * times, 1)
    assert uno_c_index(times, events, risk, tau=8) == pytest.approx(_brute_uno(times, events, risk, 8), rel=1e-10)


def test_brier_score_with_censoring_by_hand() -> None:
    """Three accounts at t = 2: A lapsed at 1 (S_A(2) = 0.2), B censored at 1.5 (drops out), C
    still there at 3 (S_C(2) = 0.6). G: censoring KM — 1 before 1.5, ½ after (B is one of the
    two still observed). BS = [0.2²/G(1−) + 0 + (1 − 0.6)²/G(2)] / 3 = [0.04 + 0.16 / 0.5] / 3."""
    times, events = np.array([1.0, 1.5, 3.0]), np.array([True, False, False])
    survival = np.array([[0.2], [0.9], [0.6]])
    assert brier_scores(times, events, survival, np.array([2.0]))[0] == pytest.approx((0.04 + 0.16 / 0.5) / 3)
    # integrated over [1, 3]: trapezoid of the scores at 1, 2, 3, divided by 2
    curves = np.array([[0.5, 0.2, 0.1], [0.9, 0.9, 0.9], [0.8, 0.6, 0.5]])
    grid = np.array([1.0, 2.0, 3.0])
    bs = brier_scores(times, events, curves, grid)
    assert integrated_brier(times, events, curves, grid) == pytest.approx(((bs[0] + bs[1]) / 2 + (bs[1] + bs[2]) / 2) / 2)
    assert bs[0] == pytest.approx((0.5**2 / 1.0 + (1 - 0.9) ** 2 + (1 - 0.8) ** 2) / 3)  # at 1: A lapsed at t ≤ 1, B and C still there


def test_kaplan_meier_by_hand() -> None:
    # 5 accounts: lapses at 1 and 3, censored at 2, 4, 5 → S(1) = 4/5, S(3) = 4/5 × 2/3
    s = kaplan_meier(np.array([1.0, 2, 3, 4, 5]), np.array([True, False, True, False, False]), np.array([0.5, 1, 2.5, 3, 6]))
    assert s == pytest.approx([1.0, 0.8, 0.8, 0.8 * 2 / 3, 0.8 * 2 / 3])


def test_cox_matches_statsmodels_phreg() -> None:
    import statsmodels.api as sm

    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 3))
    times = np.round(rng.exponential(1 / np.exp(x @ np.array([0.5, -0.3, 0.0]))), 1) + 0.1  # rounded: tied times
    events = rng.random(300) < 0.8
    reference = sm.PHReg(times, x, status=events.astype(int), ties="breslow").fit()
    ours = CoxModel(penalty=0.0).fit(x, times, events)
    assert ours.beta / ours.scale == pytest.approx(reference.params, abs=1e-4)  # type: ignore[operator]


# --------------------------------------------------------------------------- the noise of the calibration gap


def test_calibration_noise_counts_accounts_not_rows() -> None:
    """The standard error of a decile's observed survival: on independent rows without
    censoring it is the binomial √(S(1−S)/n); when every account appears four times (four
    cutoffs, one lapse date) it stays that of the accounts — four copies are not four times
    the evidence — and a row bootstrap would halve it. The noise floor is se·√(2/π)."""
    rng = np.random.default_rng(5)
    n = 2_000
    times = rng.exponential(15.0, n)
    events = np.ones(n, dtype=bool)
    predicted = np.full(n, 0.5)
    one = calibration_by_decile(times, events, predicted, 12.0, bins=1, draws=400)
    s = float(one["observed"].iloc[0])
    assert abs(float(one["se"].iloc[0]) / np.sqrt(s * (1 - s) / n) - 1) < 0.15
    assert float(one["noise"].iloc[0]) == pytest.approx(float(one["se"].iloc[0]) * np.sqrt(2 / np.pi))
    ids = np.arange(n)
    by_account = calibration_by_decile(times, events, predicted, 12.0, bins=1, groups=ids, draws=400)
    copies = calibration_by_decile(np.tile(times, 4), np.tile(events, 4), np.tile(predicted, 4), 12.0, bins=1, groups=np.tile(ids, 4), draws=400)
    assert float(copies["observed"].iloc[0]) == pytest.approx(s)
    assert float(copies["se"].iloc[0]) == pytest.approx(float(by_account["se"].iloc[0]))
    as_rows = calibration_by_decile(np.tile(times, 4), np.tile(events, 4), np.tile(predicted, 4), 12.0, bins=1, draws=400)
    assert float(as_rows["se"].iloc[0]) < 0.6 * float(by_account["se"].iloc[0])


def test_weighted_kaplan_meier_equals_copied_rows() -> None:
    """A row of weight w counts as w copies (the account bootstrap relies on it), with censoring."""
    times = np.array([1.0, 2.0, 2.0, 3.5, 4.0, 6.0])
    events = np.array([True, False, True, True, False, True])
    w = np.array([2, 1, 3, 0, 1, 2])
    at = np.array([0.5, 2.0, 3.5, 5.0, 7.0])
    copied = kaplan_meier(np.repeat(times, w), np.repeat(events, w), at)
    weighted = kaplan_meier(times, events, at, weights=np.column_stack([w, np.ones(len(w))]))
    np.testing.assert_allclose(weighted[:, 0], copied)
    np.testing.assert_allclose(weighted[:, 1], kaplan_meier(times, events, at))


# --------------------------------------------------------------------------- the month the data ends in


def test_hazard_rows_drop_the_lapses_of_the_month_the_data_ends_in() -> None:
    """A row seen for 11.7 months has 11 whole months: its lapse at 11.5 (month 12) is not counted,
    since a stay through month 12 could not have been seen either. Pooled over cutoffs whose data
    end mid-month, the monthly hazard of a constant-hazard business comes out at that hazard —
    counting those lapses would add a month made only of lapses to every cutoff (≈ +8 % here)."""
    source, period, lapsed = hazard_rows(np.array([11.5, 11.7, 5.2]), np.array([True, False, True]), follow_up=np.array([11.7, 11.7, 11.7]))
    assert np.bincount(source).tolist() == [11, 11, 6]
    assert lapsed.tolist() == [0] * 22 + [0, 0, 0, 0, 0, 1]
    rng = np.random.default_rng(3)
    n, hazard = 60_000, 0.05
    lapse_at = rng.geometric(hazard, n) - 1 + rng.random(n)  # month k with chance hazard·(1 − hazard)^(k−1)
    follow = rng.integers(1, 13, n) + 0.5  # 12 cutoffs, the data ending mid-month
    event = lapse_at < follow
    source, period, lapsed = hazard_rows(np.minimum(lapse_at, follow), event, follow_up=follow)
    assert lapsed.mean() == pytest.approx(hazard, rel=0.04)
    late = period >= 9  # few cutoffs reach these months: where the bias was largest
    assert lapsed[late].mean() == pytest.approx(hazard, rel=0.12)


# --------------------------------------------------------------------------- calibration of hazards and curves


def test_hazard_calibration_bends_the_riskiest_hazards_with_the_month() -> None:
    """Raw hazards right at every month for most accounts, but from month 6 the riskiest ones'
    true hazard saturates at 6 % (their risk has faded since the cutoff): the calibrated hazard
    follows in that tail at month 9 and stays right in the bulk. A Platt slope per log-month,
    linear in logit(h) (the earlier calibrator), cannot bend only the tail."""
    rng = np.random.default_rng(4)
    p = 1.0 / (1.0 + np.exp(-rng.normal(-3.5, 0.8, 60_000)))
    month = rng.integers(1, 13, len(p)).astype(float)
    truth = np.where(month >= 6, np.minimum(p, 0.06), p)
    calibrator = HazardCalibrator().fit(p, month, (rng.random(len(p)) < truth).astype(int))
    tail, bulk = np.quantile(p, [0.97, 0.99]), np.quantile(p, [0.3, 0.6])
    assert calibrator.transform(tail, np.full(2, 9.0)).mean() == pytest.approx(0.06, abs=0.02)  # the earlier calibrator: 0.09 on three seeds
    assert calibrator.transform(bulk, np.full(2, 9.0)) == pytest.approx(bulk, rel=0.12)
    assert calibrator.transform(tail[:1], np.ones(1))[0] == pytest.approx(tail[0], rel=0.25)  # month 1: no saturation


def test_curve_calibration_recovers_survival_under_censoring() -> None:
    """Two groups whose predicted curves are off in opposite directions (the risky one too
    pessimistic), each row censored at its own end of data: calibrated S(12) equals the true one
    per group. The censored are not survivors, and dropping them would overcount lapses: the
    rows still seen at m are weighted by 1 / the chance of being seen that long (IPCW)."""
    rng = np.random.default_rng(3)
    risky = rng.random(12_000) < 0.3
    hazard = np.where(risky, 0.08, 0.02)
    lapse, end = rng.exponential(-1.0 / np.log(1.0 - hazard)), rng.uniform(2.0, 30.0, len(hazard))
    grid = np.arange(1, 13)
    predicted = np.where(risky[:, None], 0.905**grid, 0.982**grid)
    curves = CurveCalibrator.fit(predicted, np.minimum(lapse, end), lapse <= end).transform(predicted)
    assert curves[risky, 11].mean() == pytest.approx(0.92**12, abs=0.02)
    assert curves[~risky, 11].mean() == pytest.approx(0.98**12, abs=0.02)
    assert (np.diff(curves, axis=1) <= 0).all()


# --------------------------------------------------------------------------- the time-sliced evaluation


def test_time_slice_is_the_latest_cutoff_followed_for_a_year_with_earlier_ones() -> None:
    as_of = np.array([ts("2023-01-01"), ts("2023-01-01"), ts("2023-06-01"), ts("2024-01-01"), ts("2024-06-01")], dtype=object)
    follow = np.array([24.0, 24.0, 19.0, 12.0, 7.0])
    assert time_slice(as_of, follow) == ts("2024-01-01")
    assert time_slice(as_of[:2], follow[:2]) is None  # one cutoff: nothing earlier to train on
    assert time_slice(as_of, follow - 6.0) == ts("2023-06-01")
    assert time_slice(as_of, follow - 8.0) is None  # 2023-06-01 followed for 11 months only
    assert time_slice(as_of, np.full(5, np.nan)) is None  # no follow-up known: account folds


def test_time_sliced_evaluation_never_trains_on_what_happened_after_the_test_cutoff(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Rows of earlier cutoffs reach the models with their outcomes as known at the test
    cutoff: a lapse after it is censored there; the test cutoff's rows are the only ones judged."""
    rng = np.random.default_rng(0)
    cutoffs = [ts("2023-01-01"), ts("2023-07-01"), ts("2024-01-01")]
    as_of = np.array([c for c in cutoffs for _ in range(200)], dtype=object)
    end = ts("2025-01-01")
    follow = np.array([(end - a) / MONTH for a in as_of])
    lapse = rng.exponential(10.0, len(as_of))
    months, event = np.minimum(lapse, follow), lapse <= follow
    seen: dict[str, np.ndarray] = {}

    class Flat:
        def curves(self, x: np.ndarray) -> np.ndarray:
            return np.tile(0.95 ** np.arange(1, MAX_MONTHS + 1), (len(x), 1))

    def fake_fit(x, m, e, groups, **kwargs):  # type: ignore[no-untyped-def]
        seen.update(rows=np.asarray(x)[:, 0], months=m, event=e, follow=kwargs["follow_up"])
        return Flat()

    monkeypatch.setattr("churn.modeling.survival.fit_survival", fake_fit)
    x = np.column_stack([np.arange(len(as_of)), rng.normal(size=len(as_of))])
    evaluation = evaluate_survival(x, months, event, np.arange(len(as_of)).astype(str), None, categorical=[], follow_up=follow, as_of=as_of)
    assert "tested on the 200 customers at 2024-01-01" in evaluation.description
    rows = seen["rows"].astype(int)
    assert set(as_of[rows]) == set(cutoffs[:2])
    to_cutoff = np.array([(cutoffs[2] - a) / MONTH for a in as_of[rows]])
    assert (seen["months"] <= to_cutoff + 1e-9).all() and np.allclose(seen["follow"], to_cutoff)
    late = lapse[rows] > to_cutoff
    assert late.any() and not seen["event"][late].any() and np.allclose(seen["months"][late], to_cutoff[late])
    assert (seen["event"][~late] == event[rows][~late]).all()


def test_censor_at_sees_only_lapses_strictly_before_the_cutoff() -> None:
    """The time slice's training outcomes as known at the test cutoff: a lapse one second
    before it is seen, one exactly at it is not (as at the end of the data)."""
    from churn.modeling.survival import censor_at

    cutoff = pd.Timestamp("2024-01-01", tz="UTC")
    as_of = np.array(["2023-07-01"] * 3, dtype="datetime64[ns]")
    lapse = pd.to_datetime(["2023-12-31 23:59:59", "2024-01-01 00:00:00", "2024-03-01 00:00:00"], utc=True)
    months = ((lapse - pd.Timestamp("2023-07-01", tz="UTC")) / MONTH).to_numpy(dtype=float)
    censored, event, follow = censor_at(months, np.ones(3, dtype=bool), as_of, cutoff)
    assert event.tolist() == [True, False, False]
    assert np.allclose(follow, (cutoff - pd.Timestamp("2023-07-01", tz="UTC")) / MONTH)
    assert censored[0] == months[0] and np.allclose(censored[1:], follow[1:])


def test_a_time_slice_with_too_few_lapses_falls_back_to_account_folds(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A later cutoff followed for a year exists, but the earlier cutoffs' outcomes as known at
    it hold almost no lapse: the evaluation says so and judges on account folds instead of
    failing to fit (or reporting a C-index over a handful of lapses)."""
    rng = np.random.default_rng(1)
    cutoffs = [ts("2023-01-01"), ts("2023-07-01"), ts("2024-01-01")]
    as_of = np.array([c for c in cutoffs for _ in range(200)], dtype=object)
    end = ts("2025-06-01")
    follow = np.array([(end - a) / MONTH for a in as_of])
    lapse = np.where(as_of == cutoffs[2], rng.exponential(10.0, len(as_of)), 13.0 + rng.exponential(3.0, len(as_of)))  # early cutoffs lapse only after 2024-01
    lapse[:3] = 2.0  # three lapses seen before the test cutoff: too few to train on
    months, event = np.minimum(lapse, follow), lapse <= follow
    calls: list[int] = []

    class Flat:
        def curves(self, x: np.ndarray) -> np.ndarray:
            return np.tile(0.95 ** np.arange(1, MAX_MONTHS + 1), (len(x), 1))

    def fake_fit(x, m, e, groups, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(x))
        return Flat()

    monkeypatch.setattr("churn.modeling.survival.fit_survival", fake_fit)
    x = np.column_stack([np.arange(len(as_of)), rng.normal(size=len(as_of))])
    evaluation = evaluate_survival(x, months, event, np.arange(len(as_of)).astype(str), None, categorical=[], follow_up=follow, as_of=as_of)
    assert "3 account folds" in evaluation.description
    assert "later time slice at 2024-01-01 would train on 3 lapses" in evaluation.description
    assert len(calls) == 3 and sum(calls) == 2 * len(as_of)  # every row tested once, trained twice
