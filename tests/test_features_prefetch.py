"""``churn features`` reads its window of interactions in a background thread while the end of
the data is found (:class:`churn.data.read.Prefetch`): the window is read once, in that thread,
and the load takes it only for the very range it asks for — the table is the one read in line."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import churn.data.contract as contract
from churn.cli import app
from churn.config import DataSettings
from churn.data.contract import load, read_window_early
from churn.data.dataend import data_end_of, likely_data_end
from churn.data.read import DataContractError, Prefetch
from churn.data.rules import OPTIONAL_INTERACTION_COLUMNS

AS_OF = pd.Timestamp("2024-03-01", tz="UTC")
SINCE = AS_OF - pd.Timedelta(days=365)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, object, object]]:
    """Every read of an interactions table: (thread name, since, until)."""
    seen: list[tuple[str, object, object]] = []
    read = contract._read_interactions

    def counting(folder, columns, since, until):  # type: ignore[no-untyped-def]
        seen.append((threading.current_thread().name, since, until))
        return read(folder, columns, since, until)

    monkeypatch.setattr(contract, "_read_interactions", counting)
    return seen


@pytest.mark.parametrize("as_of", [f"{AS_OF:%Y-%m-%d}", None])
def test_churn_features_reads_its_window_once_in_the_background(small_data_dir: Path, tmp_path: Path, reads: list, as_of: str | None) -> None:
    out, again = tmp_path / "features.parquet", tmp_path / "in_line.parquet"
    given = ["--as-of", as_of] if as_of else []
    result = CliRunner().invoke(app, ["features", "--data", str(small_data_dir), *given, "--out", str(out)])
    assert result.exit_code == 0, result.output
    windows = [r for r in reads if r[2] is not None]  # the end of the data's last-day read has no `until`
    assert [name for name, _, _ in windows] == ["churn-prefetch"], reads
    # the same command with the early read refused (a load asking for another range reads in line)
    reads.clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("churn.jobs.tables.read_features_window_early", lambda *a, **k: None)
        assert CliRunner().invoke(app, ["features", "--data", str(small_data_dir), *given, "--out", str(again)]).exit_code == 0
    assert [name for name, _, until in reads if until is not None] == ["MainThread"]
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(again), check_exact=True)


def test_a_load_takes_the_early_read_only_for_its_own_range(small_data_dir: Path, reads: list) -> None:
    early = read_window_early(small_data_dir, interaction_columns=OPTIONAL_INTERACTION_COLUMNS, since=SINCE, until=AS_OF)
    other = load(small_data_dir, interaction_columns=OPTIONAL_INTERACTION_COLUMNS, since=SINCE, until=AS_OF - pd.Timedelta(days=1), prefetched=early)
    assert [r[0] for r in reads] == ["churn-prefetch", "MainThread"]  # another range: read in line
    early = read_window_early(small_data_dir, interaction_columns=OPTIONAL_INTERACTION_COLUMNS, since=SINCE, until=AS_OF)
    taken = load(small_data_dir, interaction_columns=OPTIONAL_INTERACTION_COLUMNS, since=SINCE, until=AS_OF, prefetched=early)
    assert [r[0] for r in reads] == ["churn-prefetch", "MainThread", "churn-prefetch"]  # the same range: the early read taken
    in_line = load(small_data_dir, interaction_columns=OPTIONAL_INTERACTION_COLUMNS, since=SINCE, until=AS_OF)
    pd.testing.assert_frame_equal(taken.interactions_read, in_line.interactions_read)
    assert taken.reports == in_line.reports
    assert other.interactions_read["occurred_at"].max() < AS_OF - pd.Timedelta(days=1)


def test_an_error_of_the_early_read_is_raised_where_it_is_taken() -> None:
    def broken() -> None:
        raise DataContractError("interactions.parquet: cannot read the file")

    early = Prefetch("key", broken)
    with pytest.raises(DataContractError, match="cannot read"):
        early.take("key")


def test_a_read_no_load_takes_is_dropped() -> None:
    early = Prefetch("key", lambda: "a large table")
    assert early.take("another key") is None
    early._thread.join()
    assert early._result is None and early.take("key") is None  # not held beside the load's own read


def test_the_foretold_end_of_the_data_is_the_end_found(small_data_dir: Path) -> None:
    assert likely_data_end(small_data_dir) == data_end_of(small_data_dir)
    given = pd.Timestamp("2024-02-01", tz="UTC")
    assert likely_data_end(small_data_dir, DataSettings(data_end=given)) == given


def test_the_early_read_is_waited_for_at_exit() -> None:
    """A run that ends before taking the read (a refused stale date) must wait for it: a daemon
    thread stopped inside pyarrow's conversion left pyarrow's thread pool waiting at exit for
    ever (seen on 12M interactions: ``churn features --as-of`` a few days after the data hung)."""
    early = Prefetch("key", lambda: "read")
    assert not early._thread.daemon
    assert early.take("key") == "read"
