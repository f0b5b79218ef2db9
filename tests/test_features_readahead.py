"""``churn features --data DIR`` reads its Parquet tables ahead, while the command line imports
(churn.cli.early, churn.data.readahead): a read ahead is the very table the reader would have
read for the same request, every read of a run is taken from it, and a wrong guess changes
nothing but the cost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import churn.data.read as read
from churn.cli import app, early
from churn.data import readahead
from churn.data.read import read_table

SINCE, UNTIL = pd.Timestamp("2024-02-01", tz="UTC"), pd.Timestamp("2024-03-01", tz="UTC")


def _events(n: int = 120) -> pa.Table:
    """Events in time order over three months, a few without a time, ids as plain text."""
    t = pd.date_range("2024-01-01", "2024-03-31", periods=n, tz="UTC").as_unit("us").asi8
    times = pa.array(t, type=pa.timestamp("us", tz="UTC"), mask=np.isin(np.arange(n), [55, 58]))
    return pa.table(
        {
            "account_id": [f"a{(i * 5) % 7}" for i in range(n)],
            "occurred_at": times,
            "event_type": [["login", "invoice", "support"][i % 3] for i in range(n)],
            "amount": np.where(np.arange(n) % 4 == 0, np.nan, np.arange(n, dtype=float)),
        }
    )


@pytest.fixture
def in_line_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files read by the reader itself (not taken from a read ahead)."""
    seen: list[str] = []
    own = read._read_arrow

    def counting(fs, where, *args):  # type: ignore[no-untyped-def]
        seen.append(Path(where).name)
        return own(fs, where, *args)

    monkeypatch.setattr(read, "_read_arrow", counting)
    yield seen
    readahead.discard()


@pytest.mark.parametrize("rows_per_group", [7, 40, 1000])
@pytest.mark.parametrize("since, until", [(SINCE, UNTIL), (SINCE, None), (None, UNTIL), (None, None), (pd.Timestamp("2030-01-01", tz="UTC"), None)])
def test_a_read_ahead_is_the_table_read_in_line(tmp_path: Path, rows_per_group: int, since: pd.Timestamp | None, until: pd.Timestamp | None, in_line_reads: list[str]) -> None:
    path = tmp_path / "interactions.parquet"
    pq.write_table(_events(), path, row_group_size=rows_per_group)
    categorical = ("account_id", "event_type")
    expected = read_table(path, time_column="occurred_at", since=since, until=until, categorical=categorical)
    assert in_line_reads == ["interactions.parquet"]
    key = readahead.Key(str(path), ("account_id", "occurred_at", "event_type", "amount"), categorical, "occurred_at", since, until)
    readahead.start([key])
    got = read_table(path, time_column="occurred_at", since=since, until=until, categorical=categorical)
    assert in_line_reads == ["interactions.parquet"] or (len(expected) == 0 and len(in_line_reads) == 2)  # an empty window is typed by the reader
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    for column in categorical:  # the same categories, in the same order
        assert got[column].cat.categories.equals(expected[column].cat.categories)


def test_a_read_ahead_is_taken_only_by_its_own_request(tmp_path: Path, in_line_reads: list[str]) -> None:
    path = tmp_path / "interactions.parquet"
    pq.write_table(_events(), path, row_group_size=9)
    readahead.start([readahead.Key(str(path), ("account_id", "occurred_at"), (), "occurred_at", SINCE.to_pydatetime(), UNTIL.to_pydatetime())])
    read_table(path, ["account_id", "occurred_at"], time_column="occurred_at", since=SINCE, until=UNTIL - pd.Timedelta(days=1))
    read_table(path, ["account_id", "amount"], time_column="occurred_at", since=SINCE, until=UNTIL)
    assert len(in_line_reads) == 2
    read_table(path, ["account_id", "occurred_at"], time_column="occurred_at", since=SINCE, until=UNTIL)  # a datetime and a Timestamp: one instant
    assert len(in_line_reads) == 2


@pytest.mark.parametrize("as_of", ["2024-03-01", None])
def test_churn_features_takes_every_read_from_the_reads_ahead(small_data_dir: Path, tmp_path: Path, in_line_reads: list[str], as_of: str | None) -> None:
    """Also checks the facts churn.cli.early writes out (columns, lookback, …) are the stages' own:
    with any of them wrong, a read would not be taken."""
    given = ["--as-of", as_of] if as_of else []
    command = ["features", "--data", str(small_data_dir), *given]
    assert CliRunner().invoke(app, [*command, "--out", str(tmp_path / "in_line.parquet")]).exit_code == 0
    assert sorted(in_line_reads) == ["accounts.parquet", "attribute_history.parquet", "interactions.parquet", "interactions.parquet"]
    in_line_reads.clear()
    early.start(["churn", *command, "--out", str(tmp_path / "ahead.parquet")])
    result = CliRunner().invoke(app, [*command, "--out", str(tmp_path / "ahead.parquet")])
    assert result.exit_code == 0, result.output
    assert in_line_reads == []
    assert (tmp_path / "ahead.parquet").read_bytes() == (tmp_path / "in_line.parquet").read_bytes()


def test_a_wrong_guess_is_read_again_and_dropped(small_data_dir: Path, tmp_path: Path, in_line_reads: list[str]) -> None:
    early.start(["churn", "features", "--data", str(small_data_dir), "--as-of", "2024-02-01"])
    command = ["features", "--data", str(small_data_dir), "--as-of", "2024-03-01"]
    assert CliRunner().invoke(app, [*command, "--out", str(tmp_path / "ahead.parquet")]).exit_code == 0
    assert in_line_reads == ["interactions.parquet"]  # the window, at another date; the rest was taken
    assert readahead._started == []  # the wrong one is not kept
    assert CliRunner().invoke(app, [*command, "--out", str(tmp_path / "in_line.parquet")]).exit_code == 0
    assert (tmp_path / "ahead.parquet").read_bytes() == (tmp_path / "in_line.parquet").read_bytes()


@pytest.mark.parametrize(
    "argv",
    [
        ["churn", "score", "--data", "{data}"],
        ["churn", "features", "--data", "{data}", "--describe"],
        ["churn", "features", "--data", "{data}", "--data-end", "2024-03-01"],
        ["churn", "features", "--data", "{data}", "--config", "churn.toml"],
        ["churn", "features", "--data", "{data}", "--engine", "spark"],
        ["churn", "features", "--data", "s3://bucket/raw"],
        ["churn", "features", "--data"],
        ["pytest", "features", "--data", "{data}"],
    ],
)
def test_nothing_is_read_ahead_when_the_command_reads_something_else(small_data_dir: Path, argv: list[str]) -> None:
    early.start([word.format(data=small_data_dir) for word in argv])
    assert readahead._started == []


def test_the_read_ahead_starts_before_pandas_is_imported(small_data_dir: Path) -> None:
    """In a fresh interpreter: the reads start (and run) without importing pandas."""
    code = (
        "import sys, importlib.util\n"
        "spec = importlib.util.spec_from_file_location('early', sys.argv[1]); early = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(early)\n"
        "early.start(['churn', 'features', '--data', sys.argv[2]])\n"
        "from churn.data import readahead\n"
        "tables = [a.result() for a in readahead._started]\n"
        "print(len(tables), sum(t is not None for t in tables), 'pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, early.__file__, str(small_data_dir)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["4", "4", "False"]


def test_the_final_garbage_collection_is_left_out_at_exit(small_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """At exit Python's last collections pass over every object left (~0.1 s after a 10M-event
    run): ``churn features`` freezes them at its last exit hook instead."""
    import atexit
    import gc

    hooks: list[object] = []
    monkeypatch.setattr(atexit, "register", hooks.append)
    result = CliRunner().invoke(app, ["features", "--data", str(small_data_dir), "--as-of", "2024-03-01", "--out", str(tmp_path / "f.parquet")])
    assert result.exit_code == 0, result.output
    assert gc.freeze in hooks


def test_the_command_line_imports_without_collecting_garbage_and_then_freezes_them() -> None:
    """Importing pandas, typer and rich runs ~180 collections that find nothing to free:
    churn.cli imports with the collector off, then freezes the modules' objects (out of every
    later collection's way) and turns it back on."""
    code = "import gc, churn.cli\nprint(gc.isenabled(), gc.get_freeze_count() > 10_000)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]


def test_an_unreadable_file_is_left_to_the_command_to_report(small_data_dir: Path, tmp_path: Path) -> None:
    """A broken interactions.parquet: no read ahead, no traceback at start-up; the command says
    which file it cannot read, as without reading ahead."""
    import shutil

    folder = tmp_path / "raw"
    shutil.copytree(small_data_dir, folder)
    (folder / "interactions.parquet").write_bytes(b"not parquet at all")
    early.start(["churn", "features", "--data", str(folder)])
    assert readahead._started == []
    result = CliRunner().invoke(app, ["features", "--data", str(folder), "--out", str(tmp_path / "f.parquet")])
    assert result.exit_code == 1 and "interactions.parquet: cannot read the file" in result.output, result.output


def test_arrow_reads_ahead_on_one_thread_until_the_imports_are_done(small_data_dir: Path) -> None:
    """While the command line imports, a second Arrow thread would take the importing thread's
    core: the reads ahead get one, and every core back once the imports are done."""
    cores = pa.cpu_count()
    early.start(["churn", "features", "--data", str(small_data_dir)])
    try:
        assert pa.cpu_count() == 1
    finally:
        early.imports_done()
        readahead.discard()
    assert pa.cpu_count() == cores
