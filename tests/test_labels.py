"""Churn labels at cutoffs, cutoff parsing, the training table, and the planted drivers."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from churn.cli.commands import app
from churn.config import ChurnDefinition
from churn.data.dataend import observed_until
from churn.data.population import is_customer
from churn.features.labels import (
    LABEL,
    ImmatureCutoffError,
    build_training_table,
    check_mature,
    churn_by_decile,
    default_cutoffs,
    label_accounts,
    parse_cutoffs,
)

T = pd.Timestamp("2024-03-01", tz="UTC")
H = pd.Timedelta(days=30)


def test_subscription_label_boundaries() -> None:
    accounts = pd.DataFrame(
        {
            "account_id": ["at_T", "at_T_plus_h", "after_h", "active", "new_at_T", "new_later", "gone"],
            "signup_at": [T - H] * 4 + [T, T + H, T - 2 * H],
            "churned_at": [T, T + H, T + H + pd.Timedelta(seconds=1), pd.NaT, pd.NaT, pd.NaT, T - H],
        }
    )
    labels = label_accounts(accounts, pd.DataFrame(columns=["account_id", "occurred_at", "event_type"]), as_of=T).set_index("account_id")[LABEL]
    # the outcome window is [T, T + h): churned exactly at T is its first day (still a customer
    # at T, labelled churned); at T + h is the next window's; signed up at/after T or churned
    # before T: not labelled
    assert labels.to_dict() == {"at_T": 1, "at_T_plus_h": 0, "after_h": 0, "active": 0}


def test_inactivity_label_for_transactional_data() -> None:
    names = ["buys_again", "buys_at_T", "stops", "lapsed", "new", "lapses_and_returns", "buys_at_T_plus_h"]
    accounts = pd.DataFrame({"account_id": names, "signup_at": [T - 10 * H] * 4 + [T - pd.Timedelta(days=3)] + [T - 10 * H] * 2})
    day = pd.Timedelta(days=1)
    interactions = pd.DataFrame(
        {
            "account_id": ["buys_again", "buys_again", "buys_at_T", "buys_at_T", "stops", "lapsed", "lapses_and_returns", "lapses_and_returns"]
            + ["buys_at_T_plus_h"] * 2,
            "occurred_at": [T - 5 * day, T + 20 * day, T - 29 * day, T, T - day, T - 2 * H, T - 25 * day, T + 20 * day, T - day, T + H],
            "event_type": ["purchase"] * 10,
        }
    )
    labels = label_accounts(accounts, interactions, as_of=T).set_index("account_id")[LABEL]
    # lapsed had no purchase within the horizon before T: already churned, not labelled. A
    # purchase at exactly T is in the outcome window; one at T + h is not. lapses_and_returns
    # lapsed on T + 5 days and came back on T + 20: it churned (its return is a new spell).
    assert labels.to_dict() == {"buys_again": 0, "buys_at_T": 0, "stops": 1, "new": 1, "lapses_and_returns": 1, "buys_at_T_plus_h": 1}
    only_logins = ChurnDefinition(activity_event_types=("login",))
    assert set(label_accounts(accounts, interactions, as_of=T, definition=only_logins)["account_id"]) == {"new"}


def test_activity_types_given_twice_or_as_text_mean_the_same_definition() -> None:
    accounts = pd.DataFrame({"account_id": ["logs_in", "only_pays", "pays_later"], "signup_at": [T - 10 * H] * 3})
    interactions = pd.DataFrame(
        {
            "account_id": ["logs_in", "logs_in", "only_pays", "pays_later", "pays_later"],
            "occurred_at": [T - pd.Timedelta(days=2), T + pd.Timedelta(days=3), T - pd.Timedelta(days=2), T - pd.Timedelta(days=1), T + pd.Timedelta(days=4)],
            "event_type": ["login", "login", "invoice", "login", "invoice"],
        }
    )
    once = ChurnDefinition(activity_event_types=("login",))
    for same in (ChurnDefinition(activity_event_types=("login", "login")), ChurnDefinition(activity_event_types="login")):  # type: ignore[arg-type]
        assert same == once and same.as_dict() == once.as_dict()
        for events in (interactions, interactions.astype({"event_type": "category"})):
            assert label_accounts(accounts, events, as_of=T, definition=same).equals(label_accounts(accounts, interactions, as_of=T, definition=once))
            assert is_customer(accounts, events, T, same).tolist() == [True, False, True]
    assert ChurnDefinition(activity_event_types=("login", "invoice")) == ChurnDefinition(activity_event_types=("invoice", "login", "invoice"))
    # only logins count: only_pays lapsed before T; pays_later's invoice after T is not activity
    labels = label_accounts(accounts, interactions, as_of=T, definition=once).set_index("account_id")[LABEL]
    assert labels.to_dict() == {"logs_in": 0, "pays_later": 1}


def test_parse_cutoffs_forms() -> None:
    assert parse_cutoffs("2024-01-01") == [pd.Timestamp("2024-01-01", tz="UTC")]
    assert parse_cutoffs("2024-03-01,2024-01-01") == [pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-03-01", tz="UTC")]
    months = parse_cutoffs("2024-01-31:2024-12-31:1M")
    assert len(months) == 12 and months[1] == pd.Timestamp("2024-02-29", tz="UTC")
    assert len(parse_cutoffs("2024-01-01:2024-01-29:1W")) == 5
    assert len(parse_cutoffs("2024-01-01:2024-12-31:1Q")) == 4
    for bad in ("2024-13-01", "2024-01-01:2023-01-01:1M", "2024-01-01:2024-02-01:1X", ""):
        with pytest.raises(ValueError):
            parse_cutoffs(bad)


def test_immature_cutoffs_are_refused() -> None:
    end = pd.Timestamp("2024-07-01", tz="UTC")
    check_mature([pd.Timestamp("2024-06-01", tz="UTC")], ChurnDefinition(), end)
    with pytest.raises(ImmatureCutoffError, match="latest usable cutoff is 2024-06-01"):
        check_mature([pd.Timestamp("2024-06-02", tz="UTC")], ChurnDefinition(), end)
    defaults = default_cutoffs(end, ChurnDefinition(), count=3)
    assert [t.strftime("%Y-%m-%d") for t in defaults] == ["2024-04-01", "2024-05-01", "2024-06-01"]


def test_training_table_over_cutoffs(small_business) -> None:  # type: ignore[no-untyped-def]
    a, i = small_business.accounts, small_business.interactions
    cutoffs = parse_cutoffs("2023-10-01:2024-03-01:1M")
    table = build_training_table(a, i, cutoffs=cutoffs)
    assert sorted(table["as_of"].unique()) == cutoffs
    assert not table.duplicated(["account_id", "as_of"]).any()
    assert 0.01 < table[LABEL].mean() < 0.08
    with pytest.raises(ImmatureCutoffError):
        build_training_table(a, i, cutoffs=[observed_until(a, i)])


def test_planted_effort_drivers_raise_churn(small_business) -> None:  # type: ignore[no-untyped-def]
    """What the issue asks to see: churn rises with long waits, switches and repeats."""
    a, i = small_business.accounts, small_business.interactions
    table = build_training_table(a, i, cutoffs=parse_cutoffs("2023-07-01:2024-05-01:1M"))
    for feature in ("long_waits_90d", "channel_switches_90d", "repeat_contacts_90d"):
        by_bin = churn_by_decile(table, feature)
        print(f"\nchurn rate by {feature}\n{by_bin.to_string()}")
        lowest, highest = by_bin.iloc[0], by_bin[by_bin["rows"] >= 30].iloc[-1]
        assert highest["churn_rate"] > 2.5 * lowest["churn_rate"], feature


def test_cli_dataset(small_data_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "train.parquet"
    runner = CliRunner()
    ok = runner.invoke(app, ["dataset", "--data", str(small_data_dir), "--cutoffs", "2024-01-01:2024-04-01:1M", "--horizon", "30", "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    assert pd.read_parquet(out)["as_of"].nunique() == 4
    late = runner.invoke(app, ["dataset", "--data", str(small_data_dir), "--cutoffs", "2024-06-20", "--out", str(out)])
    assert late.exit_code == 2 and "runs past the end of the data" in late.output
