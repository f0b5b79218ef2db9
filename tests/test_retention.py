"""Actual retention rates (E − N) / S."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from churn.cli.commands import app
from churn.outreach.retention import retention_rate, retention_table


def test_worked_example_from_design() -> None:
    assert retention_rate(1000, 900, 200) == 70.0
    assert 100 - retention_rate(1000, 900, 200) == 30.0


def test_worked_example_through_the_table() -> None:
    # 1000 customers at the start; 300 of them churn in January; 200 join, all stay.
    start = pd.Timestamp("2024-01-01", tz="UTC")
    n_old, n_new = 1000, 200
    signup = [start - pd.Timedelta(days=30)] * n_old + [start + pd.Timedelta(days=10)] * n_new
    churned = [start + pd.Timedelta(days=5)] * 300 + [pd.NaT] * (n_old - 300 + n_new)
    accounts = pd.DataFrame(
        {"account_id": [f"a{i}" for i in range(n_old + n_new)], "signup_at": signup, "churned_at": pd.to_datetime(churned, utc=True)}
    )
    table = retention_table(accounts, start=start, end=pd.Timestamp("2024-02-01", tz="UTC"))
    row = table.iloc[0]
    assert (row.S, row.N, row.E, row.churned) == (1000, 200, 900, 300)
    assert row.retention_rate == 70.0 and row.churn_rate == 30.0


def test_by_segment_and_boundaries() -> None:
    t = lambda s: pd.Timestamp(s, tz="UTC")  # noqa: E731
    accounts = pd.DataFrame(
        {
            "account_id": ["a", "b", "c", "d"],
            "segment": ["x", "x", "y", "y"],
            "signup_at": [t("2023-12-01"), t("2023-12-01"), t("2023-12-01"), t("2024-01-01")],
            # b churns exactly at the period end: still a customer at the start, gone at the end?
            "churned_at": [pd.NaT, t("2024-02-01"), t("2024-01-15"), pd.NaT],
        }
    )
    table = retention_table(accounts, start=t("2024-01-01"), end=t("2024-02-01"), by=["segment"])
    x = table[table.segment == "x"].iloc[0]
    y = table[table.segment == "y"].iloc[0]
    # churned_at == period end counts as gone at the end only from the next period on
    assert (x.S, x.N, x.E) == (2, 0, 2)
    # d signs up exactly at the period start: new in this period
    assert (y.S, y.N, y.E, y.churned) == (1, 1, 1, 1)
    assert y.retention_rate == 0.0


def test_generated_monthly_retention_is_plausible(small_business) -> None:  # type: ignore[no-untyped-def]
    table = retention_table(small_business.accounts, start=pd.Timestamp("2023-01-01", tz="UTC"))
    assert len(table) == 18
    assert table["retention_rate"].between(90, 100).all()
    assert 1.5 <= table["churn_rate"].mean() <= 6.0


def test_cli_retention_writes_outputs(small_data_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "ret"
    result = CliRunner().invoke(app, ["retention", "--data", str(small_data_dir), "--by", "segment", "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(f"{out}.parquet")
    assert set(table["segment"]) == {"consumer", "smb", "enterprise"}
    assert table["period_start"].min() == pd.Timestamp("2023-01-01", tz="UTC")
    assert np.isfinite(table["retention_rate"]).all()
    bad = CliRunner().invoke(app, ["retention", "--data", str(small_data_dir), "--by", "nope", "--out", str(out)])
    assert bad.exit_code == 2 and "not in accounts" in bad.output


def test_transactional_retention_from_inactivity(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from churn.config import ChurnDefinition
    from churn.outreach.retention import customer_spells

    t = lambda s: pd.Timestamp(s, tz="UTC")  # noqa: E731
    accounts = pd.DataFrame({"account_id": ["loyal", "lapses", "never_buys"], "signup_at": [t("2024-01-01")] * 3, "plan": ["a", "b", "c"]})
    interactions = pd.DataFrame(
        {
            "account_id": ["loyal", "loyal", "loyal", "lapses"],
            "occurred_at": [t("2024-01-20"), t("2024-02-15"), t("2024-03-10"), t("2024-01-10")],
            "event_type": ["purchase"] * 4,
        }
    )
    spells = customer_spells(accounts, interactions, ChurnDefinition(horizon_days=30), t("2024-04-01")).set_index("account_id")
    assert spells["churned_at"].to_dict() == {"loyal": pd.NaT, "lapses": t("2024-02-09"), "never_buys": t("2024-01-31")}
    assert spells["plan"].to_dict() == {"loyal": "a", "lapses": "b", "never_buys": "c"}  # attributes kept for --by
    folder = tmp_path / "tx"
    folder.mkdir()
    accounts.to_csv(folder / "accounts.csv", index=False)
    interactions.to_csv(folder / "interactions.csv", index=False)
    result = CliRunner().invoke(app, ["retention", "--data", str(folder), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "no activity for 30 days" in result.output
    table = pd.read_csv(tmp_path / "r.csv")
    # the only complete month observed is February: loyal and lapses at the start, lapses lost
    assert table[["period_start", "S", "N", "E", "churned"]].values.tolist() == [["2024-02-01T00:00:00+0000", 2, 0, 1, 1]]


def test_scoring_reports_retention_of_transactional_data_from_inactivity() -> None:
    """The risk list's retention table (churn score) dates a lapse as `churn retention` does —
    last qualifying activity + horizon — instead of reading 100 % from an absent churned_at —
    and leaves out months the events given cannot judge."""
    from churn.config import ChurnDefinition
    from churn.outreach.history import recent_retention

    utc = lambda text: pd.Timestamp(text, tz="UTC")  # noqa: E731
    accounts = pd.DataFrame(
        {"account_id": ["stays", "goes", "joins"], "signup_at": [utc("2023-12-01"), utc("2023-12-01"), utc("2024-04-15")]}
    )
    weekly = pd.date_range("2024-01-01", "2024-05-28", freq="7D", tz="UTC")
    interactions = pd.DataFrame(
        {
            "account_id": ["stays"] * len(weekly) + ["goes", "goes", "joins"],
            "occurred_at": [*weekly, utc("2024-01-05"), utc("2024-03-10"), utc("2024-05-20")],
            "event_type": "purchase",
        }
    )
    table = recent_retention(accounts, utc("2024-06-01"), interactions=interactions, definition=ChurnDefinition(horizon_days=30))
    # events start 2024-01-01: January cannot be judged (a lapse needs 30 days of history)
    assert table["period_start"].dt.strftime("%Y-%m").tolist() == ["2024-02", "2024-03", "2024-04", "2024-05"]
    # the one lapse rule: "goes" lapsed on 4 February (5 January + 30 days), came back on 10
    # March (a new customer in March) and lapsed again on 9 April; "joins" is new in April, lapses
    # on 15 May (signup + 30 days) and is back on 20 May: lost and new again in May
    assert table[["S", "N", "E"]].to_numpy().tolist() == [[2, 0, 1], [1, 1, 2], [2, 1, 2], [2, 1, 2]]
    assert table["retention_rate"].tolist() == [50.0, 100.0, 50.0, 50.0]
    assert recent_retention(accounts, utc("2024-06-01"), interactions=interactions.iloc[:0], definition=ChurnDefinition()).empty


def test_a_month_without_customers_shows_no_rate_in_the_report() -> None:
    from churn.outreach.report import retention_rows

    accounts = pd.DataFrame({"account_id": ["a", "b"], "signup_at": pd.to_datetime(["2024-03-10", "2024-03-20"], utc=True), "churned_at": pd.NaT})
    table = retention_table(accounts, start=pd.Timestamp("2024-02-01", tz="UTC"), end=pd.Timestamp("2024-05-01", tz="UTC"))
    rows = retention_rows(table)
    assert rows is not None and [r["period"] for r in rows] == ["2024-02", "2024-03", "2024-04"]
    assert [r["retention_rate"] for r in rows] == ["—", "—", 100.0]  # no one at the start of February or March
    assert retention_rows(table.iloc[:0]) is None
