"""``churn features --data DIR`` starts reading its Parquet tables before the command line has
finished starting: imported first by :mod:`churn.cli`, before pandas, typer and the stages.

Those imports take about half a second on one core; Arrow decodes the year of interactions
the command reads meanwhile, on the other (:mod:`churn.data.readahead`). This module guesses
what the command will read from the command line and the Parquet statistics alone — the
interactions of the window at ``--as-of`` (or at the end of the data the statistics foretell,
as :func:`churn.data.dataend.likely_data_end` does), the last day's interactions, the accounts
and the attribute history — and the reader takes each read only for the very request it makes
(a wrong guess costs a read, never a wrong table; what is not taken is dropped after the load).

It runs before pandas is imported, so the few facts it needs of the later stages are written
out here; tests/test_features_readahead.py checks they are the ones the stages use, by
checking every read of a ``churn features`` run is taken.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from churn.data.readahead import Key

#: The interaction columns ``churn features`` reads, in order (data/contract.py
#: ``_interaction_columns(OPTIONAL_INTERACTION_COLUMNS)``).
WINDOW_COLUMNS = (
    "account_id", "occurred_at", "event_type", "channel", "case_id", "wait_seconds", "handle_seconds",
    "resolved", "transferred", "ces", "csat", "nps", "amount",
)  # fmt: skip
#: Text columns read dictionary-encoded (data/rules.py ``CATEGORICAL``).
CATEGORICAL = ("account_id", "event_type", "channel")
#: The features' lookback (config.py ``FeatureConfig.lookback_days``) and the default horizon.
LOOKBACK_DAYS, HORIZON_DAYS = 365, 30
#: How far past the wall clock a timestamp may lie (data/rules.py ``FUTURE_SLACK``).
FUTURE_SLACK = timedelta(days=1)
#: Options after which the command reads something else, or nothing: no guess.
_NO_GUESS = {"--describe", "--help", "--config", "--data-end", "--engine"}
#: The options of ``churn features`` that take no value.
_FLAGS = {"--allow-stale-data"}


def start(argv: Sequence[str]) -> None:
    """Start the reads ahead of a ``churn features`` command line (anything else: nothing)."""
    options = _features_options(argv)
    if options is None:
        return
    try:
        keys = _plan(Path(options["--data"]), options.get("--as-of"), options.get("--horizon"))
    except Exception:  # noqa: BLE001 - an unreadable file: the command's own read says so, in its words
        return
    if keys:
        from churn.data import readahead

        readahead.start(keys)


def imports_done() -> None:
    """The command line has imported what it runs on: the reads ahead may use every core."""
    if "churn.data.readahead" in sys.modules:
        from churn.data import readahead

        readahead.imports_done()


def _features_options(argv: Sequence[str]) -> dict[str, str] | None:
    """The options of a ``churn features --data DIR`` command line (as ``{"--data": DIR, …}``),
    or None when it is not one or has an option that changes what is read."""
    if len(argv) < 2 or Path(argv[0]).name not in ("churn", "__main__.py") or argv[1] != "features":
        return None
    options: dict[str, str] = {}
    words = list(argv[2:])
    while words:
        word = words.pop(0)
        name, _, value = word.partition("=")
        if name in _NO_GUESS or not name.startswith("--"):
            return None
        if name not in _FLAGS and not value:  # an option with its value in the next word
            if not words:
                return None
            value = words.pop(0)
        options[name] = value
    data = options.get("--data")
    return options if data and "://" not in data and Path(data).is_dir() else None


def _plan(folder: Path, as_of_text: str | None, horizon_text: str | None) -> "list[Key]":
    """What ``churn features`` will read of ``folder``'s Parquet files, as far as it can be told."""
    from churn.data.readahead import Key

    keys = [Key(str(folder / f"{name}.parquet"), tuple(names), (), None, None, None) for name, names in _schemas(folder, "accounts", "attribute_history")]
    interactions = folder / "interactions.parquet"
    if not interactions.is_file():
        return keys
    import pyarrow.parquet as pq

    schema = pq.read_schema(interactions)
    latest = _latest(interactions)
    if latest is None or latest > datetime.now(timezone.utc) + FUTURE_SLACK or _data_end_set(folder):
        latest = None  # the end of the data is read otherwise, or given
    if latest is not None:
        day = datetime(latest.year, latest.month, latest.day, tzinfo=timezone.utc)
        keys.append(Key(str(interactions), tuple(schema.names), _dictionary(schema, schema.names), "occurred_at", day, None))
    as_of = _as_of(as_of_text) if as_of_text else (None if latest is None else datetime(latest.year, latest.month, latest.day, tzinfo=timezone.utc) + timedelta(days=1))
    try:
        horizon = int(horizon_text) if horizon_text else HORIZON_DAYS
    except ValueError:
        return keys
    if as_of is not None:
        columns = [c for c in WINDOW_COLUMNS if c in schema.names]
        since = as_of - timedelta(days=max(LOOKBACK_DAYS, horizon))
        keys.append(Key(str(interactions), tuple(columns), _dictionary(schema, columns), "occurred_at", since, as_of))
    return keys


def _schemas(folder: Path, *names: str) -> list[tuple[str, list[str]]]:
    """The column names of each table of ``names`` that is a Parquet file in ``folder``."""
    import pyarrow.parquet as pq

    return [(name, pq.read_schema(folder / f"{name}.parquet").names) for name in names if (folder / f"{name}.parquet").is_file()]


def _dictionary(schema: object, columns: Sequence[str]) -> tuple[str, ...]:
    """The columns of :data:`CATEGORICAL` among ``columns`` stored as text (read.py ``is_text``)."""
    import pyarrow.types as pat

    def text(t: object) -> bool:
        return bool(pat.is_string(t) or pat.is_large_string(t) or pat.is_string_view(t))

    return tuple(c for c in CATEGORICAL if c in columns and text(schema.field(c).type))  # type: ignore[attr-defined]


def _latest(path: Path) -> datetime | None:
    """The latest ``occurred_at`` by the row-group statistics (read.py ``parquet_max``), as
    integers of the column's unit: Arrow's own conversion of a timestamp imports pandas."""
    import pyarrow.parquet as pq
    import pyarrow.types as pat

    meta = pq.read_metadata(path)
    schema = meta.schema.to_arrow_schema()
    index = schema.get_field_index("occurred_at")
    if index < 0 or not pat.is_timestamp(schema.field(index).type) or schema.field(index).type.tz is None:
        return None
    tick = {"s": timedelta(seconds=1), "ms": timedelta(milliseconds=1), "us": timedelta(microseconds=1)}.get(schema.field(index).type.unit)
    best = None
    for g in range(meta.num_row_groups):
        column = meta.row_group(g).column(index)
        stats = column.statistics
        if tick is None or column.physical_type != "INT64" or stats is None or not stats.has_min_max:
            return None
        best = stats.max_raw if best is None else max(best, stats.max_raw)
    return None if best is None else datetime(1970, 1, 1, tzinfo=timezone.utc) + best * tick


def _as_of(text: str) -> datetime | None:
    """``--as-of`` in UTC as config.py ``to_utc`` reads an ISO 8601 date (naive: UTC); None
    when Python's ISO reader does not read it the same way for sure."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _data_end_set(folder: Path) -> bool:
    """Whether a settings file may give the end of the data (then it is not read from the
    interactions, and the window is at that date): any mention of ``data_end`` counts."""
    files = (Path("pyproject.toml"), Path("churn.toml"), folder / "churn.toml")
    return any(f.is_file() and "data_end" in f.read_text(encoding="utf-8", errors="replace") for f in files)
