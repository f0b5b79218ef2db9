"""Parquet tables read ahead, before pandas is even imported: ``churn features`` starts
reading its window of interactions while the command line starts up (churn.cli.early).

Importing pandas, typer and the stages takes half a second on one core; a Parquet window
of ten million events takes as long to decode, on Arrow's threads, outside the GIL. Read
at once, the two overlap. This module imports only pyarrow's Parquet reader and compute
kernels — never pandas (``pyarrow.dataset`` imports it) — so that it can start first.

A read ahead is the Arrow table :func:`churn.data.read.read_table` would read for the very
same request (file, columns, dictionary columns, time column and range: the :class:`Key`):
the same rows in the same order, one piece per row group, so the same DataFrame once
converted (categories in the same order; tests/test_features_readahead.py). The reader takes it with
:func:`take` only for that request, and reads for itself otherwise (a wrong guess costs a
read, never a wrong table). Only a local Parquet *file* whose time column is a timestamp
with statistics is read ahead: anything else is left to the reader.
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow


@dataclass(frozen=True)
class Key:
    """What a read is of: the file, its columns (in order), those read dictionary-encoded,
    and the rows with ``since <= time_column < until`` (None: unbounded; no time column: all)."""

    path: str
    columns: tuple[str, ...]
    dictionary: tuple[str, ...]
    time_column: str | None
    since: datetime | None
    until: datetime | None

    def same(self, other: "Key") -> bool:
        """Equal, whether the bounds are ``datetime`` or ``pandas.Timestamp`` (one instant)."""
        return (self.path, self.columns, self.dictionary, self.time_column) == (other.path, other.columns, other.dictionary, other.time_column) and (
            _same_instant(self.since, other.since) and _same_instant(self.until, other.until)
        )


def _same_instant(a: datetime | None, b: datetime | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.tzinfo is not None and b.tzinfo is not None and a == b


class _Ahead:
    """One read running in its own thread (not a daemon: the process waits for it at exit,
    as for :class:`churn.data.read.Prefetch`)."""

    def __init__(self, key: Key) -> None:
        self.key = key
        self.table: "pyarrow.Table | None" = None
        self._thread = threading.Thread(target=self._run, name="churn-readahead")
        self._thread.start()

    def _run(self) -> None:
        try:
            self.table = read_file_window(self.key)
        except Exception:  # noqa: BLE001 - the reader reads again and reports it in its own words
            self.table = None

    def result(self) -> "pyarrow.Table | None":
        self._thread.join()
        table, self.table = self.table, None
        return table


_started: list[_Ahead] = []
_lock = threading.Lock()


def start(keys: Sequence[Key]) -> None:
    """Read each of ``keys`` ahead, each in its own thread (Arrow decodes outside the GIL).
    Call it from the main thread: the modules the reads need are imported here, first, so
    that no read imports anything while the main thread imports pandas (two threads importing
    one package at once can each wait for the other)."""
    import pyarrow
    import pyarrow.compute  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    if not keys:
        return
    try:  # the Parquet reader takes no pool: the process's default becomes the one churn.data.io.arrow_pool chooses, for why it says
        pyarrow.set_memory_pool(pyarrow.jemalloc_memory_pool())
    except NotImplementedError:  # a pyarrow built without jemalloc
        pass
    with _lock:
        if keys:  # Arrow decodes on one core while the imports have the other
            if not _cores:
                _cores.append(pyarrow.cpu_count())
            pyarrow.set_cpu_count(1)
        _started.extend(_Ahead(key) for key in keys)


#: Arrow's thread count before :func:`start` lowered it (empty: not lowered).
_cores: list[int] = []


def imports_done() -> None:
    """Give Arrow back its threads (:func:`start` left it one while the command line imports:
    a second thread would take the importing thread's core, not an idle one)."""
    with _lock:
        _restore_cores()


def _restore_cores() -> None:
    if _cores:
        import pyarrow

        pyarrow.set_cpu_count(_cores.pop())


def take(key: Key) -> "pyarrow.Table | None":
    """The table read ahead for ``key`` (waiting for it), once; None when none was started
    for it, or its read failed."""
    with _lock:
        match = next((a for a in _started if a.key.same(key)), None)
        if match is not None:
            _started.remove(match)
    return match.result() if match is not None else None


def discard() -> None:
    """Drop every read ahead not taken (its memory goes as soon as its read ends), and give
    Arrow back its threads if the imports have not."""
    with _lock:
        _started.clear()
        _restore_cores()


def read_file_window(key: Key) -> "pyarrow.Table | None":
    """The rows of one local Parquet file in ``key``'s time range, row group by row group as
    :func:`churn.data.read._read_window` reads them: groups outside the range (by their
    statistics) skipped, groups wholly inside read whole, the others read and filtered. None
    when the statistics cannot decide (no 64-bit timestamp column with a time zone, statistics
    missing). Bounds and statistics are compared as integers, and the filter's bounds made
    from raw buffers: turning a Python value into an Arrow one imports pandas."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(key.path, read_dictionary=list(key.dictionary) or None)
    schema, meta = parquet.schema_arrow, parquet.metadata
    if key.time_column is None or (key.since is None and key.until is None):  # no range: every row, as the reader reads it
        return parquet.read(columns=list(key.columns), use_threads=True)
    index = schema.get_field_index(key.time_column)
    time_type = schema.field(index).type if index >= 0 else None
    if time_type is None or not pa.types.is_timestamp(time_type) or time_type.tz is None or meta.num_row_groups == 0:
        return None  # text or naive times: the reader decides
    since, until = (None if b is None else _in_units(b, time_type.unit) for b in (key.since, key.until))
    runs: list[tuple[bool, list[int]]] = []  # consecutive row groups of one kind, in file order
    for g in range(meta.num_row_groups):
        column = meta.row_group(g).column(index)
        stats = column.statistics
        if column.physical_type != "INT64" or stats is None or not stats.has_min_max or stats.null_count is None:
            return None
        low, high = stats.min_raw, stats.max_raw
        if (since is not None and high < since) or (until is not None and low >= until):
            continue
        whole = stats.null_count == 0 and (since is None or low >= since) and (until is None or high < until)
        if runs and runs[-1][0] == (not whole):
            runs[-1][1].append(g)
        else:
            runs.append((not whole, [g]))
    if not runs:
        return None  # the reader makes the empty table, typed as it reads it
    parts = []
    for filtered, groups in runs:
        for g in groups:  # one piece per row group, as the reader's batches: no copy to join them
            part = parquet.read_row_group(g, columns=list(key.columns), use_threads=True)
            if filtered:
                t = part.column(key.time_column)
                low_ok = pc.greater_equal(t, _scalar(since, time_type)) if since is not None else pc.is_valid(t)
                high_ok = pc.less(t, _scalar(until, time_type)) if until is not None else pc.is_valid(t)
                part = part.filter(pc.and_kleene(low_ok, high_ok), null_selection_behavior="drop")
            parts.append(part)
    return pa.concat_tables(parts)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_UNIT = {"s": timedelta(seconds=1), "ms": timedelta(milliseconds=1), "us": timedelta(microseconds=1)}


def _in_units(moment: datetime, unit: str) -> int:
    """The first tick of ``unit`` at or after ``moment``: ``t >= moment`` is ``ticks >= this``."""
    if unit == "ns":
        value = getattr(moment, "value", None)  # a pandas.Timestamp knows its nanoseconds
        return int(value) if value is not None else (moment - _EPOCH) // timedelta(microseconds=1) * 1000
    return -((_EPOCH - moment) // _UNIT[unit])  # ceiling division


def _scalar(ticks: int, time_type: "pyarrow.DataType") -> "pyarrow.Scalar":
    import pyarrow as pa

    return pa.Array.from_buffers(time_type, 1, [None, pa.py_buffer(struct.pack("<q", ticks))])[0]
