"""Reading a time window of a Parquet event log row group by row group (data/read.py):
the rows are exactly those a filter over the whole table keeps, in the same order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churn.data.read import read_table

SINCE, UNTIL = pd.Timestamp("2024-02-01", tz="UTC"), pd.Timestamp("2024-03-01", tz="UTC")


def _events(n: int = 120) -> pa.Table:
    """Events in time order over three months, with missing times among the middle month's
    rows: a row group can lie inside the window by its statistics and still hold rows the
    window must drop."""
    t = pd.date_range("2024-01-01", "2024-03-31", periods=n, tz="UTC").as_unit("us").asi8
    times = pa.array(t, type=pa.timestamp("us", tz="UTC"), mask=np.isin(np.arange(n), [55, 58]))
    return pa.table({"account_id": [f"a{i % 7}" for i in range(n)], "occurred_at": times, "amount": np.arange(n, dtype=float)})


def _expected(table: pa.Table) -> list[float]:
    """The amounts of the rows a filter over the whole table keeps, in order."""
    t = table.column("occurred_at").to_pandas()
    return table.column("amount").to_numpy()[((t >= SINCE) & (t < UNTIL)).to_numpy()].tolist()


@pytest.mark.parametrize("rows_per_group", [7, 40, 1000])
def test_a_window_of_many_row_groups_is_the_filtered_table(tmp_path: Path, rows_per_group: int) -> None:
    frame = _events()
    pq.write_table(frame, tmp_path / "interactions.parquet", row_group_size=rows_per_group)
    got = read_table(tmp_path / "interactions.parquet", time_column="occurred_at", since=SINCE, until=UNTIL)
    assert got["amount"].tolist() == _expected(frame)  # the same rows, in order: none missing, none extra
    assert got["occurred_at"].notna().all()


def test_a_folder_of_parts_and_a_window_that_misses_them(tmp_path: Path) -> None:
    frame = _events()
    folder = tmp_path / "interactions"
    folder.mkdir()
    for k, part in enumerate(np.array_split(np.arange(len(frame)), 3)):  # part-0: January, part-2: March
        pq.write_table(frame.take(part), folder / f"part-{k}.parquet", row_group_size=9)
    got = read_table(folder, time_column="occurred_at", since=SINCE, until=UNTIL)
    assert got["amount"].tolist() == _expected(frame)
    later = read_table(folder, ["account_id", "occurred_at"], time_column="occurred_at", since=pd.Timestamp("2030-01-01", tz="UTC"))
    assert len(later) == 0 and list(later.columns) == ["account_id", "occurred_at"]


def test_a_text_column_read_in_many_batches_arrives_in_one_piece(tmp_path: Path) -> None:
    """Arrow's ``take`` from a column in pieces joins the pieces first, at every take: a text
    column (``case_id``) is joined once, on reading; the other columns are left as read."""
    frame = _events(3000)
    frame = frame.append_column("case_id", pa.array([f"c{i}" if i % 3 else None for i in range(len(frame))], pa.large_string()))
    pq.write_table(frame, tmp_path / "interactions.parquet", row_group_size=500)
    got = read_table(tmp_path / "interactions.parquet", time_column="occurred_at", since=SINCE, until=UNTIL)
    if isinstance(got["case_id"].array, pd.arrays.ArrowStringArray):  # pandas 3: text held as Arrow
        assert got["case_id"].array._pa_array.num_chunks == 1  # pandas' own Arrow array of the column
    kept = ((frame.column("occurred_at").to_pandas() >= SINCE) & (frame.column("occurred_at").to_pandas() < UNTIL)).to_numpy()
    expected = pd.Series(frame.column("case_id").to_pylist(), dtype="str")[kept].reset_index(drop=True)
    pd.testing.assert_series_equal(got["case_id"], expected, check_names=False)
    rows = np.array([0, 5, len(got) - 1])
    assert got["case_id"].iloc[rows].tolist() == expected.iloc[rows].tolist()
