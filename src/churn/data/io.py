"""Atomic file output: every file appears whole or not at all.

A scheduled run that is killed half-way must never leave a truncated CSV that a
customer-success team then opens, so every writer goes to a temporary file in the
same folder and renames it into place (``os.replace`` is atomic on one filesystem).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow


@contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_atomic(target: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``target``."""
    with atomic_path(target) as tmp:
        write(tmp)
    return Path(target)


def write_text(target: str | os.PathLike[str], text: str) -> Path:
    return write_atomic(target, lambda p: p.write_text(text, encoding="utf-8"))


#: The file formats a table is written in.
TABLE_FORMATS = ("parquet", "csv")


def write_table(df: pd.DataFrame, stem: str | os.PathLike[str], fmt: str = "parquet", *, float_dictionary: bool = True) -> Path:
    """Write ``df`` to ``stem.parquet`` or ``stem.csv`` atomically. ``float_dictionary=False``:
    Parquet stores the float columns as they are, without first trying a dictionary of their
    values (see :func:`churn.jobs.tables.write_frame`)."""
    if fmt not in TABLE_FORMATS:
        raise ValueError(f"format must be parquet or csv, got {fmt!r}")
    target = Path(f"{stem}.{fmt}")
    if fmt == "parquet":
        options = {} if float_dictionary else {"use_dictionary": [str(c) for c, dtype in df.dtypes.items() if dtype != np.float64]}
        # microseconds: enough for event logs, and what Spark can read (it rejects nanoseconds)
        return write_atomic(target, lambda p: df.to_parquet(p, index=False, coerce_timestamps="us", allow_truncated_timestamps=True, **options))
    return write_atomic(target, lambda p: _write_csv(df, p))


def arrow_pool() -> "pyarrow.MemoryPool":
    """The Arrow memory pool for reading large tables: jemalloc where pyarrow has it.

    pyarrow's default on Linux, mimalloc, asks for transparent huge pages; where the kernel
    compacts memory on demand for them (THP ``defrag=madvise``, a common default) reading a
    10M-row table spent three times the system time of jemalloc, for the same peak memory."""
    import pyarrow as pa

    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow built without jemalloc
        return pa.default_memory_pool()


#: A text cell starting with one of these is run as a formula by spreadsheets (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(values: pd.Series) -> pd.Series:
    """Text that a spreadsheet would run as a formula gets a leading apostrophe, as OWASP
    advises for CSV injection: ``=HYPERLINK(...)`` is written ``'=HYPERLINK(...)``.
    Numbers are left alone; the Parquet files keep every value exactly as it was."""
    text = values.astype("str").where(values.notna())
    risky = text.str.startswith(FORMULA_PREFIXES).fillna(False)
    return text.where(~risky, "'" + text) if risky.any() else values


def _csv_ready(df: pd.DataFrame) -> pd.DataFrame:
    """ISO-8601 timestamps including their offset (spreadsheet- and parser-friendly), and text
    cells that cannot run as spreadsheet formulas."""
    out = df.copy()
    for col in out.columns:
        dtype = out[col].dtype
        if isinstance(dtype, pd.DatetimeTZDtype):
            out[col] = out[col].dt.strftime("%Y-%m-%dT%H:%M:%S%z")
        elif isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype) or dtype == object:
            out[col] = spreadsheet_safe(out[col])
    return out


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    _csv_ready(df).to_csv(path, index=False, encoding="utf-8")


def csv_text(df: pd.DataFrame, *, index: bool = False) -> str:
    """The same spreadsheet-safe CSV as a written table, as text (for MLflow's ``log_text``:
    feature names come from the user's columns, and a column named ``=cmd`` must not run).
    With ``index``, the row labels are written first, escaped as any text cell."""
    out = _csv_ready(df)
    if index:
        out.index = pd.Index(spreadsheet_safe(pd.Series(df.index.astype("str"), dtype=object)), name=df.index.name)
    return out.to_csv(index=index)
