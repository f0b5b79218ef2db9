"""One time convention and one lapse rule, at the exact boundaries and on random histories.

Features see ``t < T``; the outcome window is ``[T, T + h)``; the end of the data is the day
after the latest accepted date. "Customer at T", the label, the lapsed list and retention all
come from one rule (:mod:`churn.data.population`), so they can never disagree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from churn.cli.commands import app
from churn.config import ChurnDefinition, TrainConfig
from churn.data.contract import load
from churn.data.dataend import data_end_of, day_end, observed_until
from churn.data.population import is_customer, lapsed
from churn.data.synthetic import generate
from churn.features.build import build_features
from churn.features.labels import LABEL, build_training_table, label_accounts
from churn.features.spec import FeatureSpec
from churn.modeling.model import save_bundle
from churn.modeling.train import train
from churn.outreach.retention import customer_spells, retention_table

DAY = pd.Timedelta(days=1)
HALF = pd.Timedelta(hours=12)
ORIGIN = pd.Timestamp("2024-01-01", tz="UTC")


def test_the_end_of_the_data_is_the_day_after_the_latest_date() -> None:
    for latest in ("2024-09-30", "2024-09-30 00:00:01", "2024-09-30 23:59:59.999"):
        assert day_end(pd.Timestamp(latest, tz="UTC")) == pd.Timestamp("2024-10-01", tz="UTC"), latest


# --------------------------------------------------------------------------- a date-only export


@pytest.fixture(scope="module")
def date_only(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A purchase-only export as billing systems write it: dates without times, numeric ids,
    no churned_at, a column the contract does not know — and a model trained on it."""
    business = generate(500, start="2023-01-01", months=10, seed=5)
    purchases = business.interactions[business.interactions["event_type"] == "invoice"]
    folder = tmp_path_factory.mktemp("date_only") / "raw"
    folder.mkdir()
    number = lambda ids: ids.str.lstrip("A").astype(int)  # noqa: E731
    accounts = pd.DataFrame(
        {"account_id": number(business.accounts["account_id"]), "signup_at": business.accounts["signup_at"].dt.strftime("%Y-%m-%d")}
    )
    accounts["region"] = business.accounts["region"]
    interactions = pd.DataFrame(
        {
            "account_id": number(purchases["account_id"]),
            "occurred_at": purchases["occurred_at"].dt.strftime("%Y-%m-%d"),
            "event_type": "purchase",
            "amount": purchases["amount"],
            "store": "web",
        }
    )
    accounts.to_csv(folder / "accounts.csv", index=False)
    interactions.to_csv(folder / "interactions.csv", index=False)
    last = pd.Timestamp(interactions["occurred_at"].max(), tz="UTC")
    data = load(folder)
    definition = ChurnDefinition(horizon_days=45).resolved(data.accounts)
    cutoffs = [last + DAY - pd.DateOffset(months=k) - definition.horizon for k in (2, 1, 0)]
    cutoffs = [t.floor("D") for t in cutoffs]
    spec = FeatureSpec.from_data(data.accounts, data.interactions, before=max(cutoffs))
    table = build_training_table(data.accounts, data.interactions, cutoffs=cutoffs, definition=definition, spec=spec)
    model = train(table, spec=spec, definition=definition, config=TrainConfig(n_estimators=40)).model
    save_bundle(model, folder.parent / "model.joblib")
    return folder, data, last


def test_a_date_only_export_ends_the_day_after_its_last_date(date_only) -> None:  # type: ignore[no-untyped-def]
    folder, data, last = date_only
    assert last == last.floor("D")  # every timestamp is a midnight
    assert data_end_of(folder) == last + DAY
    assert observed_until(data.accounts, data.interactions) == last + DAY


def test_a_date_only_export_is_scored_the_day_after_its_last_date_without_options(date_only, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder, _, last = date_only
    out = tmp_path / "scores"
    result = CliRunner().invoke(app, ["score", "--data", str(folder), "--model", str(folder.parent / "model.joblib"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"Data ends {last + DAY:%Y-%m-%d}" in result.output and "stale" not in result.output
    risk = pd.read_csv(out / "risk_list.csv")
    assert set(risk["as_of"].str[:10]) == {f"{last + DAY:%Y-%m-%d}"}


def test_features_on_the_day_after_a_date_only_export_see_its_last_day(date_only, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder, data, last = date_only
    out = tmp_path / "features.parquet"
    result = CliRunner().invoke(app, ["features", "--data", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    features = pd.read_parquet(out).set_index("account_id")
    assert set(features["as_of"]) == {last + DAY}
    bought_last_day = set(data.interactions.loc[data.interactions["occurred_at"] == last, "account_id"]) & set(features.index)
    assert bought_last_day  # customers who bought on the last day are scored …
    assert (features.loc[sorted(bought_last_day), "days_since_last_event"] == 1.0).all()  # … with that purchase seen


def test_a_purchase_on_the_cutoff_day_is_in_the_outcome_window() -> None:
    """Date-only data, midnight cutoffs: the cutoff day's purchase is invisible to the features
    (t < T) and is the first day of the outcome (it keeps the account a customer)."""
    accounts = pd.DataFrame({"account_id": ["buys_on_T", "buys_day_before"], "signup_at": [ORIGIN, ORIGIN]})
    T = ORIGIN + 60 * DAY
    interactions = pd.DataFrame(
        {"account_id": ["buys_on_T", "buys_on_T", "buys_day_before"], "occurred_at": [T - 40 * DAY, T, T - DAY], "event_type": "purchase"}
    )
    definition = ChurnDefinition(horizon_days=45)
    labels = label_accounts(accounts, interactions, as_of=T, definition=definition).set_index("account_id")[LABEL]
    assert labels.to_dict() == {"buys_on_T": 0, "buys_day_before": 1}
    spec = FeatureSpec.from_data(accounts, interactions)
    features = build_features(accounts, interactions, as_of=T, spec=spec, definition=definition).set_index("account_id")
    assert features.loc["buys_on_T", "days_since_last_event"] == 40.0  # T's purchase is not a feature at T


def test_the_spec_never_looks_past_the_latest_training_cutoff(small_business) -> None:  # type: ignore[no-untyped-def]
    """Event types, channels and categories first seen after the last cutoff change nothing."""
    accounts, interactions = small_business.accounts, small_business.interactions
    cutoffs = [pd.Timestamp("2024-02-01", tz="UTC"), pd.Timestamp("2024-03-01", tz="UTC")]
    before = build_training_table(accounts, interactions, cutoffs=cutoffs)
    later = max(cutoffs) + 3 * DAY
    newcomer = accounts.iloc[:1].assign(account_id="late_joiner", signup_at=later, region="mars")
    future = interactions.sample(400, random_state=0).assign(occurred_at=later + HALF, channel="carrier_pigeon")
    future["event_type"] = [f"future_event_{k % 40}" for k in range(len(future))]  # 40 types, each more frequent than most
    future = pd.concat([future] * 30, ignore_index=True)
    after = build_training_table(pd.concat([accounts, newcomer], ignore_index=True), pd.concat([interactions, future], ignore_index=True), cutoffs=cutoffs)
    pd.testing.assert_frame_equal(before, after)


# --------------------------------------------------------------------------- one lapse rule


@st.composite
def histories(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame, ChurnDefinition]:
    """A few accounts with events on a half-day grid over ~40 days: gaps shorter, equal to and
    longer than the horizon, returns after a lapse, events exactly at grid cutoffs."""
    n = draw(st.integers(1, 6))
    horizon = draw(st.integers(2, 8))
    kind = draw(st.sampled_from(["inactivity", "subscription"]))
    only_purchases = draw(st.booleans())
    signups = [ORIGIN + draw(st.integers(0, 20)) * HALF for _ in range(n)]
    rows = []
    for i in range(n):
        for step in draw(st.lists(st.integers(0, 80), max_size=10)):
            rows.append((str(i), ORIGIN + step * HALF, draw(st.sampled_from(["purchase", "login"]))))
    interactions = pd.DataFrame(rows, columns=["account_id", "occurred_at", "event_type"]).astype({"account_id": "str"})
    interactions["occurred_at"] = pd.to_datetime(interactions["occurred_at"], utc=True)
    accounts = pd.DataFrame({"account_id": [str(i) for i in range(n)], "signup_at": pd.to_datetime(signups, utc=True)})
    if kind == "subscription":
        churned = [s + draw(st.integers(1, 60)) * HALF if draw(st.booleans()) else pd.NaT for s in signups]
        accounts["churned_at"] = pd.to_datetime(pd.Series(churned, dtype="object"), utc=True)
        accounts.loc[0, "churned_at"] = accounts.loc[0, "signup_at"] + 200 * DAY  # at least one recorded: subscription data
    types = ("purchase",) if only_purchases else ()
    return accounts, interactions, ChurnDefinition(horizon_days=horizon, kind=kind, activity_event_types=types)  # type: ignore[arg-type]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # each example evaluates ~90 moments
@given(histories())
def test_customer_label_lapsed_list_and_retention_never_disagree(history: tuple[pd.DataFrame, pd.DataFrame, ChurnDefinition]) -> None:
    accounts, interactions, definition = history
    grid = [ORIGIN + k * HALF for k in range(0, 90)]
    data_end = grid[-1]
    customer = {t: is_customer(accounts, interactions, t, definition) for t in grid}
    ids = accounts["account_id"].to_numpy()
    h = definition.horizon
    for t in grid:
        if t + h > data_end:
            break
        labels = label_accounts(accounts, interactions, as_of=t, definition=definition).set_index("account_id")[LABEL]
        assert set(labels.index) == set(ids[customer[t]])  # the labelled are exactly the customers
        # churned ⇔ the account stops being a customer at some moment of the window (on this
        # grid, the moment half a day after a lapse is always a grid point inside it)
        window = [u for u in grid if t < u <= t + h]
        stops = {a for j, a in enumerate(ids) if customer[t][j] and any(not customer[u][j] for u in window)}
        assert {a for a, y in labels.items() if y == 1} == stops, t
        gone = lapsed(accounts, interactions, t, definition)
        if definition.kind == "inactivity":
            signed_up = (accounts["signup_at"] < t).to_numpy()
            assert set(gone["account_id"]) == set(ids[signed_up & ~customer[t]])
            # the lapse date is the last moment it was a customer: a customer then, not half a day later
            for a, on in zip(gone["account_id"], gone["lapsed_on"]):
                j = int(np.flatnonzero(ids == a)[0])
                assert is_customer(accounts.iloc[[j]], interactions, on, definition)[0]
                assert not is_customer(accounts.iloc[[j]], interactions, on + HALF, definition)[0]
        else:
            assert gone.empty
    # retention: S and E are the customers at the bounds, N the moments an account becomes one
    spells = customer_spells(accounts, interactions, definition, data_end)
    table = retention_table(spells, freq="5D", start=ORIGIN, end=data_end)
    for lo, hi, s, n, e in table[["period_start", "period_end", "S", "N", "E"]].itertuples(index=False):
        assert s == customer[lo].sum() and e == customer[hi].sum(), lo
        starts = sum(int((customer[u] & ~customer[u - HALF]).sum()) for u in grid if lo < u <= hi)
        assert n == starts, lo
