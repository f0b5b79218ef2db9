"""The PostgreSQL read's two speed-ups change nothing that is read: the optional columns sent
packed in one field (churn.data.pgpack) give what they give sent one by one, and a time range
read as two halves at once gives every row once (in the same order, the table being in time
order, as an event table appended to is) — also when the server refuses the second connection.

A real PostgreSQL (tests/pg_support.py), one small table with the awkward values: NULL, NaN,
infinities and -0.0 floats, NULL booleans, empty and non-ASCII text, a row with every optional
column empty, a row with only a text one, a row exactly at the middle of the range.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.config import SourceTables
from churn.data import pgpack
from churn.data.database import Connection, catalog_types, connect, read_source, server_typed, table_schema
from tests.pg_support import Cluster, postgres  # noqa: F401 - the session fixture

SINCE, UNTIL = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-01-03", tz="UTC")
COLUMNS = ["account_id", "occurred_at", "event_type", "note", "wait", "score", "resolved", "code", "channel", "n", "price"]
DENSE = ("account_id", "occurred_at", "event_type")

ROWS = [  # account, occurred_at, event_type, note (text), wait (float8), score (float4), resolved, code (varchar), channel (text), n (int), price (numeric)
    ("a1", "2023-12-31 23:59:59.999999", "login", "before the range", 1.0, 1.0, True, "x", "web", 1, 1.5),
    ("a1", "2024-01-01 00:00:00", "login", None, None, None, None, None, None, None, None),
    ("a2", "2024-01-01 06:00:00.000001", "ticket", "", float("nan"), float("-inf"), False, "", "phone", 2, 2.25),
    ("a2", "2024-01-01 12:00:00", "ticket", "café ☕ 😀", -0.0, 0.1, None, "ü", None, None, None),
    ("a3", "2024-01-02 00:00:00", "invoice", None, None, None, None, None, "email", 3, 0),  # the middle instant of [SINCE, UNTIL)
    ("a3", "2024-01-02 00:00:00.000001", "invoice", "quote ' and \\ backslash", 1e308, float("inf"), True, None, None, None, None),
    ("a4", "2024-01-02 23:59:59.999999", "login", None, 123456.789012345, 3.4028235e38, False, "v" * 20, "chat", -5, -1),
    ("a4", "2024-01-03 00:00:00", "login", "at the end: not read", 9.0, 9.0, True, "z", "web", 9, 9),
]


@pytest.fixture(scope="module")
def url(postgres: Cluster) -> str:  # noqa: F811
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(postgres.url(), autocommit=True) as con, con.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS packing")
        cur.execute("CREATE DATABASE packing")
    with pg.connect(postgres.url("packing"), autocommit=True) as con, con.cursor() as cur:
        cur.execute(
            "CREATE TABLE events (account_id text, occurred_at timestamptz, event_type text, note text, wait float8, score float4, "
            "resolved boolean, code varchar(20), channel text, n integer, price numeric)"
        )
        for row in [row for row in ROWS for _ in range(3)]:  # each row three times, in time order (as a CRM appends them)
            values = ", ".join("NULL" if v is None else _literal(v) for v in row)
            cur.execute(f"INSERT INTO events VALUES ({values})")
    return postgres.url("packing")


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return f"'{value!r}'::float8" if np.isfinite(value) else f"'{'NaN' if np.isnan(value) else ('-' if value < 0 else '') + 'Infinity'}'"
    if isinstance(value, int):
        return str(value)
    text = str(value).replace("'", "''")
    return f"TIMESTAMPTZ '{text}+00'" if text[:2] == "20" and ":" in text else f"'{text}'"


def _refused() -> Connection:
    raise RuntimeError("FATAL:  sorry, too many clients already")


def _read(url: str, *, packed: bool, split: bool | str) -> pd.DataFrame:
    tables = SourceTables(interactions="events")
    with connect(url) as con:
        if not split:
            con.sibling = None
        elif split == "refused":  # a server at its connection limit: the second half read after the first
            con.sibling = _refused
        frame = read_source(
            con, tables, "interactions", COLUMNS, time_column="occurred_at", since=SINCE, until=UNTIL, categorical=("account_id", "channel"), dense=DENSE if packed else None
        )
    assert frame is not None
    return frame


def test_the_optional_columns_are_sent_packed(url: str) -> None:
    """Every float8, float4, boolean, text and varchar column but the dense ones travels in the packed field."""
    source = SourceTables(interactions="events")
    with connect(url) as con:
        schema = server_typed(con, source, "interactions", table_schema(con, source, "interactions"))  # type: ignore[arg-type]
    packing = pgpack.plan(COLUMNS, [c for c in COLUMNS if c not in DENSE], schema)
    assert packing is not None and {c for c, _ in packing.packed} == {"note", "wait", "score", "resolved", "code", "channel"}


def test_the_column_types_come_from_the_catalogue_when_the_driver_does_not_name_them(url: str) -> None:
    """adbc-driver-postgresql before 1.13 sends no ``POSTGRESQL:type``: the table's own catalogue
    entry names the types (so the same columns are packed) — quoted names and a schema found as
    the SELECT finds them, a domain by its base type; a [source] query or a missing table: none."""
    with connect(url) as con:
        assert catalog_types(con, SourceTables(interactions="events"), "interactions") == {
            "account_id": "text", "occurred_at": "timestamptz", "event_type": "text", "wait": "float8", "score": "float4",
            "resolved": "bool", "note": "text", "code": "varchar", "channel": "text", "n": "int4", "price": "numeric",
        }  # fmt: skip
        for sql in ('CREATE SCHEMA IF NOT EXISTS "CRM"', 'DROP TABLE IF EXISTS "CRM"."Ev""ts"', "DROP DOMAIN IF EXISTS seconds",
                    "CREATE DOMAIN seconds AS float8 CHECK (VALUE >= 0)", 'CREATE TABLE "CRM"."Ev""ts" (w seconds, t text, c char(2))'):  # fmt: skip
            con.query(sql).read_all()
        quoted = SourceTables(interactions='Ev"ts', schema="CRM")
        assert catalog_types(con, quoted, "interactions") == {"w": "float8", "t": "text", "c": "bpchar"}
        assert table_schema(con, quoted, "interactions") is not None  # the table the SELECT reads is the one the catalogue named
        assert catalog_types(con, SourceTables(interactions="SELECT * FROM events"), "interactions") == {}
        assert catalog_types(con, SourceTables(interactions="no_such_table"), "interactions") == {}


def test_a_source_query_reads_what_the_table_reads(url: str) -> None:
    """A [source] query (no catalogue entry: nothing packed before driver 1.13) gives the table's rows."""
    with connect(url) as con:
        frame = read_source(
            con, SourceTables(interactions="SELECT * FROM events"), "interactions", COLUMNS, time_column="occurred_at", since=SINCE, until=UNTIL,
            categorical=("account_id", "channel"), dense=DENSE,
        )  # fmt: skip
    pd.testing.assert_frame_equal(frame, _read(url, packed=True, split=True), check_exact=True)


def test_packed_and_split_reads_equal_the_plain_read(url: str) -> None:
    plain = _read(url, packed=False, split=False)
    assert len(plain) == 3 * 6 and plain["occurred_at"].is_monotonic_increasing  # [SINCE, UNTIL): not the rows before or at the end
    assert (plain["occurred_at"] == pd.Timestamp("2024-01-02", tz="UTC")).sum() == 3  # the middle instant: in one half only
    assert plain["note"].isna().sum() == 3 * 3 and (plain["note"] == "").sum() == 3 and plain["resolved"].isna().sum() == 3 * 3
    for packed, split in ((True, False), (False, True), (True, True), (True, "refused")):
        pd.testing.assert_frame_equal(_read(url, packed=packed, split=split), plain, check_exact=True)
    assert np.signbit(plain["wait"]).sum() == 3  # -0.0 kept as -0.0
