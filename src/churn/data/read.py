"""Finding and reading a table of a data folder: Parquet (a file or a folder of parts) or CSV.

Reads only the columns asked for and, for Parquet, only the rows of the time range asked for
(a filter pushed into the reader), so a weekly run never loads years of events it does not use.

A data folder is a local path or a URL that an fsspec filesystem reads (``s3://``, ``gs://``,
``file://``, ``memory://``, …): the URL stays a string (``Path`` would collapse its ``//``),
and every read goes through the filesystem it names. ``file://`` URLs are read with the local
readers, exactly as their path.
"""

from __future__ import annotations

import csv
import re
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Callable, Generic, Hashable, Iterable, Iterator, Sequence, TypeVar, Union

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow
    from fsspec import AbstractFileSystem
from churn.config import database_scheme
from churn.data.io import arrow_pool
from churn.data.sparse import Batches, is_text

#: Where a table or a data folder is: a local path, or a URL (kept as a string).
Location = Union[str, Path]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
#: ``s3a:/bucket``: what a URL looks like once a ``Path`` has collapsed its ``//``.
_COLLAPSED = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/(?!/)")

#: The column separators a CSV export is sniffed for (the header line decides).
DELIMITERS = ",;\t|"
_DECIMAL_COMMA = r"[+-]?\d+(?:,\d+)?"


class DataContractError(Exception):
    """The data cannot be used at all. The message is meant for the user, as is; ``rejects``
    holds the rows rejected so far (per table), so they can still be written with reasons, and
    ``written`` the files they were written to, once a job has written them."""

    def __init__(self, message: str, rejects: dict[str, pd.DataFrame] | None = None, written: list[Path] | None = None) -> None:
        super().__init__(message)
        self.rejects = rejects or {}
        self.written = written or []


def is_url(location: Location) -> bool:
    """A ``scheme://`` URL (a ``Path`` never is one: it has lost the ``//``)."""
    return isinstance(location, str) and _SCHEME.match(location) is not None


def check_location(text: str) -> str:
    """``text`` if it is a local path or a URL of a filesystem fsspec can open here; else a
    ValueError that says what is wrong (a collapsed ``//``, an unknown scheme, a missing
    filesystem package such as s3fs). Whether the folder exists is for the reader to say."""
    match = _SCHEME.match(text)
    if match is None:
        collapsed = _COLLAPSED.match(text)
        if collapsed and len(collapsed.group(1)) > 1:  # not a drive letter (C:/data)
            scheme = collapsed.group(1)
            raise ValueError(f"{text}: a URL needs two slashes after {scheme}: ({scheme}://bucket/folder, file:///absolute/path)")
        return text
    if database_scheme(text) is not None:  # a database (churn.data.database), not a filesystem
        return text
    from fsspec import get_filesystem_class

    scheme = match.group(1).lower()
    try:
        get_filesystem_class(scheme)
    except ValueError:
        raise ValueError(f"{text}: no filesystem reads {scheme}:// URLs (use a local path, or s3://, gs://, abfs://, file://, …)") from None
    except ImportError as exc:
        raise ValueError(f"{text}: reading {scheme}:// URLs needs a filesystem package that is not installed: {exc}") from None
    return text


def join(folder: Location, name: str) -> Location:
    """``folder/name``: a ``Path`` for a local folder, a URL string for a URL."""
    return f"{str(folder).rstrip('/')}/{name}" if is_url(folder) else Path(folder) / name


def _filesystem(location: Location) -> "tuple[AbstractFileSystem | None, str]":
    """The fsspec filesystem of a URL and its path there; None and the local path for a local
    path or a ``file://`` URL (pandas and pyarrow read those natively)."""
    if not is_url(location):
        return None, str(location)
    from fsspec.core import url_to_fs
    from fsspec.implementations.local import LocalFileSystem

    fs, path = url_to_fs(str(location))
    return (None, path) if isinstance(fs, LocalFileSystem) else (fs, path)


def _exists(location: Location) -> bool:
    fs, path = _filesystem(location)
    return Path(path).exists() if fs is None else bool(fs.exists(path))


def is_folder(location: Location) -> bool:
    """Whether a data folder (or a folder of Parquet parts) is there."""
    fs, path = _filesystem(location)
    return Path(path).is_dir() if fs is None else bool(fs.isdir(path))


def find_table(folder: Location, name: str) -> Location | None:
    """``name.parquet``, ``name.csv`` or a folder ``name/`` of Parquet parts, else None
    (a ``Path`` in a local folder, a URL in a URL)."""
    for stem in (f"{name}.parquet", f"{name}.csv", f"{name}.csv.gz", name):
        candidate = join(folder, stem)
        if _exists(candidate):
            return candidate
    return None


def is_parquet(path: Location) -> bool:
    return str(path).endswith(".parquet") or is_folder(path)


def _parquet_files(path: Location) -> "tuple[AbstractFileSystem | None, list[str]]":
    """The filesystem and the Parquet file(s) of a table: itself, or a folder's parts in name order."""
    fs, where = _filesystem(path)
    if not is_folder(path):
        return fs, [where]
    parts = sorted(map(str, Path(where).glob("*.parquet"))) if fs is None else sorted(fs.glob(f"{where.rstrip('/')}/*.parquet"))
    if not parts:
        raise DataContractError(f"{path}: a folder without .parquet files")
    return fs, parts


def parquet_schema(path: Location) -> "pyarrow.Schema":
    fs, files = _parquet_files(path)
    return pq.read_schema(files[0], filesystem=fs)


def csv_delimiter(path: Location) -> str:
    """The column separator of a CSV file, sniffed once from its header line among
    ``, ; tab |`` (a comma when the header does not say)."""
    from fsspec import open as fs_open

    with fs_open(str(path), "rb", compression="infer") as handle:
        header = handle.readline(1 << 16).decode("utf-8", errors="replace").lstrip("\ufeff")
    try:
        found = csv.Sniffer().sniff(header, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","
    return found if found in header else ","


def delimiter_note(path: Location) -> str | None:
    """What a CSV file's separator means for reading it, in words, when it is not a comma."""
    if is_parquet(path) or not _exists(path):
        return None
    sep = csv_delimiter(path)
    if sep == ",":
        return None
    name = {";": "semicolon", "\t": "tab", "|": "pipe"}[sep]
    return f"read as {name}-separated ({sep!r})" + ("; numbers written with a decimal comma (1,5) read as 1.5" if sep == ";" else "")


@contextmanager
def _csv_source(path: Location) -> Iterator[str | IO[bytes]]:
    """What pandas reads a CSV from: the local path, or the file opened on its filesystem."""
    fs, where = _filesystem(path)
    if fs is None:
        yield where
        return
    with fs.open(where, "rb", compression="gzip" if where.endswith(".gz") else None) as handle:
        yield handle


def _csv_columns(path: Location, sep: str) -> list[str]:
    with _csv_source(path) as source:
        return list(pd.read_csv(source, nrows=0, sep=sep).columns)


def available_columns(path: Location) -> list[str]:
    """Column names of a table file without reading its rows."""
    try:
        if is_parquet(path):
            return list(parquet_schema(path).names)
        return _csv_columns(path, csv_delimiter(path))
    except DataContractError:
        raise
    except Exception as exc:  # noqa: BLE001 - any read failure is reported the same way
        raise DataContractError(f"{path}: cannot read the file ({type(exc).__name__}: {exc})") from None


def read_table(
    path: Location,
    columns: Sequence[str] | None = None,
    *,
    time_column: str | None = None,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
    categorical: Sequence[str] = (),
    sparse: Sequence[str] = (),
) -> pd.DataFrame:
    """Read the asked-for columns (those present); Parquet pushes the time range down.

    Text columns named in ``categorical`` (ids, event types, channels: few distinct values,
    many rows) arrive as categoricals, so that later steps work once per distinct value.
    CSV is read as text so that parsing problems surface per row, not as a failed read; its
    separator is sniffed from the header (:func:`csv_delimiter`), and in a semicolon-separated
    file a column whose every value is a number written with a decimal comma is read with a
    decimal point (the usual spreadsheet export where the comma is the decimal mark).
    Parquet float columns named in ``sparse`` arrive sparse when mostly empty
    (:mod:`churn.data.sparse`); CSV is text, parsed later, and never sparse.
    """
    try:
        schema = parquet_schema(path) if is_parquet(path) else None
        sep = csv_delimiter(path) if schema is None else ","
        present = list(schema.names) if schema is not None else _csv_columns(path, sep)
        cols = [c for c in columns if c in present] if columns is not None else present
        if schema is not None:
            text = [c for c in categorical if c in cols and is_text(schema.field(c).type)]
            df = _read_parquet(path, cols, text, time_column if time_column in present else None, since, until, sparse)
            for c in categorical:  # numeric ids (1, 2.0, ...): categories too, normalised once each
                if c in df.columns and pd.api.types.is_numeric_dtype(df[c].dtype) and not pd.api.types.is_bool_dtype(df[c].dtype):
                    df[c] = df[c].astype("category")
        else:
            dtypes: dict[str, str] = {c: "str" for c in cols}
            dtypes.update({c: "category" for c in categorical if c in cols})
            with _csv_source(path) as source:
                df = pd.read_csv(source, sep=sep, usecols=cols, dtype=dtypes, keep_default_na=False, na_values=[""])
            if sep == ";":
                df = _decimal_points(df)
    except DataContractError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise DataContractError(f"{path}: cannot read the file ({type(exc).__name__}: {exc})") from None
    return df.reset_index(drop=True)


def _decimal_points(df: pd.DataFrame) -> pd.DataFrame:
    """Text columns whose every value is a number with a decimal comma (``89,5``) or a whole
    number, with at least one comma: the comma becomes a point, so the contract reads the
    numbers. Anything else (``1.234,5``, a comma in free text) stays as written."""
    for col in df.columns:
        values = df[col]
        if not pd.api.types.is_string_dtype(values.dtype) or isinstance(values.dtype, pd.CategoricalDtype):
            continue
        present = values.dropna()
        if len(present) and present.str.contains(",", regex=False).any() and present.str.fullmatch(_DECIMAL_COMMA).all():
            df[col] = values.str.replace(",", ".", regex=False)
    return df


def _read_parquet(
    path: Location,
    columns: list[str],
    dictionary: list[str],
    time_column: str | None,
    since: pd.Timestamp | None,
    until: pd.Timestamp | None,
    sparse: Sequence[str] = (),
) -> pd.DataFrame:
    """Columns of a Parquet file or folder of parts, rows in [since, until) of ``time_column``
    (row groups outside it are skipped), ``dictionary`` columns dictionary-encoded, the mostly
    empty float columns among ``sparse`` sparse (:mod:`churn.data.sparse`: taken out of each
    batch as it is read)."""
    import pyarrow.dataset as ds

    fs, where = _filesystem(path)
    parquet = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(dictionary_columns=dictionary))
    dataset = ds.dataset(where, format=parquet, filesystem=fs)
    terms = []
    if time_column is not None:
        terms += [ds.field(time_column) >= since] if since is not None else []
        terms += [ds.field(time_column) < until] if until is not None else []
    condition = terms[0] & terms[1] if len(terms) == 2 else terms[0] if terms else None
    pool = arrow_pool()
    schema = pa.schema([dataset.schema.field(c) for c in columns], metadata=dataset.schema.metadata)
    def every_row() -> "Iterator[pyarrow.RecordBatch]":
        return dataset.to_batches(columns=columns, batch_size=BATCH_ROWS, memory_pool=pool)

    try:
        window = _window_batches(dataset, columns, condition, ds.field(time_column).is_null() | ~condition, pool) if condition is not None and time_column else every_row()
        gathered = _gather(Batches(schema, sparse), window)
    except (TypeError, ValueError, NotImplementedError):
        # e.g. timestamps stored as text: filter after parsing instead
        gathered = _gather(Batches(schema, sparse), every_row())
    # Nanosecond timestamps and nullable booleans (not objects when a flag has gaps) are what
    # parsing produces anyway: one conversion instead of two. Consolidated blocks: a row
    # selection later is one take per dtype.
    booleans = {pa.bool_(): pd.BooleanDtype()}
    table = gathered.table()
    df = table.to_pandas(memory_pool=pool, coerce_temporal_nanoseconds=True, types_mapper=booleans.get)
    del table
    df = gathered.with_floats(df)
    del gathered
    pool.release_unused()  # the Arrow copy is no longer needed: give its memory back now, not at exit
    return df


def _gather(gathered: Batches, batches: "Iterable[pyarrow.RecordBatch]") -> Batches:
    for batch in batches:
        gathered.add(batch)
    return gathered


#: Rows per batch of a read: a row group of a million rows in one piece, not eight. Each
#: piece has its own dictionary of the account ids, and turning the table into a DataFrame
#: unifies them — eight times fewer to unify, a tenth less CPU for the whole read.
BATCH_ROWS = 1 << 20


#: Decode one row group while the previous one is taken, not several ahead: the float
#: columns of a batch are cut down as it is taken (:class:`churn.data.sparse.Batches`), so the
#: memory of one is reused by the next — on 6.9M interactions 18,000 fewer page faults (70 MB)
#: and 50 MB less peak memory for the whole of `churn features`; each row group is still
#: decoded column by column on Arrow's threads.
ONE_AT_A_TIME = {"batch_readahead": 0, "fragment_readahead": 1}


def _window_batches(
    dataset: "pyarrow.dataset.Dataset", columns: list[str], condition: "pyarrow.dataset.Expression", outside: "pyarrow.dataset.Expression", pool: "pyarrow.MemoryPool"
) -> "Iterator[pyarrow.RecordBatch]":
    """The rows of ``dataset`` where ``condition`` holds, filtering only the row groups that
    need it. Row-group statistics sort each group: none of its rows can match (skipped), every
    row matches (``outside`` — no match or a missing value — provably false: read whole, no
    filter, no copy), or some may (read and filtered). In an event log written in time order a
    time window covers most of its row groups whole, so most rows are never filtered — the
    filter is a copy of every column, a third of the read. Batches come in the dataset's order."""
    for fragment in dataset.get_fragments():
        wanted = [g.id for g in fragment.subset(filter=condition, schema=dataset.schema).row_groups]
        partial = {g.id for g in fragment.subset(filter=outside, schema=dataset.schema).row_groups}
        runs: list[tuple[bool, list[int]]] = []  # consecutive row groups of one kind, in file order
        for g in wanted:
            if runs and runs[-1][0] == (g in partial):
                runs[-1][1].append(g)
            else:
                runs.append((g in partial, [g]))
        for filtered, groups in runs:
            part = fragment.subset(row_group_ids=groups)
            yield from part.to_batches(
                schema=dataset.schema, columns=columns, filter=condition if filtered else None, batch_size=BATCH_ROWS, memory_pool=pool, **ONE_AT_A_TIME
            )


T = TypeVar("T")


class Prefetch(Generic[T]):
    """A read started in a background thread, taken later by the load that asks for the same
    thing (``key``). Parquet decoding runs outside the GIL, so a command that has other work
    first — ``churn features`` finding the end of the data — reads its window meanwhile, on
    the other core. A load asking for anything else gets None and reads for itself; an error
    of the read is raised where it is taken, as it would have been there."""

    def __init__(self, key: Hashable, read: Callable[[], T]) -> None:
        self.key = key
        self._read = read
        self._result: T | None = None
        self._error: BaseException | None = None
        self._wanted = True
        # Not a daemon: a run that ends before taking the read (a refused stale date) waits for
        # it at exit. A daemon thread would be stopped in pyarrow's conversion, whose tasks need
        # the interpreter, while pyarrow's thread pool waits for them at exit: a hang.
        self._thread = threading.Thread(target=self._run, name="churn-prefetch")
        self._thread.start()

    def _run(self) -> None:
        try:
            result = self._read()
            if self._wanted:  # a read no load takes is dropped, not kept alive beside the load's own
                self._result = result
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, raised there
            self._error = exc

    def take(self, key: Hashable) -> T | None:
        """The result, when ``key`` is what was read (waiting for it); else None, and the read
        is dropped (as soon as it ends: a load reading another range must not hold two)."""
        if key != self.key:
            self._wanted, self._result = False, None
            return None
        self._thread.join()
        if self._error is not None:
            raise self._error
        result, self._result = self._result, None  # taken once: the frame is not kept alive here
        return result


def parquet_max(path: Location, column: str) -> pd.Timestamp | None:
    """Maximum of a timestamp column from Parquet statistics, or None if any is missing."""
    try:
        fs, files = _parquet_files(path)
        best = None
        for file in files:
            meta = pq.read_metadata(file, filesystem=fs)
            schema = meta.schema.to_arrow_schema()
            idx = schema.get_field_index(column)
            if idx < 0 or not (pa.types.is_timestamp(schema.field(idx).type) or pa.types.is_date(schema.field(idx).type)):
                return None  # integers (Unix times) or text: their statistics are no timestamp
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
