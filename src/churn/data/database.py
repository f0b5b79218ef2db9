"""Reading the tables of a database given as ``--data``: PostgreSQL, DuckDB, SQLite, and any
other database SQLAlchemy reaches.

A database is read the way a data folder is (:mod:`churn.data.read`): only the columns asked
for, and for the interactions only the rows of the run's time range — both pushed into the
SQL, so a weekly score sends ``SELECT <its columns> … WHERE occurred_at >= … AND occurred_at
< …`` and never pulls years of events. Rows arrive as Arrow record batches (ADBC for
PostgreSQL and SQLite, DuckDB's own Arrow reader), are typed as a Parquet read would type them
(UTC timestamps, floats, nullable booleans, dictionary-encoded ids), and then go through the
same data contract as a file.

Credentials come from the URL, the ``PG*`` environment variables or a ``.pgpass`` file (libpq
reads those for ADBC); a password never appears in a message (:func:`mask_url`).

URL forms: ``postgresql://user@host:5432/db``; ``duckdb:///file.duckdb`` and
``sqlite:///file.db`` (SQLAlchemy's form: three slashes and a relative path, four for an
absolute one, ``sqlite:////srv/crm.db``); any other ``dialect+driver://`` URL through SQLAlchemy.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator, Sequence
from urllib.parse import parse_qs, unquote, urlsplit

import pandas as pd
import pyarrow as pa

from churn.config import SourceTables, database_scheme
from churn.data import dbtypes, pgpack, pgstats
from churn.data.io import arrow_pool
from churn.data.read import DataContractError
from churn.data.rules import CATEGORICAL, NUMBERS, REQUIRED
from churn.data.sparse import Batches

if TYPE_CHECKING:  # pragma: no cover
    import adbc_driver_manager.dbapi

#: Rows per Arrow record batch read from a database (DuckDB; ADBC picks its own size).
BATCH_ROWS = 1 << 18

_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)(?P<secret>[^@\s]*)(?P<tail>@)")
_PASSWORD_PARAM = re.compile(r"(?i)(?P<head>\bpassword=)(?P<secret>[^&\s]+)")


def mask_url(text: str) -> str:
    """``text`` with every URL password (``://user:secret@``, ``password=secret``) shown as ``***``."""
    text = _PASSWORD.sub(lambda m: f"{m['head']}***{m['tail']}", str(text))
    return _PASSWORD_PARAM.sub(lambda m: f"{m['head']}***", text)


def is_database(location: object) -> bool:
    """Whether ``--data`` names a database rather than a data folder."""
    return database_scheme(location) is not None


def file_path(url: str) -> str:
    """The file of ``duckdb:///x.duckdb`` / ``sqlite:////abs/x.db`` (SQLAlchemy's form)."""
    return unquote(url.split("://", 1)[1][1:].split("?", 1)[0])


def describe(url: str) -> str:
    """A database in words for a message: ``the PostgreSQL database crm on db.internal:5432``
    (the password never; the ``PG*`` defaults libpq would use where the URL is silent)."""
    scheme = database_scheme(url) or ""
    if scheme in ("duckdb", "sqlite"):
        return f"the {'DuckDB' if scheme == 'duckdb' else 'SQLite'} file {file_path(url)}"
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = parts.hostname or query.get("host", [os.environ.get("PGHOST", "localhost")])[0]
    port = parts.port or query.get("port", [os.environ.get("PGPORT", "5432")])[0]
    user = parts.username or os.environ.get("PGUSER") or os.environ.get("USER", "")
    db = parts.path.lstrip("/") or os.environ.get("PGDATABASE") or user
    kind = "PostgreSQL" if scheme in ("postgresql", "postgres") else scheme.split("+")[0]
    return f"the {kind} database {db} on {host}:{port}" + (f" as {user}" if user else "")


def failure_reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words (the driver's first line when unrecognised)."""
    text = str(exc)
    lower = text.lower()
    if "password authentication failed" in lower or "authentication failed" in lower:
        return "the user name or password was refused"
    if "no password supplied" in lower:
        return "the server asks for a password and none was given (URL, PGPASSWORD or ~/.pgpass)"
    if "does not exist" in lower and "database" in lower:
        return "there is no such database"
    if any(s in lower for s in ("connection refused", "could not connect", "timeout", "timed out", "could not translate host name", "no route")):
        return "the server cannot be reached (is it running, and are host and port right?)"
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    return mask_url(first)[:200]


class Connection:
    """One open database: runs a query and gives its rows as an Arrow record batch reader."""

    def __init__(
        self,
        run: Callable[[str], pa.RecordBatchReader],
        close: Callable[[], None],
        quote: Callable[[str], str],
        name: str,
        *,
        nan_for_null: bool = False,
        sibling: Callable[[], "Connection"] | None = None,
    ) -> None:
        self._run, self.close, self.quote, self.name = run, close, quote, name
        #: PostgreSQL: a NULL float sent as NaN, sparse columns packed (:func:`select_sql`).
        self.nan_for_null = nan_for_null
        #: Opens a second connection to the same database, for a read split in two (PostgreSQL).
        self.sibling = sibling

    def query(self, sql: str) -> pa.RecordBatchReader:
        """The rows of ``sql``, batch by batch."""
        return self._run(sql)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _missing_driver(package: str, url: str) -> DataContractError:
    return DataContractError(f"{mask_url(url)}: reading this database needs the {package} package (pip install 'churn[db]')")


@contextmanager
def connect(url: str) -> Iterator[Connection]:
    """An open connection to the database of ``url``; a failure to connect is one sentence
    naming the database and why (a :class:`DataContractError`: exit code 1, no traceback)."""
    scheme = database_scheme(url) or ""
    try:
        connection = _open(scheme, url)
    except DataContractError:
        raise
    except Exception as exc:  # noqa: BLE001 - every driver has its own errors; the user gets one sentence
        raise DataContractError(f"cannot connect to {describe(url)}: {failure_reason(exc)}") from None
    try:
        yield connection
    finally:
        connection.close()


def _open(scheme: str, url: str) -> Connection:
    name = describe(url)
    if scheme == "duckdb":
        try:
            import duckdb
        except ImportError:
            raise _missing_driver("duckdb", url) from None
        path = file_path(url)
        if not os.path.isfile(path):
            raise DataContractError(f"{mask_url(url)}: no such DuckDB file {path}")
        con = duckdb.connect(path, read_only=True)
        return Connection(lambda sql: con.sql(sql).to_arrow_reader(BATCH_ROWS), con.close, _quote, name)
    if scheme in ("postgresql", "postgres", "sqlite"):
        package = "adbc-driver-sqlite" if scheme == "sqlite" else "adbc-driver-postgresql"
        try:
            if scheme == "sqlite":
                import adbc_driver_sqlite.dbapi as driver
            else:
                import adbc_driver_postgresql.dbapi as driver
        except ImportError:
            raise _missing_driver(package, url) from None
        if scheme == "sqlite":
            path = file_path(url)
            if not os.path.isfile(path):
                raise DataContractError(f"{mask_url(url)}: no such SQLite file {path}")
            target = path
        else:
            target = "postgresql://" + url.split("://", 1)[1]  # libpq knows postgresql:// and postgres://
        return _adbc(driver.connect(target, autocommit=True), name, postgres=scheme != "sqlite")
    return _sqlalchemy(url, name)


def _adbc(con: "adbc_driver_manager.dbapi.Connection", name: str, *, postgres: bool) -> Connection:
    """An ADBC connection as a :class:`Connection` (PostgreSQL: with a sibling — a clone
    sharing its ADBC database, whose type catalogue is then not loaded again: ~10 ms where a
    new connection takes ~70)."""
    cursor = con.cursor()

    def run(sql: str) -> pa.RecordBatchReader:
        cursor.execute(sql)
        return cursor.fetch_record_batch()

    def close() -> None:
        cursor.close()
        con.close()

    def sibling() -> Connection:
        other = con.adbc_clone()
        other.adbc_connection.set_autocommit(True)  # as connect(autocommit=True): no transaction around the reads
        return _adbc(other, name, postgres=True)

    if not postgres:
        return Connection(run, close, _quote, name)
    return Connection(run, close, _quote, name, nan_for_null=True, sibling=sibling)


def _sqlalchemy(url: str, name: str) -> Connection:
    """Any other database SQLAlchemy has a dialect for: rows read in chunks, made Arrow."""
    try:
        import sqlalchemy
    except ImportError:
        raise _missing_driver("SQLAlchemy", url) from None
    engine = sqlalchemy.create_engine(url)
    con = engine.connect()

    def run(sql: str) -> pa.RecordBatchReader:
        chunks = pd.read_sql_query(sqlalchemy.text(sql), con, chunksize=BATCH_ROWS)
        tables = [pa.Table.from_pandas(chunk, preserve_index=False) for chunk in chunks]
        table = pa.concat_tables(tables) if tables else pa.table({})
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())

    def close() -> None:
        con.close()
        engine.dispose()

    return Connection(run, close, engine.dialect.identifier_preparer.quote, name)


def relation(con: Connection, source: SourceTables, table: str) -> str:
    """The FROM item of a table: its (schema-qualified) name, or its query as a subquery."""
    value = getattr(source, table).strip().rstrip(";")
    if source.is_query(table):
        return f"({value}) AS {con.quote(table)}"
    return f"{con.quote(source.schema)}.{con.quote(value)}" if source.schema else con.quote(value)


def table_schema(con: Connection, source: SourceTables, table: str) -> pa.Schema | None:
    """The columns of a table (no rows read), or None when the database has no such table."""
    try:
        return con.query(f"SELECT * FROM {relation(con, source, table)} WHERE 1 = 0").schema
    except Exception as exc:  # noqa: BLE001 - a missing table is an error of each driver's own kind
        if source.is_query(table):
            raise DataContractError(f"{con.name}: the [source] query for {table} fails: {failure_reason(exc)}") from None
        return None


def server_typed(con: Connection, source: SourceTables, table: str, schema: pa.Schema) -> pa.Schema:
    """A PostgreSQL table's ``schema`` with each field's server type (``POSTGRESQL:type``, what
    :mod:`churn.data.pgpack` packs by): as the driver reports it (adbc-driver-postgresql 1.13
    and later), else from the catalogue (:func:`catalog_types`). A [source] query has no
    catalogue entry: its fields keep only what the driver reports."""
    if source.is_query(table) or any(pgpack.pg_type(schema, name) for name in schema.names):
        return schema
    return pgpack.with_types(schema, catalog_types(con, source, table))


def catalog_types(con: Connection, source: SourceTables, table: str) -> dict[str, str]:
    """PostgreSQL's type name of each column of a table, from ``pg_attribute`` (a domain's base
    type, as the server's row description names it); empty when refused or not a table. Why:
    the ADBC driver names the types in its field metadata only from release 1.13, and the
    releases 1.9 to 1.13 ship unoptimised builds (pyproject.toml)."""
    sql = (
        "SELECT a.attname AS name, COALESCE(b.typname, d.typname) AS kind FROM pg_catalog.pg_attribute a "
        "JOIN pg_catalog.pg_type d ON d.oid = a.atttypid LEFT JOIN pg_catalog.pg_type b ON b.oid = NULLIF(d.typbasetype, 0) "
        f"WHERE a.attrelid = to_regclass({_sql_text(relation(con, source, table))}) AND a.attnum > 0 AND NOT a.attisdropped"
    )
    try:
        return {row["name"]: row["kind"] for row in con.query(sql).read_all().to_pylist()}
    except Exception:  # noqa: BLE001 - the types are an optimisation: without them nothing is packed
        return {}


def _literal(moment: pd.Timestamp, arrow_type: pa.DataType) -> str:
    """A SQL timestamp literal comparable with a column of ``arrow_type`` (a zone-aware column
    gets a UTC instant; a naive one is read as UTC, as the contract reads it)."""
    moment = pd.Timestamp(moment)
    moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
    if pa.types.is_timestamp(arrow_type) and arrow_type.tz is not None:
        return f"TIMESTAMP WITH TIME ZONE '{moment:%Y-%m-%d %H:%M:%S.%f}+00:00'"
    return f"TIMESTAMP '{moment:%Y-%m-%d %H:%M:%S.%f}'"


def _is_time(arrow_type: pa.DataType) -> bool:
    return bool(pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type))


def select_sql(
    con: Connection,
    source: SourceTables,
    table: str,
    columns: Sequence[str],
    schema: pa.Schema,
    *,
    time_column: str | None = None,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
    packing: pgpack.Packing | None = None,
) -> str:
    """``SELECT <columns> FROM <table> [WHERE <time range>]``: the range is pushed down when the
    column holds timestamps or dates (text timestamps are filtered after parsing, as in a CSV).

    On PostgreSQL a float column is sent as ``COALESCE(x, 'NaN')``: its mostly-empty optional
    columns (CSAT, NPS, amounts) decoded about a third faster without NULLs in ADBC (measured
    with driver 1.13, an unoptimised build), and a NULL
    and a NaN are the same missing value once read (a float column becomes a NumPy float). A
    boolean is sent as 1, 0 or -1 (NULL) for the same reason and made boolean again after.
    With a ``packing`` (:mod:`churn.data.pgpack`) its columns travel in one field instead."""
    item = lambda c: _column(con, c, schema)  # noqa: E731
    items = pgpack.select_items(packing, item, con.quote) if packing is not None else [item(c) for c in columns]
    sql = f"SELECT {', '.join(items)} FROM {relation(con, source, table)}"
    if not _pushed(schema, time_column):
        return sql
    kind = schema.field(time_column).type  # type: ignore[arg-type]
    terms = [f"{con.quote(time_column)} >= {_literal(since, kind)}"] if since is not None else []  # type: ignore[arg-type]
    terms += [f"{con.quote(time_column)} < {_literal(until, kind)}"] if until is not None else []  # type: ignore[arg-type]
    return sql + (" WHERE " + " AND ".join(terms) if terms else "")


def _pushed(schema: pa.Schema, time_column: str | None) -> bool:
    """Whether a time range on ``time_column`` goes into the SQL (a timestamp or date column)."""
    return time_column is not None and schema.get_field_index(time_column) >= 0 and _is_time(schema.field(time_column).type)


def _column(con: Connection, column: str, schema: pa.Schema) -> str:
    """A column of the SELECT list (a float as ``COALESCE(x, 'NaN') AS x`` where the connection
    asks for it)."""
    name = con.quote(column)
    kind = schema.field(column).type if schema.get_field_index(column) >= 0 else None
    if con.nan_for_null and kind is not None and pa.types.is_floating(kind):
        return f"COALESCE({name}, 'NaN') AS {name}"
    if con.nan_for_null and kind is not None and pa.types.is_boolean(kind):
        return f"CAST(COALESCE(CAST({name} AS integer), -1) AS smallint) AS {name}"  # NULL: -1 (:func:`churn.data.dbtypes.booleans`)
    return name


def _halves(since: pd.Timestamp, until: pd.Timestamp, middle: pd.Timestamp) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """[since, until) cut in two at ``middle``: each row falls in exactly one half."""
    return [(since, middle), (middle, until)] if since < middle < until else [(since, until)]


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def row_middle(con: Connection, source: SourceTables, table: str, column: str, since: pd.Timestamp, until: pd.Timestamp) -> pd.Timestamp:
    """The instant cutting the rows of [since, until) about in half, by the table's statistics
    (:func:`churn.data.pgstats.row_median`), so the two halves read at once
    (:func:`_read_split`) end together; the middle instant without them (a query source, a
    table never analysed, a server that will not say). Why: events grow with the business, and
    in time order the later half is the larger — a 100,000-account export's window of 6.9M
    rows cut at its middle instant read 3.04M and 3.86M, and the read waits for the larger."""
    middle = since + (until - since) / 2
    if source.is_query(table):
        return middle
    schema = _sql_text(source.schema) if source.schema else "current_schema()"
    sql = (
        "SELECT null_frac, most_common_vals::text AS common, most_common_freqs AS shares, histogram_bounds::text AS bounds FROM pg_catalog.pg_stats "
        f"WHERE schemaname = {schema} AND tablename = {_sql_text(getattr(source, table).strip())} AND attname = {_sql_text(column)}"
    )
    try:
        rows = con.query(sql).read_all().to_pylist()
    except Exception:  # noqa: BLE001 - statistics are an optimisation: a refusal keeps the middle instant
        return middle
    found = pgstats.row_median(rows[0], since, until) if len(rows) == 1 else None
    return found if found is not None else middle


def _read_split(con: Connection, sqls: Sequence[str], categorical: Sequence[str], pool: pa.MemoryPool, packing: pgpack.Packing | None, sparse: Sequence[str] = ()) -> Batches:
    """The rows of ``sqls``, in that order: the first on ``con``, each other at the same time
    on a connection of its own (PostgreSQL: a server process each, and the driver decodes
    without holding the GIL, so two halves of a window take both cores, the client's decoding
    and the server's scanning overlapping). A second connection refused (a server at its
    connection limit) costs only the overlap: that part is read on ``con`` after the first."""

    def read(on: Connection, sql: str) -> Batches:
        return dbtypes.read_all(on.query(sql), categorical, pool, packing, sparse)

    def sibling(sql: str) -> Batches | None:
        try:
            other = con.sibling()  # type: ignore[misc]
        except Exception:  # noqa: BLE001 - any driver's refusal: read it on con instead
            return None
        try:
            return read(other, sql)
        finally:
            other.close()

    if len(sqls) == 1 or con.sibling is None:
        gathered = read(con, sqls[0])
        for sql in sqls[1:]:
            gathered.extend(read(con, sql))
        return gathered
    with ThreadPoolExecutor(max_workers=len(sqls) - 1) as threads:
        rest = [threads.submit(sibling, sql) for sql in sqls[1:]]
        gathered = read(con, sqls[0])
        for sql, future in zip(sqls[1:], rest):
            part = future.result()
            gathered.extend(part if part is not None else read(con, sql))
        return gathered


def read_source(
    con: Connection,
    source: SourceTables,
    table: str,
    columns: Sequence[str] | None = None,
    *,
    time_column: str | None = None,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
    categorical: Sequence[str] = (),
    dense: Sequence[str] | None = None,
    sparse: Sequence[str] = (),
) -> pd.DataFrame | None:
    """A table of the database as :func:`churn.data.read.read_table` reads a file: the asked-for
    columns that exist, the rows in [since, until) of ``time_column``; None without the table.

    On PostgreSQL, given the ``dense`` columns (those every row has), the others — the mostly
    empty optional ones — travel in one field (:mod:`churn.data.pgpack`), and a time range with
    both ends is read as two halves of about as many rows (:func:`row_middle`) at once
    (:func:`_read_split`), the earlier half's rows
    first (SQL without ORDER BY promises no order; a table in time order reads as one query
    would read it). The mostly empty float columns among ``sparse`` arrive sparse, as from a file."""
    schema = table_schema(con, source, table)
    if schema is None:
        return None
    cols = [c for c in columns if c in schema.names] if columns is not None else list(schema.names)
    packing = None
    if con.nan_for_null and dense is not None:
        packing = pgpack.plan(cols, [c for c in cols if c not in dense], server_typed(con, source, table, schema), categorical)
    split = con.sibling is not None and since is not None and until is not None and _pushed(schema, time_column)
    ranges = _halves(since, until, row_middle(con, source, table, time_column, since, until)) if split else [(since, until)]  # type: ignore[arg-type]
    sqls = [select_sql(con, source, table, cols, schema, time_column=time_column, since=a, until=b, packing=packing) for a, b in ranges]
    pool = arrow_pool()
    try:
        gathered = _read_split(con, sqls, categorical, pool, packing, sparse)
        arrow = gathered.table()
        arrow = dbtypes.booleans(arrow, schema) if con.nan_for_null else arrow
    except DataContractError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise DataContractError(f"{con.name}: cannot read {table} ({failure_reason(exc)})") from None
    held = [arrow]
    del arrow
    df = gathered.with_floats(dbtypes.frame(held, pool))
    del gathered
    pool.release_unused()
    for c in categorical:  # numeric ids: categories too, as from a file
        if c in df.columns and pd.api.types.is_numeric_dtype(df[c].dtype) and not pd.api.types.is_bool_dtype(df[c].dtype):
            df[c] = df[c].astype("category")
    return df


def source_max(con: Connection, source: SourceTables, table: str, column: str, limit: pd.Timestamp) -> pd.Timestamp | None:
    """``MAX(column)`` not after ``limit``, computed by the database — or None when the column
    is not of timestamps or dates there (then the caller reads the column and parses it)."""
    schema = table_schema(con, source, table)
    if schema is None or schema.get_field_index(column) < 0 or not _is_time(schema.field(column).type):
        return None
    kind = schema.field(column).type
    sql = f"SELECT MAX({con.quote(column)}) AS latest FROM {relation(con, source, table)} WHERE {con.quote(column)} <= {_literal(limit, kind)}"
    value = con.query(sql).read_all().column(0)[0].as_py()
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def read_database(
    url: str,
    tables: SourceTables,
    interaction_columns: Sequence[str] | None,
    since: pd.Timestamp | None,
    until: pd.Timestamp | None,
    *,
    accounts_too: bool = True,
    early: "tuple[pd.DataFrame | None, str] | None" = None,
) -> tuple[tuple[pd.DataFrame | None, str], ...]:
    """The accounts, interactions and attribute history of a database as read (each with its
    name for messages, ``<database>: interactions``), for the contract to check like files.
    ``accounts_too=False``: the interactions only (None for the others, checked already);
    ``early``: the interactions as :func:`read_interactions` read them already."""
    named = lambda frame, table: (frame, f"{describe(url)}, {_where(tables, table)}")  # noqa: E731
    if not accounts_too and early is not None:
        return named(None, "accounts"), early, named(None, "attribute_history")
    with connect(url) as con:
        accounts = read_source(con, tables, "accounts") if accounts_too else None
        if accounts is None and accounts_too:
            raise DataContractError(f"{con.name}: no accounts table ({_where(tables, 'accounts')}; name it in [source] of churn.toml)")
        interactions = early if early is not None else _interactions(con, tables, interaction_columns, since, until)
        history = read_source(con, tables, "attribute_history") if accounts_too else None
        return named(accounts, "accounts"), interactions, named(history, "attribute_history")


def read_interactions(
    url: str, tables: SourceTables, columns: Sequence[str] | None, since: pd.Timestamp | None, until: pd.Timestamp | None
) -> tuple[pd.DataFrame | None, str]:
    """The interactions :func:`read_database` reads, alone (on connections of their own: for a
    read started before the end of the data is found, :func:`churn.data.contract.read_window_early`)."""
    with connect(url) as con:
        return _interactions(con, tables, columns, since, until)


def _interactions(
    con: Connection, tables: SourceTables, columns: Sequence[str] | None, since: pd.Timestamp | None, until: pd.Timestamp | None
) -> tuple[pd.DataFrame | None, str]:
    frame = read_source(
        con, tables, "interactions", columns, time_column="occurred_at", since=since, until=until, categorical=CATEGORICAL, dense=REQUIRED["interactions"], sparse=NUMBERS["interactions"]
    )
    return frame, f"{con.name}, {_where(tables, 'interactions')}"


def _where(tables: SourceTables, name: str) -> str:
    """A table of the source in words: ``table crm.accounts`` or ``the [source] query for accounts``."""
    if tables.is_query(name):
        return f"the [source] query for {name}"
    return f"table {tables.schema + '.' if tables.schema else ''}{getattr(tables, name)}"
