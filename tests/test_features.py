"""Point-in-time features: hand-computed values, no leakage, partition invariance, sparse data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from churn.cli.commands import app
from churn.config import FeatureConfig
from churn.data.contract import validate
from churn.features.build import build_features, catalogue, feature_columns
from churn.features.spec import FeatureSpec
from churn.jobs.tables import write_frame
from tests.conftest import write_csv_folder

AS_OF = pd.Timestamp("2024-04-01", tz="UTC")


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture()
def tiny():  # type: ignore[no-untyped-def]
    accounts = pd.DataFrame(
        {
            "account_id": ["a1", "a2", "a3", "a4"],
            "signup_at": [ts("2024-01-01"), ts("2024-01-01"), ts("2024-05-01"), ts("2024-01-01")],
            "churned_at": [pd.NaT, pd.NaT, pd.NaT, ts("2024-02-01")],
            "plan": ["basic", "premium", "basic", "basic"],
            "mrr": [10.0, 50.0, 10.0, 10.0],
        }
    )
    rows = [
        # a1: one case that went chatbot → chat → phone, two long waits, one transfer, resolved at the end
        ("a1", "2024-03-20", "support_contact", "chatbot", "C1", 5.0, 60.0, False, False, None, None, None, None),
        ("a1", "2024-03-21", "support_contact", "chat", "C1", 700.0, 300.0, False, True, None, None, None, None),
        ("a1", "2024-03-22", "support_contact", "phone", "C1", 900.0, 600.0, True, False, None, None, None, None),
        # a1: an email case 60 days back, answered after 25 hours, never resolved
        ("a1", "2024-02-01", "support_contact", "email", "C2", 90_000.0, 200.0, False, False, None, None, None, None),
        # a1: surveys
        ("a1", "2024-03-23", "survey", None, "C1", None, None, None, None, 3.0, 2.0, None, None),
        ("a1", "2024-03-25", "survey", None, None, None, None, None, None, None, None, 5.0, None),
        ("a1", "2024-01-01T12:00:00", "survey", None, None, None, None, None, None, None, None, 9.0, None),
        # a1: invoices with a price increase in March
        ("a1", "2024-01-15", "invoice", None, None, None, None, None, None, None, None, None, 10.0),
        ("a1", "2024-02-15", "invoice", None, None, None, None, None, None, None, None, None, 10.0),
        ("a1", "2024-03-15", "invoice", None, None, None, None, None, None, None, None, None, 12.0),
        # exactly at the cutoff: not before it, so not seen
        ("a1", "2024-04-01", "login", None, None, None, None, None, None, None, None, None, None),
        ("a1", "2024-03-31", "login", None, None, None, None, None, None, None, None, None, None),
        ("a4", "2024-01-20", "login", None, None, None, None, None, None, None, None, None, None),
    ]
    cols = ["account_id", "occurred_at", "event_type", "channel", "case_id", "wait_seconds", "handle_seconds", "resolved", "transferred", "ces", "csat", "nps", "amount"]
    interactions = pd.DataFrame(rows, columns=cols)
    data = validate(accounts, interactions)
    assert all(r.rejected_total == 0 for r in data.reports)
    return data.accounts, data.interactions


def test_hand_computed_history(tiny) -> None:  # type: ignore[no-untyped-def]
    accounts, interactions = tiny
    f = build_features(accounts, interactions, as_of=AS_OF).set_index("account_id")
    # a3 signed up after the cutoff, a4 churned before it
    assert list(f.index) == ["a1", "a2"]
    a1, a2 = f.loc["a1"], f.loc["a2"]
    assert a1["tenure_days"] == 91.0
    assert a1["n_login_30d"] == 1  # the login at exactly as_of is not seen
    assert a1["days_since_last_login"] == 1.0
    assert a1["n_support_contact_30d"] == 3 and a1["n_support_contact_90d"] == 4
    assert a1["cases_30d"] == 1 and a1["cases_90d"] == 2
    assert a1["channel_switches_30d"] == 2  # chatbot → chat → phone
    assert a1["repeat_contacts_30d"] == 2
    assert a1["long_waits_30d"] == 2  # 700 s and 900 s on live channels
    assert a1["long_waits_90d"] == 3  # + the 25-hour email answer
    assert a1["transfers_30d"] == 1
    assert a1["unresolved_cases_30d"] == 0 and a1["unresolved_cases_90d"] == 1
    assert a1["unresolved_share_90d"] == 0.5
    assert a1["wait_mean_90d"] == pytest.approx((5 + 700 + 900) / 3)  # email is not a queue wait
    assert a1["wait_max_90d"] == 900.0
    assert a1["distinct_channels_90d"] == 4
    assert a1["assisted_share_90d"] == 0.75  # chat, phone, email of 4 (chatbot is not a person)
    assert a1["n_channel_phone_30d"] == 1
    assert a1["ces_latest"] == 3.0 and a1["csat_latest"] == 2.0
    assert a1["nps_latest"] == 5.0 and a1["nps_detractor"] == 1.0
    assert a1["nps_mean_365d"] == 7.0 and a1["nps_trend"] == -4.0
    assert a1["amount_90d"] == 32.0
    assert a1["price_change_pct_365d"] == pytest.approx(0.2)
    assert a1["price_increase_90d"] == 1.0
    assert a1["plan"] == "basic" and a1["mrr"] == 10.0
    # rates are per 30 days of observed customer time: the history starts 2024-01-01 12:00, so 90 of 90 days
    assert a1["login_per_month_90d"] == pytest.approx(1 / 90 * 30)
    assert a1["support_contact_per_month_90d"] == pytest.approx(4 / 90 * 30)
    # 10 events in the last 90 days: 4 support contacts, 2 surveys, 3 invoices, 1 login
    assert a1["share_support_contact_90d"] == pytest.approx(0.4) and a1["share_login_90d"] == pytest.approx(0.1)
    # purchase rhythm over the events with an amount: invoices on Jan 15, Feb 15, Mar 15
    assert a1["transactions_365d"] == 3 and a1["transaction_gap_days"] == pytest.approx(30.0)
    assert a1["transaction_overdue"] == pytest.approx(17 / 30) and a1["spend_per_transaction_365d"] == pytest.approx(32 / 3)
    # a2 has no history: counts are zero, recency and survey values are unknown
    assert a2["n_login_365d"] == 0 and a2["cases_90d"] == 0
    assert np.isnan(a2["days_since_last_event"]) and np.isnan(a2["nps_latest"])


def test_columns_match_catalogue_and_are_typed(tiny) -> None:  # type: ignore[no-untyped-def]
    accounts, interactions = tiny
    spec = FeatureSpec.from_data(accounts, interactions)
    f = build_features(accounts, interactions, as_of=AS_OF, spec=spec)
    assert feature_columns(f) == [info.name for info in catalogue(spec)]
    assert str(f["plan"].dtype) == "category"
    assert all(str(f[c].dtype) == "float64" for c in feature_columns(f) if c != "plan")
    assert all("{v}" in info.text or info.unit.kind == "flag" for info in catalogue(spec))


def test_no_leakage_from_events_or_churn_after_cutoff(small_business) -> None:  # type: ignore[no-untyped-def]
    accounts, interactions = small_business.accounts, small_business.interactions
    as_of = ts("2024-01-01")
    spec = FeatureSpec.from_data(accounts, interactions)
    before = build_features(accounts, interactions[interactions.occurred_at < as_of], as_of=as_of, spec=spec)

    rng = np.random.default_rng(0)
    future = interactions.sample(5_000, random_state=1).copy()
    future["occurred_at"] = as_of + pd.to_timedelta(rng.integers(0, 200 * 86_400, len(future)), unit="s")
    future["nps"] = 0.0
    future["wait_seconds"] = 99_999.0
    changed = accounts.copy()
    later = changed["churned_at"].isna() | (changed["churned_at"] > as_of)
    changed.loc[later, "churned_at"] = as_of + pd.Timedelta(days=3)
    after = build_features(changed, pd.concat([interactions, future], ignore_index=True), as_of=as_of, spec=spec)
    pd.testing.assert_frame_equal(before, after)


def test_partition_invariance(small_business) -> None:  # type: ignore[no-untyped-def]
    accounts, interactions = small_business.accounts, small_business.interactions
    as_of = ts("2024-03-01")
    spec = FeatureSpec.from_data(accounts, interactions)
    whole = build_features(accounts, interactions, as_of=as_of, spec=spec)
    bucket = np.random.default_rng(5).integers(0, 3, len(accounts))
    parts = []
    for b in range(3):
        ids = accounts["account_id"][bucket == b]
        parts.append(
            build_features(
                accounts[accounts.account_id.isin(ids)],
                interactions[interactions.account_id.astype(str).isin(ids)],
                as_of=as_of,
                spec=spec,
            )
        )
    joined = pd.concat(parts).sort_values("account_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(whole, joined)


def test_attribute_only_snapshot_has_features(tiny) -> None:  # type: ignore[no-untyped-def]
    accounts, _ = tiny
    empty = validate(accounts, None).interactions
    f = build_features(accounts, empty, as_of=AS_OF)
    assert list(f.columns) == ["account_id", "as_of", "tenure_days", "mrr", "plan"]
    assert len(f) == 2


def test_purchase_only_transactional_data() -> None:
    from churn.config import ChurnDefinition

    accounts = pd.DataFrame({"account_id": ["x", "y"], "signup_at": [ts("2023-01-01")] * 2})
    interactions = pd.DataFrame(
        {
            "account_id": ["x", "x", "y"],
            "occurred_at": [ts("2023-11-01"), ts("2024-03-15"), ts("2023-06-01")],
            "event_type": ["purchase"] * 3,
            "amount": [20.0, 35.0, 10.0],
        }
    )
    year = ChurnDefinition(horizon_days=365)
    f = build_features(accounts, interactions, as_of=AS_OF, definition=year).set_index("account_id")
    assert f.loc["x", "n_purchase_90d"] == 1 and f.loc["x", "amount_365d"] == 55.0
    assert f.loc["y", "days_since_last_purchase"] == (AS_OF - ts("2023-06-01")).days
    assert not any(c.startswith(("cases_", "nps", "wait_")) for c in f.columns)
    # with a 30-day horizon, y (no purchase for ten months) has lapsed: not a customer, no features
    month = build_features(accounts, interactions, as_of=AS_OF, definition=ChurnDefinition(horizon_days=30))
    assert month["account_id"].tolist() == ["x"]


def test_long_wait_threshold_is_configurable(tiny) -> None:  # type: ignore[no-untyped-def]
    accounts, interactions = tiny
    f = build_features(accounts, interactions, as_of=AS_OF, config=FeatureConfig(long_wait_seconds=800))
    assert f.set_index("account_id").loc["a1", "long_waits_30d"] == 1


def test_naive_as_of_is_refused(tiny) -> None:  # type: ignore[no-untyped-def]
    accounts, interactions = tiny
    with pytest.raises(ValueError, match="timezone-aware"):
        build_features(accounts, interactions, as_of=pd.Timestamp("2024-04-01"))


def test_cli_features_and_catalogue(small_data_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    described = runner.invoke(app, ["features", "--describe"])
    assert described.exit_code == 0 and "long_waits_30d" in described.output
    out = tmp_path / "f.parquet"
    result = runner.invoke(app, ["features", "--data", str(small_data_dir), "--as-of", "2024-02-01", "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    assert table["account_id"].is_unique and (table["as_of"] == ts("2024-02-01")).all()


def test_shared_tallies_equal_one_count_per_feature(small_business) -> None:  # type: ignore[no-untyped-def]
    """Counts per type/channel/window come from one shared pass; they must equal counting
    each feature on its own — also for a window outside the tally (45 days) and with event
    types left out of the spec (only the top 3 kept)."""
    from churn.features.build import active_accounts
    from churn.features.events import Events

    accounts, interactions = small_business.accounts, small_business.interactions
    as_of = ts("2024-03-01")
    config = FeatureConfig(windows_days=(7, 30, 90, 365), max_event_types=3)
    spec = FeatureSpec.from_data(accounts, interactions, config)
    e = Events(interactions, active_accounts(accounts, interactions, as_of), as_of, spec, config)
    assert len(spec.event_types) == 3 and (e.etype < 0).any() and len(spec.channels) > 1
    for w in (7, 30, 45, 90, 120, 365):
        np.testing.assert_array_equal(e.count_any(w), e.count(e.within(w)))
        for j in range(len(spec.event_types)):
            np.testing.assert_array_equal(e.count_type(j, w), e.count((e.etype == j) & e.within(w)))
        for j in range(len(spec.channels)):
            np.testing.assert_array_equal(e.count_channel(j, w), e.count((e.channel == j) & e.within(w)))
    for j in range(len(spec.event_types)):
        np.testing.assert_array_equal(e.count_type(j, 120, since_days=30), e.count((e.etype == j) & ~e.within(30) & e.within(120)))
        np.testing.assert_array_equal(e.days_since_type(j), e.reduce(e.age_days, e.etype == j, "min"))
    np.testing.assert_array_equal(e.days_since_any(), e.reduce(e.age_days, np.ones(len(e), bool), "min"))


def test_rejected_rows_are_skipped_by_the_mask_exactly_as_if_dropped(small_business, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The data contract hands over every row read plus a mask of the accepted ones (dropping
    a few rejects from 10M rows would copy all of them). Spec, customers and features built
    with the mask must equal those built from the accepted rows alone — also through
    ``churn features`` — and the rejected rows must be exactly the planted ones."""
    from churn.config import ChurnDefinition
    from churn.data.contract import load
    from churn.data.population import is_customer

    accounts, interactions = small_business.accounts, small_business.interactions
    as_of = ts("2024-02-01")
    before = interactions[interactions["occurred_at"] < as_of]
    last = before.groupby(before["account_id"].astype("str"))["occurred_at"].max()
    quiet = last[last < as_of - pd.Timedelta(days=90)].index  # lapsed under a 30-day inactivity rule
    lapsed_id = sorted(set(quiet) & set(accounts.loc[accounts["signup_at"] < as_of - pd.Timedelta(days=90), "account_id"].astype("str")))[0]
    # a customer under both definitions, with events in the last 30 days: rows planted for it
    # change its 30-day features if the mask is ignored anywhere
    recent = before[before["occurred_at"] >= as_of - pd.Timedelta(days=20)]
    still_there = accounts.loc[~(accounts["churned_at"] <= as_of).fillna(False) & (accounts["signup_at"] < as_of), "account_id"].astype("str")
    active_id = sorted(set(recent["account_id"].astype("str")) & set(still_there))[0]
    own = recent[recent["account_id"].astype("str") == active_id]
    planted = pd.concat(
        [
            own.iloc[[0]],  # an exact duplicate of a recent row of an active customer
            interactions.iloc[[6]].assign(account_id="nobody", event_type="teleport"),  # unknown account, unseen event type
            own.iloc[[0]].assign(occurred_at=as_of - pd.Timedelta(days=2), csat=99.0),  # csat out of range, active customer
            interactions.iloc[[7]].assign(account_id=lapsed_id, occurred_at=as_of - pd.Timedelta(days=1), csat=99.0),  # csat out of range, lapsed
        ]
    )
    since = as_of - pd.Timedelta(days=FeatureConfig().lookback_days)  # `churn features` reads [since, as_of)
    outside = pd.concat(  # valid rows of event types seen only just outside that range
        [
            own.iloc[[0]].assign(occurred_at=since - pd.Timedelta(seconds=1), event_type="fax"),
            own.iloc[[0]].assign(occurred_at=as_of, event_type="courier"),
        ]
    )
    raw = pd.concat([interactions, planted], ignore_index=True).sort_values("occurred_at", kind="stable").reset_index(drop=True)
    folder = tmp_path / "raw"
    folder.mkdir()
    accounts.to_parquet(folder / "accounts.parquet")
    raw.to_parquet(folder / "interactions.parquet")
    data = load(folder)
    mask = data.interactions_accepted
    assert mask is not None and int((~mask).sum()) == 4 and sum(r.rejected_total for r in data.reports) == 4
    read, config = data.interactions_read, FeatureConfig()
    accepted = data.interactions  # the copy, made now
    assert len(accepted) == len(read) - 4 and data.interactions_accepted is None

    spec = FeatureSpec.from_data(data.accounts, read, config, rows=mask)
    assert spec == FeatureSpec.from_data(data.accounts, accepted, config) and "teleport" not in spec.event_types
    for definition in (ChurnDefinition(), ChurnDefinition(kind="inactivity", horizon_days=30)):
        definition = definition.resolved(data.accounts)
        customers = is_customer(data.accounts, read, as_of, definition, rows=mask)
        np.testing.assert_array_equal(customers, is_customer(data.accounts, accepted, as_of, definition))
        assert not customers[(data.accounts["account_id"] == lapsed_id).to_numpy()].any() or definition.kind == "subscription"
        masked = build_features(data.accounts, read, as_of=as_of, spec=spec, config=config, definition=definition, rows=mask)
        pd.testing.assert_frame_equal(masked, build_features(data.accounts, accepted, as_of=as_of, spec=spec, config=config, definition=definition))
        assert active_id in set(masked["account_id"])
        unmasked = build_features(data.accounts, read, as_of=as_of, spec=spec, config=config, definition=definition)
        assert not unmasked.equals(masked)  # the planted rows do matter: the comparison above can fail
        learned = build_features(data.accounts, read, as_of=as_of, config=config, definition=definition, rows=mask)  # spec learned inside
        pd.testing.assert_frame_equal(learned, masked)

    # through the CLI, from Parquet (time range pushed into the reader) and from CSV (read
    # whole, the time range folded into the mask): the same features as the clean export
    def cli_features(fmt: str, name: str, rows: pd.DataFrame) -> tuple[pd.DataFrame, str]:
        source = tmp_path / f"{fmt}-{name}"
        source.mkdir()
        if fmt == "parquet":
            accounts.to_parquet(source / "accounts.parquet")
            rows.to_parquet(source / "interactions.parquet")
        else:
            write_csv_folder(source, accounts, rows)
        out = tmp_path / f"{fmt}-{name}-features.parquet"
        result = CliRunner().invoke(app, ["features", "--data", str(source), "--as-of", "2024-02-01", "--out", str(out)])
        assert result.exit_code == 0, result.output
        return pd.read_parquet(out), result.output

    with_outside = pd.concat([raw, outside], ignore_index=True).sort_values("occurred_at", kind="stable")
    at_since = pd.concat([with_outside, own.iloc[[0]].assign(occurred_at=since, event_type="telex")], ignore_index=True)  # inside, just
    for fmt in ("parquet", "csv"):
        planted_table, output = cli_features(fmt, "planted", with_outside)
        assert "rows rejected" in output, output
        clean_table, output = cli_features(fmt, "clean", interactions)
        assert "rows rejected" not in output, output
        pd.testing.assert_frame_equal(planted_table, clean_table)
    edge_tables = [cli_features(fmt, "at-since", at_since)[0] for fmt in ("parquet", "csv")]
    assert any("telex" in column for column in edge_tables[0].columns)
    pd.testing.assert_frame_equal(*edge_tables)


def test_churn_features_does_not_import_mlflow_or_the_report(small_data_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`churn features` is the command timed against DuckDB: importing MLflow, statsmodels or
    matplotlib (through churn.jobs.weekly) would cost seconds on every run."""
    import subprocess
    import sys

    out = tmp_path / "f.parquet"
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from churn.cli.commands import app\n"
        f"result = CliRunner().invoke(app, ['features', '--data', {str(small_data_dir)!r}, '--as-of', '2024-02-01', '--out', {str(out)!r}])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in ('mlflow', 'matplotlib', 'statsmodels', 'churn.jobs.weekly') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]" and out.exists()


def test_a_feature_table_keeps_its_float_columns_plain_and_reads_back_exactly(tmp_path: Path) -> None:
    """Parquet tries no dictionary of a feature table's float columns (a hundred columns of
    mostly distinct values: a quarter of the write); its text and category columns keep one."""
    table = pd.DataFrame(
        {
            "account_id": pd.Series(["a", "b", "a", "c"], dtype="str"),
            "as_of": pd.Series(pd.Timestamp("2024-03-01", tz="UTC"), index=range(4)).astype("datetime64[ns, UTC]"),
            "plan": pd.Categorical(["basic", "pro", "basic", None]),
            "n_login_30d": [1.0, 2.0, 1.0, np.nan],
        }
    )
    path = write_frame(table, tmp_path / "features.parquet")
    group = pq.ParquetFile(path).metadata.row_group(0)
    encodings = {group.column(i).path_in_schema: set(group.column(i).encodings) for i in range(group.num_columns)}
    assert "RLE_DICTIONARY" not in encodings["n_login_30d"]
    assert "RLE_DICTIONARY" in encodings["account_id"] and "RLE_DICTIONARY" in encodings["plan"]
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, table.assign(as_of=table["as_of"].astype("datetime64[us, UTC]")), check_exact=True)


def test_plain_floats_with_columns_named_by_numbers(tmp_path: Path) -> None:
    from churn.data.io import write_table

    frame = pd.DataFrame({0: ["a", "b"], 1: [0.5, 1.5]})
    path = write_table(frame, tmp_path / "numbered", float_dictionary=False)
    assert pd.read_parquet(path).to_numpy().tolist() == [["a", 0.5], ["b", 1.5]]
