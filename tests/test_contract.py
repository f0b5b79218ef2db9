"""The data contract: good data passes; each kind of bad data is named and rejected, not lost."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churn.cli.commands import app
from churn.data import contract
from churn.data.contract import load, validate
from churn.data.read import DataContractError
from churn.data.rules import ColumnScreen
from tests.conftest import write_csv_folder


def _accounts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": ["a1", "a2", "a3"],
            "signup_at": ["2024-01-01", "2024-01-05T10:00:00+02:00", "2024-02-01 00:00:00"],
            "churned_at": [None, "2024-03-01", None],
            "plan": ["basic", "premium", "basic"],
            "mrr": ["10", "20.5", "15"],
        }
    )


def _interactions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": ["a1", "a1", "a2", "a3"],
            "occurred_at": ["2024-01-02", "2024-01-03T12:00:00Z", "2024-01-06", "2024-02-02"],
            "event_type": ["support_contact", "survey", "login", "login"],
            "channel": ["phone", None, None, None],
            "wait_seconds": ["30", None, None, None],
            "resolved": ["true", None, None, None],
            "ces": [None, "5", None, None],
            "nps": [None, "9", None, None],
        }
    )


NOW = pd.Timestamp("2026-01-01", tz="UTC")


def _check_conservation(data) -> None:  # type: ignore[no-untyped-def]
    for rep in data.reports:
        assert rep.accepted + rep.rejected_total == rep.rows_read
        assert len(data.rejects.get(rep.table, [])) == rep.rejected_total


def test_good_data_passes_and_timestamps_become_utc() -> None:
    data = validate(_accounts(), _interactions())
    assert [r.rejected_total for r in data.reports] == [0, 0]
    assert str(data.accounts["signup_at"].dtype) == "datetime64[ns, UTC]"
    # +02:00 offset converted, naive taken as UTC
    assert data.accounts["signup_at"].iloc[1] == pd.Timestamp("2024-01-05T08:00:00Z")
    assert data.accounts["signup_at"].iloc[2] == pd.Timestamp("2024-02-01T00:00:00Z")
    assert data.interactions["resolved"].iloc[0] == True  # noqa: E712
    assert data.interactions["wait_seconds"].iloc[0] == 30.0
    _check_conservation(data)


def test_generated_data_passes_with_zero_rejects(small_data_dir: Path) -> None:
    data = load(small_data_dir)
    assert all(r.rejected_total == 0 for r in data.reports)
    assert len(data.interactions) > 10_000


def test_missing_required_column_is_fatal_and_named() -> None:
    with pytest.raises(DataContractError, match=r"accounts.csv: missing required column 'signup_at'"):
        validate(_accounts().drop(columns="signup_at"), _interactions(), accounts_file="accounts.csv")


def test_empty_accounts_is_fatal() -> None:
    with pytest.raises(DataContractError, match="no rows"):
        validate(_accounts().iloc[:0], _interactions())


def test_empty_or_absent_interactions_is_snapshot_data() -> None:
    data = validate(_accounts(), _interactions().iloc[:0])
    assert len(data.accounts) == 3 and len(data.interactions) == 0
    assert any("snapshot" in n for n in data.reports[1].notes)
    data = validate(_accounts(), None)
    assert len(data.interactions) == 0


@pytest.mark.parametrize(
    ("table", "column", "value", "reason"),
    [
        ("interactions", "account_id", "nobody", "unknown account_id"),
        ("interactions", "occurred_at", "not a date", "unparseable timestamp in occurred_at (not ISO 8601; give --date-format for another layout)"),
        ("interactions", "occurred_at", "2099-01-01", "occurred_at is in the future (after 2026-01-01)"),
        ("interactions", "occurred_at", None, "missing occurred_at"),
        ("interactions", "wait_seconds", "abc", "wait_seconds is not a number"),
        ("interactions", "wait_seconds", "-5", "wait_seconds negative"),
        ("interactions", "resolved", "maybe", "resolved is not true/false"),
        ("interactions", "ces", "9", "ces out of range 1–7"),
        ("interactions", "ces", "0", "ces out of range 1–7"),
        ("interactions", "csat", "6", "csat out of range 1–5"),
        ("interactions", "nps", "42", "nps out of range 0–10"),
        ("accounts", "signup_at", "31/31/2024", "unparseable timestamp in signup_at (not ISO 8601; give --date-format for another layout)"),
        ("accounts", "mrr", "lots", "mrr is not a number"),
        ("accounts", "churned_at", "2023-01-01", "churned_at before signup_at"),
    ],
)
def test_bad_rows_are_rejected_with_reason(table: str, column: str, value: str | None, reason: str) -> None:
    accounts, interactions = _accounts(), _interactions()
    frame = accounts if table == "accounts" else interactions
    frame.loc[0, column] = value
    data = validate(accounts, interactions, now=NOW)
    report = {r.table: r for r in data.reports}[table]
    assert report.rejected == {reason: 1}
    rejects = data.rejects[table]
    assert rejects["reject_reason"].tolist() == [reason]
    assert rejects["source_row"].tolist() == [2]
    _check_conservation(data)


def test_duplicates_keep_first_and_reject_the_rest() -> None:
    accounts = pd.concat([_accounts(), _accounts().iloc[[0]]], ignore_index=True)
    interactions = pd.concat([_interactions(), _interactions().iloc[[2]]], ignore_index=True)
    data = validate(accounts, interactions)
    reports = {r.table: r for r in data.reports}
    assert reports["accounts"].rejected == {"duplicate account_id": 1}
    assert reports["interactions"].rejected == {"duplicate row": 1}
    assert data.accounts["account_id"].is_unique
    _check_conservation(data)


@pytest.mark.parametrize("in_a_thread", [False, True])
def test_a_duplicate_of_an_unknown_account_lists_both_reasons_in_order(monkeypatch: pytest.MonkeyPatch, in_a_thread: bool) -> None:
    """The duplicate search runs beside the account check on a large table (a thread): the
    same rejects, the reasons in the same order, as one after the other."""
    monkeypatch.setattr(contract, "PARALLEL_CHECK_ROWS", 0 if in_a_thread else 10**12)
    interactions = _interactions()
    interactions.loc[0, "account_id"] = "stranger"
    interactions = pd.concat([interactions, interactions.iloc[[0, 2]]], ignore_index=True)
    data = validate(_accounts(), interactions)
    rejects = data.rejects["interactions"]
    assert rejects["source_row"].tolist() == [2, len(interactions), len(interactions) + 1]
    assert rejects["reject_reason"].tolist() == ["unknown account_id", "unknown account_id; duplicate row", "duplicate row"]
    _check_conservation(data)


def test_a_row_with_two_problems_lists_both() -> None:
    interactions = _interactions()
    interactions.loc[1, ["ces", "nps"]] = ["8", "11"]
    data = validate(_accounts(), interactions)
    assert data.rejects["interactions"]["reject_reason"].tolist() == ["ces out of range 1–7; nps out of range 0–10"]


def test_all_accounts_rejected_is_fatal() -> None:
    accounts = _accounts()
    accounts["signup_at"] = "never"
    with pytest.raises(DataContractError, match="no usable accounts"):
        validate(accounts, _interactions())


def test_cli_validate_corrupted_folder_writes_rejects(tmp_path: Path) -> None:
    interactions = _interactions()
    interactions.loc[0, "account_id"] = "ghost"
    interactions.loc[1, "nps"] = "42"
    folder = write_csv_folder(tmp_path / "d", _accounts(), interactions)
    result = CliRunner().invoke(app, ["validate", "--data", str(folder)])
    assert result.exit_code == 0, result.output
    assert "unknown account_id" in result.output and "nps out of range" in result.output
    rejects = pd.read_csv(folder / "rejects" / "interactions_rejects.csv")
    assert sorted(rejects["reject_reason"]) == ["nps out of range 0–10", "unknown account_id"]


def test_cli_missing_column_message_without_traceback(tmp_path: Path) -> None:
    folder = write_csv_folder(tmp_path / "d", _accounts().drop(columns="account_id"), _interactions())
    result = CliRunner().invoke(app, ["validate", "--data", str(folder)])
    assert result.exit_code == 1
    assert "missing required column 'account_id'" in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, DataContractError)  # handled, not raised


def test_cli_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "accounts.parquet").write_bytes(b"not parquet at all")
    result = CliRunner().invoke(app, ["validate", "--data", str(folder)])
    assert result.exit_code == 1
    assert "cannot read the file" in result.output


def test_load_reads_only_requested_time_range(small_data_dir: Path) -> None:
    since, until = pd.Timestamp("2023-06-01", tz="UTC"), pd.Timestamp("2023-07-01", tz="UTC")
    data = load(small_data_dir, interaction_columns=["wait_seconds"], since=since, until=until)
    t = data.interactions["occurred_at"]
    assert t.min() >= since and t.max() < until
    assert set(data.interactions.columns) == {"account_id", "occurred_at", "event_type", "wait_seconds"}


# --------------------------------------------------------------------------- keys and dates


def test_ids_written_as_1_and_1_0_and_text_1_are_one_account(tmp_path: Path) -> None:
    """A CRM export with integer ids, an event table from Parquet with float ids, and text."""
    accounts = pd.DataFrame({"account_id": [1, 2, 3], "signup_at": ["2024-01-01"] * 3})
    interactions = pd.DataFrame(
        {"account_id": [1.0, 2.0, 3.0], "occurred_at": ["2024-02-01"] * 3, "event_type": ["login"] * 3}
    )
    folder = tmp_path / "d"
    folder.mkdir()
    accounts.to_csv(folder / "accounts.csv", index=False)
    interactions.to_parquet(folder / "interactions.parquet")
    data = load(folder)
    assert [r.rejected_total for r in data.reports] == [0, 0]
    assert data.accounts["account_id"].tolist() == ["1", "2", "3"]
    assert sorted(data.interactions["account_id"].astype(str)) == ["1", "2", "3"]
    text = validate(accounts.assign(account_id=["1", " 2 ", "3.0"]), interactions)
    assert text.accounts["account_id"].tolist() == ["1", "2", "3"] and text.reports[1].rejected_total == 0


def test_mixed_int_and_text_ids_pass_and_build_features() -> None:
    from churn.features.build import build_features

    accounts = pd.DataFrame({"account_id": [1, "b2", 3.0], "signup_at": ["2024-01-01"] * 3})
    interactions = pd.DataFrame({"account_id": ["1", "b2", 3], "occurred_at": ["2024-02-01"] * 3, "event_type": ["login"] * 3})
    data = validate(accounts, interactions)
    assert [r.rejected_total for r in data.reports] == [0, 0]
    features = build_features(data.accounts, data.interactions, as_of=pd.Timestamp("2024-03-01", tz="UTC"))
    assert features["account_id"].tolist() == ["1", "3", "b2"] and (features["n_login_30d"] == 1).all()


def test_ids_that_collide_after_normalisation_are_rejected_with_reason() -> None:
    accounts = pd.DataFrame({"account_id": ["1", "1.0", "007", "7"], "signup_at": ["2024-01-01"] * 4})
    data = validate(accounts, None)
    assert data.accounts["account_id"].tolist() == ["1", "007", "7"]  # leading zeros are part of an id
    assert data.rejects["accounts"]["reject_reason"].tolist() == ["duplicate account_id after normalisation (e.g. 1 and 1.0 are one id)"]
    assert data.rejects["accounts"]["account_id"].tolist() == ["1.0"]  # the row as it was written
    _check_conservation(data)


def test_day_month_order_is_never_guessed() -> None:
    accounts = _accounts()
    accounts["signup_at"] = ["13/04/2024", "03/04/2024", "2024-04-05"]
    data = validate(accounts, _interactions())
    rejects = data.rejects["accounts"]
    assert rejects["signup_at"].tolist() == ["13/04/2024", "03/04/2024"]
    assert set(rejects["reject_reason"]) == {"unparseable timestamp in signup_at (not ISO 8601; give --date-format for another layout)"}
    assert any("--date-format" in note for note in data.reports[0].notes)
    explicit = validate(accounts.iloc[:2].assign(churned_at=None), _interactions().iloc[:0], date_format="%d/%m/%Y")
    assert explicit.accounts["signup_at"].dt.strftime("%Y-%m-%d").tolist() == ["2024-04-13", "2024-04-03"]
    # with a layout given, ISO 8601 is still read (tables of one export often differ); a value
    # in neither is a reject naming both
    mixed = accounts.assign(churned_at=None, signup_at=["13/04/2024", "2024-04-03", "04-13-2024"])
    wrong = validate(mixed, _interactions().iloc[:0], date_format="%d/%m/%Y")
    assert wrong.accounts["signup_at"].dt.strftime("%Y-%m-%d").tolist() == ["2024-04-13", "2024-04-03"]
    assert wrong.rejects["accounts"]["signup_at"].tolist() == ["04-13-2024"]
    assert wrong.rejects["accounts"]["reject_reason"].tolist() == ["unparseable timestamp in signup_at (neither date format %d/%m/%Y nor ISO 8601)"]


def test_dates_typed_by_the_user_are_read_as_iso_only(tmp_path: Path, small_data_dir: Path) -> None:
    """--as-of, --cutoffs and churn.toml dates follow the same rule as the data: 03/04/2024
    would be 4 March to pandas and 13/04/2024 13 April, so neither is guessed."""
    from churn.config import to_utc
    from churn.features.labels import parse_cutoffs

    assert to_utc("2024-04-03T10:00:00+02:00") == pd.Timestamp("2024-04-03 08:00", tz="UTC")
    assert to_utc("20240403") == to_utc("2024-04-03")
    for text in ("03/04/2024", "13/04/2024", "April 3 2024"):
        with pytest.raises(ValueError, match="ISO 8601"):
            to_utc(text)
    with pytest.raises(ValueError, match="not a date"):
        parse_cutoffs("2024-01-01,03/04/2024")
    result = CliRunner().invoke(app, ["features", "--data", str(small_data_dir), "--as-of", "03/04/2024", "--out", str(tmp_path / "f.parquet")])
    assert result.exit_code == 2 and "day/month order is never guessed" in result.output and not (tmp_path / "f.parquet").exists()
    folder = tmp_path / "with-toml"
    folder.mkdir()
    for file in small_data_dir.iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    (folder / "churn.toml").write_text('data_end = "01/07/2024"\n')
    result = CliRunner().invoke(app, ["validate", "--data", str(folder)])
    assert result.exit_code == 2 and "data_end = '01/07/2024' is not a date" in result.output


def test_cli_date_format_option(tmp_path: Path) -> None:
    accounts = _accounts()
    accounts["signup_at"] = ["13/04/2024", "03/04/2024", "05/04/2024"]
    accounts["churned_at"] = [None, "01/05/2024", None]
    interactions = _interactions()
    interactions["occurred_at"] = ["14/04/2024", "15/04/2024", "16/04/2024", "17/04/2024"]
    folder = write_csv_folder(tmp_path / "d", accounts, interactions)
    plain = CliRunner().invoke(app, ["validate", "--data", str(folder)])
    assert plain.exit_code == 1 and "no usable accounts" in plain.output and "--date-format" in plain.output
    given = CliRunner().invoke(app, ["validate", "--data", str(folder), "--date-format", "%d/%m/%Y"])
    assert given.exit_code == 0, given.output
    assert "All rows accepted" in given.output


def test_future_rows_do_not_move_the_end_of_data(tmp_path: Path) -> None:
    from churn.data.dataend import interactions_end

    interactions = _interactions()
    interactions.loc[3, "occurred_at"] = "2099-12-31"
    folder = write_csv_folder(tmp_path / "d", _accounts(), interactions)
    assert interactions_end(folder, now=NOW) == pd.Timestamp("2024-01-06", tz="UTC")
    interactions = _interactions()
    pq_folder = tmp_path / "p"
    pq_folder.mkdir()
    validate(_accounts(), interactions).accounts.to_parquet(pq_folder / "accounts.parquet")
    validate(_accounts(), interactions).interactions.to_parquet(pq_folder / "interactions.parquet")
    assert interactions_end(pq_folder, now=NOW) == pd.Timestamp("2024-02-02", tz="UTC")


def test_attribute_history_is_validated() -> None:
    history = pd.DataFrame(
        {
            "account_id": ["a1", "a1", "a1", "ghost", "a2"],
            "valid_from": ["2024-01-01", "2024-02-01", "2024-02-01", "2024-01-01", "yesterday"],
            "mrr": ["10", "12", "13", "5", "20"],
        }
    )
    data = validate(_accounts(), _interactions(), history)
    report = data.reports[2]
    assert report.table == "attribute_history" and report.accepted == 2
    assert sorted(data.rejects["attribute_history"]["reject_reason"]) == [
        "duplicate account_id and valid_from",
        "unknown account_id",
        "unparseable timestamp in valid_from (not ISO 8601; give --date-format for another layout)",
    ]
    assert data.attribute_history["mrr"].tolist() == [10.0, 12.0]
    _check_conservation(data)
    with pytest.raises(DataContractError, match="no attribute columns"):
        validate(_accounts(), _interactions(), history[["account_id", "valid_from"]])


def test_numeric_attributes_in_a_csv_are_numbers() -> None:
    """A CSV has no types: an attribute whose every value is a number is a number (not 1,000
    categories), one with any text stays text."""
    accounts = _accounts()
    accounts["total_day_minutes"] = ["265.1", "161.6", ""]
    accounts["calls"] = ["3", "1", "0"]
    accounts["zip"] = ["02134", "n/a", "10001"]
    data = validate(accounts, _interactions())
    assert data.accounts["total_day_minutes"].dtype == float and np.isnan(data.accounts["total_day_minutes"].iloc[2])
    assert data.accounts["calls"].tolist() == [3.0, 1.0, 0.0]
    assert data.accounts["zip"].tolist() == ["02134", "n/a", "10001"] and data.accounts["plan"].tolist() == ["basic", "premium", "basic"]


# --------------------------------------------------------------------------- fast paths


def _screen_of(column) -> ColumnScreen:  # type: ignore[no-untyped-def]
    """The screen a pandera column implies; fails on a check the screen does not know."""
    lo = hi = None
    non_empty = False
    for check in column.checks:
        stats = check.statistics or {}
        if check.name == "non_empty":
            non_empty = True
        elif check.name == "greater_than_or_equal_to":
            lo = stats["min_value"]
        elif check.name == "in_range" and stats.get("include_min", True) and stats.get("include_max", True):
            lo, hi = stats["min_value"], stats["max_value"]
        else:
            pytest.fail(f"the vectorised screen does not know the check {check.name} {stats}: add it to rules.SCREEN")
    return ColumnScreen(None if column.dtype is None else str(column.dtype), column.nullable, non_empty, lo, hi)


def test_vectorised_screen_checks_exactly_what_the_pandera_schemas_check() -> None:
    from churn.data.rules import SCREEN, schemas

    for table, schema in schemas().items():
        assert set(schema.columns) == set(SCREEN[table]), table
        for name, column in schema.columns.items():
            assert _screen_of(column) == SCREEN[table][name], (table, name)


def test_clean_typed_data_is_validated_without_importing_pandera(tmp_path: Path) -> None:
    """pandera runs only on the rows the screen flags; clean data never imports it."""
    import subprocess
    import sys

    code = (
        "import sys, pandas as pd\n"
        "from churn.data.contract import validate\n"
        "from tests.test_contract import _accounts, _interactions\n"
        "data = validate(_accounts(), _interactions())\n"
        "assert all(r.rejected_total == 0 for r in data.reports)\n"
        "print('pandera' in sys.modules)\n"
        "bad = _interactions(); bad.loc[1, 'ces'] = '9'\n"
        "print(validate(_accounts(), bad).rejects['interactions']['reject_reason'].tolist())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == ["False", "['ces out of range 1–7']"]


@pytest.mark.parametrize("shuffle", [False, True])
def test_duplicate_rows_are_exact_whatever_the_row_order(shuffle: bool) -> None:
    """Exact repeats are rejected; rows sharing account and time but not every value are not."""
    from churn.data.frames import duplicated_rows

    t = pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-01", "2024-01-01", "2024-01-02", "2024-01-02", "2024-01-03"], utc=True)
    df = pd.DataFrame(
        {
            "account_id": pd.Categorical(["a", "a", "b", "a", "a", "a", "c"]),
            "occurred_at": t,
            "event_type": ["login", "survey", "login", "login", "login", "login", "login"],
            "nps": [None, 9.0, None, None, 3.0, None, None],
        }
    )
    if shuffle:
        df = df.sample(frac=1, random_state=3).reset_index(drop=True)
    expected = df.duplicated(keep="first").to_numpy()
    assert expected.sum() == 1
    assert duplicated_rows(df).tolist() == expected.tolist()
    text_ids = df.assign(account_id=df["account_id"].astype("str"))
    assert duplicated_rows(text_ids).tolist() == expected.tolist()


def test_a_column_numeric_only_at_its_start_stays_text() -> None:
    """The early look at the first values only ever keeps text as text: a number column
    is one whose every value parses, however far down the first text value is."""
    from churn.data.parse import numbers_if_all_numeric

    late_text = pd.Series([str(i) for i in range(200)] + ["n/a"], dtype="str")
    assert numbers_if_all_numeric(late_text) is late_text
    numbers = pd.Series([str(i) for i in range(200)] + [None, " 7.5 "], dtype="str")
    parsed = numbers_if_all_numeric(numbers)
    assert parsed.dtype == float and parsed.iloc[-1] == 7.5 and np.isnan(parsed.iloc[-2])
    early_text = pd.Series(["basic", "5"] * 100, dtype="str")
    assert numbers_if_all_numeric(early_text) is early_text


def test_dates_beyond_what_pandas_holds_are_reasons_not_crashes() -> None:
    """A CRM's "9999-12-31" in churned_at means "never": the account stays a customer, with a
    note. A signup in the year 1200 or 9999 is a typo: that row is a reject naming the column."""
    accounts = _accounts()
    accounts["churned_at"] = ["9999-12-31", "2024-03-01", None]
    accounts["signup_at"] = ["2024-01-01", "2024-01-05", "1200-01-01"]
    data = validate(accounts, _interactions().iloc[:0], now=NOW)
    _check_conservation(data)
    assert data.accounts["account_id"].tolist() == ["a1", "a2"]
    assert pd.isna(data.accounts["churned_at"].iloc[0])
    assert any("9999-12-31" in note and "not churned" in note for note in data.reports[0].notes)
    assert data.rejects["accounts"]["reject_reason"].tolist() == ["signup_at is outside the years 1678–2261"]

    interactions = _interactions()
    interactions.loc[0, "occurred_at"] = "3000-01-01"
    data = validate(_accounts(), interactions, now=pd.Timestamp("3100-01-01", tz="UTC"))
    assert data.rejects["interactions"]["reject_reason"].tolist() == ["occurred_at is outside the years 1678–2261"]


def test_a_text_column_is_judged_by_its_first_value_only_when_that_is_text() -> None:
    from churn.data.parse import numbers_if_all_numeric

    plan = pd.Series([None, "basic", "12"], dtype="str")
    assert numbers_if_all_numeric(plan) is plan
    numbers = pd.Series([None, " 12 ", "7.5"], dtype="str")
    assert numbers_if_all_numeric(numbers).tolist()[1:] == [12.0, 7.5]


def test_when_every_account_is_rejected_the_rejects_are_still_written(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "accounts.csv").write_text("account_id,signup_at\n1,13/04/2024\n2,03/04/2024\n")
    result = CliRunner().invoke(app, ["validate", "--data", str(folder)])
    assert result.exit_code == 1 and "no usable accounts" in result.output and "--date-format" in result.output
    rejects = pd.read_csv(folder / "rejects" / "accounts_rejects.csv", dtype=str)
    assert rejects["signup_at"].tolist() == ["13/04/2024", "03/04/2024"]
    assert rejects["reject_reason"].str.contains("not ISO 8601").all()


def test_rows_of_a_rejected_account_say_so_instead_of_unknown_account() -> None:
    accounts = _accounts().assign(mrr=["10", "$20.50", "15"])  # a2's mrr cannot be read: a2 is a reject
    interactions = pd.concat([_interactions(), _interactions().iloc[[3]].assign(account_id="zz")], ignore_index=True)
    data = validate(accounts, interactions)
    assert data.rejects["accounts"]["account_id"].tolist() == ["a2"]
    reasons = data.rejects["interactions"].set_index("account_id")["reject_reason"]
    assert reasons.to_dict() == {"a2": "its account's row was rejected (see accounts_rejects)", "zz": "unknown account_id"}
    _check_conservation(data)


@pytest.mark.parametrize("blank_used", [True, False])
def test_a_blank_category_is_rejected_where_it_is_used(blank_used: bool) -> None:
    """Categorical ids and event types (as a Parquet read gives them) are screened per category:
    rows of a blank one are 'empty', a blank category no row uses rejects nothing."""
    accounts = _accounts()
    ids = accounts["account_id"].astype("str").tolist()
    types = ["login", "  " if blank_used else "login", "invoice"]
    interactions = pd.DataFrame(
        {
            "account_id": pd.Categorical(ids[:3]),
            "occurred_at": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"], utc=True),
            "event_type": pd.Categorical(types, categories=["  ", "invoice", "login"]),
        }
    )
    data = validate(accounts, interactions, now=pd.Timestamp("2024-06-01", tz="UTC"))
    report = data.reports[1]
    assert report.rejected == ({"empty event_type": 1} if blank_used else {})
    assert report.accepted == (2 if blank_used else 3)


def test_categoricals_without_a_blank_category_pass_whole_and_a_missing_one_is_still_caught() -> None:
    """The shortcut for a categorical with no blank category (every row passes the blank check
    at once) keeps the rules: a missing event type (NaN code) is still rejected as empty."""
    accounts = _accounts()
    ids = accounts["account_id"].astype("str").tolist()
    interactions = pd.DataFrame(
        {
            "account_id": pd.Categorical(ids[:3]),
            "occurred_at": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"], utc=True),
            "event_type": pd.Categorical(["login", None, "invoice"], categories=["invoice", "login"]),
        }
    )
    data = validate(accounts, interactions, now=pd.Timestamp("2024-06-01", tz="UTC"))
    report = data.reports[1]
    assert report.rejected == {"missing event_type": 1}, report.rejected
    assert report.accepted == 2
