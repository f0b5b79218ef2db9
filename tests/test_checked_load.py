"""``churn features`` checks the accounts and attribute history once: the end of the data's
last-day load validates them, and the feature window's load takes them from it
(``load(checked=…)``) — with the same rows, rejects and reports as checking them again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import churn.data.contract as contract
from churn.cli import app
from churn.config import DataSettings
from churn.data.contract import load
from churn.data.dataend import data_end_checked
from churn.data.synthetic import generate

AS_OF = pd.Timestamp("2024-01-01", tz="UTC")


@pytest.fixture(scope="module")
def dirty_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small business as CSV with a rejected account, a rejected history row and rejected
    interactions (unknown account, a repeated row, one of the rejected account's)."""
    data = generate(120, start="2023-01-01", months=14, seed=5)
    accounts = data.accounts.copy()
    accounts.loc[0, "churned_at"] = accounts.loc[0, "signup_at"] - pd.Timedelta(days=3)  # churned before signup
    history = pd.concat([data.attribute_history, data.attribute_history.iloc[[0]].assign(account_id="nobody")], ignore_index=True)
    events = data.interactions
    window = events.index[(events["occurred_at"] >= AS_OF - pd.Timedelta(days=200)) & (events["occurred_at"] < AS_OF)]
    extra = pd.concat([events.loc[[window[0]]].assign(account_id="nobody"), events.loc[[window[1]]]], ignore_index=True)  # unknown account; a repeat
    interactions = pd.concat([events, extra], ignore_index=True).sort_values("occurred_at", kind="stable")
    folder = tmp_path_factory.mktemp("dirty")
    accounts.to_csv(folder / "accounts.csv", index=False)
    interactions.to_csv(folder / "interactions.csv", index=False)
    history.to_csv(folder / "attribute_history.csv", index=False)
    return folder


def test_a_window_loaded_with_the_checked_accounts_is_the_window_loaded_whole(dirty_folder: Path) -> None:
    _, _, tail = data_end_checked(dirty_folder, DataSettings())
    assert tail is not None
    since = AS_OF - pd.Timedelta(days=365)
    again, reused = load(dirty_folder, since=since, until=AS_OF), load(dirty_folder, since=since, until=AS_OF, checked=tail)
    pd.testing.assert_frame_equal(reused.accounts, again.accounts)
    pd.testing.assert_frame_equal(reused.attribute_history, again.attribute_history)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(reused.interactions_read, again.interactions_read)
    assert np.array_equal(reused.interactions_accepted, again.interactions_accepted)  # type: ignore[arg-type]
    assert reused.rejects.keys() == again.rejects.keys() == {"accounts", "interactions", "attribute_history"}
    for table in again.rejects:
        pd.testing.assert_frame_equal(reused.rejects[table], again.rejects[table])
        assert len(again.rejects[table]) > 0  # every table had a row rejected, with its reason
    assert reused.reports == again.reports


def test_churn_features_reads_and_checks_the_accounts_once(dirty_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[str] = []
    check_table = contract._check_table

    def counting(name: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        checked.append(name)
        return check_table(name, *args, **kwargs)

    monkeypatch.setattr(contract, "_check_table", counting)
    out = tmp_path / "features.parquet"
    result = CliRunner().invoke(app, ["features", "--data", str(dirty_folder), "--as-of", f"{AS_OF:%Y-%m-%d}", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert checked.count("accounts") == 1 and checked.count("attribute_history") == 1
    assert checked.count("interactions") == 2  # the last day (the end of the data), then the window
    assert len(pd.read_parquet(out)) > 0
