"""A database read's batches keep nothing of the driver's memory once typed (churn.data.dbtypes.typed:
each driver batch is freed as the next arrives), and its rows become a DataFrame two columns at a
time (frame: the conversion runs after the last rows arrive, while the rest of `churn features`
waits for it, so it takes both cores). Same values as before; no database needed."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pyarrow as pa

from churn.data import dbtypes
from churn.data.io import arrow_pool


def _table() -> pa.Table:
    chunks = [
        pa.record_batch(
            {
                "account_id": pa.array(["a1", "a2", None], pa.string()).dictionary_encode(),
                "occurred_at": pa.array([1, 2, 3], pa.timestamp("us", "UTC")),
                "resolved": pa.array([True, None, False]),
                "amount": pa.array([1.5, np.nan, -0.0]),
                "case_id": pa.array(["c", None, ""], pa.large_string()),
            }
        )
        for _ in range(2)
    ]
    return pa.Table.from_batches(chunks)


def test_two_columns_are_converted_at_once(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    both = threading.Barrier(2, timeout=5)  # the first two conversions meet here; one at a time, the first waits in vain
    convert = dbtypes.to_pandas
    threads, calls = set(), []
    lock = threading.Lock()

    def meeting(column: pa.ChunkedArray, pool: pa.MemoryPool) -> pd.Series:
        with lock:
            calls.append(column)
            first_two = len(calls) <= 2
        if first_two:
            both.wait()
            threads.add(threading.get_ident())
        return convert(column, pool)

    monkeypatch.setattr(dbtypes, "to_pandas", meeting)
    dbtypes.frame([_table()], arrow_pool())
    assert len(threads) == 2


def test_the_frame_is_the_column_by_column_conversion() -> None:
    table = _table()
    got = dbtypes.frame([table], arrow_pool())
    expected = pd.DataFrame(
        {name: table.column(name).to_pandas(coerce_temporal_nanoseconds=True, types_mapper={pa.bool_(): pd.BooleanDtype()}.get if name == "resolved" else None) for name in table.column_names}
    )
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert list(got.columns) == table.column_names and got["resolved"].dtype == pd.BooleanDtype() and str(got["occurred_at"].dtype) == "datetime64[ns, UTC]"
    assert np.signbit(got["amount"].iloc[2])


def test_a_typed_batch_holds_none_of_the_drivers_buffers() -> None:
    sent = pa.record_batch(
        {
            "account_id": pa.array(["a1", "a2", None]),
            "occurred_at": pa.array([1, None, 3], pa.timestamp("us", "UTC")),
            "n": pa.array([1, 2, 3], pa.int64()),
            "amount": pa.array([1.5, None, -0.0]),
        }
    )
    schema = pa.schema([pa.field(f.name, dbtypes.target(f, ["account_id"])) for f in sent.schema])
    typed = dbtypes.typed(sent, schema, arrow_pool())
    driver = {b.address for column in sent.columns for b in column.buffers() if b is not None}
    assert not [c for c, column in zip(typed.schema.names, typed.columns) if any(b is not None and b.address in driver for b in column.buffers())]
    assert typed.column("account_id").to_pylist() == ["a1", "a2", None] and typed.column("occurred_at").equals(sent.column("occurred_at"))
    assert typed.column("n").equals(sent.column("n")) and typed.column("amount").equals(sent.column("amount"))
