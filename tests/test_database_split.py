"""A window read as two halves at once is cut where its rows, not its hours, are halved.

Events grow with a business, so the later half of a time range holds more rows, and the read
waits for the larger half. The cut comes from PostgreSQL's own statistics of the time column
(``pg_stats``: common values with their shares, an equi-depth histogram of the rest), read by
:func:`churn.data.pgstats.row_median`. A real PostgreSQL (tests/pg_support.py) for the query.
"""

from __future__ import annotations

import pandas as pd
import pytest

from churn.config import SourceTables
from churn.data import pgstats
from churn.data.database import connect, read_source, row_middle
from tests.pg_support import Cluster, postgres  # noqa: F401 - the session fixture

SINCE, UNTIL = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-03-01", tz="UTC")


@pytest.fixture(scope="module")
def url(postgres: Cluster) -> str:  # noqa: F811
    """Events growing tenfold: 1 an hour in January, 10 an hour in February, then ANALYZE (as
    autovacuum does after a load). One table with a schema of its own, one never analysed."""
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(postgres.url(), autocommit=True) as con, con.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS split")
        cur.execute("CREATE DATABASE split")
    with pg.connect(postgres.url("split"), autocommit=True) as con, con.cursor() as cur:
        cur.execute("CREATE SCHEMA crm")
        for table in ("crm.events", "public.fresh"):
            cur.execute(f"CREATE TABLE {table} (account_id text, occurred_at timestamptz, event_type text)")
            cur.execute(
                f"INSERT INTO {table} SELECT 'a' || (i % 50), t, 'login' FROM ("
                " SELECT generate_series(TIMESTAMPTZ '2024-01-01 00:00+00', TIMESTAMPTZ '2024-01-31 23:00+00', INTERVAL '1 hour') AS t"
                " UNION ALL SELECT generate_series(TIMESTAMPTZ '2024-02-01 00:00+00', TIMESTAMPTZ '2024-02-29 23:54+00', INTERVAL '6 minutes')"
                ") AS times, generate_series(1, 1) AS i ORDER BY t"
            )
        cur.execute("ANALYZE crm.events")
    return postgres.url("split")


def _rows(url: str, table: str, since: pd.Timestamp, until: pd.Timestamp) -> int:
    with connect(url) as con:
        sql = f"SELECT count(*) AS n FROM {table} WHERE occurred_at >= TIMESTAMPTZ '{since.isoformat()}' AND occurred_at < TIMESTAMPTZ '{until.isoformat()}'"
        return int(con.query(sql).read_all().column("n")[0].as_py())


def test_the_cut_halves_the_rows_by_the_tables_statistics(url: str) -> None:
    with connect(url) as con:
        cut = row_middle(con, SourceTables(interactions="events", schema="crm"), "interactions", "occurred_at", SINCE, UNTIL)
    first, second = _rows(url, "crm.events", SINCE, cut), _rows(url, "crm.events", cut, UNTIL)
    assert abs(first - second) <= 0.05 * (first + second), f"cut at {cut}: {first} and {second} rows"
    middle = SINCE + (UNTIL - SINCE) / 2  # the middle instant would give ~744 and ~6,600
    assert _rows(url, "crm.events", SINCE, middle) < 0.2 * _rows(url, "crm.events", middle, UNTIL)


def test_without_statistics_the_cut_is_the_middle_instant(url: str) -> None:
    """A table never analysed, and a [source] query: no statistics to go by."""
    with connect(url) as con:
        assert row_middle(con, SourceTables(interactions="fresh"), "interactions", "occurred_at", SINCE, UNTIL) == SINCE + (UNTIL - SINCE) / 2
        query = SourceTables(interactions="SELECT * FROM crm.events")
        assert row_middle(con, query, "interactions", "occurred_at", SINCE, UNTIL) == SINCE + (UNTIL - SINCE) / 2


def test_the_split_read_sends_the_cut_and_reads_every_row_once(url: str) -> None:
    tables = SourceTables(interactions="events", schema="crm")
    sent: list[str] = []
    with connect(url) as con:
        query = con.query

        def recorded(sql: str):  # type: ignore[no-untyped-def]
            sent.append(sql)
            return query(sql)

        con.query = recorded  # type: ignore[method-assign]
        cut = row_middle(con, tables, "interactions", "occurred_at", SINCE, UNTIL)
        frame = read_source(con, tables, "interactions", ["account_id", "occurred_at"], time_column="occurred_at", since=SINCE, until=UNTIL, categorical=("account_id",))
    assert frame is not None and len(frame) == _rows(url, "crm.events", SINCE, UNTIL)
    assert frame["occurred_at"].is_monotonic_increasing and not frame.duplicated().any()
    stamp = f"{cut:%Y-%m-%d %H:%M:%S}"
    assert any(f"< TIMESTAMP WITH TIME ZONE '{stamp}" in s for s in sent), sent


def test_row_median_reads_common_values_and_the_histogram() -> None:
    """Dates (a date-only export): most are common values, each with its share of the rows."""
    days = pd.date_range("2024-01-01", "2024-01-10")
    stats = {"null_frac": 0.0, "common": "{" + ",".join(f"{d:%Y-%m-%d}" for d in days) + "}", "shares": [0.01] * 5 + [0.19] * 5, "bounds": None}
    assert pgstats.row_median(stats, pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-11")) == pd.Timestamp("2024-01-08")  # 0.43 before it, 0.62 before the 9th
    bounds = '{"2024-01-01 00:00:00+00","2024-01-21 00:00:00+00","2024-01-26 00:00:00+00","2024-01-29 12:00:00+00","2024-01-31 00:00:00+00"}'
    histogram = {"null_frac": 0.1, "common": None, "shares": None, "bounds": bounds}  # a quarter of the rows between each two bounds
    assert pgstats.row_median(histogram, SINCE, pd.Timestamp("2024-01-31", tz="UTC")) == pd.Timestamp("2024-01-26", tz="UTC")  # not the 16th
    assert pgstats.row_median({"null_frac": 0.0, "common": None, "shares": None, "bounds": None}, SINCE, UNTIL) is None
    assert pgstats.row_median({"null_frac": 0.0, "common": "{not a date}", "shares": [1.0], "bounds": None}, SINCE, UNTIL) is None
