"""Finding and reading a table of a data folder: Parquet (a file or a folder of parts) or CSV.

Reads only the columns asked for and, for Parquet, only the rows of the time range asked for
(a filter pushed into the reader), so a weekly run never loads years of events it does not use.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import pandas as pd
import pyarrow.parquet as pq

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow
from churn.data.io import arrow_pool


class DataContractError(Exception):
    """The data cannot be used at all. The message is meant for the user, as is; ``rejects``
    holds the rows rejected so far (per table), so they can still be written with reasons, and
    ``written`` the files they were written to, once a job has written them."""

    def __init__(self, message: str, rejects: dict[str, pd.DataFrame] | None = None, written: list[Path] | None = None) -> None:
        super().__init__(message)
        self.rejects = rejects or {}
        self.written = written or []


def find_table(folder: str | Path, name: str) -> Path | None:
    """``name.parquet``, ``name.csv`` or a folder ``name/`` of Parquet parts, else None."""
    folder = Path(folder)
    for candidate in (folder / f"{name}.parquet", folder / f"{name}.csv", folder / f"{name}.csv.gz", folder / name):
        if candidate.exists():
            return candidate
    return None


def is_parquet(path: Path) -> bool:
    return path.suffix == ".parquet" or path.is_dir()


def parquet_schema(path: Path) -> "pyarrow.Schema":
    return pq.read_schema(next(iter(sorted(path.glob("*.parquet")))) if path.is_dir() else path)


def available_columns(path: Path) -> list[str]:
    """Column names of a table file without reading its rows."""
    try:
        if is_parquet(path):
            return list(parquet_schema(path).names)
        return list(pd.read_csv(path, nrows=0).columns)
    except Exception as exc:  # noqa: BLE001 - any read failure is reported the same way
        raise DataContractError(f"{path}: cannot read the file ({type(exc).__name__}: {exc})") from None


def read_table(
    path: Path,
    columns: Sequence[str] | None = None,
    *,
    time_column: str | None = None,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
    categorical: Sequence[str] = (),
) -> pd.DataFrame:
    """Read the asked-for columns (those present); Parquet pushes the time range down.

    Text columns named in ``categorical`` (ids, event types, channels: few distinct values,
    many rows) arrive as categoricals, so that later steps work once per distinct value.
    CSV is read as text so that parsing problems surface per row, not as a failed read.
    """
    present = available_columns(path)
    cols = [c for c in columns if c in present] if columns is not None else present
    try:
        if is_parquet(path):
            schema = parquet_schema(path)
            text = [c for c in categorical if c in cols and is_text(schema.field(c).type)]
            df = _read_parquet(path, cols, text, time_column if time_column in present else None, since, until)
            for c in categorical:  # numeric ids (1, 2.0, ...): categories too, normalised once each
                if c in df.columns and pd.api.types.is_numeric_dtype(df[c].dtype) and not pd.api.types.is_bool_dtype(df[c].dtype):
                    df[c] = df[c].astype("category")
        else:
            dtypes: dict[str, str] = {c: "str" for c in cols}
            dtypes.update({c: "category" for c in categorical if c in cols})
            df = pd.read_csv(path, usecols=cols, dtype=dtypes, keep_default_na=False, na_values=[""])
    except DataContractError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise DataContractError(f"{path}: cannot read the file ({type(exc).__name__}: {exc})") from None
    return df.reset_index(drop=True)


def _read_parquet(
    path: Path, columns: list[str], dictionary: list[str], time_column: str | None, since: pd.Timestamp | None, until: pd.Timestamp | None
) -> pd.DataFrame:
    """Columns of a Parquet file or folder of parts, rows in [since, until) of ``time_column``
    (row groups outside it are skipped), ``dictionary`` columns dictionary-encoded."""
    import pyarrow as pa
    import pyarrow.dataset as ds


    parquet = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(dictionary_columns=dictionary))
    dataset = ds.dataset(path, format=parquet)
    terms = []
    if time_column is not None:
        terms += [ds.field(time_column) >= since] if since is not None else []
        terms += [ds.field(time_column) < until] if until is not None else []
    condition = terms[0] & terms[1] if len(terms) == 2 else terms[0] if terms else None
    pool = arrow_pool()
    try:
        table = dataset.to_table(columns=columns, filter=condition, memory_pool=pool)
    except (TypeError, ValueError, NotImplementedError):
        # e.g. timestamps stored as text: filter after parsing instead
        table = dataset.to_table(columns=columns, memory_pool=pool)
    # Nanosecond timestamps and nullable booleans (not objects when a flag has gaps) are what
    # parsing produces anyway: one conversion instead of two. Consolidated blocks: a row
    # selection later is one take per dtype.
    booleans = {pa.bool_(): pd.BooleanDtype()}
    df = table.to_pandas(memory_pool=pool, coerce_temporal_nanoseconds=True, types_mapper=booleans.get)
    del table
    pool.release_unused()  # the Arrow copy is no longer needed: give its memory back now, not at exit
    return df


def is_text(arrow_type: "pyarrow.DataType") -> bool:
    import pyarrow.types as pat

    return bool(pat.is_string(arrow_type) or pat.is_large_string(arrow_type) or pat.is_string_view(arrow_type))


def parquet_max(path: Path, column: str) -> pd.Timestamp | None:
    """Maximum of a timestamp column from Parquet statistics, or None if any is missing."""
    try:
        files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
        best = None
        for file in files:
            meta = pq.ParquetFile(file).metadata
            idx = meta.schema.to_arrow_schema().get_field_index(column)
            if idx < 0:
                return None
            for g in range(meta.num_row_groups):
                stats = meta.row_group(g).column(idx).statistics
                if stats is None or not stats.has_min_max:
                    return None
                value = pd.Timestamp(stats.max)
                value = value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")
                best = value if best is None or value > best else best
        return best
    except Exception:  # noqa: BLE001 - statistics are an optimisation; fall back to reading
        return None
