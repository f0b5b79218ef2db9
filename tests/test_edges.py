"""Exports as they really come: Unix timestamps, tables that lose every row, rejected rows at the
end of the data, snapshots whose export date must be declared."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from churn.cli.commands import app
from churn.config import DataSettings
from churn.data.contract import validate
from churn.data.dataend import data_end_and_source
from churn.data.read import DataContractError

UTC = "UTC"


def _folder(tmp_path: Path, accounts: pd.DataFrame, interactions: pd.DataFrame, fmt: str = "parquet") -> Path:
    folder = tmp_path / "raw"
    folder.mkdir()
    for name, frame in (("accounts", accounts), ("interactions", interactions)):
        if fmt == "parquet":
            frame.to_parquet(folder / f"{name}.parquet", index=False)
        else:
            frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


@pytest.fixture()
def unix_export(small_business, tmp_path: Path) -> tuple[Path, pd.Timestamp]:  # type: ignore[no-untyped-def]
    """The small business with ``occurred_at`` as integer Unix milliseconds (as many event
    pipelines write it), in Parquet."""
    accounts = small_business.accounts.head(200)
    events = small_business.interactions[small_business.interactions["account_id"].isin(accounts["account_id"])]
    events = events[["account_id", "occurred_at", "event_type"]].assign(occurred_at=events["occurred_at"].array.asi8 // 10**6)
    return _folder(tmp_path, accounts, events), small_business.interactions.loc[events.index, "occurred_at"].max()


def test_unix_milliseconds_fail_with_the_option_named_and_are_read_with_it(unix_export, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder, latest = unix_export
    runner = CliRunner()
    refused = runner.invoke(app, ["validate", "--data", str(folder), "--rejects-dir", str(tmp_path / "rej")])
    assert refused.exit_code == 1, refused.output
    assert "no usable interactions" in refused.output and "all" in refused.output and "unix_ms" in refused.output
    assert "Traceback" not in refused.output and "1970" not in refused.output  # rejected rows never became the end of the data
    rejects = pd.read_csv(tmp_path / "rej" / "interactions_rejects.csv")
    assert rejects["reject_reason"].str.contains("Unix time").all()
    assert not rejects["reject_reason"].str.contains("duplicate").any()  # unreadable stamps are not duplicates of each other
    read = runner.invoke(app, ["validate", "--data", str(folder), "--date-format", "unix_ms", "--rejects-dir", str(tmp_path / "rej2")])
    assert read.exit_code == 0, read.output
    assert f"End of data: {latest.floor('D') + pd.Timedelta(days=1):%Y-%m-%d}" in read.output


def test_unix_seconds_as_text_and_in_churn_toml() -> None:
    accounts = pd.DataFrame({"account_id": ["1", "2"], "signup_at": ["1696118400", "1696204800"]})
    interactions = pd.DataFrame({"account_id": ["1", "2"], "occurred_at": ["1696291200", "1696377600"], "event_type": "purchase"})
    data = validate(accounts, interactions, date_format="unix_s")
    assert data.interactions["occurred_at"].tolist() == [pd.Timestamp("2023-10-03", tz=UTC), pd.Timestamp("2023-10-04", tz=UTC)]
    assert data.accounts["signup_at"].min() == pd.Timestamp("2023-10-01", tz=UTC)
    typed = accounts.assign(signup_at=pd.to_datetime(["2023-10-01", "2023-10-02"]))  # a Parquet column of dates beside Unix events
    assert validate(typed, interactions, date_format="unix_s").accounts["signup_at"].max() == pd.Timestamp("2023-10-02", tz=UTC)
    mixed = interactions.assign(occurred_at=["1696291200", "2023-10-04"])  # one ISO date among Unix times: that row is the reject
    assert len(validate(accounts, mixed, date_format="unix_s").interactions) == 1


def test_date_format_setting_accepts_unix_units_and_refuses_nonsense(tmp_path: Path) -> None:
    from churn.config import SettingsError, load_settings

    (tmp_path / "churn.toml").write_text('date_format = "unix_ms"\n')
    assert load_settings(tmp_path, cwd=tmp_path).date_format == "unix_ms"
    (tmp_path / "churn.toml").write_text('date_format = "unix_minutes"\n')
    with pytest.raises(SettingsError, match="unix_s / unix_ms"):
        load_settings(tmp_path, cwd=tmp_path)


def test_a_table_whose_every_row_is_rejected_fails() -> None:
    accounts = pd.DataFrame({"account_id": ["1", "2"], "signup_at": ["2024-01-01", "2024-01-02"]})
    strangers = pd.DataFrame({"account_id": ["8", "9"], "occurred_at": ["2024-02-01", "2024-02-02"], "event_type": "login"})
    with pytest.raises(DataContractError, match="no usable interactions — all 2 rows rejected: unknown account_id") as caught:
        validate(accounts, strangers)
    assert len(caught.value.rejects["interactions"]) == 2  # still written with reasons by the command
    history = pd.DataFrame({"account_id": ["9"], "valid_from": ["2024-01-01"], "plan": ["pro"]})
    with pytest.raises(DataContractError, match="no usable attribute history"):
        validate(accounts, None, history)
    assert len(validate(accounts, strangers.iloc[:0]).interactions) == 0  # an empty table is attribute-only data, not a failure


def test_rejected_rows_never_move_the_end_of_the_data(tmp_path: Path) -> None:
    accounts = pd.DataFrame({"account_id": ["1", "2"], "signup_at": ["2024-01-01", "2024-01-01"]})
    interactions = pd.DataFrame(
        {
            "account_id": ["1", "2", "99", "1", "2"],
            "occurred_at": ["2024-03-30", "2024-03-31", "2024-04-20", "2024-04-25", "2024-04-26"],
            "event_type": "survey",
            "nps": [7, 8, 9, 42, None],  # 42: out of range
            "csat": [None, None, None, None, "great"],  # not a number
        }
    )
    folder = _folder(tmp_path, accounts, interactions, fmt="csv")
    end, source = data_end_and_source(folder, DataSettings())
    assert end == pd.Timestamp("2024-04-01", tz=UTC) and "accepted" in source


def test_after_the_end_messages_say_how_to_declare_the_export_date(small_data_dir: Path, tmp_path: Path) -> None:
    """A snapshot with labels taken after its last event: the refusal names --data-end."""
    runner = CliRunner()
    train = runner.invoke(app, ["train", "--data", str(small_data_dir), "--as-of", "2030-01-01"])
    assert train.exit_code == 2 and "--data-end" in train.output and "churn.toml" in train.output
    dataset = runner.invoke(app, ["dataset", "--data", str(small_data_dir), "--cutoffs", "2029-01-01", "--out", str(tmp_path / "unused.parquet")])
    assert dataset.exit_code == 2 and "--data-end" in dataset.output
    features = runner.invoke(app, ["features", "--data", str(small_data_dir), "--as-of", "2030-01-01", "--out", str(tmp_path / "unused.parquet")])
    assert features.exit_code == 2 and "--data-end" in features.output
