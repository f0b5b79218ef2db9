"""Writing a scoring run's risk list back to a database (``churn score --out-table URL#TABLE``),
where a CRM or BI tool reads the latest list with SQL. The files in ``--out`` stay the source
of truth; the tables are a copy.

Two tables: ``TABLE`` (one row per account: the risk list with ``run_id`` and ``as_of_date``,
its reasons as text) and ``TABLE_runs`` (one row per run: id, date, model, the run record as
JSON). A re-run for a date replaces that date's rows — delete and insert in one transaction,
so a reader never sees both runs, nor neither.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from churn.config import database_scheme
from churn.data.database import describe, failure_reason, file_path, mask_url
from churn.data.read import DataContractError

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


@dataclass(frozen=True)
class OutTable:
    """``--out-table``: a database URL and a table name (optionally ``schema.table``)."""

    url: str
    table: str

    @property
    def runs_table(self) -> str:
        return f"{self.table}_runs"

    def __str__(self) -> str:
        return f"{mask_url(self.url)}#{self.table}"


def parse_out_table(text: str) -> OutTable:
    """``URL#TABLE`` checked: a database URL and a plain (optionally schema-qualified) name."""
    url, _, table = text.rpartition("#")
    if not url or database_scheme(url) is None:
        raise ValueError(f"{mask_url(text)}: --out-table is a database URL and a table, e.g. postgresql://user@host/crm#churn_risk")
    if not _TABLE.match(table):
        raise ValueError(f"{mask_url(text)}: {table!r} is not a table name (letters, digits and '_', optionally schema.table)")
    return OutTable(url, table)


def _arrow(frame: pd.DataFrame) -> pa.Table:
    """A frame as Arrow through pandas' own Parquet conversion (zone-aware times kept, no
    deprecation warnings), text as plain strings (every driver ingests those)."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    table = pq.read_table(buffer)
    return table.cast(pa.schema([pa.field(f.name, pa.string() if pa.types.is_large_string(f.type) else f.type) for f in table.schema]))


def _tables(risk: pd.DataFrame, record: dict[str, object]) -> tuple[pa.Table, pa.Table, str]:
    """The rows to write: the risk list and the run, both keyed by run id and as-of date."""
    day = str(record["as_of"])
    rows = risk.assign(run_id=str(record["run_id"]), as_of_date=day)
    run = pd.DataFrame(
        [{
            "run_id": str(record["run_id"]), "as_of_date": day, "scored_at": str(record.get("scored_at", "")),
            "model": str(record.get("model", "")), "model_version": str(record.get("model_version") or ""),
            "record": json.dumps(record, default=str),
        }]
    )  # fmt: skip
    return _arrow(rows), _arrow(run), day


def write_run(target: OutTable, risk: pd.DataFrame, record: dict[str, object]) -> int:
    """Write the run's risk list and record to ``target``, replacing the rows of a run at the
    same date, in one transaction. Returns the rows written to the risk-list table."""
    rows, run, day = _tables(risk, record)
    scheme = database_scheme(target.url) or ""
    try:
        if scheme == "duckdb":
            _write_duckdb(target, rows, run, day)
        elif scheme in ("postgresql", "postgres", "sqlite"):
            _write_adbc(target, scheme, rows, run, day)
        else:
            _write_sqlalchemy(target, rows, run, day)
    except DataContractError:
        raise
    except Exception as exc:  # noqa: BLE001 - one sentence, the password masked
        raise DataContractError(f"cannot write the risk list to {describe(target.url)}, table {target.table}: {failure_reason(exc)}") from None
    return rows.num_rows


def _quoted(table: str) -> str:
    return ".".join(f'"{part}"' for part in table.split("."))


def _write_adbc(target: OutTable, scheme: str, rows: pa.Table, run: pa.Table, day: str) -> None:
    if scheme == "sqlite":
        import adbc_driver_sqlite.dbapi as driver

        where = file_path(target.url)
    else:
        import adbc_driver_postgresql.dbapi as driver

        where = "postgresql://" + target.url.split("://", 1)[1]
    with driver.connect(where) as con:  # autocommit off: one transaction, committed at the end
        with con.cursor() as cur:
            for table, arrow in ((target.table, rows), (target.runs_table, run)):
                schema, _, name = table.rpartition(".")
                options = {"db_schema_name": schema} if schema else {}
                cur.adbc_ingest(name, arrow.slice(0, 0), mode="create_append", **options)  # the table, if new
                cur.execute(f"DELETE FROM {_quoted(table)} WHERE \"as_of_date\" = '{day}'")
                cur.adbc_ingest(name, arrow, mode="append", **options)
        con.commit()


def _write_duckdb(target: OutTable, rows: pa.Table, run: pa.Table, day: str) -> None:
    import duckdb

    path = file_path(target.url)
    with duckdb.connect(path) as con:
        con.begin()
        for table, arrow in ((target.table, rows), (target.runs_table, run)):
            con.register("incoming", arrow)
            con.execute(f"CREATE TABLE IF NOT EXISTS {_quoted(table)} AS SELECT * FROM incoming WHERE false")
            con.execute(f"DELETE FROM {_quoted(table)} WHERE \"as_of_date\" = '{day}'")
            con.execute(f"INSERT INTO {_quoted(table)} BY NAME SELECT * FROM incoming")
            con.unregister("incoming")
        con.commit()


def _write_sqlalchemy(target: OutTable, rows: pa.Table, run: pa.Table, day: str) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(target.url)
    try:
        with engine.begin() as con:
            for table, arrow in ((target.table, rows), (target.runs_table, run)):
                schema, _, name = table.rpartition(".")
                if sqlalchemy.inspect(con).has_table(name, schema=schema or None):
                    con.execute(sqlalchemy.text(f"DELETE FROM {_quoted(table)} WHERE as_of_date = :day"), {"day": day})
                arrow.to_pandas().to_sql(name, con, schema=schema or None, if_exists="append", index=False)
    finally:
        engine.dispose()


