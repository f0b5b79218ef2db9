"""Where the data ends, and whether a run date is after it.

The end of the data is the day after the latest *date* among the accepted interactions
(``floor + 1 day``: a day seen at all is taken as seen whole, so a date-only export whose last
purchase is on 30 September ends on 1 October), or the date given in ``churn.toml`` /
``--data-end``. Rejected rows (unparseable, future-dated, unknown account, …) never move it.
Every stage that needs it — labels, maturity of cutoffs, retention, the freshness check —
takes it from here (:func:`day_end` is the one rounding).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from churn.config import DataSettings, SourceTables
from churn.data.contract import ContractData, load, validate
from churn.data.database import connect, is_database, read_source, source_max, table_schema
from churn.data.parse import parse_timestamps
from churn.data.read import find_table, is_parquet, parquet_max, read_table
from churn.data.rules import FUTURE_SLACK


def interactions_end(
    folder: str | Path, *, now: pd.Timestamp | None = None, date_format: str | None = None, tables: SourceTables = SourceTables()
) -> pd.Timestamp | None:
    """The latest timestamp among the *accepted* interactions of a data folder (None without any):
    :func:`interactions_end_checked`."""
    return interactions_end_checked(folder, now=now, date_format=date_format, tables=tables)[0]


def interactions_end_checked(
    folder: str | Path,
    *,
    now: pd.Timestamp | None = None,
    date_format: str | None = None,
    tables: SourceTables = SourceTables(),
    latest: pd.Timestamp | None = None,
) -> tuple[pd.Timestamp | None, ContractData | None]:
    """The latest timestamp among the *accepted* interactions of a data folder (None without
    any), and the last day's data loaded to find it (None: none loaded, or the whole table) —
    its accounts and attribute history validated, for a later load of the same source to take
    (``load(checked=…)``).

    Cheap first: one column (or Parquet row-group statistics) gives the latest plausible
    timestamp; past the wall clock is ignored (one future-dated row must not make immature
    cutoffs look complete). Then only the rows of that last day are put through the contract,
    so a rejected row — an unknown account, a duplicate, a value out of range — never moves
    the end. Only when none of that day's rows is accepted is the whole table validated.
    A database computes the first step itself (``SELECT MAX(occurred_at) … WHERE occurred_at <= …``);
    ``latest``: its answer at this ``now``, asked already (:func:`database_latest`)."""
    now = pd.Timestamp.now(tz="UTC") if now is None else now
    limit = now + FUTURE_SLACK
    if is_database(folder):
        candidate = _database_max(str(folder), tables, limit, date_format) if latest is None else latest
    else:
        path = find_table(folder, "interactions")
        candidate = None if path is None else _plausible_max(path, limit, date_format)
    if candidate is None:
        return None, None
    tail = load(folder, since=candidate.floor("D"), date_format=date_format, now=now, tables=tables)
    latest = _accepted_max(tail)
    if latest is None:  # every row of the last day was rejected: look at the whole table (not handed on: all of it)
        return _accepted_max(load(folder, date_format=date_format, now=now, tables=tables)), None
    return latest, tail


def database_latest(url: str, settings: DataSettings, now: pd.Timestamp) -> pd.Timestamp | None:
    """A database's latest ``occurred_at`` not past the wall clock ``now`` (one ``MAX`` query),
    or None (no such table or column of timestamps, no rows, or the end is given in
    ``settings``). Asked once by ``churn features`` and handed to both :func:`likely_data_end`
    and :func:`data_end_checked`, which ask the same question at the same ``now``."""
    if settings.data_end is not None:
        return None
    with connect(url) as con:
        return source_max(con, settings.source, "interactions", "occurred_at", now + FUTURE_SLACK)


def likely_data_end(
    folder: str | Path, settings: DataSettings = DataSettings(), *, now: pd.Timestamp | None = None, latest: pd.Timestamp | None = None
) -> pd.Timestamp | None:
    """What :func:`data_end_of` will most likely find, from what costs no read of rows:
    ``settings.data_end``, else the day after the Parquet statistics' latest ``occurred_at``
    (when not past the wall clock, ``now``), or a database's ``MAX(occurred_at)`` (not past it
    either: :func:`database_latest`, or ``latest`` when it was asked already).
    None when only reading could tell. A guess, for reading ahead: the end of the data is
    still found from the accepted rows."""
    if settings.data_end is not None:
        return settings.data_end
    now = pd.Timestamp.now(tz="UTC") if now is None else now
    if is_database(folder):
        latest = database_latest(str(folder), settings, now) if latest is None else latest
        return None if latest is None else day_end(latest)
    path = find_table(folder, "interactions")
    if path is None or not is_parquet(path):
        return None
    latest = parquet_max(path, "occurred_at")
    return None if latest is None or latest > now + FUTURE_SLACK else day_end(latest)


def _database_max(url: str, tables: SourceTables, limit: pd.Timestamp, date_format: str | None) -> pd.Timestamp | None:
    """:func:`_plausible_max` of a database: MAX() in SQL when the column holds timestamps, else
    the one column read and parsed."""
    with connect(url) as con:
        if table_schema(con, tables, "interactions") is None:
            return None
        latest = source_max(con, tables, "interactions", "occurred_at", limit)
        if latest is not None:
            return latest
        column = read_source(con, tables, "interactions", ["occurred_at"])
    t = parse_timestamps(column["occurred_at"], date_format) if column is not None else pd.Series(dtype="datetime64[ns, UTC]")
    t = t[t <= limit]
    return None if t.empty else t.max()


def _plausible_max(path: Path, limit: pd.Timestamp, date_format: str | None) -> pd.Timestamp | None:
    """The latest parseable ``occurred_at`` not after ``limit``, read cheaply (no other check)."""
    stats_max = parquet_max(path, "occurred_at") if is_parquet(path) else None  # only a timestamp/date column has them
    if stats_max is not None and stats_max <= limit:
        return stats_max
    column = read_table(path, ["occurred_at"])["occurred_at"]
    t = parse_timestamps(column, date_format)
    t = t[t <= limit]
    return None if t.empty else t.max()


def _accepted_max(data: ContractData) -> pd.Timestamp | None:
    t = data.interactions_read["occurred_at"]
    if data.interactions_accepted is not None:
        t = t[data.interactions_accepted]
    t = t.dropna()
    return None if t.empty else t.max()


#: How a user says when an export was taken, named by every "after the end of the data" message.
DECLARE_DATA_END = "--data-end YYYY-MM-DD (or data_end in churn.toml)"


class StaleDataError(ValueError):
    """A run at a date after the end of the data (every account would look quiet)."""


def check_freshness(as_of: pd.Timestamp, data_end: pd.Timestamp, *, allow_stale: bool = False) -> dict[str, object]:
    """The run's data-freshness facts; refuses an ``as_of`` after the data unless allowed."""
    lag = (as_of - data_end) / pd.Timedelta(days=1)
    if lag > 0 and not allow_stale:
        raise StaleDataError(
            f"--as-of {as_of:%Y-%m-%d} is {lag:g} day(s) after the end of the data ({data_end:%Y-%m-%d}): every account "
            f"would look quiet since {data_end:%Y-%m-%d}. Export newer data, use --as-of {data_end:%Y-%m-%d}, "
            f"declare when the export was taken with {DECLARE_DATA_END} if it is later than its last event, "
            "or pass --allow-stale-data to go on anyway"
        )
    facts: dict[str, object] = {"data_end": f"{data_end:%Y-%m-%d}", "data_lag_days": round(max(lag, 0.0), 1)}
    if lag > 0:
        facts["warning"] = f"stale data: the data ends {lag:g} day(s) before the scoring date; recent activity is missing"
    return facts


def data_end_of(data_dir: str | Path, settings: DataSettings = DataSettings()) -> pd.Timestamp:
    """End of the observed history of a data folder: ``settings.data_end``, else the day after
    the latest interaction (future-dated rows ignored), else — attribute-only data — the latest
    signup or churn date."""
    return data_end_and_source(data_dir, settings)[0]


def data_end_and_source(data_dir: str | Path, settings: DataSettings = DataSettings()) -> tuple[pd.Timestamp, str]:
    """:func:`data_end_of`, and where it came from, in words (for the run's output)."""
    end, source, _ = data_end_checked(data_dir, settings)
    return end, source


def data_end_checked(
    data_dir: str | Path, settings: DataSettings = DataSettings(), *, now: pd.Timestamp | None = None, latest: pd.Timestamp | None = None
) -> tuple[pd.Timestamp, str, ContractData | None]:
    """:func:`data_end_and_source`, and the data loaded on the way (None: none was), whose
    validated accounts and attribute history a later load can take (``load(checked=…)``).
    ``now``: the wall clock (default: read here); ``latest``: a database's :func:`database_latest`
    at that ``now``, when asked already."""
    if settings.data_end is not None:
        return settings.data_end, "given", None
    latest, tail = interactions_end_checked(data_dir, now=now, date_format=settings.date_format, tables=settings.source, latest=latest)
    if latest is not None:
        return day_end(latest), FROM_INTERACTIONS, tail
    if is_database(data_dir):
        return accounts_end(load(data_dir, interaction_columns=[], date_format=settings.date_format, tables=settings.source).accounts), FROM_ACCOUNTS, None
    path = find_table(data_dir, "accounts")
    accounts = validate(read_table(path), None, date_format=settings.date_format).accounts if path else None
    if accounts is None:
        raise ValueError(f"{data_dir}: no accounts table")
    return accounts_end(accounts), FROM_ACCOUNTS, None


FROM_INTERACTIONS = "the day after the latest date of an accepted interaction"
FROM_ACCOUNTS = "no interaction with a usable timestamp: the day after the latest signup or churn date"


def loaded_data_end(data: ContractData, settings: DataSettings = DataSettings()) -> tuple[pd.Timestamp, str]:
    """:func:`data_end_and_source` from data already loaded whole and validated (``churn
    validate``, ``churn retention``): the same rule, without reading the table again."""
    if settings.data_end is not None:
        return settings.data_end, "given"
    latest = _accepted_max(data)
    if latest is not None:
        return day_end(latest), FROM_INTERACTIONS
    return accounts_end(data.accounts), FROM_ACCOUNTS


def day_end(latest: pd.Timestamp) -> pd.Timestamp:
    """The end of the data when ``latest`` is the last moment seen in it: the day after its
    date (``floor + 1 day``). A day seen at all is taken as seen whole — a date-only export
    (every timestamp midnight) whose last row is dated 30 September ends on 1 October, and so
    does one whose last row is 30 September 23:59. Every stage's end of data goes through this
    one rounding."""
    return latest.floor("D") + pd.Timedelta(days=1)


def accounts_end(accounts: pd.DataFrame) -> pd.Timestamp:
    """The end of an attribute-only snapshot: the day after its latest signup or churn date."""
    stamps = [accounts["signup_at"].max()]
    if "churned_at" in accounts.columns and accounts["churned_at"].notna().any():
        stamps.append(accounts["churned_at"].max())
    return day_end(max(stamps))


def observed_until(accounts: pd.DataFrame, interactions: pd.DataFrame) -> pd.Timestamp:
    """End of the observed history: the day after the latest date of the given (accepted)
    interactions (:func:`day_end`). Without interactions — an attribute-only snapshot — the latest
    signup or churn date stands in; give the end explicitly (``--data-end``) in that case."""
    if len(interactions):
        return day_end(interactions["occurred_at"].max())
    return accounts_end(accounts)
